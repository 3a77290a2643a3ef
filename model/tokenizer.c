// Tokenizer: tokenizer.json loading and validation, added-token splitting, encode and decode
// (see tokenizer.h). The BPE model, the pre-tokenizer and the UTF-8 rules live in tokenizer_bpe.c,
// tokenizer_pretok.c and tokenizer_utf8.c.
//
// Added tokens are found as HF's AddedVocabulary does: first the tokens with normalized = false
// over the whole text, then those with normalized = true inside the remaining gaps (the normalizer
// is null, so the gaps are matched as they are). Each pass takes the leftmost match, the longest
// one there, and resumes after it. single_word drops a match touching a word character (Rust
// regex \w: Alphabetic, M, Nd, Pc, Join_Control) on either side; lstrip/rstrip widen a match over
// the White_Space around it. Those character tests use PCRE2 Unicode properties.
//
// Decoding precomputes the bytes of every id once at load: the token's string (the added-token
// content for added ids) mapped back through the byte-level alphabet, or, when a character falls
// outside that alphabet, the string's own UTF-8 bytes: the same fallback as HF's ByteLevel decoder.
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "model/tokenizer_bpe.h"
#include "model/tokenizer_pretok.h"
#include "model/tokenizer_utf8.h"

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word, normalized;
} added_token;

struct hy_tokenizer {
    hy_bpe *bpe;
    hy_pretok *pretok;
    added_token *added;
    int n_added;
    unsigned char added_first_byte[256];  // 1 if some added token starts with this byte
    int vocab_size;
    char *dec_bytes;  // decoded bytes of all ids back to back
    size_t *dec_off;  // (vocab_size) start in dec_bytes, SIZE_MAX for an id without a token
    uint32_t *dec_len;  // (vocab_size)
    unsigned char *special;  // (vocab_size)
    pcre2_code *word_re;  // one Rust-regex \w character, anchored
    pcre2_code *space_re;  // one White_Space character, anchored
};

// ---------------------------------------------------------------- loading

static const char *type_name(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int wrong_type(const char *path, const char *field, const json_t *v, const char *expected) {
    if (!v) return hy_fail("%s: %s: missing", path, field);
    return hy_fail("%s: %s: expected %s, found %s", path, field, expected, type_name(v));
}

// A component that must be null (or absent) or one of the listed types.
static int check_component(const json_t *root, const char *key, const char *const *allowed, const char *path) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    const char *type = json_is_object(v) ? json_string_value(json_object_get(v, "type")) : NULL;
    for (int i = 0; type && allowed[i]; i++)
        if (strcmp(type, allowed[i]) == 0) return 0;
    char list[256] = "null";
    for (int i = 0; allowed[i]; i++) {
        strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
    }
    return hy_fail("%s: %s: %s%s%s is not supported (supported: %s)", path, key, type ? "type \"" : "",
                   type ? type : type_name(v), type ? "\"" : "", list);
}

static int check_components(const json_t *root, const char *path) {
    static const char *const none[] = {NULL};
    static const char *const decoders[] = {"ByteLevel", NULL};
    // With add_special_tokens=False these post-processors leave the ids alone (ByteLevel only
    // trims offsets; TemplateProcessing only adds tokens on request).
    static const char *const post[] = {"ByteLevel", "TemplateProcessing", NULL};
    if (check_component(root, "normalizer", none, path)) return -1;
    if (check_component(root, "post_processor", post, path)) return -1;
    const json_t *dec = json_object_get(root, "decoder");
    if (!dec || json_is_null(dec))
        return hy_fail("%s: decoder: missing or null; a ByteLevel decoder is required", path);
    if (check_component(root, "decoder", decoders, path)) return -1;
    const char *fixed[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(root, fixed[i]);
        if (v && !json_is_null(v))
            return hy_fail("%s: %s: must be null (the caller truncates and pads ids itself)", path, fixed[i]);
    }
    return 0;
}

