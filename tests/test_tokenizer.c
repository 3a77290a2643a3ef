// Tests for model/tokenizer.c and model/chat_template.c against HF `tokenizers`.
//
// tests/fixtures/tokenizer_cases.json (written by make_tokenizer_fixtures.py) holds HF's results for
// the dolma2 tokenizer: encodings (add_special_tokens=False), decodings with and without
// skip_special, ChatML renderings with their encodings, encodings under edited copies of the
// cut-down tokenizer.json ("variants": merges as pairs, every Split behaviour, ByteLevel's own regex,
// added-token flags, ignore_merges), and the id count and hash of a >= 100 KB text. Every result
// must match exactly. Then every kind of bad input must fail with a message naming the file and
// the field (or the id), and the load and 100 KB encode are timed.
//
// Usage: test_tokenizer SOURCE_DIR. The tokenizer is the repository's copy,
// SOURCE_DIR/model/tokenizers/dolma2-tokenizer.json, or $HY_TOKENIZER when that is set.
#include "common/hy_error.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "model/tokenizer_utf8.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SHOWN = 6 };

static int n_checks, n_fail, n_shown;
static const hy_tokenizer *g_tok;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(int ok, const char *fmt, ...) {
    n_checks++;
    if (ok) return;
    n_fail++;
    if (n_shown++ >= MAX_SHOWN) return;
    va_list ap;
    va_start(ap, fmt);
    printf("  MISMATCH ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

// Text shown in a mismatch: escaped, at most ~70 characters.
static const char *shown(const char *s, size_t n) {
    static char buf[4][320];
    static int which;
    char *b = buf[which++ & 3];
    size_t w = 0;
    for (size_t i = 0; i < n && w < 280; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            w += (size_t)sprintf(b + w, "\\n");
        else if (c == '\t')
            w += (size_t)sprintf(b + w, "\\t");
        else if (c < 0x20 || c == 0x7f)
            w += (size_t)sprintf(b + w, "\\x%02x", c);
        else
            b[w++] = (char)c;
    }
    if (w >= 280) w += (size_t)sprintf(b + w, "...");
    b[w] = '\0';
    return b;
}

// Compares ids with a JSON array; on a difference describes the first differing position.
static int ids_equal(const int32_t *ids, int n, const json_t *want, char *why, size_t why_size) {
    int nw = (int)json_array_size(want);
    for (int i = 0; i < n || i < nw; i++) {
        long long w = i < nw ? json_integer_value(json_array_get(want, (size_t)i)) : -1;
        long long g = i < n ? ids[i] : -1;
        if (w != g) {
            snprintf(why, why_size, "first difference at %d: got %lld, HF %lld (lengths %d vs %d)", i, g, w, n, nw);
            return 0;
        }
    }
    return 1;
}

static void check_encode(const hy_tokenizer *t, const char *label, const json_t *c) {
    const json_t *text = json_object_get(c, "text");
    const char *s = json_string_value(text);
    size_t len = json_string_length(text);
    int32_t *ids;
    int n;
    if (hy_tokenizer_encode(t, s, len, &ids, &n)) {
        check(0, "%s encode \"%s\": error %s", label, shown(s, len), hy_last_error());
        return;
    }
    char why[160];
    int ok = ids_equal(ids, n, json_object_get(c, "ids"), why, sizeof why);
    check(ok, "%s encode \"%s\": %s", label, shown(s, len), why);
    free(ids);
}

static int run_encode(const json_t *cases) {
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) check_encode(g_tok, "", c);
    return (int)json_array_size(cases);
}

static int run_decode(const json_t *cases) {
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const json_t *jids = json_object_get(c, "ids"), *want = json_object_get(c, "text");
        int n = (int)json_array_size(jids), skip = json_is_true(json_object_get(c, "skip_special"));
        int32_t *ids = hy_malloc((size_t)(n ? n : 1) * sizeof *ids);
        for (int k = 0; k < n; k++) ids[k] = (int32_t)json_integer_value(json_array_get(jids, (size_t)k));
        char *text;
        size_t len;
        if (hy_tokenizer_decode(g_tok, ids, n, skip, &text, &len)) {
            check(0, "decode case %zu: error %s", i, hy_last_error());
        } else {
            int ok = len == json_string_length(want) && memcmp(text, json_string_value(want), len) == 0;
            check(ok, "decode case %zu (skip_special %d): got \"%s\", HF \"%s\"", i, skip, shown(text, len),
                  shown(json_string_value(want), json_string_length(want)));
            free(text);
        }
        free(ids);
    }
    return (int)json_array_size(cases);
}

