// OLMo Hybrid config.json: parse, validate, save, presets (see config.h).
//
// The plain numeric and boolean fields live in one table (name, kind, HF default, range) that drives
// defaults, parsing, range checks and saving alike, so a field cannot be parsed but forgotten on
// save. Fields with structure of their own (model_type, hidden_act, eos_token_id, layer_types, the
// RoPE keys) are handled by name below.
//
// HF semantics reproduced on purpose: a field absent from config.json takes the class default;
// fields HF derives (kv heads, GDN heads and head dims, head_dim) are stored as 0 until
// hy_config_derive_defaults fills them, so "absent" and "null" behave the same; unknown keys are
// ignored, as HF ignores them. The only key we require is model_type == "olmo_hybrid": without it
// any JSON object would silently become a 7B model made of defaults.
//
// RoPE follows HF's convert_rope_params_to_dict: a non-empty legacy `rope_scaling` wins over
// `rope_parameters`; inside it, a `rope_theta` key (null = NoPE) wins over a top-level `rope_theta`
// key; with neither, theta = 10000 and RoPE is on. Only rope_type "default" is implemented.
#include "model/config.h"

#include "common/hy_error.h"
#include "model/tokenizer_bytes.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_INT, K_FLOAT, K_BOOL, K_TOKEN } field_kind;

enum {
    F_DERIVED = 1,   // absent or null: 0 now, filled by hy_config_derive_defaults
    F_POSITIVE = 2,  // > 0 (ints: >= 1)
    F_NONNEG = 4,    // >= 0
    F_UNIT = 8,      // within [0, 1]
    F_NULL_ZERO = 16 // null allowed, read as 0 (attention_dropout)
};

typedef struct {
    const char *name;
    field_kind kind;  // K_TOKEN: a token id, null -> -1
    size_t offset;
    double def;       // HF OlmoHybridConfig default
    int flags;
} field_spec;

#define OFF(f) offsetof(hy_config, f)
static const field_spec k_fields[] = {
    {"vocab_size", K_INT, OFF(vocab_size), 100352, F_POSITIVE},
    {"hidden_size", K_INT, OFF(hidden_size), 3840, F_POSITIVE},
    {"intermediate_size", K_INT, OFF(intermediate_size), 11008, F_POSITIVE},
    {"num_hidden_layers", K_INT, OFF(num_hidden_layers), 32, F_POSITIVE},
    {"num_attention_heads", K_INT, OFF(num_attention_heads), 30, F_POSITIVE},
    {"num_key_value_heads", K_INT, OFF(num_key_value_heads), 0, F_POSITIVE | F_DERIVED},
    // Not an HF class field, but the modeling code reads getattr(config, "head_dim", C // heads).
    {"head_dim", K_INT, OFF(head_dim), 0, F_POSITIVE | F_DERIVED},
    {"max_position_embeddings", K_INT, OFF(max_position_embeddings), 65536, F_POSITIVE},
    {"initializer_range", K_FLOAT, OFF(initializer_range), 0.02, F_UNIT},
    {"rms_norm_eps", K_FLOAT, OFF(rms_norm_eps), 1e-6, F_POSITIVE},
    {"use_cache", K_BOOL, OFF(use_cache), 1, 0},
    {"pad_token_id", K_TOKEN, OFF(pad_token_id), 100277, 0},
    {"bos_token_id", K_TOKEN, OFF(bos_token_id), -1, 0},
    {"tie_word_embeddings", K_BOOL, OFF(tie_word_embeddings), 0, 0},
    {"attention_bias", K_BOOL, OFF(attention_bias), 0, 0},
    {"attention_dropout", K_FLOAT, OFF(attention_dropout), 0.0, F_UNIT | F_NULL_ZERO},
    {"linear_num_key_heads", K_INT, OFF(linear_num_key_heads), 0, F_POSITIVE | F_DERIVED},
    {"linear_num_value_heads", K_INT, OFF(linear_num_value_heads), 0, F_POSITIVE | F_DERIVED},
    {"linear_key_head_dim", K_INT, OFF(linear_key_head_dim), 0, F_POSITIVE | F_DERIVED},
    {"linear_value_head_dim", K_INT, OFF(linear_value_head_dim), 0, F_POSITIVE | F_DERIVED},
    {"linear_a_log_min", K_FLOAT, OFF(linear_a_log_min), 0.0, 0},
    {"linear_a_log_max", K_FLOAT, OFF(linear_a_log_max), 16.0, 0},
    {"linear_dt_min", K_FLOAT, OFF(linear_dt_min), 0.001, F_POSITIVE},
    {"linear_dt_max", K_FLOAT, OFF(linear_dt_max), 0.1, F_POSITIVE},
    {"linear_dt_init_floor", K_FLOAT, OFF(linear_dt_init_floor), 1e-4, F_NONNEG},
    {"linear_conv_kernel_dim", K_INT, OFF(linear_conv_kernel_dim), 4, F_POSITIVE},
    {"linear_allow_neg_eigval", K_BOOL, OFF(linear_allow_neg_eigval), 1, 0},
};
#undef OFF
enum { N_FIELDS = sizeof k_fields / sizeof k_fields[0] };

