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
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK_SHIFT 21
#define CHUNK ((size_t)1 << CHUNK_SHIFT)
_Static_assert(CHUNK == BM_FOLIO_MAX, "a chunk is a folio");

#define MAX_SLOTS 64
#define SLOT_ANON 0xffu    /* private anonymous copy: fork copies it like any RAM */
#define SLOT_BITS 0xffu
#define PAGES_SHIFT 8      /* pages of the chunk a region uses (1..512), set when frozen */
#define PAGES_BITS (0x3ffu << PAGES_SHIFT)
#define REF (1u << 29)     /* scratch mark of reap_locked */
#define FROZEN (1u << 30)  /* write-protected: a live child may map its file range */
#define BUSY (1u << 31)    /* being changed; others wait */

static uint32_t *table;    /* one word per chunk; NULL until a fork froze something */
static size_t table_bytes;
static uintptr_t first_chunk; /* address >> CHUNK_SHIFT of table[0] */
static size_t chunk_count;
static size_t used_chunks; /* one past the highest chunk ever backed: loops stop there */
static int slot_fd[MAX_SLOTS];
static unsigned active;    /* slot of bm_swap.fd */
static uint64_t seen;      /* slots a live child may map, since the last thaw */
static bool frozen_any;
static int lock_fd = -1, probe_fd = -1, held_fd = -1;
static bool liveness_unknown; /* a lock could not be taken: assume children live */
static int forking, in_progress;
static uint64_t thaw_epoch;
static struct sigaction previous;
static struct bigmaac_fork_stats totals;

static uintptr_t chunk_addr(size_t i) { return (first_chunk + i) << CHUNK_SHIFT; }
static size_t chunk_of(uintptr_t addr) { return (addr >> CHUNK_SHIFT) - first_chunk; }
static unsigned slot_of(uint32_t word) { return word & SLOT_BITS; }
static int fd_of(unsigned slot) { return slot == SLOT_ANON ? -1 : slot_fd[slot]; }
static off_t offset_of(uintptr_t addr) { return bm_space_offset(addr); }
static void count(uint64_t *counter) { __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED); }

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

/* Chunk i into the active file at its own offset, mapped over it writable; the frozen
 * range is left as it is. Signal-safe. Returns the chunk's new word. */
static uint32_t copy_chunk(size_t i, uint32_t word)
{
    uintptr_t addr = chunk_addr(i);
    size_t pages = (word & PAGES_BITS) >> PAGES_SHIFT;
    size_t len = pages ? pages * bm_page_size : CHUNK;
    unsigned to = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    int to_fd = to < MAX_SLOTS ? slot_fd[to] : -1, from_fd = fd_of(slot_of(word));
    if (to_fd >= 0 && from_fd >= 0 && fallocate(to_fd, 0, offset_of(addr), (off_t)len) == 0) {
        if (copy_file(from_fd, to_fd, offset_of(addr), len, addr) &&
            mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, to_fd,
                 offset_of(addr)) != MAP_FAILED) {
            count(&totals.copied_chunks);
            return to;
        }
        fallocate(to_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr), (off_t)len);
    }
    /* No disk (or no file) for the copy: RAM, still the parent's own. */
    void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy != MAP_FAILED) {
        memcpy(copy, (const void *)addr, len);
        if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)addr) != MAP_FAILED) {
            count(&totals.copied_chunks);
            count(&totals.ram_chunks);
            return SLOT_ANON;
        }
        munmap(copy, len);
    }
    /* Nothing left to copy into: writing in place beats crashing the host. */
    mprotect((void *)addr, len, PROT_READ | PROT_WRITE);
    count(&totals.unisolated_chunks);
    return slot_of(word);
}

static uint32_t thaw_chunk(size_t i, uint32_t word)
{
    size_t pages = (word & PAGES_BITS) >> PAGES_SHIFT;
    mprotect((void *)chunk_addr(i), pages ? pages * bm_page_size : CHUNK, PROT_READ | PROT_WRITE);
    count(&totals.thawed_chunks);
    return slot_of(word);
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

enum unfreeze { WAIT, NOT_FROZEN, UNFROZEN };

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
    publish(i, children_may_live() ? copy_chunk(i, word) : thaw_chunk(i, word));
    return UNFROZEN;
}

