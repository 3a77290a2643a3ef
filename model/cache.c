// Sequence state for a set of slots (see hy_cache in model.h), in the model's backend memory.
//
// Per GDN layer a slot holds its conv window (the last K−1 pre-conv inputs per channel, fp32) and
// its fp32 state (H_v, Dk, Dv): fixed size, so slots are plain rows of one allocation per layer.
// Attention keys and values grow with the sequence, so they are paged: a pool of n_blocks blocks
// of block_size rows per attention layer, and per slot a table mapping logical block i (positions
// [i·bs, (i+1)·bs)) to a pool block. The same block id indexes every attention layer's pool, so
// one table and one refcount serve all layers.
//
// Invariants: ref[b] counts the block tables that hold b; a block with ref 0 is on the free list
// and nowhere else. A slot holds exactly ceil(len / bs) blocks, except transiently between
// hy_cache_reserve and the forward that fills them. Rows ≥ len of a slot's last block are never
// read. A block with ref > 1 is never written: the first write goes to a private copy
// (copy-on-write), which is why only the last, partially filled block can ever need copying.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "acts.h"

size_t hy_cache_slot_bytes(const hy_config *cfg) {
    const size_t window = (size_t)hy_config_conv_dim(cfg) * (cfg->linear_conv_kernel_dim - 1);
    const size_t state = (size_t)cfg->linear_num_value_heads * cfg->linear_key_head_dim * cfg->linear_value_head_dim;
    return (size_t)hy_config_n_gdn_layers(cfg) * (window + state) * sizeof(float);
}

size_t hy_cache_block_bytes(const hy_config *cfg, size_t act_bytes, int block_size) {
    const int n_attn = cfg->num_hidden_layers - hy_config_n_gdn_layers(cfg);
    return (size_t)n_attn * 2 * block_size * cfg->num_key_value_heads * cfg->head_dim * act_bytes;
}

static int blocks_for(const hy_cache *c, int len) { return (len + c->block_size - 1) / c->block_size; }

int hy_cache_init_spec(hy_cache *c, const hy_model *m, const hy_cache_spec *spec) {
    memset(c, 0, sizeof *c);
    const hy_config *cfg = &m->cfg;
    const int bs = spec->block_size ? spec->block_size : HY_CACHE_BLOCK_DEFAULT;
    if (spec->n_slots <= 0) return hy_fail("cache: n_slots must be positive (got %d)", spec->n_slots);
    if (spec->max_len <= 0) return hy_fail("cache: max_len must be positive (got %d)", spec->max_len);
    if (bs <= 0 || bs > 4096) return hy_fail("cache: block_size must be in [1, 4096] (got %d)", bs);
    if (spec->n_blocks < 0) return hy_fail("cache: n_blocks must not be negative (got %d)", spec->n_blocks);
    hy_backend *be = m->be;
    const int L = cfg->num_hidden_layers;
    c->be = be;
    c->n_slots = spec->n_slots;
    c->max_len = spec->max_len;
    c->n_layers = L;
    c->block_size = bs;
    c->max_blocks = (spec->max_len + bs - 1) / bs;
    c->n_blocks = spec->n_blocks ? spec->n_blocks : spec->n_slots * c->max_blocks;
    c->window_floats = (size_t)hy_config_conv_dim(cfg) * (cfg->linear_conv_kernel_dim - 1);
    c->state_floats = (size_t)cfg->linear_num_value_heads * cfg->linear_key_head_dim * cfg->linear_value_head_dim;
    c->kv_width = cfg->num_key_value_heads * cfg->head_dim;
    c->len = hy_calloc((size_t)c->n_slots, sizeof(int));
    c->block_table = hy_malloc(sizeof(int32_t) * (size_t)c->n_slots * c->max_blocks);
    for (size_t i = 0; i < (size_t)c->n_slots * c->max_blocks; i++) c->block_table[i] = -1;
    c->ref = hy_calloc((size_t)c->n_blocks, sizeof(int));
    c->free_list = hy_malloc(sizeof(int) * (size_t)c->n_blocks);
    // lowest ids on top of the stack, so a fresh cache hands out blocks 0, 1, 2, ...
    for (int b = 0; b < c->n_blocks; b++) c->free_list[b] = c->n_blocks - 1 - b;
    c->n_free = c->n_blocks;
    c->conv_window = hy_calloc((size_t)L, sizeof(float *));
    c->gdn_state = hy_calloc((size_t)L, sizeof(float *));
    c->k_pool = hy_calloc((size_t)L, sizeof(hy_act *));
    c->v_pool = hy_calloc((size_t)L, sizeof(hy_act *));
    const size_t pool = (size_t)c->n_blocks * bs * c->kv_width * be->act_bytes;
    for (int l = 0; l < L; l++) {
        if (cfg->layer_types[l] == HY_LAYER_GDN) {
            c->conv_window[l] = be->alloc_persistent(be, c->n_slots * c->window_floats * sizeof(float));
            c->gdn_state[l] = be->alloc_persistent(be, c->n_slots * c->state_floats * sizeof(float));
        } else {
            c->k_pool[l] = be->alloc_persistent(be, pool);
            c->v_pool[l] = be->alloc_persistent(be, pool);
        }
    }
    return 0;
}