static int *int_at(hy_config *c, const field_spec *f) { return (int *)((char *)c + f->offset); }
static int int_of(const hy_config *c, const field_spec *f) { return *(const int *)((const char *)c + f->offset); }
static float *float_at(hy_config *c, const field_spec *f) { return (float *)((char *)c + f->offset); }
static bool *bool_at(hy_config *c, const field_spec *f) { return (bool *)((char *)c + f->offset); }

// HF defaults for every field, RoPE on at theta 10000 (HF's default_theta), layer_types unset.
static void config_set_defaults(hy_config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_FIELDS; i++) {
        const field_spec *f = &k_fields[i];
        if (f->kind == K_FLOAT) *float_at(c, f) = (float)f->def;
        else if (f->kind == K_BOOL) *bool_at(c, f) = f->def != 0;
        else *int_at(c, f) = (int)f->def;
    }
    snprintf(c->hidden_act, sizeof c->hidden_act, "silu");
    c->eos_token_ids[0] = 100257;
    c->n_eos = 1;
    c->rope = true;
    c->rope_theta = 10000.0f;
}

void hy_config_derive_defaults(hy_config *c, int layer_types_given) {
    int H = c->num_attention_heads;
    if (!c->num_key_value_heads) c->num_key_value_heads = H;
    if (!c->linear_num_key_heads) c->linear_num_key_heads = H;
    if (!c->linear_num_value_heads) c->linear_num_value_heads = H;
    // Same expression and evaluation order as HF: int(0.75 * hidden_size / linear_num_key_heads).
    if (!c->linear_key_head_dim && c->linear_num_key_heads > 0)
        c->linear_key_head_dim = (int)(0.75 * c->hidden_size / c->linear_num_key_heads);
    if (!c->linear_value_head_dim) c->linear_value_head_dim = 2 * c->linear_key_head_dim;
    if (!c->head_dim && H > 0) c->head_dim = c->hidden_size / H;
    if (!layer_types_given) {
        int L = c->num_hidden_layers < HY_MAX_LAYERS ? c->num_hidden_layers : HY_MAX_LAYERS;
        int any_attn = 0;
        for (int i = 0; i < L; i++) {
            c->layer_types[i] = i % 4 == 3 ? HY_LAYER_ATTN : HY_LAYER_GDN;
            any_attn |= i % 4 == 3;
        }
        if (!any_attn && L > 0) c->layer_types[L - 1] = HY_LAYER_ATTN;
    }
}

// ---- parsing ----

// A short rendering of a JSON value for error messages.
static void json_brief(const json_t *v, char *buf, size_t n) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, n, "%s", s ? s : "?");
    if (s && strlen(s) >= n && n > 4) memcpy(buf + n - 4, "...", 4);
    free(s);
}

