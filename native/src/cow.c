/* cow.c: copy-on-write at file level, so that fork() isolates disk-backed memory.
 *
 * A forked child maps its parent's regions MAP_PRIVATE on the parent's swap files
 * (fork.c): a lazy snapshot, valid only while those file ranges do not change. So at
 * fork the parent freezes them: every chunk (BM_FOLIO_MAX, 2 MiB) of its live regions is
 * write-protected, and the first write to one faults into on_fault, which copies the
 * chunk's file range into the active swap file (same offset, fallocated first) and maps
 * that copy over the chunk, MAP_SHARED: the write proceeds, disk-backed, and the frozen
 * range stays as the child saw it. With no disk left for the copy it goes to anonymous
 * memory (counted). A frozen range is never punched; a free detaches the chunk instead
 * (maps a hole of the active file there).
 *
 * Backing files: slot_fd[] holds every file some chunk maps; table[] gives each chunk's
 * slot. The active slot (bm_swap.fd) takes new regions and copies, and is never one a
 * live child may map ("seen"): if it is at a fork, another file becomes active.
 *
 * Liveness: before the fork, the parent opens a new open file description of a lock
 * file, takes LOCK_SH on it, and closes its own descriptor once fork returns; the child
 * (and its descendants) hold it until they exit or exec (O_CLOEXEC). A probe on another
 * description with LOCK_EX|LOCK_NB succeeds only when no child is left. Then (control
 * thread, next fork, or lazily per chunk in on_fault) chunks thaw without a copy, ranges
 * no chunk maps any more are punched, and unused files are closed.
 *
 * on_fault never takes a lock (the faulting thread may hold bm_lock): a chunk is claimed
 * with a CAS on its table word (BUSY), and a fork waits until no fault is being handled
 * and keeps new ones retrying (forking) until the child exists. Everything else here
 * runs under bm_lock.
 *
 * vm.max_map_count: every protection or mapping change acts on whole chunks, so that
 * neighbours in one state merge into one mapping: freezing adds none, the child's remap
 * adds none, and later each chunk can cost at most one mapping (copied, thawed, freed).
 * A fork counts that worst case against the limit first; chunks over the budget are
 * copied for the child there and then ("snapshots": the child maps the copy, the
 * parent's chunk stays writable, nothing is protected). Every protection and mapping
 * call is checked: a change a full map table refuses is retried on the whole run of
 * frozen chunks around it (whole mappings: nothing to split), and only when nothing at
 * all works is a chunk written in place while a child may see it, said once on stderr
 * and counted (unisolated_chunks).
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SHIFT 21
#define CHUNK ((size_t)1 << CHUNK_SHIFT)
_Static_assert(CHUNK == BM_FOLIO_MAX, "a chunk is a folio");

#define MAX_SLOTS 64
#define SLOT_ANON 0xffu    /* private anonymous copy: fork copies it like any RAM */
#define SLOT_BITS 0xffu
#define PAGES_SHIFT 8      /* pages of the chunk a region uses (1..512), set when frozen */
#define PAGES_BITS (0x3ffu << PAGES_SHIFT)
#define SNAPPED (1u << 27) /* during a fork: its copy is in the snapshot file */
#define SNAP (1u << 28)    /* during a fork: the child maps this chunk from the snapshot file */
#define REF (1u << 29)     /* scratch mark of reap_locked */
#define FROZEN (1u << 30)  /* a live child may map its file range: write-protected, never punched */
#define BUSY (1u << 31)    /* being changed; others wait */

/* A fork counts /proc/self/maps only when it may add this many mappings or more. */
#define COUNT_MAPS_FROM 1024

static uint32_t *table;    /* one word per chunk; made with the first region */
static size_t table_bytes;
static uintptr_t first_chunk; /* address >> CHUNK_SHIFT of table[0] */
static size_t chunk_count;
static size_t used_chunks; /* one past the highest chunk ever backed: loops stop there */
static bool split;         /* a fork froze something: chunks may sit on several files */
static int slot_fd[MAX_SLOTS];
static unsigned active;    /* slot of bm_swap.fd */
static uint64_t seen;      /* slots a live child may map, since the last thaw */
static bool frozen_any;
static unsigned snap_slot = MAX_SLOTS; /* during a fork: the file snapshots went to */
static bool snapped;       /* this fork set SNAP on some chunk */
static int lock_fd = -1, probe_fd = -1, held_fd = -1;
static bool liveness_unknown; /* a lock could not be taken: assume children live */
static int forking, in_progress;
static uint64_t thaw_epoch;
static struct sigaction previous; /* the program's SIGSEGV disposition, behind ours */
static int handler_installed;
static struct bigmaac_fork_stats totals;

static uintptr_t chunk_addr(size_t i) { return (first_chunk + i) << CHUNK_SHIFT; }
static size_t chunk_of(uintptr_t addr) { return (addr >> CHUNK_SHIFT) - first_chunk; }
static unsigned slot_of(uint32_t word) { return word & SLOT_BITS; }
static int fd_of(unsigned slot) { return slot == SLOT_ANON ? -1 : slot_fd[slot]; }
static off_t offset_of(uintptr_t addr) { return bm_space_offset(addr); }
static void count(uint64_t *counter) { __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED); }
static void count_n(uint64_t *counter, size_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}
static bool is_split(void) { return __atomic_load_n(&split, __ATOMIC_ACQUIRE); }

/* Bytes of the chunk at addr that a region ending at end uses (frozen chunks copy them). */
static size_t used_in_chunk(uintptr_t addr, uintptr_t end)
{
    return end - addr < CHUNK ? end - addr : CHUNK;
}

