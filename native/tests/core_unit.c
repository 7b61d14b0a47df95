/* core_unit.c: the allocator core under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * A preloaded malloc cannot itself run under ASan (the runtime owns malloc and must be
 * first), so make test-asan compiles every library source into this program with
 * -fsanitize=address,undefined and the exported malloc family renamed (-Dmalloc=bmt_malloc
 * ...): calls to malloc here are the library's, its "next allocator" is ASan's, and every
 * access of the library to its own metadata (the region table, the recycle cache, the
 * chunk table, configuration, fries descriptors and caches), its stack and its globals
 * is checked. -DBM_TEST_HOOKS adds a hook at named points of the library so a test can
 * act there (fork from another thread). Each test prints PASS or FAIL; the last line is
 * "N passed, N failed". ASan or UBSan reports abort the run (halt_on_error).
 */
#include "harness.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"
#include "internal.h"

/* ------------------------------------------------------------------ configuration */

static int test_parse_size(void)
{
    struct { const char *text; bool ok; size_t value; } cases[] = {
        {"0", true, 0},          {"123", true, 123},           {"64K", true, 64 * BM_KIB},
        {"64k", true, 64 * BM_KIB}, {"64M", true, 64 * BM_MIB}, {"2G", true, 2 * BM_GIB},
        {"2g", true, 2 * BM_GIB}, {"1T", true, BM_TIB},        {"3t", true, 3 * BM_TIB},
        {"1GiB", true, BM_GIB},  {"1MB", true, BM_MIB},         {"10B", true, 10},
        {"", false, 0},          {"G", false, 0},              {"-1", false, 0},
        {"1X", false, 0},        {"1 G", false, 0},            {"1G1", false, 0},
        {"99999999999999999999", false, 0}, {"20000000T", false, 0},
        {"16777215T", true, (size_t)16777215 << 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t value = 12345;
        bool ok = bm_parse_size(cases[i].text, &value);
        CHECK(ok == cases[i].ok, "'%s' parsed %s", cases[i].text, ok ? "ok" : "as invalid");
        CHECK(!ok || value == cases[i].value, "'%s' is %zu, not %zu", cases[i].text, value,
              cases[i].value);
    }
    CHECK(!bm_parse_size(NULL, NULL), "NULL");
    return 0;
}

/* The process's very first fry (run first): the fries cache's pthread key must exist
 * before its first use, or the value of key 0 (somebody else's: ASan's here, Python's in
 * a kernel) is overwritten. */
static int test_first_fry_keys(void)
{
    CHECK(bm_config.min_fry && !bm_fry_chunks, "run first, with BIGMAAC_MIN_FRY_SIZE set");
    pthread_key_t mine;
    CHECK(pthread_key_create(&mine, NULL) == 0, "a key of our own");
    pthread_setspecific(mine, &mine);
    void *before[8];
    for (pthread_key_t k = 0; k < 8; k++)
        before[k] = pthread_getspecific(k);
    char *fry = malloc(bm_config.min_fry);
    CHECK(fry && bm_space_owns(fry), "a fry");
    for (pthread_key_t k = 0; k < 8; k++)
        CHECK(pthread_getspecific(k) == before[k] || (before[k] == NULL && k != mine),
              "pthread key %u: %p became %p", k, before[k], pthread_getspecific(k));
    CHECK(pthread_getspecific(mine) == &mine, "our key's value");
    free(fry);
    pthread_key_delete(mine);
    return 0;
}

/* ------------------------------------------------------------------ the reservation */

/* Run with SIZE_BIGMAAC=1048580K: not a multiple of 2 MiB, which the kernel does not
 * align by itself. */
static int test_reservation_aligned(void)
{
    void *p = malloc(BM_MIB);
    CHECK(p && bm_space_owns(p), "a big block (BIGMAAC_MIN_BIGMAAC_SIZE=256K)");
    CHECK(bm_space.base % BM_FOLIO_MAX == 0, "base %#lx not 2 MiB aligned",
          (unsigned long)bm_space.base);
    CHECK(bm_space.size % BM_FOLIO_MAX == 0 && bm_space.size == BM_GIB,
          "size %zu: SIZE_BIGMAAC rounded down to whole folios", bm_space.size);
    free(p);
    return 0;
}

static int test_placement(void)
{
    CHECK(bm_space_headroom(4096) == 0 && bm_space_headroom(8 * BM_MIB) == 0, "small: none");
    size_t h64 = bm_space_headroom(64 * BM_MIB);
    CHECK(h64 == (7 * 64 * BM_MIB < bm_space.size / 8 ? 7 * 64 * BM_MIB : bm_space.size / 8),
          "headroom of 64 MiB: %zu", h64);
    CHECK(bm_space_headroom(bm_space.size) == bm_space.size / 8, "capped at an eighth");
    char *a = malloc(64 * BM_MIB), *b = malloc(64 * BM_MIB);
    CHECK(a && b && bm_space_owns(a) && bm_space_owns(b), "two 64 MiB blocks");
    CHECK(b >= a + 64 * BM_MIB + h64 || b + 64 * BM_MIB + bm_space_headroom(64 * BM_MIB) <= a,
          "B at %+td MiB from A: inside A's headroom", (b - a) >> 20);
    /* Small ones are packed folio after folio (one mapping for all). */
    char *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = malloc(300 * 1024);
        CHECK(s[i] && bm_space_owns(s[i]), "small big block %d", i);
    }
    for (int i = 1; i < 4; i++)
        CHECK(s[i] - s[i - 1] == (ptrdiff_t)BM_FOLIO_MAX, "small blocks %d, %d are %td apart",
              i - 1, i, s[i] - s[i - 1]);
    for (int i = 0; i < 4; i++)
        free(s[i]);
    /* A grows to its headroom in place. */
    char *grown = realloc(a, 64 * BM_MIB + h64);
    CHECK(grown == a, "A did not grow in place");
    free(grown);
    free(b);
    return 0;
}