static int type_error(const char *src, const char *field, const char *want, const json_t *got) {
    char g[64];
    json_brief(got, g, sizeof g);
    return hy_fail("%s: field '%s' must be %s, got %s", src, field, want, g);
}

static int parse_field(hy_config *c, const field_spec *f, const json_t *v, const char *src) {
    if (json_is_null(v) && (f->flags & (F_DERIVED | F_NULL_ZERO))) return 0;  // already 0
    switch (f->kind) {
    case K_INT: {
        const char *want = f->flags & F_DERIVED ? "a positive integer or null" : "a positive integer";
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT_MAX)
            return type_error(src, f->name, want, v);
        *int_at(c, f) = (int)json_integer_value(v);
        return 0;
    }
    case K_TOKEN:
        if (json_is_null(v)) return *int_at(c, f) = -1, 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
            return type_error(src, f->name, "a non-negative integer or null", v);
        *int_at(c, f) = (int)json_integer_value(v);
        return 0;
    case K_BOOL:
        if (!json_is_boolean(v)) return type_error(src, f->name, "true or false", v);
        *bool_at(c, f) = json_is_true(v);
        return 0;
    case K_FLOAT: {
        if (!json_is_number(v)) return type_error(src, f->name, "a number", v);
        double d = json_number_value(v);
        if (!isfinite(d) || fabs(d) > 3.0e38) return type_error(src, f->name, "a finite float32 number", v);
        if ((f->flags & F_POSITIVE) && !(d > 0)) return type_error(src, f->name, "a number > 0", v);
        if ((f->flags & F_NONNEG) && d < 0) return type_error(src, f->name, "a number >= 0", v);
        if ((f->flags & F_UNIT) && (d < 0 || d > 1)) return type_error(src, f->name, "a number in [0, 1]", v);
        *float_at(c, f) = (float)d;
        return 0;
    }
    }
    return 0;
}

static int parse_eos(hy_config *c, const json_t *v, const char *src) {
    const char *want = "an integer >= 0, a list of them, or null";
    if (json_is_null(v)) return c->n_eos = 0, 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
            return type_error(src, "eos_token_id", want, v);
        c->eos_token_ids[0] = (int)json_integer_value(v);
        c->n_eos = 1;
        return 0;
    }
    if (!json_is_array(v)) return type_error(src, "eos_token_id", want, v);
    if (json_array_size(v) > HY_MAX_EOS)
        return hy_fail("%s: field 'eos_token_id' lists %zu ids, at most %d supported", src, json_array_size(v),
                       HY_MAX_EOS);
    c->n_eos = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT_MAX)
            return type_error(src, "eos_token_id", want, v);
        c->eos_token_ids[c->n_eos++] = (int)json_integer_value(e);
    }
    return 0;
}

// Layer names, including HF's legacy ones (remap_legacy_layer_types).
static int layer_kind_parse(const char *s, hy_layer_kind *out) {
    static const struct { const char *name; hy_layer_kind kind; } names[] = {
        {"linear_attention", HY_LAYER_GDN}, {"full_attention", HY_LAYER_ATTN},
        {"mamba", HY_LAYER_GDN},            {"conv", HY_LAYER_GDN},
        {"attention", HY_LAYER_ATTN},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return *out = names[i].kind, 0;
    return -1;
}

static int parse_layer_types(hy_config *c, const json_t *v, const char *src) {
    if (!json_is_array(v)) return type_error(src, "layer_types", "a list of layer type names or null", v);
    if ((int)json_array_size(v) != c->num_hidden_layers)
        return hy_fail("%s: field 'layer_types' has %zu entries but num_hidden_layers is %d", src, json_array_size(v),
                       c->num_hidden_layers);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        char g[64];
        json_brief(e, g, sizeof g);
        if (!json_is_string(e))
            return hy_fail("%s: field 'layer_types' entry %zu must be a string, got %s", src, i, g);
        if (layer_kind_parse(json_string_value(e), &c->layer_types[i]) != 0)
            return hy_fail("%s: field 'layer_types' entry %zu is unknown layer type %s "
                           "(expected \"linear_attention\" or \"full_attention\")",
                           src, i, g);
    }
    return 0;
}

