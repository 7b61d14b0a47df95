/* segment.c: this process's stats segment (layout in bigmaac_segment.h).
 *
 * Created at the first big request (served from disk, from RAM, or failed: fall-backs
 * and failures are worth seeing), never by processes that make none: the
 * file is filled under "<pid>.seg.tmp" and renamed, so a reader never sees a half-made
 * header or identity. Counters and the allocation table are written only by the
 * control thread, under stats.seq (odd while writing), and so is the residency section,
 * under its own residency.seq, when asked for. The mapping is MADV_DONTFORK:
 * a forked child cannot write into its parent's segment. A file removed by someone else
 * is recreated by the control thread within a second.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { SEG_NONE, SEG_CREATING, SEG_READY, SEG_FAILED };

static struct {
    int state;
    struct bigmaac_segment *map;
    int fd;                 /* kept open to notice when the file is removed */
    pid_t pid;
    bool restore_failed;
    char path[PATH_MAX];
} seg = {.fd = -1};

/* The control thread's private copy of the table before it is published. */
static struct bigmaac_allocation table[BIGMAAC_TABLE_SLOTS];

struct bigmaac_segment *bm_segment_get(void)
{
    return __atomic_load_n(&seg.state, __ATOMIC_ACQUIRE) == SEG_READY
               ? __atomic_load_n(&seg.map, __ATOMIC_ACQUIRE)
               : NULL;
}

/* ------------------------------------------------------------------ creation */

/* A directory only we can write into: created 0700, refused if someone else owns it. */
static int open_private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        bm_warn("cannot create segment directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        bm_warn("cannot open segment directory %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        bm_warn("segment directory %s belongs to uid %d, not us; stats are not published", dir,
                (int)st.st_uid);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) && fchmod(fd, 0700) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void copy_string(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void read_command(char *dst, size_t size)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, dst, size - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0)
        n = 0;
    while (n > 0 && dst[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (dst[i] == '\0')
            dst[i] = ' ';
    dst[n] = '\0';
}

static void fill_identity(struct bigmaac_identity *id)
{
    id->pid = (int32_t)getpid();
    id->uid = (uint32_t)geteuid();
    id->start_time = bm_process_start_time(id->pid);
    id->created_ns = bm_now_ns();
    id->min_big_size = bm_config.min_big;
    id->min_fry_size = bm_config.min_fry;
    id->reserve_size = __atomic_load_n(&bm_space.size, __ATOMIC_RELAXED);
    id->swap_fs_magic = bm_swap.fs_magic;
    id->dirty_budget = bm_dirty_budget();
    id->flags = bm_swap.on_ram ? BIGMAAC_SWAP_ON_RAM : 0;
    copy_string(id->kernel_id, sizeof id->kernel_id, getenv("BIGMAAC_KERNEL_ID"));
    copy_string(id->label, sizeof id->label, getenv("BIGMAAC_LABEL"));
    copy_string(id->swap_dir, sizeof id->swap_dir, bm_config.swap_dir);
    copy_string(id->swap_fs, sizeof id->swap_fs, bm_swap.fs_name);
    read_command(id->command, sizeof id->command);
}

static void fill_header(struct bigmaac_segment_header *header)
{
    header->version = BIGMAAC_SEGMENT_VERSION;
    header->header_size = sizeof *header;
    header->segment_size = sizeof(struct bigmaac_segment);
    header->table_slots = BIGMAAC_TABLE_SLOTS;
    /* Magic last: a file with a magic has the rest. */
    __atomic_store_n(&header->magic, BIGMAAC_SEGMENT_MAGIC, __ATOMIC_RELEASE);
}

/* Zeros written for real, where fallocate is not supported: blocks allocated or an error,
 * never a hole. */
static bool write_zeros(int fd, size_t size)
{
    static const char zeros[4096];
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof zeros ? size - done : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        done += (size_t)w;
    }
    return true;
}

/* Space for the whole file up front, or no segment: /dev/shm is tmpfs, where a write into
 * a hole that cannot be backed (a full /dev/shm) would be a SIGBUS in the program. */
static struct bigmaac_segment *map_new_file(int fd)
{
    size_t size = sizeof(struct bigmaac_segment);
    if (fallocate(fd, 0, 0, (off_t)size) != 0 &&
        (errno != EOPNOTSUPP || !write_zeros(fd, size)))
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_DONTFORK);
    return p;
}

