/* log.c: one-line diagnostics on stderr.
 *
 * Formats into a stack buffer and write(2)s it: stdio could allocate, and these run
 * inside malloc. The library is silent in normal operation; bm_debug prints only with
 * BIGMAAC_VERBOSE=1.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void emit(const char *fmt, va_list args)
{
    char line[512];
    int len = snprintf(line, sizeof line, "bigmaac[%d]: ", (int)getpid());
    int rest = vsnprintf(line + len, sizeof line - (size_t)len - 1, fmt, args);
    if (rest < 0)
        return;
    len += rest;
    if (len > (int)sizeof line - 2)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)len);
    (void)ignored;
}

void bm_warn(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    emit(fmt, args);
    va_end(args);
}

void bm_debug(const char *fmt, ...)
{
    if (!bm_config.verbose)
        return;
    va_list args;
    va_start(args, fmt);
    emit(fmt, args);
    va_end(args);
}
