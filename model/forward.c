// Forward pass of the OLMo Hybrid model, written once against the hy_backend table (model.md,
// "Blocks"):
//
//   GDN layer (pre-norm):        h = x + GDN(RMSNorm_in(x));     y = h + MLP(RMSNorm_post(h))
//   Attention layer (post-norm): h = x + RMSNorm_pa(Attn(x));    y = h + RMSNorm_pf(MLP(h))
//
// A training forward keeps every intermediate in an hy_acts (acts.h) for the backward; an
// inference forward releases each layer's intermediates as soon as the layer is done, so scoring
// needs memory for one layer at a time. A checkpointed training forward (hy_model's
// recompute_layers) sits between the two: it releases each layer's intermediates like inference
// but keeps every layer's input, from which hy_layer_recompute re-runs the layer for the backward
// through the very same layer functions (so the recomputed numbers are the stored ones).
//
// With a cache, each document continues its cache slot: conv windows and GDN states are read as
// the initial state and written back, keys and values are written into the slot's KV blocks
// (reserved before any layer runs, so a full pool fails the call with nothing changed), and
// positions continue from the slot's length. The GDN form is chosen per document (one token: the
// recurrence; more: the chunked form), never per batch, so a document's numbers do not depend on
// what else is in the batch — what lets the rollout engine batch sequences freely and still
// reproduce one-at-a-time generation bit for bit on the CPU.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "acts.h"

enum { LOGITS_ROW_CHUNK = 64 };  // rows of logits materialised at once when only some are kept

void hy_acts_free(hy_acts *a) {
    if (!a) return;
    a->be->release(a->be, a->mark);
    free(a);
}

typedef struct {
    const hy_model *m;
    hy_backend *be;
    const hy_acts *a;
    hy_cache *cache;
    const int *slots;
    int T;
    int32_t *kv_rows;     // (T) host: the pool row each token's key and value go to (cached forward)
    paged_attn_shape pa;  // the batch's queries against its slots' blocks (host arrays)
    int keep;             // layers keep what their backward needs, until the backward
} fwd_ctx;

static hy_act *act(const fwd_ctx *f, size_t n) { return f->be->act_alloc(f->be, n); }
static float *f32(const fwd_ctx *f, size_t n) { return f->be->f32_alloc(f->be, n); }

// The GDN mixer over a cached batch: each maximal run of consecutive documents that are all one
// token long (decode) runs the recurrence on its slots' states in the pool, in place; each run of
// longer ones gathers its states, runs the chunked form and scatters them back.
static void gdn_cached_mixer(const fwd_ctx *f, const gdn_shape *all, hy_layer_acts *la, float *pool,
                             const int32_t *cu_host) {
    hy_backend *be = f->be;
    const int n_docs = f->a->n_docs, kdim = all->H_k * all->Dk, vdim = all->H_v * all->Dv;
    const size_t st_per = (size_t)all->H_v * all->Dk * all->Dv;
    int32_t *cu_run = hy_malloc(sizeof(int32_t) * (size_t)(n_docs + 1));
    for (int d0 = 0; d0 < n_docs;) {
        const int single = cu_host[d0 + 1] - cu_host[d0] == 1;
        int d1 = d0 + 1;
        while (d1 < n_docs && (cu_host[d1 + 1] - cu_host[d1] == 1) == single) d1++;
        const int t0 = cu_host[d0];
        for (int d = d0; d <= d1; d++) cu_run[d - d0] = cu_host[d] - t0;
        const size_t mark = be->mark(be);
        gdn_shape s = *all;
        s.T = cu_host[d1] - t0;
        s.n_docs = d1 - d0;
        hy_act *o = hy_act_at(be, la->o, (size_t)t0 * vdim);
        const hy_act *q = hy_act_at(be, la->qn, (size_t)t0 * kdim), *k = hy_act_at(be, la->kn, (size_t)t0 * kdim),
                     *v = hy_act_at(be, la->v, (size_t)t0 * vdim);
        const float *g = la->g + t0 * all->H_v, *beta = la->beta + t0 * all->H_v;
        if (single) {
            be->gdn_decode_pool(be, &s, o, pool, f->slots + d0, q, k, v, g, beta);
        } else {
            s.cu_seqlens = d0 == 0 && d1 == n_docs ? all->cu_seqlens : be->i32_upload(be, cu_run, (size_t)s.n_docs + 1);
            float *st = be->f32_alloc(be, (size_t)s.n_docs * st_per);
            be->f32_copy_rows(be, st, NULL, pool, f->slots + d0, s.n_docs, st_per);
            be->gdn_chunked_forward(be, &s, o, st, q, k, v, g, beta, st, NULL);
            be->f32_copy_rows(be, pool, f->slots + d0, st, NULL, s.n_docs, st_per);
        }
        be->release(be, mark);
        d0 = d1;
    }
    free(cu_run);
}

