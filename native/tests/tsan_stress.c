/* tsan_stress.c: the allocator core under ThreadSanitizer.
 *
 * TSan cannot run under a preloaded allocator (its runtime owns malloc), so make
 * test-tsan compiles every source of the library together with this file, with
 * -fsanitize=thread and the exported malloc family renamed (-Dmalloc=bmt_malloc ...):
 * the routing of interpose.c, the big path, recycling, the fries arena (with
 * BIGMAAC_MIN_FRY_SIZE), the stats and the control thread all run instrumented, and bm_next resolves to TSan's own malloc. The
 * hand-off stress of handoff.h then runs on eight threads while another thread pages
 * out and the control thread publishes, punches and serves. TSan reports any race on
 * stderr and fails the run (halt_on_error).
 */
#include "handoff.h"

#include <unistd.h>

#include "bigmaac.h"
#include "internal.h" /* bm_config: where "ours" starts */

static int stop_pageouts; /* 0 running, 1 stop, 2 failed */

static void *pageout_loop(void *unused)
{
    (void)unused;
    while (!__atomic_load_n(&stop_pageouts, __ATOMIC_RELAXED)) {
        struct bigmaac_pageout_result r;
        int rc = bigmaac_pageout(&r);
        if (rc != 0 && rc != BIGMAAC_ERR_BUSY)
            __atomic_store_n(&stop_pageouts, 2, __ATOMIC_RELAXED);
        struct bigmaac_recycle_stats st;
        bigmaac_recycle_stats(&st);
        usleep(5000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static struct handoff h;
    static struct handoff_worker workers[HANDOFF_MAX_THREADS];
    h.threads = argc > 1 ? atoi(argv[1]) : 8;
    h.rounds = argc > 2 ? atoi(argv[2]) : 150;
    h.owns = bigmaac_owns;
    CHECK(getenv("BIGMAAC_MIN_BIGMAAC_SIZE") && !strcmp(getenv("BIGMAAC_MIN_BIGMAAC_SIZE"), "256K"),
          "run through make test-tsan (BIGMAAC_MIN_BIGMAAC_SIZE=256K)");
    free(malloc(256 * 1024)); /* the first big block starts the control thread */
    /* Ours from the fries threshold when fries are on (make test-tsan runs both). */
    h.min_big = bm_config.min_fry ? bm_config.min_fry : bm_config.min_big;
    pthread_t pager;
    pthread_create(&pager, NULL, pageout_loop, NULL);
    int rc = handoff_run(&h, workers);
    int expected = 0;
    __atomic_compare_exchange_n(&stop_pageouts, &expected, 1, 0, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    pthread_join(pager, NULL);
    CHECK(stop_pageouts == 1, "page-out failed");
    struct bigmaac_fries_stats fries;
    bigmaac_fries_stats(&fries);
    if (bm_config.min_fry) /* the page-outs purged free fries while the workers ran */
        CHECK(fries.chunks > 0 && fries.purged_total > 0, "fries: %llu chunks, %llu purged",
              (unsigned long long)fries.chunks, (unsigned long long)fries.purged_total);
    printf("tsan stress: %d threads x %d rounds, fries from %zu (%llu MiB purged), no race "
           "reported\n", h.threads, h.rounds, bm_config.min_fry,
           (unsigned long long)(fries.purged_total >> 20));
    return rc;
}
