/* internal.h: declarations shared by the files of libbigmaac.so.
 *
 * Concerns, one per file:
 *   bootstrap.c  next allocator (dlsym RTLD_NEXT) and the static buffer used meanwhile
 *   config.c     environment parsing
 *   log.c        one-line diagnostics on stderr, without allocating
 *   interpose.c  the exported malloc family: routes small requests to the next allocator
 *   reserve.c    the reserved address range and placement of regions inside it
 *   swapfile.c   the swap directory and the process's unlinked swap file
 *   region.c     big regions: create, free, resize (fallocate + MAP_SHARED)
 *   fries.c      the fries arena: size classes, chunks, refill and return, punching
 *   fries_cache.c per-thread caches of free fries (the lock-free fast path)
 *   recycle.c    freed big regions kept mapped (data punched) for the next request
 *   rebind.c     malloc of RTLD_DEEPBIND libraries bound back to us
 *   pressure.c   how much memory is left before it is tight (cgroup room), for recycle.c
 *   stats.c      counters updated with relaxed atomics on the big path
 *   segment.c    the stats segment file and its seqlock publication
 *   control.c    the control thread: publishes stats, serves page-out requests
 *   pageout.c    write-back then drop, residency measurement
 *   dirty.c      the dirty budget: write-back started before dirty pages pile up
 *   fork.c       pthread_atfork handlers
 *   cow.c        fork isolation: frozen chunks, copy on the parent's write, backing files
 *   reader.c     reader API (independent of everything above)
 */
#ifndef BIGMAAC_INTERNAL_H
#define BIGMAAC_INTERNAL_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bigmaac.h"
#include "bigmaac_segment.h"

/* Everything declared below is internal to the library. Hidden declarations (not only
 * definitions) let the compiler reach a global with one RIP-relative load instead of a
 * GOT look-up: the small path reads two of them per call. */
#pragma GCC visibility push(hidden)

#define BM_EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Test builds only (tests/core_unit.c, -DBM_TEST_HOOKS): a function the unit tests set
 * to act at a named point, e.g. fork from another thread there. Nothing in the library. */
#ifdef BM_TEST_HOOKS
extern void (*bm_test_hook)(const char *where, uintptr_t addr, size_t len);
#define BM_TEST_HOOK(where, addr, len)                                                    \
    do {                                                                                   \
        if (bm_test_hook)                                                                  \
            bm_test_hook(where, addr, len);                                                \
    } while (0)
#else
#define BM_TEST_HOOK(where, addr, len) ((void)0)
#endif

#define BM_KIB ((size_t)1 << 10)
#define BM_MIB ((size_t)1 << 20)
#define BM_GIB ((size_t)1 << 30)
#define BM_TIB ((size_t)1 << 40)

/* ------------------------------------------------------------------ bootstrap.c */

struct bm_next {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    /* glibc's own entry points (__libc_malloc ...), NULL where the next library has none:
     * ours forward to them (interpose.c). */
    void *(*libc_malloc)(size_t);
    void *(*libc_calloc)(size_t, size_t);
    void *(*libc_realloc)(void *, size_t);
    void (*libc_free)(void *);
    void *(*libc_memalign)(size_t, size_t);
    void *(*libc_valloc)(size_t);
    void *(*libc_pvalloc)(size_t);
};
extern struct bm_next bm_next;

/* 0 until bm_init completed; read on every call (an acquire load, plain on x86). */
extern int bm_ready;

/* Resolve the next allocator and load the configuration. Returns false while the
 * resolution is in progress (dlsym re-entering malloc): serve from the static buffer. */
bool bm_init(void);
void *bm_bootstrap_alloc(size_t size, size_t align);
#define BM_BOOTSTRAP_SIZE (256 * 1024)
extern unsigned char bm_bootstrap_buffer[BM_BOOTSTRAP_SIZE] __attribute__((visibility("hidden")));
/* Inline, one compare: free() asks this of every pointer. */
static inline bool bm_bootstrap_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)bm_bootstrap_buffer < BM_BOOTSTRAP_SIZE;
}
size_t bm_bootstrap_size(const void *p);
/* bm_next.free until the next allocator is known: only NULL and our own pointers can
 * reach it then, so the small path of free() needs no null check. */
void bm_free_unresolved(void *p);

