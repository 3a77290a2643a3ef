// Typed fields of JSONL training lines (DPO pairs, RL trajectories), each error naming
// "file:line: field 'name'[index]" so a bad line in a large file is found at once.
#ifndef HY_JSON_FIELDS_H
#define HY_JSON_FIELDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

// A growing token sequence with a per-token mask bit.
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    int n, cap;
} hy_token_buf;

void hy_token_buf_append(hy_token_buf *b, const int32_t *ids, int n, uint8_t mask);
void hy_token_buf_free(hy_token_buf *b);

// v must be a non-empty array of integers in [0, vocab): appended to b with mask bit. 0 / −1.
int hy_json_token_ids(const json_t *v, const char *where, const char *field, int vocab, hy_token_buf *b,
                      uint8_t mask);
// obj[field] must be a finite number (*out) / an integer in [lo, hi] (*out). 0 / −1.
int hy_json_number(const json_t *obj, const char *where, const char *field, double *out);
int hy_json_int(const json_t *obj, const char *where, const char *field, long lo, long hi, long *out);

// Appends `, "key": v` to the NUL-terminated buf (n bytes), null when v is not finite (JSON has no NaN).
void hy_json_member_append(char *buf, size_t n, const char *key, double v);

#endif
