// Pre-tokenizer: Split steps and the ByteLevel step of tokenizer.json (see tokenizer_pretok.h).
//
// HF compiles Split regexes with Oniguruma; we compile them with PCRE2 in UTF + UCP mode, whose
// \p{L}, \p{N}, lookahead and (?i:) behave the same for the patterns byte-level tokenizers use.
// The one difference found is \s: Oniguruma matches Unicode White_Space, while PCRE2 (UCP) matches
// its \h and \v lists, which still hold U+180E MONGOLIAN VOWEL SEPARATOR (no longer White_Space
// since Unicode 6.3). Patterns are therefore rewritten before compiling: \s becomes
// \p{White_Space} and \S becomes \P{White_Space}, inside or outside a class. A check of every code
// point in mixed contexts against HF found one remaining difference: the Kaktovik numerals
// U+1D2C0..U+1D2D3, new in Unicode 15, which PCRE2 10.42 (Unicode 14 tables) sees as unassigned.
//
// A Split step follows HF's NormalizedString::split: the regex's leftmost matches, found left to
// right (an empty match right after the previous one is skipped by one character, as the onig
// crate's find_iter does), alternate with the gaps between them; invert swaps which is which; the
// behaviour then removes matches (Removed), keeps everything apart (Isolated), or glues each match
// to its neighbour (MergedWithPrevious/Next) or runs of alike spans together (Contiguous). Empty
// pieces are dropped. ByteLevel may prepend a space (add_prefix_space) and split with GPT-2's regex
// (use_regex, behaviour Isolated); its character mapping happens in the BPE model.
#include "model/tokenizer_pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "model/tokenizer_utf8.h"

typedef enum { BEH_REMOVED, BEH_ISOLATED, BEH_MERGED_PREV, BEH_MERGED_NEXT, BEH_CONTIGUOUS } split_behavior;

typedef struct {
    pcre2_code *re;  // NULL for a ByteLevel step without use_regex
    split_behavior beh;
    int invert;
    int prefix_space;  // ByteLevel add_prefix_space
} pretok_step;

struct hy_pretok {
    pretok_step *steps;
    int n_steps;
};

typedef struct {
    size_t start, end;
    int flag;  // is a match (before the behaviour) / is removed (after)
} span;

struct hy_pretok_ctx {
    pcre2_match_data *md;
    hy_pieces a, b;
    span *spans;
    size_t n_spans, cap_spans;
    char *prefixed;  // a piece with the ByteLevel prefix space, when that step also splits
    size_t prefixed_cap;
};

// GPT-2's split regex, which HF's ByteLevel applies when use_regex is true.
static const char gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Copies pattern with \s and \S replaced (see the file comment). Other escapes pass through
// untouched, including an escaped backslash, so "\\s" stays a backslash followed by 's'.
static char *rewrite_space_classes(const char *pattern) {
    size_t n = strlen(pattern);
    char *out = hy_malloc(8 * n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (pattern[i] == '\\' && i + 1 < n) {
            char c = pattern[i + 1];
            if (c == 's' || c == 'S') {
                const char *rep = c == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
                memcpy(out + w, rep, strlen(rep));
                w += strlen(rep);
            } else {
                out[w++] = '\\';
                out[w++] = c;
            }
            i++;
            continue;
        }
        out[w++] = pattern[i];
    }
    out[w] = '\0';
    return out;
}