/* The one range that free() and realloc() compare a pointer with. It covers the
 * bootstrap buffer and, once reserved, the reservation, and whatever lies between the
 * two: a pointer there takes the slow path, which decides precisely. It only widens,
 * and len is stored before lo, so a reader that sees the old lo with the new len still
 * covers everything the old span did. */
struct bm_span {
    const unsigned char *lo;
    size_t len;
};
extern struct bm_span bm_span;
static inline bool bm_span_covers(const void *p)
{
    uintptr_t lo = (uintptr_t)__atomic_load_n(&bm_span.lo, __ATOMIC_ACQUIRE);
    return (uintptr_t)p - lo < __atomic_load_n(&bm_span.len, __ATOMIC_RELAXED);
}
/* Widen the span to cover [addr, addr + len). Under bm_lock (one writer). */
void bm_span_include(uintptr_t addr, size_t len);

/* ------------------------------------------------------------------ config.c */

enum bm_disk_full { BM_DISK_FULL_FAIL, BM_DISK_FULL_RAM };

struct bm_config {
    size_t min_big;
    size_t min_fry;          /* 0 = fries off */
    size_t fries_size;       /* SIZE_FRIES: address space of the fries arena */
    size_t reserve_size;     /* SIZE_BIGMAAC: address space reserved for big regions */
    size_t recycle_bytes;    /* freed bytes kept with their data for reuse (recycle.c) */
    enum bm_disk_full on_disk_full;
    int verbose;
    char swap_dir[BIGMAAC_PATH_MAX];
};
extern struct bm_config bm_config;

/* The size from which a request is ours: min_fry when fries are on, else min_big. 0
 * until the next allocator is resolved, so that every request takes the slow path
 * until then. Read (acquire) on every malloc: the one compare of the small path. */
extern size_t bm_divert_from;

/* Parse the environment. Returns false if the environment is not available yet
 * (too early in start-up): defaults stay in place and the constructor calls again. */
bool bm_config_load(void);
/* "123", "64K", "64M", "2G", "1T" (powers of 1024). False on garbage or overflow. */
bool bm_parse_size(const char *text, size_t *out);

/* ------------------------------------------------------------------ log.c */

void bm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ reserve.c */

enum bm_region_flags {
    BM_REGION_INHERITED = 1u << 0, /* mapped from the parent's file before a fork */
    BM_REGION_CACHED = 1u << 1,    /* freed, punched, kept mapped for reuse (recycle.c) */
    BM_REGION_FRIES = 1u << 2,     /* a chunk of the fries arena (fries.c), never freed */
};

struct bm_region {
    uintptr_t addr;
    size_t len;             /* mapped, page-rounded */
    uint64_t created_ns;
    uint32_t flags;
    uint32_t reserved0;
};

struct bm_space {
    uintptr_t base;         /* 0 until reserved */
    size_t size;
    struct bm_region *regions; /* sorted by addr; own anonymous mapping */
    size_t count;
    size_t capacity;
};

/* Guarded by bm_lock except base/size, written once (base first) and read with atomics. */
extern struct bm_space bm_space;
extern pthread_mutex_t bm_lock;
extern size_t bm_page_size;

bool bm_space_reserve(size_t want);
/* size is published last (release), so a non-zero size comes with its base; while
 * it is 0 nothing is ours. One load pair and one compare: free() asks this. */
static inline bool bm_space_owns(const void *p)
{
    size_t size = __atomic_load_n(&bm_space.size, __ATOMIC_ACQUIRE);
    return (uintptr_t)p - __atomic_load_n(&bm_space.base, __ATOMIC_RELAXED) < size;
}
/* Start of a free, aligned range of len bytes, or 0. Keeps the headroom of the region
 * before it free and prefers ranges with headroom after, so regions can grow in place. */
uintptr_t bm_space_find(size_t len, size_t align);
/* Room a region of len bytes wants free after it for growth (0 below 16 MiB). */
size_t bm_space_headroom(size_t len);
struct bm_region *bm_space_insert(uintptr_t addr, size_t len);
/* The live region (not a cached one) starting at addr, or NULL. */
struct bm_region *bm_space_lookup(uintptr_t addr);
/* Any entry starting at addr, cached ones included. */
struct bm_region *bm_space_entry(uintptr_t addr);
void bm_space_remove(struct bm_region *region);
size_t bm_space_room_after(const struct bm_region *region);
/* Give a range back to the reservation: PROT_NONE, no memory, no file. */
bool bm_space_unmap(uintptr_t addr, size_t len);
/* A region this process allocated and has not freed: not inherited, not cached. */
static inline bool bm_region_is_own_live(const struct bm_region *r)
{
    return !(r->flags & (BM_REGION_INHERITED | BM_REGION_CACHED));
}
static inline off_t bm_space_offset(uintptr_t addr) { return (off_t)(addr - bm_space.base); }

