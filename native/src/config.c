/* config.c: the environment a process runs under (docs/architecture.md §1).
 *
 * Read once, early; a bad value gives one line naming the variable and the default used
 * instead, and never stops the host. Parsing must not allocate: it runs inside malloc.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_MIN_BIG (32 * BM_MIB)
#define DEFAULT_RESERVE BM_TIB
#define DEFAULT_FRIES (16 * BM_GIB)

size_t bm_divert_from;

struct bm_config bm_config = {
    .min_big = DEFAULT_MIN_BIG,
    .reserve_size = DEFAULT_RESERVE,
    .fries_size = DEFAULT_FRIES,
    .recycle_bytes = BM_GIB,
    .on_disk_full = BM_DISK_FULL_FAIL,
};

bool bm_parse_size(const char *text, size_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (shift && end[0] == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end != '\0' || value > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)(value << shift);
    return true;
}

static const char *env(const char *name)
{
    const char *value = getenv(name);
    return value && value[0] ? value : NULL;
}

/* A size variable: plain bytes or a K/M/G/T suffix, at least min (shown as shown_min). */
static void size_setting(const char *name, size_t min, const char *shown_min, size_t *setting,
                         const char *shown_default)
{
    const char *text = env(name);
    size_t value;
    if (!text)
        return;
    if (!bm_parse_size(text, &value))
        bm_warn("%s='%s' is not a valid size (e.g. 123, 64K, 64M, 2G, 1T); using the default %s",
                name, text, shown_default);
    else if (value < min)
        bm_warn("%s='%s' is below the minimum %s; using the default %s", name, text, shown_min,
                shown_default);
    else
        *setting = value;
}

static void copy_bounded(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* BIGMAAC_DIR, else dirname(BIGMAAC_TEMPLATE), else the XDG cache, else ~/.cache. */
static void swap_dir_setting(void)
{
    char *dir = bm_config.swap_dir;
    size_t size = sizeof bm_config.swap_dir;
    const char *text;
    if ((text = env("BIGMAAC_DIR")) != NULL) {
        copy_bounded(dir, size, text, strlen(text));
    } else if ((text = env("BIGMAAC_TEMPLATE")) != NULL && strrchr(text, '/')) {
        size_t len = (size_t)(strrchr(text, '/') - text);
        copy_bounded(dir, size, text, len ? len : 1);
    } else if ((text = env("XDG_CACHE_HOME")) != NULL && text[0] == '/') {
        copy_bounded(dir, size, text, strlen(text));
        strncat(dir, "/bigmaac/swap", size - strlen(dir) - 1);
    } else if ((text = env("HOME")) != NULL) {
        copy_bounded(dir, size, text, strlen(text));
        strncat(dir, "/.cache/bigmaac/swap", size - strlen(dir) - 1);
    } else {
        snprintf(dir, size, "/tmp/bigmaac-swap-%ld", (long)geteuid()); /* no home */
    }
    if (env("BIGMAAC_TEMPLATE") && !env("BIGMAAC_DIR") && !strrchr(env("BIGMAAC_TEMPLATE"), '/'))
        bm_warn("BIGMAAC_TEMPLATE='%s' has no directory; using the default %s",
                env("BIGMAAC_TEMPLATE"), dir);
}

static void choice_settings(void)
{
    const char *text = env("BIGMAAC_ON_DISK_FULL");
    if (text && strcmp(text, "ram") == 0)
        bm_config.on_disk_full = BM_DISK_FULL_RAM;
    else if (text && strcmp(text, "fail") != 0)
        bm_warn("BIGMAAC_ON_DISK_FULL='%s' is not 'fail' or 'ram'; using the default fail", text);
    text = env("BIGMAAC_VERBOSE");
    if (text && (strcmp(text, "1") == 0 || strcmp(text, "0") == 0))
        bm_config.verbose = text[0] == '1';
    else if (text)
        bm_warn("BIGMAAC_VERBOSE='%s' is not 0 or 1; using the default 0", text);
}

/* Called once the next allocator is resolved: from here on, requests under the
 * threshold go straight to it (release: bm_next is complete for whoever sees it). */
static void publish_threshold(void)
{
    size_t from = bm_config.min_fry ? bm_config.min_fry : bm_config.min_big;
    __atomic_store_n(&bm_divert_from, from, __ATOMIC_RELEASE);
}

bool bm_config_load(void)
{
    if (!environ) {
        publish_threshold(); /* the defaults, until the constructor reads the environment */
        return false;
    }
    size_setting("BIGMAAC_MIN_BIGMAAC_SIZE", 1, "1", &bm_config.min_big, "32M");
    size_setting("BIGMAAC_MIN_FRY_SIZE", 0, "0", &bm_config.min_fry, "off"); /* 0: off */
    size_setting("SIZE_BIGMAAC", BM_GIB, "1G", &bm_config.reserve_size, "1T");
    size_setting("BIGMAAC_RECYCLE_BYTES", 0, "0", &bm_config.recycle_bytes, "1G");
    size_setting("SIZE_FRIES", BM_FRY_CHUNK, "2M", &bm_config.fries_size, "16G");
    swap_dir_setting();
    choice_settings();
    if (bm_config.min_fry >= bm_config.min_big) {
        bm_warn("BIGMAAC_MIN_FRY_SIZE=%zu is not below BIGMAAC_MIN_BIGMAAC_SIZE=%zu; "
                "using the default off", bm_config.min_fry, bm_config.min_big);
        bm_config.min_fry = 0;
    }
    publish_threshold();
    return true;
}
