/* region.c: big regions, each a page-aligned MAP_SHARED window on the swap file.
 *
 * Life of a region, all under bm_lock:
 *   create  find a gap, fallocate its file range (a full disk fails here, never as
 *           SIGBUS later), map it MAP_SHARED|MAP_FIXED over the reservation;
 *   free    keep the mapping for reuse (recycle.c drops its data soon after, unwritten),
 *           or, when the cache is full, punch the file range (dirty pages are dropped,
 *           never written back) and put PROT_NONE back, so disk, RAM and address
 *           space all return;
 *   resize  in place when the gap after it allows: extend the file range and map the
 *           extension (the kernel merges it with the region), or punch the tail.
 * A region inherited across fork() is the parent's data: never punched, moved on growth.
 * After a fork, a region's chunks may sit on several swap files and be frozen for a
 * child (cow.c): the file work goes through bm_backing_*, and frozen regions move.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#ifdef BM_TEST_HOOKS
void (*bm_test_hook)(const char *where, uintptr_t addr, size_t len);
#endif

static size_t page_round(size_t size)
{
    return (size + bm_page_size - 1) & ~(bm_page_size - 1);
}

/* Length from addr to the folio boundary after addr+len (within the reservation): the
 * tail past a region's end up to there belongs to no other region. */
static size_t to_folio_end(uintptr_t addr, size_t len)
{
    uintptr_t end = (addr + len + BM_FOLIO_MAX - 1) & ~(uintptr_t)(BM_FOLIO_MAX - 1);
    uintptr_t limit = bm_space.base + bm_space.size;
    return (end > limit ? limit : end) - addr;
}

size_t bm_folio_len(uintptr_t addr, size_t len)
{
    return to_folio_end(addr, len);
}

bool bm_punch(uintptr_t addr, size_t len)
{
    return bm_backing_punch(addr, to_folio_end(addr, len));
}

/* Reserve disk for [addr, addr+len) and map it, with the tail up to the folio boundary
 * (no disk reserved there; nothing is handed out there): regions sit on folio
 * boundaries and a region's file offset is its address's, so neighbours map contiguous
 * file ranges and the kernel merges them into one mapping instead of two per region
 * (vm.max_map_count). On failure errno is ENOSPC when the disk is full, EAGAIN for
 * anything else. */
static bool back_range(uintptr_t addr, size_t len)
{
    if (!bm_backing_claim(addr, len))
        return false;
    if (!bm_backing_reserve(addr, len)) {
        int why = errno;
        bm_debug("fallocate of %zu bytes failed: %s", len, strerror(why));
        bm_swap_reserve_failed(why); /* no fallocate at all: said once */
        errno = (why == ENOSPC || why == EDQUOT || why == EFBIG) ? ENOSPC : EAGAIN;
        return false;
    }
    size_t mapped = to_folio_end(addr, len);
    if (!bm_backing_map(addr, mapped)) {
        int why = errno;
        bm_punch(addr, len);
        /* A failed MAP_FIXED may already have removed the reservation there: restore it
         * so the kernel cannot place someone else's mapping inside our range. */
        bm_space_unmap(addr, mapped);
        bm_debug("mmap of %zu bytes failed: %s", len, strerror(why));
        errno = EAGAIN; /* e.g. vm.max_map_count reached: RAM may still work */
        return false;
    }
    bm_count(&bm_counters.disk_reserved, (int64_t)len);
    return true;
}

/* Give a range back: punch before unmapping so dirty pages are discarded unwritten. */
static void release_range(uintptr_t addr, size_t len, bool owned)
{
    if (owned) {
        bm_punch(addr, len);
        bm_count(&bm_counters.disk_reserved, -(int64_t)len);
    }
    bm_space_unmap(addr, to_folio_end(addr, len));
}

static bool big_path_ready(void)
{
    return bm_space_reserve(bm_config.reserve_size) && bm_swap_ensure();
}

static void count_new(size_t len)
{
    bm_stats_live_changed(1, (int64_t)len);
    bm_count(&bm_counters.allocs, 1);
}

/* Under bm_lock. NULL with errno ENOSPC (disk full) or EAGAIN. A fresh region reads
 * as zeros: its file range was a hole, or was punched when last freed. */