static int parse_rope(hy_config *c, const json_t *root, const char *src) {
    const json_t *scaling = json_object_get(root, "rope_scaling"), *params = json_object_get(root, "rope_parameters");
    const char *pname = NULL;
    const json_t *p = NULL;
    if (scaling && !json_is_null(scaling) && !json_is_object(scaling))
        return type_error(src, "rope_scaling", "an object or null", scaling);
    if (params && !json_is_null(params) && !json_is_object(params))
        return type_error(src, "rope_parameters", "an object or null", params);
    if (scaling && json_is_object(scaling) && json_object_size(scaling) > 0) p = scaling, pname = "rope_scaling";
    else if (params && json_is_object(params)) p = params, pname = "rope_parameters";

    if (p && (json_object_get(p, "full_attention") || json_object_get(p, "linear_attention")))
        return hy_fail("%s: field '%s' gives per-layer-type RoPE parameters, which are not supported", src, pname);

    char theta_name[64] = "rope_theta";
    const json_t *theta = NULL;
    if (p && (theta = json_object_get(p, "rope_theta"))) snprintf(theta_name, sizeof theta_name, "%s.rope_theta", pname);
    else theta = json_object_get(root, "rope_theta");

    if (!theta) {
        c->rope = true;
        c->rope_theta = 10000.0f;
    } else if (json_is_null(theta)) {
        c->rope = false;
        c->rope_theta = 0.0f;
    } else {
        if (!json_is_number(theta) || !(json_number_value(theta) > 0) || json_number_value(theta) > 3.0e38)
            return type_error(src, theta_name, "a positive number or null", theta);
        c->rope = true;
        c->rope_theta = (float)json_number_value(theta);
    }

    const json_t *type = p ? json_object_get(p, "rope_type") : NULL;
    if (p && !type) type = json_object_get(p, "type");  // the pre-v4.45 key
    if (type && !json_is_string(type)) {
        char name[64];
        snprintf(name, sizeof name, "%s.rope_type", pname);
        return type_error(src, name, "a string", type);
    }
    // Without a theta the rotary module is never built, so its type is irrelevant.
    if (c->rope && type && strcmp(json_string_value(type), "default") != 0)
        return hy_fail("%s: field '%s.rope_type' is \"%s\": only \"default\" RoPE is supported", src, pname,
                       json_string_value(type));
    return 0;
}