/* ------------------------------------------------------------------ the malloc family */

static int test_big_paths(void)
{
    size_t size = 3 * BM_MIB + 123;
    char *p = malloc(size);
    CHECK(p && bm_space_owns(p) && malloc_usable_size(p) >= size, "malloc");
    fill_pattern(p, size, 1);
    char *q = realloc(p, 9 * BM_MIB);
    CHECK(q && check_pattern(q, size, 1) == SIZE_MAX, "grow");
    q = realloc(q, 2 * BM_MIB);
    CHECK(q && check_pattern(q, 2 * BM_MIB, 1) == SIZE_MAX, "shrink");
    q = realloc(q, 1000); /* to the next allocator */
    CHECK(q && !bm_space_owns(q) && check_pattern(q, 1000 / 8 * 8, 1) == SIZE_MAX, "leave");
    q = realloc(q, 5 * BM_MIB); /* and back */
    CHECK(q && bm_space_owns(q) && check_pattern(q, 1000 / 8 * 8, 1) == SIZE_MAX, "come back");
    free(q);
    char *z = calloc(4, BM_MIB);
    CHECK(z && bm_space_owns(z), "calloc");
    for (size_t i = 0; i < 4 * BM_MIB; i += 4096)
        CHECK(z[i] == 0, "calloc byte %zu", i);
    free(z);
    void *m = NULL;
    CHECK(posix_memalign(&m, 8 * BM_MIB, 3 * BM_MIB) == 0 && ((uintptr_t)m & (8 * BM_MIB - 1)) == 0,
          "posix_memalign 8 MiB");
    free(m);
    m = aligned_alloc(4096, 2 * BM_MIB);
    CHECK(m && bm_space_owns(m), "aligned_alloc");
    free(m);
    errno = 0;
    size_t huge = SIZE_MAX / 2;
    __asm__("" : "+r"(huge)); /* not a constant: the call is made */
    CHECK(!calloc(huge, 4) && errno == ENOMEM, "calloc overflow");
    CHECK(!realloc(malloc(BM_MIB), 0), "realloc(p, 0) frees");
    for (int round = 0; round < 40; round++) { /* recycling: the cache's arrays */
        char *t = malloc((size_t)(1 + round % 7) * BM_MIB);
        CHECK(t, "round %d", round);
        t[0] = (char)round;
        free(t);
    }
    return 0;
}

static int test_fries(void)
{
    if (!bm_config.min_fry)
        return 0;
    enum { COUNT = 3000 };
    static char *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        size_t size = bm_config.min_fry + (size_t)(i * 977) % (200 * 1024);
        blocks[i] = malloc(size);
        CHECK(blocks[i] && malloc_usable_size(blocks[i]) >= size, "fry %d", i);
        memset(blocks[i], i & 0xff, size);
    }
    for (int i = 0; i < COUNT; i += 2) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    /* Purge the free ones (their pages punched, the chunks' bitmaps set), then take
     * them back: each reserved again before it is written. */
    bm_fry_purge(true);
    struct bigmaac_fries_stats st;
    CHECK(bigmaac_fries_stats(&st) == 0 && st.purged_bytes > 0, "purged");
    CHECK(bigmaac_fries_stats(NULL) == BIGMAAC_ERR_INVALID, "NULL is refused");
    for (int i = 0; i < COUNT; i += 2) {
        size_t size = bm_config.min_fry + (size_t)(i * 977) % (200 * 1024);
        blocks[i] = malloc(size);
        CHECK(blocks[i], "fry %d again", i);
        memset(blocks[i], i & 0xff, size);
    }
    CHECK(bigmaac_fries_stats(&st) == 0 && st.reserved_again > 0, "reserved again");
    for (int i = 0; i < COUNT; i++) {
        size_t size = bm_config.min_fry + (size_t)(i * 977) % (200 * 1024);
        CHECK((unsigned char)blocks[i][size - 1] == (i & 0xff), "fry %d kept its data", i);
        if (i % 2 == 0)
            free(blocks[i]);
    }
    for (int i = 1; i < COUNT; i += 2) {
        size_t size = bm_config.min_fry + (size_t)(i * 977) % (200 * 1024);
        blocks[i] = realloc(blocks[i], size * 2);
        CHECK(blocks[i], "realloc fry %d", i);
        free(blocks[i]);
    }
    return 0;
}

