/* interpose.c: the malloc family this library exports.
 *
 * Small requests go straight to the next allocator: one acquire load (bm_ready), one
 * compare with the threshold, one indirect call; no lock, no system call. Requests of
 * at least BIGMAAC_MIN_BIGMAAC_SIZE become disk-backed regions (region.c). Pointers are
 * routed back by address: inside the reserved range they are ours, inside the bootstrap
 * buffer they are ignored, anything else belongs to the next allocator.
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

static inline bool is_big(size_t size)
{
    return unlikely(size >= bm_config.min_big);
}

static bool power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

BM_EXPORT void *malloc(size_t size)
{
    if (!ready())
        return bm_bootstrap_alloc(size, 16);
    return is_big(size) ? bm_big_alloc(size, 0, false) : bm_next.malloc(size);
}

BM_EXPORT void *calloc(size_t count, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (!ready())
        return bm_bootstrap_alloc(total, 16);
    /* Diverted by the product: np.zeros calls calloc(nbytes, 1). */
    return is_big(total) ? bm_big_alloc(total, 0, true) : bm_next.calloc(count, size);
}

BM_EXPORT void free(void *p)
{
    if (!p || bm_bootstrap_owns(p))
        return;
    if (bm_space_owns(p)) {
        bm_big_free(p);
        return;
    }
    if (ready())
        bm_next.free(p);
}

BM_EXPORT void cfree(void *p)
{
    free(p);
}

static size_t usable_size(void *p)
{
    if (!p)
        return 0;
    if (bm_bootstrap_owns(p))
        return bm_bootstrap_size(p);
    if (bm_space_owns(p))
        return bm_big_usable(p);
    return ready() && bm_next.malloc_usable_size ? bm_next.malloc_usable_size(p) : 0;
}

BM_EXPORT size_t malloc_usable_size(void *p)
{
    return usable_size(p);
}

/* A block of the next allocator (or the bootstrap buffer) that must become big. */
static void *promote(void *p, size_t size)
{
    void *fresh = bm_big_alloc(size, 0, false);
    if (!fresh)
        return NULL;
    size_t old = usable_size(p);
    memcpy(fresh, p, old < size ? old : size);
    free(p);
    return fresh;
}

BM_EXPORT void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    if (size == 0) {
        free(p); /* glibc: realloc(p, 0) frees p and returns NULL */
        return NULL;
    }
    if (bm_space_owns(p))
        return bm_big_realloc(p, size);
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
    return is_big(size) ? promote(p, size) : bm_next.realloc(p, size);
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
    if (!ready())
        return bm_bootstrap_alloc(size, align);
    if (is_big(size))
        return bm_big_alloc(size, align, false);
    if (bm_next.memalign)
        return bm_next.memalign(align, size);
    void *p = NULL;
    return bm_next.posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size)
               ? NULL
               : p;
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

BM_EXPORT int bigmaac_owns(const void *p)
{
    return bm_space_owns(p);
}
