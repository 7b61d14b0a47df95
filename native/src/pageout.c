/* pageout.c: bulk page-out of disk-backed memory, and honest residency.
 *
 * Order (shared/notes/linux-memory.md): while still mapped, sync_file_range(WAIT_BEFORE|
 * WRITE|WAIT_AFTER) writes the dirty pages back; then MADV_PAGEOUT drops the now-clean
 * mapped pages and POSIX_FADV_DONTNEED the clean page cache no longer mapped. Work goes
 * in chunks, each under bm_lock (so a region cannot be freed mid-chunk), releasing the
 * lock in between so the program keeps allocating; cancellation is checked per chunk.
 *
 * Residency is page-cache residency of our swap file ranges, from cachestat(2) (Linux
 * 6.5+), which also counts dirty pages; without it, mincore over our regions (dirty
 * then unknown, reported 0). This is neither RSS (smaps misses unmapped dirty cache)
 * nor the cgroup's charge, but it is exactly the memory a page-out can give back.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

#define CHUNK (64 * BM_MIB)
#define MINCORE_PAGES 65536

struct cachestat_range { uint64_t off, len; };
struct cachestat_result {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

struct range { uintptr_t addr; size_t len; };

static int active;
static bool no_cachestat;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pages of [off, off+len) of the swap file in the page cache, and how many are dirty. */
static bool file_cachestat(off_t off, size_t len, uint64_t *cached, uint64_t *dirty)
{
    if (no_cachestat || bm_swap.fd < 0)
        return false;
    struct cachestat_range range = {(uint64_t)off, len};
    struct cachestat_result stat;
    if (syscall(SYS_cachestat, bm_swap.fd, &range, &stat, 0) != 0) {
        if (errno == ENOSYS || errno == EPERM)
            no_cachestat = true;
        return false;
    }
    *cached = stat.nr_cache * bm_page_size;
    *dirty = (stat.nr_dirty + stat.nr_writeback) * bm_page_size;
    return true;
}

static uint64_t mincore_resident(uintptr_t addr, size_t len)
{
    static unsigned char vec[MINCORE_PAGES];
    uint64_t resident = 0;
    for (size_t done = 0; done < len;) {
        size_t bytes = len - done < MINCORE_PAGES * bm_page_size ? len - done
                                                                 : MINCORE_PAGES * bm_page_size;
        if (mincore((void *)(addr + done), bytes, vec) == 0)
            for (size_t i = 0; i < bytes / bm_page_size; i++)
                resident += (vec[i] & 1) * bm_page_size;
        done += bytes;
    }
    return resident;
}

/* Under bm_lock. */
static void measure_locked(uint64_t *resident, uint64_t *dirty)
{
    *resident = *dirty = 0;
    for (size_t i = 0; i < bm_space.count; i++) {
        const struct bm_region *r = &bm_space.regions[i];
        if (!bm_region_is_own_live(r))
            continue;
        uint64_t cached, d;
        if (file_cachestat(bm_space_offset(r->addr), r->len, &cached, &d)) {
            *resident += cached;
            *dirty += d;
        } else {
            *resident += mincore_resident(r->addr, r->len);
        }
    }
}

int bm_resident(uint64_t *resident, uint64_t *dirty)
{
    uint64_t r, d;
    pthread_mutex_lock(&bm_lock);
    measure_locked(&r, &d);
    pthread_mutex_unlock(&bm_lock);
    if (resident)
        *resident = r;
    if (dirty)
        *dirty = d;
    return BIGMAAC_OK;
}

BM_EXPORT int bigmaac_resident(uint64_t *resident, uint64_t *dirty)
{
    return bm_resident(resident, dirty);
}

/* Copy the live ranges so the lock is not held for the whole page-out. The list lives
 * in its own mapping: the page-out must not depend on the heap we interpose. */
