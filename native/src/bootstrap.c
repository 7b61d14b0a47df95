/* bootstrap.c: finding the next allocator without recursing into ourselves.
 *
 * dlsym(RTLD_NEXT, ...) may itself call malloc or calloc (dlerror buffers). While the
 * resolution runs, every request, from any thread, is served from a static buffer that
 * is never reused; free() recognises its pointers and ignores them. Each block carries
 * its size in a header so realloc and malloc_usable_size work on it.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define HEADER 16

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };

struct bm_next bm_next = {.free = bm_free_unresolved};
int bm_ready;
size_t bm_page_size = 4096;

static int init_state = INIT_NONE;
static bool config_loaded;
_Alignas(64) unsigned char bm_bootstrap_buffer[BM_BOOTSTRAP_SIZE];
static size_t buffer_used;
struct bm_span bm_span = {bm_bootstrap_buffer, BM_BOOTSTRAP_SIZE};

void bm_span_include(uintptr_t addr, size_t len)
{
    uintptr_t lo = (uintptr_t)bm_span.lo, hi = lo + bm_span.len;
    if (addr < lo)
        lo = addr;
    if (addr + len > hi)
        hi = addr + len;
    __atomic_store_n(&bm_span.len, hi - lo, __ATOMIC_RELAXED);
    __atomic_store_n(&bm_span.lo, (const unsigned char *)lo, __ATOMIC_RELEASE);
}

void *bm_bootstrap_alloc(size_t size, size_t align)
{
    if (align < HEADER)
        align = HEADER;
    if (size > BM_BOOTSTRAP_SIZE || (align & (align - 1)))
        goto fail;
    size_t used = __atomic_load_n(&buffer_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (used + HEADER + align - 1) & ~(align - 1);
        size_t end = start + ((size + HEADER - 1) & ~(size_t)(HEADER - 1));
        if (end > BM_BOOTSTRAP_SIZE)
            goto fail;
        if (__atomic_compare_exchange_n(&buffer_used, &used, end, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            memcpy(bm_bootstrap_buffer + start - HEADER, &size, sizeof size);
            return bm_bootstrap_buffer + start; /* static storage: already zero */
        }
    }
fail:
    errno = ENOMEM;
    return NULL;
}

size_t bm_bootstrap_size(const void *p)
{
    size_t size;
    memcpy(&size, (const unsigned char *)p - HEADER, sizeof size);
    return size;
}

static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
    bm_next.malloc = next("malloc");
    bm_next.calloc = next("calloc");
    bm_next.realloc = next("realloc");
    void (*next_free)(void *) = next("free");
    if (next_free)
        bm_next.free = next_free;
    bm_next.posix_memalign = next("posix_memalign");
    bm_next.aligned_alloc = next("aligned_alloc");
    bm_next.memalign = next("memalign");
    bm_next.valloc = next("valloc");
    bm_next.pvalloc = next("pvalloc");
    bm_next.malloc_usable_size = next("malloc_usable_size");
    bm_next.libc_malloc = next("__libc_malloc");
    bm_next.libc_calloc = next("__libc_calloc");
    bm_next.libc_realloc = next("__libc_realloc");
    bm_next.libc_free = next("__libc_free");
    bm_next.libc_memalign = next("__libc_memalign");
    bm_next.libc_valloc = next("__libc_valloc");
    bm_next.libc_pvalloc = next("__libc_pvalloc");
}

bool bm_init(void)
{
    int state = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);
    if (state == INIT_DONE)
        return true;
    if (state == INIT_RUNNING ||
        !__atomic_compare_exchange_n(&init_state, &state, INIT_RUNNING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return __atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE;
    int saved = errno;
    resolve();
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0)
        bm_page_size = (size_t)page;
    config_loaded = bm_config_load();
    errno = saved;
    if (!bm_next.malloc || bm_next.free == bm_free_unresolved || !bm_next.calloc ||
        !bm_next.realloc) {
        /* No allocator after us: nothing sane to do but say so once. */
        bm_warn("cannot find the next malloc with dlsym(RTLD_NEXT); is libc loaded?");
    }
    __atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
    __atomic_store_n(&bm_ready, 1, __ATOMIC_RELEASE);
    return true;
}

/* Runs after libc is initialised. Requests made earlier (by other constructors or the
 * dynamic loader) may have found no environment yet: read it now. */
__attribute__((constructor)) static void on_load(void)
{
    bm_init();
    if (!config_loaded)
        config_loaded = bm_config_load();
    bm_fork_register();
    bm_segment_remove_previous_image();
}
