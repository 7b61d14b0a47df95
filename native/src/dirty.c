/* dirty.c: the dirty budget.
 *
 * cgroup v1 does not throttle dirty page cache per cgroup, and memory-cgroup reclaim does
 * not write dirty file pages itself: a program dirtying its MAP_SHARED memory faster than
 * the flusher's 30 s expiry can fill its cgroup with dirty pages and be OOM-killed. So the
 * control thread keeps the swap files' dirty bytes under a budget by starting write-back
 * itself. Clean pages are then reclaimable, and the kernel drops them under pressure.
 *
 * The check costs one cachestat(2) of each whole swap file (one until a fork makes more,
 * cow.c), and runs only while more bytes are reserved on disk than the budget (fewer
 * cannot be dirty beyond it); then every CHECK_INTERVAL_NS, since writes to memory already mapped give the library no event.
 * Past half the budget, sync_file_range(SYNC_FILE_RANGE_WRITE) over the live regions
 * starts write-back of their dirty pages without waiting for it: the kernel submits them
 * in file order, which is sequential for the disk. Freed regions kept for reuse are
 * left out: their data is dead and gets punched unwritten. Without cachestat (Linux < 6.5) dirty bytes
 * are unknown and the write-back is started at every check.
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_INTERVAL_NS 20000000L /* 20 ms: about 10 MiB of page faults on these machines */
#define MIN_BUDGET (16 * BM_MIB)
#define NO_LIMIT UINT64_MAX

static uint64_t budget;
static bool budget_known;

/* ------------------------------------------------------------------ the default */

/* First number in a small file, or NO_LIMIT ("max", missing, unreadable). */
static uint64_t read_limit(const char *path)
{
    char text[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0 || text[0] < '0' || text[0] > '9')
        return NO_LIMIT;
    text[n] = '\0';
    return strtoull(text, NULL, 10);
}

/* The smallest limit on the way from our cgroup up to the root: a limit set on a
 * parent binds us too. v1 reports "no limit" as a huge number, v2 as "max". */
static uint64_t lowest_limit(const char *mount, const char *cgroup, const char *file)
{
    char path[PATH_MAX];
    uint64_t lowest = NO_LIMIT;
    int len = snprintf(path, sizeof path, "%s%s", mount, cgroup);
    if (len < 0 || (size_t)len >= sizeof path)
        return NO_LIMIT;
    for (;;) {
        size_t end = strlen(path);
        while (end > strlen(mount) && path[end - 1] == '/')
            path[--end] = '\0';
        char file_path[PATH_MAX + 32];
        snprintf(file_path, sizeof file_path, "%s/%s", path, file);
        uint64_t limit = read_limit(file_path);
        if (limit < lowest)
            lowest = limit;
        char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) < strlen(mount))
            return lowest;
        *slash = '\0';
    }
}

/* Our memory cgroup's limit from /proc/self/cgroup: the "memory" line on v1, the
 * "0::" line on v2. */
static uint64_t cgroup_memory_limit(void)
{
    char text[4096];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return NO_LIMIT;
    text[n] = '\0';
    uint64_t limit = NO_LIMIT;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *controllers = strchr(line, ':');
        char *path = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!path)
            continue;
        *path++ = '\0';
        controllers++;
        uint64_t found = NO_LIMIT;
        if (!strcmp(controllers, "memory") || strstr(controllers, "memory,") ||
            strstr(controllers, ",memory"))
            found = lowest_limit("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes");
        else if (controllers[0] == '\0')
            found = lowest_limit("/sys/fs/cgroup", path, "memory.max");
        if (found < limit)
            limit = found;
    }
    return limit;
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : NO_LIMIT;
}

/* A quarter of what we may hold in memory: the rest stays for the program's anonymous
 * memory and clean cache while write-back catches up. */
static uint64_t default_budget(void)
{
    uint64_t limit = cgroup_memory_limit(), ram = physical_memory();
    if (ram < limit)
        limit = ram;
    if (limit == NO_LIMIT)
        return 0;
    return limit / 4 > MIN_BUDGET ? limit / 4 : MIN_BUDGET;
}

