/* fries.c: the fries arena, for requests between BIGMAAC_MIN_FRY_SIZE and the big
 * threshold.
 *
 * Blocks come in 60 size classes (16 to 128 bytes by 16, then four per doubling up to
 * 1 MiB), so rounding wastes at most a quarter. A chunk is a 2 MiB region of the
 * reservation (flag BM_REGION_FRIES), MAP_SHARED from the swap file like any big region,
 * holding blocks of one class; chunks are folio-sized and folio-aligned, so an empty one
 * is punched whole. Each chunk has a descriptor found by address shift, so free()
 * recognises a fry in O(1).
 *
 * Life of a chunk, all under fries_lock (bm_lock nests inside it for the file work,
 * done through cow.c's bm_backing_*: after a fork a chunk may live on another file):
 *   made     a gap of the reservation, fallocated BEFORE any block is handed out (a full
 *            disk fails the request, never a later write), mapped, listed as a region;
 *   active   blocks go out from its free lists, then from its never-used tail (bump);
 *   idle     its last block came back: kept with its pages, first choice for a refill
 *            of any class (no system call, no page fault), for 1-2 ticks of the
 *            control thread (about a second each);
 *   empty    still idle after that: punched whole (disk and RAM returned, dirty pages
 *            dropped unwritten) and kept mapped for any class; reusing it costs one
 *            fallocate, which re-reserves the disk.
 * An active chunk gives back the pages of its free blocks (the purge, as mimalloc
 * purges free pages after a delay): a block of a class of 4 KiB or more still free in
 * the arena at two ticks in a row (1-2 s after its free) has its whole pages punched,
 * and a fallocate of them reserves the disk again before it is handed out. Blocks in
 * thread caches are not purged: they are about to be reused. A page-out, the dirty
 * budget's write-back and memory running tight purge and punch at once.
 * Threads do not come here for every block: fries_cache.c keeps a few free blocks per
 * class and thread, and refills or returns them in batches.
 * SIZE_FRIES bounds the address space of all chunks; past it fries come from the next
 * allocator, counted as fall-backs. A forked child never touches its parent's chunks
 * (they map the parent's file): it marks them foreign and makes its own.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define NONE UINT32_MAX
#define PURGE_INTERVAL_NS 1000000000u /* a free block is purged 1-2 intervals after */

struct bm_fry_chunk *bm_fry_chunks;

static pthread_mutex_t fries_lock = PTHREAD_MUTEX_INITIALIZER;
static bool arena_failed;        /* no reservation or swap file: fries stay in RAM */
static uint32_t with_room[BM_FRY_CLASSES]; /* chunks with a block to hand out */
static uint32_t idle = NONE;     /* chunks with no block out, not punched yet */
static uint32_t idle_count;      /* their number; read without the lock */
static uint32_t empty = NONE;    /* punched chunks, ready for any class */
static size_t chunks_made;       /* against the SIZE_FRIES budget */
static bool chunks_changed;      /* made or emptied: worth publishing at once */
static bool budget_warned;
static uint32_t purge_head = NONE; /* chunks with free blocks to age and purge */
static bool purge_broken;        /* a punch failed: this file system cannot, stop trying */

static struct {
    uint64_t purged_now;     /* bytes of free blocks' pages punched and not reserved again */
    uint64_t purged;         /* bytes punched by purges, in all */
    uint64_t reserved_again; /* bytes of purged pages reserved again for reuse */
    uint64_t chunks;         /* chunks mapped */
    uint64_t empty_chunks;   /* of which punched whole, waiting for any class */
} totals;

static void count_idle(int delta)
{
    __atomic_store_n(&idle_count, idle_count + (uint32_t)delta, __ATOMIC_RELAXED);
}

/* The swap file refused a punch: keep free fries' pages for reuse from now on. */
static void purge_failed(void)
{
    if (!purge_broken)
        bm_debug("punching the swap file failed: free fries keep their pages for reuse");
    purge_broken = true;
}

static void queue_purge(struct bm_fry_chunk *c);

/* ------------------------------------------------------------------ size classes */

size_t bm_fry_class_size(unsigned cls)
{
    if (cls < 8)
        return 16 * (size_t)(cls + 1);
    unsigned octave = 7 + (cls - 8) / 4;          /* class sizes in (2^octave, 2^(octave+1)] */
    return (size_t)((cls - 8) % 4 + 5) << (octave - 2);
}

