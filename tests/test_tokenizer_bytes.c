// Tests for model/tokenizer_bytes.c: the byte-level demo tokenizer.json, written into a temporary
// directory, loaded by model/tokenizer.c and compared with HF `tokenizers`.
//
// tests/fixtures/bytes_tokenizer.json (make_bytes_tokenizer_fixture.py, run on a file this code
// wrote) holds HF's encodings (add_special_tokens=False) of texts with unicode, emoji, control
// characters, newlines, digits and special tokens inside, and HF's decodings of those ids and of
// crafted lists (cut characters, ill-formed bytes, specials) with and without skip_special. Every
// result must match exactly. Independently of HF: the file has dolma2's normalizer, pre_tokenizer,
// decoder and model options; token b is byte b; text without specials encodes to its UTF-8 bytes
// and every text round-trips; the `demo` preset's eos, pad and vocab_size agree with the tokenizer;
// an unwritable path fails with a message naming it.
//
// Usage: test_tokenizer_bytes SOURCE_DIR.
#include "check.h"
#include "common/hy_error.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/tokenizer_bytes.h"
#include "model/tokenizer_utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A broken encoder fails most of the cases alike: the first MAX_SHOWN failures are printed, the
// rest only counted.
enum { MAX_SHOWN = 6 };
#define CHECK_CAPPED(cond, ...)                      \
    do {                                             \
        const int ok_ = !!(cond);                    \
        if (ok_ || check_failures < MAX_SHOWN) {     \
            CHECK(ok_, __VA_ARGS__);                 \
        } else {                                     \
            check_count++;                           \
            check_failures++;                        \
        }                                            \
    } while (0)

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
        else if (c < 0x20 || c == 0x7f)
            w += (size_t)sprintf(b + w, "\\x%02x", c);
        else
            b[w++] = (char)c;
    }
    if (w >= 280) w += (size_t)sprintf(b + w, "...");
    b[w] = '\0';
    return b;
}

static int32_t *ids_from_json(const json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *ids = hy_malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int k = 0; k < *n; k++) ids[k] = (int32_t)json_integer_value(json_array_get(arr, (size_t)k));
    return ids;
}

// First position where the id lists differ (counting a missing id as -1), or -1 when they match.
static int first_difference(const int32_t *a, int na, const int32_t *b, int nb, long long *ga, long long *gb) {
    for (int i = 0; i < na || i < nb; i++) {
        *ga = i < na ? a[i] : -1;
        *gb = i < nb ? b[i] : -1;
        if (*ga != *gb) return i;
    }
    return -1;
}

// ------------------------------------------------------------ the file itself

// The written file against dolma2's: the same pipeline around a different vocabulary.
static int run_structure(const char *path, const char *dolma2_path) {
    int before = check_count;
    json_error_t jerr;
    json_t *ours = json_load_file(path, 0, &jerr), *ref = json_load_file(dolma2_path, 0, &jerr);
    CHECK_CAPPED(ours && ref, "cannot parse %s or %s: %s", path, dolma2_path, jerr.text);
    if (!ours || !ref) {
        json_decref(ours);
        json_decref(ref);
        return check_count - before;
    }
    static const char *const same[] = {"version", "truncation", "padding", "normalizer", "pre_tokenizer",
                                       "post_processor", "decoder"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        CHECK_CAPPED(json_equal(json_object_get(ours, same[i]), json_object_get(ref, same[i])),
                     "%s differs from dolma2's", same[i]);
    const json_t *model = json_object_get(ours, "model"), *ref_model = json_object_get(ref, "model");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)ref_model, key, val) {
        if (strcmp(key, "vocab") == 0 || strcmp(key, "merges") == 0) continue;
        CHECK_CAPPED(json_equal(json_object_get(model, key), val), "model.%s differs from dolma2's", key);
    }
    CHECK_CAPPED(json_array_size(json_object_get(model, "merges")) == 0, "model.merges is not empty");
    CHECK_CAPPED(json_object_size(json_object_get(model, "vocab")) == HY_BYTES_N_TOKENS, "model.vocab has %zu entries",
                 json_object_size(json_object_get(model, "vocab")));
    json_decref(ours);
    json_decref(ref);
    return check_count - before;
}

