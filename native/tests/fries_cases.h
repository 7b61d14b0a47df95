/* fries_cases.h: workload cases of the fries tier, included by workload.c.
 *
 * The driver runs them with BIGMAAC_MIN_FRY_SIZE=4K (and the default 32 MiB big
 * threshold), so requests of 4 KiB up to 1 MiB are fries: blocks of a 2 MiB chunk of
 * the swap file; larger ones up to 32 MiB get a region of their own.
 */
#ifndef BIGMAAC_TEST_FRIES_CASES_H
#define BIGMAAC_TEST_FRIES_CASES_H

#include <stdatomic.h>
#include <sys/resource.h>
#include <stdbool.h>

#define FRY_MIN 4096

/* Every entry point for fry sizes, each block kept intact among its neighbours. */
static int case_fries(void)
{
    char *under = malloc(FRY_MIN - 1);
    CHECK(under && !owns(under), "one byte under BIGMAAC_MIN_FRY_SIZE is not ours");
    free(under);
    enum { N = 300 };
    static char *blocks[N];
    static size_t sizes[N];
    for (int i = 0; i < N; i++) {
        sizes[i] = FRY_MIN + (size_t)i * 3517 % (MIB - FRY_MIN);
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] && owns(blocks[i]), "malloc(%zu) is a fry", sizes[i]);
        size_t usable = malloc_usable_size(blocks[i]);
        CHECK(usable >= sizes[i] && usable <= sizes[i] + sizes[i] / 4 + 16,
              "usable %zu for %zu: a size class wastes at most a quarter", usable, sizes[i]);
        CHECK(((uintptr_t)blocks[i] & 15) == 0, "16-byte aligned");
        fill_pattern(blocks[i], sizes[i], (uint64_t)i);
    }
    for (int i = 0; i < N; i++)
        CHECK(check_pattern(blocks[i], sizes[i], (uint64_t)i) == SIZE_MAX, "block %d", i);
    char *largest = malloc(MIB), *own_region = malloc(MIB + 1);
    CHECK(owns(largest) && owns(own_region) && page_aligned(own_region),
          "1 MiB is a fry; above it a region of its own");
    free(largest);
    free(own_region);

    /* calloc: a reused block holds old data, calloc must not show it. */
    char *dirty = malloc(8000);
    memset(dirty, 0xAB, 8000);
    free(dirty);
    unsigned char *zero = calloc(1000, 8);
    CHECK(zero && owns(zero), "calloc(1000, 8) is a fry");
    for (size_t i = 0; i < 8000; i++)
        CHECK(zero[i] == 0, "calloc byte %zu", i);
    free(zero);

    /* Alignment beyond 16 and up to the page size and past it. */
    void *p = NULL;
    CHECK(posix_memalign(&p, 4096, 5000) == 0 && owns(p) && page_aligned(p), "posix_memalign");
    free(p);
    char *a = aligned_alloc(65536, 10000);
    CHECK(a && owns(a) && ((uintptr_t)a & 65535) == 0, "aligned_alloc 64K");
    char *m = memalign(256, 4100), *v = valloc(5000), *pv = pvalloc(5000);
    CHECK(m && owns(m) && ((uintptr_t)m & 255) == 0, "memalign 256");
    CHECK(v && owns(v) && page_aligned(v) && pv && page_aligned(pv), "valloc, pvalloc");
    CHECK(malloc_usable_size(pv) >= 8192, "pvalloc rounds up to pages");
    free(a), free(m), free(v), free(pv);

    /* realloc through every tier and back, data kept at each step. */
    char *r = malloc(100);
    fill_pattern(r, 96, 50);
    r = realloc(r, 10000);
    CHECK(r && owns(r) && check_pattern(r, 96, 50) == SIZE_MAX, "small -> fry");
    fill_pattern(r, 10000, 51);
    uintptr_t before = (uintptr_t)r;
    r = realloc(r, 10001);
    CHECK((uintptr_t)r == before, "a size of the same class stays in place");
    r = realloc(r, 20000);
    CHECK(r && owns(r) && check_pattern(r, 10000, 51) == SIZE_MAX, "fry -> larger fry");
    r = realloc(r, 40 * MIB);
    CHECK(r && owns(r) && check_pattern(r, 10000, 51) == SIZE_MAX, "fry -> big");
    r = realloc(r, 50000);
    CHECK(r && owns(r) && malloc_usable_size(r) < MIB && check_pattern(r, 10000, 51) == SIZE_MAX,
          "big -> fry");
    r = realloc(r, 1000);
    CHECK(r && !owns(r) && check_pattern(r, 1000, 51) == SIZE_MAX, "fry -> small");
    r = realloc(r, 6000);
    CHECK(r && owns(r), "small -> fry again");
    CHECK(realloc(r, 0) == NULL, "realloc(fry, 0) frees and returns NULL, as glibc");
    volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler's own check */
    errno = 0;
    CHECK(reallocarray(NULL, huge, 4) == NULL && errno == ENOMEM, "reallocarray overflow");
    char *ra = reallocarray(NULL, 100, 64);
    CHECK(ra && owns(ra), "reallocarray of 6400 bytes is a fry");
    free(ra);

    for (int i = 0; i < N; i++) {
        errno = 4321;
        free(blocks[i]);
        CHECK(errno == 4321, "free of a fry keeps errno");
    }
    return 0;
}

