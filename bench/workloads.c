/* Allocation workloads, timed from inside the process so that start-up and
   preload costs do not blur the numbers. Each prints one JSON object.
   Run the same binary with and without LD_PRELOAD to get a ratio. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Bytes realloc copied so far, from libbigmaac.so's counters; -1 without the preload. */
static long long realloc_copied(void) {
  struct { uint64_t in_place, moved, bytes_copied; } st;
  int (*stats)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "bigmaac_realloc_stats");
  return stats && stats(&st) == 0 ? (long long)st.bytes_copied : -1;
}

/* Milliseconds per GiB to reserve disk for the same extensions with raw fallocate(2)
   on a file in `dir`: the floor a disk-backed realloc that promises no SIGBUS pays.
   The range is punched afterwards, as a freed region is. */
static double fallocate_growth(const char *dir, size_t start, size_t end) {
  int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) { perror("fallocate_growth: open"); exit(1); }
  off_t base = (off_t)1 << 36, at = base + (off_t)start;
  double spent = 0;
  for (size_t size = start * 2; size <= end; size *= 2) {
    double t0 = now_s();
    if (fallocate(fd, 0, at, (off_t)(size / 2)) != 0) { perror("fallocate"); exit(1); }
    spent += now_s() - t0;
    at += (off_t)(size / 2);
  }
  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, base, at - base);
  close(fd);
  return spent * 1e3 / ((double)(end - start) / (double)(1u << 30));
}

/* Milliseconds per GiB of growth: a block of `start` bytes whose first bytes hold data,
   doubled by realloc up to `end`. Only realloc is timed. Each round also times raw
   fallocate of the same extensions on the same disk (BENCH_DISK_DIR), right after,
   so both see the disk in the same state; the best round of each is reported. */
static void realloc_growth(size_t start, size_t end, int rounds) {
  const char *dir = getenv("BENCH_DISK_DIR");
  double best = 1e30, best_raw = 1e30;
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
    double raw = fallocate_growth(dir ? dir : "/var/tmp", start, end);
    if (raw < best_raw) best_raw = raw;
  }
  long long copied = copied_before < 0 ? -1 : realloc_copied() - copied_before;
  printf("{\"workload\":\"realloc_growth\",\"from\":%zu,\"to\":%zu,\"ms_per_gib\":%.4f,"
         "\"fallocate_ms_per_gib\":%.4f,\"bytes_copied\":%lld}\n", start, end, best, best_raw,
         copied);
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

/* A malloc-heavy program doing real work: index the words of a generated text, as a
   compiler's symbol table or a log indexer would. Every new word costs a node and a copy
   of its text, every occurrence may grow the word's position list (realloc), each line is
   read into a fresh buffer, and the table itself grows by rehashing. Then the index is
   sorted by frequency and freed. `rounds` texts of 200,000 words each. */
struct word { struct word *next; char *text; unsigned *pos; unsigned count, cap, hash; };

