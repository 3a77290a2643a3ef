// Forward pass of the OLMo Hybrid model on the CPU reference ops (model.md, "Blocks").
//
//   GDN layer (pre-norm):        h = x + GDN(RMSNorm_in(x));     y = h + MLP(RMSNorm_post(h))
//   Attention layer (post-norm): h = x + RMSNorm_pa(Attn(x));    y = h + RMSNorm_pf(MLP(h))
//
// A training forward keeps every intermediate in an hy_acts (acts.h) for the backward; an
// inference forward frees each layer's intermediates as soon as the layer is done, so scoring
// needs memory for one layer at a time. With a cache, each document continues its cache slot:
// conv windows and GDN states are read as the initial state and written back, keys and values are
// appended to the slot's KV cache, and positions continue from the slot's length.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../kernels/ops_cpu.h"
#include "acts.h"

enum { LOGITS_ROW_CHUNK = 64 };  // rows of logits materialised at once when only some are kept

static float *acts_alloc(hy_acts *a, size_t n) {
    if (a->n_owned == a->cap_owned) {
        a->cap_owned = a->cap_owned ? 2 * a->cap_owned : 256;
        a->owned = hy_realloc(a->owned, (size_t)a->cap_owned * sizeof *a->owned);
    }
    float *p = hy_calloc(n ? n : 1, sizeof(float));
    a->owned[a->n_owned++] = p;
    return p;
}

static void acts_release_from(hy_acts *a, int start) {
    for (int i = start; i < a->n_owned; i++) free(a->owned[i]);
    a->n_owned = start;
}

void hy_acts_free(hy_acts *a) {
    if (!a) return;
    acts_release_from(a, 0);
    free(a->owned);
    free(a->tokens);
    free(a->cu_seqlens);
    free(a->pos);
    free(a);
}

typedef struct {
    const hy_model *m;
    hy_acts *a;
    hy_cache *cache;
    const int *slots;
    int T;
} fwd_ctx;

// Copies columns [col, col + width) of src (T, stride) into a new (T, width) buffer.
static float *take_columns(hy_acts *a, const float *src, int T, int stride, int col, int width) {
    float *dst = acts_alloc(a, (size_t)T * width);
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * width, src + (size_t)t * stride + col, sizeof(float) * width);
    return dst;
}

// Gathers the cache slots' per-document state into a contiguous (n_docs, per) buffer and back.
static void gather_state(float *dst, float *const *layer_buf, const int *slots, int n_docs, size_t per) {
    for (int d = 0; d < n_docs; d++) memcpy(dst + d * per, *layer_buf + (size_t)slots[d] * per, per * sizeof(float));
}
static void scatter_state(float *const *layer_buf, const float *src, const int *slots, int n_docs, size_t per) {
    for (int d = 0; d < n_docs; d++) memcpy(*layer_buf + (size_t)slots[d] * per, src + d * per, per * sizeof(float));
}

static int all_docs_single_token(const hy_acts *a) {
    for (int d = 0; d < a->n_docs; d++)
        if (a->cu_seqlens[d + 1] - a->cu_seqlens[d] != 1) return 0;
    return 1;
}

static void mlp_forward(const fwd_ctx *f, hy_layer_acts *la, const hy_layer_params *p, const float *in, float *out) {
    const hy_config *c = &f->m->cfg;
    const int T = f->T, C = c->hidden_size, F = c->intermediate_size;
    la->mg = acts_alloc(f->a, (size_t)T * F);
    la->mu = acts_alloc(f->a, (size_t)T * F);
    la->mh = acts_alloc(f->a, (size_t)T * F);
    linear_forward(la->mg, in, p->mlp_gate, T, C, F);
    linear_forward(la->mu, in, p->mlp_up, T, C, F);
    swiglu_forward(la->mh, la->mg, la->mu, T, F);
    linear_forward(out, la->mh, p->mlp_down, T, F, C);
}

