/* bigmaac.h: in-process API of libbigmaac.so.
 *
 * A program preloaded with the library finds these with dlsym(RTLD_DEFAULT, ...) (they
 * are absent without the preload), or links against libbigmaac.so directly.
 * Return codes are those of enum bigmaac_status in bigmaac_segment.h.
 */
#ifndef BIGMAAC_H
#define BIGMAAC_H

#include <stdint.h>

#include "bigmaac_segment.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bigmaac_pageout_result {
    uint64_t bytes_total;     /* disk-backed bytes considered */
    uint64_t bytes_written;   /* dirty bytes written back to the swap files */
    uint64_t duration_ns;
    uint64_t resident_before; /* page-cache residency of our swap files (see docs) */
    uint64_t resident_after;
};

/* Write back every dirty disk-backed page, then drop the pages from RAM. Runs on the
 * calling thread; safe while other threads allocate, free and write. Returns 0, or
 * BIGMAAC_ERR_BUSY when another page-out (e.g. one requested from outside) is running. */
BIGMAAC_API int bigmaac_pageout(struct bigmaac_pageout_result *result);

/* 1 if p lies in the library's disk-backed address range, else 0. O(1). */
BIGMAAC_API int bigmaac_owns(const void *p);

/* Page-cache residency and dirty bytes of this process's live disk-backed regions.
 * Costs a system call per swap file; never call it on a hot path. */
BIGMAAC_API int bigmaac_resident(uint64_t *resident, uint64_t *dirty);

struct bigmaac_recycle_stats {
    uint64_t reused;        /* big requests served from a cached freed region */
    uint64_t cached;        /* freed regions put in the cache */
    uint64_t evicted;       /* cached regions given back to the reservation */
    uint64_t punched;       /* cached regions whose data was dropped after their free */
    uint64_t cached_count;  /* in the cache now */
    uint64_t cached_bytes;
    uint64_t ready_bytes;   /* of which not punched yet: data, disk and RAM still held */
    uint64_t punched_tight; /* of punched: at once because memory was tight */
};

/* Counters of the cache of freed big regions (for tests and diagnostics). 0, or
 * BIGMAAC_ERR_INVALID when out is NULL. */
BIGMAAC_API int bigmaac_recycle_stats(struct bigmaac_recycle_stats *out);

struct bigmaac_fries_stats {
    uint64_t chunks;          /* 2 MiB chunks of the fries arena mapped by this process */
    uint64_t idle_chunks;     /* of which with no block out, pages kept for reuse a while */
    uint64_t empty_chunks;    /* of which punched whole, kept for blocks of any class */
    uint64_t purged_bytes;    /* pages of free blocks punched (disk and RAM given back) now */
    uint64_t purged_total;    /* bytes those purges punched, in all */
    uint64_t reserved_again;  /* purged bytes reserved on disk again when reused */
};

/* Counters of the fries arena (docs/allocator.md), for tests and diagnostics. 0, or
 * BIGMAAC_ERR_INVALID when out is NULL. */
BIGMAAC_API int bigmaac_fries_stats(struct bigmaac_fries_stats *out);

struct bigmaac_realloc_stats {
    uint64_t in_place;      /* big reallocs that kept their address (grown or shrunk) */
    uint64_t moved;         /* reallocs that copied the data into a new block */
    uint64_t bytes_copied;  /* bytes those copies moved */
};

/* realloc counters since the process started (or forked), for tests and diagnostics:
 * growing a big block in place copies nothing. 0, or BIGMAAC_ERR_INVALID. */
BIGMAAC_API int bigmaac_realloc_stats(struct bigmaac_realloc_stats *out);

struct bigmaac_fork_stats {
    uint64_t frozen_forks;      /* forks that write-protected memory a child maps */
    uint64_t copied_chunks;     /* 2 MiB chunks copied on a write while a child could see them */
    uint64_t ram_chunks;        /* of which copied to RAM (no disk or file for the copy) */
    uint64_t thawed_chunks;     /* chunks made writable again without a copy (no child left) */
    uint64_t unisolated_chunks; /* chunks a child may share with the parent: written in place
                                   for lack of any memory or mapping to copy to (said once
                                   on stderr); in a child, chunks it could not map privately */
    uint64_t frozen_chunks;     /* write-protected now */
    uint64_t backing_files;     /* swap files open now */
    uint64_t snapshot_chunks;   /* chunks copied for the child at the fork instead of
                                   write-protected, to stay under vm.max_map_count */
};

/* Counters of fork isolation (docs/fork.md) since the process started (or forked), for
 * tests and diagnostics. 0, or BIGMAAC_ERR_INVALID. */
BIGMAAC_API int bigmaac_fork_stats(struct bigmaac_fork_stats *out);

struct bigmaac_swap_stats {
    uint64_t no_fallocate_fallbacks; /* big requests (and fries chunks) served from RAM because
                                        the swap directory's filesystem has no fallocate */
    uint32_t no_fallocate;           /* 1: that filesystem cannot reserve disk space */
    uint32_t on_ram;                 /* 1: the swap directory is on tmpfs or ramfs */
};

/* The swap directory as the library found it (docs/reliability.md). 0, or
 * BIGMAAC_ERR_INVALID. */
BIGMAAC_API int bigmaac_swap_stats(struct bigmaac_swap_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* BIGMAAC_H */