int bm_fry_class_of(size_t size, size_t align)
{
    if (align > 16) {
        /* A power-of-two class places every block on a multiple of its size, and chunks
         * are 2 MiB aligned: rounding up to one aligns the block. */
        if (size < align)
            size = align;
        size = size <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(size - 1));
    }
    if (size > BM_FRY_MAX_BLOCK)
        return -1;
    if (size <= 128)
        return size ? (int)((size + 15) / 16 - 1) : 0;
    unsigned octave = 63 - (unsigned)__builtin_clzll(size - 1);
    unsigned quarter = (unsigned)((size - 1) >> (octave - 2)); /* 4..7 */
    return (int)(8 + (octave - 7) * 4 + (quarter - 4));
}

static uint32_t blocks_per_chunk(unsigned cls)
{
    return (uint32_t)(BM_FRY_CHUNK / bm_fry_class_size(cls));
}

/* ------------------------------------------------------------------ chunk lists */

static uint32_t index_of(const struct bm_fry_chunk *c)
{
    return (uint32_t)(c - bm_fry_chunks);
}

static uintptr_t first_granule(void)
{
    return bm_space.base >> BM_FRY_CHUNK_SHIFT;
}

static uintptr_t chunk_addr(const struct bm_fry_chunk *c)
{
    return (first_granule() + index_of(c)) << BM_FRY_CHUNK_SHIFT;
}

static void list_push(uint32_t *head, struct bm_fry_chunk *c)
{
    c->prev = NONE;
    c->next = *head;
    if (*head != NONE)
        bm_fry_chunks[*head].prev = index_of(c);
    *head = index_of(c);
}

static void list_remove(uint32_t *head, struct bm_fry_chunk *c)
{
    if (c->prev != NONE)
        bm_fry_chunks[c->prev].next = c->next;
    else
        *head = c->next;
    if (c->next != NONE)
        bm_fry_chunks[c->next].prev = c->prev;
    c->next = c->prev = NONE;
}

/* Under fries_lock; the control thread reads used without it (bm_fry_chunk_bytes). */
static void set_used(struct bm_fry_chunk *c, uint32_t used)
{
    __atomic_store_n(&c->used, used, __ATOMIC_RELAXED);
}

static bool any_purged(const struct bm_fry_chunk *c)
{
    for (size_t w = 0; w < BM_FRY_PURGE_WORDS; w++)
        if (c->purged[w])
            return true;
    return false;
}

/* A free block that needs no fallocate before it is handed out. */
static bool has_warm_room(const struct bm_fry_chunk *c)
{
    return c->free || c->aged || c->bump < blocks_per_chunk(c->cls - 1);
}

static bool has_room(const struct bm_fry_chunk *c)
{
    return has_warm_room(c) || any_purged(c);
}

static void *block_addr(const struct bm_fry_chunk *c, uint32_t i)
{
    return (void *)(chunk_addr(c) + (uintptr_t)i * bm_fry_class_size(c->cls - 1));
}

/* Under fries_lock: fallocate [addr, addr+len) on the file backing it (cow.c); false
 * with errno ENOSPC when the disk is full, else EAGAIN. */
static bool reserve(uintptr_t addr, size_t len)
{
    pthread_mutex_lock(&bm_lock);
    bool reserved = bm_backing_reserve(addr, len);
    int why = errno;
    pthread_mutex_unlock(&bm_lock);
    if (!reserved)
        errno = (why == ENOSPC || why == EDQUOT || why == EFBIG) ? ENOSPC : EAGAIN;
    return reserved;
}

/* No block handed out yet: a chunk just made, taken from the empty list, emptied, or
 * taken idle for another class. */
static void reset_blocks(struct bm_fry_chunk *c)
{
    c->free = c->aged = NULL;
    c->bump = 0;
    memset(c->purged, 0, sizeof c->purged);
    totals.purged_now -= c->purged_bytes;
    c->purged_bytes = 0;
}

/* ------------------------------------------------------------------ fork */

static void before_fork(void)
{
    pthread_mutex_lock(&fries_lock);
}

