/* workload.c: a plain program the C tests run under LD_PRELOAD=libbigmaac.so.
 *
 * It knows the library only through the allocator calls every program makes and,
 * for checks, the public functions of bigmaac.h found with dlsym (absent without the
 * preload). "workload CASE [ARGS]" exits 0 when the case holds, 1 with a reason on
 * stderr otherwise. "hold" keeps memory alive and takes commands on stdin so the
 * driver can inspect it from outside.
 */
#include "harness.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bigmaac.h"

static char *self;
static int (*owns)(const void *);
static int (*pageout)(struct bigmaac_pageout_result *);
static int (*resident)(uint64_t *, uint64_t *);
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

static int page_aligned(const void *p)
{
    return ((uintptr_t)p & 4095) == 0;
}

/* ------------------------------------------------------------------ cases */

static int case_small(void)
{
    char *a = malloc(1000), *b = malloc(MIB), *c = calloc(100, 100);
    CHECK(a && b && c, "small allocations failed");
    CHECK(!owns(a) && !owns(b) && !owns(c), "small blocks must stay with the next allocator");
    memset(a, 1, 1000);
    memset(b, 2, MIB);
    a = realloc(a, 5000);
    CHECK(a && !owns(a) && a[999] == 1, "small realloc");
    CHECK(malloc_usable_size(b) >= MIB, "usable size of a small block");
    free(a);
    free(b);
    free(c);
    free(NULL);
    return 0;
}

static int case_big(void)
{
    size_t size = 64 * MIB + 123;
    char *p = malloc(size);
    CHECK(p && owns(p), "64 MiB + 123 must be disk-backed (p=%p)", (void *)p);
    CHECK(page_aligned(p), "big blocks are page aligned");
    CHECK(malloc_usable_size(p) >= size, "usable %zu < %zu", malloc_usable_size(p), size);
    fill_pattern(p, size, 1);
    CHECK(check_pattern(p, size, 1) == SIZE_MAX, "data read back");
    errno = 1234;
    free(p);
    CHECK(errno == 1234, "free must keep errno (got %d)", errno);
    char *q = malloc(32 * MIB);
    CHECK(q && owns(q), "exactly the threshold is disk-backed");
    char *r = malloc(32 * MIB - 1);
    CHECK(r && !owns(r), "one byte under the threshold is not");
    free(q);
    free(r);
    return 0;
}

static int case_calloc(void)
{
    volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler's own check */
    errno = 0;
    CHECK(calloc(huge, 4) == NULL && errno == ENOMEM, "calloc overflow: NULL, ENOMEM");
    /* Dirty a region and free it, so the next one may reuse its address and file range. */
    char *dirty = malloc(64 * MIB);
    CHECK(dirty && owns(dirty), "big malloc");
    memset(dirty, 0xAB, 64 * MIB);
    free(dirty);
    unsigned char *z = calloc(64 * MIB, 1);
    CHECK(z && owns(z), "calloc(64M, 1) is disk-backed");
    for (size_t i = 0; i < 64 * MIB; i++)
        CHECK(z[i] == 0, "calloc memory not zero at %zu", i);
    uint64_t *product = calloc(8 * MIB, 8);
    CHECK(product && owns(product), "calloc diverts by count * size");
    CHECK(product[8 * MIB - 1] == 0, "zero at the end");
    free(z);
    free(product);
    return 0;
}