static int run_chat(const json_t *cases) {
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        hy_chat_message *msgs;
        int n;
        if (hy_chat_messages_from_json(json_object_get(c, "messages"), "chat case", &msgs, &n)) {
            check(0, "chat case %zu: parse error %s", i, hy_last_error());
            continue;
        }
        int gen = json_is_true(json_object_get(c, "add_generation_prompt"));
        const json_t *want = json_object_get(c, "rendered");
        char *text;
        size_t len;
        if (hy_chat_render(msgs, n, gen, &text, &len) == 0) {
            int ok = len == json_string_length(want) && memcmp(text, json_string_value(want), len) == 0;
            check(ok, "chat case %zu: rendered \"%s\", expected \"%s\"", i, shown(text, len),
                  shown(json_string_value(want), json_string_length(want)));
            free(text);
        } else {
            check(0, "chat case %zu: render error %s", i, hy_last_error());
        }
        int32_t *ids;
        int n_ids;
        if (hy_chat_encode(g_tok, msgs, n, gen, &ids, &n_ids) == 0) {
            char why[160];
            int ok = ids_equal(ids, n_ids, json_object_get(c, "ids"), why, sizeof why);
            check(ok, "chat case %zu: ids %s", i, why);
            free(ids);
        } else {
            check(0, "chat case %zu: encode error %s", i, hy_last_error());
        }
        hy_chat_messages_free(msgs, n);
    }
    return (int)json_array_size(cases);
}

// ------------------------------------------------------------ edited copies of tokenizer.json

static char g_tmp_path[512];

// Writes doc to a fresh temporary file; returns its path (g_tmp_path).
static const char *write_temp(const json_t *doc, const char *raw) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_tmp_path, sizeof g_tmp_path, "%s/hy_tokenizer_test_XXXXXX", dir);
    int fd = mkstemp(g_tmp_path);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    close(fd);
    if (doc) {
        if (json_dump_file(doc, g_tmp_path, JSON_COMPACT) != 0) {
            fprintf(stderr, "cannot write %s\n", g_tmp_path);
            exit(2);
        }
    } else {
        FILE *f = fopen(g_tmp_path, "w");
        fputs(raw, f);
        fclose(f);
    }
    return g_tmp_path;
}

// The node reached from doc by the first depth elements of path (object keys and array indices).
static json_t *node_at(json_t *doc, const json_t *path, size_t depth) {
    json_t *node = doc;
    for (size_t k = 0; k < depth && node; k++) {
        const json_t *key = json_array_get(path, k);
        node = json_is_integer(key) ? json_array_get(node, (size_t)json_integer_value(key))
                                    : json_object_get(node, json_string_value(key));
    }
    return node;
}

static int apply_op(json_t *doc, const json_t *op) {
    const char *kind = json_string_value(json_object_get(op, "op"));
    if (kind && strcmp(kind, "merges_to_pairs") == 0) {
        json_t *merges = json_object_get(json_object_get(doc, "model"), "merges");
        size_t i;
        json_t *m;
        json_array_foreach(merges, i, m) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            json_t *pair = json_pack("[s#s]", s, (int)(sp - s), sp + 1);
            json_array_set_new(merges, i, pair);
        }
        return 0;
    }
    const json_t *path = json_object_get(op, "path");
    size_t depth = json_array_size(path);
    if (!kind || depth == 0) return -1;
    json_t *parent = node_at(doc, path, depth - 1);
    const json_t *last = json_array_get(path, depth - 1);
    if (strcmp(kind, "set") == 0) {
        json_t *value = json_deep_copy(json_object_get(op, "value"));
        if (json_is_integer(last)) return json_array_set_new(parent, (size_t)json_integer_value(last), value);
        return json_object_set_new(parent, json_string_value(last), value);
    }
    if (strcmp(kind, "delete") == 0) {
        if (json_is_integer(last)) return json_array_remove(parent, (size_t)json_integer_value(last));
        return json_object_del(parent, json_string_value(last));
    }
    return -1;
}

