// Decode state for a set of sequence slots (see hy_cache in model.h).
//
// Per GDN layer a slot holds its conv window (the last K−1 pre-conv inputs per channel) and its
// fp32 state (H_v, Dk, Dv); per attention layer, keys and values of up to max_len tokens. The CPU
// path allocates these flat; the rollout engine's paged pool replaces this on the GPU.
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "model.h"

void hy_cache_init(hy_cache *c, const hy_config *cfg, int n_slots, int max_len) {
    memset(c, 0, sizeof *c);
    const int L = cfg->num_hidden_layers;
    c->n_slots = n_slots;
    c->max_len = max_len;
    c->len = hy_calloc((size_t)n_slots, sizeof(int));
    c->conv_window = hy_calloc((size_t)L, sizeof(float *));
    c->gdn_state = hy_calloc((size_t)L, sizeof(float *));
    c->k_cache = hy_calloc((size_t)L, sizeof(float *));
    c->v_cache = hy_calloc((size_t)L, sizeof(float *));
    const size_t win = (size_t)hy_config_conv_dim(cfg) * (cfg->linear_conv_kernel_dim - 1);
    const size_t state = (size_t)cfg->linear_num_value_heads * cfg->linear_key_head_dim * cfg->linear_value_head_dim;
    const size_t kv = (size_t)max_len * cfg->num_key_value_heads * cfg->head_dim;
    for (int l = 0; l < L; l++) {
        if (cfg->layer_types[l] == HY_LAYER_GDN) {
            c->conv_window[l] = hy_calloc(n_slots * win, sizeof(float));
            c->gdn_state[l] = hy_calloc(n_slots * state, sizeof(float));
        } else {
            c->k_cache[l] = hy_calloc(n_slots * kv, sizeof(float));
            c->v_cache[l] = hy_calloc(n_slots * kv, sizeof(float));
        }
    }
    c->n_layers = L;
}

void hy_cache_free(hy_cache *c) {
    if (!c->len) return;
    for (int l = 0; l < c->n_layers; l++) {
        free(c->conv_window[l]);
        free(c->gdn_state[l]);
        free(c->k_cache[l]);
        free(c->v_cache[l]);
    }
    free(c->conv_window);
    free(c->gdn_state);
    free(c->k_cache);
    free(c->v_cache);
    free(c->len);
    memset(c, 0, sizeof *c);
}

void hy_cache_reset_slot(hy_cache *c, const hy_config *cfg, int slot) {
    const size_t win = (size_t)hy_config_conv_dim(cfg) * (cfg->linear_conv_kernel_dim - 1);
    const size_t state = (size_t)cfg->linear_num_value_heads * cfg->linear_key_head_dim * cfg->linear_value_head_dim;
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        if (cfg->layer_types[l] != HY_LAYER_GDN) continue;  // stale keys are never read past len
        memset(c->conv_window[l] + slot * win, 0, win * sizeof(float));
        memset(c->gdn_state[l] + slot * state, 0, state * sizeof(float));
    }
    c->len[slot] = 0;
}