/* Churn: the arena reuses freed blocks and chunks; the swap file does not grow. */
static int case_fries_reuse(void)
{
    enum { N = 512, ROUNDS = 100 };
    static char *blocks[N];
    long long first = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            blocks[i] = malloc(16384 + (size_t)(i % 7) * 1000);
            CHECK(blocks[i] && owns(blocks[i]), "round %d block %d", round, i);
            blocks[i][0] = (char)i;
        }
        long long used = swap_file_bytes();
        if (round == 0)
            first = used;
        /* Slack for the file system's extent blocks, less than a chunk (2 MiB). */
        CHECK(used > 0 && used <= first + (long long)MIB,
              "round %d: swap file holds %lld bytes, %lld at first", round, used, first);
        for (int i = 0; i < N; i++)
            free(blocks[i]);
    }
    return 0;
}

static struct bigmaac_fries_stats fries_stats(void)
{
    static int (*get)(struct bigmaac_fries_stats *);
    struct bigmaac_fries_stats st;
    memset(&st, 0, sizeof st);
    if (!get)
        get = (int (*)(struct bigmaac_fries_stats *))dlsym(RTLD_DEFAULT, "bigmaac_fries_stats");
    if (get)
        get(&st);
    return st;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Polls the swap file's disk usage until it is at most limit; seconds waited, or -1
 * after timeout seconds. */
static double wait_swap_at_most(long long limit, double timeout)
{
    double start = now_seconds();
    while (swap_file_bytes() > limit) {
        if (now_seconds() - start > timeout)
            return -1;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return now_seconds() - start;
}

/* Freed whole chunks go back to the disk (and RAM): the swap file's blocks fall. */
static int case_fries_punch(void)
{
    enum { N = 4096 };
    static char *blocks[N];
    /* stdio and opendir (in swap_file_bytes) hold fries of their own: count them first. */
    free(malloc(FRY_MIN));
    long long before = swap_file_bytes();
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(16384);
        CHECK(blocks[i] && owns(blocks[i]), "block %d", i);
        fill_pattern(blocks[i], 16384, (uint64_t)i);
    }
    long long full = swap_file_bytes();
    CHECK(full >= (long long)(N * 16384), "64 MiB of fries hold %lld bytes of disk", full);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    /* Emptied chunks keep their pages through the next tick of the control thread, for
     * the next refill; after it they are punched. This thread's cache may keep its last
     * 16 blocks: at most two chunks. */
    struct bigmaac_fries_stats st = fries_stats();
    CHECK(st.idle_chunks >= 30, "32 chunks emptied, %llu idle", (unsigned long long)st.idle_chunks);
    double waited = wait_swap_at_most(before + 4 * MIB, 10);
    st = fries_stats();
    CHECK(waited >= 0, "after freeing everything the swap file holds %lld bytes (%lld when "
          "full, %lld before); empty chunks must be punched", swap_file_bytes(), full, before);
    CHECK(st.empty_chunks >= 30 && st.idle_chunks <= 2, "punched %llu chunks, %llu idle",
          (unsigned long long)st.empty_chunks, (unsigned long long)st.idle_chunks);

    /* Emptied, then taken again for another class before their time is up: the same
     * pages, no punch, no fallocate, no page fault. */
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(16384);
        CHECK(blocks[i] && owns(blocks[i]), "block %d", i);
        memset(blocks[i], 1, 16384); /* its pages in RAM */
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    st = fries_stats();
    uint64_t punched_before = st.empty_chunks;
    CHECK(st.idle_chunks >= 30, "%llu idle", (unsigned long long)st.idle_chunks);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    long faults = usage.ru_minflt;
    for (int i = 0; i < N / 2; i++) { /* 64 MiB: as much as the idle chunks hold */
        blocks[i] = malloc(32768);
        CHECK(blocks[i] && owns(blocks[i]), "block %d", i);
        fill_pattern(blocks[i], 32768, (uint64_t)i);
    }
    getrusage(RUSAGE_SELF, &usage);
    faults = usage.ru_minflt - faults;
    st = fries_stats();
    CHECK(st.idle_chunks <= 2 && st.empty_chunks <= punched_before && faults < 1000,
          "idle chunks reused as they were: %llu idle left, %llu punched meanwhile, %ld page "
          "faults writing 64 MiB", (unsigned long long)st.idle_chunks,
          (unsigned long long)(st.empty_chunks - punched_before), faults);
    for (int i = 0; i < N / 2; i++)
        CHECK(check_pattern(blocks[i], 32768, (uint64_t)i) == SIZE_MAX, "block %d", i);
    for (int i = 0; i < N / 2; i++)
        free(blocks[i]);
    CHECK(pageout(NULL) == 0, "page-out");
    CHECK(swap_file_bytes() <= before + 4 * MIB, "a page-out punches idle chunks at once: "
          "%lld bytes, %lld before", swap_file_bytes(), before);
    return 0;
}

/* Chunks that keep live blocks give back the pages of their free ones: within seconds of
 * the free, at once on a page-out; the blocks come back from those pages, data intact. */
static int case_fries_purge(void)
{
    enum { N = 4096, SIZE = 16384 };
    static char *blocks[N];
    free(malloc(FRY_MIN)); /* stdio's and opendir's fries first */
    long long before = swap_file_bytes();
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] && owns(blocks[i]), "block %d", i);
        fill_pattern(blocks[i], SIZE, (uint64_t)i);
    }
    long long full = swap_file_bytes();
    uint64_t resident_full, dirty;
    resident(&resident_full, &dirty);
    CHECK(full >= (long long)N * SIZE, "64 MiB of fries hold %lld bytes of disk", full);
    /* Every other block: no chunk empties, 32 MiB of free blocks among live ones. This
     * thread's cache keeps at most 256 KiB of them; the rest waits in the arena. */
    for (int i = 0; i < N; i += 2)
        free(blocks[i]);
    const long long half = (long long)(N / 2) * SIZE, slack = 2 * MIB;
    double waited = wait_swap_at_most(full - half + slack, 10);
    struct bigmaac_fries_stats st = fries_stats();
    CHECK(waited >= 0, "the pages of 32 MiB of free fries went back to the disk: swap file "
          "%lld bytes, %lld when full; purged %llu", swap_file_bytes(), full,
          (unsigned long long)st.purged_bytes);
    CHECK(st.purged_bytes >= (uint64_t)(half - slack) && st.empty_chunks == 0,
          "purged %llu bytes, %llu empty chunks", (unsigned long long)st.purged_bytes,
          (unsigned long long)st.empty_chunks);
    uint64_t resident_now;
    resident(&resident_now, &dirty);
    CHECK(resident_now + (uint64_t)(half - slack) <= resident_full, "and left RAM: resident "
          "%llu bytes, %llu when full", (unsigned long long)resident_now,
          (unsigned long long)resident_full);
    for (int i = 1; i < N; i += 2)
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i) == SIZE_MAX, "live block %d", i);

    /* Taken again: the same pages, reserved on disk again, read and written as new. */
    for (int i = 0; i < N; i += 2) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] && owns(blocks[i]), "block %d again", i);
        fill_pattern(blocks[i], SIZE, (uint64_t)i + N);
    }
    st = fries_stats();
    long long refilled = swap_file_bytes();
    CHECK(refilled <= full + slack && st.chunks <= (uint64_t)(N * SIZE / (2 * MIB)) + 2,
          "reused, not grown: %lld bytes (%lld when full), %llu chunks", refilled, full,
          (unsigned long long)st.chunks);
    CHECK(st.reserved_again >= (uint64_t)(half - slack), "reserved again %llu",
          (unsigned long long)st.reserved_again);
    for (int i = 0; i < N; i++)
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i + (i % 2 ? 0 : N)) == SIZE_MAX,
              "block %d", i);

    /* A page-out wants the memory now: it purges at once, no waiting. */
    for (int i = 1; i < N; i += 2)
        free(blocks[i]);
    CHECK(pageout(NULL) == 0, "page-out");
    long long after_pageout = swap_file_bytes();
    CHECK(after_pageout <= full - half + slack, "right after the page-out the swap file holds "
          "%lld bytes, %lld when full", after_pageout, full);
    for (int i = 0; i < N; i += 2)
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i + N) == SIZE_MAX, "block %d", i);
    for (int i = 0; i < N; i += 2)
        free(blocks[i]);
    CHECK(wait_swap_at_most(before + 4 * MIB, 10) >= 0, "all freed: %lld bytes, %lld before",
          swap_file_bytes(), before);

    /* Every class from 4 KiB, whole pages or not (5 KiB blocks hold one page or none):
     * purged, taken again and written, three rounds; every block keeps its data. */
    enum { MIXED = 2000 };
    static char *mixed[MIXED];
    static size_t sizes[MIXED];
    static uint64_t seeds[MIXED];
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < MIXED; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (mixed[i] && (x & 1))
                continue;
            free(mixed[i]);
            /* Two in three from the classes up to 16 KiB, where page and block differ. */
            sizes[i] = 4096 + (size_t)(x >> 40) % (x % 3 ? 12 * 1024 : 300 * 1024);
            seeds[i] = (uint64_t)(round * MIXED + i);
            mixed[i] = malloc(sizes[i]);
            CHECK(mixed[i] && owns(mixed[i]), "round %d: %zu bytes", round, sizes[i]);
            fill_pattern(mixed[i], sizes[i], seeds[i]);
        }
        for (int i = 0; i < MIXED; i += 3) { /* a third freed, then purged at once */
            free(mixed[i]);
            mixed[i] = NULL;
        }
        CHECK(pageout(NULL) == 0, "page-out");
        for (int i = 0; i < MIXED; i++)
            CHECK(!mixed[i] || check_pattern(mixed[i], sizes[i], seeds[i]) == SIZE_MAX,
                  "round %d: block %d of %zu bytes", round, i, sizes[i]);
    }
    CHECK(fries_stats().reserved_again > 0, "purged blocks of mixed classes were reused");
    for (int i = 0; i < MIXED; i++)
        free(mixed[i]);
    return 0;
}

