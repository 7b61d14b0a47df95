/* limits.c: the C tests' program for threads, limits, realloc and foreign allocators.
 *
 * Like workload.c it meets libbigmaac.so only through LD_PRELOAD and the functions of
 * bigmaac.h found with dlsym. "limits CASE [ARGS]" exits 0 when the case holds, 1 with
 * a reason on stderr, 3 when the machine cannot run it (reason on stdout).
 */
#include "handoff.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bigmaac.h"

enum { SKIPPED = 3 };

static const char *self;
static int (*owns)(const void *);
static int (*pageout)(struct bigmaac_pageout_result *);
static int (*realloc_stats)(struct bigmaac_realloc_stats *);
static int (*recycle_stats)(struct bigmaac_recycle_stats *);

static size_t parse_size(const char *text)
{
    char *end;
    size_t n = strtoull(text, &end, 10);
    switch (*end) {
    case 'K': return n << 10;
    case 'M': return n << 20;
    case 'G': return n << 30;
    default: return n;
    }
}

/* ------------------------------------------------------------------ threads */

static int stop_pageouts; /* 0 running, 1 stop, 2 failed */

static void *pageout_loop(void *unused)
{
    (void)unused;
    while (!__atomic_load_n(&stop_pageouts, __ATOMIC_RELAXED)) {
        struct bigmaac_pageout_result r;
        int rc = pageout(&r);
        if (rc != 0 && rc != BIGMAAC_ERR_BUSY)
            __atomic_store_n(&stop_pageouts, 2, __ATOMIC_RELAXED);
        usleep(20000);
    }
    return NULL;
}

/* "handoff THREADS ROUNDS": the hand-off stress of handoff.h, page-outs running. */
static int case_handoff(int argc, char **argv)
{
    static struct handoff h;
    static struct handoff_worker workers[HANDOFF_MAX_THREADS];
    const char *min_big = getenv("BIGMAAC_MIN_BIGMAAC_SIZE");
    CHECK(argc >= 4 && min_big, "usage: handoff THREADS ROUNDS with BIGMAAC_MIN_BIGMAAC_SIZE");
    h.threads = atoi(argv[2]);
    h.rounds = atoi(argv[3]);
    h.min_big = parse_size(min_big);
    h.owns = owns;
    CHECK(h.threads >= 2 && h.threads <= HANDOFF_MAX_THREADS, "2..%d threads", HANDOFF_MAX_THREADS);
    pthread_t pager;
    pthread_create(&pager, NULL, pageout_loop, NULL);
    int rc = handoff_run(&h, workers);
    int pager_failed = __atomic_exchange_n(&stop_pageouts, 1, __ATOMIC_RELAXED) == 2;
    pthread_join(pager, NULL);
    CHECK(!pager_failed, "page-out failed while threads allocated");
    return rc;
}

/* ------------------------------------------------------------------ limits */

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int lines = 0, c;
    while (f && (c = getc(f)) != EOF)
        lines += c == '\n';
    if (f)
        fclose(f);
    return f ? lines : -1;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* "maps COUNT SIZE": COUNT live big blocks cost neither a mapping nor a descriptor
 * each, and all keep their data. */
