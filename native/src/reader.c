/* reader.c: the reader side of the stats segment (see bigmaac_segment.h, docs/segment.md).
 *
 * Depends on nothing else in the library: the Node addon compiles this file alone.
 * Snapshots use pread rather than a mapping, so a file truncated under our feet gives
 * an error instead of SIGBUS in the reader's process. Only page-out requests map the
 * control page, which only the owner (or root) can open for writing.
 */
#define _GNU_SOURCE
#include "bigmaac_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_RETRIES 64
#define POLL_SLICE_MS 100
#define HEARTBEAT_TIMEOUT_NS (UINT64_C(5) * 1000000000u)

_Static_assert(offsetof(struct bigmaac_segment, control) + sizeof(struct bigmaac_control) <= 4096,
               "the control block must fit in the segment's first page");
_Static_assert(offsetof(struct bigmaac_segment, stats) % 8 == 0, "stats must be aligned");

/* ------------------------------------------------------------------ messages */

const char *bigmaac_strerror(int status)
{
    switch (status) {
    case BIGMAAC_OK: return "success";
    case BIGMAAC_IN_PROGRESS: return "page-out in progress";
    case BIGMAAC_ERR_SYSTEM: return "system call failed";
    case BIGMAAC_ERR_NO_PROCESS: return "no BigMaac process with this pid";
    case BIGMAAC_ERR_PERMISSION: return "permission denied: the segment belongs to another user";
    case BIGMAAC_ERR_TRUNCATED: return "segment file is truncated";
    case BIGMAAC_ERR_FOREIGN: return "not a BigMaac segment";
    case BIGMAAC_ERR_VERSION: return "segment of another layout version";
    case BIGMAAC_ERR_SIZE: return "segment size does not match its version";
    case BIGMAAC_ERR_TORN: return "segment kept changing while being read";
    case BIGMAAC_ERR_STALE: return "segment of a dead process (removed)";
    case BIGMAAC_ERR_BUSY: return "a page-out is already running";
    case BIGMAAC_ERR_CANCELLED: return "page-out cancelled";
    case BIGMAAC_ERR_TIMEOUT: return "the process did not answer in time";
    case BIGMAAC_ERR_INVALID: return "invalid argument";
    case BIGMAAC_ERR_UNSAFE_DIR: return "segment directory is not a private directory of this user";
    case BIGMAAC_ERR_NAME_TOO_LONG: return "path too long";
    case BIGMAAC_ERR_RESULT_LOST:
        return "the page-out finished, but a later request's result replaced its own";
    default: return "unknown BigMaac status";
    }
}

/* ------------------------------------------------------------------ paths */

/* snprintf's result as a status: the text must fit the buffer whole. */
static int fitted(int len, size_t size)
{
    if (len < 0)
        return BIGMAAC_ERR_SYSTEM;
    return (size_t)len < size ? BIGMAAC_OK : BIGMAAC_ERR_NAME_TOO_LONG;
}

int bigmaac_segment_dir(char *buf, size_t size)
{
    if (!buf || size == 0)
        return BIGMAAC_ERR_INVALID;
    const char *env = getenv("BIGMAAC_SEGMENT_DIR");
    if (env && env[0])
        return fitted(snprintf(buf, size, "%s", env), size);
    struct stat st;
    const char *base = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) ? "/dev/shm" : "/tmp";
    return fitted(snprintf(buf, size, "%s/bigmaac-%ld", base, (long)geteuid()), size);
}

static int open_error(void)
{
    if (errno == ENOENT)
        return BIGMAAC_ERR_NO_PROCESS;
    if (errno == EACCES || errno == EPERM)
        return BIGMAAC_ERR_PERMISSION;
    if (errno == ELOOP)
        return BIGMAAC_ERR_UNSAFE_DIR;
    return BIGMAAC_ERR_SYSTEM;
}

/* A directory we may trust, opened: a real directory (not a symlink) that nobody else
 * can write into. Another user's directory is theirs to read (root reads any). Every
 * file is then opened relative to this descriptor, so the directory checked is the one
 * used, even if the path is swapped for a symlink right after the check. flags add
 * O_PATH (no read permission needed) or O_RDONLY (to list it). */
