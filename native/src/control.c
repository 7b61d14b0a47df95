/* control.c: the control thread, the segment's only writer.
 *
 * It sleeps on the control block's doorbell futex (shared: requesters in other
 * processes ring it too), and on each wake-up serves a pending page-out request,
 * republishes the stats, answers a pending residency request, at most every 5 ms; it
 * also drops the data of freed regions kept for reuse once their delay has passed
 * (recycle.c) and the pages of free fries (fries.c), thaws memory frozen for children
 * that are gone (cow.c) and keeps dirty
 * pages under the budget (dirty.c), which may ask to be woken sooner than the heartbeat.
 * The timeout keeps the heartbeat fresh. All signals are blocked in it so the program's
 * signal handling is unchanged.
 */
#include "internal.h"

#include <limits.h>
#include <stddef.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_NS 1000000000L
#define PUBLISH_INTERVAL_NS 5000000L
#define STACK_SIZE (256 * 1024)

static int started;
/* The answer being built: too big for the stack, and only this thread uses it. */
static struct bigmaac_residency residency;

static void ring(uint32_t *word)
{
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void write_result(struct bigmaac_control *control, uint64_t id, int status,
                         const struct bigmaac_pageout_result *result)
{
    uint32_t seq = control->result_seq;
    __atomic_store_n(&control->result_seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&control->result_status, status, __ATOMIC_RELAXED);
    __atomic_store_n(&control->bytes_written, result->bytes_written, __ATOMIC_RELAXED);
    __atomic_store_n(&control->duration_ns, result->duration_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&control->resident_before, result->resident_before, __ATOMIC_RELAXED);
    __atomic_store_n(&control->resident_after, result->resident_after, __ATOMIC_RELAXED);
    /* DONE before result_id: a requester that sees the slot free (request_id ==
     * result_id) also sees DONE, which it moves to QUEUED to claim the slot (reader.c). */
    __atomic_store_n(&control->state, BIGMAAC_PAGEOUT_DONE, __ATOMIC_RELEASE);
    __atomic_store_n(&control->result_id, id, __ATOMIC_RELEASE);
    __atomic_store_n(&control->result_seq, seq + 2, __ATOMIC_RELEASE);
    ring(&control->done);
}

void bm_control_serve_residency(void)
{
    struct bigmaac_segment *map = bm_segment_get();
    if (!map)
        return;
    struct bigmaac_control *control = &map->control;
    uint64_t id = __atomic_load_n(&control->residency_request, __ATOMIC_ACQUIRE);
    if (id == __atomic_load_n(&control->residency_done, __ATOMIC_RELAXED))
        return;
    /* Requests that arrived together share one measurement: id is the newest. */
    const struct bigmaac_allocation *table;
    size_t n = bm_segment_table(&table);
    memset(&residency, 0, offsetof(struct bigmaac_residency, table));
    if (bm_residency_measure(table, n, &residency) != BIGMAAC_OK)
        residency.count = 0; /* no memory for the region list: answer with nothing */
    residency.request_id = id;
    bm_segment_publish_residency(&residency);
    __atomic_store_n(&control->residency_done, id, __ATOMIC_RELEASE);
    ring(&control->residency_ready);
}

/* A requester claimed request_id (reader.c); results lag behind until we serve it. */
static void serve_request(struct bigmaac_control *control)
{
    uint64_t id = __atomic_load_n(&control->request_id, __ATOMIC_ACQUIRE);
    if (id == __atomic_load_n(&control->result_id, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&control->bytes_done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&control->bytes_total, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&control->started_id, id, __ATOMIC_RELEASE);
    __atomic_store_n(&control->state, BIGMAAC_PAGEOUT_RUNNING, __ATOMIC_RELEASE);
    struct bigmaac_pageout_result result;
    memset(&result, 0, sizeof result);
    struct bm_pageout_job job = {
        .bytes_done = &control->bytes_done,
        .bytes_total = &control->bytes_total,
        .cancel_word = &control->cancel_id,
        .cancel_value = id,
        .between_chunks = bm_control_serve_residency,
    };
    int status = __atomic_load_n(&control->cancel_id, __ATOMIC_ACQUIRE) == id
                     ? BIGMAAC_ERR_CANCELLED
                     : bm_pageout_run(&job, &result);
    write_result(control, id, status, &result);
}

static void *control_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "bigmaac");
    /* Tests only: publish without pausing, so readers meet a writer running flat out. */
    const char *flat_out = getenv("BIGMAAC_TEST_PUBLISH_FLAT_OUT");
    bool pause_between = !(flat_out && flat_out[0] == '1');
    for (;;) {
        struct bigmaac_segment *map = bm_segment_get();
        if (!map)
            return NULL;
        uint32_t seen = __atomic_load_n(&map->control.doorbell, __ATOMIC_ACQUIRE);
        serve_request(&map->control);
        bm_segment_restore_if_removed();
        bm_recycle_tick();
        bm_fry_purge_tick(bm_memory_tight());
        bm_rebind_check();
        bm_fork_tick();
        long next_dirty_check = bm_dirty_tick();
        bm_segment_publish();
        bm_control_serve_residency();
        if (!pause_between)
            continue;
        /* Coalesce: a program allocating flat out rings on every call; publishing at
         * most every few milliseconds bounds our share of a CPU. */
        struct timespec pause = {.tv_sec = 0, .tv_nsec = PUBLISH_INTERVAL_NS};
        nanosleep(&pause, NULL);
        long wait_ns = HEARTBEAT_NS - PUBLISH_INTERVAL_NS;
        if (next_dirty_check > 0 && next_dirty_check < wait_ns)
            wait_ns = next_dirty_check;
        bm_segment_wait(seen, wait_ns);
    }
}

bool bm_control_start(void)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&started, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return true;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, control_main, NULL);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        __atomic_store_n(&started, 0, __ATOMIC_RELEASE);
    return rc == 0;
}

/* Threads do not survive fork(): the child starts its own with its own segment. */
void bm_control_forget_after_fork(void)
{
    __atomic_store_n(&started, 0, __ATOMIC_RELEASE);
}