static void mlp_forward(const fwd_ctx *f, hy_layer_acts *la, int l, const hy_act *in, hy_act *out) {
    const hy_config *c = &f->m->cfg;
    const hy_layer_params *w = &f->m->pmm.layer[l];
    hy_backend *be = f->be;
    const int T = f->T, C = c->hidden_size, F = c->intermediate_size;
    la->mg = act(f, (size_t)T * F);
    la->mu = act(f, (size_t)T * F);
    la->mh = act(f, (size_t)T * F);
    be->linear_forward(be, la->mg, in, w->mlp_gate, T, C, F);
    be->linear_forward(be, la->mu, in, w->mlp_up, T, C, F);
    be->swiglu_forward(be, la->mh, la->mg, la->mu, T, F);
    be->linear_forward(be, out, la->mh, w->mlp_down, T, F, C);
}

static void gdn_layer_forward(const fwd_ctx *f, int l, hy_layer_acts *la, const hy_act *x, hy_act *y,
                              const int32_t *cu_host) {
    const hy_config *c = &f->m->cfg;
    const hy_layer_params *p = &f->m->p.layer[l], *w = &f->m->pmm.layer[l];
    hy_backend *be = f->be;
    const hy_acts *a = f->a;
    const int T = f->T, C = c->hidden_size, Hk = c->linear_num_key_heads, Hv = c->linear_num_value_heads;
    const int Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim, K = c->linear_conv_kernel_dim;
    const int kdim = Hk * Dk, vdim = Hv * Dv, conv_dim = hy_config_conv_dim(c);

    la->rstd_in = f32(f, T);
    la->xn = act(f, (size_t)T * C);
    be->rmsnorm_forward(be, la->xn, la->rstd_in, x, p->in_norm, T, C, c->rms_norm_eps);

    la->mixed = act(f, (size_t)T * conv_dim);
    la->conv_out = act(f, (size_t)T * conv_dim);
    be->linear_forward(be, la->mixed, la->xn, w->qkv_proj, T, C, conv_dim);
    if (f->cache)  // each document continues its slot's window, read and updated in the pool
        be->conv1d_silu_forward_pool(be, la->conv_out, f->cache->conv_window[l], f->slots, la->mixed, p->conv,
                                     a->cu_seqlens, a->n_docs, T, conv_dim, K);
    else
        be->conv1d_silu_forward(be, la->conv_out, NULL, la->mixed, p->conv, NULL, a->cu_seqlens, a->n_docs, T,
                                conv_dim, K);

    la->q = act(f, (size_t)T * kdim);
    la->k = act(f, (size_t)T * kdim);
    la->v = act(f, (size_t)T * vdim);
    be->copy_columns(be, la->q, la->conv_out, T, conv_dim, 0, kdim);
    be->copy_columns(be, la->k, la->conv_out, T, conv_dim, kdim, kdim);
    be->copy_columns(be, la->v, la->conv_out, T, conv_dim, 2 * kdim, vdim);
    la->qn = act(f, (size_t)T * kdim);
    la->kn = act(f, (size_t)T * kdim);
    la->rq = f32(f, (size_t)T * Hk);
    la->rk = f32(f, (size_t)T * Hk);
    be->l2norm_forward(be, la->qn, la->rq, la->q, T * Hk, Dk, 1e-6f);
    be->l2norm_forward(be, la->kn, la->rk, la->k, T * Hk, Dk, 1e-6f);

    la->a = act(f, (size_t)T * Hv);
    la->b = act(f, (size_t)T * Hv);
    la->beta = f32(f, (size_t)T * Hv);
    la->g = f32(f, (size_t)T * Hv);
    be->linear_forward(be, la->a, la->xn, w->a_proj, T, C, Hv);
    be->linear_forward(be, la->b, la->xn, w->b_proj, T, C, Hv);
    be->gdn_gates_forward(be, la->beta, la->g, la->b, la->a, p->A_log, p->dt_bias, T, Hv, c->linear_allow_neg_eigval);

    gdn_shape s = {T, a->n_docs, a->cu_seqlens, Hk, Hv, Dk, Dv, 1.0f / sqrtf((float)Dk)};
    la->o = act(f, (size_t)T * vdim);
    if (f->cache) {
        gdn_cached_mixer(f, &s, la, f->cache->gdn_state[l], cu_host);
    } else {
        be->gdn_chunked_forward(be, &s, la->o, NULL, la->qn, la->kn, la->v, la->g, la->beta, NULL,
                                f->keep ? &la->gdn_saved : NULL);
    }

    la->gate = act(f, (size_t)T * vdim);
    la->rstd_o = f32(f, (size_t)T * Hv);
    la->y = act(f, (size_t)T * vdim);
    be->linear_forward(be, la->gate, la->xn, w->g_proj, T, C, vdim);
    be->gated_rmsnorm_forward(be, la->y, la->rstd_o, la->o, la->gate, p->o_norm, T * Hv, Dv, 1e-5f);

    la->h = act(f, (size_t)T * C);
    be->linear_forward(be, la->h, la->y, w->o_proj, T, vdim, C);
    be->accumulate(be, la->h, x, (size_t)T * C);

    la->rstd_post = f32(f, T);
    la->hn = act(f, (size_t)T * C);
    be->rmsnorm_forward(be, la->hn, la->rstd_post, la->h, p->post_norm, T, C, c->rms_norm_eps);
    mlp_forward(f, la, l, la->hn, y);
    be->accumulate(be, y, la->h, (size_t)T * C);
}

