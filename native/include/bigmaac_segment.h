/* bigmaac_segment.h: the stats segment a process under libbigmaac.so publishes,
 * and the reader API other processes use to read it and to ask for a page-out.
 *
 * One file per process, <segment dir>/<pid>.seg, mode 0600, in a 0700 directory owned
 * by the user. The file is exactly sizeof(struct bigmaac_segment) bytes. docs/segment.md
 * describes the protocol; the rules a reader relies on are repeated here.
 *
 * - header and identity are written once, before the file gets its name (it is created
 *   under a temporary name and renamed), so they never change afterwards;
 * - stats are written only by the process's control thread, under stats.seq
 *   (odd while writing);
 * - control carries page-out and residency requests and results (atomics and shared
 *   futexes); only someone who can open the file for writing can make a request;
 * - residency is written only by the control thread, under residency.seq, when
 *   a residency request asks for it (never on a timer).
 *
 * All fields are fixed width and naturally aligned; there are no pointers (addresses are
 * plain numbers). Versioning rule: any change of layout or meaning bumps
 * BIGMAAC_SEGMENT_VERSION; a reader accepts only the version it was built for.
 *
 * The reader API (bottom of this file) is implemented in native/src/reader.c, which
 * depends on nothing else in the library, so the Node addon compiles it alone.
 * Reader functions are thread-safe (they keep no global state) and never raise signals:
 * snapshots are read with pread, not through a mapping. Page-out and residency requests
 * map the control page: a segment truncated by its owner (or root) while a request is
 * open would raise SIGBUS in the requester; the library never truncates its segment.
 * Copies are clamped: table_count and residency count never exceed BIGMAAC_TABLE_SLOTS,
 * and every string ends within its field, whatever the file held.
 */
#ifndef BIGMAAC_SEGMENT_H
#define BIGMAAC_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(BIGMAAC_NO_VISIBILITY)
#define BIGMAAC_API __attribute__((visibility("default")))
#else
#define BIGMAAC_API
#endif

/* ------------------------------------------------------------------ layout */

#define BIGMAAC_SEGMENT_MAGIC UINT64_C(0x31474553434d4742) /* "BGMCSEG1" */
#define BIGMAAC_SEGMENT_VERSION 2u
#define BIGMAAC_SEGMENT_SUFFIX ".seg"

#define BIGMAAC_TABLE_SLOTS 1024   /* live allocations published: the largest ones */
#define BIGMAAC_KERNEL_ID_MAX 64   /* every string field is NUL-terminated, truncated */
#define BIGMAAC_LABEL_MAX 128
#define BIGMAAC_COMMAND_MAX 1024   /* /proc/self/cmdline with NULs turned into spaces */
#define BIGMAAC_PATH_MAX 512
#define BIGMAAC_FSTYPE_MAX 16

/* Tier of a published allocation. */
enum bigmaac_tier {
    BIGMAAC_TIER_BIG = 1,  /* its own page-aligned file-backed region */
    BIGMAAC_TIER_FRY = 2,  /* issue 3: a block of the fries arena */
};

/* bigmaac_identity.flags */
enum bigmaac_identity_flags {
    BIGMAAC_SWAP_ON_RAM = 1u << 0,  /* swap dir is tmpfs/ramfs: no memory is saved */
};

/* Page-out result codes in bigmaac_control.result_status (0 is success). */
enum bigmaac_pageout_state {
    BIGMAAC_PAGEOUT_IDLE = 0,      /* no request ever made */
    BIGMAAC_PAGEOUT_QUEUED = 1,    /* requested, control thread not started on it yet */
    BIGMAAC_PAGEOUT_RUNNING = 2,
    BIGMAAC_PAGEOUT_DONE = 3,      /* result fields describe request_id */
};

struct bigmaac_segment_header {
    uint64_t magic;          /* BIGMAAC_SEGMENT_MAGIC */
    uint32_t version;        /* BIGMAAC_SEGMENT_VERSION */
    uint32_t header_size;    /* sizeof(struct bigmaac_segment_header) */
    uint64_t segment_size;   /* sizeof(struct bigmaac_segment) == file size */
    uint32_t table_slots;    /* BIGMAAC_TABLE_SLOTS */
    uint32_t reserved0;
    uint64_t reserved[4];
};