static void *create_locked(size_t len, size_t align, bool zero)
{
    if (!big_path_ready()) {
        errno = EAGAIN; /* not a disk-full: caller falls back to RAM */
        return NULL;
    }
    struct bm_region *recycled = bm_recycle_take(len, align, zero);
    if (recycled) {
        count_new(recycled->len);
        return (void *)recycled->addr;
    }
    uintptr_t addr = bm_space_find(len, align);
    if (!addr && bm_recycle_drain())
        addr = bm_space_find(len, align);
    if (!addr) {
        errno = EAGAIN;
        return NULL;
    }
    if (!back_range(addr, len)) {
        /* Disk full: freed regions kept with their data may hold what we need. */
        if (errno != ENOSPC || !bm_recycle_drain())
            return NULL;
        addr = bm_space_find(len, align);
        if (!addr || !back_range(addr, len)) {
            errno = addr ? errno : EAGAIN;
            return NULL;
        }
    }
    if (!bm_space_insert(addr, len)) {
        release_range(addr, len, true);
        errno = EAGAIN;
        return NULL;
    }
    count_new(len);
    return (void *)addr;
}

/* RAM instead of disk: when the big path is unusable, or on a full disk if asked. */
static void *fall_back(size_t size, size_t align, bool zero)
{
    void *p = NULL;
    if (zero)
        p = bm_next.calloc(1, size);
    else if (align <= 16)
        p = bm_next.malloc(size);
    else if (bm_next.posix_memalign(&p, align, size) != 0)
        p = NULL;
    if (p)
        bm_count(&bm_counters.fallbacks, 1);
    return p;
}

void *bm_big_alloc(size_t size, size_t align, bool zero)
{
    size_t len = page_round(size);
    if (len < size) {
        errno = ENOMEM;
        return NULL;
    }
    if (align < BM_FOLIO_MAX)
        align = BM_FOLIO_MAX; /* see BM_FOLIO_MAX */
    bm_fork_register(); /* normally done by the constructor; never under bm_lock */
    bm_rebind_check(); /* a deep-bound library must not get this block to libc's free */
    pthread_mutex_lock(&bm_lock);
    void *p = create_locked(len, align, zero);
    int why = errno;
    pthread_mutex_unlock(&bm_lock);
    if (p) {
        bm_segment_ensure();
        bm_segment_ring();
        return p;
    }
    if (why != ENOSPC || bm_config.on_disk_full == BM_DISK_FULL_RAM)
        p = fall_back(size, align, zero);
    else
        bm_count(&bm_counters.failures, 1);
    /* A process whose big requests all went to RAM or failed shows it too. */
    bm_segment_ensure();
    bm_segment_ring();
    if (!p)
        errno = ENOMEM;
    return p;
}

void bm_big_free(void *p)
{
    int saved = errno;
    pthread_mutex_lock(&bm_lock);
    struct bm_region *region = bm_space_lookup((uintptr_t)p);
    if (region) {
        bool owned = !(region->flags & BM_REGION_INHERITED);
        if (owned) {
            bm_stats_live_changed(-1, -(int64_t)region->len);
            bm_count(&bm_counters.frees, 1);
        }
        if (!owned || !bm_recycle_put(region)) {
            release_range(region->addr, region->len, owned);
            bm_space_remove(region);
        }
    }
    pthread_mutex_unlock(&bm_lock);
    /* A pointer inside our range that starts no region is a caller's bug (double free,
     * interior pointer): ignore it rather than corrupt the next allocator. */
    if (!region)
        bm_debug("free(%p): not the start of a live big region; ignored", p);
    else
        bm_segment_ring();
    errno = saved;
}

size_t bm_big_usable(const void *p)
{
    pthread_mutex_lock(&bm_lock);
    struct bm_region *region = bm_space_lookup((uintptr_t)p);
    size_t len = region ? region->len : 0;
    pthread_mutex_unlock(&bm_lock);
    return len;
}