/* ------------------------------------------------------------------ swapfile.c */

struct bm_swap {
    int fd;                 /* -1 until the first big allocation; O_CLOEXEC */
    bool unusable;          /* the swap dir could not be used: warned once */
    uint64_t fs_magic;
    char fs_name[BIGMAAC_FSTYPE_MAX];
    bool on_ram;
    bool no_fallocate;      /* its filesystem has no fallocate: big requests stay in RAM */
};
extern struct bm_swap bm_swap;

/* Under bm_lock. Opens the process's unlinked swap file on first use. False when the
 * swap dir is unusable, or its filesystem cannot reserve disk (counted: a fall-back). */
bool bm_swap_ensure(void);
/* fallocate of the swap files failed with err: true (warned once, counted) when the
 * filesystem does not support it at all (some NFS and FUSE file systems, ext2). */
bool bm_swap_reserve_failed(int err);
/* A new unlinked file in the swap directory (O_CLOEXEC, 0600), or -1. */
int bm_swap_open_file(void);
/* cow.c: the file new regions go to from now on; -1: none (RAM until reset). */
void bm_swap_set_active(int fd);

/* ------------------------------------------------------------------ region.c */

/* The largest page-cache folio a shared file mapping may get (a PMD). Regions start on
 * this boundary and their punches extend to it, so no folio ever spans two regions: a
 * punch that covers part of a folio has to split it, and where the split fails the
 * folio keeps its RAM until the rest of it is punched too. (fries.c punches pages inside
 * chunks: measured on 6.18/ext4, the split succeeds and disk and RAM come back.) */
#define BM_FOLIO_MAX (2 * BM_MIB)

/* Punch [addr, addr+len) out of the swap file, extended to the next folio boundary
 * (within the reservation: nothing else lives there). */
bool bm_punch(uintptr_t addr, size_t len);
/* From addr to the folio boundary after addr+len: how far a region is mapped. */
size_t bm_folio_len(uintptr_t addr, size_t len);

/* Fresh regions read as zeros; zero asks the same of a fall-back to RAM. */
void *bm_big_alloc(size_t size, size_t align, bool zero);
void bm_big_free(void *p);
void *bm_big_realloc(void *p, size_t size);
size_t bm_big_usable(const void *p);

/* ------------------------------------------------------------------ fries.c */

/* A chunk is one folio-sized, folio-aligned region holding blocks of one size class, so
 * an empty chunk is punched whole (see BM_FOLIO_MAX). */
#define BM_FRY_CHUNK_SHIFT 21
#define BM_FRY_CHUNK ((size_t)1 << BM_FRY_CHUNK_SHIFT)
#define BM_FRY_MAX_BLOCK BM_MIB  /* larger fries get a region of their own */
#define BM_FRY_CLASSES 60        /* 16..128 by 16, then 4 per doubling up to 1 MiB */

enum bm_fry_state {
    BM_FRY_EMPTY,    /* no block out; file range punched */
    BM_FRY_ACTIVE,   /* disk reserved; blocks out or available */
    BM_FRY_FOREIGN,  /* inherited across fork(): the parent's file, never reused */
};

/* Blocks of classes from BM_FRY_PURGE_MIN up hold whole pages: once free for a while,
 * those pages are punched (fries.c, "purge"), so at most 512 blocks per chunk. */
#define BM_FRY_PURGE_MIN ((size_t)4096)
#define BM_FRY_PURGE_WORDS (BM_FRY_CHUNK / BM_FRY_PURGE_MIN / 64)

/* One per 2 MiB-aligned granule of the reservation (whose base is aligned: reserve.c),
 * found by address shift: ownership of a fry is O(1). Guarded by the fries lock except cls, set before any block is out. */