static int check_model_options(const json_t *model, const char *path) {
    const char *type = json_string_value(json_object_get(model, "type"));
    if (json_object_get(model, "type") && (!type || strcmp(type, "BPE") != 0))
        return hy_fail("%s: model.type: \"%s\" is not supported (only BPE)", path, type ? type : "(not a string)");
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return hy_fail("%s: model.dropout: BPE dropout is not supported (must be null or 0)", path);
    const json_t *fallback = json_object_get(model, "byte_fallback");
    if (fallback && !json_is_false(fallback) && !json_is_null(fallback))
        return hy_fail("%s: model.byte_fallback: must be false (byte-level BPE never needs it)", path);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(model, affixes[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return hy_fail("%s: model.%s: must be null or empty (not supported)", path, affixes[i]);
    }
    const json_t *ignore = json_object_get(model, "ignore_merges");
    if (ignore && !json_is_boolean(ignore) && !json_is_null(ignore))
        return hy_fail("%s: model.ignore_merges: expected a boolean, found %s", path, type_name(ignore));
    return 0;
}

// Bytes HF's ByteLevel decoder produces for one token string (see the file comment).
static void byte_level_decode(const char *s, size_t n, char *out, size_t *out_len) {
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)hy_utf8_decode_cp((const unsigned char *)s + i, &cp);
        int b = hy_cp_to_byte(cp);
        if (b < 0) {
            memcpy(out, s, n);
            *out_len = n;
            return;
        }
        out[w++] = (char)b;
    }
    *out_len = w;
}

static int load_vocab(hy_tokenizer *t, const json_t *vocab, const char *path, char ***id_token) {
    const char *key;
    const json_t *val;
    int32_t max_id = -1;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= INT32_MAX)
            return hy_fail("%s: model.vocab[\"%s\"]: expected a non-negative integer id, found %s", path, key,
                           type_name(val));
        int32_t id = (int32_t)json_integer_value(val);
        if (hy_bpe_add_token(t->bpe, key, strlen(key), id) != 0)
            return hy_fail("%s: model.vocab: token \"%s\" appears twice", path, key);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return hy_fail("%s: model.vocab: empty", path);
    // id -> string, to detect two strings sharing an id and to build the decode table.
    char **tok = hy_calloc((size_t)max_id + 1, sizeof *tok);
    json_object_foreach((json_t *)vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (tok[id]) {
            hy_fail("%s: model.vocab: id %d is given to both \"%s\" and \"%s\"", path, id, tok[id], key);
            free(tok);
            return -1;
        }
        tok[id] = (char *)key;
    }
    *id_token = tok;
    t->vocab_size = max_id + 1;
    for (int b = 0; b < 256; b++) {
        char spelled[4];
        int n = hy_utf8_encode_cp(hy_byte_to_cp((unsigned char)b), spelled);
        int32_t id = hy_bpe_lookup(t->bpe, spelled, (size_t)n);
        if (id < 0)
            return hy_fail(
                "%s: model.vocab: lacks the byte-level token \"%.*s\" for byte 0x%02X (every byte needs one)", path, n,
                spelled, b);
        hy_bpe_set_byte_id(t->bpe, (unsigned char)b, id);
    }
    return 0;
}

// One merge given as "a b" or ["a", "b"]; fills the two halves (pointing into the JSON or buf).
static int merge_halves(const json_t *m, size_t i, int pairs, char *buf, size_t buf_size, const char **a,
                        const char **b, const char *path) {
    if (pairs) {
        if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) ||
            !json_is_string(json_array_get(m, 1)))
            return hy_fail("%s: model.merges[%zu]: expected a pair [\"a\", \"b\"] like the first merge, found %s", path,
                           i, type_name(m));
        *a = json_string_value(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        return 0;
    }
    if (!json_is_string(m))
        return hy_fail("%s: model.merges[%zu]: expected a string \"a b\" like the first merge, found %s", path, i,
                       type_name(m));
    const char *s = json_string_value(m);
    const char *space = strchr(s, ' ');
    if (!space || strchr(space + 1, ' ') || strlen(s) >= buf_size)
        return hy_fail("%s: model.merges[%zu]: \"%s\" is not two tokens separated by one space", path, i, s);
    memcpy(buf, s, (size_t)(space - s));
    buf[space - s] = '\0';
    *a = buf;
    *b = space + 1;
    return 0;
}

