/* fork_cases.h: workload cases for fork isolation (docs/fork.md), included by workload.c
 * after its helpers. "workload fork-..." exits 0 when the case holds. */
#ifndef BIGMAAC_TEST_FORK_CASES_H
#define BIGMAAC_TEST_FORK_CASES_H

#include <fcntl.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdbool.h>

extern char **environ;

static int (*fork_stats)(struct bigmaac_fork_stats *);

static bool child_ok(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static struct bigmaac_fork_stats fork_counters(void)
{
    struct bigmaac_fork_stats s;
    memset(&s, 0, sizeof s);
    if (!fork_stats) /* a case outside fork_case() */
        fork_stats = (int (*)(struct bigmaac_fork_stats *))dlsym(RTLD_DEFAULT, "bigmaac_fork_stats");
    fork_stats(&s);
    return s;
}

/* Once no child is left the control thread thaws and closes what it can (it wakes at
 * least every second); generous for a loaded machine. */
static bool wait_thawed(size_t max_files)
{
    for (int i = 0; i < 600; i++) {
        struct bigmaac_fork_stats s = fork_counters();
        if (s.frozen_chunks == 0 && s.backing_files <= max_files)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

/* Disk held by this process's unlinked files (its swap files): st_blocks of each. */
static uint64_t swap_disk_bytes(void)
{
    uint64_t bytes = 0;
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    struct stat st;
    while (dir && (e = readdir(dir)) != NULL)
        if (fstat(atoi(e->d_name), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0)
            bytes += (uint64_t)st.st_blocks * 512;
    if (dir)
        closedir(dir);
    return bytes;
}

/* Frozen ranges and copies' sources are given back once the children are gone. */
static bool wait_disk_at_most(uint64_t bytes)
{
    for (int i = 0; i < 600 && swap_disk_bytes() > bytes; i++)
        usleep(100 * 1000);
    return swap_disk_bytes() <= bytes;
}

/* Both directions, a free and a realloc while a child lives, then reclaim. */
static int case_fork_isolation(void)
{
    size_t a_size = 64 * MIB, b_size = 40 * MIB + 123, d_size = 34 * MIB;
    char *a = malloc(a_size), *b = malloc(b_size), *d = malloc(d_size), *e = malloc(32 * MIB);
    CHECK(a && b && d && e && owns(a) && owns(b) && owns(d) && owns(e), "big mallocs");
    fill_pattern(e, 32 * MIB, 20); /* never written after the fork: its file stays in use */
    fill_pattern(a, a_size, 11);
    fill_pattern(b, b_size, 12);
    fill_pattern(d, d_size, 18);
    int to_child[2], to_parent[2];
    CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bool ok = wait_byte(to_child[0]); /* the parent has written, freed, moved */
        ok = ok && check_pattern(a, a_size, 11) == SIZE_MAX;
        ok = ok && check_pattern(b, b_size, 12) == SIZE_MAX;
        ok = ok && check_pattern(d, d_size, 18) == SIZE_MAX;
        fill_pattern(a, a_size, 14);
        fill_pattern(b, b_size, 15);
        ok = send_byte(to_parent[1]) && ok;
        ok = wait_byte(to_child[0]) && ok;
        ok = ok && check_pattern(a, a_size, 14) == SIZE_MAX;
        _exit(ok ? 0 : 3);
    }
    fill_pattern(a, a_size, 13);
    free(b);
    unsigned char *c = calloc(b_size, 1); /* may reuse b's place: must read zeros */
    CHECK(c && owns(c), "big calloc after the fork");
    for (size_t i = 0; i < b_size; i += 512)
        CHECK(c[i] == 0, "calloc after freeing a frozen block: byte %zu is %d", i, c[i]);
    fill_pattern(c, b_size, 16);
    char *grown = realloc(d, 100 * MIB);
    CHECK(grown && check_pattern(grown, d_size, 18) == SIZE_MAX, "realloc of a frozen block");
    fill_pattern(grown, 100 * MIB, 19);
    CHECK(send_byte(to_child[1]) && wait_byte(to_parent[0]), "child died early");
    CHECK(check_pattern(a, a_size, 13) == SIZE_MAX, "the child's write reached the parent");
    CHECK(check_pattern(c, b_size, 16) == SIZE_MAX, "the child's write reached a new block");
    uint64_t frozen_disk = swap_disk_bytes();
    uint64_t live = a_size + 42 * MIB + 100 * MIB + 32 * MIB;
    CHECK(frozen_disk > live + 64 * MIB, "disk while frozen: %llu",
          (unsigned long long)frozen_disk);
    send_byte(to_child[1]);
    CHECK(child_ok(pid), "the child saw the parent's writes or free (see its checks)");
    struct bigmaac_fork_stats s = fork_counters();
    CHECK(s.frozen_forks == 1 && s.copied_chunks >= a_size / (2 * MIB) && s.ram_chunks == 0,
          "forks %llu, copied %llu, to RAM %llu", (unsigned long long)s.frozen_forks,
          (unsigned long long)s.copied_chunks, (unsigned long long)s.ram_chunks);
    CHECK(wait_thawed(2), "still frozen after the child exited");
    CHECK(wait_disk_at_most(live + 8 * MIB), "disk not given back: %llu for %llu live",
          (unsigned long long)swap_disk_bytes(), (unsigned long long)live);
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "page-out after the fork");
    CHECK(check_pattern(a, a_size, 13) == SIZE_MAX && check_pattern(c, b_size, 16) == SIZE_MAX &&
              check_pattern(grown, 100 * MIB, 19) == SIZE_MAX,
          "data after page-out");
    fill_pattern(a, a_size, 17);
    CHECK(check_pattern(a, a_size, 17) == SIZE_MAX, "writable after the thaw");
    CHECK(check_pattern(e, 32 * MIB, 20) == SIZE_MAX, "untouched block");
    free(a);
    free(c);
    free(grown);
    free(e);
    return 0;
}

/* The child execs: the parent's writes thaw its memory, copying nothing. */
static int case_fork_exec(void)
{
    size_t size = 64 * MIB;
    char *p = malloc(size);
    CHECK(p && owns(p), "big malloc");
    fill_pattern(p, size, 21);
    int gate[2], exec_seen[2];
    CHECK(pipe(gate) == 0 && pipe2(exec_seen, O_CLOEXEC) == 0, "pipes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(gate[0], 0);
        close(gate[1]);
        execl("/bin/sh", "sh", "-c", "read line; exit 0", (char *)NULL);
        _exit(127);
    }
    close(exec_seen[1]);
    close(gate[0]);
    char byte;
    CHECK(read(exec_seen[0], &byte, 1) == 0, "exec"); /* end of file: the child exec'd */
    fill_pattern(p, size, 22);
    CHECK(check_pattern(p, size, 22) == SIZE_MAX, "written after the exec");
    struct bigmaac_fork_stats s = fork_counters();
    close(gate[1]);
    CHECK(child_ok(pid), "the child");
    CHECK(s.frozen_forks == 1 && s.copied_chunks == 0, "forks %llu, copied %llu",
          (unsigned long long)s.frozen_forks, (unsigned long long)s.copied_chunks);
    free(p);
    return 0;
}

/* posix_spawn (vfork-like: no atfork handlers) freezes and copies nothing. */
static int case_fork_spawn(void)
{
    size_t size = 64 * MIB;
    char *p = malloc(size);
    CHECK(p && owns(p), "big malloc");
    fill_pattern(p, size, 41);
    pid_t pid;
    char *argv[] = {"/bin/true", NULL};
    CHECK(posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0, "posix_spawn");
    fill_pattern(p, size, 42);
    CHECK(child_ok(pid), "spawned child");
    struct bigmaac_fork_stats s = fork_counters();
    CHECK(s.frozen_forks == 0 && s.copied_chunks == 0 && s.frozen_chunks == 0,
          "forks %llu, copied %llu", (unsigned long long)s.frozen_forks,
          (unsigned long long)s.copied_chunks);
    CHECK(check_pattern(p, size, 42) == SIZE_MAX, "data");
    free(p);
    return 0;
}

/* A grandchild keeps its grandparent's snapshot, whoever writes after it exists. */
static int case_fork_nested(void)
{
    size_t size = 48 * MIB;
    char *a = malloc(size);
    CHECK(a && owns(a), "big malloc");
    fill_pattern(a, size, 31);
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char *own = malloc(size);
        if (!own || !owns(own))
            _exit(5);
        fill_pattern(own, size, 32);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            bool ok = send_byte(ready[1]) && wait_byte(go[0]);
            ok = ok && check_pattern(a, size, 31) == SIZE_MAX;
            ok = ok && check_pattern(own, size, 32) == SIZE_MAX;
            _exit(ok ? 0 : 6);
        }
        fill_pattern(own, size, 34); /* the child's own block, frozen for the grandchild */
        fill_pattern(a, size, 35);   /* its private copy of the parent's */
        bool ok = grandchild > 0 && child_ok(grandchild);
        struct bigmaac_pageout_result r; /* the child's own memory pages out too */
        ok = ok && pageout(&r) == 0 && r.bytes_total >= size;
        ok = ok && check_pattern(own, size, 34) == SIZE_MAX;
        ok = ok && check_pattern(a, size, 35) == SIZE_MAX;
        _exit(ok ? 0 : 7);
    }
    CHECK(wait_byte(ready[0]), "grandchild ready");
    fill_pattern(a, size, 33);
    CHECK(send_byte(go[1]), "go");
    CHECK(child_ok(pid), "child or grandchild saw someone else's writes");
    CHECK(check_pattern(a, size, 33) == SIZE_MAX, "parent's data");
    free(a);
    return 0;
}