void hy_cache_init(hy_cache *c, const hy_model *m, int n_slots, int max_len) {
    hy_cache_spec spec = {n_slots, max_len, 0, 0};
    if (hy_cache_init_spec(c, m, &spec)) {
        // callers of the simple form pass sizes they computed themselves: a bad one is a bug
        fprintf(stderr, "hybrid: internal: %s\n", hy_last_error());
        abort();
    }
}

void hy_cache_free(hy_cache *c) {
    if (!c->len) return;
    hy_backend *be = c->be;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->conv_window[l]) be->free_persistent(be, c->conv_window[l]);
        if (c->gdn_state[l]) be->free_persistent(be, c->gdn_state[l]);
        if (c->k_pool[l]) be->free_persistent(be, c->k_pool[l]);
        if (c->v_pool[l]) be->free_persistent(be, c->v_pool[l]);
    }
    free(c->conv_window);
    free(c->gdn_state);
    free(c->k_pool);
    free(c->v_pool);
    free(c->len);
    free(c->block_table);
    free(c->ref);
    free(c->free_list);
    memset(c, 0, sizeof *c);
}

static int32_t *table_of(const hy_cache *c, int slot) { return c->block_table + (size_t)slot * c->max_blocks; }

static int take_block(hy_cache *c) {
    const int b = c->free_list[--c->n_free];
    c->ref[b] = 1;
    return b;
}

static void drop_block(hy_cache *c, int b) {
    if (--c->ref[b] == 0) c->free_list[c->n_free++] = b;
}

// Copies rows [0, rows) of pool block src into block dst, in every attention layer.
static void copy_block_rows(hy_cache *c, int dst, int src, int rows) {
    hy_backend *be = c->be;
    const size_t per_block = (size_t)c->block_size * c->kv_width, n = (size_t)rows * c->kv_width;
    for (int l = 0; l < c->n_layers; l++) {
        if (!c->k_pool[l]) continue;
        be->act_copy(be, hy_act_at(be, c->k_pool[l], dst * per_block), hy_act_at(be, c->k_pool[l], src * per_block), n);
        be->act_copy(be, hy_act_at(be, c->v_pool[l], dst * per_block), hy_act_at(be, c->v_pool[l], src * per_block), n);
    }
}

void hy_cache_reset_slot(hy_cache *c, int slot) {
    hy_backend *be = c->be;
    for (int l = 0; l < c->n_layers; l++) {
        if (!c->gdn_state[l]) continue;
        be->f32_zero(be, c->conv_window[l] + slot * c->window_floats, c->window_floats);
        be->f32_zero(be, c->gdn_state[l] + slot * c->state_floats, c->state_floats);
    }
    int32_t *t = table_of(c, slot);
    for (int i = 0; i < c->max_blocks && t[i] >= 0; i++) {
        drop_block(c, t[i]);
        t[i] = -1;
    }
    c->len[slot] = 0;
}

int hy_cache_blocks_needed(const hy_cache *c, int slot, int n_new) {
    const int len = c->len[slot];
    int need = blocks_for(c, len + n_new) - blocks_for(c, len);
    const int32_t *t = table_of(c, slot);
    // blocks reserved but not yet filled (a failed forward) count as held
    int held = 0;
    while (held < c->max_blocks && t[held] >= 0) held++;
    need -= held - blocks_for(c, len);
    if (need < 0) need = 0;
    if (n_new > 0 && len % c->block_size && c->ref[t[len / c->block_size]] > 1) need++;
    return need;
}

int hy_cache_reserve(hy_cache *c, int slot, int n_new) {
    const int len = c->len[slot];
    if (len + n_new > c->max_len)
        return hy_fail("cache slot %d would reach %d tokens, more than a sequence may hold (%d)", slot, len + n_new,
                       c->max_len);
    const int need = hy_cache_blocks_needed(c, slot, n_new);
    if (need > c->n_free)
        return hy_fail("KV pool exhausted: cache slot %d needs %d more block(s), %d free", slot, need, c->n_free);
    int32_t *t = table_of(c, slot);
    const int last = len / c->block_size;
    if (n_new > 0 && len % c->block_size && c->ref[t[last]] > 1) {
        const int fresh = take_block(c);
        copy_block_rows(c, fresh, t[last], len % c->block_size);
        drop_block(c, t[last]);
        t[last] = fresh;
    }
    for (int i = blocks_for(c, len); i < blocks_for(c, len + n_new); i++)
        if (t[i] < 0) t[i] = take_block(c);
    return 0;
}

