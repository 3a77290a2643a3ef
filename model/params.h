// The parameter table: the single source of truth for every tensor of a model.
//
// From a config we build one table row per checkpoint tensor (HF name, shape, role, offset into one
// contiguous fp32 arena). Everything that walks parameters — loading, saving, random init, the
// optimizer, gradient buffers, the CUDA upload later — iterates this table, so a tensor cannot be
// forgotten by one of them. Binding a table to an arena fills an hy_params struct of named float
// pointers (the model code's view), the same way for parameters and for gradients.
//
// Layout choice: a GDN layer's q, k and v projections are adjacent in the arena (q | k | v rows), so
// the model computes them as one (conv_dim × C) projection whose output columns are exactly the
// channel order of the fused conv1d weight.
#ifndef HY_PARAMS_H
#define HY_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum {
    HY_ROLE_MATRIX,   // Linear weight (out, in): normal(0, initializer_range)
    HY_ROLE_EMBED,    // embedding (V, C): normal, padding row zero
    HY_ROLE_NORM,     // RMSNorm weight: ones
    HY_ROLE_CONV,     // depthwise conv (channels, 1, K): normal(0, initializer_range)
    HY_ROLE_A_LOG,    // log(uniform(a_log_min, a_log_max))
    HY_ROLE_DT_BIAS,  // inverse softplus of log-uniform dt in [dt_min, dt_max], floored
} hy_param_role;

typedef struct {
    float *in_norm, *post_norm;  // GDN: input_layernorm, post_attention_layernorm (C)
    float *qkv_proj;             // GDN: q_proj | k_proj | v_proj rows (conv_dim, C)
    float *a_proj, *b_proj;      // (H_v, C)
    float *g_proj;               // (H_v·Dv, C)
    float *o_proj;               // (C, H_v·Dv)
    float *conv;                 // (conv_dim, K), channels q | k | v
    float *A_log, *dt_bias;      // (H_v)
    float *o_norm;               // (Dv)
    float *q_proj, *k_proj, *v_proj, *attn_o_proj;  // attention: (H·D, C), (H_kv·D, C) ×2, (C, H·D)
    float *q_norm, *k_norm;                         // (H·D), (H_kv·D)
    float *post_attn_norm, *post_ff_norm;           // (C)
    float *mlp_gate, *mlp_up;    // (F, C)
    float *mlp_down;             // (C, F)
} hy_layer_params;

typedef struct {
    float *embed;       // (V, C)
    float *final_norm;  // (C)
    float *lm_head;     // (V, C); equals embed when tie_word_embeddings
    hy_layer_params layer[HY_MAX_LAYERS];
} hy_params;

typedef struct {
    char name[128];      // HF checkpoint name
    int ndim;
    int64_t shape[3];
    size_t numel;
    size_t offset;       // in floats, into the arena
    hy_param_role role;
    int layer;           // −1 for global tensors
    size_t field;        // byte offset of the float* in hy_params this row binds
} hy_param_spec;

typedef struct {
    hy_param_spec *specs;
    int n;
    size_t total;     // floats in the arena (tensors start at multiples of 8 floats; gaps are zero)
    size_t n_params;  // parameters: Σ numel
} hy_param_table;

void hy_param_table_build(hy_param_table *t, const hy_config *cfg);
void hy_param_table_free(hy_param_table *t);
const hy_param_spec *hy_param_table_find(const hy_param_table *t, const char *name);
// Points every field of p into arena (t->total floats); tied lm_head aliases embed.
void hy_params_bind(hy_params *p, const hy_param_table *t, const hy_config *cfg, float *arena);
// The same over an arena of elem_bytes-sized elements (the bf16 matmul view on CUDA): the fields
// are then addresses of those elements, only ever handed to backend linear ops.
void hy_params_bind_elems(hy_params *p, const hy_param_table *t, const hy_config *cfg, void *arena, size_t elem_bytes);
// HF's init scheme (see hy_param_role), deterministic in seed.
void hy_params_init_random(float *arena, const hy_param_table *t, const hy_config *cfg, uint64_t seed);

#endif