/* 8 threads pass fries to each other through shared slots; each checks what it gets. */
enum { FRY_SLOTS = 64, FRY_THREADS = 8, FRY_OPS = 20000 };
static char *_Atomic fry_slots[FRY_SLOTS];

static size_t fry_size_of(const char *p)
{
    size_t size;
    memcpy(&size, p, sizeof size);
    return size;
}

static void *fry_trader(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
    for (int op = 0; op < FRY_OPS; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t size = FRY_MIN + (size_t)(x >> 20) % (96 * 1024);
        char *mine = (x & 1) ? malloc(size) : calloc(1, size);
        if (!mine || !owns(mine))
            return "allocation failed or not a fry";
        memcpy(mine, &size, sizeof size);
        fill_pattern(mine + 64, size - 64, (uint64_t)(uintptr_t)mine);
        char *theirs = atomic_exchange(&fry_slots[x % FRY_SLOTS], mine);
        if (theirs) {
            size_t n = fry_size_of(theirs);
            if (check_pattern(theirs + 64, n - 64, (uint64_t)(uintptr_t)theirs) != SIZE_MAX)
                return "a block changed while another thread held it";
            if (op % 3 == 0)
                theirs = realloc(theirs, n + 5000);
            free(theirs);
        }
    }
    return NULL;
}

