// Backward pass of the OLMo Hybrid model: the reverse of forward.c, step by step, using the
// activations it kept, written once against the hy_backend table. Every backward entry point
// accumulates (+=), so gradients flowing into one tensor from several consumers (xn feeds six
// projections) simply add up, and parameter gradients accumulate into the caller's buffer (same
// layout as the parameter arena, in backend memory). Gradient buffers of one layer come from the
// backend arena and are released when the layer is done.
//
// When the forward was checkpointed (acts->recompute), each layer first re-runs its forward from
// its kept input under the same mark, so at most one layer's intermediates exist at a time; the
// layer backwards read their hy_layer_acts from the caller for that reason, not from the acts.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "acts.h"

typedef struct {
    const hy_model *m;
    hy_backend *be;
    const hy_acts *a;
    hy_params g;  // gradient views (fp32)
    int T;
} bwd_ctx;

static hy_act *zact(const bwd_ctx *b, size_t n) { return b->be->act_alloc(b->be, n); }
static float *zf32(const bwd_ctx *b, size_t n) { return b->be->f32_alloc(b->be, n); }

// MLP: out = down(silu(gate(in)) · up(in)); din += ...
static void mlp_backward(const bwd_ctx *b, const hy_layer_acts *la, int l, const hy_act *in, const hy_act *dout,
                         hy_act *din) {
    const hy_config *c = &b->m->cfg;
    const hy_layer_params *w = &b->m->pmm.layer[l];
    const hy_layer_params *g = &b->g.layer[l];
    hy_backend *be = b->be;
    const int T = b->T, C = c->hidden_size, F = c->intermediate_size;
    hy_act *dmh = zact(b, (size_t)T * F), *dmg = zact(b, (size_t)T * F), *dmu = zact(b, (size_t)T * F);
    be->linear_backward(be, dmh, g->mlp_down, dout, la->mh, w->mlp_down, T, F, C);
    be->swiglu_backward(be, dmg, dmu, dmh, la->mg, la->mu, T, F);
    be->linear_backward(be, din, g->mlp_gate, dmg, in, w->mlp_gate, T, C, F);
    be->linear_backward(be, din, g->mlp_up, dmu, in, w->mlp_up, T, C, F);
}

// dy: gradient of the layer output; dx (zeroed by the caller) receives the input gradient.
static void gdn_layer_backward(const bwd_ctx *b, int l, const hy_layer_acts *la, const hy_act *dy, hy_act *dx) {
    const hy_config *c = &b->m->cfg;
    const hy_layer_params *p = &b->m->p.layer[l], *w = &b->m->pmm.layer[l];
    const hy_layer_params *g = &b->g.layer[l];
    hy_backend *be = b->be;
    const int T = b->T, C = c->hidden_size, Hk = c->linear_num_key_heads, Hv = c->linear_num_value_heads;
    const int Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim, K = c->linear_conv_kernel_dim;
    const int kdim = Hk * Dk, vdim = Hv * Dv, conv_dim = hy_config_conv_dim(c);
    const size_t TC = (size_t)T * C;

    // y = h + MLP(RMSNorm_post(h))
    hy_act *dh = zact(b, TC), *dhn = zact(b, TC);
    be->act_copy(be, dh, dy, TC);
    mlp_backward(b, la, l, la->hn, dy, dhn);
    be->rmsnorm_backward(be, dh, g->post_norm, dhn, la->h, p->post_norm, la->rstd_post, T, C);

    // h = x + o_proj(gated_norm(o, gate))
    be->accumulate(be, dx, dh, TC);
    hy_act *dyn = zact(b, (size_t)T * vdim), *dout = zact(b, (size_t)T * vdim), *dgate = zact(b, (size_t)T * vdim);
    be->linear_backward(be, dyn, g->o_proj, dh, la->y, w->o_proj, T, vdim, C);
    be->gated_rmsnorm_backward(be, dout, dgate, g->o_norm, dyn, la->o, la->gate, p->o_norm, la->rstd_o, T * Hv, Dv);
    hy_act *dxn = zact(b, TC);
    be->linear_backward(be, dxn, g->g_proj, dgate, la->xn, w->g_proj, T, C, vdim);

    // the gated delta rule and its gates
    gdn_shape s = {T, b->a->n_docs, b->a->cu_seqlens, Hk, Hv, Dk, Dv, 1.0f / sqrtf((float)Dk)};
    hy_act *dqn = zact(b, (size_t)T * kdim), *dkn = zact(b, (size_t)T * kdim), *dv = zact(b, (size_t)T * vdim);
    float *dg = zf32(b, (size_t)T * Hv), *dbeta = zf32(b, (size_t)T * Hv);
    be->gdn_chunked_backward(be, &s, dqn, dkn, dv, dg, dbeta, dout, la->qn, la->kn, la->v, la->g, la->beta,
                             la->gdn_saved);
    hy_act *da = zact(b, (size_t)T * Hv), *db = zact(b, (size_t)T * Hv);
    be->gdn_gates_backward(be, db, da, g->A_log, g->dt_bias, dbeta, dg, la->b, la->a, p->A_log, p->dt_bias, T, Hv,
                           c->linear_allow_neg_eigval);
    be->linear_backward(be, dxn, g->a_proj, da, la->xn, w->a_proj, T, C, Hv);
    be->linear_backward(be, dxn, g->b_proj, db, la->xn, w->b_proj, T, C, Hv);

    // q, k l2 norms, then back through the split, the conv and the fused q|k|v projection
    hy_act *dconv_out = zact(b, (size_t)T * conv_dim), *dmixed = zact(b, (size_t)T * conv_dim);
    hy_act *dq = zact(b, (size_t)T * kdim), *dk = zact(b, (size_t)T * kdim);
    be->l2norm_backward(be, dq, dqn, la->q, la->rq, T * Hk, Dk);
    be->l2norm_backward(be, dk, dkn, la->k, la->rk, T * Hk, Dk);
    be->accumulate_columns(be, dconv_out, dq, T, conv_dim, 0, kdim);
    be->accumulate_columns(be, dconv_out, dk, T, conv_dim, kdim, kdim);
    be->accumulate_columns(be, dconv_out, dv, T, conv_dim, 2 * kdim, vdim);
    be->conv1d_silu_backward(be, dmixed, g->conv, dconv_out, la->mixed, p->conv, b->a->cu_seqlens, b->a->n_docs, T,
                             conv_dim, K);
    be->linear_backward(be, dxn, g->qkv_proj, dmixed, la->xn, w->qkv_proj, T, C, conv_dim);

    be->rmsnorm_backward(be, dx, g->in_norm, dxn, la->x, p->in_norm, la->rstd_in, T, C);
}

