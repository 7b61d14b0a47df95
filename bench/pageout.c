/* Page-out throughput against the disk's own sequential write bandwidth, both measured
   here so the ratio compares like with like. Each mode prints one JSON object.

     pageout disk DIR MIB    O_DIRECT sequential writes of MIB into a fallocated file in
                             DIR (as the swap file is), 4 MiB per write, 32 writes in
                             flight: what fio --direct=1 --rw=write --iodepth=32 measures
     pageout writeback DIR MIB   write MIB into a fallocated file through the page cache,
                             then time its write-back (sync_file_range, as the page-out
                             does): the most the disk takes from the page cache
     pageout run MIB         under LD_PRELOAD=libbigmaac.so: dirty MIB of disk-backed
                             memory, then time bigmaac_pageout() (write-back and drop)
     pageout run-churn MIB   the same while another thread allocates and frees 64 MiB:
                             the longest pair is how long the page-out kept the program
                             waiting (that thread competes for the cores: not for MB/s) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bigmaac.h"

#define BLOCK ((size_t)4 << 20)
#define DEPTH ((size_t)32)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t parse_mib(const char *text) { return (size_t)strtoull(text, NULL, 10) << 20; }

struct writer { int fd; size_t size, first; void *block; int ok; };

/* One of DEPTH writers: blocks first, first + DEPTH, ...: together they keep DEPTH
   writes in flight, as fio's iodepth does (the best of the depths tried here). */
static void *write_blocks(void *arg) {
  struct writer *w = arg;
  w->ok = 1;
  for (size_t at = w->first * BLOCK; at < w->size; at += DEPTH * BLOCK)
    if (pwrite(w->fd, w->block, BLOCK, (off_t)at) != (ssize_t)BLOCK) w->ok = 0;
  return NULL;
}

static int disk(const char *dir, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/pageout-bench-%d", dir, (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, 0600);
  if (fd < 0) { perror(path); return 1; }
  unlink(path); /* like the swap file: nothing left behind */
  void *block;
  if (posix_memalign(&block, 4096, BLOCK) || fallocate(fd, 0, 0, (off_t)size)) {
    perror("setup");
    return 1;
  }
  memset(block, 0x5a, BLOCK);
  pthread_t threads[DEPTH];
  struct writer writers[DEPTH];
  double t0 = now_s();
  for (size_t i = 0; i < DEPTH; i++) {
    writers[i] = (struct writer){fd, size, i, block, 0};
    pthread_create(&threads[i], NULL, write_blocks, &writers[i]);
  }
  int ok = 1;
  for (size_t i = 0; i < DEPTH; i++) {
    pthread_join(threads[i], NULL);
    ok &= writers[i].ok;
  }
  double seconds = now_s() - t0;
  close(fd);
  if (!ok) { fprintf(stderr, "pwrite failed\n"); return 1; }
  printf("{\"mode\":\"disk\",\"bytes\":%zu,\"seconds\":%.3f,\"mb_per_s\":%.1f}\n", size, seconds,
         (double)size / seconds / 1e6);
  return 0;
}

/* Dirty and under-write-back bytes of a file (cachestat, Linux 6.5+); -1 without it. */
static long long dirty_bytes(int fd) {
  struct { uint64_t off, len; } range = {0, 0};
  struct { uint64_t cache, dirty, writeback, evicted, recently_evicted; } stat;
  if (syscall(451 /* cachestat */, fd, &range, &stat, 0) != 0) return -1;
  return (long long)((stat.dirty + stat.writeback) * (uint64_t)sysconf(_SC_PAGESIZE));
}

/* The kernel's own write-back of SIZE dirty page cache of a fallocated file, timed from
   the flush: the ceiling of any page-out, which writes back the same way. Counts only
   what was still dirty when the clock started: on a busy machine the flusher may have
   written some of it while it was being written. */
static int writeback(const char *dir, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/pageout-bench-%d", dir, (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) { perror(path); return 1; }
  unlink(path);
  char *block = malloc(BLOCK);
  if (!block || fallocate(fd, 0, 0, (off_t)size)) { perror("setup"); return 1; }
  memset(block, 0x5a, BLOCK);
  for (size_t done = 0; done < size; done += BLOCK)
    if (pwrite(fd, block, BLOCK, (off_t)done) != (ssize_t)BLOCK) { perror("pwrite"); return 1; }
  long long dirty = dirty_bytes(fd);
  size_t bytes = dirty < 0 ? size : (size_t)dirty;
  double t0 = now_s();
  sync_file_range(fd, 0, (off_t)size,
                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  double seconds = now_s() - t0;
  posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_DONTNEED);
  close(fd);
  free(block);
  printf("{\"mode\":\"writeback\",\"bytes\":%zu,\"seconds\":%.3f,\"mb_per_s\":%.1f}\n", bytes,
         seconds, (double)bytes / seconds / 1e6);
  return 0;
}

/* Another thread of the program allocating and freeing 64 MiB (disk-backed) while the
   page-out runs: the longest a pair took is how long the page-out held the big-path
   lock against the program. */
struct churner { volatile int stop; double longest_s; size_t pairs; };

static void *churn(void *arg) {
  struct churner *c = arg;
  while (!c->stop) {
    double t0 = now_s();
    char *q = malloc((size_t)64 << 20);
    if (q) q[0] = 1;
    free(q);
    double took = now_s() - t0;
    if (took > c->longest_s) c->longest_s = took;
    c->pairs++;
  }
  return NULL;
}

static int run(size_t size, int with_churn) {
  int (*pageout)(struct bigmaac_pageout_result *) =
      (int (*)(struct bigmaac_pageout_result *))dlsym(RTLD_DEFAULT, "bigmaac_pageout");
  if (!pageout) { fprintf(stderr, "pageout: libbigmaac.so is not preloaded\n"); return 2; }
  unsigned char *p = malloc(size);
  if (!p) { fprintf(stderr, "malloc(%zu) failed\n", size); return 1; }
  for (size_t i = 0; i < size; i += 4096)
    memset(p + i, (int)(i >> 12) | 1, 4096); /* every page dirty, none all-zero */
  struct churner churner = {0, 0, 0};
  pthread_t thread;
  if (with_churn) pthread_create(&thread, NULL, churn, &churner);
  struct bigmaac_pageout_result r;
  int rc = pageout(&r);
  churner.stop = 1;
  if (with_churn) pthread_join(thread, NULL);
  if (rc) { fprintf(stderr, "bigmaac_pageout: %d\n", rc); return 1; }
  double seconds = (double)r.duration_ns * 1e-9;
  printf("{\"mode\":\"pageout\",\"bytes\":%llu,\"seconds\":%.3f,\"mb_per_s\":%.1f,"
         "\"resident_before\":%llu,\"resident_after\":%llu,\"alloc_stall_ms\":%.1f,"
         "\"alloc_pairs\":%zu}\n",
         (unsigned long long)r.bytes_written, seconds, (double)r.bytes_written / seconds / 1e6,
         (unsigned long long)r.resident_before, (unsigned long long)r.resident_after,
         churner.longest_s * 1e3, churner.pairs);
  free(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "disk")) return disk(argv[2], parse_mib(argv[3]));
  if (argc == 4 && !strcmp(argv[1], "writeback")) return writeback(argv[2], parse_mib(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "run")) return run(parse_mib(argv[2]), 0);
  if (argc == 3 && !strcmp(argv[1], "run-churn")) return run(parse_mib(argv[2]), 1);
  fprintf(stderr, "usage: pageout disk|writeback DIR MIB | pageout run|run-churn MIB\n");
  return 2;
}