// Loads an edited copy of base; NULL (with the message in hy_last_error) when loading fails.
static hy_tokenizer *load_edited(const json_t *base, const json_t *ops) {
    json_t *doc = json_deep_copy(base);
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op) {
        if (apply_op(doc, op)) {
            fprintf(stderr, "bad fixture op %zu\n", i);
            exit(2);
        }
    }
    const char *path = write_temp(doc, NULL);
    json_decref(doc);
    hy_tokenizer *t = NULL;
    int rc = hy_tokenizer_load(&t, path);
    unlink(path);
    return rc ? NULL : t;
}

// The cut-down tokenizer.json the fixture's variants start from (mini_doc in the fixture script):
// the byte tokens, the first n_merges merges with their merged tokens, and the added tokens, all
// with their real ids. It loads in milliseconds, so each variant and bad-input case is cheap.
static json_t *mini_doc(const json_t *base, size_t n_merges) {
    json_t *doc = json_copy((json_t *)base);
    json_t *model = json_copy(json_object_get(base, "model"));
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    json_t *mini = json_object(), *kept = json_array();
    for (int b = 0; b < 256; b++) {
        char spelled[5] = {0};
        hy_utf8_encode_cp(hy_byte_to_cp((unsigned char)b), spelled);
        json_object_set(mini, spelled, json_object_get(vocab, spelled));
    }
    for (size_t i = 0; i < n_merges && i < json_array_size(merges); i++) {
        const char *m = json_string_value(json_array_get(merges, i));
        char joined[512];
        const char *sp = strchr(m, ' ');
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - m), m, sp + 1);
        json_object_set(mini, joined, json_object_get(vocab, joined));
        json_array_append(kept, json_array_get(merges, i));
    }
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(base, "added_tokens"), i, t)
        json_object_set(mini, json_string_value(json_object_get(t, "content")), json_object_get(t, "id"));
    json_object_set_new(model, "vocab", mini);
    json_object_set_new(model, "merges", kept);
    json_object_set_new(doc, "model", model);
    return doc;
}

static int run_variants(const json_t *variants, const json_t *base) {
    int n = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(variants, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        hy_tokenizer *t = load_edited(base, json_object_get(v, "ops"));
        if (!t) {
            check(0, "variant %s: load error %s", name, hy_last_error());
            continue;
        }
        char label[128];
        snprintf(label, sizeof label, "[%s]", name);
        size_t k;
        const json_t *c;
        json_array_foreach(json_object_get(v, "encode"), k, c) {
            check_encode(t, label, c);
            n++;
        }
        hy_tokenizer_free(t);
    }
    return n;
}

// ------------------------------------------------------------ bad input

static void expect_error(int rc, const char *what, const char *needle1, const char *needle2) {
    const char *msg = hy_last_error();
    int ok = rc == -1 && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
    check(ok, "%s: rc %d, message \"%s\" should contain \"%s\"%s%s", what, rc, msg, needle1, needle2 ? " and " : "",
          needle2 ? needle2 : "");
}