static int open_dir(const char *dir, int flags, int *fd_out)
{
    int fd = open(dir, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR ? BIGMAAC_ERR_UNSAFE_DIR : open_error();
    struct stat st;
    int rc = BIGMAAC_OK;
    if (fstat(fd, &st) != 0)
        rc = BIGMAAC_ERR_SYSTEM;
    else if (!S_ISDIR(st.st_mode) || (st.st_mode & 022))
        rc = BIGMAAC_ERR_UNSAFE_DIR;
    else if (st.st_uid != geteuid() && geteuid() != 0)
        rc = BIGMAAC_ERR_PERMISSION;
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return BIGMAAC_OK;
}

/* The caller's directory, or the default one resolved into buf. */
static int resolve_dir(const char **dir, char *buf, size_t size)
{
    if (*dir)
        return BIGMAAC_OK;
    *dir = buf;
    return bigmaac_segment_dir(buf, size);
}

/* The name of pid's segment in its directory. */
static int segment_name(int32_t pid, char *buf, size_t size)
{
    return fitted(snprintf(buf, size, "%ld" BIGMAAC_SEGMENT_SUFFIX, (long)pid), size);
}

/* dir (NULL: the default one), checked and opened with O_PATH; the caller closes it. */
static int open_segment_dir(const char *dir, int *dirfd)
{
    char resolved[PATH_MAX];
    int rc = resolve_dir(&dir, resolved, sizeof resolved);
    return rc ? rc : open_dir(dir, O_PATH, dirfd);
}

/* ------------------------------------------------------------------ liveness */

/* Field 22 of /proc/PID/stat; 0 when the process does not exist. Shared with the
 * library (segment.c), hence not static; the addon simply does not use it. */
uint64_t bm_process_start_time(int32_t pid);
uint64_t bm_process_start_time(int32_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count after the last ')'. */
    char *p = strrchr(text, ')');
    if (!p || p[1] != ' ')
        return 0;
    /* A zombie is dead for our purposes: it holds no memory any more. */
    if (p[2] == 'Z' || p[2] == 'X')
        return 0;
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

int bigmaac_check_alive(const struct bigmaac_identity *identity)
{
    if (!identity || identity->pid <= 0)
        return BIGMAAC_ERR_INVALID;
    uint64_t start = bm_process_start_time(identity->pid);
    return start != 0 && start == identity->start_time ? BIGMAAC_OK : BIGMAAC_ERR_STALE;
}

/* ------------------------------------------------------------------ snapshots */

static int read_exact(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return BIGMAAC_ERR_SYSTEM;
        if (n == 0)
            return BIGMAAC_ERR_TRUNCATED;
        done += (size_t)n;
    }
    return BIGMAAC_OK;
}

/* Checks the header in the order a reader should report problems. */
static int validate(int fd, struct stat *st)
{
    if (fstat(fd, st) != 0)
        return BIGMAAC_ERR_SYSTEM;
    if (!S_ISREG(st->st_mode))
        return BIGMAAC_ERR_FOREIGN;
    struct bigmaac_segment_header header;
    memset(&header, 0, sizeof header);
    size_t have = (size_t)st->st_size < sizeof header ? (size_t)st->st_size : sizeof header;
    if (have < sizeof header.magic)
        return BIGMAAC_ERR_TRUNCATED;
    int rc = read_exact(fd, &header, have, 0);
    if (rc)
        return rc;
    if (header.magic != BIGMAAC_SEGMENT_MAGIC)
        return BIGMAAC_ERR_FOREIGN;
    if (have < sizeof header)
        return BIGMAAC_ERR_TRUNCATED;
    if (header.version != BIGMAAC_SEGMENT_VERSION)
        return BIGMAAC_ERR_VERSION;
    if (header.segment_size != sizeof(struct bigmaac_segment) ||
        header.header_size != sizeof header || header.table_slots != BIGMAAC_TABLE_SLOTS)
        return BIGMAAC_ERR_SIZE;
    if ((uint64_t)st->st_size < header.segment_size)
        return BIGMAAC_ERR_TRUNCATED;
    return BIGMAAC_OK;
}

static int read_seq(int fd, uint64_t *seq)
{
    return read_exact(fd, seq, sizeof *seq, offsetof(struct bigmaac_segment, stats.seq));
}

#define TERMINATE(field) ((field)[sizeof(field) - 1] = '\0')

/* What a writer (or whoever else can write the file) put there is not trusted: counts
 * are clamped to the table and strings end within their fields, so a caller can index
 * and print without checking. */
static void clamp_snapshot(struct bigmaac_segment *s)
{
    if (s->stats.table_count > BIGMAAC_TABLE_SLOTS)
        s->stats.table_count = BIGMAAC_TABLE_SLOTS;
    TERMINATE(s->identity.kernel_id);
    TERMINATE(s->identity.label);
    TERMINATE(s->identity.swap_dir);
    TERMINATE(s->identity.swap_fs);
    TERMINATE(s->identity.command);
}

/* Between seqlock attempts: retry at once a few times, then yield, then sleep (50 us
 * doubling to 3.2 ms, about 100 ms over all attempts): on a busy machine the writer may
 * be preempted half-way through a publication for a whole time slice, which no number of
 * quick retries outlasts. */
static void back_off(int attempt)
{
    if (attempt < 8)
        return;
    if (attempt < 16) {
        sched_yield();
        return;
    }
    int shift = attempt - 16 < 6 ? attempt - 16 : 6;
    struct timespec pause = {0, 50000L << shift};
    nanosleep(&pause, NULL);
}

/* Seqlock read: a stable even sequence before and after the copy. Each pread is a
 * system call, which orders the reads against the writer's stores. The copy stops at
 * the end of the stats: the residency section has its own sequence (bigmaac_residency
 * reads it), and a shorter copy is likelier to fit between two publications. */
static int copy_consistent(int fd, struct bigmaac_segment *out)
{
    const size_t covered = offsetof(struct bigmaac_segment, residency);
    memset(&out->residency, 0, sizeof out->residency);
    for (int attempt = 0; attempt < SNAPSHOT_RETRIES; attempt++) {
        uint64_t before, after;
        int rc = read_seq(fd, &before);
        if (rc == BIGMAAC_OK && !(before & 1))
            rc = read_exact(fd, out, covered, 0);
        else if (rc == BIGMAAC_OK)
            rc = BIGMAAC_ERR_TORN;
        if (rc == BIGMAAC_OK)
            rc = read_seq(fd, &after);
        if (rc == BIGMAAC_OK && after == before && out->stats.seq == before) {
            clamp_snapshot(out);
            return BIGMAAC_OK;
        }
        if (rc != BIGMAAC_OK && rc != BIGMAAC_ERR_TORN)
            return rc;
        back_off(attempt);
    }
    return BIGMAAC_ERR_TORN;
}

static int snapshot_fd(int fd, struct bigmaac_segment *out, struct stat *st)
{
    int rc = validate(fd, st);
    return rc ? rc : copy_consistent(fd, out);
}

int bigmaac_snapshot_path(const char *path, struct bigmaac_segment *out)
{
    if (!path || !out)
        return BIGMAAC_ERR_INVALID;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return open_error();
    struct stat st;
    int rc = snapshot_fd(fd, out, &st);
    close(fd);
    return rc;
}

/* Unlink name only if it still names the file we judged stale: a new process that got
 * the same pid may have renamed its own segment onto the name meanwhile. */
static void unlink_if_same(int dirfd, const char *name, const struct stat *judged)
{
    struct stat now;
    if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == judged->st_ino &&
        now.st_dev == judged->st_dev)
        unlinkat(dirfd, name, 0);
}