static int case_realloc(void)
{
    char *p = malloc(MIB);
    CHECK(p && !owns(p), "start small");
    fill_pattern(p, MIB, 7);
    p = realloc(p, 40 * MIB);
    CHECK(p && owns(p), "small -> big crosses to disk");
    CHECK(check_pattern(p, MIB, 7) == SIZE_MAX, "data kept crossing up");
    fill_pattern(p, 40 * MIB, 8);
    char *grown = realloc(p, 100 * MIB);
    CHECK(grown && owns(grown), "big -> bigger");
    CHECK(check_pattern(grown, 40 * MIB, 8) == SIZE_MAX, "data kept growing");
    char *shrunk = realloc(grown, 50 * MIB);
    CHECK(shrunk == grown, "shrinking a big block stays in place");
    CHECK(check_pattern(shrunk, 40 * MIB, 8) == SIZE_MAX, "data kept shrinking");
    char *small = realloc(shrunk, 2 * MIB);
    CHECK(small && !owns(small), "big -> small leaves the disk");
    CHECK(check_pattern(small, 2 * MIB, 8) == SIZE_MAX, "data kept crossing down");
    CHECK(realloc(small, 0) == NULL, "realloc(p, 0) frees and returns NULL, as glibc");
    char *fresh = realloc(NULL, 40 * MIB);
    CHECK(fresh && owns(fresh), "realloc(NULL, big) is malloc");
    fill_pattern(fresh, 40 * MIB, 9);
    /* Grow with a neighbour in the way: must move, keeping the data. */
    char *neighbour = malloc(40 * MIB);
    char *moved = realloc(fresh, 400 * MIB);
    CHECK(moved && owns(moved), "big realloc past a neighbour");
    CHECK(check_pattern(moved, 40 * MIB, 9) == SIZE_MAX, "data kept when moved");
    /* Doubling 64 MiB to 2 GiB grows in place: same address, nothing copied. */
    char *doubling = malloc(64 * MIB);
    CHECK(doubling && owns(doubling), "64 MiB");
    fill_pattern(doubling, 64 * MIB, 10);
    uintptr_t start = (uintptr_t)doubling;
    for (size_t size = 128 * MIB; size <= 2048 * MIB; size *= 2) {
        doubling = realloc(doubling, size);
        CHECK((uintptr_t)doubling == start, "growing to %zu MiB moved the block", size >> 20);
    }
    CHECK(check_pattern(doubling, 64 * MIB, 10) == SIZE_MAX, "data kept growing in place");
    free(doubling);
    errno = 0;
    volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler's own check */
    CHECK(reallocarray(NULL, huge, 3) == NULL && errno == ENOMEM, "reallocarray overflow");
    char *arr = reallocarray(NULL, 5 * MIB, 8);
    CHECK(arr && owns(arr), "reallocarray diverts by the product");
    free(arr);
    free(neighbour);
    free(moved);
    return 0;
}

static int case_aligned(void)
{
    void *p = NULL;
    CHECK(posix_memalign(&p, 64, 40 * MIB) == 0 && owns(p) && page_aligned(p),
          "posix_memalign big");
    free(p);
    CHECK(posix_memalign(&p, 2 * MIB, 40 * MIB) == 0 && owns(p) && ((uintptr_t)p % (2 * MIB)) == 0,
          "alignment beyond a page: %p", p);
    memset(p, 1, 40 * MIB);
    free(p);
    CHECK(posix_memalign(&p, 3, 100) == EINVAL, "non-power-of-two alignment is EINVAL");
    CHECK(posix_memalign(&p, 256, 1000) == 0 && !owns(p) && (uintptr_t)p % 256 == 0,
          "small aligned");
    free(p);
    void *a = aligned_alloc(4096, 40 * MIB);
    CHECK(a && owns(a), "aligned_alloc big");
    free(a);
    a = aligned_alloc(64, 640);
    CHECK(a && !owns(a) && (uintptr_t)a % 64 == 0, "aligned_alloc small");
    free(a);
    a = memalign(1 << 22, 33 * MIB);
    CHECK(a && owns(a) && (uintptr_t)a % (1 << 22) == 0, "memalign 4 MiB alignment");
    free(a);
    a = valloc(33 * MIB);
    CHECK(a && owns(a) && page_aligned(a), "valloc");
    free(a);
    a = pvalloc(33 * MIB + 1);
    CHECK(a && owns(a) && malloc_usable_size(a) >= 33 * MIB + 4096, "pvalloc rounds to pages");
    free(a);
    a = valloc(100);
    CHECK(a && !owns(a) && page_aligned(a), "small valloc");
    free(a);
    return 0;
}

static int case_pageout(void)
{
    size_t size = 256 * MIB;
    char *p = malloc(size);
    CHECK(p && owns(p), "big malloc");
    fill_pattern(p, size, 42);
    uint64_t res = 0, dirty = 0;
    CHECK(resident(&res, &dirty) == 0 && res >= size * 9 / 10, "resident %llu after filling",
          (unsigned long long)res);
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "bigmaac_pageout");
    CHECK(r.bytes_total >= size, "total %llu", (unsigned long long)r.bytes_total);
    CHECK(r.bytes_written >= size * 9 / 10, "written %llu", (unsigned long long)r.bytes_written);
    CHECK(r.resident_before >= size * 9 / 10, "before %llu", (unsigned long long)r.resident_before);
    CHECK(r.resident_after <= r.resident_before / 50, "after %llu of %llu",
          (unsigned long long)r.resident_after, (unsigned long long)r.resident_before);
    CHECK(check_pattern(p, size, 42) == SIZE_MAX, "data intact after page-out");
    fill_pattern(p, size, 43); /* and writable again */
    CHECK(check_pattern(p, size, 43) == SIZE_MAX, "data rewritten after page-out");
    free(p);
    return 0;
}