static struct range *list_ranges(size_t *count, size_t *bytes, uint64_t *total)
{
    pthread_mutex_lock(&bm_lock);
    *bytes = (bm_space.count + 1) * sizeof(struct range);
    struct range *ranges =
        mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *count = *total = 0;
    if (ranges != MAP_FAILED) {
        for (size_t i = 0; i < bm_space.count; i++) {
            const struct bm_region *r = &bm_space.regions[i];
            if (!bm_region_is_own_live(r))
                continue;
            ranges[(*count)++] = (struct range){r->addr, r->len};
            *total += r->len;
        }
    }
    pthread_mutex_unlock(&bm_lock);
    return ranges == MAP_FAILED ? NULL : ranges;
}

/* Under bm_lock: the chunk is still inside a live region of ours. */
static bool still_ours(uintptr_t region_addr, uintptr_t end)
{
    const struct bm_region *r = bm_space_lookup(region_addr);
    return r && bm_region_is_own_live(r) && end <= r->addr + r->len;
}

static uint64_t page_out_chunk(uintptr_t region_addr, uintptr_t addr, size_t len)
{
    uint64_t written = 0, cached, dirty;
    pthread_mutex_lock(&bm_lock);
    if (still_ours(region_addr, addr + len)) {
        off_t off = bm_space_offset(addr);
        if (file_cachestat(off, len, &cached, &dirty))
            written = dirty;
        sync_file_range(bm_swap.fd, off, (off_t)len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
        madvise((void *)addr, len, MADV_PAGEOUT);
        posix_fadvise(bm_swap.fd, off, (off_t)len, POSIX_FADV_DONTNEED);
    }
    pthread_mutex_unlock(&bm_lock);
    return written;
}

static bool cancelled(const struct bm_pageout_job *job)
{
    return job->cancel_word &&
           __atomic_load_n(job->cancel_word, __ATOMIC_ACQUIRE) == job->cancel_value;
}

static int run_ranges(struct bm_pageout_job *job, const struct range *ranges, size_t count,
                      uint64_t *written)
{
    uint64_t done = 0;
    for (size_t i = 0; i < count; i++) {
        for (size_t at = 0; at < ranges[i].len; at += CHUNK) {
            if (cancelled(job))
                return BIGMAAC_ERR_CANCELLED;
            size_t len = ranges[i].len - at < CHUNK ? ranges[i].len - at : CHUNK;
            *written += page_out_chunk(ranges[i].addr, ranges[i].addr + at, len);
            done += len;
            __atomic_store_n(job->bytes_done, done, __ATOMIC_RELAXED);
        }
    }
    return BIGMAAC_OK;
}

int bm_pageout_run(struct bm_pageout_job *job, struct bigmaac_pageout_result *result)
{
    int idle = 0;
    memset(result, 0, sizeof *result);
    if (!__atomic_compare_exchange_n(&active, &idle, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return BIGMAAC_ERR_BUSY;
    uint64_t start = monotonic_ns(), total, dirty;
    size_t count, bytes;
    bm_resident(&result->resident_before, &dirty);
    /* Memory is wanted: freed regions kept for reuse give theirs back first. */
    pthread_mutex_lock(&bm_lock);
    bm_recycle_punch_older_than(0);
    pthread_mutex_unlock(&bm_lock);
    struct range *ranges = list_ranges(&count, &bytes, &total);
    int status = BIGMAAC_ERR_SYSTEM;
    if (ranges) {
        __atomic_store_n(job->bytes_total, total, __ATOMIC_RELAXED);
        result->bytes_total = total;
        status = run_ranges(job, ranges, count, &result->bytes_written);
        munmap(ranges, bytes);
    }
    bm_resident(&result->resident_after, &dirty);
    result->duration_ns = monotonic_ns() - start;
    if (status == BIGMAAC_OK)
        bm_count(&bm_counters.pageouts, 1);
    __atomic_store_n(&active, 0, __ATOMIC_RELEASE);
    bm_segment_ring();
    return status;
}

BM_EXPORT int bigmaac_pageout(struct bigmaac_pageout_result *result)
{
    uint64_t done = 0, total = 0;
    struct bigmaac_pageout_result local;
    struct bm_pageout_job job = {.bytes_done = &done, .bytes_total = &total};
    return bm_pageout_run(&job, result ? result : &local);
}

void bm_pageout_forget_after_fork(void)
{
    __atomic_store_n(&active, 0, __ATOMIC_RELEASE);
}
