/* fork.c: what a forked child inherits.
 *
 * Big regions and fries chunks are MAP_SHARED windows on the parent's swap files; left
 * alone, a child writing into them would write into its parent's memory, and a child
 * freeing them would punch holes in its parent's data. So the child remaps every
 * inherited region MAP_PRIVATE on the same file ranges: it keeps reading the data and
 * its writes become its own private copies, never seen by the parent. The child never
 * punches or grows these regions (free just unmaps them), opens its own swap file for
 * new allocations, and has its own segment and control thread, made on first use.
 *
 * The other direction is cow.c's: before the fork the parent freezes the file ranges
 * the child will map (write-protects them) and copies a chunk on its first write, so
 * the child's snapshot never changes under it; ranges are thawed, and their disk given
 * back, once no child is left (docs/fork.md).
 *
 * fork+exec copies nothing: the exec releases the child's lock, so the parent's next
 * write thaws the chunk instead of copying it. vfork and posix_spawn run no atfork
 * handlers: nothing is frozen, and the child execs straight away.
 */
#include "internal.h"

#include <unistd.h>

static void before_fork(void)
{
    pthread_mutex_lock(&bm_lock);
    bm_cow_before_fork();
}

static void in_parent(void)
{
    bm_cow_after_fork_parent();
    pthread_mutex_unlock(&bm_lock);
}

static void in_child(void)
{
    pthread_mutex_init(&bm_lock, NULL);
    bm_recycle_forget_after_fork(); /* cached regions map the parent's file */
    bm_cow_after_fork_child();
    if (bm_swap.fd >= 0)
        close(bm_swap.fd);
    bm_swap_set_active(-1);
    bm_swap.unusable = false; /* the child opens its own on first use */
    bm_stats_reset();
    bm_segment_forget_after_fork();
    bm_control_forget_after_fork();
    bm_pageout_forget_after_fork();
}

void bm_fork_register(void)
{
    static int registered;
    if (!__atomic_exchange_n(&registered, 1, __ATOMIC_ACQ_REL))
        pthread_atfork(before_fork, in_parent, in_child);
}
