/* interpose.c: the malloc family this library exports.
 *
 * Small requests go straight to the next allocator: one load and one compare with the
 * threshold (bm_divert_from), then a tail call; no lock, no system call, no TLS. free
 * is one range compare (bm_span) before its tail call. Everything else takes an
 * out-of-line slow path: the bootstrap buffer while the next allocator is resolved,
 * the fries arena (fries.c) from BIGMAAC_MIN_FRY_SIZE, disk-backed regions (region.c)
 * from BIGMAAC_MIN_BIGMAAC_SIZE. Pointers are routed back by address: outside the span
 * they belong to the next allocator; inside it, the slow path decides exactly: in the
 * reserved range they are ours (a fry if its chunk says so, O(1)), in the bootstrap
 * buffer they are ignored, anything else goes to the next allocator. free_sized,
 * free_aligned_sized and glibc's __libc_free and __libc_realloc route by address the
 * same way; __libc_malloc and its kin allocate from the next allocator.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Acquire pairs with bm_init's release, so bm_next is seen complete (a plain load on
 * x86). */
static inline bool ready(void)
{
    return likely(__atomic_load_n(&bm_ready, __ATOMIC_ACQUIRE)) || bm_init();
}

/* The small path's one compare. bm_divert_from is 0 until the next allocator is known,
 * so during bootstrap every request takes the slow path (acquire: see config.c). */
static inline bool is_small(size_t size)
{
    return likely(size < __atomic_load_n(&bm_divert_from, __ATOMIC_ACQUIRE));
}


static bool power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

/* RAM from the next allocator: small requests, and fries when the arena cannot serve. */
static void *next_alloc(size_t size, size_t align, bool zero)
{
    if (zero)
        return bm_next.calloc(1, size);
    if (align <= 16)
        return bm_next.malloc(size);
    if (bm_next.memalign)
        return bm_next.memalign(align, size);
    void *p = NULL;
    return bm_next.posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size)
               ? NULL
               : p;
}

/* A fry, or RAM: the arena full or unusable is a counted fall-back; a full disk is one
 * too when BIGMAAC_ON_DISK_FULL=ram, else a failure with ENOMEM. */
static void *fry_alloc(unsigned cls, size_t size, size_t align, bool zero)
{
    void *p = bm_fry_alloc(cls, zero);
    if (p)
        return p;
    bm_segment_ensure(); /* fall-backs and failures show in the segment (keeps errno) */
    if (errno == ENOSPC && bm_config.on_disk_full != BM_DISK_FULL_RAM) {
        bm_count(&bm_counters.failures, 1);
        errno = ENOMEM;
        return NULL;
    }
    p = next_alloc(size, align, zero);
    if (p)
        bm_count(&bm_counters.fallbacks, 1);
    return p;
}

/* Everything not small: bootstrap, fries, big regions. align 0 or a power of two. */
static __attribute__((noinline)) void *divert(size_t size, size_t align, bool zero)
{
    if (!ready())
        return bm_bootstrap_alloc(size, align ? align : 16);
    if (size >= bm_config.min_big)
        return bm_big_alloc(size, align, zero);
    if (bm_config.min_fry && size >= bm_config.min_fry) {
        int cls = bm_fry_class_of(size, align);
        return cls >= 0 ? fry_alloc((unsigned)cls, size, align, zero)
                        : bm_big_alloc(size, align, zero); /* too large to share a chunk */
    }
    return next_alloc(size, align, zero); /* the configuration came in after the check */
}

BM_EXPORT void *malloc(size_t size)
{
    if (is_small(size))
        return bm_next.malloc(size);
    return divert(size, 0, false);
}

BM_EXPORT void *calloc(size_t count, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    /* Diverted by the product: np.zeros calls calloc(nbytes, 1). */
    if (is_small(total))
        return bm_next.calloc(count, size);
    return divert(total, 0, true);
}

/* A pointer inside the span: ours, or the next allocator's block that lies between the
 * bootstrap buffer and the reservation. */