static int run_lookups(const hy_tokenizer *t, const json_t *fx) {
    int before = check_count;
    int vs = hy_tokenizer_vocab_size(t);
    CHECK_CAPPED(vs == HY_BYTES_N_TOKENS && vs == (int)json_integer_value(json_object_get(fx, "vocab_size")),
                 "vocab size %d, HF %lld", vs, json_integer_value(json_object_get(fx, "vocab_size")));
    static const struct {
        const char *token;
        int id;
    } specials[] = {{"<|endoftext|>", HY_BYTES_ENDOFTEXT},
                    {"<|pad|>", HY_BYTES_PAD},
                    {"<|im_start|>", HY_BYTES_IM_START},
                    {"<|im_end|>", HY_BYTES_IM_END}};
    const json_t *hf = json_object_get(fx, "specials");
    CHECK_CAPPED(json_object_size(hf) == sizeof specials / sizeof *specials, "HF lists %zu specials",
                 json_object_size(hf));
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) {
        int id = hy_tokenizer_token_id(t, specials[i].token);
        long long hf_id = json_integer_value(json_object_get(hf, specials[i].token));
        CHECK_CAPPED(id == specials[i].id && id == hf_id && hy_tokenizer_is_special(t, id),
                     "%s: id %d, HF %lld, want %d", specials[i].token, id, hf_id, specials[i].id);
    }
    int bytes_ok = 1;
    for (int b = 0; b < 256; b++) {
        char spelled[5];
        int n = hy_utf8_encode_cp(hy_byte_to_cp((unsigned char)b), spelled);
        spelled[n] = '\0';
        int id = hy_tokenizer_token_id(t, spelled);
        if (id != b || hy_tokenizer_is_special(t, b)) {
            CHECK_CAPPED(0, "byte 0x%02X: token \"%s\" has id %d", b, spelled, id);
            bytes_ok = 0;
        }
    }
    CHECK_CAPPED(bytes_ok, "every byte token's id is its byte value");
    return check_count - before;
}

// ------------------------------------------------------------ against HF

static int run_encode(const hy_tokenizer *t, const json_t *cases) {
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const json_t *text = json_object_get(c, "text");
        const char *s = json_string_value(text);
        size_t len = json_string_length(text);
        int32_t *ids, *want;
        int n, n_want;
        if (hy_tokenizer_encode(t, s, len, &ids, &n)) {
            CHECK_CAPPED(0, "encode \"%s\": error %s", shown(s, len), hy_last_error());
            continue;
        }
        want = ids_from_json(json_object_get(c, "ids"), &n_want);
        long long got = 0, hf = 0;
        int at = first_difference(ids, n, want, n_want, &got, &hf);
        CHECK_CAPPED(at < 0, "encode \"%s\": first difference at %d: got %lld, HF %lld (lengths %d vs %d)",
                     shown(s, len), at, got, hf, n, n_want);
        // Without "<|" no special token can be in the text, so the ids must be its bytes.
        if (!memmem(s, len, "<|", 2)) {
            int is_bytes = n == (int)len;
            for (int k = 0; is_bytes && k < n; k++) is_bytes = ids[k] == (unsigned char)s[k];
            CHECK_CAPPED(is_bytes, "encode \"%s\": ids are not the UTF-8 bytes", shown(s, len));
        }
        char *back;
        size_t back_len;
        if (hy_tokenizer_decode(t, ids, n, 0, &back, &back_len) == 0) {
            CHECK_CAPPED(back_len == len && memcmp(back, s, len) == 0, "round trip of \"%s\" gives \"%s\"",
                         shown(s, len), shown(back, back_len));
            free(back);
        } else {
            CHECK_CAPPED(0, "round trip of \"%s\": error %s", shown(s, len), hy_last_error());
        }
        free(want);
        free(ids);
    }
    return (int)json_array_size(cases);
}

static int run_decode(const hy_tokenizer *t, const json_t *cases) {
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const json_t *want = json_object_get(c, "text");
        int n, skip = json_is_true(json_object_get(c, "skip_special"));
        int32_t *ids = ids_from_json(json_object_get(c, "ids"), &n);
        char *text;
        size_t len;
        if (hy_tokenizer_decode(t, ids, n, skip, &text, &len)) {
            CHECK_CAPPED(0, "decode case %zu: error %s", i, hy_last_error());
        } else {
            CHECK_CAPPED(len == json_string_length(want) && memcmp(text, json_string_value(want), len) == 0,
                         "decode case %zu (skip_special %d): \"%s\", HF \"%s\"", i, skip, shown(text, len),
                         shown(json_string_value(want), json_string_length(want)));
            free(text);
        }
        free(ids);
    }
    int32_t past = HY_BYTES_N_TOKENS;
    char *text;
    size_t len;
    hy_error_clear();
    CHECK_CAPPED(hy_tokenizer_decode(t, &past, 1, 0, &text, &len) == -1 && strstr(hy_last_error(), "id 260"),
                 "decoding id 260 (past the vocabulary) must fail naming it: %s", hy_last_error());
    return (int)json_array_size(cases) + 1;
}