/* Forks from one thread while another writes flat out: each child's view holds still,
 * and no write of the parent is lost while chunks are copied under it. */
struct fork_writer {
    uint64_t *words;
    size_t count;
    uint64_t writes;
    int stop;
};

static void *fork_writer_main(void *arg)
{
    struct fork_writer *w = arg;
    size_t stride = 4096 / 8 * 7 + 1;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
        for (size_t i = 0; i < w->count; i += stride) {
            w->words[i]++;
            w->writes++;
        }
    return NULL;
}

static uint64_t checksum(const uint64_t *words, size_t count)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++)
        sum = sum * 31 + words[i];
    return sum;
}

static int case_fork_threads(void)
{
    size_t size = 64 * MIB;
    struct fork_writer w = {.words = calloc(size, 1), .count = size / 8};
    CHECK(w.words && owns(w.words), "big calloc");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, fork_writer_main, &w) == 0, "writer thread");
    pid_t children[8];
    for (int k = 0; k < 8; k++) {
        usleep(20 * 1000);
        children[k] = fork();
        if (children[k] == 0) {
            uint64_t before = checksum(w.words, w.count);
            usleep(200 * 1000);
            _exit(checksum(w.words, w.count) == before ? 0 : 4);
        }
        CHECK(children[k] > 0, "fork %d", k);
    }
    int failed = 0;
    for (int k = 0; k < 8; k++)
        failed += !child_ok(children[k]);
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    CHECK(failed == 0, "%d of 8 children saw the parent's writes", failed);
    uint64_t total = 0;
    for (size_t i = 0; i < w.count; i++)
        total += w.words[i];
    CHECK(total == w.writes, "parent lost writes: %llu of %llu", (unsigned long long)total,
          (unsigned long long)w.writes);
    struct bigmaac_fork_stats s = fork_counters();
    CHECK(s.frozen_forks == 8 && s.copied_chunks > 0 && s.ram_chunks == 0,
          "forks %llu, copied %llu, to RAM %llu", (unsigned long long)s.frozen_forks,
          (unsigned long long)s.copied_chunks, (unsigned long long)s.ram_chunks);
    CHECK(wait_thawed(64), "still frozen after the children exited");
    free(w.words);
    return 0;
}