static __attribute__((noinline)) void free_ours(void *p)
{
    if (!p || bm_bootstrap_owns(p))
        return;
    if (bm_space_owns(p)) {
        struct bm_fry_chunk *chunk = bm_fry_chunk_of(p);
        if (chunk)
            bm_fry_free(chunk, p);
        else
            bm_big_free(p);
        return;
    }
    if (ready() && bm_next.free != bm_free_unresolved)
        bm_next.free(p);
}

void bm_free_unresolved(void *p)
{
    free_ours(p); /* resolves the next allocator, if it can, and hands p on */
}

BM_EXPORT void free(void *p)
{
    if (likely(!bm_span_covers(p))) {
        bm_next.free(p);
        return;
    }
    free_ours(p);
}

BM_EXPORT void cfree(void *p)
{
    free(p);
}

/* C23 (glibc 2.39 exports them): the size and alignment only repeat what the caller
 * asked for, so free's routing by address is all there is to do. Without these a
 * program built against a newer glibc would hand our blocks to its free_sized. */
BM_EXPORT void free_sized(void *p, size_t size)
{
    (void)size;
    free(p);
}

BM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
    (void)align, (void)size;
    free(p);
}

static size_t usable_size(void *p)
{
    if (!p)
        return 0;
    if (bm_bootstrap_owns(p))
        return bm_bootstrap_size(p);
    if (bm_space_owns(p)) {
        struct bm_fry_chunk *chunk = bm_fry_chunk_of(p);
        return chunk ? bm_fry_usable(chunk, p) : bm_big_usable(p);
    }
    return ready() && bm_next.malloc_usable_size ? bm_next.malloc_usable_size(p) : 0;
}

BM_EXPORT size_t malloc_usable_size(void *p)
{
    return usable_size(p);
}

/* Move p's data to a fresh block of size bytes in whatever tier serves that size, then
 * free p. On failure p stays valid, as realloc promises. */
static void *move(void *p, size_t size)
{
    void *fresh = is_small(size) ? bm_next.malloc(size) : divert(size, 0, false);
    if (!fresh)
        return NULL;
    size_t old = usable_size(p), kept = old < size ? old : size;
    memcpy(fresh, p, kept);
    bm_count(&bm_counters.realloc_moved, 1);
    bm_count(&bm_counters.realloc_copied, (int64_t)kept);
    free(p);
    return fresh;
}

/* A fry: stays when the new size still belongs to its class, else moves. */
static void *fry_realloc(struct bm_fry_chunk *chunk, void *p, size_t size)
{
    int cls = size >= bm_config.min_fry && size < bm_config.min_big ? bm_fry_class_of(size, 0)
                                                                     : -1;
    if (cls >= 0 && (uint32_t)cls + 1 == chunk->cls) {
        bm_count(&bm_counters.reallocs, 1);
        return p;
    }
    if (__atomic_load_n(&chunk->state, __ATOMIC_RELAXED) == BM_FRY_ACTIVE)
        bm_count(&bm_counters.reallocs, 1);
    return move(p, size);
}

static __attribute__((noinline)) void *realloc_ours(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    if (size == 0) {
        free(p); /* glibc: realloc(p, 0) frees p and returns NULL */
        return NULL;
    }
    if (bm_space_owns(p)) {
        struct bm_fry_chunk *chunk = bm_fry_chunk_of(p);
        if (chunk)
            return fry_realloc(chunk, p, size);
        /* A big block shrinking into the fries range becomes a fry. */
        if (bm_config.min_fry && size >= bm_config.min_fry && size < bm_config.min_big)
            return move(p, size);
        return bm_big_realloc(p, size);
    }
    if (bm_bootstrap_owns(p)) {
        void *fresh = malloc(size);
        if (fresh)
            memcpy(fresh, p, bm_bootstrap_size(p) < size ? bm_bootstrap_size(p) : size);
        return fresh;
    }
    if (!ready()) {
        errno = ENOMEM; /* a foreign block while we resolve: cannot know its size */
        return NULL;
    }
    return is_small(size) ? bm_next.realloc(p, size) : move(p, size);
}

