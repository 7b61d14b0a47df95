/* deepbind_lib.c: a library the tests open with RTLD_DEEPBIND. Its own calls to the
 * malloc family bind first to its dependencies (libc), not to the preloaded library. */
#include <stdlib.h>

void *deepbind_malloc(size_t size) { return malloc(size); }
void *deepbind_realloc(void *p, size_t size) { return realloc(p, size); }
void deepbind_free(void *p) { free(p); }