static int case_maps(int argc, char **argv)
{
    CHECK(argc >= 4, "usage: maps COUNT SIZE");
    int count = atoi(argv[2]);
    size_t size = parse_size(argv[3]);
    int max_maps = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    CHECK(f && fscanf(f, "%d", &max_maps) == 1, "read vm.max_map_count");
    fclose(f);
    uint64_t **blocks = calloc((size_t)count, sizeof *blocks);
    CHECK(blocks, "table");
    int maps_before = count_lines("/proc/self/maps"), fds_before = count_fds();
    for (int i = 0; i < count; i++) {
        blocks[i] = malloc(size);
        CHECK(blocks[i] && owns(blocks[i]), "block %d of %d: %s", i, count,
              blocks[i] ? "not disk-backed" : strerror(errno));
        blocks[i][0] = (uint64_t)i;
        blocks[i][size / 8 - 1] = ~(uint64_t)i;
    }
    int maps = count_lines("/proc/self/maps"), fds = count_fds();
    printf("%d blocks: maps %d -> %d (max %d), fds %d -> %d\n", count, maps_before, maps,
           max_maps, fds_before, fds);
    CHECK(maps < max_maps, "%d mappings reach vm.max_map_count %d", maps, max_maps);
    CHECK(maps - maps_before <= 16 + count / 64,
          "%d blocks added %d mappings: neighbours are not merged", count, maps - maps_before);
    CHECK(fds - fds_before <= 2, "%d blocks added %d descriptors", count, fds - fds_before);
    for (int i = 0; i < count; i++) {
        CHECK(blocks[i][0] == (uint64_t)i && blocks[i][size / 8 - 1] == ~(uint64_t)i,
              "block %d lost its data", i);
        free(blocks[i]);
    }
    /* Freeing every other block of a new batch splits the mappings, which must stay
     * valid and bounded: then the rest goes too. */
    for (int i = 0; i < count; i++)
        blocks[i] = malloc(size);
    for (int i = 0; i < count; i += 2)
        free(blocks[i]);
    int holes = count_lines("/proc/self/maps");
    CHECK(holes < max_maps, "%d mappings with every other block freed", holes);
    for (int i = 1; i < count; i += 2)
        free(blocks[i]);
    free(blocks);
    return 0;
}

/* ------------------------------------------------------------------ fork near the map limit */

static struct bigmaac_realloc_stats reallocs(void);

static int max_map_count(void)
{
    int max = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (!f || fscanf(f, "%d", &max) != 1)
        max = 0;
    if (f)
        fclose(f);
    return max;
}

static int (*fork_stats)(struct bigmaac_fork_stats *);

/* Mappings of the program's own: every other page of one range read-only, n of them. */
static bool own_mappings(int n)
{
    size_t pages = 2 * (size_t)n;
    char *mine = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mine == MAP_FAILED)
        return false;
    for (size_t k = 0; k < pages; k += 4)
        if (mprotect(mine + k * 4096, 4096, PROT_READ) != 0)
            return false;
    return true;
}

/* "maps-fork COUNT [OWN [fill]]": COUNT live 4 KiB big blocks (one 2 MiB chunk each),
 * after OWN mappings the program made itself, then a fork. With "fill" the parent then
 * maps its own until the map table is nearly full. The child writes every block, the
 * parent every other one (the pattern that splits its mappings the most); neither may
 * see the other's writes, and neither may exceed vm.max_map_count. Prints the fork
 * counters. */