BM_EXPORT void *realloc(void *p, size_t size)
{
    if (likely(!bm_span_covers(p) && is_small(size)))
        return bm_next.realloc(p, size);
    return realloc_ours(p, size);
}

BM_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

/* Alignment already validated; align is a power of two. */
static void *aligned(size_t align, size_t size)
{
    if (is_small(size))
        return next_alloc(size, align, false);
    return divert(size, align, false);
}

BM_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (!power_of_two(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno; /* posix_memalign reports through its result, not errno */
    void *p = aligned(align, size);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

BM_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (!power_of_two(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, size);
}

/* glibc rounds an alignment that is not a power of two up to the next one. */
BM_EXPORT void *memalign(size_t align, size_t size)
{
    if (align > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
        errno = EINVAL;
        return NULL;
    }
    size_t rounded = 1;
    while (rounded < align)
        rounded <<= 1;
    return aligned(rounded, size);
}

BM_EXPORT void *valloc(size_t size)
{
    return aligned(bm_page_size, size);
}

BM_EXPORT void *pvalloc(size_t size)
{
    size_t rounded = (size + bm_page_size - 1) & ~(bm_page_size - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(bm_page_size, rounded ? rounded : bm_page_size);
}

/* glibc exports its allocator under __libc_* names too (GLIBC_2.2.5 on x86-64): code
 * that calls them directly (malloc wrappers, old hook replacements) means "libc's
 * allocator", so allocations go to the next allocator's __libc_* (or, if it has none,
 * its malloc family), never to disk. But such code may also be handed one of our blocks
 * and free or resize it with __libc_free / __libc_realloc: those route by address, as
 * free and realloc do, so neither side ever gets the other's pointer. */
/* Exactly ours, where the span check of the small path is not enough: it also covers
 * the next allocator's blocks that lie between the bootstrap buffer and the reservation. */
static bool is_ours(const void *p)
{
    return bm_space_owns(p) || bm_bootstrap_owns(p);
}

static bool libc_ready(void)
{
    return ready() && bm_next.malloc;
}

BM_EXPORT void *__libc_malloc(size_t size)
{
    if (!libc_ready())
        return bm_bootstrap_alloc(size, 16);
    return bm_next.libc_malloc ? bm_next.libc_malloc(size) : bm_next.malloc(size);
}

BM_EXPORT void *__libc_calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!libc_ready())
        return bm_bootstrap_alloc(total, 16); /* static storage: zeros */
    return bm_next.libc_calloc ? bm_next.libc_calloc(count, size) : bm_next.calloc(count, size);
}

BM_EXPORT void *__libc_memalign(size_t align, size_t size)
{
    if (!libc_ready())
        return memalign(align, size);
    if (bm_next.libc_memalign)
        return bm_next.libc_memalign(align, size);
    return next_alloc(size, align < 16 ? 16 : align, false);
}

BM_EXPORT void *__libc_valloc(size_t size)
{
    if (libc_ready() && bm_next.libc_valloc)
        return bm_next.libc_valloc(size);
    return __libc_memalign(bm_page_size, size);
}

BM_EXPORT void *__libc_pvalloc(size_t size)
{
    if (libc_ready() && bm_next.libc_pvalloc)
        return bm_next.libc_pvalloc(size);
    size_t rounded = (size + bm_page_size - 1) & ~(bm_page_size - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_memalign(bm_page_size, rounded ? rounded : bm_page_size);
}

BM_EXPORT void __libc_free(void *p)
{
    if (is_ours(p) || !libc_ready()) {
        free_ours(p);
        return;
    }
    if (bm_next.libc_free)
        bm_next.libc_free(p);
    else
        bm_next.free(p);
}

BM_EXPORT void *__libc_realloc(void *p, size_t size)
{
    if (is_ours(p) || !libc_ready())
        return realloc_ours(p, size); /* keeps ours in our tiers (or moves it out) */
    if (bm_next.libc_realloc)
        return bm_next.libc_realloc(p, size);
    return bm_next.realloc(p, size);
}

BM_EXPORT int bigmaac_owns(const void *p)
{
    return bm_space_owns(p);
}
