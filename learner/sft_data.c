// SFT JSONL → token sequences with loss masks (see sft_data.h).
#include "sft_data.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/jsonl.h"
#include "../model/chat_template.h"

static const uint64_t FNV_OFFSET = 0xcbf29ce484222325ull, FNV_PRIME = 0x100000001b3ull;

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

void hy_dataset_init(hy_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->hash = FNV_OFFSET;
    ds->start = hy_calloc(1, sizeof *ds->start);
}

void hy_dataset_free(hy_dataset *ds) {
    free(ds->tokens);
    free(ds->mask);
    free(ds->start);
    free(ds->n_targets);
    memset(ds, 0, sizeof *ds);
}

void hy_dataset_add(hy_dataset *ds, const int32_t *tokens, const uint8_t *mask, int n) {
    if (ds->n + 1 > ds->cap) {
        ds->cap = 2 * ds->cap + 16;
        ds->start = hy_realloc(ds->start, sizeof *ds->start * (size_t)(ds->cap + 1));
        ds->n_targets = hy_realloc(ds->n_targets, sizeof *ds->n_targets * (size_t)ds->cap);
    }
    if (ds->total + n > ds->cap_tokens) {
        ds->cap_tokens = 2 * (ds->total + n);
        ds->tokens = hy_realloc(ds->tokens, sizeof *ds->tokens * (size_t)ds->cap_tokens);
        ds->mask = hy_realloc(ds->mask, (size_t)ds->cap_tokens);
    }
    int32_t *t = ds->tokens + ds->total;
    uint8_t *m = ds->mask + ds->total;
    memcpy(t, tokens, sizeof *t * (size_t)n);
    int targets = 0;
    for (int i = 0; i < n; i++) {
        m[i] = mask ? mask[i] != 0 : 1;
        targets += i > 0 && m[i];
    }
    const int32_t len = n;
    ds->hash = fnv(ds->hash, &len, sizeof len);
    ds->hash = fnv(ds->hash, t, sizeof *t * (size_t)n);
    ds->hash = fnv(ds->hash, m, (size_t)n);
    ds->n_targets[ds->n] = targets;
    ds->total += n;
    ds->start[++ds->n] = ds->total;
}

// A growing token sequence with its mask, as one line is turned into ids.
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    int n, cap;
} seq_buf;

static void seq_append(seq_buf *s, const int32_t *ids, int n, uint8_t mask) {
    if (s->n + n > s->cap) {
        s->cap = 2 * (s->n + n) + 16;
        s->ids = hy_realloc(s->ids, sizeof *s->ids * (size_t)s->cap);
        s->mask = hy_realloc(s->mask, (size_t)s->cap);
    }
    memcpy(s->ids + s->n, ids, sizeof *ids * (size_t)n);
    memset(s->mask + s->n, mask, (size_t)n);
    s->n += n;
}

static int need_tokenizer(const hy_tokenizer *tok, const char *where, const char *field) {
    if (tok) return 0;
    return hy_fail("%s: field '%s' needs a tokenizer: put tokenizer.json in the model directory or pass "
                   "--tokenizer FILE",
                   where, field);
}

static int encode_into(seq_buf *s, const hy_tokenizer *tok, const char *text, size_t len, uint8_t mask) {
    int32_t *ids = NULL;
    int n = 0;
    if (hy_tokenizer_encode(tok, text, len, &ids, &n)) return -1;
    seq_append(s, ids, n, mask);
    free(ids);
    return 0;
}