int hy_cache_fork_slot(hy_cache *c, int src, int dst) {
    if (src == dst || c->len[dst] != 0 || table_of(c, dst)[0] >= 0)
        return hy_fail("internal: fork into cache slot %d needs an empty slot other than the source %d", dst, src);
    hy_backend *be = c->be;
    for (int l = 0; l < c->n_layers; l++) {
        if (!c->gdn_state[l]) continue;
        be->f32_copy(be, c->conv_window[l] + dst * c->window_floats, c->conv_window[l] + src * c->window_floats,
                     c->window_floats);
        be->f32_copy(be, c->gdn_state[l] + dst * c->state_floats, c->gdn_state[l] + src * c->state_floats,
                     c->state_floats);
    }
    const int32_t *ts = table_of(c, src);
    int32_t *td = table_of(c, dst);
    for (int i = 0; i < blocks_for(c, c->len[src]); i++) {
        td[i] = ts[i];
        c->ref[ts[i]]++;
    }
    c->len[dst] = c->len[src];
    return 0;
}

static int n_attn_layers(const hy_cache *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += c->k_pool[l] != NULL;
    return n;
}
static int n_gdn_layers(const hy_cache *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += c->gdn_state[l] != NULL;
    return n;
}

size_t hy_slot_image_bytes(const hy_cache *c, int len) {
    return (size_t)n_gdn_layers(c) * (c->state_floats + c->window_floats) * sizeof(float) +
           (size_t)n_attn_layers(c) * 2 * len * c->kv_width * c->be->act_bytes;
}

// Copies the rows [0, len) of slot in attention layer l between the pools and a host buffer laid
// out as K rows then V rows (each len·kv_width elements), block by block.
static void copy_kv_rows(const hy_cache *c, int slot, int l, int len, char *host, int to_host) {
    hy_backend *be = c->be;
    const size_t row_bytes = (size_t)c->kv_width * be->act_bytes, section = (size_t)len * row_bytes;
    for (int i = 0; i * c->block_size < len; i++) {
        const int rows = len - i * c->block_size < c->block_size ? len - i * c->block_size : c->block_size;
        const size_t pool_el = (size_t)table_of(c, slot)[i] * c->block_size * c->kv_width;
        char *hk = host + (size_t)i * c->block_size * row_bytes, *hv = hk + section;
        hy_act *pk = hy_act_at(be, c->k_pool[l], pool_el), *pv = hy_act_at(be, c->v_pool[l], pool_el);
        if (to_host) {
            be->bytes_to_host(be, hk, pk, rows * row_bytes);
            be->bytes_to_host(be, hv, pv, rows * row_bytes);
        } else {
            be->bytes_from_host(be, pk, hk, rows * row_bytes);
            be->bytes_from_host(be, pv, hv, rows * row_bytes);
        }
    }
}

void hy_cache_slot_save(const hy_cache *c, int slot, hy_slot_image *img) {
    hy_backend *be = c->be;
    const int len = c->len[slot];
    img->len = len;
    img->bytes = hy_slot_image_bytes(c, len);
    img->states = hy_malloc((size_t)n_gdn_layers(c) * (c->state_floats + c->window_floats) * sizeof(float) + 1);
    const size_t section = (size_t)len * c->kv_width;  // elements of one layer's K (or V) rows
    img->kv = hy_malloc((size_t)n_attn_layers(c) * 2 * section * be->act_bytes + 1);
    float *st = img->states;
    char *kv = img->kv;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->gdn_state[l]) {
            be->f32_to_host(be, st, c->gdn_state[l] + slot * c->state_floats, c->state_floats);
            be->f32_to_host(be, st + c->state_floats, c->conv_window[l] + slot * c->window_floats, c->window_floats);
            st += c->state_floats + c->window_floats;
        } else {
            copy_kv_rows(c, slot, l, len, kv, 1);
            kv += 2 * section * be->act_bytes;
        }
    }
}

int hy_cache_slot_load(hy_cache *c, int slot, const hy_slot_image *img) {
    if (c->len[slot] != 0 || table_of(c, slot)[0] >= 0)
        return hy_fail("internal: loading an image into cache slot %d, which is not empty", slot);
    if (hy_cache_reserve(c, slot, img->len)) return -1;
    hy_backend *be = c->be;
    const int len = img->len;
    const size_t section = (size_t)len * c->kv_width;
    const float *st = img->states;
    const char *kv = img->kv;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->gdn_state[l]) {
            be->f32_from_host(be, c->gdn_state[l] + slot * c->state_floats, st, c->state_floats);
            be->f32_from_host(be, c->conv_window[l] + slot * c->window_floats, st + c->state_floats, c->window_floats);
            st += c->state_floats + c->window_floats;
        } else {
            copy_kv_rows(c, slot, l, len, (char *)kv, 0);
            kv += 2 * section * be->act_bytes;
        }
    }
    c->len[slot] = len;
    return 0;
}

void hy_slot_image_free(hy_slot_image *img) {
    free(img->states);
    free(img->kv);
    memset(img, 0, sizeof *img);
}