/* Under bm_lock: resize without moving. False if it must move. */
static bool resize_in_place(struct bm_region *region, size_t len)
{
    /* A child may map a frozen region's file range: moving copies it on our side. */
    if ((region->flags & BM_REGION_INHERITED) || bm_backing_frozen(region->addr, region->len))
        return false;
    if (len < region->len) {
        size_t cut = region->len - len;
        uintptr_t end = region->addr + len;
        /* Punch the cut (to its folio boundary), unmap whole folios only: the region
         * stays mapped up to the folio boundary after its new end, as a fresh one is
         * (cow.c freezes and copies whole chunks). */
        bm_punch(end, cut);
        bm_count(&bm_counters.disk_reserved, -(int64_t)cut);
        uintptr_t kept = region->addr + to_folio_end(region->addr, len);
        uintptr_t mapped = region->addr + to_folio_end(region->addr, region->len);
        if (mapped > kept)
            bm_space_unmap(kept, mapped - kept);
        region->len = len;
        bm_stats_live_changed(0, -(int64_t)cut);
        return true;
    }
    size_t extra = len - region->len;
    bm_recycle_clear_after(region, extra);
    if (bm_space_room_after(region) < extra || !back_range(region->addr + region->len, extra))
        return false;
    region->len = len;
    bm_stats_live_changed(0, (int64_t)extra);
    return true;
}

/* Copy a region that is about to be freed, a chunk at a time, releasing each source
 * chunk once copied and starting write-back of each destination chunk: RAM never holds
 * both copies in full. The destination is fully allocated already, so nothing can fail
 * half-way. MADV_REMOVE punches a shared file range; an inherited (private) source
 * only drops its pages, never touching the parent's file. */
static void copy_releasing(char *to, char *from, size_t len)
{
    const size_t chunk = 64 * BM_MIB;
    bool to_file = bm_space_owns(to) && bm_swap.fd >= 0;
    for (size_t done = 0; done < len; done += chunk) {
        size_t n = len - done < chunk ? len - done : chunk;
        memcpy(to + done, from + done, n);
        /* Under bm_lock: a fork on another thread (its prepare handler takes the lock)
         * must not freeze the range between the check and the punch, or the child's
         * snapshot would lose it. */
        pthread_mutex_lock(&bm_lock);
        bool frozen = bm_space_owns(from) && bm_backing_frozen((uintptr_t)from + done, n);
        BM_TEST_HOOK("release-checked", (uintptr_t)from + done, n);
        if (frozen || madvise(from + done, n, MADV_REMOVE) != 0)
            madvise(from + done, n, MADV_DONTNEED);
        if (to_file)
            bm_backing_sync((uintptr_t)to + done, n, SYNC_FILE_RANGE_WRITE);
        pthread_mutex_unlock(&bm_lock);
    }
}

/* New home for p's data: a big region, or the next allocator for a small size. */
static void *move(void *p, size_t old_len, size_t size)
{
    void *fresh = size >= bm_config.min_big ? bm_big_alloc(size, 0, false) : bm_next.malloc(size);
    if (!fresh)
        return NULL; /* p stays valid, as realloc promises */
    size_t kept = old_len < size ? old_len : size;
    copy_releasing(fresh, p, kept);
    bm_count(&bm_counters.realloc_moved, 1);
    bm_count(&bm_counters.realloc_copied, (int64_t)kept);
    bm_big_free(p);
    return fresh;
}

void *bm_big_realloc(void *p, size_t size)
{
    size_t len = page_round(size);
    if (len < size) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&bm_lock);
    struct bm_region *region = bm_space_lookup((uintptr_t)p);
    if (!region) {
        pthread_mutex_unlock(&bm_lock);
        bm_debug("realloc(%p): not the start of a live big region", p);
        errno = EINVAL;
        return NULL;
    }
    size_t old_len = region->len;
    bool done = size >= bm_config.min_big && (len == old_len || resize_in_place(region, len));
    if (done) {
        bm_count(&bm_counters.reallocs, 1);
        bm_count(&bm_counters.realloc_in_place, 1);
    }
    pthread_mutex_unlock(&bm_lock);
    if (done) {
        bm_segment_ring();
        return p;
    }
    bm_count(&bm_counters.reallocs, 1);
    return move(p, old_len, size);
}
