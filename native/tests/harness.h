/* harness.h: the little the C tests share. */
#ifndef BIGMAAC_TEST_HARNESS_H
#define BIGMAAC_TEST_HARNESS_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

/* In a function returning int: report where and why, then fail the test (return 1). */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "  %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

/* Word i of a block filled by fill_pattern: depends on the seed and the position, so a
 * block mixed up with another, shifted, or zeroed is noticed. */
static inline uint64_t pattern_word(uint64_t seed, size_t i)
{
    return (i * UINT64_C(0x9E3779B97F4A7C15)) ^ seed;
}

static inline void fill_pattern(void *p, size_t bytes, uint64_t seed)
{
    uint64_t *w = p;
    for (size_t i = 0; i < bytes / 8; i++)
        w[i] = pattern_word(seed, i);
}

/* Index of the first wrong word, or SIZE_MAX when the block is intact. */
static inline size_t check_pattern(const void *p, size_t bytes, uint64_t seed)
{
    const uint64_t *w = p;
    for (size_t i = 0; i < bytes / 8; i++)
        if (w[i] != pattern_word(seed, i))
            return i;
    return SIZE_MAX;
}

/* One byte over a pipe: the handshake between a test and the child it forked. False
 * when the other side is gone. */
static inline bool send_byte(int fd)
{
    char c = 1;
    return write(fd, &c, 1) == 1;
}

static inline bool wait_byte(int fd)
{
    char c;
    return read(fd, &c, 1) == 1;
}

#endif
