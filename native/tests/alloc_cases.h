/* alloc_cases.h: workload cases for the allocator core's contracts (signals after a
 * fork, the reservation's alignment, glibc's other entry points, configuration),
 * included by workload.c after its helpers. "workload NAME [ARG]" exits 0 when the
 * case holds. */
#ifndef BIGMAAC_TEST_ALLOC_CASES_H
#define BIGMAAC_TEST_ALLOC_CASES_H

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ SIGSEGV after a fork */

/* A block frozen for a child that waits on go[0] (its end of the pipe closes when we
 * die, which lets it go). */
static char *frozen_block(size_t size, int go[2], pid_t *pid)
{
    char *p = malloc(size);
    if (!p || !owns(p) || pipe(go) != 0)
        return NULL;
    fill_pattern(p, size, 81);
    *pid = fork();
    if (*pid == 0) {
        char c;
        close(go[1]);
        bool ok = read(go[0], &c, 1) >= 0 && check_pattern(p, size, 81) == SIZE_MAX;
        _exit(ok ? 0 : 3);
    }
    close(go[0]);
    return *pid > 0 ? p : NULL;
}

/* "fork-raise": a SIGSEGV the program sends itself while memory is frozen is not a fault
 * of ours: with no handler of its own, it ends the program (the driver checks). */
static int case_fork_raise(void)
{
    int go[2];
    pid_t pid;
    char *p = frozen_block(40 * MIB, go, &pid);
    CHECK(p, "frozen block");
    p[0] = 1; /* a write to a frozen chunk still works */
    raise(SIGSEGV);
    fprintf(stderr, "raise(SIGSEGV) returned: the signal was swallowed\n");
    return 1;
}

static volatile sig_atomic_t raised, faulted, plain_raised;

static void program_handler(int sig, siginfo_t *info, void *context)
{
    (void)sig, (void)context;
    if (info->si_code <= 0)
        raised = info->si_code == SI_TKILL || info->si_code == SI_USER ? 1 : 2;
    else
        _exit(9); /* a fault reached the program: ours should have handled it */
    faulted += info->si_code > 0;
}

static void plain_handler(int sig)
{
    (void)sig;
    plain_raised = 1;
}

/* "fork-handler": a handler the program installs after the fork (sigaction or signal)
 * goes behind ours: writes to frozen chunks never reach it, the program's own raise
 * does, and it reads back as the program set it. */