/* The whole chunks of a region: it is mapped up to the folio boundary after its end. */
static uintptr_t chunks_end(const struct bm_region *r)
{
    uintptr_t end = (r->addr + r->len + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
    uintptr_t limit = bm_space.base + bm_space.size;
    return end < limit ? end : limit;
}

/* ------------------------------------------------------------------ messages */

/* One line on stderr, safe in a signal handler: no stdio, no allocation. what may hold
 * one "%u", replaced by n. */
static void warn_signal_safe(const char *what, uint64_t n)
{
    char line[400], digits[24];
    size_t len = 0;
    int nd = 0;
    const char *prefix = "bigmaac[";
    while (*prefix)
        line[len++] = *prefix++;
    for (uint64_t pid = (uint64_t)getpid(); nd == 0 || pid; pid /= 10)
        digits[nd++] = (char)('0' + pid % 10);
    while (nd)
        line[len++] = digits[--nd];
    line[len++] = ']';
    line[len++] = ':';
    line[len++] = ' ';
    for (; *what && len < sizeof line - 24; what++) {
        if (what[0] == '%' && what[1] == 'u') {
            for (uint64_t v = n; nd == 0 || v; v /= 10)
                digits[nd++] = (char)('0' + v % 10);
            while (nd)
                line[len++] = digits[--nd];
            what++;
            continue;
        }
        line[len++] = *what;
    }
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}

static void warn_unisolated(size_t n)
{
    static int warned;
    count_n(&totals.unisolated_chunks, n);
    if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
        warn_signal_safe("fork isolation lost: %u chunk(s) of 2 MiB written in place while a "
                         "forked child may map them (no memory or mapping left for a copy; "
                         "vm.max_map_count?); counted in unisolated_chunks", n);
}

/* ------------------------------------------------------------------ chunk words */

/* Claim chunk i against on_fault: its word with BUSY set, returned without BUSY. */
static uint32_t acquire(size_t i)
{
    for (;;) {
        uint32_t word = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
        if (!(word & BUSY) && __atomic_compare_exchange_n(&table[i], &word, word | BUSY, 0,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return word;
        sched_yield();
    }
}

/* Claim chunk i only if it is frozen on slot and nobody holds it. */
static bool claim_frozen(size_t i, unsigned slot)
{
    uint32_t word = __atomic_load_n(&table[i], __ATOMIC_ACQUIRE);
    return (word & (FROZEN | BUSY)) == FROZEN && slot_of(word) == slot &&
           __atomic_compare_exchange_n(&table[i], &word, word | BUSY, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

static void publish(size_t i, uint32_t word)
{
    if (i >= used_chunks)
        used_chunks = i + 1; /* under bm_lock: on_fault only publishes frozen chunks */
    __atomic_store_n(&table[i], word & ~BUSY, __ATOMIC_RELEASE);
    __atomic_add_fetch(&thaw_epoch, 1, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ liveness */

static bool children_may_live(void)
{
    if (liveness_unknown || probe_fd < 0)
        return true;
    if (flock(probe_fd, LOCK_EX | LOCK_NB) != 0)
        return true;
    flock(probe_fd, LOCK_UN);
    return false;
}

static int reopen(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Before a fork: a description the child will hold LOCK_SH on. */
static void take_child_lock(void)
{
    if (lock_fd < 0 && (lock_fd = bm_swap_open_file()) >= 0)
        probe_fd = reopen(lock_fd);
    held_fd = lock_fd >= 0 && probe_fd >= 0 ? reopen(lock_fd) : -1;
    if (held_fd < 0 || flock(held_fd, LOCK_SH) != 0) {
        if (!liveness_unknown)
            bm_warn("cannot track forked children (%s): memory they may see stays frozen",
                    strerror(errno));
        liveness_unknown = true;
    }
}

/* ------------------------------------------------------------------ copies */

static long read_number(const char *path)
{
    char text[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    long value = 0;
    for (char *p = text; *p >= '0' && *p <= '9'; p++)
        value = value * 10 + (*p - '0');
    return value;
}

/* Lines of /proc/self/maps: the process's mappings now. No allocation, little stack
 * (atfork, and the fault handler, maybe on a small alternate stack). */
static long count_mappings(void)
{
    char buffer[2048];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0)
        for (ssize_t k = 0; k < n; k++)
            lines += buffer[k] == '\n';
    close(fd);
    return n < 0 ? -1 : lines;
}

/* vm.max_map_count. Changing one chunk in the middle of a mapping adds up to two
 * mappings, and the kernel lets that go one past the limit: from there on it refuses
 * every mmap, even one that would replace whole mappings. So such a change is made only
 * while the process is known to be MAP_SLACK short of the limit: counted at the fork
 * (map_budget) or at the first change after it, and again once our changes since may
 * have used the room up, or the count is MAP_RECOUNT_NS old (the program maps too). Near
 * the limit the whole run of frozen chunks around is changed instead (whole mappings:
 * none added). Any thread, no lock, signal-safe (a small buffer: maybe an alternate
 * stack). */
#define MAP_SLACK 256
#define MAP_RECOUNT_NS 50000000u
static long maps_counted = -1; /* mappings at the last count (-1: not counted since fork) */
static long maps_limit;
static long maps_added;        /* mappings our changes may have added since */
static uint64_t maps_counted_ns;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_count(long limit, long mappings)
{
    __atomic_store_n(&maps_limit, limit, __ATOMIC_RELAXED);
    __atomic_store_n(&maps_added, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&maps_counted_ns, monotonic_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&maps_counted, mappings, __ATOMIC_RELAXED);
}

static bool split_ok(void)
{
    long added = __atomic_add_fetch(&maps_added, 2, __ATOMIC_RELAXED);
    long counted = __atomic_load_n(&maps_counted, __ATOMIC_RELAXED);
    if (counted >= 0 &&
        counted + added + MAP_SLACK < __atomic_load_n(&maps_limit, __ATOMIC_RELAXED) &&
        monotonic_ns() - __atomic_load_n(&maps_counted_ns, __ATOMIC_RELAXED) < MAP_RECOUNT_NS)
        return true;
    long limit = read_number("/proc/sys/vm/max_map_count"), now = count_mappings();
    if (limit <= 0 || now < 0)
        return true; /* cannot tell: try, every call is checked */
    note_count(limit, now + 2);
    return now + 2 + MAP_SLACK < limit;
}

/* The chunk's data (mapped at addr, readable) into the same offsets of another file. */
static bool copy_file(int from, int to, off_t offset, size_t len, uintptr_t addr)
{
    off_t in = offset, out = offset;
    size_t left = len;
    ssize_t n;
    while (left > 0 && (n = copy_file_range(from, &in, to, &out, left, 0)) > 0)
        left -= (size_t)n;
    if (left == 0)
        return true;
    /* No in-kernel copy between these files: all of it through a mapping. */
    void *window = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, to, offset);
    if (window == MAP_FAILED)
        return false;
    memcpy(window, (const void *)addr, len);
    munmap(window, len);
    return true;
}

/* Chunk i (held by the caller, at least its neighbours' run) made writable with one
 * mprotect over the whole run of chunks frozen on the same file around it. Those are
 * whole mappings, so none is split: vm.max_map_count cannot refuse it where changing
 * chunk i alone would split its mapping in three. thaw: no child is left and the run
 * thaws; else the run stays FROZEN (never punched, copied before a punch) but is written
 * in place from now on: isolation lost there, counted and said once. */
static bool run_writable(size_t i, uint32_t word, bool thaw)
{
    unsigned slot = slot_of(word);
    size_t lo = i, hi = i + 1;
    while (lo > 0 && claim_frozen(lo - 1, slot))
        lo--;
    while (hi < chunk_count && claim_frozen(hi, slot))
        hi++;
    bool ok = mprotect((void *)chunk_addr(lo), (hi - lo) * CHUNK, PROT_READ | PROT_WRITE) == 0;
    for (size_t j = lo; j < hi; j++) {
        if (j == i)
            continue;
        uint32_t w = __atomic_load_n(&table[j], __ATOMIC_RELAXED);
        publish(j, ok && thaw ? slot_of(w) : w);
    }
    if (ok && thaw)
        count_n(&totals.thawed_chunks, hi - lo);
    else if (ok)
        warn_unisolated(hi - lo);
    return ok;
}

/* Last resort for a write to chunk i while a child may map it: in place. False: not even
 * that (the write then faults as it would without us). */
static bool write_in_place(size_t i, uint32_t word)
{
    if (split_ok() && mprotect((void *)chunk_addr(i), CHUNK, PROT_READ | PROT_WRITE) == 0) {
        warn_unisolated(1);
        return true;
    }
    return run_writable(i, word, false);
}

/* The map table is full (vm.max_map_count): mapping the copy of chunk i alone would
 * split its mapping. Copy the whole run of chunks frozen on its file around it instead,
 * and map the copies with one call over the run: whole mappings replaced, none split.
 * Chunk i is held by the caller; its neighbours are claimed here. */
static bool copy_run(size_t i, uint32_t word, unsigned to, int to_fd, int from_fd)
{
    unsigned slot = slot_of(word);
    size_t lo = i, hi = i + 1;
    while (lo > 0 && claim_frozen(lo - 1, slot))
        lo--;
    while (hi < chunk_count && claim_frozen(hi, slot))
        hi++;
    size_t done = lo;
    bool ok = true;
    for (; done < hi && ok; done++) {
        uint32_t w = done == i ? word : __atomic_load_n(&table[done], __ATOMIC_RELAXED);
        size_t pages = (w & PAGES_BITS) >> PAGES_SHIFT, len = pages ? pages * bm_page_size : CHUNK;
        uintptr_t at = chunk_addr(done);
        ok = fallocate(to_fd, 0, offset_of(at), (off_t)len) == 0 &&
             copy_file(from_fd, to_fd, offset_of(at), len, at);
    }
    ok = ok && mmap((void *)chunk_addr(lo), (hi - lo) * CHUNK, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, to_fd, offset_of(chunk_addr(lo))) != MAP_FAILED;
    if (!ok)
        fallocate(to_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(chunk_addr(lo)),
                  (off_t)((done - lo) * CHUNK));
    for (size_t j = lo; j < hi; j++)
        if (j != i)
            publish(j, ok ? to : __atomic_load_n(&table[j], __ATOMIC_RELAXED));
    if (ok)
        count_n(&totals.copied_chunks, hi - lo);
    return ok;
}

/* Chunk i into the active file at its own offset, mapped over the whole chunk writable
 * (neighbours copied alike merge into one mapping); the frozen range is left as it is.
 * Signal-safe. Returns the chunk's new word: FROZEN still set when no copy could be made;
 * for a write (stuck not NULL) it is then made writable in place (*stuck: not even that),
 * else it stays as it was. */
static uint32_t copy_chunk(size_t i, uint32_t word, bool *stuck)
{
    uintptr_t addr = chunk_addr(i);
    size_t pages = (word & PAGES_BITS) >> PAGES_SHIFT;
    size_t len = pages ? pages * bm_page_size : CHUNK;
    unsigned to = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    int to_fd = to < MAX_SLOTS ? slot_fd[to] : -1, from_fd = fd_of(slot_of(word));
    bool room = split_ok();
    if (to_fd >= 0 && from_fd >= 0 && !room && copy_run(i, word, to, to_fd, from_fd))
        return to;
    if (to_fd >= 0 && from_fd >= 0 && room &&
        fallocate(to_fd, 0, offset_of(addr), (off_t)len) == 0) {
        bool copied = copy_file(from_fd, to_fd, offset_of(addr), len, addr);
        if (copied && mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                           to_fd, offset_of(addr)) != MAP_FAILED) {
            count(&totals.copied_chunks);
            return to;
        }
        int why = errno;
        fallocate(to_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr), (off_t)len);
        if (copied && why == ENOMEM && copy_run(i, word, to, to_fd, from_fd))
            return to;
    }
    /* No disk (or no file) for the copy: RAM, still the parent's own. */
    void *copy = room ? mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0)
                      : MAP_FAILED;
    if (copy != MAP_FAILED) {
        memcpy(copy, (const void *)addr, len);
        if (mremap(copy, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)addr) != MAP_FAILED) {
            count(&totals.copied_chunks);
            count(&totals.ram_chunks);
            return SLOT_ANON;
        }
        munmap(copy, CHUNK);
    }
    /* Nothing left to copy into: writing in place beats crashing the host. */
    if (stuck)
        *stuck = !write_in_place(i, word);
    return word;
}

/* No child left: writable again, no copy. */
static uint32_t thaw_chunk(size_t i, uint32_t word, bool *stuck)
{
    *stuck = false;
    if (split_ok() && mprotect((void *)chunk_addr(i), CHUNK, PROT_READ | PROT_WRITE) == 0) {
        count(&totals.thawed_chunks);
        return slot_of(word);
    }
    if (run_writable(i, word, true))
        return slot_of(word);
    *stuck = true;
    return word;
}

/* ------------------------------------------------------------------ the fault handler */

enum outcome { PASS, RETRY };

/* A fault on a chunk that is not frozen: another thread has just thawed it (the write
 * will now succeed), or it is a real fault. The same address twice with no thaw in
 * between is a real one. Thread-local: no lock, no allocation (initial-exec TLS). */
static __thread __attribute__((tls_model("initial-exec"))) uintptr_t last_addr;
static __thread __attribute__((tls_model("initial-exec"))) uint64_t last_epoch;

static enum outcome not_frozen(uintptr_t addr)
{
    uint64_t epoch = __atomic_load_n(&thaw_epoch, __ATOMIC_ACQUIRE);
    if (addr == last_addr && epoch == last_epoch)
        return PASS;
    last_addr = addr;
    last_epoch = epoch;
    return RETRY;
}

enum unfreeze { WAIT, NOT_FROZEN, UNFROZEN, STUCK };

/* Make chunk i writable: a copy while a child may map it, else a thaw in place. The
 * caller counts itself in in_progress, and comes back on WAIT. */
static enum unfreeze unfreeze(uint32_t *words, size_t i)
{
    if (__atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
        sched_yield(); /* a fork is freezing: wait for the child to exist */
        return WAIT;
    }
    uint32_t word = __atomic_load_n(&words[i], __ATOMIC_ACQUIRE);
    if (word & BUSY) {
        sched_yield();
        return WAIT;
    }
    if (!(word & FROZEN))
        return NOT_FROZEN;
    if (!__atomic_compare_exchange_n(&words[i], &word, word | BUSY, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return WAIT;
    bool stuck = false;
    publish(i, children_may_live() ? copy_chunk(i, word, &stuck) : thaw_chunk(i, word, &stuck));
    if (stuck) {
        static int warned;
        if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
            warn_signal_safe("cannot make a write-protected chunk writable (mprotect refused: "
                             "vm.max_map_count?); the write faults", 0);
        return STUCK;
    }
    return UNFROZEN;
}

static enum outcome resolve(uint32_t *words, uintptr_t addr)
{
    size_t i = chunk_of(addr);
    if (i >= chunk_count)
        return PASS;
    switch (unfreeze(words, i)) {
    case NOT_FROZEN: return not_frozen(addr);
    case STUCK: return PASS;
    default: return RETRY;
    }
}

/* The kernel does not fault into our handler when a system call writes to a frozen
 * chunk: it returns EFAULT. So the chunks a call will write are made writable first
 * (syscalls.c), as on_fault would, and without a lock like it. */
void bm_cow_prepare_write(uintptr_t addr, size_t len)
{
    uint32_t *words = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!words || !len || !__atomic_load_n(&frozen_any, __ATOMIC_RELAXED))
        return;
    uintptr_t end = len > UINTPTR_MAX - addr ? UINTPTR_MAX : addr + len;
    uintptr_t space_end = bm_space.base + bm_space.size;
    uintptr_t low = addr > bm_space.base ? addr : bm_space.base;
    uintptr_t high = end < space_end ? end : space_end;
    if (low >= high)
        return;
    int saved = errno;
    for (size_t i = chunk_of(low), last = chunk_of(high - 1); i <= last; i++) {
        enum unfreeze state;
        do {
            __atomic_add_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
            state = unfreeze(words, i);
            __atomic_sub_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
        } while (state == WAIT);
    }
    errno = saved;
}

static enum outcome handle(const siginfo_t *info)
{
    uint32_t *words = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!words || !is_split())
        return PASS;
    /* Sent, not a fault (kill, raise, tgkill: si_code <= 0): whatever the program asked
     * for. A handler chained to from ours that re-raises finds its disposition through
     * our sigaction (below), so the re-raise reaches it or the default action. */
    if (info->si_code <= 0)
        return PASS;
    if (info->si_code != SEGV_ACCERR || !bm_space_owns(info->si_addr))
        return PASS;
    __atomic_add_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
    enum outcome outcome = resolve(words, (uintptr_t)info->si_addr);
    __atomic_sub_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
    return outcome;
}

/* ------------------------------------------------------------------ SIGSEGV disposition */

/* libc's sigaction. The library exports its own (below) so that a handler the program
 * installs while ours is in front goes behind it. Builds under TSan or ASan keep their
 * runtime's (BM_NO_SIGACTION: tests/). */
#ifdef BM_NO_SIGACTION
static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(sig, act, old);
}
#else
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn next_sigaction;

static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    sigaction_fn fn = __atomic_load_n(&next_sigaction, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        if (!fn) {
            errno = ENOSYS;
            return -1;
        }
        __atomic_store_n(&next_sigaction, fn, __ATOMIC_RELEASE);
    }
    return fn(sig, act, old);
}
#endif

static void on_fault(int sig, siginfo_t *info, void *context);

static bool ours_in_front(void)
{
    struct sigaction current;
    return real_sigaction(SIGSEGV, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
           current.sa_sigaction == on_fault;
}

/* The program's handler, as it asked: its mask blocked and SA_RESETHAND honoured. */
static void call_previous(int sig, siginfo_t *info, void *context, const struct sigaction *h)
{
    sigset_t saved;
    pthread_sigmask(SIG_BLOCK, &h->sa_mask, &saved);
    if (h->sa_flags & SA_RESETHAND) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigemptyset(&dfl.sa_mask);
        previous = dfl;
    }
    if (h->sa_flags & SA_SIGINFO)
        h->sa_sigaction(sig, info, context);
    else
        h->sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void chain(int sig, siginfo_t *info, void *context)
{
    static __thread __attribute__((tls_model("initial-exec"))) void *chained_at;
    static __thread __attribute__((tls_model("initial-exec"))) bool chained;
    bool fault = info->si_code > 0;
    /* A fault whose handler returned without fixing it comes back at the same address:
     * the second time it gets the default action. */
    bool again = fault && chained && chained_at == info->si_addr;
    chained = fault;
    chained_at = fault ? info->si_addr : NULL;
    struct sigaction h = previous;
    bool has_handler = (h.sa_flags & SA_SIGINFO)
                           ? h.sa_sigaction != NULL
                           : h.sa_handler != SIG_DFL && h.sa_handler != SIG_IGN;
    if (!again && has_handler) {
        call_previous(sig, info, context, &h);
        return;
    }
    if (!fault && !has_handler && h.sa_handler == SIG_IGN)
        return; /* a sent SIGSEGV the program ignores */
    /* Default action: the fault happens again (a sent one is sent again) and ends the
     * process as it would have without us. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    real_sigaction(sig, &dfl, NULL);
    __atomic_store_n(&handler_installed, 0, __ATOMIC_RELEASE);
    if (!fault)
        raise(sig);
}

static void on_fault(int sig, siginfo_t *info, void *context)
{
    int saved = errno;
    enum outcome outcome = handle(info);
    errno = saved;
    if (outcome == PASS)
        chain(sig, info, context);
}

/* Ours must run first: install it again if someone replaced it, chaining to them. */
static void install_handler(void)
{
    if (ours_in_front()) {
        __atomic_store_n(&handler_installed, 1, __ATOMIC_RELEASE);
        return;
    }
    struct sigaction ours = {.sa_sigaction = on_fault,
                             .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART};
    sigemptyset(&ours.sa_mask);
    struct sigaction before;
    if (real_sigaction(SIGSEGV, &ours, &before) == 0) {
        previous = before;
        __atomic_store_n(&handler_installed, 1, __ATOMIC_RELEASE);
    }
}

#ifndef BM_NO_SIGACTION
/* While ours is in front, the program's SIGSEGV handler is the one we chain to: it asks
 * for it and changes it here, and ours stays first (a write to a frozen chunk must reach
 * us before any handler that would take it for a crash, e.g. Python's faulthandler). */
BM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV || !__atomic_load_n(&handler_installed, __ATOMIC_ACQUIRE) ||
        !ours_in_front())
        return real_sigaction(sig, act, old);
    struct sigaction was = previous;
    if (act)
        previous = *act;
    if (old)
        *old = was;
    return 0;
}

/* glibc's signal() calls its internal sigaction: the same for SIGSEGV here (BSD
 * semantics, as glibc's). */
BM_EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
    static __sighandler_t (*next_signal)(int, __sighandler_t);
    if (sig == SIGSEGV && __atomic_load_n(&handler_installed, __ATOMIC_ACQUIRE) &&
        ours_in_front()) {
        struct sigaction act = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;
        sigemptyset(&act.sa_mask);
        sigaddset(&act.sa_mask, sig);
        if (handler == SIG_ERR || sigaction(sig, &act, &old) != 0) {
            errno = EINVAL;
            return SIG_ERR;
        }
        return (old.sa_flags & SA_SIGINFO) ? (__sighandler_t)(void *)old.sa_sigaction
                                           : old.sa_handler;
    }
    __sighandler_t (*fn)(int, __sighandler_t) = __atomic_load_n(&next_signal, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (__sighandler_t(*)(int, __sighandler_t))dlsym(RTLD_NEXT, "signal");
        if (!fn) {
            errno = ENOSYS;
            return SIG_ERR;
        }
        __atomic_store_n(&next_signal, fn, __ATOMIC_RELEASE);
    }
    return fn(sig, handler);
}
#endif