static enum outcome resolve(uint32_t *words, uintptr_t addr)
{
    size_t i = chunk_of(addr);
    if (i >= chunk_count)
        return PASS;
    return unfreeze(words, i) == NOT_FROZEN ? not_frozen(addr) : RETRY;
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
    if (!words)
        return PASS;
    /* Re-raised by a handler installed after ours (Python's faulthandler raises with
     * SI_TKILL after restoring ours): if the fault was ours it happens again. */
    if (info->si_code <= 0)
        return info->si_pid == getpid() ? RETRY : PASS;
    if (info->si_code != SEGV_ACCERR || !bm_space_owns(info->si_addr))
        return PASS;
    __atomic_add_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
    enum outcome outcome = resolve(words, (uintptr_t)info->si_addr);
    __atomic_sub_fetch(&in_progress, 1, __ATOMIC_SEQ_CST);
    return outcome;
}

static void chain(int sig, siginfo_t *info, void *context)
{
    static __thread __attribute__((tls_model("initial-exec"))) void *chained_at;
    bool again = chained_at == info->si_addr;
    chained_at = info->si_addr;
    if (!again && (previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, context);
        return;
    }
    if (!again && !(previous.sa_flags & SA_SIGINFO) && previous.sa_handler != SIG_DFL &&
        previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: the fault happens again and ends the process as it would have. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (info->si_code <= 0)
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
    struct sigaction current;
    if (sigaction(SIGSEGV, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
        current.sa_sigaction == on_fault)
        return;
    struct sigaction ours = {.sa_sigaction = on_fault,
                             .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART};
    sigemptyset(&ours.sa_mask);
    sigaction(SIGSEGV, &ours, &previous);
}

/* ------------------------------------------------------------------ backing files */

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
    slot_fd[0] = bm_swap.fd; /* every word is 0: every chunk maps the first file */
    active = 0;
    if (bm_space.count) {
        const struct bm_region *last = &bm_space.regions[bm_space.count - 1];
        used_chunks = ((last->addr + last->len - 1) >> CHUNK_SHIFT) - first_chunk + 1;
    }
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
    if (!words)
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

static bool map_private_run(int fd, uintptr_t addr, size_t len, void *unused)
{
    (void)unused;
    if (fd >= 0) /* RAM copies are copied by fork itself */
        mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
             offset_of(addr));
    return true;
}

bool bm_backing_claim(uintptr_t addr, size_t len)
{
    if (!table || active >= MAX_SLOTS) {
        errno = EAGAIN; /* read only on failure */
        return table ? false : bm_swap.fd >= 0;
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
    if (!table) {
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
    if (!table) {
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
    return __atomic_load_n(&table, __ATOMIC_ACQUIRE) != NULL;
}

bool bm_backing_frozen(uintptr_t addr, size_t len)
{
    if (!table || !len)
        return false;
    for (size_t i = chunk_of(addr), end = chunk_of(addr + len - 1); i <= end; i++)
        if (__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & (FROZEN | BUSY))
            return true;
    return false;
}

/* A dead chunk gets a hole of the active file: zeros, and the frozen range untouched. */
static uint32_t detach(size_t i, uint32_t word)
{
    uintptr_t addr = chunk_addr(i);
    unsigned to = active;
    if (!(word & FROZEN) && fd_of(slot_of(word)) >= 0)
        fallocate(fd_of(slot_of(word)), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  offset_of(addr), (off_t)CHUNK);
    if (to < MAX_SLOTS) {
        fallocate(slot_fd[to], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset_of(addr),
                  (off_t)CHUNK);
        if (mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                 slot_fd[to], offset_of(addr)) != MAP_FAILED)
            return to;
    }
    mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
         -1, 0);
    return SLOT_ANON;
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
    if (!table)
        return punch_piece(bm_swap.fd, addr, len);
    bool ok = true;
    for (uintptr_t end = addr + len; addr < end;) {
        uintptr_t next = ((addr >> CHUNK_SHIFT) + 1) << CHUNK_SHIFT;
        size_t piece = (next < end ? next : end) - addr, i = chunk_of(addr);
        uint32_t word = acquire(i);
        if (piece == CHUNK && (slot_of(word) != active || (word & FROZEN))) {
            /* The whole chunk is dead: a hole of the active file, so that a later
             * fallocate of bm_swap.fd (recycle.c, fries.c) backs it again. */
            word = detach(i, word);
        } else {
            if (word & FROZEN) /* the rest of the chunk lives on: copy, then punch */
                word = copy_chunk(i, word);
            ok = punch_piece(fd_of(slot_of(word)), addr, piece) && ok;
        }
        publish(i, slot_of(word));
        addr = next;
    }
    return ok;
}

void bm_backing_forget(uintptr_t addr, size_t len)
{
    if (!table || !len)
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

/* Write-protect the region's chunks, a run of file-backed chunks per mprotect (RAM
 * copies are copied by fork itself and stay writable). */
static void freeze_region(const struct bm_region *r)
{
    uintptr_t end = r->addr + r->len, run = r->addr;
    for (uintptr_t at = r->addr; at < end; at += CHUNK) {
        size_t i = chunk_of(at);
        uint32_t word = acquire(i);
        size_t len = end - at < CHUNK ? end - at : CHUNK;
        if (slot_of(word) == SLOT_ANON) {
            if (at > run)
                mprotect((void *)run, at - run, PROT_READ);
            run = at + len;
            publish(i, word);
            continue;
        }
        seen |= UINT64_C(1) << slot_of(word);
        publish(i, slot_of(word) | FROZEN | (uint32_t)(len / bm_page_size) << PAGES_SHIFT);
        frozen_any = true;
    }
    if (end > run)
        mprotect((void *)run, end - run, PROT_READ);
}

void bm_cow_before_fork(void)
{
    size_t live = 0;
    for (size_t i = 0; i < bm_space.count; i++)
        live += freezable(&bm_space.regions[i]);
    if (!live || (!table && bm_swap.fd < 0) || !make_table())
        return;
    install_handler();
    __atomic_store_n(&forking, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&in_progress, __ATOMIC_SEQ_CST))
        sched_yield();
    bm_cow_reap_locked();
    take_child_lock();
    for (size_t i = 0; i < bm_space.count; i++)
        if (freezable(&bm_space.regions[i]))
            freeze_region(&bm_space.regions[i]);
    if (active < MAX_SLOTS && (seen & (UINT64_C(1) << active)))
        choose_active();
    count(&totals.frozen_forks);
}

void bm_cow_after_fork_parent(void)
{
    if (held_fd >= 0)
        close(held_fd); /* the child's copy keeps the lock */
    held_fd = -1;
    __atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
}

void bm_cow_after_fork_child(void)
{
    for (size_t i = 0; i < bm_space.count; i++) {
        struct bm_region *r = &bm_space.regions[i];
        if (!(r->flags & BM_REGION_INHERITED) && (table || bm_swap.fd >= 0))
            each_run(r->addr, r->len, map_private_run, NULL);
        r->flags |= BM_REGION_INHERITED;
    }
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
    seen = 0;
    used_chunks = 0;
    forking = in_progress = 0;
    memset(&totals, 0, sizeof totals);
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

void bm_cow_reap_locked(void)
{
    if (!table || (!frozen_any && !seen) || children_may_live())
        return;
    for (size_t i = 0; i < used_chunks; i++)
        if (__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & (FROZEN | BUSY)) {
            uint32_t word = acquire(i);
            publish(i, word & FROZEN ? thaw_chunk(i, word) : word);
        }
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
    for (unsigned s = 0; table && s < MAX_SLOTS; s++)
        out->backing_files += slot_fd[s] >= 0;
    if (!table)
        out->backing_files = bm_swap.fd >= 0;
    pthread_mutex_unlock(&bm_lock);
    return BIGMAAC_OK;
}
