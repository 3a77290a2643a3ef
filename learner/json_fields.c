// Typed fields of JSONL training lines (see json_fields.h).
#include "json_fields.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

void hy_token_buf_append(hy_token_buf *b, const int32_t *ids, int n, uint8_t mask) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 16;
        b->ids = hy_realloc(b->ids, sizeof *b->ids * (size_t)b->cap);
        b->mask = hy_realloc(b->mask, (size_t)b->cap);
    }
    memcpy(b->ids + b->n, ids, sizeof *ids * (size_t)n);
    memset(b->mask + b->n, mask, (size_t)n);
    b->n += n;
}

void hy_token_buf_free(hy_token_buf *b) {
    free(b->ids);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

int hy_json_token_ids(const json_t *v, const char *where, const char *field, int vocab, hy_token_buf *b,
                      uint8_t mask) {
    if (!json_is_array(v) || json_array_size(v) == 0)
        return hy_fail("%s: field '%s' must be a non-empty array of token ids", where, field);
    if (json_array_size(v) > (1u << 30)) return hy_fail("%s: field '%s' is too long", where, field);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *x = json_array_get(v, i);
        const json_int_t id = json_is_integer(x) ? json_integer_value(x) : -1;
        if (id < 0 || id >= vocab)
            return hy_fail("%s: field '%s'[%zu] must be a token id in [0, %d)", where, field, i, vocab);
        const int32_t t = (int32_t)id;
        hy_token_buf_append(b, &t, 1, mask);
    }
    return 0;
}

int hy_json_number(const json_t *obj, const char *where, const char *field, double *out) {
    const json_t *v = json_object_get(obj, field);
    if (!v) return hy_fail("%s: field '%s' is missing", where, field);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return hy_fail("%s: field '%s' must be a finite number", where, field);
    *out = json_number_value(v);
    return 0;
}

int hy_json_int(const json_t *obj, const char *where, const char *field, long lo, long hi, long *out) {
    const json_t *v = json_object_get(obj, field);
    if (!v) return hy_fail("%s: field '%s' is missing", where, field);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return hy_fail("%s: field '%s' must be an integer in [%ld, %ld]", where, field, lo, hi);
    *out = (long)json_integer_value(v);
    return 0;
}

void hy_json_member_append(char *buf, size_t n, const char *key, double v) {
    const size_t len = strlen(buf);
    if (len + 1 >= n) return;
    if (isfinite(v))
        snprintf(buf + len, n - len, ", \"%s\": %.9g", key, v);
    else
        snprintf(buf + len, n - len, ", \"%s\": null", key);
}