/* Written once before the segment is published; never changes. */
struct bigmaac_identity {
    int32_t pid;
    uint32_t uid;
    uint64_t start_time;          /* field 22 of /proc/PID/stat (clock ticks since boot) */
    uint64_t created_ns;          /* CLOCK_REALTIME when the segment was created */
    uint64_t min_big_size;        /* BIGMAAC_MIN_BIGMAAC_SIZE in effect */
    uint64_t min_fry_size;        /* BIGMAAC_MIN_FRY_SIZE in effect, 0 = fries off */
    uint64_t reserve_size;        /* address space reserved for big regions */
    uint64_t swap_fs_magic;       /* statfs f_type of the swap dir */
    uint64_t dirty_budget;        /* dirty bytes the library keeps under, 0 = no budget */
    uint32_t flags;               /* enum bigmaac_identity_flags */
    uint32_t reserved0;
    char kernel_id[BIGMAAC_KERNEL_ID_MAX];   /* BIGMAAC_KERNEL_ID */
    char label[BIGMAAC_LABEL_MAX];           /* BIGMAAC_LABEL */
    char swap_dir[BIGMAAC_PATH_MAX];
    char swap_fs[BIGMAAC_FSTYPE_MAX];        /* "ext4", "xfs", "tmpfs", ... or "0x..." */
    char command[BIGMAAC_COMMAND_MAX];
};

/* Commands sent to the control thread. All fields are accessed with atomics
 * (__atomic builtins); futex words are 32 bits. */
struct bigmaac_control {
    uint32_t doorbell;        /* futex: bumped (and woken) to wake the control thread */
    uint32_t done;            /* futex: bumped (and woken) when a page-out finishes */
    uint32_t state;           /* enum bigmaac_pageout_state of the latest request */
    uint32_t result_seq;      /* seqlock over the result fields below (odd = writing) */
    uint64_t request_id;      /* latest request; a requester CASes it from result_id to +1 */
    uint64_t started_id;      /* request the control thread is working on / last worked on */
    uint64_t cancel_id;       /* == started_id: the requester asks to stop */
    uint64_t bytes_done;      /* progress of started_id */
    uint64_t bytes_total;
    /* result of result_id, valid once result_id == your request id */
    uint64_t result_id;
    int32_t result_status;    /* 0, or enum bigmaac_status (e.g. BIGMAAC_ERR_CANCELLED) */
    uint32_t reserved0;
    uint64_t bytes_written;   /* dirty bytes written back */
    uint64_t duration_ns;
    uint64_t resident_before; /* page-cache residency of the process's swap files */
    uint64_t resident_after;
    uint64_t dirty_before;
    /* Residency requests (version 2): a requester adds 1 to residency_request and rings
     * doorbell; the control thread measures, publishes the residency section, stores the
     * request it answered in residency_done, then bumps and wakes residency_ready. */
    uint64_t residency_request;
    uint64_t residency_done;
    uint32_t residency_ready; /* futex */
    uint32_t reserved1;
    uint64_t reserved[2];
};

/* Process counters; all bytes are mapped (page-rounded) bytes. */
struct bigmaac_counters {
    uint64_t live_big_count;
    uint64_t live_big_bytes;
    uint64_t live_fry_count;      /* issue 3 */
    uint64_t live_fry_bytes;      /* issue 3 */
    uint64_t peak_bytes;          /* max of live_big_bytes + live_fry_bytes */
    uint64_t allocs;              /* cumulative disk-backed allocations */
    uint64_t frees;
    uint64_t reallocs;
    uint64_t disk_reserved;       /* bytes fallocated in the swap files */
    uint64_t fallbacks;           /* big requests served from RAM instead (swap dir unusable) */
    uint64_t failures;            /* big requests that returned NULL (e.g. disk full) */
    uint64_t pageouts;            /* page-outs completed */
    uint64_t budget_writebacks;   /* write-backs the dirty budget started */
    uint64_t dirty_peak;          /* most dirty swap-file bytes the budget check saw */
    uint64_t reserved[2];
};

struct bigmaac_allocation {
    uint64_t address;
    uint64_t size;                /* mapped bytes */
    uint64_t created_ns;          /* CLOCK_REALTIME */
    uint32_t tier;                /* enum bigmaac_tier */
    uint32_t reserved0;
};

struct bigmaac_stats {
    uint64_t seq;                 /* seqlock: odd while the control thread writes */
    uint64_t updated_ns;          /* CLOCK_REALTIME of the last change of the counters */
    uint64_t heartbeat_ns;        /* CLOCK_REALTIME, refreshed at least every second */
    struct bigmaac_counters counters;
    uint32_t table_count;         /* valid entries in table, largest first */
    uint32_t reserved0;
    uint64_t table_total;         /* live allocations in all (table may hold fewer) */
    struct bigmaac_allocation table[BIGMAAC_TABLE_SLOTS];
};