static void in_parent(void)
{
    pthread_mutex_unlock(&fries_lock);
}

/* Every chunk maps the parent's file now (fork.c made them inherited regions): the
 * child keeps reading and writing its copies but never hands them out, returns or
 * punches them. Its own fries come from new chunks in its own swap file. */
static void in_child(void)
{
    pthread_mutex_init(&fries_lock, NULL);
    for (size_t i = 0; bm_fry_chunks && i < bm_space.count; i++)
        if (bm_space.regions[i].flags & BM_REGION_FRIES)
            __atomic_store_n(&bm_fry_chunk_of((void *)bm_space.regions[i].addr)->state,
                             BM_FRY_FOREIGN, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < BM_FRY_CLASSES; i++)
        with_room[i] = NONE;
    empty = idle = purge_head = NONE;
    __atomic_store_n(&idle_count, 0, __ATOMIC_RELAXED);
    chunks_made = 0;
    memset(&totals, 0, sizeof totals);
    bm_fry_cache_forget_after_fork();
}

/* ------------------------------------------------------------------ the arena */

/* Under fries_lock. The descriptor table covers the whole reservation; it is
 * MAP_NORESERVE, so only the pages describing chunks in use cost memory. */
static bool arena_ready(void)
{
    if (bm_fry_chunks)
        return true;
    if (arena_failed)
        return false;
    pthread_mutex_lock(&bm_lock);
    bool ok = bm_space_reserve(bm_config.reserve_size) && bm_swap_ensure();
    pthread_mutex_unlock(&bm_lock);
    if (!ok) {
        arena_failed = true;
        return false;
    }
    size_t granules = ((bm_space.base + bm_space.size - 1) >> BM_FRY_CHUNK_SHIFT) -
                      first_granule() + 1;
    void *table = mmap(NULL, granules * sizeof(struct bm_fry_chunk), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    /* After fork.c's handlers (bm_fork_register first): in a child ours then run after
     * the regions are marked inherited. */
    bm_fork_register();
    if (table == MAP_FAILED || !bm_fry_cache_init() ||
        pthread_atfork(before_fork, in_parent, in_child) != 0) {
        arena_failed = true;
        return false;
    }
    for (unsigned i = 0; i < BM_FRY_CLASSES; i++)
        with_room[i] = NONE;
    __atomic_store_n(&bm_fry_chunks, (struct bm_fry_chunk *)table, __ATOMIC_RELEASE);
    return true;
}

/* Under fries_lock and bm_lock: a fresh 2 MiB region; errno ENOSPC when the disk is full. */
static uintptr_t make_region(void)
{
    if (!bm_swap_ensure()) {
        errno = EAGAIN;
        return 0;
    }
    uintptr_t addr = bm_space_find(BM_FRY_CHUNK, BM_FRY_CHUNK);
    if (!addr && bm_recycle_drain())
        addr = bm_space_find(BM_FRY_CHUNK, BM_FRY_CHUNK);
    if (!addr) {
        errno = ENOMEM;
        return 0;
    }
    if (!bm_backing_claim(addr, BM_FRY_CHUNK))
        return 0;
    if (!bm_backing_reserve(addr, BM_FRY_CHUNK)) {
        int why = errno;
        bm_swap_reserve_failed(why); /* no fallocate at all: said once */
        errno = (why == ENOSPC || why == EDQUOT || why == EFBIG) ? ENOSPC : EAGAIN;
        return 0;
    }
    struct bm_region *region =
        bm_backing_map(addr, BM_FRY_CHUNK) ? bm_space_insert(addr, BM_FRY_CHUNK) : NULL;
    if (!region) {
        bm_punch(addr, BM_FRY_CHUNK);
        bm_space_unmap(addr, BM_FRY_CHUNK);
        errno = EAGAIN;
        return 0;
    }
    region->flags |= BM_REGION_FRIES;
    bm_count(&bm_counters.disk_reserved, (int64_t)BM_FRY_CHUNK);
    return addr;
}

/* Under fries_lock: an idle chunk for cls, its pages still there: one of cls as it is,
 * else one of another class that owns its disk whole (nothing purged), reset. */
static struct bm_fry_chunk *take_idle(unsigned cls)
{
    struct bm_fry_chunk *other = NULL;
    for (uint32_t i = idle; i != NONE; i = bm_fry_chunks[i].next) {
        struct bm_fry_chunk *c = &bm_fry_chunks[i];
        if (c->cls == cls + 1) {
            other = c;
            break;
        }
        if (!other && c->purged_bytes == 0)
            other = c;
    }
    if (!other)
        return NULL;
    list_remove(&idle, other);
    count_idle(-1);
    if (other->cls != cls + 1) {
        reset_blocks(other);
        __atomic_store_n(&other->cls, cls + 1, __ATOMIC_RELAXED);
    }
    list_push(&with_room[cls], other);
    queue_purge(other); /* what the refill leaves free ages from now */
    return other;
}

/* Under fries_lock: a chunk ready to hand out blocks of cls, or NULL with errno. */
static struct bm_fry_chunk *new_chunk(unsigned cls)
{
    struct bm_fry_chunk *c = take_idle(cls);
    if (c)
        return c;
    if (empty != NONE) {
        c = &bm_fry_chunks[empty];
        if (!reserve(chunk_addr(c), BM_FRY_CHUNK))
            return NULL;
        bm_count(&bm_counters.disk_reserved, (int64_t)BM_FRY_CHUNK);
        list_remove(&empty, c);
        totals.empty_chunks--;
    } else {
        if ((chunks_made + 1) * BM_FRY_CHUNK > bm_config.fries_size) {
            if (!budget_warned)
                bm_debug("the fries arena reached SIZE_FRIES; further fries stay in RAM");
            budget_warned = true;
            errno = ENOMEM;
            return NULL;
        }
        pthread_mutex_lock(&bm_lock);
        uintptr_t addr = make_region();
        int why = errno;
        pthread_mutex_unlock(&bm_lock);
        if (!addr) {
            errno = why;
            return NULL;
        }
        chunks_made++;
        totals.chunks++;
        chunks_changed = true;
        c = &bm_fry_chunks[(addr >> BM_FRY_CHUNK_SHIFT) - first_granule()];
    }
    __atomic_store_n(&c->state, BM_FRY_ACTIVE, __ATOMIC_RELAXED);
    set_used(c, 0);
    reset_blocks(c);
    __atomic_store_n(&c->cls, cls + 1, __ATOMIC_RELAXED);
    list_push(&with_room[cls], c);
    return c;
}

/* Under fries_lock: its last block came back. It keeps its pages for a while: a
 * refill of any class takes it first. */
static void chunk_went_idle(struct bm_fry_chunk *c)
{
    list_remove(&with_room[c->cls - 1], c);
    list_push(&idle, c);
    count_idle(1);
    c->fresh = 1;
    chunks_changed = true;
}

/* Under fries_lock: an idle chunk's time is up. Punch it whole (dirty pages dropped
 * unwritten); if the punch fails, it stays idle with its data, still reusable. */
static void chunk_emptied(struct bm_fry_chunk *c)
{
    pthread_mutex_lock(&bm_lock);
    bool punched = bm_punch(chunk_addr(c), BM_FRY_CHUNK);
    pthread_mutex_unlock(&bm_lock);
    if (!punched) {
        purge_failed();
        return;
    }
    /* Pages purged earlier hold no disk any more. */
    bm_count(&bm_counters.disk_reserved, -(int64_t)(BM_FRY_CHUNK - c->purged_bytes));
    list_remove(&idle, c);
    count_idle(-1);
    __atomic_store_n(&c->state, BM_FRY_EMPTY, __ATOMIC_RELAXED);
    reset_blocks(c);
    list_push(&empty, c);
    totals.empty_chunks++;
    chunks_changed = true;
}

/* After fries_lock: the segment shows chunks as they come and go; counters alone wait
 * for the control thread's heartbeat rather than cost a wake-up per batch. */
static void unlock_and_publish(void)
{
    bool changed = chunks_changed;
    chunks_changed = false;
    pthread_mutex_unlock(&fries_lock);
    if (changed) {
        bm_segment_ensure();
        bm_segment_ring();
    }
}

/* ------------------------------------------------------------------ purge */

/* The whole pages of block i of c: [*lo, *hi), empty if it holds none. */
static void block_pages(const struct bm_fry_chunk *c, uint32_t i, uintptr_t *lo, uintptr_t *hi)
{
    size_t size = bm_fry_class_size(c->cls - 1);
    uintptr_t start = chunk_addr(c) + (uintptr_t)i * size, mask = bm_page_size - 1;
    *lo = (start + mask) & ~mask;
    *hi = (start + size) & ~mask;
    if (*hi < *lo)
        *hi = *lo;
}

static uint32_t block_index(const struct bm_fry_chunk *c, const void *p)
{
    return (uint32_t)(((uintptr_t)p - chunk_addr(c)) / bm_fry_class_size(c->cls - 1));
}

/* Under fries_lock: a purged block of c, its pages reserved on disk again, or NULL
 * with errno ENOSPC (disk full) or EAGAIN. */
static void *take_purged(struct bm_fry_chunk *c)
{
    for (size_t w = 0; w < BM_FRY_PURGE_WORDS; w++) {
        if (!c->purged[w])
            continue;
        uint32_t i = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(c->purged[w]));
        uintptr_t lo, hi;
        block_pages(c, i, &lo, &hi);
        if (hi > lo && !reserve(lo, hi - lo)) /* a block may hold no whole page */
            return NULL;
        c->purged[w] &= ~(UINT64_C(1) << (i % 64));
        c->purged_bytes -= (uint32_t)(hi - lo);
        totals.purged_now -= hi - lo;
        totals.reserved_again += hi - lo;
        bm_count(&bm_counters.disk_reserved, (int64_t)(hi - lo));
        return block_addr(c, i);
    }
    errno = EAGAIN;
    return NULL;
}