/* The last holder of the slots: checks and frees them, then exits like the others. */
static void *fry_drainer(void *arg)
{
    (void)arg;
    for (int i = 0; i < FRY_SLOTS; i++) {
        char *p = fry_slots[i];
        if (!p)
            continue;
        size_t n = fry_size_of(p);
        if (check_pattern(p + 64, n - 64, (uint64_t)(uintptr_t)p) != SIZE_MAX)
            return "a block changed after its last holder exited";
        free(p);
    }
    return NULL;
}

static int case_fries_threads(void)
{
    pthread_t threads[FRY_THREADS];
    free(malloc(FRY_MIN));
    long long before = swap_file_bytes(); /* stdio's and opendir's fries */
    for (int i = 0; i < FRY_THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, fry_trader, (void *)(uintptr_t)(i + 1)) == 0,
              "thread %d", i);
    for (int i = 0; i < FRY_THREADS; i++) {
        void *why;
        pthread_join(threads[i], &why);
        CHECK(why == NULL, "thread %d: %s", i, (const char *)why);
    }
    pthread_t drainer;
    void *why;
    CHECK(pthread_create(&drainer, NULL, fry_drainer, NULL) == 0, "drainer");
    pthread_join(drainer, &why);
    CHECK(why == NULL, "drainer: %s", (const char *)why);
    /* Every thread's cache went back at its exit: every chunk emptied and is punched
     * within two ticks. Up to 1 MiB of slack for the file system's extent blocks. */
    CHECK(wait_swap_at_most(before + (long long)MIB, 10) >= 0, "swap file holds %lld bytes "
          "after every fry was freed and every thread exited, %lld before", swap_file_bytes(),
          before);
    return 0;
}