/* A child's writes never reach the parent; a child's free never hurts the parent. */
static int case_fork(void)
{
    size_t size = 64 * MIB;
    char *p = malloc(size);
    CHECK(p && owns(p), "big malloc");
    fill_pattern(p, size, 5);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = check_pattern(p, size, 5) == SIZE_MAX;
        fill_pattern(p, size, 6);
        ok = ok && check_pattern(p, size, 6) == SIZE_MAX;
        free(p);
        char *own = malloc(size); /* the child's own disk-backed block */
        ok = ok && own && owns(own);
        if (own)
            fill_pattern(own, size, 7);
        ok = ok && own && check_pattern(own, size, 7) == SIZE_MAX;
        _exit(ok ? 0 : 3);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child saw wrong data (status %d)", status);
    CHECK(check_pattern(p, size, 5) == SIZE_MAX, "child's writes or free reached the parent");
    free(p);
    return 0;
}

struct worker { int id; int failed; };
static volatile int stop_pageouts;

static void *alloc_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 6 && !w->failed; i++) {
        size_t size = (33 + (size_t)((w->id * 7 + i) % 16)) * MIB;
        char *p = malloc(size);
        if (!p || !owns(p)) {
            w->failed = 1;
            break;
        }
        fill_pattern(p, size, (uint64_t)w->id << 32 | (uint64_t)i);
        char *q = realloc(p, size + 24 * MIB);
        if (!q || check_pattern(q, size, (uint64_t)w->id << 32 | (uint64_t)i) != SIZE_MAX)
            w->failed = 1;
        free(q ? q : p);
    }
    return NULL;
}

static void *pageout_worker(void *arg)
{
    (void)arg;
    while (!stop_pageouts) {
        struct bigmaac_pageout_result r;
        int rc = pageout(&r);
        if (rc != 0 && rc != BIGMAAC_ERR_BUSY)
            stop_pageouts = 2;
        usleep(20000);
    }
    return NULL;
}