static void attn_layer_forward(const fwd_ctx *f, int l, hy_layer_acts *la, const hy_act *x, hy_act *y,
                               const int32_t *cu_host) {
    const hy_config *c = &f->m->cfg;
    const hy_layer_params *p = &f->m->p.layer[l], *w = &f->m->pmm.layer[l];
    hy_backend *be = f->be;
    const hy_acts *a = f->a;
    const int T = f->T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads;
    const int D = c->head_dim, qdim = H * D, kvdim = Hkv * D;
    const float scale = 1.0f / sqrtf((float)D);

    la->aq = act(f, (size_t)T * qdim);
    la->ak = act(f, (size_t)T * kvdim);
    la->av = act(f, (size_t)T * kvdim);
    be->linear_forward(be, la->aq, x, w->q_proj, T, C, qdim);
    be->linear_forward(be, la->ak, x, w->k_proj, T, C, kvdim);
    be->linear_forward(be, la->av, x, w->v_proj, T, C, kvdim);
    la->rstd_q = f32(f, T);
    la->rstd_k = f32(f, T);
    la->qr = act(f, (size_t)T * qdim);
    la->kr = act(f, (size_t)T * kvdim);
    // QK-norm over the whole projection, before the head split (model.md)
    be->rmsnorm_forward(be, la->qr, la->rstd_q, la->aq, p->q_norm, T, qdim, c->rms_norm_eps);
    be->rmsnorm_forward(be, la->kr, la->rstd_k, la->ak, p->k_norm, T, kvdim, c->rms_norm_eps);
    if (c->rope) {
        be->rope_forward(be, la->qr, a->pos, T, H, D, c->rope_theta);
        be->rope_forward(be, la->kr, a->pos, T, Hkv, D, c->rope_theta);
    }

    la->attn = act(f, (size_t)T * qdim);
    if (f->cache) {
        hy_cache *cache = f->cache;
        be->kv_write_paged(be, cache->k_pool[l], la->kr, f->kv_rows, T, kvdim);
        be->kv_write_paged(be, cache->v_pool[l], la->av, f->kv_rows, T, kvdim);
        be->attention_paged(be, &f->pa, la->attn, la->qr, cache->k_pool[l], cache->v_pool[l]);
    } else {
        attn_shape s = {T, a->n_docs, a->cu_seqlens, H, Hkv, D, scale};
        la->lse = f32(f, (size_t)T * H);
        be->attention_forward(be, &s, la->attn, la->lse, la->qr, la->kr, la->av);
    }

    la->ap = act(f, (size_t)T * C);
    la->rstd_pa = f32(f, T);
    la->h = act(f, (size_t)T * C);
    be->linear_forward(be, la->ap, la->attn, w->attn_o_proj, T, qdim, C);
    be->rmsnorm_forward(be, la->h, la->rstd_pa, la->ap, p->post_attn_norm, T, C, c->rms_norm_eps);
    be->accumulate(be, la->h, x, (size_t)T * C);

    la->mo = act(f, (size_t)T * C);
    la->rstd_pf = f32(f, T);
    mlp_forward(f, la, l, la->h, la->mo);
    be->rmsnorm_forward(be, y, la->rstd_pf, la->mo, p->post_ff_norm, T, C, c->rms_norm_eps);
    be->accumulate(be, y, la->h, (size_t)T * C);
}

