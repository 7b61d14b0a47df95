/* fries.c: the fries arena, for requests between BIGMAAC_MIN_FRY_SIZE and the big
 * threshold.
 *
 * Blocks come in 60 size classes (16 to 128 bytes by 16, then four per doubling up to
 * 1 MiB), so rounding wastes at most a quarter. A chunk is a 2 MiB region of the
 * reservation (flag BM_REGION_FRIES), MAP_SHARED from the swap file like any big region,
 * holding blocks of one class; chunks are folio-sized and folio-aligned so that an empty
 * one is punched whole and no partly punched folio can write dead data back. Each chunk
 * has a descriptor found by address shift, so free() recognises a fry in O(1).
 *
 * Life of a chunk, all under fries_lock (bm_lock nests inside it for the file work,
 * done through cow.c's bm_backing_*: after a fork a chunk may live on another file):
 *   made     a gap of the reservation, fallocated BEFORE any block is handed out (a full
 *            disk fails the request, never a later write), mapped, listed as a region;
 *   active   blocks go out from its free list, then from its never-used tail (bump);
 *   empty    when its last block comes back it is punched (disk and RAM returned, dirty
 *            pages dropped unwritten) and kept mapped for any class; reusing it costs one
 *            fallocate, which re-reserves the disk.
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

struct bm_fry_chunk *bm_fry_chunks;

static pthread_mutex_t fries_lock = PTHREAD_MUTEX_INITIALIZER;
static bool arena_failed;        /* no reservation or swap file: fries stay in RAM */
static uint32_t with_room[BM_FRY_CLASSES]; /* chunks with a block to hand out */
static uint32_t empty = NONE;    /* punched chunks, ready for any class */
static size_t chunks_made;       /* against the SIZE_FRIES budget */
static bool chunks_changed;      /* made or emptied: worth publishing at once */
static bool budget_warned;

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

static bool has_room(const struct bm_fry_chunk *c)
{
    return c->free || c->bump < blocks_per_chunk(c->cls - 1);
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
    empty = NONE;
    chunks_made = 0;
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

/* Under fries_lock: a chunk ready to hand out blocks of cls, or NULL with errno. */
static struct bm_fry_chunk *new_chunk(unsigned cls)
{
    struct bm_fry_chunk *c;
    if (empty != NONE) {
        c = &bm_fry_chunks[empty];
        pthread_mutex_lock(&bm_lock);
        bool reserved = bm_backing_reserve(chunk_addr(c), BM_FRY_CHUNK); /* its file: cow.c */
        int why = errno;
        pthread_mutex_unlock(&bm_lock);
        if (!reserved) {
            errno = (why == ENOSPC || why == EDQUOT || why == EFBIG) ? ENOSPC : EAGAIN;
            return NULL;
        }
        bm_count(&bm_counters.disk_reserved, (int64_t)BM_FRY_CHUNK);
        list_remove(&empty, c);
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
        chunks_changed = true;
        c = &bm_fry_chunks[(addr >> BM_FRY_CHUNK_SHIFT) - first_granule()];
    }
    __atomic_store_n(&c->state, BM_FRY_ACTIVE, __ATOMIC_RELAXED);
    set_used(c, 0);
    c->bump = 0;
    c->free = NULL;
    __atomic_store_n(&c->cls, cls + 1, __ATOMIC_RELAXED);
    list_push(&with_room[cls], c);
    return c;
}

/* Under fries_lock: its last block came back. Punch it whole (dirty pages dropped
 * unwritten); if the punch fails, keep it active with its data, still reusable. */
static void chunk_emptied(struct bm_fry_chunk *c)
{
    pthread_mutex_lock(&bm_lock);
    bool punched = bm_punch(chunk_addr(c), BM_FRY_CHUNK);
    pthread_mutex_unlock(&bm_lock);
    if (!punched)
        return;
    bm_count(&bm_counters.disk_reserved, -(int64_t)BM_FRY_CHUNK);
    list_remove(&with_room[c->cls - 1], c);
    __atomic_store_n(&c->state, BM_FRY_EMPTY, __ATOMIC_RELAXED);
    c->free = NULL;
    c->bump = 0;
    list_push(&empty, c);
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

size_t bm_fry_refill(unsigned cls, void **out, size_t n)
{
    size_t size = bm_fry_class_size(cls), got = 0;
    pthread_mutex_lock(&fries_lock);
    if (!arena_ready())
        errno = EAGAIN;
    while (got < n && bm_fry_chunks) {
        struct bm_fry_chunk *c =
            with_room[cls] != NONE ? &bm_fry_chunks[with_room[cls]] : new_chunk(cls);
        if (!c)
            break;
        uint32_t count = blocks_per_chunk(cls);
        for (; got < n && (c->free || c->bump < count); set_used(c, c->used + 1)) {
            if (c->free) {
                out[got] = c->free;
                c->free = *(void **)c->free;
            } else {
                out[got] = (void *)(chunk_addr(c) + (uintptr_t)c->bump++ * size);
            }
            got++;
        }
        if (!has_room(c))
            list_remove(&with_room[cls], c);
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
            chunk_emptied(c);
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

uint64_t bm_fry_chunk_bytes(uintptr_t addr)
{
    struct bm_fry_chunk *c = bm_fry_chunk_of((const void *)addr);
    if (!c || __atomic_load_n(&c->state, __ATOMIC_RELAXED) != BM_FRY_ACTIVE)
        return 0;
    return (uint64_t)__atomic_load_n(&c->used, __ATOMIC_RELAXED) * bm_fry_class_size(c->cls - 1);
}