static void gdn_layer_forward(const fwd_ctx *f, int l, hy_layer_acts *la, const float *x, float *y) {
    const hy_config *c = &f->m->cfg;
    const hy_layer_params *p = &f->m->p.layer[l];
    hy_acts *a = f->a;
    const int T = f->T, C = c->hidden_size, Hk = c->linear_num_key_heads, Hv = c->linear_num_value_heads;
    const int Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim, K = c->linear_conv_kernel_dim;
    const int kdim = Hk * Dk, vdim = Hv * Dv, conv_dim = hy_config_conv_dim(c);

    la->rstd_in = acts_alloc(a, T);
    la->xn = acts_alloc(a, (size_t)T * C);
    rmsnorm_forward(la->xn, la->rstd_in, x, p->in_norm, T, C, c->rms_norm_eps);

    la->mixed = acts_alloc(a, (size_t)T * conv_dim);
    la->conv_out = acts_alloc(a, (size_t)T * conv_dim);
    linear_forward(la->mixed, la->xn, p->qkv_proj, T, C, conv_dim);
    const size_t win_per = (size_t)conv_dim * (K - 1);
    float *window = NULL;
    if (f->cache) {
        window = acts_alloc(a, a->n_docs * win_per);
        gather_state(window, &f->cache->conv_window[l], f->slots, a->n_docs, win_per);
    }
    conv1d_silu_forward(la->conv_out, window, la->mixed, p->conv, window, a->cu_seqlens, a->n_docs, T, conv_dim, K);
    if (f->cache) scatter_state(&f->cache->conv_window[l], window, f->slots, a->n_docs, win_per);

    la->q = take_columns(a, la->conv_out, T, conv_dim, 0, kdim);
    la->k = take_columns(a, la->conv_out, T, conv_dim, kdim, kdim);
    la->v = take_columns(a, la->conv_out, T, conv_dim, 2 * kdim, vdim);
    la->qn = acts_alloc(a, (size_t)T * kdim);
    la->kn = acts_alloc(a, (size_t)T * kdim);
    la->rq = acts_alloc(a, (size_t)T * Hk);
    la->rk = acts_alloc(a, (size_t)T * Hk);
    l2norm_forward(la->qn, la->rq, la->q, T * Hk, Dk, 1e-6f);
    l2norm_forward(la->kn, la->rk, la->k, T * Hk, Dk, 1e-6f);

    la->a = acts_alloc(a, (size_t)T * Hv);
    la->b = acts_alloc(a, (size_t)T * Hv);
    la->beta = acts_alloc(a, (size_t)T * Hv);
    la->g = acts_alloc(a, (size_t)T * Hv);
    linear_forward(la->a, la->xn, p->a_proj, T, C, Hv);
    linear_forward(la->b, la->xn, p->b_proj, T, C, Hv);
    gdn_gates_forward(la->beta, la->g, la->b, la->a, p->A_log, p->dt_bias, T, Hv, c->linear_allow_neg_eigval);

    gdn_shape s = {T, a->n_docs, a->cu_seqlens, Hk, Hv, Dk, Dv, 1.0f / sqrtf((float)Dk)};
    la->o = acts_alloc(a, (size_t)T * vdim);
    if (f->cache) {
        const size_t st_per = (size_t)Hv * Dk * Dv;
        float *state = acts_alloc(a, a->n_docs * st_per);
        gather_state(state, &f->cache->gdn_state[l], f->slots, a->n_docs, st_per);
        // decode (one token per sequence) runs the recurrence, as the rollout engine will
        if (all_docs_single_token(a))
            gdn_recurrent_forward(&s, la->o, state, la->qn, la->kn, la->v, la->g, la->beta, state);
        else
            gdn_chunked_forward(&s, la->o, state, la->qn, la->kn, la->v, la->g, la->beta, state);
        scatter_state(&f->cache->gdn_state[l], state, f->slots, a->n_docs, st_per);
    } else {
        gdn_chunked_forward(&s, la->o, NULL, la->qn, la->kn, la->v, la->g, la->beta, NULL);
    }

    la->gate = acts_alloc(a, (size_t)T * vdim);
    la->rstd_o = acts_alloc(a, (size_t)T * Hv);
    la->y = acts_alloc(a, (size_t)T * vdim);
    linear_forward(la->gate, la->xn, p->g_proj, T, C, vdim);
    gated_rmsnorm_forward(la->y, la->rstd_o, la->o, la->gate, p->o_norm, T * Hv, Dv, 1e-5f);

    la->h = acts_alloc(a, (size_t)T * C);
    linear_forward(la->h, la->y, p->o_proj, T, vdim, C);
    for (size_t i = 0; i < (size_t)T * C; i++) la->h[i] += x[i];

    la->rstd_post = acts_alloc(a, T);
    la->hn = acts_alloc(a, (size_t)T * C);
    rmsnorm_forward(la->hn, la->rstd_post, la->h, p->post_norm, T, C, c->rms_norm_eps);
    mlp_forward(f, la, p, la->hn, y);
    for (size_t i = 0; i < (size_t)T * C; i++) y[i] += la->h[i];
}

