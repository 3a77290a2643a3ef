// Decode state for a set of sequence slots (see hy_cache in model.h), in the model's backend memory.
//
// Per GDN layer a slot holds its conv window (the last K−1 pre-conv inputs per channel, fp32) and
// its fp32 state (H_v, Dk, Dv); per attention layer, keys and values of up to max_len tokens in the
// activation type. The rollout engine's paged pool replaces the flat KV layout later.
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "model.h"

static size_t window_floats(const hy_config *c) {
    return (size_t)hy_config_conv_dim(c) * (c->linear_conv_kernel_dim - 1);
}
static size_t state_floats(const hy_config *c) {
    return (size_t)c->linear_num_value_heads * c->linear_key_head_dim * c->linear_value_head_dim;
}

void hy_cache_init(hy_cache *c, const hy_model *m, int n_slots, int max_len) {
    memset(c, 0, sizeof *c);
    const hy_config *cfg = &m->cfg;
    hy_backend *be = m->be;
    const int L = cfg->num_hidden_layers;
    c->be = be;
    c->n_slots = n_slots;
    c->max_len = max_len;
    c->n_layers = L;
    c->len = hy_calloc((size_t)n_slots, sizeof(int));
    c->conv_window = hy_calloc((size_t)L, sizeof(float *));
    c->gdn_state = hy_calloc((size_t)L, sizeof(float *));
    c->k_cache = hy_calloc((size_t)L, sizeof(hy_act *));
    c->v_cache = hy_calloc((size_t)L, sizeof(hy_act *));
    const size_t kv = (size_t)max_len * cfg->num_key_value_heads * cfg->head_dim;
    for (int l = 0; l < L; l++) {
        if (cfg->layer_types[l] == HY_LAYER_GDN) {
            c->conv_window[l] = be->alloc_persistent(be, n_slots * window_floats(cfg) * sizeof(float));
            c->gdn_state[l] = be->alloc_persistent(be, n_slots * state_floats(cfg) * sizeof(float));
        } else {
            c->k_cache[l] = be->alloc_persistent(be, n_slots * kv * be->act_bytes);
            c->v_cache[l] = be->alloc_persistent(be, n_slots * kv * be->act_bytes);
        }
    }
}

void hy_cache_free(hy_cache *c) {
    if (!c->len) return;
    hy_backend *be = c->be;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->conv_window[l]) be->free_persistent(be, c->conv_window[l]);
        if (c->gdn_state[l]) be->free_persistent(be, c->gdn_state[l]);
        if (c->k_cache[l]) be->free_persistent(be, c->k_cache[l]);
        if (c->v_cache[l]) be->free_persistent(be, c->v_cache[l]);
    }
    free(c->conv_window);
    free(c->gdn_state);
    free(c->k_cache);
    free(c->v_cache);
    free(c->len);
    memset(c, 0, sizeof *c);
}

void hy_cache_reset_slot(hy_cache *c, const hy_config *cfg, int slot) {
    hy_backend *be = c->be;
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        if (cfg->layer_types[l] != HY_LAYER_GDN) continue;  // stale keys are never read past len
        be->f32_zero(be, c->conv_window[l] + slot * window_floats(cfg), window_floats(cfg));
        be->f32_zero(be, c->gdn_state[l] + slot * state_floats(cfg), state_floats(cfg));
    }
    c->len[slot] = 0;
}