/* Residency of one published allocation, measured on request. */
struct bigmaac_allocation_residency {
    uint64_t address;
    uint64_t size;                /* mapped bytes */
    uint64_t resident;            /* its swap-file range in the page cache (a fries
                                     entry: its whole 2 MiB chunk's, freed blocks too) */
    uint64_t dirty;               /* of which dirty or under write-back */
};

/* bigmaac_residency.flags */
enum bigmaac_residency_flags {
    BIGMAAC_RESIDENCY_DIRTY_KNOWN = 1u << 0, /* from cachestat(2); without it dirty is 0 */
};

/* The answer to the latest residency request. Bytes are page-cache bytes of the
 * process's swap-file ranges: see docs/segment.md for what that is and is not. */
struct bigmaac_residency {
    uint64_t seq;                 /* seqlock: odd while the control thread writes */
    uint64_t request_id;          /* the residency_request this answers */
    uint64_t measured_ns;         /* CLOCK_REALTIME when measured */
    uint64_t duration_ns;         /* what the measurement cost */
    uint64_t resident;            /* all live disk-backed allocations */
    uint64_t dirty;
    uint32_t flags;               /* enum bigmaac_residency_flags */
    uint32_t count;               /* valid entries in table, largest first */
    uint64_t total;               /* live allocations in all (table may hold fewer) */
    struct bigmaac_allocation_residency table[BIGMAAC_TABLE_SLOTS];
};

/* The whole file. Sections start on cache lines; control is in the first page so a
 * requester maps just that page. */
struct bigmaac_segment {
    struct bigmaac_segment_header header;
    uint8_t pad0[64 - sizeof(struct bigmaac_segment_header) % 64];
    struct bigmaac_control control;
    uint8_t pad1[64 - sizeof(struct bigmaac_control) % 64];
    struct bigmaac_identity identity;
    struct bigmaac_stats stats;
    struct bigmaac_residency residency;
};

/* ------------------------------------------------------------------ reader API */

/* Return codes: 0 on success, negative on error. */
enum bigmaac_status {
    BIGMAAC_OK = 0,
    BIGMAAC_IN_PROGRESS = 1,         /* page-out not finished yet (not an error) */
    BIGMAAC_ERR_SYSTEM = -1,         /* a system call failed; errno says why */
    BIGMAAC_ERR_NO_PROCESS = -2,     /* no segment for this pid, or the process is gone */
    BIGMAAC_ERR_PERMISSION = -3,     /* not allowed to open the segment (other user) */
    BIGMAAC_ERR_TRUNCATED = -4,      /* file shorter than its header says */
    BIGMAAC_ERR_FOREIGN = -5,        /* not a BigMaac segment (bad magic) */
    BIGMAAC_ERR_VERSION = -6,        /* a BigMaac segment of another layout version */
    BIGMAAC_ERR_SIZE = -7,           /* right magic and version, wrong size */
    BIGMAAC_ERR_TORN = -8,           /* writer kept writing: no stable copy after retries */
    BIGMAAC_ERR_STALE = -9,          /* segment of a dead process (it has been removed) */
    BIGMAAC_ERR_BUSY = -10,          /* a page-out is already queued or running */
    BIGMAAC_ERR_CANCELLED = -11,     /* the page-out was cancelled */
    BIGMAAC_ERR_TIMEOUT = -12,       /* the process does not answer (stopped?) */
    BIGMAAC_ERR_INVALID = -13,       /* bad argument */
    BIGMAAC_ERR_UNSAFE_DIR = -14,    /* segment dir: a symlink, not a dir, or others can write */
    BIGMAAC_ERR_NAME_TOO_LONG = -15, /* a path does not fit the buffer */
    BIGMAAC_ERR_RESULT_LOST = -16,   /* page-out finished, a later request's result replaced
                                        its own before it was polled */
};

/* A message for a status code ("segment of another layout version", ...). Never NULL. */
BIGMAAC_API const char *bigmaac_strerror(int status);

/* The segment directory: $BIGMAAC_SEGMENT_DIR, else /dev/shm/bigmaac-<uid>, else
 * /tmp/bigmaac-<uid> when /dev/shm is not a directory. Does not create it. */
BIGMAAC_API int bigmaac_segment_dir(char *buf, size_t size);

/* Pids of live segments in dir (NULL = bigmaac_segment_dir()), sorted. Segments of dead
 * processes are removed on the way; unreadable or foreign files are skipped.
 * Fills up to capacity pids and stores the number found in *count (may exceed capacity). */
BIGMAAC_API int bigmaac_list(const char *dir, int32_t *pids, size_t capacity, size_t *count);

