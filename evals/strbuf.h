// A growing NUL-terminated string for building prompts, observations and messages.
//
// Allocation aborts on failure (hy_malloc), so appends cannot fail and callers stay linear. The
// buffer always holds a valid C string, even when empty.
#ifndef HY_EVALS_STRBUF_H
#define HY_EVALS_STRBUF_H

#include <stddef.h>

#include "common/hy_error.h"

typedef struct {
    char *s;  // NUL-terminated; NULL before the first append
    size_t len, cap;
} hy_strbuf;

void hy_strbuf_init(hy_strbuf *b);
void hy_strbuf_free(hy_strbuf *b);
void hy_strbuf_add(hy_strbuf *b, const char *s);
void hy_strbuf_addn(hy_strbuf *b, const char *s, size_t n);
void hy_strbuf_addf(hy_strbuf *b, const char *fmt, ...) HY_PRINTF(2, 3);
// Hands the string to the caller (free it) and leaves the buffer empty; never NULL.
char *hy_strbuf_take(hy_strbuf *b);

#endif