/* On a full disk the parent's copies go to RAM (counted): never SIGBUS, data intact. */
static int case_fork_diskfull(void)
{
    size_t size = 64 * MIB;
    char *a = malloc(size);
    CHECK(a && owns(a), "big malloc");
    fill_pattern(a, size, 51);
    char *fillers[16];
    int count = 0;
    while (count < 16 && (fillers[count] = malloc(32 * MIB)) != NULL && owns(fillers[count]))
        count++;
    CHECK(count < 16, "the small disk never filled up");
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(wait_byte(go[0]) && check_pattern(a, size, 51) == SIZE_MAX ? 0 : 3);
    fill_pattern(a, size, 52);
    CHECK(check_pattern(a, size, 52) == SIZE_MAX, "parent's writes");
    CHECK(send_byte(go[1]) && child_ok(pid), "the child saw the parent's writes");
    struct bigmaac_fork_stats s = fork_counters();
    CHECK(s.ram_chunks > 0 && s.copied_chunks >= size / (2 * MIB), "copied %llu, to RAM %llu",
          (unsigned long long)s.copied_chunks, (unsigned long long)s.ram_chunks);
    CHECK(wait_thawed(2), "still frozen after the child exited");
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0 && check_pattern(a, size, 52) == SIZE_MAX, "page-out keeps RAM copies");
    for (int i = 0; i < count; i++)
        free(fillers[i]);
    free(a);
    return 0;
}