/* ------------------------------------------------------------------ fork */

static int test_fork_isolation(void)
{
    size_t size = 6 * BM_MIB;
    char *p = malloc(size);
    CHECK(p && bm_space_owns(p), "big malloc");
    fill_pattern(p, size, 7);
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char c;
        bool ok = read(go[0], &c, 1) == 1 && check_pattern(p, size, 7) == SIZE_MAX;
        fill_pattern(p, size, 8);
        _exit(ok ? 0 : 3);
    }
    fill_pattern(p, size, 9); /* copy on write, in ASan's process */
    CHECK(write(go[1], "x", 1) == 1, "go");
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child saw the parent's writes (status %d)", status);
    CHECK(check_pattern(p, size, 9) == SIZE_MAX, "the child's writes reached the parent");
    free(p);
    close(go[0]);
    close(go[1]);
    return 0;
}

/* realloc moves a block and releases its source chunk by chunk: the check that a chunk
 * is not frozen for a child and its punch must be one step for a fork on another thread
 * (else the child's snapshot is punched). The hook sits between the two: it lets a fork
 * start on another thread, waits, and looks whether the chunk got frozen meanwhile. */
static sem_t fork_now;
static int raced = -1;

static void *forker(void *unused)
{
    (void)unused;
    sem_wait(&fork_now);
    pid_t pid = fork(); /* blocks in the prepare handler while the release holds bm_lock */
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return NULL;
}

static void release_hook(const char *where, uintptr_t addr, size_t len)
{
    if (strcmp(where, "release-checked") != 0 || raced >= 0)
        return;
    sem_post(&fork_now);
    usleep(300 * 1000); /* time for the fork to freeze, if nothing holds it off */
    raced = bm_backing_frozen(addr, len);
}

static int test_release_vs_fork(void)
{
    pthread_mutex_lock(&bm_lock);
    bm_recycle_drain(); /* fresh places, first fit: b packed right after a */
    pthread_mutex_unlock(&bm_lock);
    char *a = malloc(4 * BM_MIB), *b = malloc(4 * BM_MIB);
    CHECK(a && b && bm_space_owns(a) && bm_space_owns(b), "two blocks");
    pthread_mutex_lock(&bm_lock);
    size_t room = bm_space_room_after(bm_space_lookup((uintptr_t)a));
    pthread_mutex_unlock(&bm_lock);
    CHECK(room < 8 * BM_MIB, "a has %zu bytes of room: it would grow in place", room);
    fill_pattern(a, 4 * BM_MIB, 11);
    sem_init(&fork_now, 0, 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, forker, NULL) == 0, "thread");
    bm_test_hook = release_hook;
    char *moved = realloc(a, 12 * BM_MIB);
    bm_test_hook = NULL;
    pthread_join(thread, NULL);
    CHECK(moved && moved != a && check_pattern(moved, 4 * BM_MIB, 11) == SIZE_MAX, "moved");
    CHECK(raced == 0, "a fork froze the chunk between the check and its punch (%d)", raced);
    free(moved);
    free(b);
    return 0;
}

/* ------------------------------------------------------------------ threads */

static int test_handoff(void)
{
    static struct handoff h;
    static struct handoff_worker workers[HANDOFF_MAX_THREADS];
    h.threads = 4;
    h.rounds = 60;
    h.min_big = bm_config.min_fry ? bm_config.min_fry : bm_config.min_big; /* ours from there */
    h.owns = bigmaac_owns;
    return handoff_run(&h, workers);
}

int main(int argc, char **argv)
{
    struct { const char *name; int (*run)(void); } tests[] = {
        {"the first fry leaves other pthread keys alone", test_first_fry_keys},
        {"sizes parse with K, M, G, T suffixes", test_parse_size},
        {"reservation base and size on 2 MiB boundaries", test_reservation_aligned},
        {"placement: headroom after big regions, small ones packed", test_placement},
        {"malloc family on the big path", test_big_paths},
        {"fries", test_fries},
        {"fork isolation", test_fork_isolation},
        {"a fork never freezes a chunk between its check and its punch", test_release_vs_fork},
        {"4 threads hand blocks over", test_handoff},
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(getenv("BIGMAAC_MIN_BIGMAAC_SIZE") && !strcmp(getenv("BIGMAAC_MIN_BIGMAAC_SIZE"), "256K"),
          "run through make test-asan (BIGMAAC_MIN_BIGMAAC_SIZE=256K)");
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        bool chosen = argc == 1;
        for (int a = 1; a < argc; a++)
            chosen |= strstr(tests[i].name, argv[a]) != NULL;
        if (!chosen)
            continue;
        int rc = tests[i].run();
        printf("%s  %s\n", rc == 0 ? "PASS" : "FAIL", tests[i].name);
        passed += rc == 0;
        failed += rc != 0;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