/* The identity never changes after creation, so liveness is judged before the seqlock
 * copy: a writer killed in the middle of a publication leaves an odd sequence that
 * would read as TORN for ever, yet its segment is stale and must go. */
static int snapshot_checked(int dirfd, int32_t pid, struct bigmaac_segment *out)
{
    char name[64];
    int rc = segment_name(pid, name, sizeof name);
    if (rc)
        return rc;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return open_error();
    struct stat st;
    rc = validate(fd, &st);
    if (!rc)
        rc = read_exact(fd, &out->identity, sizeof out->identity,
                        offsetof(struct bigmaac_segment, identity));
    if (!rc && out->identity.pid != pid)
        rc = BIGMAAC_ERR_FOREIGN;
    if (!rc && bigmaac_check_alive(&out->identity) != BIGMAAC_OK) {
        unlink_if_same(dirfd, name, &st);
        rc = BIGMAAC_ERR_STALE;
    }
    if (!rc)
        rc = copy_consistent(fd, out);
    close(fd);
    return rc;
}

int bigmaac_snapshot(const char *dir, int32_t pid, struct bigmaac_segment *out)
{
    if (pid <= 0 || !out)
        return BIGMAAC_ERR_INVALID;
    int dirfd;
    int rc = open_segment_dir(dir, &dirfd);
    if (rc)
        return rc;
    rc = snapshot_checked(dirfd, pid, out);
    close(dirfd);
    return rc;
}