static void layer_forward(const fwd_ctx *f, int l, hy_layer_acts *la, const hy_act *x, hy_act *y,
                          const int32_t *cu_host) {
    if (f->m->cfg.layer_types[l] == HY_LAYER_GDN)
        gdn_layer_forward(f, l, la, x, y, cu_host);
    else
        attn_layer_forward(f, l, la, x, y, cu_host);
}

void hy_layer_recompute(const hy_model *m, const hy_acts *a, int l, hy_layer_acts *la) {
    fwd_ctx f = {m, m->be, a, NULL, NULL, a->T, NULL, {0}, 1};
    hy_act *x = a->layer[l].x;
    memset(la, 0, sizeof *la);
    la->x = x;
    // the output is the next layer's checkpoint, kept already: this buffer only gives the ops a target
    hy_act *y = act(&f, (size_t)a->T * m->cfg.hidden_size);
    layer_forward(&f, l, la, x, y, NULL);
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
            for (int e = 0; e < d; e++)
                if (slots[e] == s) return hy_fail("documents %d and %d of the batch both continue cache slot %d", e, d, s);
        }
    }
    return hy_model_check_tokens(m, b->tokens, b->T);
}

// Reserves every document's KV blocks (all or none) and builds the batch's pool rows and paged
// attention tables. Returns 0 / −1 (pool exhausted; the cache is unchanged).
static int prepare_cache(fwd_ctx *f, const hy_batch *b) {
    hy_cache *c = f->cache;
    int need = 0;
    for (int d = 0; d < b->n_docs; d++) need += hy_cache_blocks_needed(c, f->slots[d], b->cu_seqlens[d + 1] - b->cu_seqlens[d]);
    if (need > c->n_free)
        return hy_fail("KV pool exhausted: the batch needs %d more block(s), %d of %d free", need, c->n_free,
                       c->n_blocks);
    for (int d = 0; d < b->n_docs; d++)
        if (hy_cache_reserve(c, f->slots[d], b->cu_seqlens[d + 1] - b->cu_seqlens[d])) return -1;
    const int n = b->n_docs, bs = c->block_size;
    int32_t *buf = hy_malloc(sizeof(int32_t) * ((size_t)b->T + (size_t)n * c->max_blocks + 3 * (size_t)n));
    f->kv_rows = buf;
    int32_t *table = buf + b->T, *q_start = table + (size_t)n * c->max_blocks, *q_len = q_start + n, *lens = q_len + n;
    for (int d = 0; d < n; d++) {
        const int32_t *src = c->block_table + (size_t)f->slots[d] * c->max_blocks;
        memcpy(table + (size_t)d * c->max_blocks, src, sizeof(int32_t) * c->max_blocks);
        const int t0 = b->cu_seqlens[d], len0 = c->len[f->slots[d]];
        q_start[d] = t0;
        q_len[d] = b->cu_seqlens[d + 1] - t0;
        lens[d] = len0 + q_len[d];
        for (int t = t0; t < b->cu_seqlens[d + 1]; t++) {
            const int pos = len0 + t - t0;
            f->kv_rows[t] = src[pos / bs] * bs + pos % bs;
        }
    }
    const hy_config *cfg = &f->m->cfg;
    paged_attn_shape pa = {n, table, c->max_blocks, bs, q_start, q_len, lens, cfg->num_attention_heads,
                           cfg->num_key_value_heads, cfg->head_dim, 1.0f / sqrtf((float)cfg->head_dim)};
    f->pa = pa;
    return 0;
}