/* Fries (run with BIGMAAC_MIN_FRY_SIZE set): the same isolation, both directions, and a
 * fry freed by the parent keeps its data in the child. */
static int case_fork_fries(void)
{
    enum { COUNT = 64 };
    size_t size = 100 * 1000;
    char *fries[COUNT];
    for (int i = 0; i < COUNT; i++) {
        fries[i] = malloc(size);
        CHECK(fries[i] && owns(fries[i]), "fry %d is not ours", i);
        fill_pattern(fries[i], size, 60 + (uint64_t)i);
    }
    int to_child[2], to_parent[2];
    CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bool ok = wait_byte(to_child[0]);
        for (int i = 0; i < COUNT; i++)
            ok = ok && check_pattern(fries[i], size, 60 + (uint64_t)i) == SIZE_MAX;
        for (int i = 0; i < COUNT; i += 2)
            fill_pattern(fries[i], size, 200 + (uint64_t)i);
        ok = send_byte(to_parent[1]) && ok;
        _exit(ok ? 0 : 3);
    }
    for (int i = 0; i < COUNT; i++) { /* odd ones freed and their room reused */
        if (i % 2) {
            free(fries[i]);
            fries[i] = malloc(size);
            CHECK(fries[i], "fry after the fork");
        }
        fill_pattern(fries[i], size, 100 + (uint64_t)i);
    }
    CHECK(send_byte(to_child[1]) && wait_byte(to_parent[0]), "child died early");
    CHECK(child_ok(pid), "the child saw the parent's writes or frees");
    for (int i = 0; i < COUNT; i++)
        CHECK(check_pattern(fries[i], size, 100 + (uint64_t)i) == SIZE_MAX,
              "the child's write reached the parent's fry %d", i);
    CHECK(fork_counters().copied_chunks > 0, "no chunk copied");
    for (int i = 0; i < COUNT; i++)
        free(fries[i]);
    return 0;
}

/* More live generations than backing files (64): copies then go to RAM and new big
 * blocks to the next allocator, each child still keeps its snapshot; once the children
 * are gone big blocks are disk-backed again. */