// Checks shared by parsed configs and presets; the config is already derived.
static int config_validate(const hy_config *c, const char *src) {
    // Said first: a derived 0 would otherwise read as if the user had written 0.
    if (c->linear_key_head_dim < 1 && c->linear_num_key_heads > 0)
        return hy_fail("%s: field 'linear_key_head_dim' is %d (derived as int(0.75 * hidden_size / "
                       "linear_num_key_heads) unless set): must be positive",
                       src, c->linear_key_head_dim);
    // Parsing already enforces this; configs built in code get the same guard before any division.
    for (int i = 0; i < N_FIELDS; i++)
        if (k_fields[i].kind == K_INT && int_of(c, &k_fields[i]) < 1)
            return hy_fail("%s: field '%s' must be a positive integer, got %d", src, k_fields[i].name,
                           int_of(c, &k_fields[i]));
    if (c->num_hidden_layers > HY_MAX_LAYERS)
        return hy_fail("%s: field 'num_hidden_layers' is %d, at most %d supported", src, c->num_hidden_layers,
                       HY_MAX_LAYERS);
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return hy_fail("%s: field 'num_key_value_heads' (%d) must divide num_attention_heads (%d)", src,
                       c->num_key_value_heads, c->num_attention_heads);
    if (c->linear_num_value_heads % c->linear_num_key_heads != 0)
        return hy_fail("%s: field 'linear_num_value_heads' (%d) must be a multiple of linear_num_key_heads (%d)", src,
                       c->linear_num_value_heads, c->linear_num_key_heads);
    if (c->head_dim < 1)
        return hy_fail("%s: field 'head_dim' is %d: hidden_size %d is smaller than num_attention_heads %d", src,
                       c->head_dim, c->hidden_size, c->num_attention_heads);
    if (strcmp(c->hidden_act, "silu") != 0)
        return hy_fail("%s: field 'hidden_act' is \"%s\": only \"silu\" is supported", src, c->hidden_act);
    if (c->attention_bias)
        return hy_fail("%s: field 'attention_bias' is true: attention biases are not supported", src);
    if (c->linear_conv_kernel_dim < 1)
        return hy_fail("%s: field 'linear_conv_kernel_dim' must be >= 1, got %d", src, c->linear_conv_kernel_dim);
    if (c->linear_a_log_min > c->linear_a_log_max)
        return hy_fail("%s: field 'linear_a_log_min' (%g) is above linear_a_log_max (%g)", src, c->linear_a_log_min,
                       c->linear_a_log_max);
    if (c->linear_dt_min > c->linear_dt_max)
        return hy_fail("%s: field 'linear_dt_min' (%g) is above linear_dt_max (%g)", src, c->linear_dt_min,
                       c->linear_dt_max);
    // pad is the embedding's padding row, so it must exist (HF's nn.Embedding refuses it too). bos
    // and eos outside the vocabulary are accepted as HF accepts them (it only warns): such an id can
    // never be generated, so it simply never stops a generation.
    if (c->pad_token_id >= c->vocab_size)
        return hy_fail("%s: field 'pad_token_id' (%d) is outside the vocabulary (vocab_size %d)", src, c->pad_token_id,
                       c->vocab_size);
    int n_gdn = hy_config_n_gdn_layers(c);
    if (n_gdn == 0)
        return hy_fail("%s: field 'layer_types' has no \"linear_attention\" layer; OLMo Hybrid needs at least one",
                       src);
    if (n_gdn == c->num_hidden_layers)
        return hy_fail("%s: field 'layer_types' has no \"full_attention\" layer; OLMo Hybrid needs at least one", src);
    return 0;
}

static int parse_root(hy_config *c, const json_t *root, const char *src) {
    if (!json_is_object(root)) return hy_fail("%s: not a JSON object", src);
    const json_t *mt = json_object_get(root, "model_type");
    if (!mt) return hy_fail("%s: field 'model_type' is missing (expected \"olmo_hybrid\")", src);
    if (!json_is_string(mt) || strcmp(json_string_value(mt), "olmo_hybrid") != 0) {
        char g[64];
        json_brief(mt, g, sizeof g);
        return hy_fail("%s: field 'model_type' is %s, expected \"olmo_hybrid\"", src, g);
    }
    config_set_defaults(c);
    for (int i = 0; i < N_FIELDS; i++) {
        const json_t *v = json_object_get(root, k_fields[i].name);
        if (v && parse_field(c, &k_fields[i], v, src) != 0) return -1;
    }
    const json_t *act = json_object_get(root, "hidden_act");
    if (act) {
        if (!json_is_string(act)) return type_error(src, "hidden_act", "a string", act);
        snprintf(c->hidden_act, sizeof c->hidden_act, "%s", json_string_value(act));
        if (strcmp(json_string_value(act), "silu") != 0)
            return hy_fail("%s: field 'hidden_act' is \"%s\": only \"silu\" is supported", src, json_string_value(act));
    }
    const json_t *eos = json_object_get(root, "eos_token_id");
    if (eos && parse_eos(c, eos, src) != 0) return -1;
    if (c->num_hidden_layers > HY_MAX_LAYERS)
        return hy_fail("%s: field 'num_hidden_layers' is %d, at most %d supported", src, c->num_hidden_layers,
                       HY_MAX_LAYERS);
    const json_t *lt = json_object_get(root, "layer_types");
    int lt_given = lt && !json_is_null(lt);
    if (lt_given && parse_layer_types(c, lt, src) != 0) return -1;
    if (parse_rope(c, root, src) != 0) return -1;
    // HF computes head_dim as hidden_size // heads; a remainder would silently drop width.
    if (!c->head_dim && c->hidden_size % c->num_attention_heads != 0)
        return hy_fail("%s: field 'hidden_size' (%d) must be divisible by num_attention_heads (%d) when head_dim is "
                       "not given",
                       src, c->hidden_size, c->num_attention_heads);
    hy_config_derive_defaults(c, lt_given);
    return config_validate(c, src);
}

