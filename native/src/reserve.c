/* reserve.c: one reserved address range holds every big region.
 *
 * Reserving it PROT_NONE up front makes ownership an O(1) range check on free and
 * realloc, and leaves room beside each region to grow in place. The range is reserved
 * lazily, at the first big allocation, shrinking the request when RLIMIT_AS refuses.
 * Regions are kept in an array sorted by address, in our own anonymous mapping (never
 * the heap we interpose). Everything here runs under bm_lock.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

#define MIN_RESERVE BM_GIB
#define INITIAL_CAPACITY 1024

struct bm_space bm_space;
pthread_mutex_t bm_lock = PTHREAD_MUTEX_INITIALIZER;

static const int NONE_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

bool bm_space_reserve(size_t want)
{
    static bool refused; /* warned once; every later request passes through */
    if (bm_space.base)
        return true;
    if (refused)
        return false;
    for (size_t size = want; size >= MIN_RESERVE; size /= 2) {
        void *p = mmap(NULL, size, PROT_NONE, NONE_FLAGS, -1, 0);
        if (p == MAP_FAILED)
            continue;
        if (size != want)
            bm_warn("could reserve only %zu MiB of address space for big allocations "
                    "(SIZE_BIGMAAC asks %zu MiB; is RLIMIT_AS set?)", size >> 20, want >> 20);
        __atomic_store_n(&bm_space.base, (uintptr_t)p, __ATOMIC_RELAXED);
        __atomic_store_n(&bm_space.size, size, __ATOMIC_RELEASE); /* publishes base */
        bm_span_include((uintptr_t)p, size);
        return true;
    }
    bm_warn("cannot reserve even %zu MiB of address space for big allocations (is RLIMIT_AS "
            "set?); they stay in RAM", MIN_RESERVE >> 20);
    refused = true;
    return false;
}

bool bm_space_unmap(uintptr_t addr, size_t len)
{
    bm_backing_forget(addr, len); /* no longer a chunk a fork froze */
    return mmap((void *)addr, len, PROT_NONE, NONE_FLAGS | MAP_FIXED, -1, 0) != MAP_FAILED;
}

static bool grow_table(void)
{
    size_t capacity = bm_space.capacity ? bm_space.capacity * 2 : INITIAL_CAPACITY;
    size_t bytes = capacity * sizeof(struct bm_region);
    void *p = bm_space.regions
                  ? mremap(bm_space.regions, bm_space.capacity * sizeof(struct bm_region), bytes,
                           MREMAP_MAYMOVE)
                  : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    bm_space.regions = p;
    bm_space.capacity = capacity;
    return true;
}

/* Index of the first region whose address is >= addr. */
static size_t lower_bound(uintptr_t addr)
{
    size_t lo = 0, hi = bm_space.count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bm_space.regions[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uintptr_t align_up(uintptr_t x, size_t align)
{
    return (x + align - 1) & ~(uintptr_t)(align - 1);
}

/* First fit, preferring gaps with len bytes of room left after the region. */
uintptr_t bm_space_find(size_t len, size_t align)
{
    uintptr_t fallback = 0, end = bm_space.base + bm_space.size;
    uintptr_t gap_start = bm_space.base;
    for (size_t i = 0; i <= bm_space.count; i++) {
        uintptr_t gap_end = i < bm_space.count ? bm_space.regions[i].addr : end;
        uintptr_t start = align_up(gap_start, align);
        if (start < gap_end && gap_end - start >= len) {
            if (gap_end - start - len >= len)
                return start;
            if (!fallback)
                fallback = start;
        }
        if (i < bm_space.count)
            gap_start = bm_space.regions[i].addr + bm_space.regions[i].len;
    }
    return fallback;
}

struct bm_region *bm_space_insert(uintptr_t addr, size_t len)
{
    if (bm_space.count == bm_space.capacity && !grow_table())
        return NULL;
    size_t i = lower_bound(addr);
    memmove(&bm_space.regions[i + 1], &bm_space.regions[i],
            (bm_space.count - i) * sizeof(struct bm_region));
    bm_space.count++;
    struct bm_region *region = &bm_space.regions[i];
    memset(region, 0, sizeof *region);
    region->addr = addr;
    region->len = len;
    region->created_ns = bm_now_ns();
    bm_backing_claim(addr, len); /* it was mapped on bm_swap.fd */
    return region;
}

struct bm_region *bm_space_entry(uintptr_t addr)
{
    size_t i = lower_bound(addr);
    return i < bm_space.count && bm_space.regions[i].addr == addr ? &bm_space.regions[i] : NULL;
}

struct bm_region *bm_space_lookup(uintptr_t addr)
{
    struct bm_region *region = bm_space_entry(addr);
    return region && !(region->flags & BM_REGION_CACHED) ? region : NULL;
}

void bm_space_remove(struct bm_region *region)
{
    size_t i = (size_t)(region - bm_space.regions);
    memmove(&bm_space.regions[i], &bm_space.regions[i + 1],
            (bm_space.count - i - 1) * sizeof(struct bm_region));
    bm_space.count--;
}

size_t bm_space_room_after(const struct bm_region *region)
{
    size_t i = (size_t)(region - bm_space.regions);
    uintptr_t next = i + 1 < bm_space.count ? bm_space.regions[i + 1].addr
                                            : bm_space.base + bm_space.size;
    return next - (region->addr + region->len);
}