static int read_tokens(const json_t *tokens, const json_t *mask, const char *where, seq_buf *s) {
    if (!json_is_array(tokens)) return hy_fail("%s: field 'tokens' must be an array of integers", where);
    const size_t len = json_array_size(tokens);
    if (len > INT_MAX / 2) return hy_fail("%s: field 'tokens' has %zu entries (too many)", where, len);
    if (mask && (!json_is_array(mask) || json_array_size(mask) != len))
        return hy_fail("%s: field 'mask' must be an array of 0/1 of the same length as 'tokens' (%zu)", where, len);
    for (size_t i = 0; i < len; i++) {
        const json_t *v = json_array_get(tokens, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return hy_fail("%s: field 'tokens'[%zu] must be a non-negative integer", where, i);
        uint8_t bit = 1;
        if (mask) {
            const json_t *b = json_array_get(mask, i);
            const json_int_t iv = json_is_integer(b) ? json_integer_value(b) : -1;
            if (!json_is_boolean(b) && iv != 0 && iv != 1)
                return hy_fail("%s: field 'mask'[%zu] must be 0, 1, true or false", where, i);
            bit = json_is_boolean(b) ? json_is_true(b) : (uint8_t)iv;
        }
        const int32_t id = (int32_t)json_integer_value(v);
        seq_append(s, &id, 1, bit);
    }
    return 0;
}

// Piecewise encoding of a conversation so every token's mask is exact (see sft_data.h).
static int read_messages_masked(const hy_chat_message *msgs, int n_msgs, const hy_tokenizer *tok, seq_buf *s) {
    for (int i = 0; i < n_msgs; i++) {
        const uint8_t trained = !strcmp(msgs[i].role, "assistant");
        const size_t role_len = strlen(msgs[i].role);
        char *header = hy_malloc(role_len + 16);
        const int header_len = snprintf(header, role_len + 16, "<|im_start|>%s\n", msgs[i].role);
        int rc = encode_into(s, tok, header, (size_t)header_len, 0);
        free(header);
        if (rc || encode_into(s, tok, msgs[i].content, msgs[i].content_len, trained) ||
            encode_into(s, tok, "<|im_end|>", 10, trained) || encode_into(s, tok, "\n", 1, 0))
            return -1;
    }
    return 0;
}

static int read_messages(const json_t *messages, const hy_tokenizer *tok, hy_train_on train_on, const char *where,
                         seq_buf *s) {
    if (need_tokenizer(tok, where, "messages")) return -1;
    char field[4300];
    snprintf(field, sizeof field, "%s: field 'messages'", where);
    hy_chat_message *msgs = NULL;
    int n = 0;
    if (hy_chat_messages_from_json(messages, field, &msgs, &n)) return -1;
    int rc;
    if (train_on == HY_TRAIN_ON_ALL) {
        char *text = NULL;
        size_t len = 0;
        rc = hy_chat_render(msgs, n, 0, &text, &len) || encode_into(s, tok, text, len, 1) ? -1 : 0;
        free(text);
    } else {
        rc = read_messages_masked(msgs, n, tok, s);
    }
    hy_chat_messages_free(msgs, n);
    return rc ? hy_fail_prefix("%s", field) : 0;
}

// One line → s (ids and mask), validated.
static int read_line(const json_t *obj, const hy_tokenizer *tok, const hy_sft_data_options *o, const char *where,
                     seq_buf *s) {
    const json_t *tokens = json_object_get(obj, "tokens"), *text = json_object_get(obj, "text"),
                 *messages = json_object_get(obj, "messages"), *mask = json_object_get(obj, "mask");
    const int present = (tokens != NULL) + (text != NULL) + (messages != NULL);
    if (present != 1)
        return hy_fail("%s: expected exactly one of 'tokens', 'text' or 'messages', found %d", where, present);
    if (mask && !tokens) return hy_fail("%s: field 'mask' is only allowed with 'tokens'", where);
    if (tokens) {
        if (read_tokens(tokens, mask, where, s)) return -1;
    } else if (text) {
        if (!json_is_string(text)) return hy_fail("%s: field 'text' must be a string", where);
        if (need_tokenizer(tok, where, "text")) return -1;
        if (encode_into(s, tok, json_string_value(text), json_string_length(text), 1))
            return hy_fail_prefix("%s: field 'text'", where);
    } else if (read_messages(messages, tok, o->train_on, where, s)) {
        return -1;
    }
    if (s->n == 0) return hy_fail("%s: empty sequence (no tokens)", where);
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] >= o->vocab)
            return hy_fail("%s: token id %d at position %d is outside the vocabulary [0, %d)", where, s->ids[i], i,
                           o->vocab);
    return 0;
}

typedef struct {
    hy_dataset *ds;
    const hy_tokenizer *tok;
    const hy_sft_data_options *o;
    seq_buf s;
} sft_load_ctx;

static int sft_load_line(json_t *obj, const char *where, void *ctx) {
    sft_load_ctx *c = ctx;
    const hy_sft_data_options *o = c->o;
    seq_buf *s = &c->s;
    s->n = 0;
    if (read_line(obj, c->tok, o, where, s)) return -1;
    if (o->max_seq_len > 0 && s->n > o->max_seq_len) {
        s->n = o->max_seq_len;
        c->ds->n_truncated++;
    }
    if (o->max_tokens > 0 && s->n > o->max_tokens)
        return hy_fail("%s: sequence of %d tokens does not fit a micro-batch of %d tokens (raise micro-batch-tokens "
                       "or set max-seq-len)",
                       where, s->n, o->max_tokens);
    int targets = 0;
    for (int i = 1; i < s->n; i++) targets += s->mask[i];
    if (targets == 0)
        c->ds->n_dropped++;
    else
        hy_dataset_add(c->ds, s->ids, s->mask, s->n);
    return 0;
}

int hy_dataset_load_jsonl(hy_dataset *ds, const char *path, const hy_tokenizer *tok, const hy_sft_data_options *o) {
    hy_dataset_init(ds);
    sft_load_ctx c = {ds, tok, o, {0}};
    long lines;
    int rc = hy_jsonl_each(path, sft_load_line, &c, &lines);
    free(c.s.ids);
    free(c.s.mask);
    if (!rc && lines == 0) rc = hy_fail("%s: empty input (no JSON lines)", path);
    if (!rc && ds->n == 0)
        rc = hy_fail("%s: no sequence has a token to train on (%d lines without targets: one-token sequences, "
                     "conversations without an assistant turn, all-zero masks)",
                     path, ds->n_dropped);
    if (rc) hy_dataset_free(ds);
    return rc;
}