static pcre2_code *compile_pattern(const char *pattern, int literal, const char *path, const char *field) {
    int err;
    PCRE2_SIZE err_off;
    char *rewritten = literal ? NULL : rewrite_space_classes(pattern);
    // PCRE2_LITERAL refuses PCRE2_UCP, which only matters for classes anyway.
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)(literal ? pattern : rewritten), PCRE2_ZERO_TERMINATED, opts, &err, &err_off, NULL);
    free(rewritten);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        hy_fail("%s: %s: pattern does not compile (PCRE2: %s, near offset %zu of the rewritten pattern)", path, field,
                (const char *)msg, (size_t)err_off);
        return NULL;
    }
    // JIT is an optimisation only: without it the interpreter gives the same matches.
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static const char *json_type_name(const json_t *v) {
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

static int get_bool(const json_t *obj, const char *key, int dflt, int *out, const char *path, const char *field) {
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return hy_fail("%s: %s.%s: expected a boolean, found %s", path, field, key, json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int parse_split(pretok_step *st, const json_t *obj, const char *path, const char *field) {
    const json_t *pat = json_object_get(obj, "pattern");
    if (!json_is_object(pat))
        return hy_fail("%s: %s.pattern: expected an object {\"Regex\": ...} or {\"String\": ...}, found %s", path,
                       field, pat ? json_type_name(pat) : "nothing");
    const json_t *rx = json_object_get(pat, "Regex"), *lit = json_object_get(pat, "String");
    const json_t *src = rx ? rx : lit;
    if (!json_is_string(src) || (rx && lit))
        return hy_fail("%s: %s.pattern: expected exactly one of \"Regex\" or \"String\" holding a string", path, field);
    if (json_string_length(src) == 0) return hy_fail("%s: %s.pattern: empty pattern", path, field);
    char sub[256];
    snprintf(sub, sizeof sub, "%s.pattern", field);
    st->re = compile_pattern(json_string_value(src), rx == NULL, path, sub);
    if (!st->re) return -1;

    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *beh = json_string_value(json_object_get(obj, "behavior"));
    int found = 0;
    for (int i = 0; beh && i < 5; i++)
        if (strcmp(beh, names[i]) == 0) {
            st->beh = (split_behavior)i;
            found = 1;
        }
    if (!found)
        return hy_fail("%s: %s.behavior: expected one of Removed, Isolated, MergedWithPrevious, MergedWithNext, "
                       "Contiguous, found %s",
                       path, field, beh ? beh : "no string");
    const json_t *inv = json_object_get(obj, "invert");
    if (!json_is_boolean(inv)) return hy_fail("%s: %s.invert: expected a boolean", path, field);
    st->invert = json_is_true(inv);
    return 0;
}

static int parse_byte_level(pretok_step *st, const json_t *obj, const char *path, const char *field) {
    int use_regex;
    if (get_bool(obj, "add_prefix_space", 1, &st->prefix_space, path, field)) return -1;
    if (get_bool(obj, "use_regex", 1, &use_regex, path, field)) return -1;
    st->beh = BEH_ISOLATED;
    if (use_regex) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s (ByteLevel's built-in GPT-2 regex)", field);
        st->re = compile_pattern(gpt2_pattern, 0, path, sub);
        if (!st->re) return -1;
    }
    return 0;
}

// One element of the chain; *is_byte_level tells the caller which kind it was.
static int parse_step(pretok_step *st, const json_t *obj, const char *path, const char *field, int *is_byte_level) {
    if (!json_is_object(obj)) return hy_fail("%s: %s: expected an object, found %s", path, field, json_type_name(obj));
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!type) return hy_fail("%s: %s.type: missing or not a string", path, field);
    *is_byte_level = strcmp(type, "ByteLevel") == 0;
    if (*is_byte_level) return parse_byte_level(st, obj, path, field);
    if (strcmp(type, "Split") == 0) return parse_split(st, obj, path, field);
    return hy_fail("%s: %s.type: pre-tokenizer \"%s\" is not supported (supported: Split, ByteLevel)", path, field,
                   type);
}

int hy_pretok_parse(hy_pretok **out, const json_t *pt, const char *path) {
    *out = NULL;
    if (!pt || json_is_null(pt))
        return hy_fail("%s: pre_tokenizer: missing or null; a byte-level BPE tokenizer needs a ByteLevel pre-tokenizer",
                       path);
    if (!json_is_object(pt))
        return hy_fail("%s: pre_tokenizer: expected an object, found %s", path, json_type_name(pt));
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return hy_fail("%s: pre_tokenizer.type: missing or not a string", path);

    hy_pretok *p = hy_calloc(1, sizeof *p);
    int rc = 0;
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list) || json_array_size(list) == 0) {
            hy_pretok_free(p);
            return hy_fail("%s: pre_tokenizer.pretokenizers: expected a non-empty array", path);
        }
        size_t n = json_array_size(list);
        p->steps = hy_calloc(n, sizeof *p->steps);
        for (size_t i = 0; i < n && rc == 0; i++) {
            char field[96];
            snprintf(field, sizeof field, "pre_tokenizer.pretokenizers[%zu]", i);
            int is_bl = 0;
            rc = parse_step(&p->steps[i], json_array_get(list, i), path, field, &is_bl);
            p->n_steps = (int)i + 1;
            if (rc == 0 && is_bl != (i + 1 == n))
                rc = hy_fail("%s: %s: ByteLevel must appear exactly once, as the last pre-tokenizer (a Split after "
                             "it would see byte-level characters, which is not supported)",
                             path, field);
        }
    } else {
        p->steps = hy_calloc(1, sizeof *p->steps);
        p->n_steps = 1;
        int is_bl = 0;
        rc = parse_step(&p->steps[0], pt, path, "pre_tokenizer", &is_bl);
        if (rc == 0 && !is_bl)
            rc = hy_fail("%s: pre_tokenizer.type: \"%s\" alone is not supported; a byte-level BPE tokenizer needs "
                         "ByteLevel last",
                         path, type);
    }
    if (rc) {
        hy_pretok_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void hy_pretok_free(hy_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++) pcre2_code_free(p->steps[i].re);
    free(p->steps);
    free(p);
}