static int load_merges(hy_tokenizer *t, const json_t *merges, const char *path) {
    size_t n = json_array_size(merges);
    int pairs = n > 0 && json_is_array(json_array_get(merges, 0));
    char left[1024], joined[2048];
    for (size_t i = 0; i < n; i++) {
        const char *a = NULL, *b = NULL;
        if (merge_halves(json_array_get(merges, i), i, pairs, left, sizeof left, &a, &b, path)) return -1;
        int32_t ia = hy_bpe_lookup(t->bpe, a, strlen(a)), ib = hy_bpe_lookup(t->bpe, b, strlen(b));
        if (ia < 0 || ib < 0)
            return hy_fail("%s: model.merges[%zu]: token \"%s\" is not in model.vocab", path, i, ia < 0 ? a : b);
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb >= sizeof joined) return hy_fail("%s: model.merges[%zu]: merged token too long", path, i);
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb);
        int32_t im = hy_bpe_lookup(t->bpe, joined, la + lb);
        if (im < 0)
            return hy_fail("%s: model.merges[%zu]: merged token \"%.*s\" is not in model.vocab", path, i,
                           (int)(la + lb), joined);
        hy_bpe_add_merge(t->bpe, ia, ib, (uint32_t)i, im);
    }
    return 0;
}

static int get_flag(const json_t *obj, const char *key, int dflt, int *out, const char *path, size_t i) {
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return hy_fail("%s: added_tokens[%zu].%s: expected a boolean, found %s", path, i, key, type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int load_added(hy_tokenizer *t, const json_t *list, const char *path) {
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list)) return hy_fail("%s: added_tokens: expected an array, found %s", path, type_name(list));
    size_t n = json_array_size(list);
    t->added = hy_calloc(n ? n : 1, sizeof *t->added);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(list, i);
        if (!json_is_object(o))
            return hy_fail("%s: added_tokens[%zu]: expected an object, found %s", path, i, type_name(o));
        const json_t *id = json_object_get(o, "id"), *content = json_object_get(o, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
            return hy_fail("%s: added_tokens[%zu].id: expected a non-negative integer, found %s", path, i,
                           type_name(id));
        if (!json_is_string(content) || json_string_length(content) == 0)
            return hy_fail("%s: added_tokens[%zu].content: expected a non-empty string, found %s", path, i,
                           type_name(content));
        added_token *a = &t->added[t->n_added];
        a->len = json_string_length(content);
        a->id = (int32_t)json_integer_value(id);
        // HF gives an added token the model's id for the same string; a file that disagrees is
        // inconsistent rather than something to guess about.
        int32_t vocab_id = hy_bpe_lookup(t->bpe, json_string_value(content), a->len);
        if (vocab_id >= 0 && vocab_id != a->id)
            return hy_fail("%s: added_tokens[%zu]: \"%s\" has id %d but model.vocab gives it %d", path, i,
                           json_string_value(content), a->id, vocab_id);
        for (int k = 0; k < t->n_added; k++)
            if (t->added[k].len == a->len && memcmp(t->added[k].content, json_string_value(content), a->len) == 0)
                return hy_fail("%s: added_tokens[%zu].content: \"%s\" is listed twice", path, i,
                               json_string_value(content));
        if (get_flag(o, "special", 0, &a->special, path, i) || get_flag(o, "lstrip", 0, &a->lstrip, path, i) ||
            get_flag(o, "rstrip", 0, &a->rstrip, path, i) || get_flag(o, "single_word", 0, &a->single_word, path, i) ||
            get_flag(o, "normalized", !a->special, &a->normalized, path, i))
            return -1;
        a->content = hy_malloc(a->len + 1);
        memcpy(a->content, json_string_value(content), a->len + 1);
        t->added_first_byte[(unsigned char)a->content[0]] = 1;
        t->n_added++;
        if (a->id + 1 > t->vocab_size) t->vocab_size = a->id + 1;
    }
    return 0;
}