int bigmaac_remove_if_stale(const char *dir, int32_t pid)
{
    struct bigmaac_segment *copy = malloc(sizeof *copy);
    if (!copy)
        return BIGMAAC_ERR_SYSTEM;
    int rc = bigmaac_snapshot(dir, pid, copy);
    free(copy);
    return rc;
}

/* ------------------------------------------------------------------ listing */

/* "<digits>.seg" -> pid, or 0. */
static int32_t parse_segment_name(const char *name, const char *suffix)
{
    char *end;
    errno = 0;
    long pid = strtol(name, &end, 10);
    if (end == name || errno || pid <= 0 || pid > INT32_MAX || strcmp(end, suffix) != 0)
        return 0;
    return (int32_t)pid;
}

/* A writer that died between creating "<pid>.seg.tmp" and renaming it leaves the
 * temporary file behind; remove it once its pid is gone. */
static void remove_dead_temporary(int dirfd, const char *name)
{
    int32_t pid = parse_segment_name(name, BIGMAAC_SEGMENT_SUFFIX ".tmp");
    if (pid > 0 && bm_process_start_time(pid) == 0)
        unlinkat(dirfd, name, 0);
}

static int compare_pids(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int bigmaac_list(const char *dir, int32_t *pids, size_t capacity, size_t *count)
{
    char resolved[PATH_MAX];
    if (!count || (capacity && !pids))
        return BIGMAAC_ERR_INVALID;
    *count = 0;
    int rc = resolve_dir(&dir, resolved, sizeof resolved);
    if (rc)
        return rc;
    int fd;
    rc = open_dir(dir, O_RDONLY, &fd);
    if (rc == BIGMAAC_ERR_NO_PROCESS)
        return BIGMAAC_OK; /* no directory yet: no process has made a big allocation */
    if (rc)
        return rc;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return BIGMAAC_ERR_SYSTEM;
    }
    struct bigmaac_segment *copy = malloc(sizeof *copy);
    if (!copy) {
        closedir(d);
        return BIGMAAC_ERR_SYSTEM;
    }
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        int32_t pid = parse_segment_name(entry->d_name, BIGMAAC_SEGMENT_SUFFIX);
        if (pid == 0) {
            remove_dead_temporary(fd, entry->d_name);
            continue;
        }
        if (snapshot_checked(fd, pid, copy) != BIGMAAC_OK)
            continue; /* stale ones are removed; foreign or unreadable ones skipped */
        if (*count < capacity)
            pids[*count] = pid;
        (*count)++;
    }
    closedir(d);
    free(copy);
    if (pids && capacity)
        qsort(pids, *count < capacity ? *count : capacity, sizeof *pids, compare_pids);
    return BIGMAAC_OK;
}

/* ------------------------------------------------------------------ page-out requests */

