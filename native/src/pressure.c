/* pressure.c: how much more memory this process may use before memory is tight.
 *
 * Asked by the control thread only (recycle.c), never on the allocation path. The room
 * is what the memory cgroup we run in can still take above a reserve of an eighth of
 * its limit (at least 32 MiB), or, without a cgroup limit, the machine's available
 * memory above a sixteenth of its total. The cgroup's files are found once, from /proc/self/cgroup
 * (v1 memory controller or v2 unified hierarchy); reading them costs two small reads.
 * A forked child keeps its parent's answer: it starts in the same cgroup.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_HEADROOM (32 * BM_MIB)

static struct {
    bool resolved;
    char usage[BIGMAAC_PATH_MAX];
    char limit[BIGMAAC_PATH_MAX];
} cgroup;

/* Reads a small file into buf without allocating; false if unreadable. */
static bool read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0;
}

/* A number of bytes, or UINT64_MAX for v2's "max" and v1's "no limit" sentinel. */
static bool read_bytes(const char *path, uint64_t *out)
{
    char text[64];
    if (!read_text(path, text, sizeof text))
        return false;
    *out = strncmp(text, "max", 3) == 0 ? UINT64_MAX : strtoull(text, NULL, 10);
    if (*out >= (UINT64_C(1) << 60))
        *out = UINT64_MAX;
    return true;
}

/* "N:memory:/path" (v1, memory among the controllers) or "0::/path" (v2). */
static void resolve_cgroup(void)
{
    char text[4096];
    cgroup.resolved = true;
    if (!read_text("/proc/self/cgroup", text, sizeof text))
        return;
    char *rest = text;
    for (char *line; (line = strtok_r(rest, "\n", &rest)) != NULL;) {
        char *controllers = strchr(line, ':'), *path;
        if (!controllers || !(path = strchr(controllers + 1, ':')))
            continue;
        *path++ = '\0';
        controllers++;
        bool v2 = controllers[0] == '\0';
        bool v1 = false;
        for (char *c = controllers; !v2 && c && *c; c = strchr(c, ',') ? strchr(c, ',') + 1 : NULL)
            v1 = v1 || (strncmp(c, "memory", 6) == 0 && (c[6] == ',' || c[6] == '\0'));
        if (!v1 && !v2)
            continue;
        const char *root = v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
        snprintf(cgroup.usage, sizeof cgroup.usage, "%s%s/%s", root, path,
                 v1 ? "memory.usage_in_bytes" : "memory.current");
        snprintf(cgroup.limit, sizeof cgroup.limit, "%s%s/%s", root, path,
                 v1 ? "memory.limit_in_bytes" : "memory.max");
        if (v1)
            return; /* on a hybrid system the v1 memory controller is the one that counts */
    }
}

/* Room left above an eighth of the limit (at least MIN_HEADROOM); false if unknown. */
static bool cgroup_room(uint64_t *room)
{
    uint64_t usage, limit;
    if (!cgroup.usage[0] || !read_bytes(cgroup.limit, &limit) || limit == UINT64_MAX ||
        !read_bytes(cgroup.usage, &usage))
        return false;
    uint64_t reserve = limit / 8 > MIN_HEADROOM ? limit / 8 : MIN_HEADROOM;
    *room = usage + reserve < limit ? limit - usage - reserve : 0;
    return true;
}

static uint64_t meminfo_kib(const char *text, const char *key)
{
    const char *at = strstr(text, key);
    return at ? strtoull(at + strlen(key), NULL, 10) : 0;
}

/* MemAvailable above a sixteenth of MemTotal. */
static uint64_t machine_room(void)
{
    char text[2048];
    if (!read_text("/proc/meminfo", text, sizeof text))
        return UINT64_MAX;
    uint64_t total = meminfo_kib(text, "MemTotal:"), available = meminfo_kib(text, "MemAvailable:");
    if (!total)
        return UINT64_MAX;
    return available > total / 16 ? (available - total / 16) * BM_KIB : 0;
}

uint64_t bm_memory_room(void)
{
    if (!cgroup.resolved)
        resolve_cgroup();
    uint64_t room;
    return cgroup_room(&room) ? room : machine_room();
}