/* ------------------------------------------------------------------ backing files */

/* With the first region, so that no fork ever finds itself without one. Every word is 0
 * until the first freeze: every chunk maps slot 0, the first file. */
static bool make_table(void)
{
    if (table)
        return true;
    first_chunk = bm_space.base >> CHUNK_SHIFT;
    chunk_count = ((bm_space.base + bm_space.size - 1) >> CHUNK_SHIFT) - first_chunk + 1;
    table_bytes = chunk_count * sizeof *table;
    void *p = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return false;
    for (unsigned s = 0; s < MAX_SLOTS; s++)
        slot_fd[s] = -1;
    slot_fd[0] = bm_swap.fd;
    active = 0;
    used_chunks = 0;
    __atomic_store_n(&table, p, __ATOMIC_RELEASE);
    return true;
}

/* A slot no live child may map, for new regions and copies. False: none (RAM then). */
static bool choose_active(void)
{
    unsigned free_slot = MAX_SLOTS;
    for (unsigned s = 0; s < MAX_SLOTS; s++) {
        if (slot_fd[s] >= 0 && !(seen & (UINT64_C(1) << s))) {
            free_slot = s;
            break;
        }
        if (slot_fd[s] < 0 && free_slot == MAX_SLOTS)
            free_slot = s;
    }
    if (free_slot < MAX_SLOTS && slot_fd[free_slot] < 0)
        slot_fd[free_slot] = bm_swap_open_file();
    if (free_slot == MAX_SLOTS || slot_fd[free_slot] < 0) {
        /* Big allocations go to RAM until the children are gone (reap_locked). */
        bm_swap_set_active(-1);
        __atomic_store_n(&active, MAX_SLOTS, __ATOMIC_RELEASE);
        return false;
    }
    __atomic_store_n(&active, free_slot, __ATOMIC_RELEASE);
    bm_swap_set_active(slot_fd[free_slot]);
    return true;
}