static int case_maps_fork(int argc, char **argv)
{
    CHECK(argc >= 3, "usage: maps-fork COUNT [OWN [fill]]");
    int count = atoi(argv[2]), own = argc >= 4 ? atoi(argv[3]) : 0, max = max_map_count();
    bool fill = argc >= 5 && !strcmp(argv[4], "fill");
    CHECK(max > 0, "read vm.max_map_count");
    fork_stats = (int (*)(struct bigmaac_fork_stats *))dlsym(RTLD_DEFAULT, "bigmaac_fork_stats");
    CHECK(fork_stats, "bigmaac_fork_stats");
    CHECK(own <= 0 || own_mappings(own), "own mappings: %s", strerror(errno));
    int64_t **blocks = calloc((size_t)count, sizeof *blocks);
    CHECK(blocks, "table");
    for (int i = 0; i < count; i++) {
        blocks[i] = malloc(4096);
        CHECK(blocks[i] && owns(blocks[i]), "block %d of %d", i, count);
        blocks[i][0] = i;
        blocks[i][1] = 0;
    }
    int before = count_lines("/proc/self/maps");
    int to_child[2], to_parent[2];
    CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int maps = count_lines("/proc/self/maps");
        for (int i = 0; i < count; i++)
            blocks[i][1] = -1;
        bool ok = send_byte(to_parent[1]) && wait_byte(to_child[0]);
        int seen = 0;
        for (int i = 0; i < count; i++)
            seen += blocks[i][0] != i;
        int after = count_lines("/proc/self/maps");
        if (seen || maps >= max || after >= max)
            fprintf(stderr, "  child: maps %d then %d of %d, saw the parent's writes in %d "
                    "blocks\n", maps, after, max, seen);
        _exit(ok && !seen && maps < max && after < max ? 0 : 3);
    }
    CHECK(wait_byte(to_parent[0]), "the child died early");
    int filled = 0;
    if (fill) { /* leave the parent's copies 2,000 mappings, far fewer than they split into */
        filled = max - 2000 - count_lines("/proc/self/maps");
        CHECK(filled <= 0 || own_mappings(filled), "own mappings: %s", strerror(errno));
    }
    for (int i = 0; i < count; i += 2)
        blocks[i][0] = -7;
    int leaked = 0;
    for (int i = 0; i < count; i++)
        leaked += blocks[i][1] != 0;
    int maps = count_lines("/proc/self/maps");
    struct bigmaac_fork_stats st;
    memset(&st, 0, sizeof st);
    fork_stats(&st);
    CHECK(send_byte(to_child[1]), "the child died");
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "wait");
    printf("%d blocks, %d own, %d after the fork: maps %d before the fork, %d after the "
           "parent's writes (max %d); frozen %llu, copied %llu, snapshots %llu, unisolated "
           "%llu\n", count, own, filled > 0 ? filled : 0, before, maps, max, (unsigned long long)st.frozen_chunks, (unsigned long long)st.copied_chunks,
           (unsigned long long)st.snapshot_chunks, (unsigned long long)st.unisolated_chunks);
    CHECK(leaked == 0, "the parent sees the child's writes in %d of %d blocks", leaked, count);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw the parent's writes "
          "(status %d)", status);
    CHECK(maps <= max, "%d mappings of %d", maps, max); /* [vsyscall] is a line, no mapping */
    CHECK(st.unisolated_chunks == 0, "%llu chunks not isolated",
          (unsigned long long)st.unisolated_chunks);
    for (int i = 0; i < count; i++) {
        CHECK(blocks[i][0] == (i % 2 ? i : -7), "block %d lost the parent's data", i);
        free(blocks[i]);
    }
    free(blocks);
    return 0;
}

/* "realloc-neighbours": A and B of 64 MiB made one after the other, then A grown to
 * 8x: the neighbour left A room, nothing is copied. */
static int case_realloc_neighbours(void)
{
    struct bigmaac_realloc_stats before = reallocs();
    char *a = malloc(64 * MIB), *b = malloc(64 * MIB);
    CHECK(a && b && owns(a) && owns(b), "two 64 MiB blocks");
    fill_pattern(a, 64 * MIB, 71);
    fill_pattern(b, 64 * MIB, 72);
    char *start = a;
    for (size_t size = 128 * MIB; size <= 512 * MIB; size *= 2) {
        a = realloc(a, size);
        CHECK(a == start, "growing A to %zu MiB moved it (B at %+lld MiB from A)", size >> 20,
              (long long)(b - start) / (long long)MIB);
        CHECK(check_pattern(a, 64 * MIB, 71) == SIZE_MAX, "A's data at %zu MiB", size >> 20);
    }
    char *c = malloc(64 * MIB); /* placed after both, leaving them their room */
    CHECK(c && owns(c), "a third block");
    CHECK(c < a || c >= a + 512 * MIB, "C inside A");
    struct bigmaac_realloc_stats after = reallocs();
    printf("A %p B %p C %p: in place %llu, moved %llu, copied %llu bytes\n", (void *)a, (void *)b,
           (void *)c, (unsigned long long)(after.in_place - before.in_place),
           (unsigned long long)(after.moved - before.moved),
           (unsigned long long)(after.bytes_copied - before.bytes_copied));
    CHECK(after.bytes_copied == before.bytes_copied, "realloc copied %llu bytes",
          (unsigned long long)(after.bytes_copied - before.bytes_copied));
    CHECK(check_pattern(b, 64 * MIB, 72) == SIZE_MAX, "B's data");
    free(a);
    free(b);
    free(c);
    return 0;
}