static void attn_layer_forward(const fwd_ctx *f, int l, hy_layer_acts *la, const float *x, float *y) {
    const hy_config *c = &f->m->cfg;
    const hy_layer_params *p = &f->m->p.layer[l];
    hy_acts *a = f->a;
    const int T = f->T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads;
    const int D = c->head_dim, qdim = H * D, kvdim = Hkv * D;
    const float scale = 1.0f / sqrtf((float)D);

    la->aq = acts_alloc(a, (size_t)T * qdim);
    la->ak = acts_alloc(a, (size_t)T * kvdim);
    la->av = acts_alloc(a, (size_t)T * kvdim);
    linear_forward(la->aq, x, p->q_proj, T, C, qdim);
    linear_forward(la->ak, x, p->k_proj, T, C, kvdim);
    linear_forward(la->av, x, p->v_proj, T, C, kvdim);
    la->rstd_q = acts_alloc(a, T);
    la->rstd_k = acts_alloc(a, T);
    la->qr = acts_alloc(a, (size_t)T * qdim);
    la->kr = acts_alloc(a, (size_t)T * kvdim);
    // QK-norm over the whole projection, before the head split (model.md)
    rmsnorm_forward(la->qr, la->rstd_q, la->aq, p->q_norm, T, qdim, c->rms_norm_eps);
    rmsnorm_forward(la->kr, la->rstd_k, la->ak, p->k_norm, T, kvdim, c->rms_norm_eps);
    if (c->rope) {
        rope_forward(la->qr, a->pos, T, H, D, c->rope_theta);
        rope_forward(la->kr, a->pos, T, Hkv, D, c->rope_theta);
    }

    la->attn = acts_alloc(a, (size_t)T * qdim);
    if (f->cache) {
        hy_cache *cache = f->cache;
        const size_t slot_stride = (size_t)cache->max_len * kvdim;
        for (int d = 0; d < a->n_docs; d++) {
            const int t0 = a->cu_seqlens[d], n = a->cu_seqlens[d + 1] - t0, slot = f->slots[d];
            const int p0 = cache->len[slot];
            float *kc = cache->k_cache[l] + slot * slot_stride, *vc = cache->v_cache[l] + slot * slot_stride;
            memcpy(kc + (size_t)p0 * kvdim, la->kr + (size_t)t0 * kvdim, sizeof(float) * n * kvdim);
            memcpy(vc + (size_t)p0 * kvdim, la->av + (size_t)t0 * kvdim, sizeof(float) * n * kvdim);
            attention_cached_forward(la->attn + (size_t)t0 * qdim, la->qr + (size_t)t0 * qdim, kc, vc, n, p0, H, Hkv,
                                     D, scale);
        }
    } else {
        attn_shape s = {T, a->n_docs, a->cu_seqlens, H, Hkv, D, scale};
        la->lse = acts_alloc(a, (size_t)T * H);
        attention_forward(&s, la->attn, la->lse, la->qr, la->kr, la->av);
    }

    la->ap = acts_alloc(a, (size_t)T * C);
    la->rstd_pa = acts_alloc(a, T);
    la->h = acts_alloc(a, (size_t)T * C);
    linear_forward(la->ap, la->attn, p->attn_o_proj, T, qdim, C);
    rmsnorm_forward(la->h, la->rstd_pa, la->ap, p->post_attn_norm, T, C, c->rms_norm_eps);
    for (size_t i = 0; i < (size_t)T * C; i++) la->h[i] += x[i];

    la->mo = acts_alloc(a, (size_t)T * C);
    la->rstd_pf = acts_alloc(a, T);
    mlp_forward(f, la, p, la->h, la->mo);
    rmsnorm_forward(y, la->rstd_pf, la->mo, p->post_ff_norm, T, C, c->rms_norm_eps);
    for (size_t i = 0; i < (size_t)T * C; i++) y[i] += la->h[i];
}

static int check_batch(const hy_model *m, const hy_batch *b, const hy_cache *cache, const int *slots) {
    if (b->T <= 0) return hy_fail("empty input: a batch needs at least one token");
    if (b->n_docs <= 0 || b->cu_seqlens[0] != 0 || b->cu_seqlens[b->n_docs] != b->T)
        return hy_fail("document boundaries (cu_seqlens) must start at 0 and end at T = %d", b->T);
    for (int d = 0; d < b->n_docs; d++) {
        if (b->cu_seqlens[d + 1] <= b->cu_seqlens[d]) return hy_fail("document %d is empty", d);
        if (cache) {
            int s = slots[d], len = b->cu_seqlens[d + 1] - b->cu_seqlens[d];
            if (s < 0 || s >= cache->n_slots) return hy_fail("cache slot %d out of range [0, %d)", s, cache->n_slots);
            if (cache->len[s] + len > cache->max_len)
                return hy_fail("sequence in cache slot %d would reach %d tokens, more than the cache holds (%d)", s,
                               cache->len[s] + len, cache->max_len);
        }
    }
    return hy_model_check_tokens(m, b->tokens, b->T);
}

