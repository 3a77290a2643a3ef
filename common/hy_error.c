// Thread-local last-error buffer and aborting allocators (see hy_error.h).
#include "hy_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_message[2048];

int hy_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return -1;
}

int hy_fail_prefix(const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof g_message];
    memcpy(old, g_message, sizeof old);
    // the combined message may exceed the buffer; keeping its start (the context) is what matters
    size_t n = strlen(prefix);
    if (n > sizeof g_message - 3) n = sizeof g_message - 3;
    memcpy(g_message, prefix, n);
    memcpy(g_message + n, ": ", 2);
    size_t rest = sizeof g_message - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(g_message + n + 2, old, m);
    g_message[n + 2 + m] = '\0';
    return -1;
}

const char *hy_last_error(void) { return g_message; }

void hy_error_clear(void) { g_message[0] = '\0'; }

static void *check_alloc(void *p, size_t n) {
    if (!p && n) {
        fprintf(stderr, "hybrid: out of host memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *hy_malloc(size_t n) { return check_alloc(malloc(n ? n : 1), n); }
void *hy_calloc(size_t count, size_t size) { return check_alloc(calloc(count ? count : 1, size ? size : 1), count * size); }
void *hy_realloc(void *p, size_t n) { return check_alloc(realloc(p, n ? n : 1), n); }
char *hy_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = hy_malloc(n);
    memcpy(d, s, n);
    return d;
}