/* A consistent copy of pid's segment (identity, stats, and the control block as seen;
 * the residency section is left zeroed: bigmaac_residency reads it).
 * Returns TRUNCATED / FOREIGN / VERSION / SIZE for a bad file, TORN after bounded
 * retries, STALE (after removing the file) when the process is gone,
 * NO_PROCESS when there is no segment, PERMISSION when it is not ours. */
BIGMAAC_API int bigmaac_snapshot(const char *dir, int32_t pid, struct bigmaac_segment *out);

/* Same checks for a file path (used by tests and tools); does not check liveness. */
BIGMAAC_API int bigmaac_snapshot_path(const char *path, struct bigmaac_segment *out);

/* BIGMAAC_OK if the process described by identity is alive (pid exists and has the same
 * start time), BIGMAAC_ERR_STALE otherwise. */
BIGMAAC_API int bigmaac_check_alive(const struct bigmaac_identity *identity);

/* Remove pid's segment if it is stale. Returns BIGMAAC_ERR_STALE when removed,
 * BIGMAAC_OK when the process is alive, or another error. */
BIGMAAC_API int bigmaac_remove_if_stale(const char *dir, int32_t pid);

/* ---------------------------------------------------------- page-out requests */

struct bigmaac_pageout_status {
    uint64_t request_id;
    int32_t state;            /* enum bigmaac_pageout_state */
    int32_t result;           /* when DONE: 0 or a negative enum bigmaac_status */
    uint64_t bytes_done;
    uint64_t bytes_total;
    uint64_t bytes_written;   /* when DONE */
    uint64_t duration_ns;
    uint64_t resident_before;
    uint64_t resident_after;
};

/* One outstanding request. Fill by bigmaac_pageout_start, release with
 * bigmaac_pageout_close. Cancel may be called from another thread while one waits. */
struct bigmaac_pageout_request {
    int32_t pid;
    int fd;
    uint64_t start_time;
    uint64_t request_id;
    void *control;            /* mapping of the segment's first page */
    size_t map_size;
    int32_t finished;         /* result seen: poll returns the copy below from then on */
    int32_t reserved0;
    struct bigmaac_pageout_status result;
};

/* Ask pid to page out all its disk-backed memory. BUSY if one is queued or running,
 * PERMISSION if the segment cannot be opened for writing, NO_PROCESS/STALE if gone. */
BIGMAAC_API int bigmaac_pageout_start(const char *dir, int32_t pid,
                                      struct bigmaac_pageout_request *req);

/* Current progress without waiting. BIGMAAC_OK when finished (status has the result,
 * kept in req: it stays available), BIGMAAC_IN_PROGRESS while queued or running,
 * NO_PROCESS if the process died, TIMEOUT when the process's heartbeat is over 5 s old
 * and the request is still queued or the process is stopped half-way through it
 * (SIGSTOP, a debugger; the page-out goes on when it resumes). RESULT_LOST if the page-out finished and a
 * later request (another requester's) finished too before this one was polled. */
BIGMAAC_API int bigmaac_pageout_poll(struct bigmaac_pageout_request *req,
                                     struct bigmaac_pageout_status *status);

/* Wait until finished or timeout_ms elapsed (a progress tick: call again to keep waiting).
 * Same returns as poll. */
BIGMAAC_API int bigmaac_pageout_wait(struct bigmaac_pageout_request *req, int timeout_ms,
                                     struct bigmaac_pageout_status *status);

/* Ask the process to stop; the result becomes BIGMAAC_ERR_CANCELLED unless it finished. */
BIGMAAC_API int bigmaac_pageout_cancel(struct bigmaac_pageout_request *req);

BIGMAAC_API void bigmaac_pageout_close(struct bigmaac_pageout_request *req);

/* ---------------------------------------------------------- residency requests */

/* Ask pid to measure the residency of its disk-backed memory now, wait for the answer
 * (at most timeout_ms) and copy it into out. Needs write access, like a page-out
 * request. The process measures on its control thread, between page-out chunks if one
 * runs; the cost is one cachestat(2) per live allocation. NO_PROCESS/STALE if gone,
 * PERMISSION for another user's process, TIMEOUT if no answer came in time (a stopped
 * process), TORN if the answer kept changing under the copy. In C++ the function hides
 * the struct's name: write `struct bigmaac_residency` for the type. */
BIGMAAC_API int bigmaac_residency(const char *dir, int32_t pid, int timeout_ms,
                                  struct bigmaac_residency *out);

#ifdef __cplusplus
}
#endif

#endif /* BIGMAAC_SEGMENT_H */
