// String builder (see strbuf.h).
#include "evals/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hy_strbuf_init(hy_strbuf *b) { memset(b, 0, sizeof *b); }

void hy_strbuf_free(hy_strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

static void reserve(hy_strbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    b->s = hy_realloc(b->s, cap);
    b->cap = cap;
}

void hy_strbuf_addn(hy_strbuf *b, const char *s, size_t n) {
    reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void hy_strbuf_add(hy_strbuf *b, const char *s) { hy_strbuf_addn(b, s, strlen(s)); }

void hy_strbuf_addf(hy_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *hy_strbuf_take(hy_strbuf *b) {
    char *s = b->s ? b->s : hy_strdup("");
    memset(b, 0, sizeof *b);
    return s;
}