static int case_fork_many(void)
{
    enum { FORKS = 70, CHUNKS = 100 };
    size_t chunk = 2 * MIB, size = CHUNKS * chunk;
    uint64_t *a = malloc(size);
    CHECK(a && owns(a), "big malloc");
    for (size_t c = 0; c < CHUNKS; c++)
        a[c * chunk / 8] = a[(c + 1) * chunk / 8 - 1] = c;
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t children[FORKS];
    for (int k = 0; k < FORKS; k++) {
        children[k] = fork();
        if (children[k] == 0) {
            bool ok = wait_byte(go[0]);
            for (size_t c = 0; c < CHUNKS; c++) {
                uint64_t want = (int)c < k ? 1000 + c : c;
                ok = ok && a[c * chunk / 8] == want && a[(c + 1) * chunk / 8 - 1] == want;
            }
            _exit(ok ? 0 : 3);
        }
        CHECK(children[k] > 0, "fork %d", k);
        a[k * chunk / 8] = a[(k + 1) * chunk / 8 - 1] = 1000 + (uint64_t)k;
    }
    struct bigmaac_fork_stats s = fork_counters();
    char *during = malloc(40 * MIB);
    CHECK(during && !owns(during), "a big block while no file is free should be in RAM");
    free(during);
    for (int k = 0; k < FORKS; k++)
        send_byte(go[1]);
    int failed = 0;
    for (int k = 0; k < FORKS; k++)
        failed += !child_ok(children[k]);
    CHECK(failed == 0, "%d of %d children lost their snapshot", failed, FORKS);
    CHECK(s.ram_chunks > 0 && s.backing_files == 64, "to RAM %llu, files %llu",
          (unsigned long long)s.ram_chunks, (unsigned long long)s.backing_files);
    CHECK(wait_thawed(64), "still frozen after the children exited");
    char *after = malloc(40 * MIB);
    CHECK(after && owns(after), "big blocks are disk-backed again after the children");
    for (size_t c = 0; c < CHUNKS; c++)
        CHECK(a[c * chunk / 8] == (c < FORKS ? 1000 + c : c), "parent's chunk %zu", c);
    free(after);
    free(a);
    return 0;
}

/* A child that holds its snapshot until told, checks it, and exits 0 if intact. */
static pid_t fork_checking_child(int go_fd, const char *block, size_t size, uint64_t seed)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(wait_byte(go_fd) && check_pattern(block, size, seed) == SIZE_MAX ? 0 : 3);
    return pid;
}

/* After a fork (child alive), chunks stay on the older file until written: residency,
 * dirty bytes and page-out must count them there too. */
static int case_fork_residency(void)
{
    size_t a_size = 64 * MIB, b_size = 32 * MIB, all = a_size + b_size;
    char *a = malloc(a_size), *b = malloc(b_size);
    CHECK(a && b && owns(a) && owns(b), "big mallocs");
    fill_pattern(a, a_size, 41);
    fill_pattern(b, b_size, 42);
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t pid = fork_checking_child(go[0], a, a_size, 41);
    CHECK(pid > 0, "fork");
    fill_pattern(a, a_size / 2, 43); /* half of a moves to the new file, the rest stays */
    uint64_t res = 0, dirty = 0;
    CHECK(resident(&res, &dirty) == 0 && res >= all * 9 / 10,
          "resident %llu of %zu after the fork", (unsigned long long)res, all);
    CHECK(dirty > a_size / 2 + 16 * MIB, "dirty %llu: the older file's pages are missed",
          (unsigned long long)dirty);
    struct bigmaac_pageout_result r;
    CHECK(pageout(&r) == 0, "page-out while the child lives");
    CHECK(r.resident_before >= all * 9 / 10 && r.resident_after < all / 10,
          "page-out: resident %llu before, %llu after", (unsigned long long)r.resident_before,
          (unsigned long long)r.resident_after);
    CHECK(r.bytes_written > a_size / 2 + 16 * MIB,
          "page-out wrote %llu: data on the older file not counted",
          (unsigned long long)r.bytes_written);
    CHECK(send_byte(go[1]) && child_ok(pid), "the child lost its snapshot");
    CHECK(check_pattern(a, a_size / 2, 43) == SIZE_MAX &&
              check_pattern(b, b_size, 42) == SIZE_MAX,
          "data after the page-out");
    free(a);
    free(b);
    return 0;
}

/* System calls writing into frozen chunks succeed (syscalls.c); the child keeps its
 * snapshot. Each call writes into its own chunks of a block that existed at the fork. */
