// Tests for model/config.c: the released 7B config.json (tests/fixtures/config/olmo_hybrid_7b.json,
// written by transformers' own OlmoHybridConfig.save_pretrained), HF's default derivation, legacy
// layer names, the RoPE key precedence, eos forms, presets, save/load round trips, and every error
// case, whose message must name the file and the field.
//
// JSON in the cases is written with single quotes for readability; json() turns them into double
// quotes before parsing.
//
// Usage: test_config SOURCE_DIR [KEEP_DIR]  (KEEP_DIR: leave each saved config, and the text it was
// parsed from, in KEEP_DIR/<case>/ for tests/fixtures/check_config_hf.py to load in transformers).
#include "common/hy_error.h"
#include "model/config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_fail, n_pass;
static char g_src[1024];
static const char *g_keep;
static char g_tmp[256];

static void report(const char *name, int ok, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        printf("ok   %s\n", name);
        return;
    }
    n_fail++;
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s\n", name, detail);
}

static const char *json(const char *single_quoted) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s", single_quoted);
    for (char *p = buf; *p; p++)
        if (*p == '\'') *p = '"';
    return buf;
}

// The first field where a and b differ, or NULL.
static const char *config_diff(const hy_config *a, const hy_config *b) {
#define SAME(f) \
    if (memcmp(&a->f, &b->f, sizeof a->f) != 0) return #f
    SAME(vocab_size); SAME(hidden_size); SAME(intermediate_size); SAME(num_hidden_layers);
    SAME(num_attention_heads); SAME(num_key_value_heads); SAME(head_dim); SAME(max_position_embeddings);
    SAME(initializer_range); SAME(rms_norm_eps); SAME(use_cache); SAME(pad_token_id); SAME(bos_token_id);
    SAME(n_eos); SAME(tie_word_embeddings); SAME(rope); SAME(rope_theta); SAME(attention_bias);
    SAME(attention_dropout); SAME(linear_num_key_heads); SAME(linear_num_value_heads); SAME(linear_key_head_dim);
    SAME(linear_value_head_dim); SAME(linear_a_log_min); SAME(linear_a_log_max); SAME(linear_dt_min);
    SAME(linear_dt_max); SAME(linear_dt_init_floor); SAME(linear_conv_kernel_dim); SAME(linear_allow_neg_eigval);
#undef SAME
    if (strcmp(a->hidden_act, b->hidden_act) != 0) return "hidden_act";
    for (int i = 0; i < a->n_eos; i++)
        if (a->eos_token_ids[i] != b->eos_token_ids[i]) return "eos_token_ids";
    for (int i = 0; i < a->num_hidden_layers; i++)
        if (a->layer_types[i] != b->layer_types[i]) return "layer_types";
    return NULL;
}

static int pattern_is(const hy_config *c, const char *want) {  // "GGGA...": G = GDN, A = attention
    if ((int)strlen(want) != c->num_hidden_layers) return 0;
    for (int i = 0; want[i]; i++)
        if ((want[i] == 'A') != (c->layer_types[i] == HY_LAYER_ATTN)) return 0;
    return 1;
}

// Saves c to a temporary config.json, loads it back, and requires the same config. With KEEP_DIR,
// also leaves the file (and the source text, when there is one) for the transformers check.
static void check_save_roundtrip(const char *name, const hy_config *c, const char *source_text) {
    char path[512], label[256];
    snprintf(label, sizeof label, "save/load round trip: %s", name);
    snprintf(path, sizeof path, "%s/%s.json", g_tmp, name);
    hy_config back;
    if (hy_config_save(c, path) != 0 || hy_config_load(&back, path) != 0) {
        report(label, 0, "%s", hy_last_error());
        return;
    }
    const char *d = config_diff(c, &back);
    report(label, d == NULL, "field %s differs after reloading %s", d ? d : "", path);
    remove(path);
    if (!g_keep) return;
    char dir[1024], file[1100];
    snprintf(dir, sizeof dir, "%s/%s", g_keep, name);
    mkdir(g_keep, 0755);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/config.json", dir);
    if (hy_config_save(c, file) != 0) {
        report(label, 0, "%s", hy_last_error());
        return;
    }
    if (source_text) {
        snprintf(file, sizeof file, "%s/source.json", dir);
        FILE *f = fopen(file, "w");
        fputs(source_text, f);
        fclose(f);
    }
}