int hy_config_parse(hy_config *cfg, const char *json_text, const char *source_name) {
    json_error_t err;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return hy_fail("%s: not valid JSON (line %d column %d: %s)", source_name, err.line, err.column, err.text);
    hy_config c;
    int rc = parse_root(&c, root, source_name);
    json_decref(root);
    if (rc == 0) *cfg = c;
    return rc;
}

int hy_config_load(hy_config *cfg, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    // config.json is a few KB; anything past 16 MB is not a config.
    enum { MAX_CONFIG = 16 << 20 };
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return hy_fail("%s: cannot read: not a regular file?", path);
    }
    if (size > MAX_CONFIG) {
        fclose(f);
        return hy_fail("%s: %ld bytes, too large for a config.json", path, size);
    }
    char *text = hy_malloc((size_t)size + 1);
    size_t n = fread(text, 1, (size_t)size, f);
    fclose(f);
    int rc;
    if (n != (size_t)size) rc = hy_fail("%s: read error", path);
    else if (memchr(text, '\0', n)) rc = hy_fail("%s: contains a NUL byte, not a config.json", path);
    else {
        text[n] = '\0';
        rc = hy_config_parse(cfg, text, path);
    }
    free(text);
    return rc;
}

// ---- saving ----

// The shortest decimal that reads back as the same float32, so 1e-6f is written "1e-06" (what
// the released config says) rather than its double expansion 9.99999997e-07.
static json_t *json_float(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *json_token(int id) { return id < 0 ? json_null() : json_integer(id); }

int hy_config_save(const hy_config *cfg, const char *path) {
    hy_config c = *cfg;
    if (config_validate(&c, path) != 0) return hy_fail_prefix("refusing to save an invalid config");
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "OlmoHybridForCausalLM"));
    json_object_set_new(o, "model_type", json_string("olmo_hybrid"));
    for (int i = 0; i < N_FIELDS; i++) {
        const field_spec *f = &k_fields[i];
        json_t *v = f->kind == K_FLOAT  ? json_float(*float_at(&c, f))
                    : f->kind == K_BOOL ? json_boolean(*bool_at(&c, f))
                    : f->kind == K_TOKEN ? json_token(*int_at(&c, f))
                                         : json_integer(*int_at(&c, f));
        json_object_set_new(o, f->name, v);
    }
    json_object_set_new(o, "hidden_act", json_string(c.hidden_act));
    if (c.n_eos == 0) json_object_set_new(o, "eos_token_id", json_null());
    else if (c.n_eos == 1) json_object_set_new(o, "eos_token_id", json_integer(c.eos_token_ids[0]));
    else {
        json_t *a = json_array();
        for (int i = 0; i < c.n_eos; i++) json_array_append_new(a, json_integer(c.eos_token_ids[i]));
        json_object_set_new(o, "eos_token_id", a);
    }
    json_t *lt = json_array();
    for (int i = 0; i < c.num_hidden_layers; i++)
        json_array_append_new(lt, json_string(c.layer_types[i] == HY_LAYER_ATTN ? "full_attention" : "linear_attention"));
    json_object_set_new(o, "layer_types", lt);
    json_object_set_new(o, "rope_parameters",
                        json_pack("{s:s, s:o}", "rope_type", "default", "rope_theta",
                                  c.rope ? json_float(c.rope_theta) : json_null()));
    json_object_set_new(o, "dtype", json_string("float32"));

    size_t tn = strlen(path) + 32;
    char *tmp = hy_malloc(tn);
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    // Precision 9 prints each float's shortest decimal (json_float) as is.
    if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) != 0)
        rc = hy_fail("%s: cannot write: %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0)
        rc = hy_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc != 0) remove(tmp);
    free(tmp);
    json_decref(o);
    return rc;
}