static void attn_layer_backward(const bwd_ctx *b, int l, const hy_layer_acts *la, const hy_act *dy, hy_act *dx) {
    const hy_config *c = &b->m->cfg;
    const hy_layer_params *p = &b->m->p.layer[l], *w = &b->m->pmm.layer[l];
    const hy_layer_params *g = &b->g.layer[l];
    hy_backend *be = b->be;
    const int T = b->T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads;
    const int D = c->head_dim, qdim = H * D, kvdim = Hkv * D;
    const size_t TC = (size_t)T * C;

    // y = h + RMSNorm_pf(MLP(h))
    hy_act *dh = zact(b, TC), *dmo = zact(b, TC);
    be->act_copy(be, dh, dy, TC);
    be->rmsnorm_backward(be, dmo, g->post_ff_norm, dy, la->mo, p->post_ff_norm, la->rstd_pf, T, C);
    mlp_backward(b, la, l, la->h, dmo, dh);

    // h = x + RMSNorm_pa(o_proj(attn))
    be->accumulate(be, dx, dh, TC);
    hy_act *dap = zact(b, TC), *dattn = zact(b, (size_t)T * qdim);
    be->rmsnorm_backward(be, dap, g->post_attn_norm, dh, la->ap, p->post_attn_norm, la->rstd_pa, T, C);
    be->linear_backward(be, dattn, g->attn_o_proj, dap, la->attn, w->attn_o_proj, T, qdim, C);

    attn_shape s = {T, b->a->n_docs, b->a->cu_seqlens, H, Hkv, D, 1.0f / sqrtf((float)D)};
    hy_act *dqr = zact(b, (size_t)T * qdim), *dkr = zact(b, (size_t)T * kvdim), *dav = zact(b, (size_t)T * kvdim);
    be->attention_backward(be, &s, dqr, dkr, dav, dattn, la->qr, la->kr, la->av, la->attn, la->lse);
    if (c->rope) {
        be->rope_backward(be, dqr, b->a->pos, T, H, D, c->rope_theta);
        be->rope_backward(be, dkr, b->a->pos, T, Hkv, D, c->rope_theta);
    }
    hy_act *daq = zact(b, (size_t)T * qdim), *dak = zact(b, (size_t)T * kvdim);
    be->rmsnorm_backward(be, daq, g->q_norm, dqr, la->aq, p->q_norm, la->rstd_q, T, qdim);
    be->rmsnorm_backward(be, dak, g->k_norm, dkr, la->ak, p->k_norm, la->rstd_k, T, kvdim);
    be->linear_backward(be, dx, g->q_proj, daq, la->x, w->q_proj, T, C, qdim);
    be->linear_backward(be, dx, g->k_proj, dak, la->x, w->k_proj, T, C, kvdim);
    be->linear_backward(be, dx, g->v_proj, dav, la->x, w->v_proj, T, C, kvdim);
}

void hy_model_backward_hidden(const hy_model *m, hy_acts *a, const hy_act *dxf, float *grads) {
    const hy_config *c = &m->cfg;
    hy_backend *be = m->be;
    const int T = a->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    bwd_ctx b = {m, be, a, {0}, T};
    hy_params_bind(&b.g, &m->table, c, grads);

    const size_t mark = be->mark(be);
    hy_act *dx = zact(&b, TC), *dnext = zact(&b, TC);
    be->rmsnorm_backward(be, dx, b.g.final_norm, dxf, a->x_final, m->p.final_norm, a->rstd_final, T, C);
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        const size_t layer_mark = be->mark(be);
        hy_layer_acts recomputed;
        const hy_layer_acts *la = &a->layer[l];
        if (a->recompute) {
            hy_layer_recompute(m, a, l, &recomputed);
            la = &recomputed;
        }
        be->act_zero(be, dnext, TC);
        if (c->layer_types[l] == HY_LAYER_GDN)
            gdn_layer_backward(&b, l, la, dx, dnext);
        else
            attn_layer_backward(&b, l, la, dx, dnext);
        be->release(be, layer_mark);
        hy_act *t = dx;
        dx = dnext;
        dnext = t;
    }
    be->embedding_backward(be, b.g.embed, a->tokens, dx, T, C, c->pad_token_id);
    be->release(be, mark);
}