// Parses text; returns 0 and reports a failure if it does not parse.
static int parse_ok(const char *name, hy_config *c, const char *text) {
    if (hy_config_parse(c, text, "case/config.json") == 0) return 1;
    report(name, 0, "parse failed: %s", hy_last_error());
    return 0;
}

static void expect_error(const char *name, const char *text, const char *field, const char *problem) {
    hy_config c;
    hy_error_clear();
    int rc = hy_config_parse(&c, text, "bad/config.json");
    const char *m = hy_last_error();
    int ok = rc == -1 && strstr(m, "bad/config.json") && strstr(m, field) && strstr(m, problem);
    if (ok) {  // show the message: reading them is how their wording gets reviewed
        n_pass++;
        printf("ok   %s  [%s]\n", name, m);
        return;
    }
    report(name, 0, "rc=%d, message \"%s\" should name the file, \"%s\" and \"%s\"", rc, m, field, problem);
}

// ---- cases ----

static void test_released_7b(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/config/olmo_hybrid_7b.json", g_src);
    hy_config c, p;
    if (hy_config_load(&c, path) != 0) {
        report("load released 7B config.json", 0, "%s", hy_last_error());
        return;
    }
    int ok = c.vocab_size == 100352 && c.hidden_size == 3840 && c.intermediate_size == 11008 &&
             c.num_hidden_layers == 32 && c.num_attention_heads == 30 && c.num_key_value_heads == 30 &&
             c.head_dim == 128 && c.linear_num_key_heads == 30 && c.linear_num_value_heads == 30 &&
             c.linear_key_head_dim == 96 && c.linear_value_head_dim == 192 && c.linear_conv_kernel_dim == 4 &&
             c.linear_allow_neg_eigval && !c.rope && c.rms_norm_eps == 1e-6f && c.n_eos == 1 &&
             c.eos_token_ids[0] == 100257 && c.pad_token_id == 100277 && c.bos_token_id == -1 &&
             !c.tie_word_embeddings && c.max_position_embeddings == 65536 && !c.attention_bias &&
             strcmp(c.hidden_act, "silu") == 0 && pattern_is(&c, "GGGAGGGAGGGAGGGAGGGAGGGAGGGAGGGA") &&
             hy_config_n_gdn_layers(&c) == 24 && hy_config_conv_dim(&c) == 2 * 30 * 96 + 30 * 192;
    report("load released 7B config.json (NoPE, 30 heads, Dk 96, Dv 192)", ok, "values differ");
    if (hy_config_preset(&p, "olmo-hybrid-7b") != 0) {
        report("preset olmo-hybrid-7b", 0, "%s", hy_last_error());
        return;
    }
    const char *d = config_diff(&c, &p);
    report("preset olmo-hybrid-7b equals the released config.json", d == NULL, "field %s differs", d ? d : "");
    FILE *src = fopen(path, "rb");
    static char src_text[16384];
    size_t n_src = src ? fread(src_text, 1, sizeof src_text - 1, src) : 0;
    src_text[n_src] = '\0';
    if (src) fclose(src);
    check_save_roundtrip("released_7b", &c, src_text);

    // The saved file must carry what transformers needs, with floats in their short form.
    char out[512];
    snprintf(out, sizeof out, "%s/saved_7b.json", g_tmp);
    FILE *f = hy_config_save(&c, out) == 0 ? fopen(out, "rb") : NULL;
    char text[8192] = {0};
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    remove(out);
    ok = strstr(text, "\"model_type\": \"olmo_hybrid\"") && strstr(text, "\"OlmoHybridForCausalLM\"") &&
         strstr(text, "\"rope_theta\": null") && strstr(text, "\"rope_type\": \"default\"") &&
         (strstr(text, "\"rms_norm_eps\": 1e-06,") || strstr(text, "\"rms_norm_eps\": 1e-6,")) && strstr(text, "\"initializer_range\": 0.02,") &&
         strstr(text, "\"bos_token_id\": null") && strstr(text, "\"dtype\": \"float32\"") &&
         strstr(text, "\"full_attention\"");
    report("saved config.json has model_type, architectures, rope_parameters, short floats", ok, "got:\n%s", text);
}

