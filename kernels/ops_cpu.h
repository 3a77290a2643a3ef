// The fp32 CPU reference ops: every op the OLMo Hybrid model needs, forward and backward.
//
// These are the oracle the CUDA kernels are tested against and the backend of the CPU path
// (tests, CI, tiny models), so they are written to be obviously right, not fast: plain loops in
// fp32 with fp32 (or, where noted, double) accumulation, no aliasing tricks beyond those stated.
//
// Conventions, project-wide:
// - Row-major. Packed batches: T tokens of several documents laid end to end; document d covers
//   tokens [cu_seqlens[d], cu_seqlens[d+1]), cu_seqlens has n_docs+1 entries, cu_seqlens[0] = 0,
//   cu_seqlens[n_docs] = T. Sequence ops never let information cross a document boundary: the GDN
//   state, the conv window and attention all restart at each document.
// - Forward functions write their outputs (=).
// - Backward functions ACCUMULATE (+=) into every gradient they produce, inputs and parameters
//   alike; the caller zeroes gradient buffers. A NULL gradient pointer means "not needed".
// - Shapes are given as (dim, dim, ...) in comments; letters: T tokens, C width, H heads, H_k/H_v
//   GDN key/value heads, Dk/Dv GDN head dims, D attention head dim, V vocab, K conv kernel.
#ifndef HY_OPS_CPU_H
#define HY_OPS_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- embedding ---------------------------------------------------------------------------------
// out (T, C) = table[ids[t]]; table (V, C).
void embedding_forward(float *out, const int32_t *ids, const float *table, int T, int C);
// dtable[ids[t]] += dout[t], except the row skip_id (nn.Embedding's padding_idx never receives a
// gradient); skip_id < 0 for none.
void embedding_backward(float *dtable, const int32_t *ids, const float *dout, int T, int C, int skip_id);

// ---- linear ------------------------------------------------------------------------------------
// y (N, out) = x (N, in) · w (out, in)ᵀ  — PyTorch Linear layout, no bias.
void linear_forward(float *y, const float *x, const float *w, int N, int in, int out);
// dx (N, in) += dy·w;  dw (out, in) += dyᵀ·x.
void linear_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int N, int in,
                     int out);

// ---- RMSNorm -----------------------------------------------------------------------------------
// Rows of D: y = x · rsqrt(mean(x²) + eps) · w.  rstd (N) is saved for backward.
void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                      int N, int D);

// ---- gated RMSNorm (GDN output norm) -----------------------------------------------------------
// Rows of D (one row per token and value head, weight shared by heads):
// y = x · rsqrt(mean(x²) + eps) · w · silu(z).  rstd (N) saved.
void gated_rmsnorm_forward(float *y, float *rstd, const float *x, const float *z, const float *w, int N, int D,
                           float eps);
void gated_rmsnorm_backward(float *dx, float *dz, float *dw, const float *dy, const float *x, const float *z,
                            const float *w, const float *rstd, int N, int D);

// ---- L2 norm -----------------------------------------------------------------------------------
// Rows of D: y = x · rsqrt(Σx² + eps) (fla / HF l2norm, eps 1e-6). rnorm (N) saved.
void l2norm_forward(float *y, float *rnorm, const float *x, int N, int D, float eps);
void l2norm_backward(float *dx, const float *dy, const float *x, const float *rnorm, int N, int D);

// ---- causal depthwise conv1d + SiLU -------------------------------------------------------------
// x (T, Ch), w (Ch, K); y[t, c] = silu(Σ_j w[c, j] · x[t − (K−1) + j, c]): the last tap multiplies
// the current token. Positions before a document's start read from window_in (the previous K−1
// *pre-conv* inputs of that document, oldest first: (n_docs, Ch, K−1)) or zeros when window_in is
// NULL. When window_out is non-NULL it receives the last K−1 pre-conv inputs of each document
// (older ones from window_in/zeros when the document is shorter than K−1). window_out may alias
// window_in. Decode is this op with one token per document.
void conv1d_silu_forward(float *y, float *window_out, const float *x, const float *w, const float *window_in,
                         const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K);
// dx (T, Ch) +=, dw (Ch, K) +=, dwindow_in (n_docs, Ch, K−1) += (may be NULL).
void conv1d_silu_backward(float *dx, float *dw, float *dwindow_in, const float *dy, const float *x,
                          const float *w, const float *window_in, const int32_t *cu_seqlens, int n_docs, int T,
                          int Ch, int K);