struct bm_fry_chunk {
    uint32_t cls;        /* size class + 1; 0: not a fries chunk */
    uint32_t state;      /* enum bm_fry_state */
    uint32_t used;       /* blocks out: held by the program or a thread cache */
    uint32_t bump;       /* blocks from here on were never handed out since refilled */
    void *free;          /* blocks given back, linked through their first word */
    void *aged;          /* blocks already free at the last purge: punched at the next */
    uint64_t purged[BM_FRY_PURGE_WORDS]; /* free blocks whose whole pages are punched */
    uint32_t purged_bytes; /* those pages' bytes: no disk reserved for them */
    uint32_t next, prev; /* class list of chunks with room, or the idle or empty list */
    uint32_t purge_next; /* list of chunks with blocks to purge */
    uint32_t queued;     /* on that list */
    uint32_t fresh;      /* idle (no block out) since before the last purge: not yet */
};
extern struct bm_fry_chunk *bm_fry_chunks; /* NULL until the first fry */

/* The chunk of a pointer already known to lie in the reservation, or NULL. */
static inline struct bm_fry_chunk *bm_fry_chunk_of(const void *p)
{
    struct bm_fry_chunk *chunks = __atomic_load_n(&bm_fry_chunks, __ATOMIC_ACQUIRE);
    if (!chunks)
        return NULL;
    struct bm_fry_chunk *c = &chunks[((uintptr_t)p >> BM_FRY_CHUNK_SHIFT) -
                                     (bm_space.base >> BM_FRY_CHUNK_SHIFT)];
    return __atomic_load_n(&c->cls, __ATOMIC_RELAXED) ? c : NULL;
}

size_t bm_fry_class_size(unsigned cls);
/* The class serving size bytes aligned to align (<= 16: any), or -1 when the block
 * would exceed BM_FRY_MAX_BLOCK. */
int bm_fry_class_of(size_t size, size_t align);
/* A block of class cls; NULL with errno ENOSPC (disk full) or ENOMEM (arena full). */
void *bm_fry_alloc(unsigned cls, bool zero);
void bm_fry_free(struct bm_fry_chunk *chunk, void *p);
size_t bm_fry_usable(struct bm_fry_chunk *chunk, const void *p);
/* Punch the whole pages of free blocks, and idle chunks whole: those free (idle) since
 * the last call, or all of them. The control thread calls it about every second
 * (purging blocks 1-2 s after their free); a page-out, the dirty budget and tight
 * memory with all set. Not under bm_lock. */
void bm_fry_purge(bool all);
/* Control thread: bm_fry_purge every PURGE_INTERVAL_NS, or at once (all) when memory is
 * tight. No lock when nothing waits. */
void bm_fry_purge_tick(bool tight);
/* Any block or idle chunk waiting for a purge (no lock). */
bool bm_fry_purge_pending(void);
/* Bytes of blocks out of the chunk at addr (for the segment table), 0 if none. */
uint64_t bm_fry_chunk_bytes(uintptr_t addr);
/* Under the fries lock (fries_cache.c): move up to n blocks of cls from the arena
 * into out / give n blocks back. */
size_t bm_fry_refill(unsigned cls, void **out, size_t n);
void bm_fry_return(void *const *blocks, size_t n);

/* ------------------------------------------------------------------ fries_cache.c */

/* Lock-free for the calling thread: a block from its cache, refilled from the arena. */
void *bm_fry_cache_take(unsigned cls);
void bm_fry_cache_give(unsigned cls, void *p);
/* Once, at the arena's creation: the key whose destructor returns a thread's cache. */
bool bm_fry_cache_init(void);
/* In a forked child: the forking thread's cache holds the parent's blocks. */
void bm_fry_cache_forget_after_fork(void);

/* ------------------------------------------------------------------ recycle.c */

/* Under bm_lock unless said otherwise. */
/* A cached region of at least len bytes (and not much more) aligned to align, ready
 * for use (file range reserved, zeros if zero), flag cleared; NULL if none fits or
 * fallocate fails. */
struct bm_region *bm_recycle_take(size_t len, size_t align, bool zero);
/* Keep a freed region mapped for reuse. False (nothing done) if it does not fit the
 * budget: the caller releases it. */
bool bm_recycle_put(struct bm_region *region);
/* Unmap cached regions right after region until room_after reaches want (or none is
 * left there), so it can grow in place. */
