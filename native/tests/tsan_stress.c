/* tsan_stress.c: the allocator core under ThreadSanitizer.
 *
 * TSan cannot run under a preloaded allocator (its runtime owns malloc), so make
 * test-tsan compiles every source of the library together with this file, with
 * -fsanitize=thread and the exported malloc family renamed (-Dmalloc=bmt_malloc ...):
 * the routing of interpose.c, the big path, recycling, the stats and the control
 * thread all run instrumented, and bm_next resolves to TSan's own malloc. The
 * hand-off stress of handoff.h then runs on eight threads while another thread pages
 * out and the control thread publishes, punches and serves. TSan reports any race on
 * stderr and fails the run (halt_on_error).
 */
#include "handoff.h"

#include <unistd.h>

#include "bigmaac.h"

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
    h.min_big = 256 * 1024; /* BIGMAAC_MIN_BIGMAAC_SIZE set by the Makefile */
    h.owns = bigmaac_owns;
    CHECK(getenv("BIGMAAC_MIN_BIGMAAC_SIZE") && !strcmp(getenv("BIGMAAC_MIN_BIGMAAC_SIZE"), "256K"),
          "run through make test-tsan (BIGMAAC_MIN_BIGMAAC_SIZE=256K)");
    free(malloc(h.min_big)); /* the first big block starts the control thread */
    pthread_t pager;
    pthread_create(&pager, NULL, pageout_loop, NULL);
    int rc = handoff_run(&h, workers);
    int expected = 0;
    __atomic_compare_exchange_n(&stop_pageouts, &expected, 1, 0, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    pthread_join(pager, NULL);
    CHECK(stop_pageouts == 1, "page-out failed");
    printf("tsan stress: %d threads x %d rounds, no race reported\n", h.threads, h.rounds);
    return rc;
}