/* fn over each run of [addr, addr+len) that one file backs (fd -1: RAM). */
static bool each_run(uintptr_t addr, size_t len, bm_backing_fn fn, void *arg)
{
    uint32_t *words = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!words || !is_split())
        return fn(bm_swap.fd, addr, len, arg);
    for (uintptr_t end = addr + len; addr < end;) {
        unsigned slot = slot_of(__atomic_load_n(&words[chunk_of(addr)], __ATOMIC_ACQUIRE));
        uintptr_t next = ((addr >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
        while (next < end &&
               slot_of(__atomic_load_n(&words[chunk_of(next)], __ATOMIC_ACQUIRE)) == slot)
            next += CHUNK;
        next = next < end ? next : end;
        if (!fn(fd_of(slot), addr, next - addr, arg))
            return false;
        addr = next;
    }
    return true;
}

static bool reserve_run(int fd, uintptr_t addr, size_t len, void *unused)
{
    (void)unused;
    return fd < 0 || fallocate(fd, 0, offset_of(addr), (off_t)len) == 0;
}

static bool map_run(int fd, uintptr_t addr, size_t len, void *unused)
{
    (void)unused;
    return fd >= 0 && mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                           fd, offset_of(addr)) != MAP_FAILED;
}

static bool sync_run(int fd, uintptr_t addr, size_t len, void *flags)
{
    if (fd >= 0)
        sync_file_range(fd, offset_of(addr), (off_t)len, *(unsigned *)flags);
    return true;
}