// Runs the layers and the final norm: a->xf (T, C) is the final hidden state. The returned hy_acts
// holds the training activations when keep is set (with m->recompute_layers only the layer
// inputs), and only the final state otherwise.
static hy_acts *forward_hidden(const hy_model *m, const hy_batch *b, int keep, hy_cache *cache, const int *slots) {
    const hy_config *c = &m->cfg;
    hy_backend *be = m->be;
    const int T = b->T, C = c->hidden_size;
    const int recompute = keep && m->recompute_layers;
    // checkpointed layers drop their intermediates (GDN saved state included) right after running
    fwd_ctx f = {m, be, NULL, cache, slots, T, NULL, {0}, keep && !recompute};
    if (cache && prepare_cache(&f, b)) return NULL;
    hy_acts *a = hy_calloc(1, sizeof *a);
    f.a = a;
    a->be = be;
    a->recompute = recompute;
    a->mark = be->mark(be);
    a->T = T;
    a->n_docs = b->n_docs;
    int32_t *pos = hy_malloc(sizeof(int32_t) * T);
    for (int d = 0; d < b->n_docs; d++)
        for (int t = b->cu_seqlens[d]; t < b->cu_seqlens[d + 1]; t++)
            pos[t] = t - b->cu_seqlens[d] + (cache ? cache->len[slots[d]] : 0);
    a->tokens = be->i32_upload(be, b->tokens, T);
    a->cu_seqlens = be->i32_upload(be, b->cu_seqlens, b->n_docs + 1);
    a->pos = be->i32_upload(be, pos, T);
    free(pos);

    hy_act *x = act(&f, (size_t)T * C);
    be->embedding_forward(be, x, a->tokens, m->pmm.embed, T, C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        hy_layer_acts *la = &a->layer[l];
        if (recompute) {
            // the layer output is the next layer's checkpoint: taken before the layer's mark so it
            // outlives the intermediates released after the layer
            hy_act *y = act(&f, (size_t)T * C);
            const size_t layer_mark = be->mark(be);
            layer_forward(&f, l, la, x, y, b->cu_seqlens);
            be->release(be, layer_mark);
            memset(la, 0, sizeof *la);
            la->x = x;
            x = y;
            continue;
        }
        const size_t layer_mark = be->mark(be);
        hy_act *y = act(&f, (size_t)T * C);
        la->x = x;
        layer_forward(&f, l, la, x, y, b->cu_seqlens);
        if (!keep) {
            // keep only the layer output, in the buffer of the previous residual
            be->act_copy(be, x, y, (size_t)T * C);
            be->release(be, layer_mark);
            memset(la, 0, sizeof *la);
        } else {
            x = y;
        }
    }
    if (cache)
        for (int d = 0; d < b->n_docs; d++) cache->len[slots[d]] += b->cu_seqlens[d + 1] - b->cu_seqlens[d];
    free(f.kv_rows);
    a->x_final = x;
    a->rstd_final = f32(&f, T);
    a->xf = act(&f, (size_t)T * C);
    be->rmsnorm_forward(be, a->xf, a->rstd_final, x, m->p.final_norm, T, C, c->rms_norm_eps);
    return a;
}