// Runs the layers and the final norm: xf (T, C) is the final hidden state. The returned hy_acts
// holds the training activations when keep is set, and nothing else otherwise.
static hy_acts *forward_hidden(const hy_model *m, const hy_batch *b, int keep, hy_cache *cache, const int *slots) {
    const hy_config *c = &m->cfg;
    const int T = b->T, C = c->hidden_size;
    hy_acts *a = hy_calloc(1, sizeof *a);
    a->T = T;
    a->n_docs = b->n_docs;
    a->tokens = hy_malloc(sizeof(int32_t) * T);
    a->cu_seqlens = hy_malloc(sizeof(int32_t) * (b->n_docs + 1));
    a->pos = hy_malloc(sizeof(int32_t) * T);
    memcpy(a->tokens, b->tokens, sizeof(int32_t) * T);
    memcpy(a->cu_seqlens, b->cu_seqlens, sizeof(int32_t) * (b->n_docs + 1));
    for (int d = 0; d < b->n_docs; d++)
        for (int t = b->cu_seqlens[d]; t < b->cu_seqlens[d + 1]; t++)
            a->pos[t] = t - b->cu_seqlens[d] + (cache ? cache->len[slots[d]] : 0);

    fwd_ctx f = {m, a, cache, slots, T};
    float *x = acts_alloc(a, (size_t)T * C);
    embedding_forward(x, b->tokens, m->p.embed, T, C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        hy_layer_acts *la = &a->layer[l];
        const int mark = a->n_owned;
        float *y = acts_alloc(a, (size_t)T * C);
        la->x = x;
        if (c->layer_types[l] == HY_LAYER_GDN)
            gdn_layer_forward(&f, l, la, x, y);
        else
            attn_layer_forward(&f, l, la, x, y);
        if (!keep) {
            // keep only the layer output: move it to the slot of the previous residual buffer
            memcpy(x, y, sizeof(float) * (size_t)T * C);
            acts_release_from(a, mark);
            memset(la, 0, sizeof *la);
        } else {
            x = y;
        }
    }
    if (cache)
        for (int d = 0; d < b->n_docs; d++) cache->len[slots[d]] += b->cu_seqlens[d + 1] - b->cu_seqlens[d];
    a->x_final = x;
    a->rstd_final = acts_alloc(a, T);
    a->xf = acts_alloc(a, (size_t)T * C);
    rmsnorm_forward(a->xf, a->rstd_final, x, m->p.final_norm, T, C, c->rms_norm_eps);
    return a;
}

int hy_model_forward(const hy_model *m, const hy_batch *b, hy_logits_mode mode, float *logits, hy_acts **acts,
                     hy_cache *cache, const int *slots) {
    if (check_batch(m, b, cache, slots)) return -1;
    if (cache && acts) return hy_fail("internal: a training forward cannot start from a cache");
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    hy_acts *a = forward_hidden(m, b, acts != NULL, cache, slots);
    if (mode == HY_LOGITS_NONE) {
        // the caller reads the final hidden state from the acts
    } else if (mode == HY_LOGITS_ALL) {
        linear_forward(logits, a->xf, m->p.lm_head, b->T, C, V);
    } else {
        for (int d = 0; d < b->n_docs; d++)
            linear_forward(logits + (size_t)d * V, a->xf + (size_t)(b->cu_seqlens[d + 1] - 1) * C, m->p.lm_head, 1,
                           C, V);
    }
    if (acts)
        *acts = a;
    else
        hy_acts_free(a);
    return 0;
}

const float *hy_acts_final_hidden(const hy_acts *a) { return a->xf; }

int hy_model_score(const hy_model *m, const hy_batch *b, float *out) {
    if (check_batch(m, b, NULL, NULL)) return -1;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size, T = b->T;
    hy_acts *a = forward_hidden(m, b, 0, NULL, NULL);
    // targets: the next token of the same document; a document's last token predicts nothing
    int32_t *target = hy_malloc(sizeof(int32_t) * T);
    for (int d = 0; d < b->n_docs; d++)
        for (int t = b->cu_seqlens[d]; t < b->cu_seqlens[d + 1]; t++)
            target[t] = t + 1 < b->cu_seqlens[d + 1] ? b->tokens[t + 1] : -1;
    float *logits = hy_malloc(sizeof(float) * (size_t)LOGITS_ROW_CHUNK * V);
    float lse[LOGITS_ROW_CHUNK], logp[LOGITS_ROW_CHUNK];
    int n_out = 0;
    for (int t0 = 0; t0 < T; t0 += LOGITS_ROW_CHUNK) {
        const int rows = T - t0 < LOGITS_ROW_CHUNK ? T - t0 : LOGITS_ROW_CHUNK;
        linear_forward(logits, a->xf + (size_t)t0 * C, m->p.lm_head, rows, C, V);
        logprobs_forward(logp, lse, logits, target + t0, rows, V);
        for (int r = 0; r < rows; r++)
            if (target[t0 + r] >= 0) out[n_out++] = logp[r];
    }
    free(logits);
    free(target);
    hy_acts_free(a);
    return 0;
}