hy_pretok_ctx *hy_pretok_ctx_new(void) {
    hy_pretok_ctx *c = hy_calloc(1, sizeof *c);
    c->md = pcre2_match_data_create(1, NULL);
    if (!c->md) {
        fprintf(stderr, "hybrid: out of host memory creating PCRE2 match data\n");
        abort();
    }
    return c;
}

static void pieces_free(hy_pieces *ps) {
    free(ps->buf);
    free(ps->off);
    free(ps->plen);
}

void hy_pretok_ctx_free(hy_pretok_ctx *c) {
    if (!c) return;
    pcre2_match_data_free(c->md);
    pieces_free(&c->a);
    pieces_free(&c->b);
    free(c->spans);
    free(c->prefixed);
    free(c);
}

static void pieces_clear(hy_pieces *ps) {
    ps->len = 0;
    ps->n = 0;
}

// Appends one piece made of prefix (may be NULL) followed by s[0..n).
static void pieces_push(hy_pieces *ps, const char *prefix, size_t prefix_len, const char *s, size_t n) {
    size_t total = prefix_len + n;
    if (ps->len + total > ps->cap) {
        while (ps->len + total > ps->cap) ps->cap = ps->cap ? 2 * ps->cap : 4096;
        ps->buf = hy_realloc(ps->buf, ps->cap);
    }
    if (ps->n == ps->cap_n) {
        ps->cap_n = ps->cap_n ? 2 * ps->cap_n : 256;
        ps->off = hy_realloc(ps->off, ps->cap_n * sizeof *ps->off);
        ps->plen = hy_realloc(ps->plen, ps->cap_n * sizeof *ps->plen);
    }
    if (prefix_len) memcpy(ps->buf + ps->len, prefix, prefix_len);
    memcpy(ps->buf + ps->len + prefix_len, s, n);
    ps->off[ps->n] = ps->len;
    ps->plen[ps->n] = total;
    ps->len += total;
    ps->n++;
}

static void span_push(hy_pretok_ctx *c, size_t start, size_t end, int flag) {
    if (c->n_spans == c->cap_spans) {
        c->cap_spans = c->cap_spans ? 2 * c->cap_spans : 256;
        c->spans = hy_realloc(c->spans, c->cap_spans * sizeof *c->spans);
    }
    c->spans[c->n_spans++] = (span){start, end, flag};
}

