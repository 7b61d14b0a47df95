/* pageout.c: bulk page-out of disk-backed memory, and honest residency.
 *
 * Order (shared/notes/linux-memory.md; msync + MADV_DONTNEED + POSIX_FADV_DONTNEED is
 * the equivalent of the sequence measured there): MADV_DONTNEED drops a chunk's page-table
 * entries (dirty data stays in the page cache), sync_file_range(WRITE) starts its
 * write-back up to WRITE_AHEAD ahead of the chunk being finished, sync_file_range(
 * WAIT_BEFORE|WRITE|WAIT_AFTER) finishes it, and POSIX_FADV_DONTNEED drops the now clean,
 * unmapped pages. Work goes in 64 MiB chunks, each step under bm_lock (so a region cannot
 * be freed mid-step), releasing the lock in between so the program keeps allocating;
 * before any fork the wait for a chunk's write-back runs without the lock too (see
 * page_out_chunk), so an allocation never waits for the disk; cancellation is checked per chunk,
 * and the job's between_chunks hook runs (the control thread answers residency requests
 * there, so a long page-out does not leave them waiting).
 *
 * Residency is page-cache residency of our swap file ranges, from cachestat(2) (Linux
 * 6.5+), which also counts dirty pages; without it, mincore over our regions (dirty
 * then unknown, reported 0). After a fork a region's chunks may sit on several files
 * (cow.c): each run is measured on the file backing it. This is neither RSS (smaps
 * misses unmapped dirty cache) nor the cgroup's charge, but it is exactly the memory a
 * page-out can give back. Measuring copies the list of live regions under bm_lock and
 * makes the system calls after releasing it; only once a fork has split the backing is
 * bm_lock taken again, one region at a time, so that no file closes under a call.
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
#define WRITE_AHEAD (256 * BM_MIB) /* write-back started this far ahead of the chunk */
#define MINCORE_PAGES 4096

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

/* Pages of [off, off+len) of a swap file in the page cache: all, dirty or under
 * write-back, and dirty ones whose write-back has not started. */
struct cache_pages {
    uint64_t cached, dirty, not_submitted;
};

static bool file_pages(int fd, off_t off, size_t len, struct cache_pages *out)
{
    if (no_cachestat || fd < 0)
        return false;
    struct cachestat_range range = {(uint64_t)off, len};
    struct cachestat_result stat;
    if (syscall(SYS_cachestat, fd, &range, &stat, 0) != 0) {
        if (errno == ENOSYS || errno == EPERM)
            no_cachestat = true;
        return false;
    }
    out->cached = stat.nr_cache * bm_page_size;
    out->dirty = (stat.nr_dirty + stat.nr_writeback) * bm_page_size;
    out->not_submitted = stat.nr_dirty * bm_page_size;
    return true;
}

bool bm_file_cachestat(int fd, off_t off, size_t len, uint64_t *cached, uint64_t *dirty)
{
    struct cache_pages pages;
    if (!file_pages(fd, off, len, &pages))
        return false;
    *cached = pages.cached;
    *dirty = pages.dirty;
    return true;
}

/* Adds one run's pages; a RAM copy (fd -1) has none a page-out could give back. */
static bool add_run_pages(int fd, uintptr_t addr, size_t len, void *sum)
{
    struct cache_pages run, *total = sum;
    if (fd < 0)
        return true;
    if (!file_pages(fd, bm_space_offset(addr), len, &run))
        return false;
    total->cached += run.cached;
    total->dirty += run.dirty;
    total->not_submitted += run.not_submitted;
    return true;
}

/* Pages of [addr, addr+len) on whichever files back it since a fork (cow.c). The
 * caller holds bm_lock once bm_backing_split(). A range outside our space has none. */
static bool range_pages(uintptr_t addr, size_t len, struct cache_pages *out)
{
    *out = (struct cache_pages){0, 0, 0};
    if (no_cachestat || bm_swap.fd < 0)
        return false;
    if (!len || !bm_space_owns((void *)addr) || len > bm_space.base + bm_space.size - addr)
        return true;
    return bm_backing_runs(addr, len, add_run_pages, out);
}