static int case_fork_handler(void)
{
    int go[2];
    pid_t pid;
    size_t size = 40 * MIB;
    char *p = frozen_block(size, go, &pid);
    CHECK(p, "frozen block");
    struct sigaction act = {.sa_sigaction = program_handler, .sa_flags = SA_SIGINFO}, old, now;
    sigemptyset(&act.sa_mask);
    CHECK(sigaction(SIGSEGV, &act, &old) == 0, "sigaction");
    fill_pattern(p, size, 82); /* faults on frozen chunks: ours, not the program's */
    CHECK(check_pattern(p, size, 82) == SIZE_MAX, "parent's writes");
    CHECK(raise(SIGSEGV) == 0 && raised == 1, "the program's handler did not get its raise (%d)",
          (int)raised);
    CHECK(sigaction(SIGSEGV, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
              now.sa_sigaction == program_handler,
          "sigaction does not report the program's handler");
    CHECK(signal(SIGSEGV, plain_handler) != SIG_ERR, "signal");
    CHECK(raise(SIGSEGV) == 0 && plain_raised, "the signal() handler did not get its raise");
    CHECK(sigaction(SIGSEGV, &old, NULL) == 0, "restore");
    close(go[1]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child saw the parent's writes (status %d)", status);
    free(p);
    return 0;
}

/* ------------------------------------------------------------------ the reservation */

/* The mapping of /proc/self/maps that contains p: its start and file offset. */
static bool mapping_of(const void *p, uintptr_t *start, unsigned long long *offset, char *path,
                       size_t path_size)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        unsigned long long off;
        int name_at = 0;
        if (sscanf(line, "%lx-%lx %*s %llx %*s %*s %n", &lo, &hi, &off, &name_at) >= 3 &&
            (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            *start = lo;
            *offset = off;
            if (path) {
                snprintf(path, path_size, "%s", name_at ? line + name_at : "");
                path[strcspn(path, "\n")] = '\0';
            }
            found = true;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* "folio-offset": a big block's file offset is a multiple of 2 MiB, as its address is:
 * the reservation's base is folio aligned whatever size it has (run with SIZE_BIGMAAC
 * not a multiple of 2 MiB, which the kernel does not align by itself). */
static int case_folio_offset(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(40 * MIB);
        CHECK(p && owns(p), "big malloc");
        p[0] = 1;
        uintptr_t start;
        unsigned long long offset;
        CHECK(mapping_of(p, &start, &offset, NULL, 0), "no mapping holds %p", (void *)p);
        unsigned long long at = offset + ((uintptr_t)p - start);
        CHECK(((uintptr_t)p & (2 * MIB - 1)) == 0, "block %p not 2 MiB aligned", (void *)p);
        CHECK((at & (2 * MIB - 1)) == 0, "block %p sits at file offset %#llx: not a folio "
              "boundary", (void *)p, at);
    }
    return 0;
}

/* "colors": big blocks of equal size, alive together, start at different addresses
 * modulo 256 MiB (on 2 MiB boundaries still), so arrays streamed side by side do not
 * compete for the same TLB sets; the freed ones come back at the same address. */
static int case_colors(void)
{
    enum { BLOCKS = 6 };
    char *block[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        block[i] = malloc(256 * MIB);
        CHECK(block[i] && owns(block[i]), "big malloc %d", i);
        CHECK(((uintptr_t)block[i] & (2 * MIB - 1)) == 0, "block %p not 2 MiB aligned",
              (void *)block[i]);
        for (int j = 0; j < i; j++)
            CHECK(((uintptr_t)block[i] - (uintptr_t)block[j]) % (256 * MIB) != 0,
                  "blocks %d (%p) and %d (%p) are congruent modulo 256 MiB", j,
                  (void *)block[j], i, (void *)block[i]);
    }
    char *last = block[BLOCKS - 1];
    free(last);
    char *again = malloc(256 * MIB);
    CHECK(again == last, "a freed block is reused where it was (%p, not %p)", (void *)again,
          (void *)last);
    for (int i = 0; i < BLOCKS - 1; i++)
        free(block[i]);
    free(again);
    return 0;
}

/* "swap-dir DIR": a big block maps a file in DIR. */
static int case_swap_dir(const char *dir)
{
    char *p = malloc(40 * MIB);
    CHECK(p && owns(p), "big malloc");
    p[0] = 1;
    uintptr_t start;
    unsigned long long offset;
    char path[400];
    CHECK(mapping_of(p, &start, &offset, path, sizeof path), "no mapping holds %p", (void *)p);
    CHECK(!strncmp(path, dir, strlen(dir)) && path[strlen(dir)] == '/',
          "the block maps '%s', not a file in %s", path, dir);
    free(p);
    return 0;
}

/* "owned SIZE": a block of SIZE is ours (SIZE with a leading '-': is not). Nothing is
 * touched. */
static int case_owned(const char *arg)
{
    bool want = arg[0] != '-';
    size_t size = parse_size(want ? arg : arg + 1);
    if (arg[strlen(arg) - 1] == 'T')
        size = (size_t)atoll(want ? arg : arg + 1) << 40;
    char *p = malloc(size);
    CHECK(p, "malloc(%zu): %s", size, strerror(errno));
    CHECK(!!owns(p) == want, "a block of %zu bytes is %s", size, owns(p) ? "ours" : "not ours");
    free(p);
    return 0;
}

/* "fries-owned COUNT": of COUNT 100 kB fries, prints how many are ours. */
static int case_fries_owned(const char *arg)
{
    int count = atoi(arg), ours = 0;
    char **p = calloc((size_t)count, sizeof *p);
    CHECK(p, "table");
    for (int i = 0; i < count; i++) {
        p[i] = malloc(100 * 1000);
        CHECK(p[i], "fry %d", i);
        ours += !!owns(p[i]);
    }
    printf("%d of %d fries ours\n", ours, count);
    for (int i = 0; i < count; i++)
        free(p[i]);
    free(p);
    return 0;
}

/* ------------------------------------------------------------------ glibc's other names */

typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);

static void *find(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

/* "libc-names": free_sized and free_aligned_sized (C23) and glibc's __libc_* entry points,
 * called directly with our blocks and the next allocator's: each goes back to its owner,
 * the __libc_* allocations are the next allocator's. */
static int case_libc_names(void)
{
    free_sized_fn free_sized_p = (free_sized_fn)find("free_sized");
    free_aligned_sized_fn free_aligned_p = (free_aligned_sized_fn)find("free_aligned_sized");
    CHECK(free_sized_p && free_aligned_p, "free_sized / free_aligned_sized not exported");
    struct bigmaac_recycle_stats before, after;
    /* free_sized of ours gives the region back (to the cache: counted there). */
    recycle_stats(&before);
    char *big = malloc(40 * MIB), *small = malloc(100);
    CHECK(big && owns(big) && small && !owns(small), "blocks");
    free_sized_p(big, 40 * MIB);
    free_sized_p(small, 100);
    free_sized_p(NULL, 0);
    char *aligned = aligned_alloc(4 * MIB, 40 * MIB), *small_aligned = aligned_alloc(64, 128);
    CHECK(aligned && owns(aligned) && small_aligned, "aligned blocks");
    free_aligned_p(aligned, 4 * MIB, 40 * MIB);
    free_aligned_p(small_aligned, 64, 128);
    recycle_stats(&after);
    CHECK(after.cached >= before.cached + 2, "the big blocks were not freed (cached %llu -> %llu)",
          (unsigned long long)before.cached, (unsigned long long)after.cached);

    void *(*libc_malloc)(size_t) = (void *(*)(size_t))find("__libc_malloc");
    void *(*libc_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))find("__libc_calloc");
    void *(*libc_realloc)(void *, size_t) = (void *(*)(void *, size_t))find("__libc_realloc");
    void (*libc_free)(void *) = (void (*)(void *))find("__libc_free");
    void *(*libc_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))find("__libc_memalign");
    if (!libc_malloc || !libc_free || !libc_realloc || !libc_calloc || !libc_memalign) {
        printf("this libc has no __libc_* entry points\n");
        return 0;
    }
    /* Ours handed to them. */
    char *mine = malloc(40 * MIB);
    CHECK(mine && owns(mine), "big malloc");
    fill_pattern(mine, 40 * MIB, 91);
    mine = libc_realloc(mine, 80 * MIB);
    CHECK(mine && check_pattern(mine, 40 * MIB, 91) == SIZE_MAX, "__libc_realloc of ours");
    libc_free(mine);
    /* Theirs, big or small, from the next allocator, back through either name. */
    char *theirs = libc_malloc(40 * MIB), *zeros = libc_calloc(40, MIB);
    char *al = libc_memalign(4096, 40 * MIB);
    CHECK(theirs && zeros && al && !owns(theirs) && !owns(zeros) && !owns(al),
          "__libc_* allocations must be the next allocator's");
    CHECK(((uintptr_t)al & 4095) == 0, "__libc_memalign alignment");
    for (size_t i = 0; i < 40 * MIB; i += 4096)
        CHECK(zeros[i] == 0, "__libc_calloc not zero at %zu", i);
    fill_pattern(theirs, 40 * MIB, 92);
    theirs = realloc(theirs, 50 * MIB); /* ours realloc: moves to disk, frees theirs */
    CHECK(theirs && check_pattern(theirs, 40 * MIB, 92) == SIZE_MAX, "realloc of theirs");
    libc_free(theirs);
    free(zeros);
    libc_free(al);
    char *tiny = libc_malloc(10);
    tiny = libc_realloc(tiny, 20);
    CHECK(tiny && !owns(tiny), "small __libc_realloc");
    free(tiny);
    return 0;
}

