// Activations a training forward keeps for the backward, per layer (internal to model/).
//
// Every buffer is owned by the hy_acts and freed with it. Names follow forward.c's steps; shapes
// are in tokens of the packed batch. The CPU reference keeps everything rather than recomputing:
// it runs tiny models, and keeping the code a plain mirror of the math is worth the memory.
#ifndef HY_ACTS_H
#define HY_ACTS_H

#include "model.h"

typedef struct {
    float *x;  // (T, C) layer input
    // GDN sublayer
    float *rstd_in, *xn;            // (T), (T, C)
    float *mixed, *conv_out;        // (T, conv_dim) pre- and post-conv
    float *q, *k, *v;               // (T, H_k·Dk) ×2, (T, H_v·Dv): conv outputs split
    float *qn, *kn, *rq, *rk;       // l2-normalised q, k and their 1/norms (T·H_k)
    float *a, *b, *beta, *g;        // (T, H_v)
    float *o, *gate, *rstd_o, *y;   // (T, H_v·Dv) ×2, (T·H_v), (T, H_v·Dv)
    float *h, *rstd_post, *hn;      // (T, C), (T), (T, C)
    // attention sublayer
    float *aq, *ak, *av;            // (T, H·D), (T, H_kv·D) ×2 projections
    float *rstd_q, *rstd_k;         // (T)
    float *qr, *kr;                 // normed (and rotated when RoPE) q, k
    float *attn, *lse;              // (T, H·D), (T, H)
    float *ap, *rstd_pa;            // o_proj output (T, C), (T)
    float *mo, *rstd_pf;            // MLP output before the post-feedforward norm (T, C), (T)
    // MLP (both kinds)
    float *mg, *mu, *mh;            // (T, F)
} hy_layer_acts;

struct hy_acts {
    int T, n_docs;
    int32_t *tokens, *cu_seqlens, *pos;  // owned copies
    hy_layer_acts layer[HY_MAX_LAYERS];
    float *x_final, *rstd_final, *xf;    // (T, C), (T), (T, C)
    void **owned;                        // every buffer above, for freeing
    int n_owned, cap_owned;
};

#endif