static uint64_t mincore_resident(uintptr_t addr, size_t len)
{
    unsigned char vec[MINCORE_PAGES]; /* on the stack: callers run on any thread */
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

/* Page-cache residency of one region: cachestat of its file ranges, else mincore of
 * its mapping (a range freed meanwhile reads as 0 either way). bm_lock is taken only
 * after a fork, when a backing file could otherwise be closed during the call. */
static void measure_region(uintptr_t addr, size_t len, uint64_t *resident, uint64_t *dirty)
{
    struct cache_pages pages;
    bool lock = bm_backing_split();
    if (lock)
        pthread_mutex_lock(&bm_lock);
    bool known = range_pages(addr, len, &pages);
    if (lock)
        pthread_mutex_unlock(&bm_lock);
    if (known) {
        *resident = pages.cached;
        *dirty = pages.dirty;
    } else {
        *resident = mincore_resident(addr, len);
        *dirty = 0;
    }
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

int bm_resident(uint64_t *resident, uint64_t *dirty)
{
    size_t count, bytes;
    uint64_t total, r = 0, d = 0;
    struct range *ranges = list_ranges(&count, &bytes, &total);
    if (!ranges)
        return BIGMAAC_ERR_SYSTEM;
    for (size_t i = 0; i < count; i++) {
        uint64_t region_resident, region_dirty;
        measure_region(ranges[i].addr, ranges[i].len, &region_resident, &region_dirty);
        r += region_resident;
        d += region_dirty;
    }
    munmap(ranges, bytes);
    if (resident)
        *resident = r;
    if (dirty)
        *dirty = d;
    return BIGMAAC_OK;
}

int bm_residency_measure(const struct bigmaac_allocation *table, size_t n,
                         struct bigmaac_residency *out)
{
    uint64_t start = monotonic_ns();
    size_t count, bytes;
    uint64_t total;
    struct range *ranges = list_ranges(&count, &bytes, &total);
    if (!ranges)
        return BIGMAAC_ERR_SYSTEM;
    out->resident = out->dirty = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t r, d;
        measure_region(ranges[i].addr, ranges[i].len, &r, &d);
        out->resident += r;
        out->dirty += d;
    }
    out->total = count;
    munmap(ranges, bytes);
    out->count = (uint32_t)(n < BIGMAAC_TABLE_SLOTS ? n : BIGMAAC_TABLE_SLOTS);
    for (uint32_t i = 0; i < out->count; i++) {
        struct bigmaac_allocation_residency *entry = &out->table[i];
        entry->address = table[i].address;
        entry->size = table[i].size;
        /* A fries entry's size is the bytes of its blocks out, wherever they lie in the
         * chunk: measure the whole chunk. */
        size_t len = table[i].tier == BIGMAAC_TIER_FRY ? BM_FRY_CHUNK : table[i].size;
        measure_region(table[i].address, len, &entry->resident, &entry->dirty);
    }
    out->flags = no_cachestat || bm_swap.fd < 0 ? 0 : BIGMAAC_RESIDENCY_DIRTY_KNOWN;
    out->measured_ns = bm_now_ns();
    out->duration_ns = monotonic_ns() - start;
    return BIGMAAC_OK;
}

BM_EXPORT int bigmaac_resident(uint64_t *resident, uint64_t *dirty)
{
    return bm_resident(resident, dirty);
}

/* Under bm_lock: the chunk is still inside a live region of ours. */
static bool still_ours(uintptr_t region_addr, uintptr_t end)
{
    const struct bm_region *r = bm_space_lookup(region_addr);
    return r && bm_region_is_own_live(r) && end <= r->addr + r->len;
}

/* Drop the page-table entries of a chunk: the data stays in the page cache (a dirty bit
 * moves to the page), and write-back of pages nobody maps skips write-protecting each
 * mapping (page_mkclean), the main cost of writing back a shared mapping. */
static void unmap_pages(uintptr_t addr, size_t len)
{
    bm_backing_drop_pages(addr, len);
}

/* Dirty pages of the chunk whose write-back we are about to start (under bm_lock). */
static uint64_t unsubmitted(uintptr_t addr, size_t len)
{
    struct cache_pages pages;
    return range_pages(addr, len, &pages) ? pages.not_submitted : 0;
}

/* Position in the list of chunks: which range, how far into it, bytes before it. */
struct cursor {
    size_t range;
    size_t at;
    uint64_t bytes;
};

/* Starts write-back (without waiting) of the chunks up to `until` bytes into the list,
 * so the disk always has a queue while we wait for one chunk and drop its pages: one
 * synchronous chunk at a time left it idle between chunks. Each chunk under bm_lock,
 * like page_out_chunk; the lock is not held while waiting. Returns the dirty bytes
 * submitted. */
static uint64_t write_ahead(const struct range *ranges, size_t count, struct cursor *ahead,
                            uint64_t until)
{
    uint64_t submitted = 0;
    while (ahead->range < count && ahead->bytes < until) {
        const struct range *r = &ranges[ahead->range];
        size_t len = r->len - ahead->at < CHUNK ? r->len - ahead->at : CHUNK;
        pthread_mutex_lock(&bm_lock);
        if (still_ours(r->addr, r->addr + ahead->at + len)) {
            unmap_pages(r->addr + ahead->at, len);
            submitted += unsubmitted(r->addr + ahead->at, len);
            bm_backing_sync(r->addr + ahead->at, len, SYNC_FILE_RANGE_WRITE);
        }
        pthread_mutex_unlock(&bm_lock);
        ahead->bytes += len;
        ahead->at += len;
        if (ahead->at >= r->len) {
            ahead->range++;
            ahead->at = 0;
        }
    }
    return submitted;
}

#define WAIT_FLAGS (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)

/* Waits for the chunk's write-back (writing what was dirtied since it started), then
 * drops its pages. Returns the dirty bytes it wrote itself. The wait, the long part,
 * runs without bm_lock while there is one swap file (file_fd, our own duplicate of it,
 * >= 0), so the program's allocations and frees do not stall behind the disk: if the
 * region is freed meanwhile, the wait writes nothing or its next owner's data, harmless
 * either way, and the pages are dropped only if it is still ours. After a fork a chunk
 * may move between files: everything then stays under the lock. */
static uint64_t page_out_chunk(uintptr_t region_addr, uintptr_t addr, size_t len, int file_fd)
{
    uint64_t written = 0;
    pthread_mutex_lock(&bm_lock);
    if (!still_ours(region_addr, addr + len)) {
        pthread_mutex_unlock(&bm_lock);
        return 0;
    }
    unmap_pages(addr, len); /* pages touched again since write_ahead */
    written = unsubmitted(addr, len);
    if (file_fd < 0 || bm_backing_split()) {
        bm_backing_sync(addr, len, WAIT_FLAGS);
        bm_backing_drop_cache(addr, len);
        pthread_mutex_unlock(&bm_lock);
        return written;
    }
    pthread_mutex_unlock(&bm_lock);
    sync_file_range(file_fd, bm_space_offset(addr), (off_t)len, WAIT_FLAGS);
    pthread_mutex_lock(&bm_lock);
    if (still_ours(region_addr, addr + len))
        bm_backing_drop_cache(addr, len);
    pthread_mutex_unlock(&bm_lock);
    return written;
}

static bool cancelled(const struct bm_pageout_job *job)
{
    return job->cancel_word &&
           __atomic_load_n(job->cancel_word, __ATOMIC_ACQUIRE) == job->cancel_value;
}

static int run_ranges(struct bm_pageout_job *job, const struct range *ranges, size_t count,
                      uint64_t *written, int file_fd)
{
    uint64_t done = 0;
    struct cursor ahead = {0, 0, 0};
    for (size_t i = 0; i < count; i++) {
        for (size_t at = 0; at < ranges[i].len; at += CHUNK) {
            if (cancelled(job))
                return BIGMAAC_ERR_CANCELLED;
            *written += write_ahead(ranges, count, &ahead, done + WRITE_AHEAD);
            size_t len = ranges[i].len - at < CHUNK ? ranges[i].len - at : CHUNK;
            *written += page_out_chunk(ranges[i].addr, ranges[i].addr + at, len, file_fd);
            done += len;
            __atomic_store_n(job->bytes_done, done, __ATOMIC_RELAXED);
            if (job->between_chunks)
                job->between_chunks();
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
    /* Memory is wanted: freed regions kept for reuse and free fries give theirs back
     * first. */
    bm_fry_purge(true);
    pthread_mutex_lock(&bm_lock);
    bm_recycle_punch_older_than(0);
    pthread_mutex_unlock(&bm_lock);
    /* Before a fork, one swap file: a duplicate of its descriptor lets the waits run
     * without bm_lock and can never be closed under them. */
    pthread_mutex_lock(&bm_lock);
    int file_fd = !bm_backing_split() && bm_swap.fd >= 0
                      ? fcntl(bm_swap.fd, F_DUPFD_CLOEXEC, 0)
                      : -1;
    pthread_mutex_unlock(&bm_lock);
    struct range *ranges = list_ranges(&count, &bytes, &total);
    int status = BIGMAAC_ERR_SYSTEM;
    if (ranges) {
        __atomic_store_n(job->bytes_total, total, __ATOMIC_RELAXED);
        result->bytes_total = total;
        status = run_ranges(job, ranges, count, &result->bytes_written, file_fd);
        munmap(ranges, bytes);
    }
    if (file_fd >= 0)
        close(file_fd);
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
