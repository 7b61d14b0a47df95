/* stats.c: process counters.
 *
 * The allocation path only adds to these with relaxed atomics; the control thread
 * copies them into the segment under its seqlock (segment.c). Live counts exclude
 * regions and fries inherited across fork(): those are the parent's memory. Fries
 * count the class size of their block.
 */
#include "internal.h"

#include <string.h>
#include <time.h>

struct bm_counters bm_counters;

uint64_t bm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* peak_bytes is the peak of big and fry bytes together. */
static void raise_peak(uint64_t live)
{
    uint64_t peak = __atomic_load_n(&bm_counters.peak_bytes, __ATOMIC_RELAXED);
    while (live > peak && !__atomic_compare_exchange_n(&bm_counters.peak_bytes, &peak, live, 1,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

void bm_stats_live_changed(int64_t count_delta, int64_t bytes_delta)
{
    if (count_delta)
        bm_count(&bm_counters.live_big_count, count_delta);
    uint64_t big = __atomic_add_fetch(&bm_counters.live_big_bytes, (uint64_t)bytes_delta,
                                      __ATOMIC_RELAXED);
    if (bytes_delta > 0)
        raise_peak(big + __atomic_load_n(&bm_counters.live_fry_bytes, __ATOMIC_RELAXED));
}

void bm_stats_fry_changed(int64_t count_delta, int64_t bytes_delta)
{
    bm_count(&bm_counters.live_fry_count, count_delta);
    uint64_t fry = __atomic_add_fetch(&bm_counters.live_fry_bytes, (uint64_t)bytes_delta,
                                      __ATOMIC_RELAXED);
    if (bytes_delta > 0)
        raise_peak(fry + __atomic_load_n(&bm_counters.live_big_bytes, __ATOMIC_RELAXED));
}

static uint64_t load(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void bm_stats_copy(struct bigmaac_counters *out)
{
    memset(out, 0, sizeof *out);
    out->live_big_count = load(&bm_counters.live_big_count);
    out->live_big_bytes = load(&bm_counters.live_big_bytes);
    out->live_fry_count = load(&bm_counters.live_fry_count);
    out->live_fry_bytes = load(&bm_counters.live_fry_bytes);
    out->peak_bytes = load(&bm_counters.peak_bytes);
    out->allocs = load(&bm_counters.allocs);
    out->frees = load(&bm_counters.frees);
    out->reallocs = load(&bm_counters.reallocs);
    out->disk_reserved = load(&bm_counters.disk_reserved);
    out->fallbacks = load(&bm_counters.fallbacks);
    out->failures = load(&bm_counters.failures);
    out->pageouts = load(&bm_counters.pageouts);
    out->budget_writebacks = load(&bm_counters.budget_writebacks);
    out->dirty_peak = load(&bm_counters.dirty_peak);
}

/* In a forked child: it starts with nothing of its own. */
void bm_stats_reset(void)
{
    memset(&bm_counters, 0, sizeof bm_counters);
}

BM_EXPORT int bigmaac_realloc_stats(struct bigmaac_realloc_stats *out)
{
    if (!out)
        return BIGMAAC_ERR_INVALID;
    out->in_place = load(&bm_counters.realloc_in_place);
    out->moved = load(&bm_counters.realloc_moved);
    out->bytes_copied = load(&bm_counters.realloc_copied);
    return BIGMAAC_OK;
}