int hy_model_forward(const hy_model *m, const hy_batch *b, hy_logits_mode mode, float *logits, hy_acts **acts,
                     hy_cache *cache, const int *slots) {
    if (check_batch(m, b, cache, slots)) return -1;
    if (cache && acts) return hy_fail("internal: a training forward cannot start from a cache");
    hy_backend *be = m->be;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    hy_acts *a = forward_hidden(m, b, acts != NULL, cache, slots);
    if (!a) return -1;
    if (mode != HY_LOGITS_NONE) {
        const size_t mark = be->mark(be);
        const int rows = mode == HY_LOGITS_ALL ? b->T : b->n_docs;
        float *out = mode == HY_LOGITS_LAST_DOC_BACKEND ? logits : be->f32_alloc(be, (size_t)rows * V);
        if (mode == HY_LOGITS_ALL) {
            be->linear_forward_f32(be, out, a->xf, m->pmm.lm_head, b->T, C, V);
        } else {
            // each document's last row side by side, so the lm head's weights (V·C, the largest
            // matrix) are read once per step for all sequences rather than once per sequence; a
            // row's logits do not depend on the rows beside it. A decode batch (one token per
            // document) has its last rows side by side already.
            const hy_act *last = a->xf;
            if (b->T != b->n_docs) {
                hy_act *rows = be->act_alloc(be, (size_t)b->n_docs * C);
                for (int d = 0; d < b->n_docs; d++)
                    be->act_copy(be, hy_act_at(be, rows, (size_t)d * C),
                                 hy_act_at(be, a->xf, (size_t)(b->cu_seqlens[d + 1] - 1) * C), C);
                last = rows;
            }
            be->linear_forward_f32(be, out, last, m->pmm.lm_head, b->n_docs, C, V);
        }
        if (mode != HY_LOGITS_LAST_DOC_BACKEND) be->f32_to_host(be, logits, out, (size_t)rows * V);
        be->release(be, mark);
    }
    if (acts)
        *acts = a;
    else
        hy_acts_free(a);
    return 0;
}

const hy_act *hy_acts_final_hidden(const hy_acts *a) { return a->xf; }

int hy_model_score(const hy_model *m, const hy_batch *b, float *out) {
    if (check_batch(m, b, NULL, NULL)) return -1;
    hy_backend *be = m->be;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size, T = b->T;
    hy_acts *a = forward_hidden(m, b, 0, NULL, NULL);
    // targets: the next token of the same document; a document's last token predicts nothing
    int32_t *target = hy_malloc(sizeof(int32_t) * T);
    for (int d = 0; d < b->n_docs; d++)
        for (int t = b->cu_seqlens[d]; t < b->cu_seqlens[d + 1]; t++)
            target[t] = t + 1 < b->cu_seqlens[d + 1] ? b->tokens[t + 1] : -1;
    const size_t mark = be->mark(be);
    int32_t *target_dev = be->i32_upload(be, target, T);
    float *logits = be->f32_alloc(be, (size_t)LOGITS_ROW_CHUNK * V);
    float *lse = be->f32_alloc(be, LOGITS_ROW_CHUNK), *logp = be->f32_alloc(be, T);
    for (int t0 = 0; t0 < T; t0 += LOGITS_ROW_CHUNK) {
        const int rows = T - t0 < LOGITS_ROW_CHUNK ? T - t0 : LOGITS_ROW_CHUNK;
        be->linear_forward_f32(be, logits, hy_act_at(be, a->xf, (size_t)t0 * C), m->pmm.lm_head, rows, C, V);
        be->logprobs_forward(be, logp + t0, lse, logits, target_dev + t0, rows, V);
    }
    float *host = hy_malloc(sizeof(float) * T);
    be->f32_to_host(be, host, logp, T);
    be->release(be, mark);
    int n_out = 0;
    for (int t = 0; t < T; t++)
        if (target[t] >= 0) out[n_out++] = host[t];
    free(host);
    free(target);
    hy_acts_free(a);
    return 0;
}