/* ------------------------------------------------------------------ realloc */

static struct bigmaac_realloc_stats reallocs(void)
{
    struct bigmaac_realloc_stats st;
    memset(&st, 0, sizeof st);
    realloc_stats(&st);
    return st;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            kib = atol(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return kib;
}

/* A word every MARK_STRIDE from `from` to `to`, so each step's new part is checked
 * later while the block stays untouched (and out of RAM) almost everywhere. A write
 * fault may bring in a whole folio (up to 2 MiB) of page cache: the stride is wide. */
#define MARK_STRIDE (64 * MIB)

static void mark(uint64_t *w, size_t from, size_t to)
{
    for (size_t off = from; off < to; off += MARK_STRIDE)
        w[off / 8] = pattern_word(42, off);
}

static size_t first_bad_mark(const uint64_t *w, size_t to)
{
    for (size_t off = 64 * MIB; off < to; off += MARK_STRIDE)
        if (w[off / 8] != pattern_word(42, off))
            return off;
    return SIZE_MAX;
}

/* "realloc-grow MAX": 64 MiB doubled up to MAX, then halved back down, in place:
 * nothing copied, the data kept at every step, the block never resident. */
static int case_realloc_grow(int argc, char **argv)
{
    size_t max = parse_size(argc >= 3 ? argv[2] : "8G");
    struct bigmaac_realloc_stats before = reallocs();
    char *p = malloc(64 * MIB);
    CHECK(p && owns(p), "64 MiB");
    /* fallocate reserves every byte: the disk must hold the largest size. */
    struct statvfs disk;
    CHECK(statvfs(getenv("BIGMAAC_DIR"), &disk) == 0, "statvfs of BIGMAAC_DIR");
    unsigned long long free_bytes = (unsigned long long)disk.f_bavail * disk.f_frsize;
    if (free_bytes < max + max / 4) {
        printf("needs %zu MiB free in the swap dir, has %llu MiB\n", (max + max / 4) >> 20,
               free_bytes >> 20);
        free(p);
        return SKIPPED;
    }
    fill_pattern(p, 64 * MIB, 41);
    char *start = p;
    int steps = 0;
    for (size_t size = 128 * MIB; size <= max; size *= 2, steps++) {
        p = realloc(p, size);
        CHECK(p == start, "growing to %zu MiB moved the block (%s)", size >> 20,
              p ? "new address" : strerror(errno));
        CHECK(check_pattern(p, 64 * MIB, 41) == SIZE_MAX, "first 64 MiB lost at %zu MiB",
              size >> 20);
        CHECK(first_bad_mark((uint64_t *)p, size / 2) == SIZE_MAX, "marks lost at %zu MiB",
              size >> 20);
        mark((uint64_t *)p, size / 2, size);
    }
    long rss_kib = status_kib("VmRSS");
    for (size_t size = max / 2; size >= 64 * MIB; size /= 2, steps++) {
        p = realloc(p, size);
        CHECK(p == start, "shrinking to %zu MiB moved the block", size >> 20);
        CHECK(first_bad_mark((uint64_t *)p, size) == SIZE_MAX, "marks lost shrinking to %zu MiB",
              size >> 20);
    }
    CHECK(check_pattern(p, 64 * MIB, 41) == SIZE_MAX, "first 64 MiB lost shrinking");
    struct bigmaac_realloc_stats after = reallocs();
    printf("%d steps to %zu MiB: in place %llu, moved %llu, copied %llu bytes, rss %ld MiB\n",
           steps, max >> 20, (unsigned long long)(after.in_place - before.in_place),
           (unsigned long long)(after.moved - before.moved),
           (unsigned long long)(after.bytes_copied - before.bytes_copied), rss_kib >> 10);
    CHECK(after.in_place - before.in_place == (uint64_t)steps, "every step in place");
    CHECK(after.moved == before.moved && after.bytes_copied == before.bytes_copied,
          "realloc copied %llu bytes",
          (unsigned long long)(after.bytes_copied - before.bytes_copied));
    CHECK(rss_kib >= 0 && (size_t)rss_kib * 1024 < 64 * MIB + max / MARK_STRIDE * 2 * MIB + 128 * MIB,
          "%ld MiB resident after growing to %zu MiB: the block was touched", rss_kib >> 10,
          max >> 20);
    /* The counter does count: leaving the disk for the next allocator copies. */
    char *small = realloc(p, MIB);
    struct bigmaac_realloc_stats last = reallocs();
    CHECK(small && !owns(small) && last.moved == after.moved + 1 &&
              last.bytes_copied == after.bytes_copied + MIB,
          "64 MiB -> 1 MiB: moved %llu, copied %llu bytes",
          (unsigned long long)(last.moved - after.moved),
          (unsigned long long)(last.bytes_copied - after.bytes_copied));
    CHECK(check_pattern(small, MIB, 41) == SIZE_MAX, "data kept when moved");
    free(small);
    return 0;
}

/* ------------------------------------------------------------------ memory tight */

static long long io_field(const char *key)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long value = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
            value = atoll(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return value;
}

/* Bytes this process has had written to disk and not cancelled since (by a punch or
 * truncation before write-back), from /proc/self/io; -1 when unreadable. Taken before
 * and after, the difference is what reached the disk. */
static long long bytes_kept_written(void)
{
    long long written = io_field("write_bytes"), cancelled = io_field("cancelled_write_bytes");
    return written < 0 || cancelled < 0 ? -1 : written - cancelled;
}

/* A live block of size written in full, past the dirty budget the driver sets, then
 * time for a few of the budget's checks (every 20 ms) to start write-back. */
static char *write_past_budget(size_t size)
{
    char *live = malloc(size);
    if (!live || !owns(live))
        return NULL;
    memset(live, 2, size);
    __asm__ volatile("" : : "r"(live) : "memory"); /* the stores are not dead to gcc */
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    return live;
}

/* "temporaries COUNT SIZE": big temporaries of growing sizes (none fits the previous
 * one's region, so each freed one is cached), each written in full and freed. Prints
 * how much was written to disk beyond what punches cancelled: the dead data written
 * back. The driver runs it in a memory cgroup smaller than the cache's budget. */
static int case_temporaries(int argc, char **argv)
{
    CHECK(argc >= 4, "usage: temporaries COUNT SIZE");
    int count = atoi(argv[2]);
    size_t size = parse_size(argv[3]), touched = 0;
    long long kept = bytes_kept_written();
    CHECK(kept >= 0, "/proc/self/io is not readable");
    for (int i = 0; i < count; i++, size += size / 6) {
        char *p = malloc(size);
        CHECK(p && owns(p), "temporary %d of %zu MiB", i, size >> 20);
        memset(p, i + 1, size);
        __asm__ volatile("" : : "r"(p) : "memory"); /* the stores are not dead to gcc */
        touched += size;
        free(p);
    }
    struct bigmaac_recycle_stats st;
    recycle_stats(&st);
    /* Nothing is live: a page-out drops what the cache still holds, so every page
     * written and not written back is cancelled before we look. */
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "page-out");
    long long dead = bytes_kept_written() - kept;
    printf("touched %zu MiB, written and not cancelled %lld MiB, punched %llu (tight %llu)\n",
           touched >> 20, dead >> 20, (unsigned long long)st.punched,
           (unsigned long long)st.punched_tight);
    return 0;
}