void bm_recycle_clear_after(struct bm_region *region, size_t want);
/* Unmap every cached region (before a search for a fresh gap gives up). */
bool bm_recycle_drain(void);
/* Drop the data of cached regions freed at least age_ns ago. */
void bm_recycle_punch_older_than(uint64_t age_ns);
/* Control thread, not under bm_lock: punch regions whose delay has passed. */
void bm_recycle_tick(void);
/* No room left before the memory cgroup (or the machine) is nearly full, as last
 * measured by bm_recycle_tick; no lock. */
bool bm_memory_tight(void);
/* In a forked child: the cache maps the parent's file; drop it without punching. */
void bm_recycle_forget_after_fork(void);

/* ------------------------------------------------------------------ rebind.c */

/* If libraries were loaded since the last call, bind the malloc family of those that
 * bypass us (RTLD_DEEPBIND) back to us. One dl_iterate_phdr step when nothing changed;
 * call before handing out a disk-backed block, never under bm_lock. */
void bm_rebind_check(void);

/* ------------------------------------------------------------------ pressure.c */

/* Control thread: bytes this process may still use before its memory cgroup (or,
 * without a limit, the machine) is nearly full; 0 when memory is tight. A few small
 * reads: never call it on the allocation path. */
uint64_t bm_memory_room(void);

/* ------------------------------------------------------------------ stats.c */

struct bm_counters {
    uint64_t live_big_count;
    uint64_t live_big_bytes;
    uint64_t live_fry_count;
    uint64_t live_fry_bytes;
    uint64_t peak_bytes;
    uint64_t allocs;
    uint64_t frees;
    uint64_t reallocs;
    uint64_t disk_reserved;
    uint64_t fallbacks;
    uint64_t failures;
    uint64_t pageouts;
    uint64_t budget_writebacks;
    uint64_t dirty_peak;
    uint64_t realloc_in_place;  /* big reallocs that kept their address */
    uint64_t realloc_moved;     /* reallocs that copied into a new block */
    uint64_t realloc_copied;    /* bytes those copies moved */
};
extern struct bm_counters bm_counters;

static inline void bm_count(uint64_t *counter, int64_t delta)
{
    __atomic_add_fetch(counter, (uint64_t)delta, __ATOMIC_RELAXED);
}
void bm_stats_live_changed(int64_t count_delta, int64_t bytes_delta);
void bm_stats_fry_changed(int64_t count_delta, int64_t bytes_delta);
void bm_stats_copy(struct bigmaac_counters *out);
void bm_stats_reset(void);
uint64_t bm_now_ns(void);   /* CLOCK_REALTIME */

/* ------------------------------------------------------------------ segment.c */

/* Create this process's segment and control thread on first use. Not under bm_lock. */
void bm_segment_ensure(void);
/* The mapped segment of this process, or NULL. */
struct bigmaac_segment *bm_segment_get(void);
/* Control thread only: publish counters and the table under the seqlock. */
void bm_segment_publish(void);
/* Control thread: the table of the last publication (largest first); its length. */
size_t bm_segment_table(const struct bigmaac_allocation **table);
/* Control thread: publish a residency answer under residency.seq. */
void bm_segment_publish_residency(const struct bigmaac_residency *residency);
/* Wake the control thread (after a change worth publishing): a system call only when it
 * sleeps on the doorbell. */
void bm_segment_ring(void);
/* Control thread: sleep until the doorbell moves from seen, or timeout_ns. */
void bm_segment_wait(uint32_t seen, long timeout_ns);
void bm_segment_forget_after_fork(void);
/* Control thread: recreate the file if someone removed it. */
void bm_segment_restore_if_removed(void);
/* At load: remove the segment an earlier image of this process left before exec(). */
void bm_segment_remove_previous_image(void);

/* ------------------------------------------------------------------ control.c */

bool bm_control_start(void);
/* Control thread: answer a pending residency request, if any. */
void bm_control_serve_residency(void);
void bm_control_forget_after_fork(void);

/* ------------------------------------------------------------------ pageout.c */

struct bm_pageout_job {
    uint64_t *bytes_done;      /* progress words (in the control block, or local) */
    uint64_t *bytes_total;
    const uint64_t *cancel_word; /* stop when *cancel_word == cancel_value */
    uint64_t cancel_value;
    void (*between_chunks)(void); /* NULL, or run after each chunk (without bm_lock) */
};