static bool drop_cache_run(int fd, uintptr_t addr, size_t len, void *unused)
{
    (void)unused;
    if (fd >= 0)
        posix_fadvise(fd, offset_of(addr), (off_t)len, POSIX_FADV_DONTNEED);
    return true;
}

static bool drop_pages_run(int fd, uintptr_t addr, size_t len, void *unused)
{
    (void)unused;
    if (fd >= 0) /* on a RAM copy this would drop the data itself */
        madvise((void *)addr, len, MADV_DONTNEED);
    return true;
}

bool bm_backing_claim(uintptr_t addr, size_t len)
{
    if (!table && !make_table()) {
        errno = EAGAIN;
        return false;
    }
    if (!is_split())
        return bm_swap.fd >= 0;
    if (active >= MAX_SLOTS) {
        errno = EAGAIN; /* read only on failure */
        return false;
    }
    for (size_t i = chunk_of(addr + CHUNK - 1), end = chunk_of(addr + len - 1); i <= end; i++) {
        acquire(i);
        publish(i, active);
    }
    return true;
}

bool bm_backing_reserve(uintptr_t addr, size_t len)
{
    return each_run(addr, len, reserve_run, NULL);
}

bool bm_backing_map(uintptr_t addr, size_t len)
{
    return each_run(addr, len, map_run, NULL);
}

void bm_backing_sync(uintptr_t addr, size_t len, unsigned flags)
{
    each_run(addr, len, sync_run, &flags);
}

void bm_backing_drop_cache(uintptr_t addr, size_t len)
{
    each_run(addr, len, drop_cache_run, NULL);
}