// ---- presets ----

static void preset_small_heads(hy_config *c) {
    c->hidden_size = 64;
    c->intermediate_size = 128;
    c->num_hidden_layers = 4;
    c->num_attention_heads = 4;
    c->num_key_value_heads = 2;
    c->linear_num_key_heads = 2;
    c->linear_num_value_heads = 4;
    c->linear_key_head_dim = 16;
    c->linear_value_head_dim = 32;
    c->rope = false;
    c->rope_theta = 0.0f;
}

int hy_config_preset(hy_config *cfg, const char *name) {
    hy_config c;
    config_set_defaults(&c);
    if (strcmp(name, "tiny") == 0) {
        // Byte-level toy for unit tests: V = 256 byte values. eos 0xFE and pad 0xFF are bytes that
        // never occur in UTF-8 text, so they cannot collide with real content. GQA (4 heads over 2
        // kv heads) and H_v = 2·H_k exercise the general paths the 7B config does not.
        preset_small_heads(&c);
        c.vocab_size = 256;
        c.max_position_embeddings = 2048;
        c.eos_token_ids[0] = 254;
        c.n_eos = 1;
        c.pad_token_id = 255;
        c.bos_token_id = -1;
    } else if (strcmp(name, "tiny-dolma2") == 0) {
        // The tiny shapes with the dolma2 tokenizer's vocabulary and ids (the README demo model).
        preset_small_heads(&c);
        c.vocab_size = 100352;
        c.max_position_embeddings = 4096;
    } else if (strcmp(name, "demo") == 0) {
        // The tiny shapes with the byte-level tokenizer of tokenizer_bytes.h (`hybrid init` writes
        // it): 260 tokens padded to 264 rows (a multiple of 8). Generation stops at <|endoftext|>
        // or at <|im_end|>, the end of a ChatML turn.
        preset_small_heads(&c);
        c.vocab_size = (HY_BYTES_N_TOKENS + 7) / 8 * 8;
        c.max_position_embeddings = 2048;
        c.eos_token_ids[0] = HY_BYTES_ENDOFTEXT;
        c.eos_token_ids[1] = HY_BYTES_IM_END;
        c.n_eos = 2;
        c.pad_token_id = HY_BYTES_PAD;
        c.bos_token_id = -1;
    } else if (strcmp(name, "olmo-hybrid-7b") == 0) {
        // allenai/Olmo-Hybrid-7B as released: the HF defaults, NoPE, explicit GDN head sizes.
        c.num_key_value_heads = 30;
        c.linear_num_key_heads = 30;
        c.linear_num_value_heads = 30;
        c.linear_key_head_dim = 96;
        c.linear_value_head_dim = 192;
        c.rope = false;
        c.rope_theta = 0.0f;
    } else {
        return hy_fail("unknown model preset '%s' (known: tiny, tiny-dolma2, olmo-hybrid-7b, demo)", name);
    }
    hy_config_derive_defaults(&c, 0);
    char src[64];
    snprintf(src, sizeof src, "preset '%s'", name);
    if (config_validate(&c, src) != 0) return -1;  // a bug in the table above, not user input
    *cfg = c;
    return 0;
}
