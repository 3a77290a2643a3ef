// Activations a training forward keeps for the backward, per layer (internal to model/).
//
// Every buffer is owned by the hy_acts and freed with it. Names follow forward.c's steps; shapes
// are in tokens of the packed batch. By default a training forward keeps every intermediate, so
// the backward is a plain mirror of the math. With activation checkpointing (hy_model's
// recompute_layers) it keeps only each layer's input x; the backward then rebuilds one layer's
// hy_layer_acts at a time with hy_layer_recompute — the forward's own code, so the numbers are
// the ones a keeping forward would have stored.
#ifndef HY_ACTS_H
#define HY_ACTS_H

#include "model.h"

typedef struct {
    hy_act *x;  // (T, C) layer input
    // GDN sublayer
    float *rstd_in;                 // (T)
    hy_act *xn;                     // (T, C)
    hy_act *mixed, *conv_out;       // (T, conv_dim) pre- and post-conv
    hy_act *q, *k, *v;              // (T, H_k·Dk) ×2, (T, H_v·Dv): conv outputs split
    hy_act *qn, *kn;                // l2-normalised q, k
    float *rq, *rk;                 // their 1/norms (T·H_k)
    hy_act *a, *b;                  // (T, H_v) gate projections
    float *beta, *g;                // (T, H_v) gates, fp32
    void *gdn_saved;                // the backend's kept GDN forward intermediates, or NULL
    hy_act *o, *gate, *y;           // (T, H_v·Dv) ×3
    float *rstd_o;                  // (T·H_v)
    hy_act *h, *hn;                 // (T, C)
    float *rstd_post;               // (T)
    // attention sublayer
    hy_act *aq, *ak, *av;           // (T, H·D), (T, H_kv·D) ×2 projections
    float *rstd_q, *rstd_k;         // (T)
    hy_act *qr, *kr;                // normed (and rotated when RoPE) q, k
    hy_act *attn;                   // (T, H·D)
    float *lse;                     // (T, H)
    hy_act *ap, *mo;                // o_proj output, MLP output before its norm (T, C)
    float *rstd_pa, *rstd_pf;       // (T)
    // MLP (both kinds)
    hy_act *mg, *mu, *mh;           // (T, F)
} hy_layer_acts;

struct hy_acts {
    hy_backend *be;
    size_t mark;                             // backend arena mark taken before the forward
    int T, n_docs;
    int recompute;                           // layer[l] holds only x: the backward recomputes the rest
    int32_t *tokens, *cu_seqlens, *pos;      // backend copies
    hy_layer_acts layer[HY_MAX_LAYERS];
    hy_act *x_final, *xf;                    // (T, C)
    float *rstd_final;                       // (T)
};

// Re-runs layer l's training forward from a->layer[l].x into *la (=, every field), keeping all its
// intermediates (GDN saved state included) in the backend arena: the caller takes a mark before
// and releases it after the layer's backward. Same ops in the same order as the forward that made
// a, so on a deterministic backend la matches what a keeping forward would have stored bit for bit.
void hy_layer_recompute(const hy_model *m, const hy_acts *a, int l, hy_layer_acts *la);

// Address of element i of an activation buffer.
static inline hy_act *hy_act_at(const hy_backend *be, const hy_act *p, size_t i) {
    return (char *)p + i * be->act_bytes;
}

#endif