/* A child's writes and frees of inherited fries never reach the parent; it makes its
 * own fries afterwards. */
static int case_fries_fork(void)
{
    char *shared = malloc(65536);
    CHECK(shared && owns(shared), "fry");
    fill_pattern(shared, 65536, 70);
    pid_t pid = fork();
    if (pid == 0) {
        if (check_pattern(shared, 65536, 70) != SIZE_MAX)
            _exit(3);
        memset(shared, 0x5A, 65536);
        free(shared);
        char *own[64];
        for (int i = 0; i < 64; i++) {
            own[i] = malloc(65536);
            if (!own[i] || !owns(own[i]))
                _exit(4);
            fill_pattern(own[i], 65536, (uint64_t)i);
        }
        for (int i = 0; i < 64; i++)
            if (check_pattern(own[i], 65536, (uint64_t)i) != SIZE_MAX)
                _exit(5);
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child status %d", status);
    CHECK(check_pattern(shared, 65536, 70) == SIZE_MAX, "the child's write reached the parent");
    char *next = malloc(65536);
    CHECK(next && owns(next) && next != shared, "the parent's block is still its own");
    free(next);
    free(shared);
    return 0;
}

/* On a small disk: fries fail cleanly (or fall back to RAM), never SIGBUS. */
static int fries_fill_disk(bool ram)
{
    enum { MAX = 8192, SIZE = 65536 };
    static char *blocks[MAX];
    int n = 0, in_ram = 0;
    errno = 0;
    while (n < MAX && (blocks[n] = malloc(SIZE)) != NULL) {
        in_ram += !owns(blocks[n]);
        if (!ram)
            CHECK(owns(blocks[n]), "disk-backed until the disk is full");
        if (ram && in_ram > 100)
            break;
        n++;
    }
    if (ram) {
        CHECK(in_ram > 100, "BIGMAAC_ON_DISK_FULL=ram: fries beyond the disk come from RAM");
    } else {
        CHECK(n > 0 && n < MAX, "the small disk filled after %d fries", n);
        CHECK(errno == ENOMEM, "a full disk is ENOMEM (errno %d)", errno);
    }
    for (int i = 0; i < n; i++)
        fill_pattern(blocks[i], SIZE, (uint64_t)i);
    for (int i = 0; i < n; i++)
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i) == SIZE_MAX, "block %d", i);
    for (int i = 0; i < n / 2; i++)
        free(blocks[i]);
    char *again = malloc(SIZE);
    CHECK(again && owns(again), "space freed is usable again");
    fill_pattern(again, SIZE, 1);
    free(again);
    for (int i = n / 2; i < n; i++)
        free(blocks[i]);
    return 0;
}