static void build_decode_table(hy_tokenizer *t, char **id_token, int n_vocab_ids) {
    size_t total = 0;
    for (int id = 0; id < n_vocab_ids; id++)
        if (id_token[id]) total += strlen(id_token[id]);
    for (int k = 0; k < t->n_added; k++) total += t->added[k].len;
    t->dec_bytes = hy_malloc(total + 1);
    t->dec_off = hy_malloc((size_t)t->vocab_size * sizeof *t->dec_off);
    t->dec_len = hy_calloc((size_t)t->vocab_size, sizeof *t->dec_len);
    t->special = hy_calloc((size_t)t->vocab_size, 1);
    for (int id = 0; id < t->vocab_size; id++) t->dec_off[id] = SIZE_MAX;
    size_t w = 0, len;
    for (int id = 0; id < n_vocab_ids; id++) {
        if (!id_token[id]) continue;
        byte_level_decode(id_token[id], strlen(id_token[id]), t->dec_bytes + w, &len);
        t->dec_off[id] = w;
        t->dec_len[id] = (uint32_t)len;
        w += len;
    }
    // An added token decodes from its content even where the vocabulary also has the id.
    for (int k = 0; k < t->n_added; k++) {
        const added_token *a = &t->added[k];
        byte_level_decode(a->content, a->len, t->dec_bytes + w, &len);
        t->dec_off[a->id] = w;
        t->dec_len[a->id] = (uint32_t)len;
        t->special[a->id] = (unsigned char)a->special;
        w += len;
    }
}

static pcre2_code *compile_class(const char *pattern) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED,
                                   &err, &off, NULL);
    if (!re) {
        fprintf(stderr, "hybrid: tokenizer: built-in pattern %s does not compile\n", pattern);
        abort();
    }
    return re;
}

static int load_root(hy_tokenizer *t, const json_t *root, const char *path) {
    if (!json_is_object(root)) return hy_fail("%s: expected a JSON object at the top level", path);
    if (check_components(root, path)) return -1;
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return wrong_type(path, "model", model, "an object");
    if (check_model_options(model, path)) return -1;
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab)) return wrong_type(path, "model.vocab", vocab, "an object");
    if (!json_is_array(merges)) return wrong_type(path, "model.merges", merges, "an array");

    t->bpe = hy_bpe_new(json_object_size(vocab), json_array_size(merges));
    hy_bpe_set_ignore_merges(t->bpe, json_is_true(json_object_get(model, "ignore_merges")));
    char **id_token = NULL;
    int rc = load_vocab(t, vocab, path, &id_token);
    int n_vocab_ids = t->vocab_size;
    if (rc == 0) rc = load_merges(t, merges, path);
    if (rc == 0) rc = load_added(t, json_object_get(root, "added_tokens"), path);
    if (rc == 0) rc = hy_pretok_parse(&t->pretok, json_object_get(root, "pre_tokenizer"), path);
    if (rc == 0) build_decode_table(t, id_token, n_vocab_ids);
    free(id_token);
    if (rc) return -1;
    t->word_re = compile_class("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]");
    t->space_re = compile_class("\\p{White_Space}");
    return 0;
}