/* Under fries_lock: a free block of c, warm ones first, purged ones last (they cost a
 * fallocate); NULL with errno when c has none left or a purged one cannot be reserved. */
static void *take_block(struct bm_fry_chunk *c)
{
    void *p = c->free;
    if (p) {
        c->free = *(void **)p;
        return p;
    }
    if ((p = c->aged)) {
        c->aged = *(void **)p;
        return p;
    }
    if (c->bump < blocks_per_chunk(c->cls - 1))
        return block_addr(c, c->bump++);
    return take_purged(c);
}

/* Under fries_lock: c may have free blocks that a purge will age, then punch. */
static void queue_purge(struct bm_fry_chunk *c)
{
    if (c->queued || bm_fry_class_size(c->cls - 1) < BM_FRY_PURGE_MIN || purge_broken)
        return;
    c->queued = 1;
    c->purge_next = purge_head;
    __atomic_store_n(&purge_head, index_of(c), __ATOMIC_RELAXED);
}

bool bm_fry_purge_pending(void)
{
    return __atomic_load_n(&purge_head, __ATOMIC_RELAXED) != NONE ||
           __atomic_load_n(&idle_count, __ATOMIC_RELAXED) != 0;
}

/* Under fries_lock and bm_lock: punch blocks first..last of c (marked in doomed),
 * whose pages are contiguous; on success they become purged, else free again. */