// ---- GDN gates ---------------------------------------------------------------------------------
// b, a (T, H); A_log, dt_bias (H).
// beta (T, H) = sigmoid(b), times 2 when allow_neg_eigval;
// g (T, H) = −exp(A_log) · softplus(a + dt_bias)   (torch softplus: identity above 20).
void gdn_gates_forward(float *beta, float *g, const float *b, const float *a, const float *A_log,
                       const float *dt_bias, int T, int H, int allow_neg_eigval);
void gdn_gates_backward(float *db, float *da, float *dA_log, float *ddt_bias, const float *dbeta, const float *dg,
                        const float *b, const float *a, const float *A_log, const float *dt_bias, int T, int H,
                        int allow_neg_eigval);

// ---- gated delta rule --------------------------------------------------------------------------
// Per document d, value head h (key head kh = h / (H_v / H_k), i.e. repeat_interleave), token t:
//   S ← exp(g_t)·S;  u = β_t·(v_t − Sᵀk_t);  S ← S + k_t uᵀ;  o_t = Sᵀ(scale·q_t)
// with S (Dk, Dv) starting at state_in[d, h] (zeros when state_in is NULL).
// q, k (T, H_k, Dk) (already L2-normalised by the caller); v (T, H_v, Dv); g, beta (T, H_v);
// o (T, H_v, Dv) =; state_out (n_docs, H_v, Dk, Dv) = the state after each document's last token
// (may be NULL; may alias state_in). scale is applied to q inside (1/sqrt(Dk) in the model).
typedef struct {
    int T, n_docs;
    const int32_t *cu_seqlens;  // (n_docs + 1)
    int H_k, H_v, Dk, Dv;
    float scale;
} gdn_shape;

// Token-by-token recurrence: the reference definition, and the decode path.
void gdn_recurrent_forward(const gdn_shape *s, float *o, float *state_out, const float *q, const float *k,
                           const float *v, const float *g, const float *beta, const float *state_in);
// Gradients of Σ do·o + Σ dstate_out·state_out (dstate_out may be NULL) with respect to
// q, k, v, g, beta and state_in; all accumulate (+=); any output may be NULL.
void gdn_recurrent_backward(const gdn_shape *s, float *dq, float *dk, float *dv, float *dg, float *dbeta,
                            float *dstate_in, const float *d_o, const float *dstate_out, const float *q,
                            const float *k, const float *v, const float *g, const float *beta,
                            const float *state_in);

// Chunked form (chunk 64 along each document, WY/UT transform): the same function as the
// recurrence, computed the way the training kernels compute it. Same arguments.
enum { GDN_CHUNK = 64 };
void gdn_chunked_forward(const gdn_shape *s, float *o, float *state_out, const float *q, const float *k,
                         const float *v, const float *g, const float *beta, const float *state_in);
void gdn_chunked_backward(const gdn_shape *s, float *dq, float *dk, float *dv, float *dg, float *dbeta,
                          float *dstate_in, const float *d_o, const float *dstate_out, const float *q,
                          const float *k, const float *v, const float *g, const float *beta,
                          const float *state_in);

// ---- RoPE (rotate-half, HF convention) ---------------------------------------------------------
// x (T, H, D) rotated in place at positions pos (T): x ← x·cos + rotate_half(x)·sin with
// inv_freq[i] = 1 / theta^(2i/D) and angle = pos·inv_freq[i mod D/2], computed in fp32 as HF does.
void rope_forward(float *x, const int32_t *pos, int T, int H, int D, float theta);
// dx ← Rᵀ·dx in place (the rotation is orthogonal; this is its transpose).
void rope_backward(float *dx, const int32_t *pos, int T, int H, int D, float theta);

// ---- causal attention (GQA) --------------------------------------------------------------------
// q (T, H, D), k, v (T, H_kv, D); head h reads kv head h / (H / H_kv). Causal within each
// document. o (T, H, D) =; lse (T, H) = log-sum-exp of the scaled scores, saved for backward.
typedef struct {
    int T, n_docs;
    const int32_t *cu_seqlens;  // (n_docs + 1)
    int H, H_kv, D;
    float scale;
} attn_shape;
void attention_forward(const attn_shape *s, float *o, float *lse, const float *q, const float *k, const float *v);
void attention_backward(const attn_shape *s, float *dq, float *dk, float *dv, const float *d_o, const float *q,
                        const float *k, const float *v, const float *o, const float *lse);
