// Builds the parameter table from a config, binds arenas, and applies HF's random init.
// See params.h for why one table drives loading, saving, init and the optimizer.
#include "params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/rng.h"

typedef struct {
    hy_param_table *t;
    int cap;
} table_builder;

static void add(table_builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                hy_param_role role, int layer, size_t field) {
    hy_param_table *t = b->t;
    if (t->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        t->specs = hy_realloc(t->specs, (size_t)b->cap * sizeof *t->specs);
    }
    hy_param_spec *s = &t->specs[t->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->shape[2] = d2;
    s->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    // Every tensor (or fused group: k_proj and v_proj continue q_proj's block directly) starts at a
    // multiple of 8 floats, so that its bf16 matmul view is 16-byte aligned as cuBLASLt requires.
    // Without this, H_v = 30 (A_log, dt_bias) shifted every later matrix of the 7B shape off
    // alignment and sent its products to the slow fallback kernel. The gaps stay zero.
    if (field != (size_t)-1) t->total = (t->total + 7) & ~(size_t)7;
    s->offset = t->total;
    s->role = role;
    s->layer = layer;
    s->field = field;
    t->total += s->numel;
    t->n_params += s->numel;
}

#define LAYER_FIELD(i, f) (offsetof(hy_params, layer) + (size_t)(i) * sizeof(hy_layer_params) + offsetof(hy_layer_params, f))

void hy_param_table_build(hy_param_table *t, const hy_config *c) {
    memset(t, 0, sizeof *t);
    table_builder b = {t, 0};
    const int64_t C = c->hidden_size, V = c->vocab_size, F = c->intermediate_size;
    const int64_t kdim = (int64_t)c->linear_num_key_heads * c->linear_key_head_dim;
    const int64_t vdim = (int64_t)c->linear_num_value_heads * c->linear_value_head_dim;
    const int64_t Hv = c->linear_num_value_heads, K = c->linear_conv_kernel_dim;
    const int64_t qdim = (int64_t)c->num_attention_heads * c->head_dim;
    const int64_t kvdim = (int64_t)c->num_key_value_heads * c->head_dim;
    char n[128];

    add(&b, "model.embed_tokens.weight", 2, V, C, 0, HY_ROLE_EMBED, -1, offsetof(hy_params, embed));
    for (int i = 0; i < c->num_hidden_layers; i++) {
#define NAME(suffix) (snprintf(n, sizeof n, "model.layers.%d.%s", i, suffix), n)
        if (c->layer_types[i] == HY_LAYER_GDN) {
            add(&b, NAME("input_layernorm.weight"), 1, C, 0, 0, HY_ROLE_NORM, i, LAYER_FIELD(i, in_norm));
            // q, k, v adjacent: one fused projection in the forward (see params.h)
            add(&b, NAME("linear_attn.q_proj.weight"), 2, kdim, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, qkv_proj));
            add(&b, NAME("linear_attn.k_proj.weight"), 2, kdim, C, 0, HY_ROLE_MATRIX, i, (size_t)-1);
            add(&b, NAME("linear_attn.v_proj.weight"), 2, vdim, C, 0, HY_ROLE_MATRIX, i, (size_t)-1);
            add(&b, NAME("linear_attn.a_proj.weight"), 2, Hv, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, a_proj));
            add(&b, NAME("linear_attn.b_proj.weight"), 2, Hv, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, b_proj));
            add(&b, NAME("linear_attn.g_proj.weight"), 2, vdim, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, g_proj));
            add(&b, NAME("linear_attn.o_proj.weight"), 2, C, vdim, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, o_proj));
            add(&b, NAME("linear_attn.conv1d.weight"), 3, 2 * kdim + vdim, 1, K, HY_ROLE_CONV, i, LAYER_FIELD(i, conv));
            add(&b, NAME("linear_attn.A_log"), 1, Hv, 0, 0, HY_ROLE_A_LOG, i, LAYER_FIELD(i, A_log));
            add(&b, NAME("linear_attn.dt_bias"), 1, Hv, 0, 0, HY_ROLE_DT_BIAS, i, LAYER_FIELD(i, dt_bias));
            add(&b, NAME("linear_attn.o_norm.weight"), 1, c->linear_value_head_dim, 0, 0, HY_ROLE_NORM, i,
                LAYER_FIELD(i, o_norm));
            add(&b, NAME("post_attention_layernorm.weight"), 1, C, 0, 0, HY_ROLE_NORM, i, LAYER_FIELD(i, post_norm));
        } else {
            add(&b, NAME("self_attn.q_proj.weight"), 2, qdim, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, q_proj));
            add(&b, NAME("self_attn.k_proj.weight"), 2, kvdim, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, k_proj));
            add(&b, NAME("self_attn.v_proj.weight"), 2, kvdim, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, v_proj));
            add(&b, NAME("self_attn.o_proj.weight"), 2, C, qdim, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, attn_o_proj));
            add(&b, NAME("self_attn.q_norm.weight"), 1, qdim, 0, 0, HY_ROLE_NORM, i, LAYER_FIELD(i, q_norm));
            add(&b, NAME("self_attn.k_norm.weight"), 1, kvdim, 0, 0, HY_ROLE_NORM, i, LAYER_FIELD(i, k_norm));
            add(&b, NAME("post_attention_layernorm.weight"), 1, C, 0, 0, HY_ROLE_NORM, i,
                LAYER_FIELD(i, post_attn_norm));
            add(&b, NAME("post_feedforward_layernorm.weight"), 1, C, 0, 0, HY_ROLE_NORM, i,
                LAYER_FIELD(i, post_ff_norm));
        }
        add(&b, NAME("mlp.gate_proj.weight"), 2, F, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, mlp_gate));
        add(&b, NAME("mlp.up_proj.weight"), 2, F, C, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, mlp_up));
        add(&b, NAME("mlp.down_proj.weight"), 2, C, F, 0, HY_ROLE_MATRIX, i, LAYER_FIELD(i, mlp_down));