static void punch_run(struct bm_fry_chunk *c, const uint64_t *doomed, uint32_t first,
                      uint32_t last, uintptr_t lo, uintptr_t hi)
{
    bool punched = hi == lo || bm_backing_punch(lo, hi - lo);
    if (!punched)
        purge_failed();
    for (uint32_t i = first; i <= last; i++) {
        if (!(doomed[i / 64] >> (i % 64) & 1))
            continue;
        if (punched) {
            c->purged[i / 64] |= UINT64_C(1) << (i % 64);
            continue;
        }
        void *p = block_addr(c, i);
        *(void **)p = c->free;
        c->free = p;
    }
    if (punched) {
        c->purged_bytes += (uint32_t)(hi - lo);
        totals.purged_now += hi - lo;
        totals.purged += hi - lo;
        bm_count(&bm_counters.disk_reserved, -(int64_t)(hi - lo));
    }
}

/* Under fries_lock and bm_lock: punch the blocks of list (none purged yet), merging
 * neighbours into one system call. */
static void punch_blocks(struct bm_fry_chunk *c, void *list)
{
    uint64_t doomed[BM_FRY_PURGE_WORDS] = {0};
    for (void *p = list; p; p = *(void **)p) {
        uint32_t i = block_index(c, p);
        doomed[i / 64] |= UINT64_C(1) << (i % 64);
    }
    uint32_t count = blocks_per_chunk(c->cls - 1), first = 0, last = 0;
    uintptr_t run_lo = 0, run_hi = 0;
    bool open = false;
    for (uint32_t i = 0; i < count; i++) {
        if (!(doomed[i / 64] >> (i % 64) & 1))
            continue;
        uintptr_t lo, hi;
        block_pages(c, i, &lo, &hi);
        if (open && lo == run_hi) {
            run_hi = hi, last = i;
            continue;
        }
        if (open)
            punch_run(c, doomed, first, last, run_lo, run_hi);
        open = true, first = last = i, run_lo = lo, run_hi = hi;
    }
    if (open)
        punch_run(c, doomed, first, last, run_lo, run_hi);
}