/* "fries-temporaries": rounds of 128 MiB of fries, one size class each (64 to 256 KiB),
 * each written in full and freed but for the first block of each chunk, so no chunk
 * empties and the free blocks of a round are never reused by the next. Run with
 * BIGMAAC_MIN_FRY_SIZE set, in a memory cgroup smaller than what it touches. Prints
 * what was written to disk beyond the live blocks and what punches cancelled. */
static int case_fries_temporaries(void)
{
    enum { ROUND = 128 << 20, MAX_BLOCKS = ROUND / (64 << 10) };
    static const size_t sizes[] = {64 << 10, 80 << 10, 96 << 10, 112 << 10, 128 << 10,
                                   160 << 10, 192 << 10, 224 << 10, 256 << 10};
    static char *blocks[sizeof sizes / sizeof sizes[0]][MAX_BLOCKS];
    size_t touched = 0, live = 0;
    long long kept = bytes_kept_written();
    CHECK(kept >= 0, "/proc/self/io is not readable");
    for (size_t r = 0; r < sizeof sizes / sizeof sizes[0]; r++) {
        size_t n = ROUND / sizes[r];
        for (size_t i = 0; i < n; i++) {
            char *p = blocks[r][i] = malloc(sizes[r]);
            CHECK(p && owns(p), "fry %zu of %zu KiB", i, sizes[r] >> 10);
            memset(p, (int)(r + i), sizes[r]);
            __asm__ volatile("" : : "r"(p) : "memory");
        }
        touched += n * sizes[r];
        uintptr_t chunk = 0;
        for (size_t i = 0; i < n; i++) {
            uintptr_t at = (uintptr_t)blocks[r][i] & ~(uintptr_t)(2 * MIB - 1);
            if (at == chunk) {
                free(blocks[r][i]);
                blocks[r][i] = NULL;
            } else {
                chunk = at, live += sizes[r]; /* the first of its chunk stays */
            }
        }
    }
    /* A page-out writes the live blocks back and purges what is still free first. */
    struct bigmaac_pageout_result result;
    CHECK(pageout(&result) == 0, "page-out");
    long long dead = bytes_kept_written() - kept - (long long)live;
    printf("touched %zu MiB, live %zu MiB, written beyond live and not cancelled %lld MiB\n",
           touched >> 20, live >> 20, dead >> 20);
    for (size_t r = 0; r < sizeof sizes / sizeof sizes[0]; r++)
        for (size_t i = 0; i < MAX_BLOCKS; i++)
            free(blocks[r][i]);
    return 0;
}