static bool create(void)
{
    char dir[PATH_MAX - 64], temporary[64], final[64];
    if (bigmaac_segment_dir(dir, sizeof dir) != BIGMAAC_OK)
        return false;
    int dirfd = open_private_dir(dir);
    if (dirfd < 0)
        return false;
    pid_t pid = getpid();
    snprintf(temporary, sizeof temporary, "%d" BIGMAAC_SEGMENT_SUFFIX ".tmp", (int)pid);
    snprintf(final, sizeof final, "%d" BIGMAAC_SEGMENT_SUFFIX, (int)pid);
    int fd = openat(dirfd, temporary, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct bigmaac_segment *map = fd >= 0 ? map_new_file(fd) : NULL;
    if (map) {
        fill_identity(&map->identity);
        fill_header(&map->header);
    }
    bool ok = map && renameat(dirfd, temporary, dirfd, final) == 0;
    if (!ok) {
        bm_warn("cannot create stats segment in %s: %s", dir, strerror(errno));
        unlinkat(dirfd, temporary, 0);
        if (map)
            munmap(map, sizeof *map);
    }
    if (fd >= 0 && !ok)
        close(fd);
    close(dirfd);
    if (ok) {
        seg.fd = fd;
        seg.pid = pid;
        snprintf(seg.path, sizeof seg.path, "%s/%s", dir, final);
        __atomic_store_n(&seg.map, map, __ATOMIC_RELEASE);
    }
    return ok;
}

/* Control thread: someone removed our file (rm -rf of the segment dir, an overeager
 * clean-up): publish again under a new file. The old mapping stays: other threads may
 * still ring its doorbell. Tried once per removal that fails, so no warning storm. */
/* Held while the file is restored or removed at exit: the control thread still runs
 * during exit's destructors, and must not bring back the file they just removed. */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static bool exiting;

void bm_segment_restore_if_removed(void)
{
    struct stat st;
    pthread_mutex_lock(&file_lock);
    if (!exiting && bm_segment_get() && !seg.restore_failed && fstat(seg.fd, &st) == 0 &&
        st.st_nlink == 0) {
        int old_fd = seg.fd;
        if (create())
            close(old_fd);
        else
            seg.restore_failed = true;
    }
    pthread_mutex_unlock(&file_lock);
}

void bm_segment_ensure(void)
{
    int state = __atomic_load_n(&seg.state, __ATOMIC_ACQUIRE);
    if (likely(state != SEG_NONE))
        return;
    if (!__atomic_compare_exchange_n(&seg.state, &state, SEG_CREATING, 0, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE))
        return;
    int saved = errno;
    bool ok = create();
    __atomic_store_n(&seg.state, ok ? SEG_READY : SEG_FAILED, __ATOMIC_RELEASE);
    if (ok && !bm_control_start())
        bm_warn("cannot start the control thread; stats are not updated");
    errno = saved;
}

/* ------------------------------------------------------------------ publication */

static long futex_wake(uint32_t *word)
{
    return syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Set while the control thread sleeps on the doorbell (or is about to). Only then does a
 * ring need the wake-up system call: otherwise the thread is working or pausing, and its
 * next wait sees the doorbell moved and returns at once. Both sides are sequentially
 * consistent (store, then load the other's word), so a ring never falls between the
 * thread's last look and its sleep. Requesters in other processes always wake. */
static int control_waiting;

void bm_segment_ring(void)
{
    struct bigmaac_segment *map = bm_segment_get();
    if (!map)
        return;
    __atomic_add_fetch(&map->control.doorbell, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&control_waiting, __ATOMIC_SEQ_CST))
        futex_wake(&map->control.doorbell);
}

void bm_segment_wait(uint32_t seen, long timeout_ns)
{
    struct bigmaac_segment *map = bm_segment_get();
    if (!map)
        return;
    struct timespec timeout = {.tv_sec = timeout_ns / 1000000000L,
                               .tv_nsec = timeout_ns % 1000000000L};
    __atomic_store_n(&control_waiting, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    syscall(SYS_futex, &map->control.doorbell, FUTEX_WAIT, seen, &timeout, NULL, 0);
    __atomic_store_n(&control_waiting, 0, __ATOMIC_RELAXED);
}

/* Min-heap on size, so the table keeps the largest regions seen. */
static void sift_down(struct bigmaac_allocation *heap, size_t n, size_t i)
{
    for (;;) {
        size_t smallest = i, left = 2 * i + 1, right = left + 1;
        if (left < n && heap[left].size < heap[smallest].size)
            smallest = left;
        if (right < n && heap[right].size < heap[smallest].size)
            smallest = right;
        if (smallest == i)
            return;
        struct bigmaac_allocation t = heap[i];
        heap[i] = heap[smallest];
        heap[smallest] = t;
        i = smallest;
    }
}

static void heap_offer(struct bigmaac_allocation *heap, size_t *n, const struct bm_region *r)
{
    struct bigmaac_allocation entry = {
        .address = r->addr, .size = r->len, .created_ns = r->created_ns, .tier = BIGMAAC_TIER_BIG};
    if (r->flags & BM_REGION_FRIES) /* one entry per fries chunk: its blocks out */
        entry.size = bm_fry_chunk_bytes(r->addr), entry.tier = BIGMAAC_TIER_FRY;
    if (*n < BIGMAAC_TABLE_SLOTS) {
        heap[(*n)++] = entry;
        if (*n == BIGMAAC_TABLE_SLOTS)
            for (size_t i = *n / 2; i-- > 0;)
                sift_down(heap, *n, i);
    } else if (entry.size > heap[0].size) {
        heap[0] = entry;
        sift_down(heap, *n, 0);
    }
}

/* Largest first: heapify, then pop the smallest to the end. */
static void sort_descending(struct bigmaac_allocation *heap, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(heap, n, i);
    for (size_t end = n; end > 1; end--) {
        struct bigmaac_allocation t = heap[0];
        heap[0] = heap[end - 1];
        heap[end - 1] = t;
        sift_down(heap, end - 1, 0);
    }
}

/* The counters are copied under bm_lock too, where the big path changes them along with
 * the regions: a publication's table and big counters describe the same moment. */
static size_t gather_table(uint64_t *total, struct bigmaac_counters *counters)
{
    size_t n = 0;
    *total = 0;
    pthread_mutex_lock(&bm_lock);
    bm_stats_copy(counters);
    for (size_t i = 0; i < bm_space.count; i++) {
        if (!bm_region_is_own_live(&bm_space.regions[i]) ||
            ((bm_space.regions[i].flags & BM_REGION_FRIES) &&
             !bm_fry_chunk_bytes(bm_space.regions[i].addr)))
            continue; /* an empty fries chunk holds nothing */
        heap_offer(table, &n, &bm_space.regions[i]);
        (*total)++;
    }
    pthread_mutex_unlock(&bm_lock);
    sort_descending(table, n);
    return n;
}

void bm_segment_publish(void)
{
    struct bigmaac_segment *map = bm_segment_get();
    if (!map)
        return;
    uint64_t total;
    struct bigmaac_counters counters;
    size_t n = gather_table(&total, &counters);
    uint64_t now = bm_now_ns();

    struct bigmaac_stats *stats = &map->stats;
    uint64_t seq = stats->seq;
    __atomic_store_n(&stats->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    bool changed = memcmp(&stats->counters, &counters, sizeof counters) != 0 ||
                   stats->table_total != total;
    if (changed || stats->updated_ns == 0)
        stats->updated_ns = now;
    stats->heartbeat_ns = now;
    stats->counters = counters;
    stats->table_count = (uint32_t)n;
    stats->table_total = total;
    memcpy(stats->table, table, n * sizeof table[0]);
    memset(stats->table + n, 0, (BIGMAAC_TABLE_SLOTS - n) * sizeof table[0]);
    __atomic_store_n(&stats->seq, seq + 2, __ATOMIC_RELEASE);
}

size_t bm_segment_table(const struct bigmaac_allocation **out)
{
    struct bigmaac_segment *map = bm_segment_get();
    *out = table;
    return map ? map->stats.table_count : 0;
}

/* Same seqlock discipline as the stats, on the residency section's own sequence. */
void bm_segment_publish_residency(const struct bigmaac_residency *residency)
{
    struct bigmaac_segment *map = bm_segment_get();
    if (!map)
        return;
    struct bigmaac_residency *r = &map->residency;
    uint64_t seq = r->seq;
    __atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    r->request_id = residency->request_id;
    r->measured_ns = residency->measured_ns;
    r->duration_ns = residency->duration_ns;
    r->resident = residency->resident;
    r->dirty = residency->dirty;
    r->flags = residency->flags;
    r->count = residency->count;
    r->total = residency->total;
    memcpy(r->table, residency->table, residency->count * sizeof r->table[0]);
    memset(r->table + residency->count, 0,
           (BIGMAAC_TABLE_SLOTS - residency->count) * sizeof r->table[0]);
    __atomic_store_n(&r->seq, seq + 2, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ fork and exit */

/* The mapping is not inherited (MADV_DONTFORK): forget it, make ours on first use. */
void bm_segment_forget_after_fork(void)
{
    seg.map = NULL;
    control_waiting = 0; /* the parent's control thread is not ours */
    if (seg.fd >= 0)
        close(seg.fd); /* the parent's file */
    seg.fd = -1;
    seg.restore_failed = false;
    seg.pid = 0;
    seg.path[0] = '\0';
    pthread_mutex_init(&file_lock, NULL); /* the parent's control thread may hold it */
    __atomic_store_n(&seg.state, SEG_NONE, __ATOMIC_RELEASE);
}

/* exec() keeps the pid and the start time but runs no code of the old image: a segment
 * named after our pid that we did not create is the previous image's. Remove it, so
 * readers do not take it for ours. One unlink at start-up, nothing if there is none. */
void bm_segment_remove_previous_image(void)
{
    char dir[PATH_MAX - 64], path[PATH_MAX];
    if (bm_segment_get() || bigmaac_segment_dir(dir, sizeof dir) != BIGMAAC_OK)
        return;
    int saved = errno;
    snprintf(path, sizeof path, "%s/%d" BIGMAAC_SEGMENT_SUFFIX, dir, (int)getpid());
    unlink(path);
    errno = saved;
}

__attribute__((destructor)) static void remove_at_exit(void)
{
    pthread_mutex_lock(&file_lock);
    exiting = true;
    if (bm_segment_get() && seg.pid == getpid())
        unlink(seg.path);
    pthread_mutex_unlock(&file_lock);
}
