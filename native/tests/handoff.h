/* handoff.h: threads that allocate, reallocate and free each other's blocks.
 *
 * Shared by the preloaded stress case (tests/limits.c) and the ThreadSanitizer build
 * of the allocator core (tests/tsan_stress.c), which renames malloc and friends. Each
 * worker makes blocks on both sides of the big threshold, fills them with a pattern
 * and posts them to another worker's inbox; a worker taking a block checks it,
 * reallocates it (growing or shrinking, often across the threshold), checks the kept
 * prefix, and frees it or refills and passes it on. Every block is freed by a thread
 * other than the one that made it at least once in its life.
 */
#ifndef BIGMAAC_TEST_HANDOFF_H
#define BIGMAAC_TEST_HANDOFF_H

#include "harness.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define HANDOFF_MAX_THREADS 16
#define HANDOFF_INBOX 32

struct handoff_block { char *p; size_t size; uint64_t seed; };

struct handoff_inbox {
    pthread_mutex_t lock;
    struct handoff_block items[HANDOFF_INBOX];
    int head, count;
};

struct handoff {
    int threads, rounds;
    size_t min_big;
    int (*owns)(const void *);
    struct handoff_inbox inbox[HANDOFF_MAX_THREADS];
    pthread_barrier_t done;
};

struct handoff_worker {
    struct handoff *h;
    int id;
    uint64_t rng;
    uint64_t blocks, reallocs, crossings;
    char failure[200];
};