void bm_backing_drop_pages(uintptr_t addr, size_t len)
{
    if (!table || !is_split()) {
        drop_pages_run(bm_swap.fd, addr, len, NULL);
        return;
    }
    /* Chunk by chunk, holding each: a copy to RAM finishing in between would be dropped. */
    for (uintptr_t end = addr + len; addr < end;) {
        uintptr_t next = ((addr >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
        size_t i = chunk_of(addr);
        uint32_t word = acquire(i);
        drop_pages_run(fd_of(slot_of(word)), addr, (next < end ? next : end) - addr, NULL);
        publish(i, word);
        addr = next;
    }
}

bool bm_backing_runs(uintptr_t addr, size_t len, bm_backing_fn fn, void *arg)
{
    return each_run(addr, len, fn, arg);
}

void bm_backing_each_file(bm_file_fn fn, void *arg)
{
    if (!table || !is_split()) {
        if (bm_swap.fd >= 0)
            fn(bm_swap.fd, arg);
        return;
    }
    for (unsigned s = 0; s < MAX_SLOTS; s++)
        if (slot_fd[s] >= 0)
            fn(slot_fd[s], arg);
}

bool bm_backing_split(void)
{
    return is_split();
}

bool bm_backing_frozen(uintptr_t addr, size_t len)
{
    if (!table || !is_split() || !len)
        return false;
    for (size_t i = chunk_of(addr), end = chunk_of(addr + len - 1); i <= end; i++)
        if (__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & (FROZEN | BUSY))
            return true;
    return false;
}

/* A dead chunk gets a hole of the active file: zeros, and the frozen range untouched.
 * False when no mapping could be put there; a frozen chunk then keeps its word (its
 * range is still the child's), an unfrozen one has been punched where it is. */
static bool detach(size_t i, uint32_t *word)
{
    uintptr_t addr = chunk_addr(i);
    unsigned to = active;
    bool frozen = *word & FROZEN;
    if (!frozen && fd_of(slot_of(*word)) >= 0 &&
        fallocate(fd_of(slot_of(*word)), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  offset_of(addr), (off_t)CHUNK) != 0)
        return false;
    bool room = split_ok();
    if (to < MAX_SLOTS && room) {
        fallocate(slot_fd[to], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr),
                  (off_t)CHUNK);
        if (mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                 slot_fd[to], offset_of(addr)) != MAP_FAILED) {
            *word = to;
            return true;
        }
    }
    if (room && mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
        *word = SLOT_ANON;
        return true;
    }
    if (frozen)
        return false;
    *word = slot_of(*word); /* punched in place: zeros all the same */
    return fd_of(slot_of(*word)) >= 0;
}

static bool punch_piece(int fd, uintptr_t addr, size_t len)
{
    if (fd < 0)
        return madvise((void *)addr, len, MADV_DONTNEED) == 0; /* RAM copy: zeros */
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr),
                     (off_t)len) == 0;
}