static unsigned hash_text(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int by_count(const void *a, const void *b) {
  const struct word *x = *(struct word *const *)a, *y = *(struct word *const *)b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return strcmp(x->text, y->text);
}

static struct word **grow_table(struct word **table, size_t *buckets) {
  size_t n = *buckets * 2;
  struct word **bigger = calloc(n, sizeof *bigger);
  if (bigger == NULL) { fprintf(stderr, "calloc failed\n"); exit(1); }
  for (size_t i = 0; i < *buckets; i++)
    for (struct word *w = table[i], *next; w; w = next) {
      next = w->next;
      w->next = bigger[w->hash & (n - 1)];
      bigger[w->hash & (n - 1)] = w;
    }
  free(table);
  *buckets = n;
  return bigger;
}

static uint64_t index_text(uint64_t *x, long words) {
  static const char *syllables[] = {"ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an",
                                    "el", "is", "or", "um", "be", "da", "fu"};
  size_t buckets = 64, distinct = 0;
  struct word **table = calloc(buckets, sizeof *table);
  char *line = NULL;
  size_t line_len = 0;
  for (long i = 0; i < words; i++) {
    if (i % 12 == 0) { /* a new line of about 12 words, read into its own buffer */
      free(line);
      line = malloc(96 + (size_t)(*x % 64));
      line_len = 0;
    }
    *x ^= *x << 13; *x ^= *x >> 7; *x ^= *x << 17;
    char text[32];
    size_t len = 0;
    /* Frequent words are short: 1-4 syllables, skewed to few. */
    unsigned parts = 1 + (unsigned)((*x >> 8) % 4) * (unsigned)((*x >> 12) % 2);
    for (unsigned k = 0; k < parts; k++) {
      const char *s = syllables[(*x >> (16 + 4 * k)) % (parts > 2 ? 16 : 6)];
      text[len++] = s[0];
      text[len++] = s[1];
    }
    text[len] = 0;
    memcpy(line + line_len % 64, text, len);
    line_len += len;
    unsigned h = hash_text(text);
    struct word *w = table[h & (buckets - 1)];
    while (w && (w->hash != h || strcmp(w->text, text) != 0)) w = w->next;
    if (w == NULL) {
      w = malloc(sizeof *w);
      w->text = malloc(len + 1);
      memcpy(w->text, text, len + 1);
      w->pos = NULL;
      w->count = w->cap = 0;
      w->hash = h;
      w->next = table[h & (buckets - 1)];
      table[h & (buckets - 1)] = w;
      if (++distinct > buckets) table = grow_table(table, &buckets);
    }
    if (w->count == w->cap) {
      w->cap = w->cap ? w->cap * 2 : 4;
      w->pos = realloc(w->pos, w->cap * sizeof *w->pos);
    }
    w->pos[w->count++] = (unsigned)i;
  }
  free(line);
  struct word **all = malloc(distinct * sizeof *all);
  size_t n = 0;
  for (size_t i = 0; i < buckets; i++)
    for (struct word *w = table[i]; w; w = w->next) all[n++] = w;
  qsort(all, n, sizeof *all, by_count);
  uint64_t sum = n;
  for (size_t i = 0; i < n; i++) {
    if (i < 100) sum = sum * 31 + all[i]->count + all[i]->pos[all[i]->count - 1];
    free(all[i]->pos);
    free(all[i]->text);
    free(all[i]);
  }
  free(all);
  free(table);
  return sum;
}

static void word_index(long rounds) {
  uint64_t x = 88172645463325252ull, sum = 0;
  double t0 = now_s();
  for (long r = 0; r < rounds; r++) sum ^= index_text(&x, 200 * 1000);
  double dt = now_s() - t0;
  printf("{\"workload\":\"word_index\",\"rounds\":%ld,\"seconds\":%.4f,\"checksum\":%llu}\n",
         rounds, dt, (unsigned long long)sum);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s big_alloc_free|first_touch|small_churn [OPS]|word_index [ROUNDS]|fries_churn|realloc_growth\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "big_alloc_free") == 0) big_alloc_free((size_t)64 << 20, 201);
  else if (strcmp(argv[1], "first_touch") == 0) first_touch((size_t)256 << 20, 3);
  else if (strcmp(argv[1], "realloc_growth") == 0)
    realloc_growth((size_t)64 << 20, (size_t)8 << 30, 3);
  else if (strcmp(argv[1], "fries_churn") == 0) fries_churn(200 * 1000);
  else if (strcmp(argv[1], "word_index") == 0)
    word_index(argc > 2 ? atol(argv[2]) : 20); /* fewer under callgrind */
  else if (strcmp(argv[1], "small_churn") == 0)
    small_churn(argc > 2 ? atol(argv[2]) : 20 * 1000 * 1000); /* fewer under callgrind */
  else { fprintf(stderr, "unknown workload %s\n", argv[1]); return 2; }
  return 0;
}