// One sequence with a KV cache: Tq new queries q (Tq, H, D) at positions p0 .. p0+Tq−1 attend
// causally to k, v (p0 + Tq, H_kv, D) (the cache already holding the new tokens' keys and values).
// o (Tq, H, D) =. Used for prefill with a cache, continuation and decode.
void attention_cached_forward(float *o, const float *q, const float *k, const float *v, int Tq, int p0, int H,
                              int H_kv, int D, float scale);

// ---- paged KV cache (rollout engine) -----------------------------------------------------------
// Keys and values live in a pool of fixed-size blocks shared by all sequences: pool
// (n_blocks, block_size, H_kv, D); token position j of a sequence is row j % block_size of block
// block_table[j / block_size] of that sequence. Rows are H_kv·D elements wide.
typedef struct {
    int n_seqs;                  // sequences in the batch (B)
    const int32_t *block_table;  // (B, max_blocks): pool block of each logical block; −1 = none
    int max_blocks, block_size;  // block table width; tokens per block
    const int32_t *q_start;      // (B) first row of the sequence's queries in q / o
    const int32_t *q_len;        // (B) new queries of the sequence (1 for decode)
    const int32_t *lens;         // (B) tokens in the cache after the new ones were written
    int H, H_kv, D;
    float scale;
} paged_attn_shape;
// Sequence b's q_len[b] queries, at positions lens[b]−q_len[b] .. lens[b]−1, attend causally to
// the first lens[b] positions of its blocks (which already hold the new keys and values).
// q, o (Tq, H, D) =. Same arithmetic, row by row, as attention_cached_forward on a flat cache, so
// the two agree bit for bit.
void attention_paged_forward(const paged_attn_shape *s, float *o, const float *q, const float *k_pool,
                             const float *v_pool);
// Scatters T rows of kv (T, width) into pool rows rows[t] (= block·block_size + offset).
void kv_paged_write(float *pool, const float *kv, const int32_t *rows, int T, int width);

// ---- SwiGLU ------------------------------------------------------------------------------------
// h (N, F) = silu(gate) · up.
void swiglu_forward(float *h, const float *gate, const float *up, int N, int F);
void swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int N, int F);

// ---- sampling one token from a row of logits (the rollout engine's plain path) ------------------
// log Σ exp(scale·x) over n values (see sample.c for its precision).
double row_log_sum_exp(const float *x, int n, float scale);
// temperature 0: the argmax (ties: lower id). Otherwise the first token whose cumulative
// probability under softmax(logits / temperature), in id order, exceeds u ∈ [0, 1) (the last
// token if rounding leaves u above the total). token, its logprob under that distribution and
// under the untempered one.
void sample_row(const float *logits, int V, float temperature, double u, int32_t *token, float *logprob,
                float *model_logprob);

// ---- token logprobs / cross-entropy ------------------------------------------------------------
// logits (N, V); targets (N), −1 = no target. logp (N) = log_softmax(logits[n])[targets[n]] (0 when
// no target); lse (N) = logsumexp(logits[n]), accumulated in double. Cross-entropy is −logp.
void logprobs_forward(float *logp, float *lse, const float *logits, const int32_t *targets, int N, int V);
// dlogits[n] += dlogp[n] · (onehot(targets[n]) − softmax(logits[n])); rows without a target get nothing.
void logprobs_backward(float *dlogits, const float *dlogp, const float *logits, const float *lse,
                       const int32_t *targets, int N, int V);

// ---- AdamW (PyTorch semantics, fp32) -----------------------------------------------------------
// For step t (1-based), exactly torch.optim.AdamW's single-tensor path:
//   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1−β1);  v ← β2·v + (1−β2)·g²;
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps)
// Hyperparameters are double because PyTorch holds them as Python floats: its scalar arithmetic
// (1 − β1, lr / (1 − β1^t), ...) happens in double before rounding to fp32, and 0.9f ≠ 0.9 would
// shift results by several ulp.
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} adamw_params;
// n elements; weight_decay from hp unless apply_decay is 0 (exclusions: norms, A_log, ...).
void adamw_step(float *p, float *m, float *v, const float *grad, size_t n, const adamw_params *hp, int step,
                int apply_decay);
// Σ g² of a gradient vector, accumulated in double (sum over tensors, then sqrt, for the norm).
double grad_sumsq(const float *g, size_t n);
// Clip coefficient of torch.nn.utils.clip_grad_norm_: min(1, max_norm / (total_norm + 1e-6)).
float grad_clip_coef(double total_norm, float max_norm);
void grad_scale(float *g, size_t n, float coef);

#ifdef __cplusplus
}
#endif

#endif