/* Blocks free at a fork stay in chunks a child still maps: purging them would copy the
 * chunk first, so they wait until the child is gone. The child's snapshot is kept. */
static int case_fries_purge_fork(void)
{
    enum { COUNT = 64, SIZE = 65536 }; /* two chunks */
    char *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] && owns(blocks[i]), "fry %d", i);
        fill_pattern(blocks[i], SIZE, (uint64_t)i);
    }
    for (int i = 0; i < COUNT; i += 2) /* in the arena's lists, but for this thread's cache */
        free(blocks[i]);
    int to_child[2];
    CHECK(pipe(to_child) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bool ok = wait_byte(to_child[0]);
        for (int i = 1; i < COUNT; i += 2)
            ok = ok && check_pattern(blocks[i], SIZE, (uint64_t)i) == SIZE_MAX;
        _exit(ok ? 0 : 3);
    }
    uint64_t copied = fork_counters().copied_chunks;
    CHECK(pageout(NULL) == 0, "page-out (a purge of everything)");
    struct timespec two_ticks = {2, 500 * 1000 * 1000};
    nanosleep(&two_ticks, NULL);
    struct bigmaac_fries_stats st = fries_stats();
    CHECK(st.purged_bytes == 0 && fork_counters().copied_chunks == copied,
          "while the child lives nothing is purged or copied: purged %llu, copied %llu",
          (unsigned long long)st.purged_bytes,
          (unsigned long long)(fork_counters().copied_chunks - copied));
    CHECK(send_byte(to_child[1]) && child_ok(pid), "the child's snapshot changed");
    const uint64_t want = (uint64_t)(COUNT / 2 - 4) * SIZE; /* 4 in this thread's cache */
    double start = now_seconds();
    while (fries_stats().purged_bytes < want && now_seconds() - start < 10) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    st = fries_stats();
    CHECK(st.purged_bytes >= want, "once the child is gone the free blocks are purged: %llu "
          "bytes", (unsigned long long)st.purged_bytes);
    for (int i = 1; i < COUNT; i += 2)
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i) == SIZE_MAX, "live block %d", i);
    for (int i = 1; i < COUNT; i += 2)
        free(blocks[i]);
    return 0;
}

/* Fills the disk under BIGMAAC_DIR with a file of its own; its path in path. */
static bool fill_disk(char *path, size_t size)
{
    snprintf(path, size, "%s/filler", getenv("BIGMAAC_DIR"));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return false;
    static char block[65536];
    memset(block, 1, sizeof block);
    while (write(fd, block, sizeof block) > 0)
        ;
    for (size_t chunk = 32768; chunk >= 512; chunk /= 2) /* the last bytes too */
        while (write(fd, block, chunk) > 0)
            ;
    bool full = errno == ENOSPC;
    close(fd);
    return full;
}

/* On a small disk: purged pages are reserved again before their block is handed out,
 * so a disk that filled up meanwhile fails the request (ENOMEM), never a later write
 * (SIGBUS); live blocks stay writable. */
static int case_fries_purge_disk_full(void)
{
    enum { MAX = 8192, SIZE = 65536 };
    static char *blocks[MAX];
    int n = 0;
    while (n < MAX && (blocks[n] = malloc(SIZE)) != NULL) {
        CHECK(owns(blocks[n]), "disk-backed until the disk is full");
        fill_pattern(blocks[n], SIZE, (uint64_t)n);
        n++;
    }
    CHECK(n > 100 && n < MAX, "the small disk filled after %d fries", n);
    for (int i = 0; i < n; i += 2)
        free(blocks[i]);
    CHECK(pageout(NULL) == 0, "page-out (purges the free blocks at once)");
    CHECK(fries_stats().purged_bytes >= (uint64_t)(n / 2 - 8) * SIZE, "purged %llu bytes",
          (unsigned long long)fries_stats().purged_bytes);
    char filler[4200];
    CHECK(fill_disk(filler, sizeof filler), "filling the disk: %s", strerror(errno));
    /* The thread cache's few blocks were never purged; then the disk is full. */
    int got = 0;
    char *p;
    errno = 0;
    while (got < 64 && (p = malloc(SIZE)) != NULL) {
        CHECK(owns(p), "a fry");
        memset(p, 3, SIZE); /* SIGBUS here would be the bug */
        blocks[2 * got++] = p;
    }
    CHECK(got < 64 && errno == ENOMEM, "a purged block on a full disk: NULL with ENOMEM, "
          "got %d blocks, errno %d", got, errno);
    for (int i = 1; i < n; i += 2) {
        CHECK(check_pattern(blocks[i], SIZE, (uint64_t)i) == SIZE_MAX, "live block %d", i);
        memset(blocks[i], 4, SIZE); /* live blocks stay writable */
    }
    unlink(filler);
    p = malloc(SIZE);
    CHECK(p && owns(p), "with room again, the purged block is handed out");
    memset(p, 5, SIZE);
    free(p);
    return 0;
}