/* Under fries_lock: punch what aged (everything with all) and age what is free. A
 * chunk a forked child still shares is left alone: its pages are the child's too, and
 * punching there would copy them first. */
static void purge_chunk(struct bm_fry_chunk *c, bool all)
{
    c->queued = 0;
    if (c->state != BM_FRY_ACTIVE || c->used == 0 ||
        bm_fry_class_size(c->cls - 1) < BM_FRY_PURGE_MIN)
        return; /* since queued: gone idle or empty (punch_idle), or a small class now */
    pthread_mutex_lock(&bm_lock);
    if (!bm_backing_frozen(chunk_addr(c), BM_FRY_CHUNK)) {
        /* Detached first: a block whose punch fails goes back to c->free. */
        void *doomed = c->aged, *fresh = c->free;
        c->aged = c->free = NULL;
        if (all)
            punch_blocks(c, fresh);
        else
            c->aged = fresh;
        punch_blocks(c, doomed);
    }
    pthread_mutex_unlock(&bm_lock);
    if (c->free || c->aged)
        queue_purge(c);
}

/* Under fries_lock: after a failure to reserve a purged block of the first chunk with
 * room, one of cls with a block that needs no reservation, or NULL. */
static struct bm_fry_chunk *chunk_with_warm_room(unsigned cls)
{
    for (uint32_t i = with_room[cls]; i != NONE; i = bm_fry_chunks[i].next)
        if (has_warm_room(&bm_fry_chunks[i]))
            return &bm_fry_chunks[i];
    return NULL;
}

void bm_fry_purge_tick(bool tight)
{
    static uint64_t last_ns;
    if (!bm_fry_purge_pending())
        return;
    uint64_t now = bm_now_ns();
    if (!tight && now - last_ns < PURGE_INTERVAL_NS)
        return;
    last_ns = now;
    bm_fry_purge(tight);
}

/* Under fries_lock: punch the idle chunks that were idle at the last purge already
 * (all of them with all). */
static void punch_idle(bool all)
{
    uint32_t next = idle;
    while (next != NONE) {
        struct bm_fry_chunk *c = &bm_fry_chunks[next];
        next = c->next;
        if (c->fresh && !all)
            c->fresh = 0;
        else if (!purge_broken)
            chunk_emptied(c);
    }
}

void bm_fry_purge(bool all)
{
    if (!bm_fry_purge_pending())
        return; /* the common case costs no lock */
    pthread_mutex_lock(&fries_lock);
    punch_idle(all);
    uint32_t next = purge_head;
    __atomic_store_n(&purge_head, NONE, __ATOMIC_RELAXED);
    while (next != NONE) {
        struct bm_fry_chunk *c = &bm_fry_chunks[next];
        next = c->purge_next;
        purge_chunk(c, all);
    }
    pthread_mutex_unlock(&fries_lock);
}

/* ------------------------------------------------------------------ handing out */