static int case_threads(void)
{
    enum { N = 4 };
    pthread_t threads[N], pager;
    struct worker workers[N];
    pthread_create(&pager, NULL, pageout_worker, NULL);
    for (int i = 0; i < N; i++) {
        workers[i] = (struct worker){.id = i};
        pthread_create(&threads[i], NULL, alloc_worker, &workers[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    int pager_failed = stop_pageouts == 2;
    stop_pageouts = 1;
    pthread_join(pager, NULL);
    for (int i = 0; i < N; i++)
        CHECK(!workers[i].failed, "worker %d saw wrong data or a failed allocation", i);
    CHECK(!pager_failed, "page-out failed while threads allocated");
    return 0;
}

/* The process's swap file: the one open regular file of BIGMAAC_DIR, or -1. */
static int swap_file_fd(void)
{
    const char *dir = getenv("BIGMAAC_DIR");
    DIR *fds = opendir("/proc/self/fd");
    int fd = -1;
    struct dirent *e;
    while (dir && fds && (e = readdir(fds)) != NULL) {
        char link[300], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        struct stat st;
        if (!strncmp(target, dir, strlen(dir)) && target[strlen(dir)] == '/' &&
            stat(link, &st) == 0 && S_ISREG(st.st_mode))
            fd = atoi(e->d_name);
    }
    if (fds)
        closedir(fds);
    return fd;
}

/* Bytes of disk the swap file holds. */
static long long swap_file_bytes(void)
{
    struct stat st;
    int fd = swap_file_fd();
    return fd >= 0 && fstat(fd, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

/* Offset of the first byte of data (not a hole) in the swap file, for messages. */
static long long first_data(void)
{
    int fd = swap_file_fd();
    return fd >= 0 ? (long long)lseek(fd, 0, SEEK_DATA) : -1;
}

static struct bigmaac_recycle_stats recycled(void)
{
    struct bigmaac_recycle_stats st;
    memset(&st, 0, sizeof st);
    recycle_stats(&st);
    return st;
}

/* Freed big regions come back for the next request of their size; calloc still reads
 * zeros; a loop of alloc+free does not grow the swap file; and the data of freed
 * regions leaves the disk: at once with BIGMAAC_RECYCLE_BYTES=0, else within seconds. */
static int case_recycle(void)
{
    const char *budget = getenv("BIGMAAC_RECYCLE_BYTES");
    int punch_at_free = budget && !strcmp(budget, "0");
    char *p = malloc(64 * MIB);
    CHECK(p && owns(p), "big malloc");
    fill_pattern(p, 64 * MIB, 21);
    uint64_t reused = recycled().reused;
    uintptr_t was = (uintptr_t)p; /* compared as a number: p itself is freed */
    free(p);
    CHECK(recycled().cached_count == 1, "a freed region is cached");
    if (punch_at_free)
        CHECK(swap_file_bytes() == 0, "punched at free: swap file holds %lld", swap_file_bytes());
    char *q = malloc(64 * MIB);
    CHECK((uintptr_t)q == was, "the same size reuses the freed region (%p, was %#lx)",
          (void *)q, (unsigned long)was);
    CHECK(recycled().reused == reused + 1, "reuse counted");
    CHECK(malloc_usable_size(q) >= 64 * MIB, "usable size");
    memset(q, 0x5A, 64 * MIB);
    free(q);
    unsigned char *z = calloc(60 * MIB, 1); /* fits the 64 MiB region */
    CHECK((uintptr_t)z == was && recycled().reused == reused + 2, "calloc reuses it too");
    for (size_t i = 0; i < 60 * MIB; i++)
        CHECK(z[i] == 0, "recycled calloc memory not zero at %zu", i);
    free(z);
    /* A page-out means memory is wanted: freed data kept for reuse goes first. */
    CHECK(punch_at_free || recycled().ready_bytes >= 64 * MIB, "freed data kept for reuse");
    struct bigmaac_pageout_result result;
    CHECK(pageout(&result) == 0, "page-out");
    CHECK(recycled().ready_bytes == 0 && swap_file_bytes() == 0,
          "after a page-out: %llu bytes kept, swap file %lld",
          (unsigned long long)recycled().ready_bytes, swap_file_bytes());
    long long first = -1;
    for (int i = 0; i < 40; i++) {
        char *t = malloc(64 * MIB);
        CHECK(t && owns(t), "loop malloc %d", i);
        memset(t, i, 64 * MIB);
        if (i == 0)
            first = swap_file_bytes();
        free(t);
    }
    long long after = swap_file_bytes();
    CHECK(first >= (long long)(64 * MIB) && after <= first,
          "swap file %lld bytes after one round, %lld after 40", first, after);
    /* Mixed sizes: disk stays under the budget kept for reuse plus what is live. */
    long long most = 0;
    for (int i = 0; i < 60; i++) {
        size_t size = (size_t)(33 + (i * 37) % 300) * MIB;
        char *t = malloc(size);
        CHECK(t && owns(t), "mixed malloc %d", i);
        memset(t, 1, size);
        long long now = swap_file_bytes();
        most = now > most ? now : most;
        free(t);
    }
    long long limit = punch_at_free ? (long long)(340 * MIB) : (long long)(1024 + 340) * (long long)MIB;
    CHECK(most <= limit, "swap file reached %lld bytes (limit %lld)", most, limit);
    CHECK(recycled().cached_count <= 16, "cache bounded by count: %llu",
          (unsigned long long)recycled().cached_count);
    /* The control thread drops kept data after a delay; allow ten seconds. */
    for (int i = 0; i < 100 && (recycled().ready_bytes || swap_file_bytes() != 0); i++)
        usleep(100 * 1000);
    CHECK(recycled().ready_bytes == 0 && swap_file_bytes() == 0,
          "freed data still on disk: %lld bytes (first data at %lld), %llu ready",
          swap_file_bytes(), first_data(), (unsigned long long)recycled().ready_bytes);
    return 0;
}

/* Fill the swap disk: a failed allocation, never a SIGBUS, even writing into what we hold. */
static int case_diskfull(void)
{
    enum { MAX = 64 };
    char *blocks[MAX];
    int n = 0;
    errno = 0;
    while (n < MAX && (blocks[n] = malloc(40 * MIB)) != NULL) {
        CHECK(owns(blocks[n]), "disk-backed until the disk is full");
        n++;
    }
    CHECK(n > 0 && n < MAX, "the small disk filled after %d blocks", n);
    CHECK(errno == ENOMEM, "a full disk is ENOMEM (errno %d)", errno);
    for (int i = 0; i < n; i++)
        fill_pattern(blocks[i], 40 * MIB, (uint64_t)i);
    for (int i = 0; i < n; i++)
        CHECK(check_pattern(blocks[i], 40 * MIB, (uint64_t)i) == SIZE_MAX, "block %d", i);
    free(blocks[--n]);
    char *again = malloc(40 * MIB);
    CHECK(again && owns(again), "space freed is usable again");
    free(again);
    while (n > 0)
        free(blocks[--n]);
    return 0;
}

/* Allocate and free as fast as possible for argv seconds (threshold 64K set by the
 * driver), so the control thread republishes all the time. */
static void *churn_worker(void *arg)
{
    time_t end = time(NULL) + *(int *)arg;
    void *live[64] = {0};
    unsigned seed = (unsigned)(uintptr_t)&live;
    while (time(NULL) < end) {
        int slot = rand_r(&seed) % 64;
        free(live[slot]);
        live[slot] = malloc((size_t)(64 + rand_r(&seed) % 960) << 10);
    }
    for (int i = 0; i < 64; i++)
        free(live[i]);
    return NULL;
}

static int case_churn(const char *arg)
{
    int seconds = atoi(arg);
    pthread_t a, b;
    printf("ready\n");
    fflush(stdout);
    pthread_create(&a, NULL, churn_worker, &seconds);
    pthread_create(&b, NULL, churn_worker, &seconds);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}

/* "child-hold SIZE": the parent holds SIZE, forks, and waits; the child allocates and
 * fills SIZE of its own, says "child PID", then obeys "verify" (both blocks, as the
 * child sees them) and "exit". */
static int case_child_hold(const char *arg)
{
    size_t size = parse_size(arg);
    char *inherited = malloc(size);
    CHECK(inherited && owns(inherited), "parent's block");
    fill_pattern(inherited, size, 1);
    fflush(stdout);
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child > 0) {
        int status;
        waitpid(child, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    char *own = malloc(size);
    if (!own || !owns(own))
        _exit(1);
    fill_pattern(own, size, 2);
    printf("child %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strncmp(line, "exit", 4) != 0) {
        if (!strncmp(line, "verify", 6))
            printf(check_pattern(own, size, 2) == SIZE_MAX &&
                           check_pattern(inherited, size, 1) == SIZE_MAX
                       ? "intact\n"
                       : "corrupt\n");
        fflush(stdout);
    }
    _exit(0);
}

/* "try N" / "try-fries N": N requests of 64 MiB / 100,000 bytes, kept if they succeed;
 * "tried K" (K succeeded, on disk or not), then wait for "exit". */
static int case_try(const char *arg, size_t size)
{
    int count = atoi(arg), got = 0;
    for (int i = 0; i < count; i++) {
        char *p = malloc(size);
        if (p) {
            memset(p, i, size);
            got++;
        }
    }
    printf("tried %d\n", got);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strncmp(line, "exit", 4) != 0)
        ;
    return 0;
}

/* "loop N": N pairs of malloc(64 MiB), one byte written, free; then "done PID". After the
 * first, each is a reuse of the recycled region. */
static int case_loop(const char *arg)
{
    int count = atoi(arg);
    for (int i = 0; i < count; i++) {
        char *p = malloc(64 * MIB);
        CHECK(p && owns(p), "iteration %d", i);
        __asm__ volatile("" : : "r"(p) : "memory");
        p[0] = 1;
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    printf("done %d\n", (int)getpid());
    return 0;
}

/* BIGMAAC_ON_DISK_FULL=ram: past a full disk, big requests are served from RAM. */
static int case_diskfull_ram(void)
{
    enum { N = 8 };
    char *blocks[N];
    int on_disk = 0;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(40 * MIB);
        CHECK(blocks[i], "allocation %d failed although RAM fall-back is on", i);
        on_disk += owns(blocks[i]);
        fill_pattern(blocks[i], 40 * MIB, (uint64_t)i);
    }
    CHECK(on_disk > 0 && on_disk < N, "%d of %d on disk", on_disk, N);
    for (int i = 0; i < N; i++) {
        CHECK(check_pattern(blocks[i], 40 * MIB, (uint64_t)i) == SIZE_MAX, "block %d", i);
        free(blocks[i]);
    }
    return 0;
}

/* With BIGMAAC_MIN_BIGMAAC_SIZE set by the driver: argv size is disk-backed, half not. */
static int case_threshold(const char *arg)
{
    size_t size = parse_size(arg);
    void *big = malloc(size), *under = malloc(size / 2);
    CHECK(big && owns(big), "%zu bytes must be disk-backed", size);
    CHECK(under && !owns(under), "%zu bytes must not be", size / 2);
    free(big);
    free(under);
    return 0;
}

/* After exec: no big allocation; wait for stdin to close. */
static int case_idle(void)
{
    char line[64];
    printf("idle\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) && strncmp(line, "exit", 4) != 0)
        ;
    return 0;
}

/* Allocate, fill, say "ready", then obey stdin: "verify", "many N SIZE", "grow" (realloc
 * to twice the size), "free", "exec", "exit". */
static int case_hold(const char *arg)
{
    size_t size = parse_size(arg);
    char *p = malloc(size);
    CHECK(p && owns(p), "big malloc of %zu", size);
    fill_pattern(p, size, 99);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "verify", 6) == 0) {
            printf(check_pattern(p, size, 99) == SIZE_MAX ? "intact\n" : "corrupt\n");
        } else if (strncmp(line, "many", 4) == 0) {
            int count = atoi(line + 5);
            size_t each = parse_size(strchr(line + 5, ' ') + 1);
            for (int i = 0; i < count; i++) {
                char *q = malloc(each);
                if (!q || !owns(q))
                    return 1;
                memset(q, i, each);
            }
            printf("done\n");
        } else if (strncmp(line, "grow", 4) == 0) {
            p = realloc(p, 2 * size);
            if (!p || !owns(p) || check_pattern(p, size, 99) != SIZE_MAX)
                return 1;
            size *= 2;
            fill_pattern(p, size, 99);
            printf("grown\n");
        } else if (strncmp(line, "free", 4) == 0) {
            free(p);
            p = malloc(4096); /* keep "verify" meaningful: a small block, not ours */
            size = 4096;
            fill_pattern(p, size, 99);
            printf("freed\n");
        } else if (strncmp(line, "exec", 4) == 0) {
            char *again[] = {self, "idle", NULL};
            execv(self, again);
            return 1;
        } else if (strncmp(line, "exit", 4) == 0) {
            break;
        }
        fflush(stdout);
    }
    return 0;
}

/* ------------------------------------------------------------------ fork isolation */

#include "fork_cases.h"
#include "fries_cases.h"
#include "alloc_cases.h"

int main(int argc, char **argv)
{
    owns = (int (*)(const void *))dlsym(RTLD_DEFAULT, "bigmaac_owns");
    pageout = (int (*)(struct bigmaac_pageout_result *))dlsym(RTLD_DEFAULT, "bigmaac_pageout");
    resident = (int (*)(uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "bigmaac_resident");
    recycle_stats = (int (*)(struct bigmaac_recycle_stats *))dlsym(RTLD_DEFAULT,
                                                                 "bigmaac_recycle_stats");
    if (!owns || !pageout || !resident || !recycle_stats) {
        fprintf(stderr, "workload: libbigmaac.so is not preloaded\n");
        return 2;
    }
    self = argv[0];
    const char *name = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "64M";
    if (!strcmp(name, "small")) return case_small();
    if (!strcmp(name, "big")) return case_big();
    if (!strcmp(name, "calloc")) return case_calloc();
    if (!strcmp(name, "realloc")) return case_realloc();
    if (!strcmp(name, "aligned")) return case_aligned();
    if (!strcmp(name, "pageout")) return case_pageout();
    if (!strcmp(name, "fork")) return case_fork();
    int core = alloc_case(name, arg);
    if (core >= 0) return core;
    if (!strncmp(name, "fork-", 5)) return fork_case(name);
    if (!strcmp(name, "threads")) return case_threads();
    if (!strcmp(name, "recycle")) return case_recycle();
    if (!strcmp(name, "diskfull")) return case_diskfull();
    if (!strcmp(name, "diskfull-ram")) return case_diskfull_ram();
    if (!strcmp(name, "threshold")) return case_threshold(arg);
    if (!strcmp(name, "hold")) return case_hold(arg);
    if (!strcmp(name, "idle")) return case_idle();
    if (!strcmp(name, "churn")) return case_churn(arg);
    if (!strcmp(name, "loop")) return case_loop(arg);
    if (!strcmp(name, "try")) return case_try(arg, 64 * MIB);
    if (!strcmp(name, "try-fries")) return case_try(arg, 100000);
    if (!strcmp(name, "child-hold")) return case_child_hold(arg);
    int fries = fries_case(name, arg);
    if (fries >= 0) return fries;
    fprintf(stderr, "workload: unknown case '%s'\n", name);
    return 2;
}