// ops_json is written with single quotes for readability; they become double quotes here.
static void expect_load_error(const json_t *base, const char *ops_json, const char *needle) {
    char text[512];
    snprintf(text, sizeof text, "%s", ops_json);
    for (char *p = text; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t jerr;
    json_t *ops = json_loads(text, 0, &jerr);
    if (!ops) {
        fprintf(stderr, "bad test ops %s: %s\n", ops_json, jerr.text);
        exit(2);
    }
    hy_error_clear();
    hy_tokenizer *t = load_edited(base, ops);
    expect_error(t ? 0 : -1, ops_json, g_tmp_path, needle);
    hy_tokenizer_free(t);
    json_decref(ops);
}

static int run_errors(const json_t *base) {
    int before = n_checks;
    hy_tokenizer *t = NULL;
    expect_error(hy_tokenizer_load(&t, "/nonexistent/dir/tokenizer.json"), "missing file",
                 "/nonexistent/dir/tokenizer.json", "cannot read");
    const char *path = write_temp(NULL, "{\"model\": {\"vocab\": [1, 2");
    expect_error(hy_tokenizer_load(&t, path), "invalid JSON", path, "invalid JSON");
    unlink(path);
    path = write_temp(NULL, "[1, 2, 3]");
    expect_error(hy_tokenizer_load(&t, path), "top-level array", path, "top level");
    unlink(path);

    static const char *const cases[][2] = {
        {"[{'op':'delete','path':['model','vocab']}]", "model.vocab: missing"},
        {"[{'op':'set','path':['model','vocab'],'value':[1,2]}]",
         "model.vocab: expected an object, found an array"},
        {"[{'op':'set','path':['model','vocab','hello'],'value':'x'}]", "model.vocab[\"hello\"]"},
        {"[{'op':'delete','path':['model','vocab','\\u0100']}]", "byte 0x00"},
        {"[{'op':'set','path':['model','vocab','zzz'],'value':0}]", "id 0 is given to both"},
        {"[{'op':'delete','path':['model','merges']}]", "model.merges: missing"},
        {"[{'op':'set','path':['model','merges'],'value':5}]",
         "model.merges: expected an array, found an integer"},
        {"[{'op':'set','path':['model','merges',3],'value':7}]", "model.merges[3]"},
        {"[{'op':'set','path':['model','merges',5],'value':'abc'}]", "model.merges[5]"},
        {"[{'op':'set','path':['model','merges',2],'value':'a b c'}]", "model.merges[2]"},
        {"[{'op':'set','path':['model','merges',4],'value':'zz\\u4e00\\u4e01 q'}]",
         "model.merges[4]: token"},
        {"[{'op':'set','path':['model','merges',4],'value':'q \\u0120'}]",
         "model.merges[4]: merged token"},
        {"[{'op':'merges_to_pairs'},{'op':'set','path':['model','merges',9],'value':'a b'}]",
         "model.merges[9]"},
        {"[{'op':'set','path':['model','type'],'value':'WordPiece'}]", "model.type"},
        {"[{'op':'set','path':['model','dropout'],'value':0.1}]", "model.dropout"},
        {"[{'op':'delete','path':['model']}]", "model: missing"},
        {"[{'op':'delete','path':['pre_tokenizer']}]", "pre_tokenizer: missing"},
        {"[{'op':'set','path':['pre_tokenizer','pretokenizers',0,'type'],'value':'Whitespace'}]",
         "pre_tokenizer.pretokenizers[0].type"},
        {"[{'op':'set','path':['pre_tokenizer','pretokenizers',0,'pattern','Regex'],'value':'(ab'}]",
         "pre_tokenizer.pretokenizers[0].pattern: pattern does not compile"},
        {"[{'op':'set','path':['pre_tokenizer','pretokenizers',0,'behavior'],'value':'Sideways'}]",
         "pre_tokenizer.pretokenizers[0].behavior"},
        {"[{'op':'delete','path':['pre_tokenizer','pretokenizers',0,'invert']}]",
         "pre_tokenizer.pretokenizers[0].invert"},
        {"[{'op':'delete','path':['pre_tokenizer','pretokenizers',1]}]", "ByteLevel must appear"},
        {"[{'op':'set','path':['normalizer'],'value':{'type':'NFC'}}]", "normalizer: type \"NFC\""},
        {"[{'op':'set','path':['decoder'],'value':{'type':'WordPiece'}}]", "decoder: type \"WordPiece\""},
        {"[{'op':'set','path':['decoder'],'value':null}]", "decoder: missing or null"},
        {"[{'op':'set','path':['post_processor'],'value':{'type':'BertProcessing'}}]", "post_processor"},
        {"[{'op':'set','path':['truncation'],'value':{'max_length':8}}]", "truncation"},
        {"[{'op':'set','path':['added_tokens',1,'content'],'value':5}]", "added_tokens[1].content"},
        {"[{'op':'set','path':['added_tokens',2,'special'],'value':'yes'}]", "added_tokens[2].special"},
        {"[{'op':'set','path':['added_tokens',3,'id'],'value':5}]", "added_tokens[3]"},
        {"[{'op':'set','path':['added_tokens'],'value':{}}]", "added_tokens: expected an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_load_error(base, cases[i][0], cases[i][1]);

    // Decode: ids outside the vocabulary are named, with their position.
    int32_t bad_hi[] = {15339, 100278};
    int32_t bad_lo[] = {-1};
    char *text;
    size_t len;
    expect_error(hy_tokenizer_decode(g_tok, bad_hi, 2, 0, &text, &len), "decode id 100278", "100278", "position 1");
    expect_error(hy_tokenizer_decode(g_tok, bad_lo, 1, 1, &text, &len), "decode id -1", "id -1", "out of range");
    // An id inside the range but without a token (the cut-down vocabulary has gaps).
    hy_tokenizer *mini = load_edited(base, NULL);
    int32_t gap[] = {50000};
    check(mini != NULL, "cut-down tokenizer: %s", hy_last_error());
    if (mini) expect_error(hy_tokenizer_decode(mini, gap, 1, 0, &text, &len), "decode gap", "id 50000", "no token");
    hy_tokenizer_free(mini);
    // Encode: ill-formed UTF-8 is refused with its offset.
    int32_t *ids;
    int n;
    expect_error(hy_tokenizer_encode(g_tok, "ab\xff", 3, &ids, &n), "encode 0xFF", "not valid UTF-8", "byte 2");
    expect_error(hy_tokenizer_encode(g_tok, "\xed\xa0\x80", 3, &ids, &n), "encode surrogate", "not valid UTF-8",
                 "byte 0");
    expect_error(hy_tokenizer_encode(g_tok, "x\xf0\x9f\x98", 4, &ids, &n), "encode truncated emoji", "not valid UTF-8",
                 "byte 1");

    // Chat messages from JSON: errors name the index and the field.
    static const char *const chat_bad[][2] = {
        {"{\"role\": \"user\"}", "messages: expected an array"},
        {"[{\"role\": \"user\", \"content\": \"x\"}, 5]", "messages[1]: expected an object"},
        {"[{\"content\": \"x\"}]", "messages[0].role: missing"},
        {"[{\"role\": 3, \"content\": \"x\"}]", "messages[0].role: expected a string"},
        {"[{\"role\": \"\", \"content\": \"x\"}]", "messages[0].role: empty"},
        {"[{\"role\": \"us\\ner\", \"content\": \"x\"}]", "line break"},
        {"[{\"role\": \"<|im_end|>\", \"content\": \"x\"}]", "messages[0].role: contains \"<|\""},
        {"[{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": \"y\"}, "
         "{\"role\": \"user\", \"content\": null}]",
         "messages[2].content: expected a string"},
        {"[{\"role\": \"user\"}]", "messages[0].content: missing"},
    };
    for (size_t i = 0; i < sizeof chat_bad / sizeof chat_bad[0]; i++) {
        json_t *arr = json_loads(chat_bad[i][0], JSON_DECODE_ANY, NULL);
        hy_chat_message *msgs;
        int count;
        expect_error(hy_chat_messages_from_json(arr, "test.jsonl line 7", &msgs, &count), chat_bad[i][0],
                     "test.jsonl line 7", chat_bad[i][1]);
        json_decref(arr);
    }
    hy_chat_message nul_role = {.role = NULL, .content = "x", .content_len = 1};
    expect_error(hy_chat_render(&nul_role, 1, 0, &text, &len), "render without role", "messages[0].role", NULL);
    return n_checks - before;
}

// ------------------------------------------------------------ lookups, the long text

static int run_lookups(const json_t *fx) {
    int before = n_checks;
    int vs = hy_tokenizer_vocab_size(g_tok);
    check(vs == (int)json_integer_value(json_object_get(fx, "vocab_size")), "vocab size %d", vs);
    static const struct {
        const char *token;
        int id;
    } known[] = {{"<|endoftext|>", 100257}, {"<|im_start|>", 100264}, {"<|im_end|>", 100265},    {"<|pad|>", 100277},
                 {"\xc4\xa0the", 279},      {"hello", 15339},         {"no-such-token-here", -1}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int id = hy_tokenizer_token_id(g_tok, known[i].token);
        check(id == known[i].id, "token_id(%s) = %d, expected %d", known[i].token, id, known[i].id);
    }
    check(hy_tokenizer_is_special(g_tok, 100265) && !hy_tokenizer_is_special(g_tok, 100266) &&
              !hy_tokenizer_is_special(g_tok, 279) && !hy_tokenizer_is_special(g_tok, 1 << 30),
          "is_special");
    return n_checks - before;
}

static uint64_t fnv1a_ids(const int32_t *ids, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

// Encodes the fixture's long text (every encode text plus "\n", repeated); returns seconds taken.
static double run_long(const json_t *fx) {
    const json_t *spec = json_object_get(fx, "long");
    size_t unit = 0, i;
    const json_t *c;
    json_array_foreach(json_object_get(fx, "encode"), i, c) unit += json_string_length(json_object_get(c, "text")) + 1;
    size_t repeats = (size_t)json_integer_value(json_object_get(spec, "repeats"));
    char *text = hy_malloc(unit * repeats + 1);
    size_t w = 0;
    for (size_t r = 0; r < repeats; r++) {
        json_array_foreach(json_object_get(fx, "encode"), i, c) {
            const json_t *s = json_object_get(c, "text");
            memcpy(text + w, json_string_value(s), json_string_length(s));
            w += json_string_length(s);
            text[w++] = '\n';
        }
    }
    check(w == (size_t)json_integer_value(json_object_get(spec, "bytes")), "long text has %zu bytes", w);
    int32_t *ids;
    int n;
    double t0 = now_s();
    int rc = hy_tokenizer_encode(g_tok, text, w, &ids, &n);
    double dt = now_s() - t0;
    if (rc) {
        check(0, "long text: error %s", hy_last_error());
    } else {
        char hash[32];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a_ids(ids, n));
        check(n == (int)json_integer_value(json_object_get(spec, "n_ids")) &&
                  strcmp(hash, json_string_value(json_object_get(spec, "fnv1a"))) == 0,
              "long text: %d ids hash %s, HF %lld ids hash %s", n, hash,
              json_integer_value(json_object_get(spec, "n_ids")), json_string_value(json_object_get(spec, "fnv1a")));
        free(ids);
    }
    printf("long text: %zu bytes -> %d ids in %.1f ms\n", w, rc ? 0 : n, 1e3 * dt);
    free(text);
    return dt;
}

static int section(const char *name, int n_cases, int fail_before) {
    printf("%-10s %4d cases, %d mismatches\n", name, n_cases, n_fail - fail_before);
    return n_cases;
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : ".";
    char tok_path[1024], fx_path[1024];
    snprintf(tok_path, sizeof tok_path, "%s/model/tokenizers/dolma2-tokenizer.json", src);
    if (getenv("HY_TOKENIZER"))
        snprintf(tok_path, sizeof tok_path, "%s", getenv("HY_TOKENIZER"));
    snprintf(fx_path, sizeof fx_path, "%s/tests/fixtures/tokenizer_cases.json", src);

    json_error_t jerr;
    json_t *fx = json_load_file(fx_path, JSON_ALLOW_NUL, &jerr);
    if (!fx) {
        printf("FAIL cannot load %s: %s\n", fx_path, jerr.text);
        return 1;
    }
    hy_tokenizer *tok;
    double t0 = now_s();
    if (hy_tokenizer_load(&tok, tok_path)) {
        printf("FAIL %s\n", hy_last_error());
        return 1;
    }
    double load_s = now_s() - t0;
    g_tok = tok;
    printf("loaded %s in %.0f ms (vocab size %d)\n", tok_path, 1e3 * load_s, hy_tokenizer_vocab_size(tok));

    int f = n_fail;
    section("lookups", run_lookups(fx), f);
    f = n_fail;
    section("encode", run_encode(json_object_get(fx, "encode")), f);
    f = n_fail;
    section("decode", run_decode(json_object_get(fx, "decode")), f);
    f = n_fail;
    section("chat", run_chat(json_object_get(fx, "chat")), f);
    json_t *full = json_load_file(tok_path, 0, &jerr);
    if (!full) {
        printf("FAIL cannot parse %s: %s\n", tok_path, jerr.text);
        return 1;
    }
    json_t *base = mini_doc(full, (size_t)json_integer_value(json_object_get(fx, "mini_merges")));
    json_decref(full);
    f = n_fail;
    section("variants", run_variants(json_object_get(fx, "variants"), base), f);
    f = n_fail;
    section("errors", run_errors(base), f);
    f = n_fail;
    run_long(fx);
    section("long", 1, f);

    json_decref(base);
    json_decref(fx);
    hy_tokenizer_free(tok);
    if (n_shown > MAX_SHOWN) printf("  (%d more mismatches not shown)\n", n_shown - MAX_SHOWN);
    printf("%s: %d checks, %d failed\n", n_fail ? "FAIL" : "ok", n_checks, n_fail);
    return n_fail != 0;
}