/* "dead-writeback": a freed block kept with its data for reuse, then a live one written
 * past the dirty budget (BIGMAAC_DIRTY_BUDGET=64M and a 16M threshold from the driver), so the budget starts
 * write-back while the freed one is still in the cache. Prints the bytes dirtied and
 * not cancelled beyond the live block's: the freed data written back for nothing. */
static int case_dead_writeback(void)
{
    const size_t freed_size = 24 * MIB, live_size = 64 * MIB;
    long long kept = bytes_kept_written();
    CHECK(kept >= 0, "/proc/self/io is not readable");
    char *freed = malloc(freed_size);
    CHECK(freed && owns(freed), "freed block");
    memset(freed, 1, freed_size); /* under half the budget: no write-back yet */
    __asm__ volatile("" : : "r"(freed) : "memory");
    free(freed);
    struct bigmaac_recycle_stats st;
    recycle_stats(&st);
    CHECK(st.ready_bytes >= freed_size, "the freed block is kept with its data");
    /* Not a fit for the cached region: a fresh one, written past the budget. */
    char *live = write_past_budget(live_size);
    CHECK(live, "live block");
    recycle_stats(&st);
    int still_cached = st.ready_bytes >= freed_size;
    /* The page-out punches the cached block (cancelling what is still dirty there) and
     * writes the live one. */
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "page-out");
    long long dead = bytes_kept_written() - kept - (long long)live_size;
    printf("freed data written %lld KiB (cached throughout: %d)\n", dead >> 10, still_cached);
    free(live);
    return 0;
}

