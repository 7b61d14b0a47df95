/* Allocation workloads, timed from inside the process so that start-up and
   preload costs do not blur the numbers. Each prints one JSON object.
   Run the same binary with and without LD_PRELOAD to get a ratio. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tells the compiler the block is used, so it cannot drop a malloc/memset/free
   sequence whose result nobody reads. */
static void keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* p50 latency of malloc+free of an untouched big block. */
static void big_alloc_free(size_t size, int rounds) {
  double *lat = malloc(sizeof(double) * (size_t)rounds);
  for (int i = 0; i < rounds; i++) {
    double t0 = now_s();
    void *p = malloc(size);
    if (p == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    keep(p);
    free(p);
    lat[i] = now_s() - t0;
  }
  qsort(lat, (size_t)rounds, sizeof(double), cmp_double);
  printf("{\"workload\":\"big_alloc_free\",\"size\":%zu,\"p50_us\":%.3f}\n",
         size, lat[rounds / 2] * 1e6);
  free(lat);
}

/* Throughput of the first write to every page of a fresh big block. Each round asks
   for a size 1/4 bigger than the last, so no round is served a block recycled from the
   round before (BigMaac reuses a freed region only for requests up to 1/8 smaller). */
static void first_touch(size_t size, int rounds) {
  double best = 0;
  for (int i = 0; i < rounds; i++, size += size / 4) {
    char *p = malloc(size);
    if (p == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    double t0 = now_s();
    memset(p, 1, size);
    keep(p);
    double mbps = (double)size / (now_s() - t0) / 1e6;
    if (mbps > best) best = mbps;
    free(p);
  }
  printf("{\"workload\":\"first_touch\",\"size\":%zu,\"mb_per_s\":%.1f}\n", size, best);
}

/* Milliseconds per GiB of growth: a block of `start` bytes whose first bytes hold data,
   doubled by realloc up to `end`. Only realloc is timed. */
/* Bytes realloc copied so far, from libbigmaac.so's counters; -1 without the preload. */
static long long realloc_copied(void) {
  struct { uint64_t in_place, moved, bytes_copied; } st;
  int (*stats)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "bigmaac_realloc_stats");
  return stats && stats(&st) == 0 ? (long long)st.bytes_copied : -1;
}

static void realloc_growth(size_t start, size_t end, int rounds) {
  double best = 1e30;
  long long copied_before = realloc_copied();
  for (int r = 0; r < rounds; r++) {
    char *p = malloc(start);
    if (p == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    memset(p, 7, start);
    double spent = 0;
    for (size_t size = start * 2; size <= end; size *= 2) {
      double t0 = now_s();
      char *q = realloc(p, size);
      spent += now_s() - t0;
      if (q == NULL) { fprintf(stderr, "realloc failed\n"); exit(1); }
      p = q;
    }
    if (p[start - 1] != 7) { fprintf(stderr, "realloc lost data\n"); exit(1); }
    free(p);
    double ms_per_gib = spent * 1e3 / ((double)(end - start) / (double)(1u << 30));
    if (ms_per_gib < best) best = ms_per_gib;
  }
  long long copied = copied_before < 0 ? -1 : realloc_copied() - copied_before;
  printf("{\"workload\":\"realloc_growth\",\"from\":%zu,\"to\":%zu,\"ms_per_gib\":%.4f,"
         "\"bytes_copied\":%lld}\n", start, end, best, copied);
}

/* Many small allocations of mixed sizes: the pass-through path's overhead. */
static void small_churn(long ops) {
  enum { SLOTS = 4096 };
  static void *slot[SLOTS];
  uint64_t x = 88172645463325252ull;
  double t0 = now_s();
  for (long i = 0; i < ops; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t k = x % SLOTS;
    free(slot[k]);
    slot[k] = malloc(16 + (x >> 32) % 1024);
    keep(slot[k]);
  }
  double dt = now_s() - t0;
  for (int k = 0; k < SLOTS; k++) free(slot[k]);
  printf("{\"workload\":\"small_churn\",\"ops\":%ld,\"ns_per_op\":%.2f}\n", ops, dt / (double)ops * 1e9);
}

/* ns per malloc/free pair of 4-260 KiB blocks, each written once per page: the fries
   tier when run with BIGMAAC_MIN_FRY_SIZE=4K (run.py sets it), glibc's mmap threshold
   region otherwise. */
static void fries_churn(long ops) {
  enum { SLOTS = 1024 };
  static char *slot[SLOTS];
  uint64_t x = 88172645463325252ull;
  double t0 = now_s();
  for (long i = 0; i < ops; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t k = x % SLOTS, size = 4096 + (x >> 32) % (256 * 1024);
    free(slot[k]);
    slot[k] = malloc(size);
    if (slot[k] == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    for (size_t at = 0; at < size; at += 4096) slot[k][at] = 1;
    keep(slot[k]);
  }
  double dt = now_s() - t0;
  for (int k = 0; k < SLOTS; k++) free(slot[k]);
  printf("{\"workload\":\"fries_churn\",\"ops\":%ld,\"ns_per_op\":%.2f}\n", ops, dt / (double)ops * 1e9);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s big_alloc_free|first_touch|small_churn [OPS]|fries_churn|realloc_growth\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "big_alloc_free") == 0) big_alloc_free((size_t)64 << 20, 201);
  else if (strcmp(argv[1], "first_touch") == 0) first_touch((size_t)256 << 20, 3);
  else if (strcmp(argv[1], "realloc_growth") == 0)
    realloc_growth((size_t)64 << 20, (size_t)8 << 30, 3);
  else if (strcmp(argv[1], "fries_churn") == 0) fries_churn(200 * 1000);
  else if (strcmp(argv[1], "small_churn") == 0)
    small_churn(argc > 2 ? atol(argv[2]) : 20 * 1000 * 1000); /* fewer under callgrind */
  else { fprintf(stderr, "unknown workload %s\n", argv[1]); return 2; }
  return 0;
}
