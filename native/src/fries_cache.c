/* fries_cache.c: per-thread caches of free fries.
 *
 * Most fries are freed by the thread that made them, soon: each thread keeps a small
 * stack of free blocks per size class, so the common malloc and free of a fry touch
 * only thread-local memory, with no lock and no atomic read-modify-write. An empty
 * stack is refilled from the arena with half its depth in one locked call; a full one
 * returns its older half. Depth is bounded by bytes too, so a thread never sits on more than
 * CACHE_BYTES of one class. A block freed by another thread simply joins the freeing
 * thread's cache: blocks carry no owner.
 *
 * The cache is an anonymous mapping (never the heap we interpose), made on a thread's
 * first fry. A pthread key's destructor returns it to the arena when the thread exits;
 * a fry freed later by another destructor goes straight to the arena.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

#define CACHE_DEPTH 32
#define CACHE_BYTES (256 * BM_KIB)

struct fry_cache {
    uint32_t count[BM_FRY_CLASSES];
    void *blocks[BM_FRY_CLASSES][CACHE_DEPTH];
};

static __thread struct fry_cache *cache __attribute__((tls_model("initial-exec")));
static __thread bool exited __attribute__((tls_model("initial-exec")));
static pthread_key_t cache_key;

static uint32_t depth(unsigned cls)
{
    size_t by_bytes = CACHE_BYTES / bm_fry_class_size(cls);
    return by_bytes >= CACHE_DEPTH ? CACHE_DEPTH : by_bytes ? (uint32_t)by_bytes : 1;
}

/* At thread exit: give every block back, then the cache itself. */
static void thread_exit(void *arg)
{
    struct fry_cache *c = arg;
    cache = NULL;
    exited = true;
    for (unsigned cls = 0; cls < BM_FRY_CLASSES; cls++)
        bm_fry_return(c->blocks[cls], c->count[cls]);
    munmap(c, sizeof *c);
}

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_made;

static void make_key(void)
{
    key_made = pthread_key_create(&cache_key, thread_exit) == 0;
}

bool bm_fry_cache_init(void)
{
    pthread_once(&key_once, make_key);
    return key_made;
}

/* NULL after this thread's exit handler ran, or without memory. */
static struct fry_cache *own_cache(void)
{
    if (likely(cache != NULL) || exited)
        return cache;
    /* The key before its first use: the very first fry of the process comes here before
     * the arena exists, and an unset key is 0, somebody else's key (ASan's, Python's). */
    if (!bm_fry_cache_init())
        return NULL;
    void *p = mmap(NULL, sizeof(struct fry_cache), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (pthread_setspecific(cache_key, p) != 0) {
        munmap(p, sizeof(struct fry_cache));
        return NULL;
    }
    cache = p;
    return cache;
}

void *bm_fry_cache_take(unsigned cls)
{
    struct fry_cache *c = own_cache();
    if (!c) {
        void *p;
        return bm_fry_refill(cls, &p, 1) ? p : NULL;
    }
    if (likely(c->count[cls] > 0))
        return c->blocks[cls][--c->count[cls]];
    uint32_t want = depth(cls) / 2 ? depth(cls) / 2 : 1;
    c->count[cls] = (uint32_t)bm_fry_refill(cls, c->blocks[cls], want);
    return c->count[cls] ? c->blocks[cls][--c->count[cls]] : NULL;
}

void bm_fry_cache_give(unsigned cls, void *p)
{
    struct fry_cache *c = own_cache(); /* a consumer thread gets one too */
    if (!c) {
        bm_fry_return(&p, 1);
        return;
    }
    uint32_t limit = depth(cls);
    if (unlikely(c->count[cls] == limit)) {
        /* Return the older half: recent blocks are warm, and old ones kept forever
         * would pin their chunks, which could otherwise empty and be punched. */
        uint32_t back = limit - limit / 2;
        bm_fry_return(c->blocks[cls], back);
        memmove(c->blocks[cls], c->blocks[cls] + back, (limit - back) * sizeof(void *));
        c->count[cls] = limit - back;
    }
    c->blocks[cls][c->count[cls]++] = p;
}

void bm_fry_cache_forget_after_fork(void)
{
    if (cache)
        memset(cache->count, 0, sizeof cache->count);
}