int hy_tokenizer_load(hy_tokenizer **out, const char *path) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (jerr.line < 0) return hy_fail("%s: cannot read tokenizer file: %s", path, jerr.text);
        return hy_fail("%s: invalid JSON at line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
    }
    hy_tokenizer *t = hy_calloc(1, sizeof *t);
    int rc = load_root(t, root, path);
    json_decref(root);
    if (rc) {
        hy_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void hy_tokenizer_free(hy_tokenizer *t) {
    if (!t) return;
    hy_bpe_free(t->bpe);
    hy_pretok_free(t->pretok);
    for (int k = 0; k < t->n_added; k++) free(t->added[k].content);
    free(t->added);
    free(t->dec_bytes);
    free(t->dec_off);
    free(t->dec_len);
    free(t->special);
    pcre2_code_free(t->word_re);
    pcre2_code_free(t->space_re);
    free(t);
}

// ---------------------------------------------------------------- encoding

typedef struct {
    size_t start, end;
    int32_t id;  // the added token, or -1 for text still to pre-tokenize
} segment;

typedef struct {
    hy_pretok_ctx *pre;
    hy_bpe_scratch bpe;
    pcre2_match_data *md;
    segment *segs;
    size_t n_segs, cap_segs;
} encode_ctx;

static void seg_push(encode_ctx *c, size_t start, size_t end, int32_t id) {
    if (c->n_segs == c->cap_segs) {
        c->cap_segs = c->cap_segs ? 2 * c->cap_segs : 64;
        c->segs = hy_realloc(c->segs, c->cap_segs * sizeof *c->segs);
    }
    c->segs[c->n_segs++] = (segment){start, end, id};
}

// Does the character at s[0..n) (well-formed, n >= 1) match the one-character class re?
static int char_is(const pcre2_code *re, encode_ctx *c, const char *s, size_t n) {
    int bad;
    size_t len = (size_t)hy_utf8_seq_len((const unsigned char *)s, n, &bad);
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, c->md, NULL) >= 0;
}

// Start of the character that ends at text[pos], not looking before lo (lo < pos).
static size_t char_before(const char *text, size_t lo, size_t pos) {
    size_t i = pos - 1;
    while (i > lo && ((unsigned char)text[i] & 0xC0) == 0x80) i--;
    return i;
}

// The longest added token of this pass (normalized flag) starting at s[0..n), or NULL.
static const added_token *match_at(const hy_tokenizer *t, int normalized, const char *s, size_t n) {
    const added_token *best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const added_token *a = &t->added[k];
        if (a->normalized != normalized || a->len > n || (best && a->len <= best->len)) continue;
        if (memcmp(s, a->content, a->len) == 0) best = a;
    }
    return best;
}

// Splits text[start..end) around the added tokens of one pass, appending segments to c.
static void split_added(const hy_tokenizer *t, encode_ctx *c, int normalized, const char *text, size_t start,
                        size_t end) {
    size_t done = start;  // everything before this is already emitted
    size_t pos = start;
    while (pos < end) {
        if (!t->added_first_byte[(unsigned char)text[pos]]) {
            pos++;
            continue;
        }
        const added_token *a = match_at(t, normalized, text + pos, end - pos);
        if (!a) {
            pos++;
            continue;
        }
        size_t ms = pos, me = pos + a->len;
        if (a->single_word) {
            size_t k = ms > start ? char_before(text, start, ms) : ms;
            int word_before = ms > start && char_is(t->word_re, c, text + k, end - k);
            int word_after = me < end && char_is(t->word_re, c, text + me, end - me);
            if (word_before || word_after) {
                pos = me;  // HF resumes its search after the rejected match
                continue;
            }
        }
        if (a->lstrip) {
            while (ms > done) {
                size_t k = char_before(text, done, ms);
                if (!char_is(t->space_re, c, text + k, ms - k)) break;
                ms = k;
            }
        }
        if (a->rstrip) {
            while (me < end && char_is(t->space_re, c, text + me, end - me)) {
                int bad;
                me += (size_t)hy_utf8_seq_len((const unsigned char *)text + me, end - me, &bad);
            }
        }
        if (ms > done) seg_push(c, done, ms, -1);
        seg_push(c, ms, me, a->id);
        done = pos = me;
    }
    if (done < end) seg_push(c, done, end, -1);
}