static uint64_t compute_budget(void)
{
    const char *text = getenv("BIGMAAC_DIRTY_BUDGET");
    size_t value;
    if (text && text[0]) {
        if (bm_parse_size(text, &value))
            return value;
        uint64_t fallback = default_budget();
        bm_warn("BIGMAAC_DIRTY_BUDGET=%s is not a size; using %llu MiB", text,
                (unsigned long long)(fallback >> 20));
        return fallback;
    }
    return default_budget();
}

/* First called when the segment is created, before the control thread starts: the
 * only two callers never race. */
uint64_t bm_dirty_budget(void)
{
    if (!budget_known) {
        budget = compute_budget();
        budget_known = true;
    }
    return budget;
}

/* ------------------------------------------------------------------ the check */

static void note_peak(uint64_t dirty)
{
    uint64_t peak = __atomic_load_n(&bm_counters.dirty_peak, __ATOMIC_RELAXED);
    if (dirty > peak)
        __atomic_store_n(&bm_counters.dirty_peak, dirty, __ATOMIC_RELAXED);
}

struct dirty_sum {
    uint64_t dirty;
    bool known;
};

static void add_file_dirty(int fd, void *arg)
{
    struct dirty_sum *sum = arg;
    uint64_t cached, dirty;
    if (bm_file_cachestat(fd, 0, 0, &cached, &dirty))
        sum->dirty += dirty;
    else
        sum->known = false;
}

/* Runs of address space holding live data, between freed regions: before a fork, only
 * the recycling cache (at most a few dozen entries) breaks them. */
#define MAX_RUNS 64

struct run {
    uintptr_t addr;
    size_t len;
};

static void sync_runs(const struct run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sync_file_range(bm_swap.fd, bm_space_offset(runs[i].addr), (off_t)runs[i].len,
                        SYNC_FILE_RANGE_WRITE);
}

/* Starts write-back of live data only. A freed region kept with its data for reuse
 * (recycle.c) is dead: it is punched unwritten within a second, and a write-back over
 * the whole file would write it for nothing. (Free fries inside live chunks are purged
 * first: check_files.) Neighbouring live regions share one call:
 * the gaps between them are holes, which cost nothing. Before a fork the calls run
 * after bm_lock is released (the one swap file stays open); after, region by region
 * under it, since a region's chunks may be on several files (cow.c). */
static void start_live_write_back(void)
{
    struct run runs[MAX_RUNS];
    size_t n = 0;
    bool joined = false;
    pthread_mutex_lock(&bm_lock);
    bool split = bm_backing_split();
    for (size_t i = 0; i < bm_space.count; i++) {
        const struct bm_region *r = &bm_space.regions[i];
        if (!bm_region_is_own_live(r)) {
            joined = false;
            continue;
        }
        if (split) {
            bm_backing_sync(r->addr, r->len, SYNC_FILE_RANGE_WRITE);
            continue;
        }
        if (joined) {
            runs[n - 1].len = r->addr + r->len - runs[n - 1].addr;
            continue;
        }
        if (n == MAX_RUNS) { /* not expected before a fork: flush what we have */
            sync_runs(runs, n);
            n = 0;
        }
        runs[n++] = (struct run){r->addr, r->len};
        joined = true;
    }
    pthread_mutex_unlock(&bm_lock);
    sync_runs(runs, n);
}

/* Every backing file counts: after a fork, chunks not yet copied stay on older files
 * (cow.c), and their dirty pages weigh on the cgroup like any. */
static void check_files(uint64_t limit)
{
    struct dirty_sum sum = {0, true};
    bool lock = bm_backing_split(); /* files open and close under bm_lock after a fork */
    if (lock)
        pthread_mutex_lock(&bm_lock);
    bm_backing_each_file(add_file_dirty, &sum);
    if (lock)
        pthread_mutex_unlock(&bm_lock);
    if (sum.known)
        note_peak(sum.dirty);
    if (!sum.known || sum.dirty > limit / 2) {
        bm_fry_purge(true); /* free fries and idle chunks are dead: punched, not written */
        start_live_write_back();
        bm_count(&bm_counters.budget_writebacks, 1);
    }
}

long bm_dirty_tick(void)
{
    uint64_t limit = bm_dirty_budget();
    if (limit == 0 || __atomic_load_n(&bm_counters.disk_reserved, __ATOMIC_RELAXED) <= limit)
        return 0;
    check_files(limit);
    return CHECK_INTERVAL_NS;
}
