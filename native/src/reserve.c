/* reserve.c: one reserved address range holds every big region.
 *
 * Reserving it PROT_NONE up front makes ownership an O(1) range check on free and
 * realloc, and leaves room beside each region to grow in place: regions of 16 MiB and
 * more are placed with headroom after them (bm_space_headroom). The range is reserved
 * lazily, at the first big allocation, shrinking the request when RLIMIT_AS refuses, and
 * starts on a 2 MiB boundary.
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

/* A PROT_NONE range of size bytes whose start is a multiple of BM_FOLIO_MAX: a region's
 * file offset is its distance from the base, so an aligned base puts every region on a
 * folio boundary of the file as well as of memory (no page-cache folio spans two
 * regions; see BM_FOLIO_MAX). The kernel aligns large anonymous mappings only when their
 * size is a multiple of 2 MiB, so ask for one folio more and trim both ends. */
static void *reserve_aligned(size_t size)
{
    size_t ask = size + BM_FOLIO_MAX;
    char *p = mmap(NULL, ask, PROT_NONE, NONE_FLAGS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)p + BM_FOLIO_MAX - 1) & ~(uintptr_t)(BM_FOLIO_MAX - 1);
    size_t head = start - (uintptr_t)p, tail = ask - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

bool bm_space_reserve(size_t want)
{
    static bool refused; /* warned once; every later request passes through */
    if (bm_space.base)
        return true;
    if (refused)
        return false;
    want &= ~(size_t)(BM_FOLIO_MAX - 1); /* whole folios: the last region's tail fits */
    for (size_t size = want; size >= MIN_RESERVE; size = (size / 2) & ~(size_t)(BM_FOLIO_MAX - 1)) {
        void *p = reserve_aligned(size);
        if (!p)
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

/* Room to keep free after a region of len bytes so that it can grow in place: seven
 * times its size (realloc to 8x copies nothing, even with a neighbour placed after it),
 * at most an eighth of the reservation. Regions below GROW_MIN get none: they are packed
 * folio after folio, so that neighbours merge into one mapping (vm.max_map_count); a gap
 * costs a mapping, and at 16 MiB and up the reservation holds at most
 * size / (8 * GROW_MIN) = 8,192 regions with headroom (1 TiB). */
#define GROW_MIN (16 * BM_MIB)

size_t bm_space_headroom(size_t len)
{
    if (len < GROW_MIN)
        return 0;
    size_t cap = bm_space.size / 8;
    size_t room = len > cap / 7 ? cap : 7 * len;
    return (room + BM_FOLIO_MAX - 1) & ~(size_t)(BM_FOLIO_MAX - 1);
}

static uintptr_t align_down(uintptr_t x, size_t align)
{
    return x & ~(uintptr_t)(align - 1);
}

/* Colours. Blocks at addresses congruent modulo 256 MiB compete for the same sets of the
 * TLB's 2 MiB entries: c[i] = a[i] + b[i] over three 256 MiB arrays placed 2 GiB apart
 * (what 7x headroom does to equal neighbours) ran at half the speed of the same arrays
 * 2 MiB further apart, file-backed and anonymous alike (measured here). So a region with
 * headroom starts on the next colour, a step of 2 MiB (or its alignment) modulo 256 MiB,
 * taking a little of the gap before it; regions of n steps get at most n colours, so a
 * colour costs at most the region's own size of address space. glibc's blocks get the
 * same effect by accident, from the 4 KiB header before each. */
#define COLOR_SPAN (256 * BM_MIB)
#define COLOR_STEP 45u /* odd: 128 placements in a row get 128 different colours */

static unsigned next_color;

static uintptr_t colored(uintptr_t start, size_t len, size_t align)
{
    size_t step = align > BM_FOLIO_MAX ? align : BM_FOLIO_MAX;
    size_t colors = (len < COLOR_SPAN ? len : COLOR_SPAN) / step;
    if (colors < 2)
        return start;
    size_t want = next_color % colors, have = ((start - bm_space.base) / step) % colors;
    return start + (want + colors - have) % colors * step;
}

/* start, or start moved to the next colour if the gap still holds the region and its
 * headroom there. */
static uintptr_t place(uintptr_t start, uintptr_t gap_end, size_t len, size_t align, size_t own)
{
    uintptr_t moved = colored(start, len, align);
    if (moved >= gap_end || gap_end - moved < len + own)
        return start;
    next_color += COLOR_STEP;
    return moved;
}

/* First fit, in three grades: (1) after the headroom of the region before the gap, with
 * headroom of its own after it; (2) after that headroom, without its own; (3) anywhere in
 * the gap, as high as possible (eating as little as possible of the headroom before it,
 * and merging with the mapping after it). Grade (1) is coloured (see COLOR_SPAN). */
uintptr_t bm_space_find(size_t len, size_t align)
{
    uintptr_t second = 0, third = 0, end = bm_space.base + bm_space.size;
    size_t own = bm_space_headroom(len);
    for (size_t i = 0; i <= bm_space.count; i++) {
        const struct bm_region *before = i ? &bm_space.regions[i - 1] : NULL;
        uintptr_t gap_start = before ? before->addr + before->len : bm_space.base;
        uintptr_t gap_end = i < bm_space.count ? bm_space.regions[i].addr : end;
        uintptr_t low = align_up(gap_start, align);
        if (low >= gap_end || gap_end - low < len)
            continue;
        size_t kept = before ? bm_space_headroom(before->len) : 0;
        uintptr_t start = kept < gap_end - gap_start ? align_up(gap_start + kept, align) : gap_end;
        if (start < gap_end && gap_end - start >= len) {
            if (gap_end - start - len >= own)
                return own ? place(start, gap_end, len, align, own) : start;
            if (!second)
                second = start;
        }
        if (!third)
            third = align_down(gap_end - len, align);
    }
    return second ? second : third;
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