#undef NAME
    }
    add(&b, "model.norm.weight", 1, C, 0, 0, HY_ROLE_NORM, -1, offsetof(hy_params, final_norm));
    if (!c->tie_word_embeddings)
        add(&b, "lm_head.weight", 2, V, C, 0, HY_ROLE_MATRIX, -1, offsetof(hy_params, lm_head));
}

void hy_param_table_free(hy_param_table *t) {
    free(t->specs);
    memset(t, 0, sizeof *t);
}

const hy_param_spec *hy_param_table_find(const hy_param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->specs[i].name, name)) return &t->specs[i];
    return NULL;
}

void hy_params_bind_elems(hy_params *p, const hy_param_table *t, const hy_config *cfg, void *arena, size_t elem_bytes) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < t->n; i++) {
        const hy_param_spec *s = &t->specs[i];
        if (s->field == (size_t)-1) continue;  // k_proj / v_proj of GDN: reached through qkv_proj
        *(float **)((char *)p + s->field) = (float *)((char *)arena + s->offset * elem_bytes);
    }
    if (cfg->tie_word_embeddings) p->lm_head = p->embed;
}

void hy_params_bind(hy_params *p, const hy_param_table *t, const hy_config *cfg, float *arena) {
    hy_params_bind_elems(p, t, cfg, arena, sizeof(float));
}

// dt ~ exp(U[log dt_min, log dt_max]) floored at dt_init_floor, stored as its inverse softplus
// (dt + log(−expm1(−dt))), so softplus(dt_bias) starts at dt — as HF initialises it.
static float dt_bias_sample(hy_rng *r, const hy_config *c) {
    double lo = log(c->linear_dt_min), hi = log(c->linear_dt_max);
    double dt = exp(lo + (hi - lo) * hy_rng_uniform(r));
    if (dt < c->linear_dt_init_floor) dt = c->linear_dt_init_floor;
    return (float)(dt + log(-expm1(-dt)));
}

void hy_params_init_random(float *arena, const hy_param_table *t, const hy_config *c, uint64_t seed) {
    hy_rng r;
    hy_rng_init(&r, seed);
    const float std = c->initializer_range;
    for (int i = 0; i < t->n; i++) {
        const hy_param_spec *s = &t->specs[i];
        float *x = arena + s->offset;
        switch (s->role) {
        case HY_ROLE_MATRIX:
        case HY_ROLE_CONV:
        case HY_ROLE_EMBED:
            for (size_t j = 0; j < s->numel; j++) x[j] = std * hy_rng_normal(&r);
            if (s->role == HY_ROLE_EMBED && c->pad_token_id >= 0 && c->pad_token_id < c->vocab_size)
                memset(x + (size_t)c->pad_token_id * (size_t)c->hidden_size, 0, sizeof(float) * (size_t)c->hidden_size);
            break;
        case HY_ROLE_NORM:
            for (size_t j = 0; j < s->numel; j++) x[j] = 1.0f;
            break;
        case HY_ROLE_A_LOG:
            for (size_t j = 0; j < s->numel; j++) {
                // A ~ U(a_log_min, a_log_max); a zero draw would give log(0) = −inf, so draw again
                float a;
                do a = hy_rng_range(&r, c->linear_a_log_min, c->linear_a_log_max);
                while (a <= 0.0f);
                x[j] = logf(a);
            }
            break;
        case HY_ROLE_DT_BIAS:
            for (size_t j = 0; j < s->numel; j++) x[j] = dt_bias_sample(&r, c);
            break;
        }
    }
}
