/* fork.c: what a forked child inherits.
 *
 * Big regions are MAP_SHARED windows on the parent's swap file; left alone, a child
 * writing into them would write into its parent's memory, and a child freeing them
 * would punch holes in its parent's data. So the child handler remaps every inherited
 * region MAP_PRIVATE on the same file range: the child keeps reading the data and its
 * writes become its own private copies, never seen by the parent. The child never
 * punches or grows these regions (free just unmaps them), opens its own swap file for
 * new allocations, and has its own segment and control thread, made on first use.
 *
 * Not yet isolated (issue 3): the parent keeps using the file, so until the child has
 * written a page itself it sees the parent's later writes there, and zeros where the
 * parent freed (punched) a region. fork+exec and vfork/posix_spawn copy no data (vfork
 * children run no atfork handlers and exec straight away).
 */
#include "internal.h"

#include <sys/mman.h>
#include <unistd.h>

static void before_fork(void)
{
    pthread_mutex_lock(&bm_lock);
}

static void in_parent(void)
{
    pthread_mutex_unlock(&bm_lock);
}

static void privatise_inherited_regions(void)
{
    for (size_t i = 0; i < bm_space.count; i++) {
        struct bm_region *r = &bm_space.regions[i];
        if (!(r->flags & BM_REGION_INHERITED) && bm_swap.fd >= 0)
            mmap((void *)r->addr, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
                 bm_swap.fd, bm_space_offset(r->addr));
        r->flags |= BM_REGION_INHERITED;
    }
}

static void in_child(void)
{
    pthread_mutex_init(&bm_lock, NULL);
    bm_recycle_forget_after_fork(); /* cached regions map the parent's file */
    privatise_inherited_regions();
    if (bm_swap.fd >= 0)
        close(bm_swap.fd);
    bm_swap.fd = -1;
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