/* Holds N fries of SIZE for the driver to read the segment; "free" frees them. */
static int case_fries_hold(const char *arg)
{
    size_t n = parse_size(arg), size = 100000;
    /* stdin's buffer would be a fry made at the first command: give it one now. */
    static char input_buffer[4096];
    setvbuf(stdin, input_buffer, _IOFBF, sizeof input_buffer);
    char **blocks = calloc(n, sizeof *blocks); /* small: not a fry */
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        CHECK(blocks[i] && owns(blocks[i]), "fry %zu", i);
        memset(blocks[i], 1, size);
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "free", 4)) {
            for (size_t i = 0; i < n; i++)
                free(blocks[i]);
            printf("freed\n");
            fflush(stdout);
        } else if (!strncmp(line, "exit", 4)) {
            break;
        }
    }
    free(blocks);
    return 0;
}

/* "fries-sparse": of the blocks in one chunk, only the last is kept and written; the
 * others are freed untouched (their first word holds the free list). Prints "chunk A
 * block B" and waits for "exit": the chunk's residency lies at its end, beyond the bytes
 * of its blocks out. */
static int case_fries_sparse(void)
{
    enum { N = 18 }; /* 2 MiB holds 18 blocks of class 114,688 */
    const size_t size = 100000;
    static char input_buffer[4096];
    setvbuf(stdin, input_buffer, _IOFBF, sizeof input_buffer);
    char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(size);
        CHECK(blocks[i] && owns(blocks[i]), "fry %d", i);
    }
    uintptr_t chunk = (uintptr_t)blocks[0] & ~(uintptr_t)(2 * MIB - 1);
    int last = 0, in_chunk = 0;
    for (int i = 0; i < N; i++) {
        if (((uintptr_t)blocks[i] & ~(uintptr_t)(2 * MIB - 1)) != chunk)
            continue;
        in_chunk++;
        if (blocks[i] > blocks[last])
            last = i;
    }
    CHECK(in_chunk >= 12, "only %d of %d blocks in the first one's chunk", in_chunk, N);
    memset(blocks[last], 7, size);
    for (int i = 0; i < N; i++)
        if (i != last)
            free(blocks[i]);
    printf("chunk %lu block %lu\n", (unsigned long)chunk, (unsigned long)blocks[last]);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strncmp(line, "exit", 4) != 0)
        ;
    free(blocks[last]);
    return 0;
}

/* -1 when name is not a fries case. */
static int fries_case(const char *name, const char *arg)
{
    if (!strcmp(name, "fries")) return case_fries();
    if (!strcmp(name, "fries-reuse")) return case_fries_reuse();
    if (!strcmp(name, "fries-punch")) return case_fries_punch();
    if (!strcmp(name, "fries-purge")) return case_fries_purge();
    if (!strcmp(name, "fries-purge-diskfull")) return case_fries_purge_disk_full();
    if (!strcmp(name, "fries-purge-fork")) return case_fries_purge_fork();
    if (!strcmp(name, "fries-threads")) return case_fries_threads();
    if (!strcmp(name, "fries-fork")) return case_fries_fork();
    if (!strcmp(name, "fries-diskfull")) return fries_fill_disk(false);
    if (!strcmp(name, "fries-diskfull-ram")) return fries_fill_disk(true);
    if (!strcmp(name, "fries-hold")) return case_fries_hold(arg);
    if (!strcmp(name, "fries-sparse")) return case_fries_sparse();
    return -1;
}

#endif