static uint64_t handoff_random(struct handoff_worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* Small, just around the threshold, or big (up to 4x the threshold). */
static size_t handoff_size(struct handoff_worker *w)
{
    size_t t = w->h->min_big, r = handoff_random(w);
    switch (r % 3) {
    case 0: return t / 4 + (r >> 8) % (t / 2);
    case 1: return t - 4096 + (r >> 8) % 8192;
    default: return t + (r >> 8) % (3 * t);
    }
}

static bool handoff_post(struct handoff *h, int to, struct handoff_block b)
{
    struct handoff_inbox *box = &h->inbox[to];
    pthread_mutex_lock(&box->lock);
    bool ok = box->count < HANDOFF_INBOX;
    if (ok)
        box->items[(box->head + box->count++) % HANDOFF_INBOX] = b;
    pthread_mutex_unlock(&box->lock);
    return ok;
}

static bool handoff_take(struct handoff *h, int id, struct handoff_block *b)
{
    struct handoff_inbox *box = &h->inbox[id];
    pthread_mutex_lock(&box->lock);
    bool ok = box->count > 0;
    if (ok) {
        *b = box->items[box->head];
        box->head = (box->head + 1) % HANDOFF_INBOX;
        box->count--;
    }
    pthread_mutex_unlock(&box->lock);
    return ok;
}

static bool handoff_fail(struct handoff_worker *w, const char *what, const struct handoff_block *b)
{
    snprintf(w->failure, sizeof w->failure, "worker %d: %s (block %p, %zu bytes, seed %llx)",
             w->id, what, (void *)b->p, b->size, (unsigned long long)b->seed);
    return false;
}

/* Big blocks are ours, small ones the next allocator's. */
static bool handoff_owner_right(struct handoff_worker *w, const struct handoff_block *b)
{
    bool big = b->size >= w->h->min_big;
    return (w->h->owns(b->p) != 0) == big || handoff_fail(w, big ? "big block not ours"
                                                                  : "small block ours", b);
}

static bool handoff_check_free(struct handoff_worker *w, struct handoff_block *b)
{
    if (check_pattern(b->p, b->size, b->seed) != SIZE_MAX)
        return handoff_fail(w, "data changed in transit", b);
    free(b->p);
    return true;
}

static bool handoff_new(struct handoff_worker *w, int round)
{
    struct handoff_block b = {.size = handoff_size(w)};
    bool zeroed = handoff_random(w) % 4 == 0;
    b.p = zeroed ? calloc(1, b.size) : malloc(b.size);
    if (!b.p)
        return handoff_fail(w, "allocation failed", &b);
    if (!handoff_owner_right(w, &b))
        return false;
    for (size_t i = 0; zeroed && i < b.size; i += 4096)
        if (b.p[i] != 0)
            return handoff_fail(w, "calloc memory not zero", &b);
    if (zeroed && b.p[b.size - 1] != 0)
        return handoff_fail(w, "calloc memory not zero at the end", &b);
    b.seed = (uint64_t)w->id << 48 | (uint64_t)round << 8 | 1;
    fill_pattern(b.p, b.size, b.seed);
    w->blocks++;
    int to = (w->id + 1 + (int)(handoff_random(w) % (uint64_t)(w->h->threads - 1))) %
             w->h->threads;
    return handoff_post(w->h, to, b) || handoff_check_free(w, &b);
}

/* Check a block from another thread, resize it, check what was kept, then free it or
 * pass it on. */
static bool handoff_rework(struct handoff_worker *w, struct handoff_block b)
{
    if (check_pattern(b.p, b.size, b.seed) != SIZE_MAX)
        return handoff_fail(w, "data changed in transit", &b);
    size_t size = handoff_size(w);
    char *q = realloc(b.p, size);
    if (!q)
        return handoff_fail(w, "realloc failed", &b);
    size_t kept = size < b.size ? size : b.size;
    w->reallocs++;
    w->crossings += (size >= w->h->min_big) != (b.size >= w->h->min_big);
    b.p = q;
    if (check_pattern(b.p, kept & ~(size_t)7, b.seed) != SIZE_MAX)
        return handoff_fail(w, "realloc lost data", &b);
    b.size = size;
    if (!handoff_owner_right(w, &b))
        return false;
    if (handoff_random(w) % 2) {
        free(b.p);
        return true;
    }
    b.seed = (b.seed + 2) ^ ((uint64_t)w->id << 40);
    fill_pattern(b.p, b.size, b.seed);
    return handoff_post(w->h, (w->id + 1) % w->h->threads, b) || handoff_check_free(w, &b);
}

static void *handoff_main(void *arg)
{
    struct handoff_worker *w = arg;
    struct handoff_block b;
    bool ok = true;
    for (int round = 0; ok && round < w->h->rounds; round++) {
        ok = handoff_new(w, round);
        for (int n = 0; ok && n < 2 && handoff_take(w->h, w->id, &b); n++)
            ok = handoff_rework(w, b);
    }
    /* Nobody posts after the barrier: each worker empties its own inbox. */
    pthread_barrier_wait(&w->h->done);
    while (handoff_take(w->h, w->id, &b))
        handoff_check_free(w, &b);
    return NULL;
}

/* Runs the workers; 0 when every block kept its data, else 1 with the reason printed. */
static int handoff_run(struct handoff *h, struct handoff_worker *workers)
{
    pthread_t tids[HANDOFF_MAX_THREADS];
    pthread_barrier_init(&h->done, NULL, (unsigned)h->threads);
    for (int i = 0; i < h->threads; i++) {
        pthread_mutex_init(&h->inbox[i].lock, NULL);
        workers[i] = (struct handoff_worker){.h = h, .id = i, .rng = 0x9E3779B97F4A7C15u * (i + 1)};
    }
    for (int i = 0; i < h->threads; i++)
        pthread_create(&tids[i], NULL, handoff_main, &workers[i]);
    uint64_t blocks = 0, reallocs = 0, crossings = 0;
    int failed = 0;
    for (int i = 0; i < h->threads; i++) {
        pthread_join(tids[i], NULL);
        if (workers[i].failure[0]) {
            fprintf(stderr, "%s\n", workers[i].failure);
            failed = 1;
        }
        blocks += workers[i].blocks;
        reallocs += workers[i].reallocs;
        crossings += workers[i].crossings;
    }
    pthread_barrier_destroy(&h->done);
    CHECK(!failed, "a worker failed");
    CHECK(reallocs > blocks / 4 && crossings > reallocs / 8,
          "too little exercised: %llu blocks, %llu reallocs, %llu crossings",
          (unsigned long long)blocks, (unsigned long long)reallocs,
          (unsigned long long)crossings);
    return 0;
}

#endif