bool bm_backing_punch(uintptr_t addr, size_t len)
{
    if (!table || !is_split())
        return punch_piece(bm_swap.fd, addr, len);
    bool ok = true;
    for (uintptr_t end = addr + len; addr < end;) {
        uintptr_t next = ((addr >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
        size_t piece = (next < end ? next : end) - addr, i = chunk_of(addr);
        uint32_t word = acquire(i);
        if (piece == CHUNK && (slot_of(word) != active || (word & FROZEN))) {
            /* The whole chunk is dead: a hole of the active file, so that a later
             * fallocate of bm_swap.fd (recycle.c, fries.c) backs it again. */
            ok = detach(i, &word) && ok;
        } else {
            if (word & FROZEN) /* the rest of the chunk lives on: copy, then punch */
                word = copy_chunk(i, word, NULL);
            if (word & FROZEN)
                ok = false; /* no copy: the range is still the child's, never punched */
            else
                ok = punch_piece(fd_of(slot_of(word)), addr, piece) && ok;
        }
        publish(i, word & FROZEN ? word : slot_of(word));
        addr = next;
    }
    return ok;
}

void bm_backing_forget(uintptr_t addr, size_t len)
{
    if (!table || !is_split() || !len)
        return;
    for (size_t i = chunk_of(addr + CHUNK - 1), end = chunk_of(addr + len - 1); i <= end; i++)
        publish(i, slot_of(acquire(i)));
}

/* ------------------------------------------------------------------ fork */

/* Own live regions: what a child maps from our files. */
static bool freezable(const struct bm_region *r)
{
    return !(r->flags & (BM_REGION_INHERITED | BM_REGION_CACHED));
}

/* How many of chunks may be frozen: each may cost one mapping later (copied, thawed or
 * freed while its neighbours are not), and the process, the child and what they map
 * next need room too. */
static size_t map_budget(size_t chunks, long *mappings, long *limit)
{
    *mappings = *limit = -1;
    __atomic_store_n(&maps_counted, -1, __ATOMIC_RELAXED); /* counted on first need */
    if (chunks < COUNT_MAPS_FROM)
        return chunks;
    *limit = read_number("/proc/sys/vm/max_map_count");
    *mappings = *limit > 0 ? count_mappings() : -1;
    if (*limit <= 0 || *mappings < 0)
        return chunks;
    note_count(*limit, *mappings);
    long room = *limit - *mappings - (1024 + *limit / 16);
    return room <= 0 ? 0 : (size_t)room < chunks ? (size_t)room : chunks;
}

/* The file snapshots go to: a new one, never mapped by anything before. */
static bool snapshot_file(void)
{
    if (snap_slot < MAX_SLOTS)
        return true;
    for (unsigned s = 0; s < MAX_SLOTS; s++) {
        if (slot_fd[s] >= 0)
            continue;
        if ((slot_fd[s] = bm_swap_open_file()) < 0)
            return false;
        snap_slot = s;
        seen |= UINT64_C(1) << s; /* the child maps it */
        return true;
    }
    return false;
}

/* Copy chunk i (held, its data unchanging) to the snapshot file: the child will map the
 * copy, so the parent's chunk needs no protection once the child exists. */
static bool snapshot_chunk(size_t i, uint32_t word)
{
    int from = fd_of(slot_of(word));
    size_t pages = (word & PAGES_BITS) >> PAGES_SHIFT;
    size_t used = pages ? pages * bm_page_size : CHUNK;
    if (from < 0 || !snapshot_file())
        return false;
    int to = slot_fd[snap_slot];
    uintptr_t addr = chunk_addr(i);
    if (fallocate(to, 0, offset_of(addr), (off_t)used) != 0)
        return false;
    if (!copy_file(from, to, offset_of(addr), used, addr)) {
        fallocate(to, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr), (off_t)used);
        return false;
    }
    count(&totals.snapshot_chunks);
    snapped = true;
    return true;
}

/* Mark the file-backed chunks of r not frozen already (those are write-protected for an
 * older child anyway) to be copied for the child. Returns how many. */
static size_t mark_snapshots(const struct bm_region *r)
{
    size_t marked = 0;
    for (uintptr_t at = r->addr, end = chunks_end(r); at < end; at += CHUNK) {
        size_t i = chunk_of(at);
        uint32_t word = acquire(i);
        if (slot_of(word) != SLOT_ANON && !(word & (FROZEN | SNAP))) {
            word |= SNAP;
            marked++;
        }
        publish(i, word);
    }
    return marked;
}

/* A run of chunks mprotect refused to freeze (vm.max_map_count, or done in part): they
 * keep FROZEN (a chunk that did become read-only is copied on its first write) and the
 * child gets copies of them; a chunk without a copy is not isolated. */
static void rescue_run(uintptr_t from, uintptr_t to)
{
    size_t lost = 0;
    for (uintptr_t at = from; at < to; at += CHUNK) {
        size_t i = chunk_of(at);
        uint32_t word = acquire(i);
        if (!(word & SNAPPED) && snapshot_chunk(i, word))
            word |= SNAP | SNAPPED;
        lost += !(word & SNAPPED);
        publish(i, word);
    }
    if (lost)
        warn_unisolated(lost);
}

static void protect_run(uintptr_t from, uintptr_t to)
{
    if (to > from && mprotect((void *)from, to - from, PROT_READ) != 0)
        rescue_run(from, to);
}

/* Write-protect the region's whole chunks, a run of file-backed chunks per mprotect (RAM
 * copies are copied by fork itself and stay writable). Chunks marked for a snapshot are
 * protected too, so that no write changes them until the child exists. */
static void freeze_region(const struct bm_region *r)
{
    uintptr_t end = chunks_end(r), run = r->addr, end_of_data = r->addr + r->len;
    for (uintptr_t at = r->addr; at < end; at += CHUNK) {
        size_t i = chunk_of(at);
        uint32_t word = acquire(i);
        if (slot_of(word) == SLOT_ANON) {
            publish(i, word);
            protect_run(run, at);
            run = at + CHUNK;
            continue;
        }
        if (!(word & SNAP))
            seen |= UINT64_C(1) << slot_of(word);
        size_t pages = used_in_chunk(at, end_of_data) / bm_page_size;
        publish(i, slot_of(word) | FROZEN | (word & SNAP) | (uint32_t)pages << PAGES_SHIFT);
        frozen_any = true;
    }
    protect_run(run, end);
}

/* The marked chunks, now that nothing writes them: copied, or frozen like the others. */
static size_t take_snapshots(void)
{
    size_t taken = 0;
    for (size_t i = 0; i < used_chunks; i++) {
        if (!(__atomic_load_n(&table[i], __ATOMIC_RELAXED) & SNAP))
            continue;
        uint32_t word = acquire(i);
        if (!(word & SNAPPED)) {
            if (snapshot_chunk(i, word)) {
                word |= SNAPPED;
            } else {
                word &= ~SNAP; /* write-protected it stays */
                seen |= UINT64_C(1) << slot_of(word);
            }
        }
        taken += (word & SNAPPED) != 0;
        publish(i, word);
    }
    return taken;
}

static size_t region_chunks(const struct bm_region *r)
{
    return (chunks_end(r) - r->addr) / CHUNK;
}

void bm_cow_before_fork(void)
{
    size_t live = 0, chunks = 0;
    for (size_t i = 0; i < bm_space.count; i++)
        if (freezable(&bm_space.regions[i])) {
            live++;
            chunks += region_chunks(&bm_space.regions[i]);
        }
    if (!live || !table)
        return;
    install_handler();
    __atomic_store_n(&forking, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&in_progress, __ATOMIC_SEQ_CST))
        sched_yield();
    if (!split) {
        const struct bm_region *last = &bm_space.regions[bm_space.count - 1];
        used_chunks = chunk_of(chunks_end(last) - 1) + 1;
        __atomic_store_n(&split, true, __ATOMIC_RELEASE);
    }
    bm_cow_reap_locked();
    take_child_lock();
    /* Over the budget: copy chunks for the child instead, those of small regions first
     * (the fewest bytes per chunk). */
    long mappings, limit;
    size_t budget = map_budget(chunks, &mappings, &limit), excess = chunks - budget;
    size_t marked = 0;
    for (int pass = 0; pass < 2 && excess > marked; pass++)
        for (size_t i = 0; i < bm_space.count && excess > marked; i++) {
            const struct bm_region *r = &bm_space.regions[i];
            if (freezable(r) && (r->len < CHUNK) == (pass == 0))
                marked += mark_snapshots(r);
        }
    /* Everything write-protected (whole chunks merge: no new mapping), then the copies
     * taken while no thread can change them: the child's view is one instant's. */
    for (size_t i = 0; i < bm_space.count; i++)
        if (freezable(&bm_space.regions[i]))
            freeze_region(&bm_space.regions[i]);
    size_t taken = marked || snapped ? take_snapshots() : 0;
    if (excess) {
        static bool warned;
        if (!warned)
            bm_warn("fork with %ld of vm.max_map_count=%ld mappings in use: %zu of %zu chunks "
                    "copied for the child at once instead of write-protected",
                    mappings, limit, taken, chunks);
        warned = true;
    }
    if (active < MAX_SLOTS && (seen & (UINT64_C(1) << active)))
        choose_active();
    count(&totals.frozen_forks);
}

/* The child maps copies of the snapshot chunks: writable again, a run per mprotect. */
static void release_snapshots(void)
{
    for (size_t i = 0; i < used_chunks;) {
        if (!(__atomic_load_n(&table[i], __ATOMIC_RELAXED) & SNAP)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < used_chunks && (__atomic_load_n(&table[j], __ATOMIC_RELAXED) & SNAP)) {
            acquire(j);
            j++;
        }
        bool ok = mprotect((void *)chunk_addr(i), (j - i) * CHUNK, PROT_READ | PROT_WRITE) == 0;
        for (; i < j; i++) {
            uint32_t word = __atomic_load_n(&table[i], __ATOMIC_RELAXED) & ~(SNAP | SNAPPED);
            /* Refused (map table full): it stays frozen, copied on its first write. */
            publish(i, ok ? slot_of(word) : word);
        }
    }
}

void bm_cow_after_fork_parent(void)
{
    if (held_fd >= 0)
        close(held_fd); /* the child's copy keeps the lock */
    held_fd = -1;
    if (snapped)
        release_snapshots();
    snapped = false;
    snap_slot = MAX_SLOTS;
    __atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
}

static bool map_private(int fd, uintptr_t addr, size_t len)
{
    /* NORESERVE: a private writable mapping of 40 GiB is otherwise refused outright by the
     * overcommit heuristic, though the child copies only the pages it writes. */
    return mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
                fd, offset_of(addr)) != MAP_FAILED;
}

/* In the child: [from, to) MAP_PRIVATE on fd, in one call (a run of one file: whole
 * mappings, nothing split), else chunk by chunk. Returns the chunks left shared. */
static size_t remap_private(int fd, uintptr_t from, uintptr_t to)
{
    if (fd < 0 || to <= from || map_private(fd, from, to - from))
        return 0;
    size_t failed = 0;
    for (uintptr_t at = from; at < to; at += CHUNK)
        failed += !map_private(fd, at, CHUNK);
    return failed;
}