/* "fries-dead-writeback": 24 MiB of fries (12 chunks of 64 KiB blocks), written; every
 * block of six chunks freed (idle chunks) and every other block of the six others (free
 * blocks among live ones); then a big block written past the dirty budget (64M from
 * the driver, with BIGMAAC_MIN_FRY_SIZE), so that the budget starts write-back before
 * the purge's delay is up. Prints the bytes written and not cancelled beyond the live
 * data: the freed fries written back for nothing. */
static int case_fries_dead_writeback(void)
{
    enum { BLOCK = 64 << 10, PER_CHUNK = 32, CHUNKS = 12, N = PER_CHUNK * CHUNKS };
    const size_t live_size = 64 * MIB;
    static char *blocks[N];
    long long kept = bytes_kept_written();
    CHECK(kept >= 0, "/proc/self/io is not readable");
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(BLOCK);
        CHECK(blocks[i] && owns(blocks[i]), "fry %d", i);
        memset(blocks[i], 1, BLOCK);
        __asm__ volatile("" : : "r"(blocks[i]) : "memory");
    }
    /* Chunks are handed out whole, in order: a chunk's 32 blocks are consecutive. */
    size_t live_fries = 0;
    for (int i = 0; i < N; i++) {
        uintptr_t chunk = (uintptr_t)blocks[i] & ~(uintptr_t)(2 * MIB - 1);
        bool idle_half = chunk < ((uintptr_t)blocks[N / 2] & ~(uintptr_t)(2 * MIB - 1));
        if (idle_half || i % 2) {
            free(blocks[i]);
            blocks[i] = NULL;
        } else {
            live_fries += BLOCK;
        }
    }
    char *live = write_past_budget(live_size);
    CHECK(live, "live block");
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "page-out");
    long long dead = bytes_kept_written() - kept - (long long)live_size - (long long)live_fries;
    printf("freed fries written %lld KiB\n", dead >> 10);
    free(live);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    return 0;
}

/* ------------------------------------------------------------------ other code */

/* Blocks cross between the program and a library that sees another malloc first. */
static int exchange(void *(*lib_alloc)(size_t), void (*lib_free)(void *),
                    void *(*lib_realloc)(void *, size_t), const char *who)
{
    size_t sizes[] = {100, 200 * 1024, 40 * MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *mine = malloc(n), *theirs = lib_alloc(n);
        CHECK(mine && theirs, "%s: %zu bytes", who, n);
        fill_pattern(mine, n, 1);
        fill_pattern(theirs, n, 2);
        mine = lib_realloc(mine, 2 * n);
        theirs = realloc(theirs, 2 * n);
        CHECK(mine && theirs, "%s: realloc to %zu bytes", who, 2 * n);
        CHECK(check_pattern(mine, n, 1) == SIZE_MAX && check_pattern(theirs, n, 2) == SIZE_MAX,
              "%s: data lost in a realloc by the other side", who);
        lib_free(mine);
        free(theirs);
    }
    return 0;
}

static char *next_to_self(const char *name, char *buf, size_t size)
{
    const char *slash = strrchr(self, '/');
    snprintf(buf, size, "%.*s/%s", slash ? (int)(slash - self) : 1, slash ? self : ".", name);
    return buf;
}

/* "deepbind now|lazy": a library opened with RTLD_DEEPBIND binds malloc to libc's own, before
 * the preload; blocks still go back to the allocator that made them. */