static void test_defaults(void) {
    hy_config c;
    const char *src = json("{'model_type': 'olmo_hybrid'}");
    if (!parse_ok("defaults", &c, src)) return;
    int ok = c.vocab_size == 100352 && c.hidden_size == 3840 && c.intermediate_size == 11008 &&
             c.num_hidden_layers == 32 && c.num_attention_heads == 30 && c.num_key_value_heads == 30 &&
             c.head_dim == 128 && c.linear_num_key_heads == 30 && c.linear_num_value_heads == 30 &&
             c.linear_key_head_dim == 96 && c.linear_value_head_dim == 192 && c.rope && c.rope_theta == 10000.0f &&
             c.pad_token_id == 100277 && c.bos_token_id == -1 && c.n_eos == 1 && c.eos_token_ids[0] == 100257 &&
             c.use_cache && !c.tie_word_embeddings && c.initializer_range == 0.02f && c.rms_norm_eps == 1e-6f &&
             c.attention_dropout == 0.0f && c.linear_a_log_min == 0.0f && c.linear_a_log_max == 16.0f &&
             c.linear_dt_min == 0.001f && c.linear_dt_max == 0.1f && c.linear_dt_init_floor == 1e-4f &&
             c.linear_conv_kernel_dim == 4 && c.linear_allow_neg_eigval && c.max_position_embeddings == 65536 &&
             pattern_is(&c, "GGGAGGGAGGGAGGGAGGGAGGGAGGGAGGGA");
    report("config with only model_type: every HF default (RoPE on at 10000)", ok, "values differ");
    check_save_roundtrip("only_model_type", &c, src);

    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 2, 'hidden_size': 64, 'num_attention_heads': 4}");
    if (!parse_ok("L=2", &c, src)) return;
    ok = pattern_is(&c, "GA") && c.head_dim == 16 && c.num_key_value_heads == 4 && c.linear_num_key_heads == 4 &&
         c.linear_num_value_heads == 4 && c.linear_key_head_dim == 12 && c.linear_value_head_dim == 24;
    report("L=2: last layer forced to attention; Dk = int(0.75*64/4) = 12, Dv = 24", ok,
           "head_dim %d Dk %d Dv %d", c.head_dim, c.linear_key_head_dim, c.linear_value_head_dim);
    check_save_roundtrip("two_layers", &c, src);

    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 3, 'hidden_size': 64, 'num_attention_heads': 4}");
    ok = parse_ok("L=3", &c, src) && pattern_is(&c, "GGA");
    report("L=3: pattern GGA", ok, "wrong layer pattern");
    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 5, 'hidden_size': 64, 'num_attention_heads': 4}");
    ok = parse_ok("L=5", &c, src) && pattern_is(&c, "GGGAG");
    report("L=5: pattern GGGAG (attention at i % 4 == 3 only)", ok, "wrong layer pattern");

    // H_v defaults to the attention heads, not to H_k; Dk truncates 0.75 * 64 / 5 = 9.6 to 9.
    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 4, 'hidden_size': 64, 'num_attention_heads': 5,"
               " 'head_dim': 16, 'linear_num_key_heads': 5, 'num_key_value_heads': 1}");
    ok = parse_ok("derived GDN heads", &c, src) && c.linear_num_value_heads == 5 && c.linear_key_head_dim == 9 &&
         c.linear_value_head_dim == 18 && c.head_dim == 16 && c.num_key_value_heads == 1;
    report("explicit head_dim with C % heads != 0; Dk = int(9.6) = 9; H_v = heads", ok,
           "H_v %d Dk %d Dv %d head_dim %d", c.linear_num_value_heads, c.linear_key_head_dim, c.linear_value_head_dim,
           c.head_dim);
    check_save_roundtrip("truncated_dk", &c, src);

    // Nulls mean "derive", exactly like absent keys.
    src = json("{'model_type': 'olmo_hybrid', 'num_key_value_heads': null, 'linear_key_head_dim': null,"
               " 'layer_types': null, 'attention_dropout': null, 'head_dim': null}");
    ok = parse_ok("nulls", &c, src) && c.num_key_value_heads == 30 && c.linear_key_head_dim == 96 && c.head_dim == 128 &&
         pattern_is(&c, "GGGAGGGAGGGAGGGAGGGAGGGAGGGAGGGA") && c.attention_dropout == 0.0f;
    report("null derived fields behave as absent", ok, "values differ");

    // hy_config_derive_defaults on a config built in code gives what parsing gives.
    hy_config from_json, built;
    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 6, 'hidden_size': 96, 'num_attention_heads': 6,"
               " 'vocab_size': 512, 'pad_token_id': 1, 'eos_token_id': 2}");
    if (!parse_ok("derive from code", &from_json, src)) return;
    hy_config_preset(&built, "olmo-hybrid-7b");  // start from the table defaults, then reset the derived ones
    built.num_hidden_layers = 6, built.hidden_size = 96, built.num_attention_heads = 6, built.vocab_size = 512;
    built.pad_token_id = 1, built.eos_token_ids[0] = 2, built.rope = true, built.rope_theta = 10000.0f;
    built.num_key_value_heads = built.linear_num_key_heads = built.linear_num_value_heads = 0;
    built.linear_key_head_dim = built.linear_value_head_dim = built.head_dim = 0;
    memset(built.layer_types, 0, sizeof built.layer_types);
    hy_config_derive_defaults(&built, 0);
    const char *d = config_diff(&from_json, &built);
    report("hy_config_derive_defaults matches parsing", d == NULL, "field %s differs", d ? d : "");

    src = json("{'model_type': 'olmo_hybrid', 'transformers_version': '5.17.0', 'some_future_field': {'x': [1]},"
               " 'torch_dtype': 'bfloat16'}");
    report("unknown extra fields are ignored", parse_ok("extras", &c, src) && c.hidden_size == 3840, "");
}