// Fills c->spans with alternating gaps (flag 0) and matches (flag 1) covering s[0..n).
static int find_matches(const pcre2_code *re, hy_pretok_ctx *c, const char *s, size_t n) {
    c->n_spans = 0;
    size_t pos = 0, prev = 0, last_end = (size_t)-1;
    while (pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
        // A long piece can outgrow the JIT's default 32 KiB stack; the interpreter keeps its
        // backtracking state on the heap, so retry there rather than fail.
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hy_fail("tokenizer: pre-tokenizer regex failed at byte %zu of a %zu-byte segment: %s", pos, n,
                           (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && me == last_end) {
            if (pos >= n) break;
            int bad;
            pos += (size_t)hy_utf8_seq_len((const unsigned char *)s + pos, n - pos, &bad);
            continue;
        }
        if (prev != ms) span_push(c, prev, ms, 0);
        span_push(c, ms, me, 1);
        prev = pos = last_end = me;
    }
    if (prev != n) span_push(c, prev, n, 0);
    return 0;
}

// Rewrites c->spans per the behaviour; afterwards flag = 1 means "drop this span".
static void apply_behavior(hy_pretok_ctx *c, split_behavior beh) {
    span *sp = c->spans;
    size_t n = c->n_spans, w = 0;
    int prev_match = 0;
    switch (beh) {
    case BEH_REMOVED: return;
    case BEH_ISOLATED:
        for (size_t i = 0; i < n; i++) sp[i].flag = 0;
        return;
    case BEH_CONTIGUOUS:
    case BEH_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int is_match = sp[i].flag;
            int glue = beh == BEH_CONTIGUOUS ? is_match == prev_match : is_match && !prev_match;
            if (glue && w > 0) {
                sp[w - 1].end = sp[i].end;
            } else {
                sp[w++] = (span){sp[i].start, sp[i].end, 0};
            }
            prev_match = is_match;
        }
        c->n_spans = w;
        return;
    case BEH_MERGED_NEXT:
        // Walk right to left, gluing each match onto the span that follows it; the result is
        // built at the end of the array, so it reads left to right when done.
        w = n;
        for (size_t k = n; k-- > 0;) {
            int is_match = sp[k].flag;
            if (is_match && !prev_match && w < n) {
                sp[w].start = sp[k].start;
            } else {
                sp[--w] = (span){sp[k].start, sp[k].end, 0};
            }
            prev_match = is_match;
        }
        memmove(sp, sp + w, (n - w) * sizeof *sp);
        c->n_spans = n - w;
        return;
    }
}

const hy_pieces *hy_pretok_run(const hy_pretok *p, hy_pretok_ctx *c, const char *text, size_t n) {
    hy_pieces *cur = &c->a, *nxt = &c->b;
    pieces_clear(cur);
    if (n) pieces_push(cur, NULL, 0, text, n);
    for (int k = 0; k < p->n_steps; k++) {
        const pretok_step *st = &p->steps[k];
        pieces_clear(nxt);
        for (size_t i = 0; i < cur->n; i++) {
            const char *s = cur->buf + cur->off[i];
            size_t len = cur->plen[i];
            int add_space = st->prefix_space && s[0] != ' ';
            if (!st->re) {
                pieces_push(nxt, " ", add_space ? 1 : 0, s, len);
                continue;
            }
            if (add_space) {
                // The regex must see the space, so build the prefixed piece apart from cur and nxt.
                if (len + 1 > c->prefixed_cap) {
                    c->prefixed_cap = 2 * (len + 1);
                    c->prefixed = hy_realloc(c->prefixed, c->prefixed_cap);
                }
                c->prefixed[0] = ' ';
                memcpy(c->prefixed + 1, s, len);
                s = c->prefixed;
                len += 1;
            }
            if (find_matches(st->re, c, s, len)) return NULL;
            if (st->invert)
                for (size_t j = 0; j < c->n_spans; j++) c->spans[j].flag = !c->spans[j].flag;
            apply_behavior(c, st->beh);
            for (size_t j = 0; j < c->n_spans; j++) {
                const span *sp = &c->spans[j];
                if (!sp->flag && sp->end > sp->start) pieces_push(nxt, NULL, 0, s + sp->start, sp->end - sp->start);
            }
        }
        hy_pieces *t = cur;
        cur = nxt;
        nxt = t;
    }
    return cur;
}