size_t bm_fry_refill(unsigned cls, void **out, size_t n)
{
    size_t got = 0;
    pthread_mutex_lock(&fries_lock);
    if (!arena_ready())
        errno = EAGAIN;
    while (got < n && bm_fry_chunks) {
        struct bm_fry_chunk *c =
            with_room[cls] != NONE ? &bm_fry_chunks[with_room[cls]] : new_chunk(cls);
        if (!c)
            break;
        while (got < n && has_room(c) && (out[got] = take_block(c)) != NULL) {
            set_used(c, c->used + 1);
            got++;
        }
        if (!has_room(c)) {
            list_remove(&with_room[cls], c);
        } else if (got < n) {
            /* A purged block could not be reserved (errno says why): a block elsewhere
             * may need no reservation. */
            int why = errno;
            struct bm_fry_chunk *warm = chunk_with_warm_room(cls);
            if (!warm) {
                errno = why;
                break;
            }
            list_remove(&with_room[cls], warm);
            list_push(&with_room[cls], warm);
        }
    }
    int why = errno;
    unlock_and_publish();
    errno = why;
    return got;
}

void bm_fry_return(void *const *blocks, size_t n)
{
    pthread_mutex_lock(&fries_lock);
    for (size_t i = 0; i < n; i++) {
        struct bm_fry_chunk *c = bm_fry_chunk_of(blocks[i]);
        if (c->state != BM_FRY_ACTIVE)
            continue; /* foreign: the parent's, since a fork */
        if (!has_room(c))
            list_push(&with_room[c->cls - 1], c);
        *(void **)blocks[i] = c->free;
        c->free = blocks[i];
        set_used(c, c->used - 1);
        if (c->used == 0)
            chunk_went_idle(c);
        else
            queue_purge(c);
    }
    unlock_and_publish();
}

/* ------------------------------------------------------------------ entry points */

void *bm_fry_alloc(unsigned cls, bool zero)
{
    void *p = bm_fry_cache_take(cls);
    if (!p)
        return NULL;
    size_t size = bm_fry_class_size(cls);
    if (zero)
        memset(p, 0, size); /* a reused block holds old data */
    bm_stats_fry_changed(1, (int64_t)size);
    bm_count(&bm_counters.allocs, 1);
    return p;
}

/* A block start of an active chunk, or NULL for a caller's bug or a foreign block. */
static bool is_block(const struct bm_fry_chunk *c, const void *p)
{
    uintptr_t offset = (uintptr_t)p & (BM_FRY_CHUNK - 1);
    return __atomic_load_n(&c->state, __ATOMIC_RELAXED) == BM_FRY_ACTIVE && offset % bm_fry_class_size(c->cls - 1) == 0;
}

void bm_fry_free(struct bm_fry_chunk *chunk, void *p)
{
    int saved = errno;
    unsigned cls = chunk->cls - 1;
    if (!is_block(chunk, p)) {
        /* Inherited from the parent (its file, kept until exit), or a caller's bug. */
        if (__atomic_load_n(&chunk->state, __ATOMIC_RELAXED) != BM_FRY_FOREIGN)
            bm_debug("free(%p): not the start of a fry; ignored", p);
        errno = saved;
        return;
    }
    bm_stats_fry_changed(-1, -(int64_t)bm_fry_class_size(cls));
    bm_count(&bm_counters.frees, 1);
    bm_fry_cache_give(cls, p);
    errno = saved;
}

size_t bm_fry_usable(struct bm_fry_chunk *chunk, const void *p)
{
    size_t size = bm_fry_class_size(chunk->cls - 1);
    uintptr_t offset = (uintptr_t)p & (BM_FRY_CHUNK - 1);
    return size - offset % size; /* from p to the end of its block */
}

BM_EXPORT int bigmaac_fries_stats(struct bigmaac_fries_stats *out)
{
    if (!out)
        return BIGMAAC_ERR_INVALID;
    pthread_mutex_lock(&fries_lock);
    out->chunks = totals.chunks;
    out->idle_chunks = idle_count;
    out->empty_chunks = totals.empty_chunks;
    out->purged_bytes = totals.purged_now;
    out->purged_total = totals.purged;
    out->reserved_again = totals.reserved_again;
    pthread_mutex_unlock(&fries_lock);
    return BIGMAAC_OK;
}

uint64_t bm_fry_chunk_bytes(uintptr_t addr)
{
    struct bm_fry_chunk *c = bm_fry_chunk_of((const void *)addr);
    if (!c || __atomic_load_n(&c->state, __ATOMIC_RELAXED) != BM_FRY_ACTIVE)
        return 0;
    return (uint64_t)__atomic_load_n(&c->used, __ATOMIC_RELAXED) * bm_fry_class_size(c->cls - 1);
}