static void test_layer_types(void) {
    hy_config c;
    const char *src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 5,"
                           " 'layer_types': ['mamba', 'conv', 'attention', 'linear_attention', 'full_attention']}");
    int ok = parse_ok("legacy", &c, src) && pattern_is(&c, "GGAGA");
    report("legacy layer names: mamba, conv -> linear; attention -> full", ok, "wrong kinds");
    check_save_roundtrip("legacy_layer_names", &c, src);
    src = json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 4,"
               " 'layer_types': ['full_attention', 'linear_attention', 'full_attention', 'linear_attention']}");
    ok = parse_ok("explicit", &c, src) && pattern_is(&c, "AGAG");
    report("explicit layer_types kept as given", ok, "wrong kinds");
}

static void test_rope(void) {
    struct {
        const char *name, *extra;
        bool rope;
        float theta;
    } cases[] = {
        {"rope_parameters.rope_theta null: NoPE", "'rope_parameters': {'rope_theta': null, 'rope_type': 'default'}",
         false, 0},
        {"rope_parameters.rope_theta set", "'rope_parameters': {'rope_theta': 500000, 'rope_type': 'default'}", true,
         500000},
        {"no RoPE keys at all: HF default theta 10000", "'vocab_size': 100352", true, 10000},
        {"rope_parameters null: theta 10000", "'rope_parameters': null", true, 10000},
        {"top-level rope_theta", "'rope_theta': 500000.0", true, 500000},
        {"top-level rope_theta null: NoPE", "'rope_theta': null", false, 0},
        {"rope_parameters without theta takes top-level rope_theta",
         "'rope_parameters': {'rope_type': 'default'}, 'rope_theta': 1000000", true, 1000000},
        {"rope_parameters theta (null) wins over top-level rope_theta",
         "'rope_parameters': {'rope_theta': null}, 'rope_theta': 500000", false, 0},
        {"legacy rope_scaling wins over rope_parameters",
         "'rope_scaling': {'type': 'default', 'rope_theta': 123.0}, 'rope_parameters': {'rope_theta': 5.0}", true, 123},
        {"empty rope_scaling falls back to rope_parameters",
         "'rope_scaling': {}, 'rope_parameters': {'rope_theta': 77.0}", true, 77},
        {"non-default rope_type ignored under NoPE", "'rope_parameters': {'rope_theta': null, 'rope_type': 'yarn'}",
         false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{'model_type': 'olmo_hybrid', %s}", cases[i].extra);
        hy_config c;
        const char *src = json(text);
        int ok = parse_ok(cases[i].name, &c, src) && c.rope == cases[i].rope && (!c.rope || c.rope_theta == cases[i].theta);
        report(cases[i].name, ok, "rope %d theta %g", c.rope, c.rope_theta);
        if (ok && i < 2) check_save_roundtrip(i == 0 ? "rope_null" : "rope_500k", &c, src);
    }
}

static void test_token_ids(void) {
    hy_config c;
    const char *src = json("{'model_type': 'olmo_hybrid', 'eos_token_id': [100257, 100265], 'pad_token_id': null,"
                           " 'bos_token_id': 100257}");
    int ok = parse_ok("eos list", &c, src) && c.n_eos == 2 && c.eos_token_ids[0] == 100257 &&
             c.eos_token_ids[1] == 100265 && c.pad_token_id == -1 && c.bos_token_id == 100257;
    report("eos_token_id list; pad null -> -1; bos set", ok, "n_eos %d pad %d bos %d", c.n_eos, c.pad_token_id,
           c.bos_token_id);
    check_save_roundtrip("eos_list", &c, src);
    src = json("{'model_type': 'olmo_hybrid', 'eos_token_id': null}");
    ok = parse_ok("eos null", &c, src) && c.n_eos == 0;
    report("eos_token_id null -> no eos", ok, "n_eos %d", c.n_eos);
    check_save_roundtrip("eos_null", &c, src);
    src = json("{'model_type': 'olmo_hybrid', 'eos_token_id': []}");
    report("eos_token_id [] -> no eos", parse_ok("eos []", &c, src) && c.n_eos == 0, "n_eos %d", c.n_eos);
}

static void test_presets(void) {
    hy_config c;
    int ok = hy_config_preset(&c, "tiny") == 0 && c.vocab_size == 256 && c.hidden_size == 64 &&
             c.intermediate_size == 128 && c.num_hidden_layers == 4 && c.num_attention_heads == 4 &&
             c.num_key_value_heads == 2 && c.head_dim == 16 && c.linear_num_key_heads == 2 &&
             c.linear_num_value_heads == 4 && c.linear_key_head_dim == 16 && c.linear_value_head_dim == 32 && !c.rope &&
             c.linear_allow_neg_eigval && c.n_eos == 1 && c.eos_token_ids[0] == 254 && c.pad_token_id == 255 &&
             pattern_is(&c, "GGGA");
    report("preset tiny", ok, "%s", hy_last_error());
    if (ok) check_save_roundtrip("preset_tiny", &c, NULL);
    ok = hy_config_preset(&c, "tiny-dolma2") == 0 && c.vocab_size == 100352 && c.hidden_size == 64 &&
         c.num_hidden_layers == 4 && c.eos_token_ids[0] == 100257 && c.pad_token_id == 100277 && !c.rope &&
         pattern_is(&c, "GGGA");
    report("preset tiny-dolma2", ok, "%s", hy_last_error());
    if (ok) check_save_roundtrip("preset_tiny_dolma2", &c, NULL);
    hy_error_clear();
    int rc = hy_config_preset(&c, "huge");
    report("unknown preset lists the known ones",
           rc == -1 && strstr(hy_last_error(), "'huge'") && strstr(hy_last_error(), "tiny, tiny-dolma2, olmo-hybrid-7b"),
           "rc=%d: %s", rc, hy_last_error());
}

static void test_errors(void) {
    expect_error("missing model_type", json("{'hidden_size': 64}"), "'model_type'", "is missing");
    expect_error("wrong model_type", json("{'model_type': 'llama'}"), "'model_type'", "expected \"olmo_hybrid\"");
    expect_error("invalid JSON", "{\"model_type\": \"olmo_hybrid\", \"hidden_size\": 64,", "config.json",
                 "not valid JSON");
    expect_error("not an object", "[1, 2]", "config.json", "not a JSON object");
    expect_error("duplicate key", json("{'model_type': 'olmo_hybrid', 'hidden_size': 64, 'hidden_size': 128}"),
                 "hidden_size", "duplicate");
    expect_error("string for an int", json("{'model_type': 'olmo_hybrid', 'hidden_size': 'abc'}"), "'hidden_size'",
                 "must be a positive integer, got \"abc\"");
    expect_error("float for an int", json("{'model_type': 'olmo_hybrid', 'hidden_size': 64.0}"), "'hidden_size'",
                 "must be a positive integer, got 64.0");
    expect_error("zero width", json("{'model_type': 'olmo_hybrid', 'hidden_size': 0}"), "'hidden_size'",
                 "must be a positive integer, got 0");
    expect_error("bool field", json("{'model_type': 'olmo_hybrid', 'use_cache': 'yes'}"), "'use_cache'",
                 "must be true or false");
    expect_error("float out of range", json("{'model_type': 'olmo_hybrid', 'initializer_range': 2}"),
                 "'initializer_range'", "in [0, 1]");
    expect_error("eps not positive", json("{'model_type': 'olmo_hybrid', 'rms_norm_eps': 0}"), "'rms_norm_eps'",
                 "> 0");
    expect_error("negative token id", json("{'model_type': 'olmo_hybrid', 'pad_token_id': -5}"), "'pad_token_id'",
                 "non-negative integer or null");
    expect_error("token id beyond vocab", json("{'model_type': 'olmo_hybrid', 'vocab_size': 256}"), "'pad_token_id'",
                 "outside the vocabulary");
    expect_error("eos of the wrong type", json("{'model_type': 'olmo_hybrid', 'eos_token_id': 'x'}"), "'eos_token_id'",
                 "must be an integer");
    expect_error("eos list too long", json("{'model_type': 'olmo_hybrid', 'eos_token_id': [1,2,3,4,5,6,7,8,9]}"),
                 "'eos_token_id'", "at most 8");
    expect_error("heads not divisible by kv heads",
                 json("{'model_type': 'olmo_hybrid', 'num_attention_heads': 30, 'num_key_value_heads': 7}"),
                 "'num_key_value_heads'", "must divide num_attention_heads (30)");
    expect_error("H_v not a multiple of H_k",
                 json("{'model_type': 'olmo_hybrid', 'linear_num_key_heads': 4, 'linear_num_value_heads': 6}"),
                 "'linear_num_value_heads'", "must be a multiple of linear_num_key_heads (4)");
    expect_error("hidden_size not divisible by heads",
                 json("{'model_type': 'olmo_hybrid', 'hidden_size': 100, 'num_attention_heads': 30}"), "'hidden_size'",
                 "must be divisible by num_attention_heads");
    expect_error("derived Dk of zero",
                 json("{'model_type': 'olmo_hybrid', 'hidden_size': 4, 'num_attention_heads': 4,"
                      " 'linear_num_key_heads': 4}"),
                 "'linear_key_head_dim'", "must be positive");
    expect_error("hidden_act not silu", json("{'model_type': 'olmo_hybrid', 'hidden_act': 'gelu'}"), "'hidden_act'",
                 "only \"silu\"");
    expect_error("attention_bias true", json("{'model_type': 'olmo_hybrid', 'attention_bias': true}"),
                 "'attention_bias'", "not supported");
    expect_error("conv kernel 0", json("{'model_type': 'olmo_hybrid', 'linear_conv_kernel_dim': 0}"),
                 "'linear_conv_kernel_dim'", "positive integer");
    expect_error("too many layers", json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 300}"),
                 "'num_hidden_layers'", "at most 256");
    expect_error("unknown layer type",
                 json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 4,"
                      " 'layer_types': ['linear_attention', 'moe', 'linear_attention', 'full_attention']}"),
                 "'layer_types'", "entry 1 is unknown layer type \"moe\"");
    expect_error("layer type not a string",
                 json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 2, 'layer_types': ['linear_attention', 3]}"),
                 "'layer_types'", "entry 1 must be a string, got 3");
    expect_error("layer_types length mismatch",
                 json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 4,"
                      " 'layer_types': ['linear_attention', 'full_attention']}"),
                 "'layer_types'", "has 2 entries but num_hidden_layers is 4");
    expect_error("no linear layer (L=1)", json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 1}"),
                 "'layer_types'", "no \"linear_attention\" layer");
    expect_error("no attention layer",
                 json("{'model_type': 'olmo_hybrid', 'num_hidden_layers': 2,"
                      " 'layer_types': ['linear_attention', 'mamba']}"),
                 "'layer_types'", "no \"full_attention\" layer");
    expect_error("rope_parameters of the wrong type", json("{'model_type': 'olmo_hybrid', 'rope_parameters': 'abc'}"),
                 "'rope_parameters'", "an object or null");
    expect_error("rope_theta of the wrong type",
                 json("{'model_type': 'olmo_hybrid', 'rope_parameters': {'rope_theta': 'big'}}"),
                 "'rope_parameters.rope_theta'", "a positive number or null");
    expect_error("unsupported rope_type",
                 json("{'model_type': 'olmo_hybrid', 'rope_parameters': {'rope_theta': 10000, 'rope_type': 'yarn',"
                      " 'factor': 4.0}}"),
                 "'rope_parameters.rope_type'", "only \"default\" RoPE is supported");
    expect_error("unsupported legacy rope_scaling type",
                 json("{'model_type': 'olmo_hybrid', 'rope_theta': 10000, 'rope_scaling': {'type': 'linear',"
                      " 'factor': 2.0}}"),
                 "'rope_scaling.rope_type'", "only \"default\" RoPE is supported");

    // hy_config_load names the path it was given.
    char path[512];
    snprintf(path, sizeof path, "%s/broken_config.json", g_tmp);
    FILE *f = fopen(path, "w");
    fputs(json("{'model_type': 'olmo_hybrid', 'num_attention_heads': 'thirty'}"), f);
    fclose(f);
    hy_config c;
    hy_error_clear();
    int rc = hy_config_load(&c, path);
    report("hy_config_load errors name the path",
           rc == -1 && strstr(hy_last_error(), "broken_config.json: field 'num_attention_heads'"), "rc=%d: %s", rc,
           hy_last_error());
    remove(path);
    rc = hy_config_load(&c, "/nonexistent/config.json");
    report("hy_config_load of a missing file",
           rc == -1 && strstr(hy_last_error(), "/nonexistent/config.json: cannot open"), "rc=%d: %s", rc,
           hy_last_error());

    // Saving refuses what loading would reject.
    hy_config_preset(&c, "tiny");
    c.num_key_value_heads = 3;
    snprintf(path, sizeof path, "%s/invalid.json", g_tmp);
    rc = hy_config_save(&c, path);
    report("hy_config_save refuses an invalid config",
           rc == -1 && strstr(hy_last_error(), "'num_key_value_heads'") && access(path, F_OK) != 0, "rc=%d: %s", rc,
           hy_last_error());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOURCE_DIR [KEEP_DIR]\n", argv[0]);
        return 2;
    }
    snprintf(g_src, sizeof g_src, "%s", argv[1]);
    g_keep = argc > 2 ? argv[2] : NULL;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hy_test_cfg_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_released_7b();
    test_defaults();
    test_layer_types();
    test_rope();
    test_token_ids();
    test_presets();
    test_errors();
    rmdir(g_tmp);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