// ------------------------------------------------------------ the demo preset, errors

static int run_preset(const hy_tokenizer *t) {
    int before = check_count;
    hy_config c;
    if (hy_config_preset(&c, "demo")) {
        CHECK_CAPPED(0, "preset demo: %s", hy_last_error());
        return check_count - before;
    }
    CHECK_CAPPED(c.vocab_size == 264 && c.vocab_size % 8 == 0 && c.vocab_size >= hy_tokenizer_vocab_size(t),
                 "preset demo: vocab_size %d", c.vocab_size);
    CHECK_CAPPED(c.n_eos == 2 && c.eos_token_ids[0] == hy_tokenizer_token_id(t, "<|endoftext|>") &&
                     c.eos_token_ids[1] == hy_tokenizer_token_id(t, "<|im_end|>"),
                 "preset demo: eos ids (n %d) are not <|endoftext|>, <|im_end|>", c.n_eos);
    CHECK_CAPPED(c.pad_token_id == hy_tokenizer_token_id(t, "<|pad|>") && c.bos_token_id == -1,
                 "preset demo: pad %d, bos %d", c.pad_token_id, c.bos_token_id);
    CHECK_CAPPED(c.hidden_size == 64 && c.num_hidden_layers == 4 && c.max_position_embeddings == 2048,
                 "preset demo: C %d, L %d, max positions %d", c.hidden_size, c.num_hidden_layers,
                 c.max_position_embeddings);
    return check_count - before;
}

static int run_errors(const char *dir) {
    int before = check_count;
    char path[1100];
    snprintf(path, sizeof path, "%s/no-such-dir/tokenizer.json", dir);
    hy_error_clear();
    CHECK_CAPPED(hy_tokenizer_bytes_write(path) == -1 && strstr(hy_last_error(), "no-such-dir"),
                 "writing into a missing directory must fail naming it: %s", hy_last_error());
    return check_count - before;
}

static int section(const char *name, int n_cases, int fail_before) {
    printf("%-10s %4d cases, %d mismatches\n", name, n_cases, check_failures - fail_before);
    return n_cases;
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : ".";
    char fx_path[1024], dolma2_path[1024], dir[] = "/tmp/hy_tokbytes_XXXXXX", tok_path[1100];
    snprintf(fx_path, sizeof fx_path, "%s/tests/fixtures/bytes_tokenizer.json", src);
    snprintf(dolma2_path, sizeof dolma2_path, "%s/model/tokenizers/dolma2-tokenizer.json", src);
    if (!mkdtemp(dir)) {
        printf("FAIL cannot create a temporary directory\n");
        return 1;
    }
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);

    json_error_t jerr;
    json_t *fx = json_load_file(fx_path, JSON_ALLOW_NUL, &jerr);
    if (!fx) {
        printf("FAIL cannot load %s: %s\n", fx_path, jerr.text);
        return 1;
    }
    hy_tokenizer *tok = NULL;
    if (hy_tokenizer_bytes_write(tok_path) || hy_tokenizer_load(&tok, tok_path)) {
        printf("FAIL %s\n", hy_last_error());
        return 1;
    }
    printf("wrote and loaded %s (vocab size %d)\n", tok_path, hy_tokenizer_vocab_size(tok));

    int f = check_failures;
    section("structure", run_structure(tok_path, dolma2_path), f);
    f = check_failures;
    section("lookups", run_lookups(tok, fx), f);
    f = check_failures;
    section("encode", run_encode(tok, json_object_get(fx, "encode")), f);
    f = check_failures;
    section("decode", run_decode(tok, json_object_get(fx, "decode")), f);
    f = check_failures;
    section("preset", run_preset(tok), f);
    f = check_failures;
    section("errors", run_errors(dir), f);

    hy_tokenizer_free(tok);
    json_decref(fx);
    remove(tok_path);
    rmdir(dir);
    if (check_failures > MAX_SHOWN) printf("  (%d more failures not shown)\n", check_failures - MAX_SHOWN);
    return check_summary("test_tokenizer_bytes");
}