/* The file the child reads chunk i from (-1: a RAM copy, which fork copied). */
static int child_source(uint32_t word)
{
    if (word & SNAP)
        return slot_fd[snap_slot];
    return fd_of(slot_of(word));
}

void bm_cow_after_fork_child(void)
{
    size_t failed = 0;
    int run_fd = -1;
    uintptr_t run_start = 0, run_end = 0;
    for (size_t i = 0; i < bm_space.count; i++) {
        struct bm_region *r = &bm_space.regions[i];
        if (!(r->flags & BM_REGION_INHERITED) && table && split) {
            for (uintptr_t at = r->addr, end = chunks_end(r); at < end; at += CHUNK) {
                int fd = child_source(__atomic_load_n(&table[chunk_of(at)], __ATOMIC_RELAXED));
                if (fd != run_fd || at != run_end) {
                    failed += remap_private(run_fd, run_start, run_end);
                    run_fd = fd;
                    run_start = at;
                }
                run_end = at + CHUNK;
            }
        }
        r->flags |= BM_REGION_INHERITED;
    }
    failed += remap_private(run_fd, run_start, run_end);
    /* held_fd stays open: it is what keeps our parent's frozen ranges frozen. */
    held_fd = -1;
    if (table) {
        for (unsigned s = 0; s < MAX_SLOTS; s++)
            if (slot_fd[s] >= 0 && slot_fd[s] != bm_swap.fd)
                close(slot_fd[s]);
        munmap(table, table_bytes);
        table = NULL;
    }
    if (lock_fd >= 0)
        close(lock_fd);
    if (probe_fd >= 0)
        close(probe_fd);
    lock_fd = probe_fd = -1;
    liveness_unknown = frozen_any = false;
    split = snapped = false;
    snap_slot = MAX_SLOTS;
    seen = 0;
    used_chunks = 0;
    forking = in_progress = 0;
    memset(&totals, 0, sizeof totals);
    if (failed) {
        totals.unisolated_chunks = failed;
        bm_warn("fork isolation lost in the child: %zu chunk(s) of 2 MiB could not be mapped "
                "privately (vm.max_map_count?) and stay shared with the parent", failed);
    }
}

/* ------------------------------------------------------------------ after the children */

/* Punch what no chunk maps from slot s: copies' sources, frees while frozen. */
static void punch_unmapped(unsigned s)
{
    size_t start = 0;
    for (size_t i = 0; i <= used_chunks; i++) {
        uint32_t word = i < used_chunks ? __atomic_load_n(&table[i], __ATOMIC_ACQUIRE) : 0;
        bool mapped = (word & REF) && slot_of(word) == s;
        if (!mapped && i < used_chunks)
            continue;
        if (i > start)
            fallocate(slot_fd[s], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      offset_of(chunk_addr(start)), (off_t)((i - start) * CHUNK));
        start = i + 1;
    }
}

/* Thaw every frozen chunk, a run of one file per mprotect (whole mappings: nothing to
 * split, and one call where there were thousands of chunks). */
static void thaw_all(void)
{
    for (size_t i = 0; i < used_chunks;) {
        if (!(__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & (FROZEN | BUSY))) {
            i++;
            continue;
        }
        uint32_t word = acquire(i);
        if (!(word & FROZEN)) {
            publish(i++, word);
            continue;
        }
        size_t j = i + 1;
        while (j < used_chunks && claim_frozen(j, slot_of(word)))
            j++;
        bool ok = mprotect((void *)chunk_addr(i), (j - i) * CHUNK, PROT_READ | PROT_WRITE) == 0;
        for (size_t k = i; k < j; k++) {
            uint32_t w = k == i ? word : __atomic_load_n(&table[k], __ATOMIC_RELAXED);
            if (!ok) { /* one at a time then, each with its own fall-backs */
                bool stuck;
                w = thaw_chunk(k, w, &stuck);
            } else {
                count(&totals.thawed_chunks);
                w = slot_of(w);
            }
            publish(k, (w & FROZEN) ? w : slot_of(w));
        }
        i = j;
    }
}

void bm_cow_reap_locked(void)
{
    if (!table || !split || (!frozen_any && !seen) || children_may_live())
        return;
    thaw_all();
    uint64_t used = 0;
    for (size_t r = 0; r < bm_space.count; r++) {
        const struct bm_region *region = &bm_space.regions[r];
        if (region->flags & BM_REGION_INHERITED)
            continue;
        for (uintptr_t at = region->addr; at < region->addr + region->len; at += CHUNK) {
            /* Atomic: fries.c punches (and so rewrites words) under its own lock. */
            uint32_t word = __atomic_or_fetch(&table[chunk_of(at)], REF, __ATOMIC_ACQ_REL);
            unsigned slot = slot_of(word);
            if (slot < MAX_SLOTS)
                used |= UINT64_C(1) << slot;
        }
    }
    for (unsigned s = 0; s < MAX_SLOTS; s++) {
        if (slot_fd[s] < 0 || s == active)
            continue;
        if (used & (UINT64_C(1) << s)) {
            punch_unmapped(s);
        } else {
            close(slot_fd[s]);
            slot_fd[s] = -1;
        }
    }
    for (size_t i = 0; i < used_chunks; i++)
        if (__atomic_load_n(&table[i], __ATOMIC_RELAXED) & REF)
            __atomic_and_fetch(&table[i], ~REF, __ATOMIC_ACQ_REL);
    seen = 0;
    frozen_any = false;
    if (active >= MAX_SLOTS)
        choose_active();
}

void bm_fork_tick(void)
{
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE) ||
        (!__atomic_load_n(&frozen_any, __ATOMIC_RELAXED) &&
         !__atomic_load_n(&seen, __ATOMIC_RELAXED)))
        return; /* the common case costs no lock */
    pthread_mutex_lock(&bm_lock);
    bm_cow_reap_locked();
    pthread_mutex_unlock(&bm_lock);
}

BM_EXPORT int bigmaac_fork_stats(struct bigmaac_fork_stats *out)
{
    if (!out)
        return BIGMAAC_ERR_INVALID;
    pthread_mutex_lock(&bm_lock);
    *out = totals;
    out->frozen_chunks = out->backing_files = 0;
    for (size_t i = 0; table && i < used_chunks; i++)
        out->frozen_chunks += (table[i] & FROZEN) != 0;
    for (unsigned s = 0; table && split && s < MAX_SLOTS; s++)
        out->backing_files += slot_fd[s] >= 0;
    if (!table || !split)
        out->backing_files = bm_swap.fd >= 0;
    pthread_mutex_unlock(&bm_lock);
    return BIGMAAC_OK;
}