static int case_deepbind(const char *binding)
{
    char path[600];
    int now = binding && !strcmp(binding, "lazy") ? RTLD_LAZY : RTLD_NOW;
    void *lib = dlopen(next_to_self("libdeepbind.so", path, sizeof path),
                       now | RTLD_LOCAL | RTLD_DEEPBIND);
    CHECK(lib, "dlopen: %s", dlerror());
    void *(*lib_alloc)(size_t) = (void *(*)(size_t))dlsym(lib, "deepbind_malloc");
    void (*lib_free)(void *) = (void (*)(void *))dlsym(lib, "deepbind_free");
    void *(*lib_realloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(lib, "deepbind_realloc");
    CHECK(lib_alloc && lib_free && lib_realloc, "symbols: %s", dlerror());
    int rc = exchange(lib_alloc, lib_free, lib_realloc, "RTLD_DEEPBIND library");
    dlclose(lib);
    return rc;
}

/* "mimalloc": libmimalloc opened at run time serves its own mi_* calls beside us. */
static int case_mimalloc(void)
{
    void *lib = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("libmimalloc.so.2 is not installed (make -C native other-allocators)\n");
        return SKIPPED;
    }
    void *(*mi_malloc)(size_t) = (void *(*)(size_t))dlsym(lib, "mi_malloc");
    void (*mi_free)(void *) = (void (*)(void *))dlsym(lib, "mi_free");
    void *(*mi_realloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(lib, "mi_realloc");
    CHECK(mi_malloc && mi_free && mi_realloc, "mimalloc symbols");
    for (int round = 0; round < 3; round++) {
        char *theirs = mi_malloc(40 * MIB), *mine = malloc(40 * MIB);
        CHECK(theirs && mine && !owns(theirs) && owns(mine), "one block each");
        fill_pattern(theirs, 40 * MIB, 3);
        fill_pattern(mine, 40 * MIB, 4);
        theirs = mi_realloc(theirs, 80 * MIB);
        mine = realloc(mine, 80 * MIB);
        CHECK(check_pattern(theirs, 40 * MIB, 3) == SIZE_MAX &&
                  check_pattern(mine, 40 * MIB, 4) == SIZE_MAX, "data kept");
        mi_free(theirs);
        free(mine);
    }
    return 0;
}

/* "plain": big and small blocks, for runs where another allocator comes first and
 * ours may never be asked. */
static int case_plain(void)
{
    for (size_t n = 64; n <= 128 * MIB; n *= 8) {
        char *p = malloc(n);
        CHECK(p, "%zu bytes", n);
        fill_pattern(p, n, n);
        p = realloc(p, 2 * n);
        CHECK(p && check_pattern(p, n, n) == SIZE_MAX, "realloc to %zu", 2 * n);
        free(p);
    }
    return 0;
}

int main(int argc, char **argv)
{
    owns = (int (*)(const void *))dlsym(RTLD_DEFAULT, "bigmaac_owns");
    pageout = (int (*)(struct bigmaac_pageout_result *))dlsym(RTLD_DEFAULT, "bigmaac_pageout");
    realloc_stats = (int (*)(struct bigmaac_realloc_stats *))dlsym(RTLD_DEFAULT,
                                                                 "bigmaac_realloc_stats");
    recycle_stats = (int (*)(struct bigmaac_recycle_stats *))dlsym(RTLD_DEFAULT,
                                                                 "bigmaac_recycle_stats");
    if (!owns || !pageout || !realloc_stats || !recycle_stats) {
        fprintf(stderr, "limits: libbigmaac.so is not preloaded\n");
        return 2;
    }
    self = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *name = argc > 1 ? argv[1] : "";
    if (!strcmp(name, "handoff")) return case_handoff(argc, argv);
    if (!strcmp(name, "maps")) return case_maps(argc, argv);
    if (!strcmp(name, "realloc-grow")) return case_realloc_grow(argc, argv);
    if (!strcmp(name, "realloc-neighbours")) return case_realloc_neighbours();
    if (!strcmp(name, "maps-fork")) return case_maps_fork(argc, argv);
    if (!strcmp(name, "temporaries")) return case_temporaries(argc, argv);
    if (!strcmp(name, "dead-writeback")) return case_dead_writeback();
    if (!strcmp(name, "fries-dead-writeback")) return case_fries_dead_writeback();
    if (!strcmp(name, "fries-temporaries")) return case_fries_temporaries();
    if (!strcmp(name, "deepbind")) return case_deepbind(argc > 2 ? argv[2] : "now");
    if (!strcmp(name, "mimalloc")) return case_mimalloc();
    if (!strcmp(name, "plain")) return case_plain();
    fprintf(stderr, "limits: unknown case '%s'\n", name);
    return 2;
}