int bm_pageout_run(struct bm_pageout_job *job, struct bigmaac_pageout_result *result);
/* Residency of all live regions (not under bm_lock; copies the list under it). */
int bm_resident(uint64_t *resident, uint64_t *dirty);
/* Totals over all live regions, and one entry per table entry (the published table). */
int bm_residency_measure(const struct bigmaac_allocation *table, size_t n,
                         struct bigmaac_residency *out);
/* cachestat(2) of a range of a swap file (len 0: to its end): bytes cached, dirty or
 * under write-back; false if unavailable. */
bool bm_file_cachestat(int fd, off_t off, size_t len, uint64_t *cached, uint64_t *dirty);
void bm_pageout_forget_after_fork(void);

/* ------------------------------------------------------------------ dirty.c */

/* The budget in bytes (0 = none): BIGMAAC_DIRTY_BUDGET, else derived from the memory
 * cgroup's limit. Computed once, on first call. */
uint64_t bm_dirty_budget(void);
/* Control thread: start write-back if the swap file's dirty bytes exceed the budget.
 * Returns in how many ns it wants to check again, or 0 (no need: wake on the doorbell). */
long bm_dirty_tick(void);

/* ------------------------------------------------------------------ reader.c */

/* Field 22 of /proc/PID/stat, 0 if the process is gone. */
uint64_t bm_process_start_time(int32_t pid);

/* ------------------------------------------------------------------ fork.c */

void bm_fork_register(void);

/* ------------------------------------------------------------------ cow.c */

/* Under bm_lock. A chunk (BM_FOLIO_MAX) of a region is backed by one of several swap
 * files after a fork (docs/fork.md); before any fork, all of these act on bm_swap.fd. */
/* Chunks starting in [addr, addr+len) are new: back them by the active file. False
 * (errno EAGAIN) when there is none. */
bool bm_backing_claim(uintptr_t addr, size_t len);
/* fallocate / map MAP_SHARED each run of [addr, addr+len) on the file backing it. */
bool bm_backing_reserve(uintptr_t addr, size_t len);
bool bm_backing_map(uintptr_t addr, size_t len);
/* Drop [addr, addr+len): zeros afterwards. Never touches a file range a child may map:
 * whole chunks get a hole of the active file instead. */
bool bm_backing_punch(uintptr_t addr, size_t len);
/* sync_file_range / POSIX_FADV_DONTNEED each run on its file. */
void bm_backing_sync(uintptr_t addr, size_t len, unsigned flags);
void bm_backing_drop_cache(uintptr_t addr, size_t len);
/* MADV_DONTNEED on the file-backed runs only (a RAM copy would lose its data). */
void bm_backing_drop_pages(uintptr_t addr, size_t len);
/* fn over each run of [addr, addr+len) with the file backing it (-1: a RAM copy). */
typedef bool (*bm_backing_fn)(int fd, uintptr_t addr, size_t len, void *arg);
bool bm_backing_runs(uintptr_t addr, size_t len, bm_backing_fn fn, void *arg);
/* fn over every open backing file (bm_swap.fd alone before any fork). */
typedef void (*bm_file_fn)(int fd, void *arg);
void bm_backing_each_file(bm_file_fn fn, void *arg);
/* A fork has made several backing files possible: from then on the two above need
 * bm_lock (a file may be closed meanwhile); before, they may run without it. */
bool bm_backing_split(void);
/* Any chunk of [addr, addr+len) write-protected for a child (resize must move it). */
bool bm_backing_frozen(uintptr_t addr, size_t len);
/* The chunks starting in [addr, addr+len) are being unmapped. */
void bm_backing_forget(uintptr_t addr, size_t len);
/* atfork, under bm_lock. */
void bm_cow_before_fork(void);
void bm_cow_after_fork_parent(void);
void bm_cow_after_fork_child(void);
/* Any thread, no lock: make the frozen chunks of [addr, addr+len) writable before a
 * system call writes there (syscalls.c). errno is kept. */
void bm_cow_prepare_write(uintptr_t addr, size_t len);
/* Once no child is left: thaw, punch what no chunk maps, close unused files. */
void bm_cow_reap_locked(void);
/* Control thread, not under bm_lock. */
void bm_fork_tick(void);

#pragma GCC visibility pop

#endif /* BIGMAAC_INTERNAL_H */