static int case_fork_read(void)
{
    size_t size = 64 * MIB, data_size = 8 * MIB;
    char *a = malloc(size), *data = malloc(data_size);
    CHECK(a && data && owns(a), "big mallocs");
    fill_pattern(a, size, 51);
    fill_pattern(data, data_size, 52);
    char path[] = "/var/tmp/bigmaac-fork-read-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, data, data_size) == (ssize_t)data_size, "data file");
    unlink(path);
    int sockets[2], go[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) == 0 && pipe(go) == 0, "socket, pipe");
    pid_t pid = fork_checking_child(go[0], a, size, 51);
    CHECK(pid > 0, "fork");

    CHECK(pread(fd, a + 123, data_size, 0) == (ssize_t)data_size, "pread: %s", strerror(errno));
    CHECK(memcmp(a + 123, data, data_size) == 0, "pread data");
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, a + 10 * MIB, data_size) == (ssize_t)data_size,
          "read: %s", strerror(errno));
    CHECK(memcmp(a + 10 * MIB, data, data_size) == 0, "read data");
    struct iovec iov[2] = {{a + 20 * MIB, MIB}, {a + 30 * MIB + 7, data_size - MIB}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && readv(fd, iov, 2) == (ssize_t)data_size, "readv: %s",
          strerror(errno));
    CHECK(memcmp(a + 20 * MIB, data, MIB) == 0 &&
              memcmp(a + 30 * MIB + 7, data + MIB, data_size - MIB) == 0,
          "readv data");
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek"); /* the stream shares the offset */
    FILE *stream = fdopen(dup(fd), "r");
    CHECK(stream && fread(a + 40 * MIB, 1, data_size, stream) == data_size, "fread: %s",
          strerror(errno));
    fclose(stream);
    CHECK(memcmp(a + 40 * MIB, data, data_size) == 0, "fread data");
    CHECK(write(sockets[0], data, 64 * 1024) == 64 * 1024 &&
              recv(sockets[1], a + 50 * MIB, 64 * 1024, MSG_WAITALL) == 64 * 1024,
          "recv: %s", strerror(errno));
    CHECK(memcmp(a + 50 * MIB, data, 64 * 1024) == 0, "recv data");
    CHECK(getrandom(a + 60 * MIB, 4096, 0) == 4096, "getrandom: %s", strerror(errno));

    CHECK(send_byte(go[1]) && child_ok(pid), "the child saw the parent's reads");
    CHECK(fork_counters().copied_chunks >= 6, "copied %llu chunks",
          (unsigned long long)fork_counters().copied_chunks);
    close(fd);
    free(a);
    free(data);
    return 0;
}

/* Dirty pages left on the older file at a fork count against the budget: the check
 * runs once more is reserved than the budget (b, never written), and must see a's. */
static int case_fork_dirty(void)
{
    char *a = malloc(64 * MIB);
    CHECK(a && owns(a), "big malloc");
    fill_pattern(a, 64 * MIB, 61);
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t pid = fork_checking_child(go[0], a, 64 * MIB, 61);
    CHECK(pid > 0, "fork");
    char *b = malloc(64 * MIB);
    CHECK(b && owns(b), "big malloc after the fork");
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strncmp(line, "exit", 4) != 0)
        ;
    CHECK(send_byte(go[1]) && child_ok(pid), "the child lost its snapshot");
    CHECK(check_pattern(a, 64 * MIB, 61) == SIZE_MAX, "data");
    free(b);
    free(a);
    return 0;
}

static int fork_case(const char *name)
{
    fork_stats = (int (*)(struct bigmaac_fork_stats *))dlsym(RTLD_DEFAULT, "bigmaac_fork_stats");
    if (!fork_stats) {
        fprintf(stderr, "workload: bigmaac_fork_stats missing\n");
        return 2;
    }
    if (!strcmp(name, "fork-isolation")) return case_fork_isolation();
    if (!strcmp(name, "fork-exec")) return case_fork_exec();
    if (!strcmp(name, "fork-spawn")) return case_fork_spawn();
    if (!strcmp(name, "fork-nested")) return case_fork_nested();
    if (!strcmp(name, "fork-threads")) return case_fork_threads();
    if (!strcmp(name, "fork-diskfull")) return case_fork_diskfull();
    if (!strcmp(name, "fork-fries")) return case_fork_fries();
    if (!strcmp(name, "fork-many")) return case_fork_many();
    if (!strcmp(name, "fork-residency")) return case_fork_residency();
    if (!strcmp(name, "fork-read")) return case_fork_read();
    if (!strcmp(name, "fork-dirty")) return case_fork_dirty();
    fprintf(stderr, "workload: unknown case '%s'\n", name);
    return 2;
}

#endif