static void encode_ctx_free(encode_ctx *c) {
    hy_pretok_ctx_free(c->pre);
    hy_bpe_scratch_free(&c->bpe);
    pcre2_match_data_free(c->md);
    free(c->segs);
}

int hy_tokenizer_encode(const hy_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = hy_utf8_first_invalid(text, len);
    if (bad < len) return hy_fail("tokenizer encode: text is not valid UTF-8 at byte %zu of %zu", bad, len);

    encode_ctx c = {0};
    c.pre = hy_pretok_ctx_new();
    c.md = pcre2_match_data_create(1, NULL);
    if (!c.md) {
        fprintf(stderr, "hybrid: out of host memory creating PCRE2 match data\n");
        abort();
    }
    // Pass 1 over the whole text, pass 2 inside the text segments pass 1 left.
    split_added(t, &c, 0, text, 0, len);
    size_t n_first = c.n_segs;
    segment *first = hy_malloc((n_first ? n_first : 1) * sizeof *first);
    if (n_first) memcpy(first, c.segs, n_first * sizeof *first);
    c.n_segs = 0;
    for (size_t i = 0; i < n_first; i++) {
        if (first[i].id >= 0)
            seg_push(&c, first[i].start, first[i].end, first[i].id);
        else
            split_added(t, &c, 1, text, first[i].start, first[i].end);
    }
    free(first);

    int32_t *out = NULL;
    size_t n_out = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < c.n_segs && rc == 0; i++) {
        const segment *s = &c.segs[i];
        if (s->id >= 0) {
            if (n_out == cap) {
                cap = cap ? 2 * cap : 64;
                out = hy_realloc(out, cap * sizeof *out);
            }
            out[n_out++] = s->id;
            continue;
        }
        const hy_pieces *p = hy_pretok_run(t->pretok, c.pre, text + s->start, s->end - s->start);
        if (!p) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < p->n; k++)
            hy_bpe_encode_piece(t->bpe, (const unsigned char *)p->buf + p->off[k], p->plen[k], &c.bpe, &out, &n_out,
                                &cap);
    }
    encode_ctx_free(&c);
    if (rc == 0 && n_out > INT_MAX) rc = hy_fail("tokenizer encode: %zu tokens exceed the int count", n_out);
    if (rc) {
        free(out);
        return -1;
    }
    *ids = out;
    *n_ids = (int)n_out;
    return 0;
}

// ---------------------------------------------------------------- decoding and lookups

int hy_tokenizer_decode(const hy_tokenizer *t, const int32_t *ids, int n, int skip_special, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size)
            return hy_fail("tokenizer decode: id %d at position %d is out of range [0, %d)", id, i, t->vocab_size);
        if (t->dec_off[id] == SIZE_MAX) return hy_fail("tokenizer decode: id %d at position %d has no token", id, i);
        if (!(skip_special && t->special[id])) total += t->dec_len[id];
    }
    char *raw = hy_malloc(total + 1);
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (skip_special && t->special[id]) continue;
        memcpy(raw + w, t->dec_bytes + t->dec_off[id], t->dec_len[id]);
        w += t->dec_len[id];
    }
    hy_utf8_lossy(raw, w, text, len);
    free(raw);
    return 0;
}

int hy_tokenizer_token_id(const hy_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].len == n && memcmp(t->added[k].content, token, n) == 0) return t->added[k].id;
    return hy_bpe_lookup(t->bpe, token, n);
}

int hy_tokenizer_vocab_size(const hy_tokenizer *t) { return t->vocab_size; }

int hy_tokenizer_is_special(const hy_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size && t->special[id];
}