/* "no-fallocate": the swap dir's filesystem has no fallocate: big blocks come from RAM,
 * work, and are counted. */
static int case_no_fallocate(void)
{
    int (*swap_stats)(struct bigmaac_swap_stats *) =
        (int (*)(struct bigmaac_swap_stats *))find("bigmaac_swap_stats");
    CHECK(swap_stats, "bigmaac_swap_stats not exported");
    char *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = malloc(40 * MIB);
        CHECK(p[i] && !owns(p[i]), "block %d: %s", i,
              p[i] ? "disk-backed without fallocate" : "NULL");
        fill_pattern(p[i], 40 * MIB, 100 + (uint64_t)i);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(check_pattern(p[i], 40 * MIB, 100 + (uint64_t)i) == SIZE_MAX, "block %d data", i);
        free(p[i]);
    }
    struct bigmaac_swap_stats st;
    CHECK(swap_stats(&st) == 0 && st.no_fallocate == 1 && st.no_fallocate_fallbacks >= 3,
          "no_fallocate %u, fall-backs %llu", st.no_fallocate,
          (unsigned long long)st.no_fallocate_fallbacks);
    return 0;
}

static int alloc_case(const char *name, const char *arg)
{
    if (!strcmp(name, "no-fallocate")) return case_no_fallocate();
    if (!strcmp(name, "fork-raise")) return case_fork_raise();
    if (!strcmp(name, "fork-handler")) return case_fork_handler();
    if (!strcmp(name, "folio-offset")) return case_folio_offset();
    if (!strcmp(name, "colors")) return case_colors();
    if (!strcmp(name, "swap-dir")) return case_swap_dir(arg);
    if (!strcmp(name, "owned")) return case_owned(arg);
    if (!strcmp(name, "fries-owned")) return case_fries_owned(arg);
    if (!strcmp(name, "libc-names")) return case_libc_names();
    return -1;
}

#endif