static long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout)
{
    return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

static struct bigmaac_control *control_of(struct bigmaac_pageout_request *req)
{
    return (struct bigmaac_control *)((char *)req->control +
                                      offsetof(struct bigmaac_segment, control));
}

static void ring(uint32_t *word)
{
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
    futex(word, FUTEX_WAKE, INT_MAX, NULL);
}

static int open_for_request(const char *dir, int32_t pid, struct bigmaac_pageout_request *req)
{
    char name[64];
    int dirfd;
    int rc = segment_name(pid, name, sizeof name);
    if (!rc)
        rc = open_segment_dir(dir, &dirfd);
    if (rc)
        return rc;
    int fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = open_error();
        close(dirfd);
        return rc;
    }
    struct stat st;
    struct bigmaac_identity identity;
    rc = validate(fd, &st);
    if (!rc)
        rc = read_exact(fd, &identity, sizeof identity, offsetof(struct bigmaac_segment, identity));
    if (!rc && identity.pid != pid)
        rc = BIGMAAC_ERR_FOREIGN;
    if (!rc && bigmaac_check_alive(&identity) != BIGMAAC_OK) {
        unlink_if_same(dirfd, name, &st);
        rc = BIGMAAC_ERR_STALE;
    }
    close(dirfd);
    if (rc) {
        close(fd);
        return rc;
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t end = offsetof(struct bigmaac_segment, control) + sizeof(struct bigmaac_control);
    req->map_size = (end + (size_t)page - 1) & ~((size_t)page - 1);
    req->control = mmap(NULL, req->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (req->control == MAP_FAILED) {
        req->control = NULL;
        close(fd);
        return BIGMAAC_ERR_SYSTEM;
    }
    req->fd = fd;
    req->pid = pid;
    req->start_time = identity.start_time;
    return BIGMAAC_OK;
}

int bigmaac_pageout_start(const char *dir, int32_t pid, struct bigmaac_pageout_request *req)
{
    if (!req || pid <= 0)
        return BIGMAAC_ERR_INVALID;
    memset(req, 0, sizeof *req);
    req->fd = -1;
    int rc = open_for_request(dir, pid, req);
    if (rc)
        return rc;
    struct bigmaac_control *control = control_of(req);
    /* Free slot: every earlier request has a result and the state says so. Claim it by
     * moving the state to QUEUED with a CAS, before the request exists: two requesters
     * cannot both win, and the control thread, which stores RUNNING and DONE only once
     * the request exists, is never overwritten by a late QUEUED. */
    uint64_t latest = __atomic_load_n(&control->request_id, __ATOMIC_ACQUIRE);
    uint64_t finished = __atomic_load_n(&control->result_id, __ATOMIC_ACQUIRE);
    uint32_t state = __atomic_load_n(&control->state, __ATOMIC_ACQUIRE);
    if (latest != finished ||
        (state != BIGMAAC_PAGEOUT_IDLE && state != BIGMAAC_PAGEOUT_DONE) ||
        !__atomic_compare_exchange_n(&control->state, &state, BIGMAAC_PAGEOUT_QUEUED, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        bigmaac_pageout_close(req);
        return BIGMAAC_ERR_BUSY;
    }
    req->request_id = __atomic_add_fetch(&control->request_id, 1, __ATOMIC_ACQ_REL);
    ring(&control->doorbell);
    return BIGMAAC_OK;
}

/* Copy the result fields under their small seqlock. */
static int read_result(struct bigmaac_control *control, struct bigmaac_pageout_status *status)
{
    for (int attempt = 0; attempt < SNAPSHOT_RETRIES; attempt++) {
        uint32_t before = __atomic_load_n(&control->result_seq, __ATOMIC_ACQUIRE);
        if (before & 1) {
            sched_yield();
            continue;
        }
        status->result = __atomic_load_n(&control->result_status, __ATOMIC_RELAXED);
        status->bytes_written = __atomic_load_n(&control->bytes_written, __ATOMIC_RELAXED);
        status->duration_ns = __atomic_load_n(&control->duration_ns, __ATOMIC_RELAXED);
        status->resident_before = __atomic_load_n(&control->resident_before, __ATOMIC_RELAXED);
        status->resident_after = __atomic_load_n(&control->resident_after, __ATOMIC_RELAXED);
        uint64_t id = __atomic_load_n(&control->result_id, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&control->result_seq, __ATOMIC_RELAXED) != before)
            continue;
        /* Ids only grow: a later one means a later request finished over ours. */
        return id == status->request_id ? BIGMAAC_OK : BIGMAAC_ERR_RESULT_LOST;
    }
    return BIGMAAC_ERR_TORN;
}

/* State letter of /proc/PID/stat: 'T' stopped by a signal, 't' by a debugger. */
static bool process_stopped(int32_t pid)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    char *p = strrchr(text, ')');
    return p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

/* A queued request is picked up at once by a working control thread, whose heartbeat
 * is at most a second old; a stopped process (SIGSTOP, debugger) lets it age. A running
 * page-out legitimately delays the heartbeat: then it counts only if the process is
 * stopped. */
static bool control_thread_alive(struct bigmaac_pageout_request *req)
{
    uint64_t heartbeat;
    if (read_exact(req->fd, &heartbeat, sizeof heartbeat,
                   offsetof(struct bigmaac_segment, stats.heartbeat_ns)) != BIGMAAC_OK)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    return now_ns < heartbeat + HEARTBEAT_TIMEOUT_NS;
}

int bigmaac_pageout_poll(struct bigmaac_pageout_request *req, struct bigmaac_pageout_status *status)
{
    if (!req || !req->control || !status)
        return BIGMAAC_ERR_INVALID;
    if (req->finished) { /* seen once: later requests may overwrite the result fields */
        *status = req->result;
        return BIGMAAC_OK;
    }
    struct bigmaac_control *control = control_of(req);
    memset(status, 0, sizeof *status);
    status->request_id = req->request_id;
    /* The ids first (acquire), then the progress words: the control thread zeroes those
     * before it publishes started_id, so they are never an earlier job's figures. */
    uint64_t finished = __atomic_load_n(&control->result_id, __ATOMIC_ACQUIRE);
    uint64_t started = __atomic_load_n(&control->started_id, __ATOMIC_ACQUIRE);
    status->bytes_done = __atomic_load_n(&control->bytes_done, __ATOMIC_RELAXED);
    status->bytes_total = __atomic_load_n(&control->bytes_total, __ATOMIC_RELAXED);
    if (finished >= req->request_id) {
        status->state = BIGMAAC_PAGEOUT_DONE;
        int rc = finished == req->request_id ? read_result(control, status)
                                             : BIGMAAC_ERR_RESULT_LOST;
        if (rc == BIGMAAC_OK) {
            status->bytes_done = status->result == 0 ? status->bytes_total : status->bytes_done;
            req->result = *status;
            req->finished = 1;
        }
        return rc;
    }
    status->state = started == req->request_id ? BIGMAAC_PAGEOUT_RUNNING : BIGMAAC_PAGEOUT_QUEUED;
    if (status->state == BIGMAAC_PAGEOUT_QUEUED)
        status->bytes_done = status->bytes_total = 0;
    struct bigmaac_identity who = {.pid = req->pid, .start_time = req->start_time};
    if (bigmaac_check_alive(&who) != BIGMAAC_OK)
        return BIGMAAC_ERR_NO_PROCESS;
    /* Queued with no heartbeat for 5 s: nobody serves it. Half-way, a long page-out holds
     * the heartbeat back legitimately: only a stopped process (SIGSTOP, a debugger) with
     * an old heartbeat times out. Either way the same 5 s of grace. */
    if (!control_thread_alive(req) &&
        (status->state == BIGMAAC_PAGEOUT_QUEUED || process_stopped(req->pid)))
        return BIGMAAC_ERR_TIMEOUT;
    return BIGMAAC_IN_PROGRESS;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int bigmaac_pageout_wait(struct bigmaac_pageout_request *req, int timeout_ms,
                         struct bigmaac_pageout_status *status)
{
    if (!req || !req->control || !status || timeout_ms < 0)
        return BIGMAAC_ERR_INVALID;
    struct bigmaac_control *control = control_of(req);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        /* Read the futex word before polling so a finish in between is not missed. */
        uint32_t seen = __atomic_load_n(&control->done, __ATOMIC_ACQUIRE);
        int rc = bigmaac_pageout_poll(req, status);
        uint64_t now = now_ms();
        if (rc != BIGMAAC_IN_PROGRESS || now >= deadline)
            return rc;
        uint64_t slice = deadline - now < POLL_SLICE_MS ? deadline - now : POLL_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        futex(&control->done, FUTEX_WAIT, seen, &ts);
    }
}

int bigmaac_pageout_cancel(struct bigmaac_pageout_request *req)
{
    if (!req || !req->control)
        return BIGMAAC_ERR_INVALID;
    struct bigmaac_control *control = control_of(req);
    __atomic_store_n(&control->cancel_id, req->request_id, __ATOMIC_RELEASE);
    ring(&control->doorbell);
    return BIGMAAC_OK;
}

void bigmaac_pageout_close(struct bigmaac_pageout_request *req)
{
    if (!req)
        return;
    if (req->control)
        munmap(req->control, req->map_size);
    if (req->fd >= 0)
        close(req->fd);
    req->control = NULL;
    req->fd = -1;
}

/* ------------------------------------------------------------------ residency requests */

static int read_residency(int fd, struct bigmaac_residency *out)
{
    const off_t at = offsetof(struct bigmaac_segment, residency);
    for (int attempt = 0; attempt < SNAPSHOT_RETRIES; attempt++) {
        uint64_t before, after;
        int rc = read_exact(fd, &before, sizeof before, at);
        if (rc == BIGMAAC_OK && !(before & 1))
            rc = read_exact(fd, out, sizeof *out, at);
        else if (rc == BIGMAAC_OK)
            rc = BIGMAAC_ERR_TORN;
        if (rc == BIGMAAC_OK)
            rc = read_exact(fd, &after, sizeof after, at);
        if (rc == BIGMAAC_OK && after == before && out->seq == before) {
            if (out->count > BIGMAAC_TABLE_SLOTS)
                out->count = BIGMAAC_TABLE_SLOTS;
            return BIGMAAC_OK;
        }
        if (rc != BIGMAAC_OK && rc != BIGMAAC_ERR_TORN)
            return rc;
        back_off(attempt);
    }
    return BIGMAAC_ERR_TORN;
}

/* Waits until the control thread answered request id (or a later one). */
static int wait_residency(struct bigmaac_pageout_request *req, uint64_t id, int timeout_ms)
{
    struct bigmaac_control *control = control_of(req);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint32_t seen = __atomic_load_n(&control->residency_ready, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&control->residency_done, __ATOMIC_ACQUIRE) >= id)
            return BIGMAAC_OK;
        struct bigmaac_identity who = {.pid = req->pid, .start_time = req->start_time};
        if (bigmaac_check_alive(&who) != BIGMAAC_OK)
            return BIGMAAC_ERR_NO_PROCESS;
        uint64_t now = now_ms();
        if (now >= deadline)
            return BIGMAAC_ERR_TIMEOUT;
        uint64_t slice = deadline - now < POLL_SLICE_MS ? deadline - now : POLL_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        futex(&control->residency_ready, FUTEX_WAIT, seen, &ts);
    }
}

int bigmaac_residency(const char *dir, int32_t pid, int timeout_ms, struct bigmaac_residency *out)
{
    if (pid <= 0 || !out || timeout_ms < 0)
        return BIGMAAC_ERR_INVALID;
    struct bigmaac_pageout_request req;
    memset(&req, 0, sizeof req);
    req.fd = -1;
    int rc = open_for_request(dir, pid, &req);
    if (rc)
        return rc;
    struct bigmaac_control *control = control_of(&req);
    uint64_t id = __atomic_add_fetch(&control->residency_request, 1, __ATOMIC_ACQ_REL);
    ring(&control->doorbell);
    rc = wait_residency(&req, id, timeout_ms);
    if (rc == BIGMAAC_OK)
        rc = read_residency(req.fd, out);
    bigmaac_pageout_close(&req);
    return rc;
}
