// CUDA versions of the ops in ops_cpu.h: the same math and the same shapes, under the system's
// precision rules, each tested against its CPU reference in tests/gpu/.
//
// Precision contract (docs/tolerances.md, section 3):
// - Activations and activation gradients are bf16 (hy_bf16), row-major, shapes as in ops_cpu.h.
// - Small parameters (norm weights, conv weights, A_log, dt_bias) are read as fp32 master values;
//   matmul weights are bf16 working copies and only appear in GEMMs (kernels/cuda/gemm.h).
// - Parameter gradients are fp32. Saved statistics (rstd, rnorm, lse), GDN gates (g, β), the GDN
//   state and the conv window are fp32. Accumulation is fp32 everywhere.
// - As on the CPU: forward functions write (=); backward functions ACCUMULATE (+=) into every
//   gradient they produce (bf16 gradients: read, add in fp32, round once); NULL = not needed.
// - Pointers are device pointers unless marked "host"; cu_seqlens, ids, positions, slots and lens
//   are device int32 arrays. Every launch is asynchronous on `stream`; no function allocates or
//   synchronises (workspaces are passed in, sized by the matching *_workspace_bytes function).
#ifndef HY_OPS_CUDA_H
#define HY_OPS_CUDA_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "ops_cpu.h"  // gdn_shape, attn_shape, adamw_params

#ifdef __cplusplus
extern "C" {
#endif

typedef __nv_bfloat16 hy_bf16;

// ---- conversions and elementwise helpers -------------------------------------------------------
void f32_to_bf16_cuda(hy_bf16 *y, const float *x, size_t n, cudaStream_t stream);
void bf16_to_f32_cuda(float *y, const hy_bf16 *x, size_t n, cudaStream_t stream);
// y = a + b (y may alias a or b).
void add_bf16_cuda(hy_bf16 *y, const hy_bf16 *a, const hy_bf16 *b, size_t n, cudaStream_t stream);
// y += x.
void accumulate_bf16_cuda(hy_bf16 *y, const hy_bf16 *x, size_t n, cudaStream_t stream);
// Copies columns [col, col + width) of src (T, src_stride) into dst (T, width), and back
// (scatter accumulates: dst (T, dst_stride) columns [col, col+width) += src (T, width)).
void copy_columns_bf16_cuda(hy_bf16 *dst, const hy_bf16 *src, int T, int src_stride, int col, int width,
                            cudaStream_t stream);
void accumulate_columns_bf16_cuda(hy_bf16 *dst, const hy_bf16 *src, int T, int dst_stride, int col, int width,
                                  cudaStream_t stream);
// Row copies in one launch (decode gathers n sequences' states out of a slot pool and back): dst
// row (dst_rows ? dst_rows[i] : i) = src row (src_rows ? src_rows[i] : i), i < n, rows of `per`
// floats; the row arrays are device memory. Rows must not overlap between dst and src.
void copy_rows_f32_cuda(float *dst, const int32_t *dst_rows, const float *src, const int32_t *src_rows, int n,
                        size_t per, cudaStream_t stream);

// ---- sampling ----------------------------------------------------------------------------------
// Token j from row rows[j] of logits (·, V) fp32 at temperature[j] with uniform draw u[j]: the same
// rule as the host's sample_row (ops_cpu.h). All arrays are device memory; outputs (n) each.
void sample_rows_cuda(const float *logits, const int32_t *rows, int n, int V, const float *temperature,
                      const double *u, int32_t *token, float *logprob, float *model_logprob, cudaStream_t stream);

// ---- embedding ---------------------------------------------------------------------------------
void embedding_forward_cuda(hy_bf16 *out, const int32_t *ids, const hy_bf16 *table, int T, int C,
                            cudaStream_t stream);
// dtable (V, C) fp32 += rows of dout; row skip_id gets nothing (skip_id < 0: none).
void embedding_backward_cuda(float *dtable, const int32_t *ids, const hy_bf16 *dout, int T, int C, int skip_id,
                             cudaStream_t stream);

// ---- RMSNorm (and the residual add fused in front of it) ---------------------------------------
void rmsnorm_forward_cuda(hy_bf16 *y, float *rstd, const hy_bf16 *x, const float *w, int N, int D, float eps,
                          cudaStream_t stream);
void rmsnorm_backward_cuda(hy_bf16 *dx, float *dw, const hy_bf16 *dy, const hy_bf16 *x, const float *w,
                           const float *rstd, int N, int D, cudaStream_t stream);
// h = x + r; y = RMSNorm(h) · w — one pass (the pre-norm of GDN layers after their residual add).
void residual_rmsnorm_forward_cuda(hy_bf16 *h, hy_bf16 *y, float *rstd, const hy_bf16 *x, const hy_bf16 *r,
                                   const float *w, int N, int D, float eps, cudaStream_t stream);

// ---- gated RMSNorm, L2 norm --------------------------------------------------------------------
void gated_rmsnorm_forward_cuda(hy_bf16 *y, float *rstd, const hy_bf16 *x, const hy_bf16 *z, const float *w, int N,
                                int D, float eps, cudaStream_t stream);
void gated_rmsnorm_backward_cuda(hy_bf16 *dx, hy_bf16 *dz, float *dw, const hy_bf16 *dy, const hy_bf16 *x,
                                 const hy_bf16 *z, const float *w, const float *rstd, int N, int D,
                                 cudaStream_t stream);
void l2norm_forward_cuda(hy_bf16 *y, float *rnorm, const hy_bf16 *x, int N, int D, float eps, cudaStream_t stream);
void l2norm_backward_cuda(hy_bf16 *dx, const hy_bf16 *dy, const hy_bf16 *x, const float *rnorm, int N, int D,
                          cudaStream_t stream);

// ---- causal depthwise conv1d + SiLU ------------------------------------------------------------
// As conv1d_silu_forward (ops_cpu.h); windows are fp32 (n_docs, Ch, K−1); window_out may alias
// window_in. Decode is this op with one token per document.
void conv1d_silu_forward_cuda(hy_bf16 *y, float *window_out, const hy_bf16 *x, const float *w, const float *window_in,
                              const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K, cudaStream_t stream);
// The same with the windows in a slot pool: document d's window is row rows[d] (device) of
// window_pool (rows × Ch × (K−1) fp32), read as window_in and updated in place (rows distinct).
void conv1d_silu_forward_pool_cuda(hy_bf16 *y, float *window_pool, const int32_t *rows, const hy_bf16 *x,
                                   const float *w, const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K,
                                   cudaStream_t stream);
void conv1d_silu_backward_cuda(hy_bf16 *dx, float *dw, float *dwindow_in, const hy_bf16 *dy, const hy_bf16 *x,
                               const float *w, const float *window_in, const int32_t *cu_seqlens, int n_docs, int T,
                               int Ch, int K, cudaStream_t stream);

// ---- GDN gates ---------------------------------------------------------------------------------
void gdn_gates_forward_cuda(float *beta, float *g, const hy_bf16 *b, const hy_bf16 *a, const float *A_log,
                            const float *dt_bias, int T, int H, int allow_neg_eigval, cudaStream_t stream);
void gdn_gates_backward_cuda(hy_bf16 *db, hy_bf16 *da, float *dA_log, float *ddt_bias, const float *dbeta,
                             const float *dg, const hy_bf16 *b, const hy_bf16 *a, const float *A_log,
                             const float *dt_bias, int T, int H, int allow_neg_eigval, cudaStream_t stream);

// ---- gated delta rule --------------------------------------------------------------------------
// s: host struct; s->cu_seqlens is a DEVICE pointer here. q, k (T, H_k, Dk) bf16, L2-normalised;
// v (T, H_v, Dv) bf16; g, beta (T, H_v) fp32; states fp32 (n_docs, H_v, Dk, Dv); o bf16 =.
// Any Dk, Dv ≤ 256 that are multiples of 16. workspace: gdn_chunked_workspace_bytes(s) bytes (the
// forward uses its first gdn_chunked_saved_bytes(s)).
size_t gdn_chunked_workspace_bytes(const gdn_shape *s);
size_t gdn_chunked_saved_bytes(const gdn_shape *s);
size_t gdn_chunked_backward_workspace_bytes(const gdn_shape *s);
void gdn_chunked_forward_cuda(const gdn_shape *s, hy_bf16 *o, float *state_out, const hy_bf16 *q, const hy_bf16 *k,
                              const hy_bf16 *v, const float *g, const float *beta, const float *state_in,
                              void *workspace, cudaStream_t stream);
void gdn_chunked_backward_cuda(const gdn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv, float *dg, float *dbeta,
                               float *dstate_in, const hy_bf16 *d_o, const float *dstate_out, const hy_bf16 *q,
                               const hy_bf16 *k, const hy_bf16 *v, const float *g, const float *beta,
                               const float *state_in, void *workspace, cudaStream_t stream);
// The backward without re-running the forward's phases: `saved` is the first
// gdn_chunked_saved_bytes(s) of the workspace a gdn_chunked_forward_cuda call on the same inputs
// filled (read only here); workspace: gdn_chunked_backward_workspace_bytes(s) bytes.
void gdn_chunked_backward_saved_cuda(const gdn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv, float *dg,
                                     float *dbeta, float *dstate_in, const hy_bf16 *d_o, const float *dstate_out,
                                     const hy_bf16 *q, const hy_bf16 *k, const hy_bf16 *v, const float *g,
                                     const float *beta, const void *saved, void *workspace, cudaStream_t stream);
// Decode: one token for each of B sequences, in place on their fp32 states in a pool:
// state of sequence b = states + slots[b]·(H_v·Dk·Dv). q, k (B, H_k, Dk), v (B, H_v, Dv) bf16;
// g, beta (B, H_v) fp32; o (B, H_v, Dv) bf16 =.
void gdn_decode_step_cuda(hy_bf16 *o, float *states, const int32_t *slots, const hy_bf16 *q, const hy_bf16 *k,
                          const hy_bf16 *v, const float *g, const float *beta, int B, int H_k, int H_v, int Dk, int Dv,
                          float scale, cudaStream_t stream);

// ---- RoPE and attention ------------------------------------------------------------------------
void rope_forward_cuda(hy_bf16 *x, const int32_t *pos, int T, int H, int D, float theta, cudaStream_t stream);
void rope_backward_cuda(hy_bf16 *dx, const int32_t *pos, int T, int H, int D, float theta, cudaStream_t stream);
// Flash-style causal attention over packed documents (s->cu_seqlens DEVICE), GQA; lse (T, H) fp32.
void attention_forward_cuda(const attn_shape *s, hy_bf16 *o, float *lse, const hy_bf16 *q, const hy_bf16 *k,
                            const hy_bf16 *v, cudaStream_t stream);
size_t attention_backward_workspace_bytes(const attn_shape *s);
void attention_backward_cuda(const attn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv, const hy_bf16 *d_o,
                             const hy_bf16 *q, const hy_bf16 *k, const hy_bf16 *v, const hy_bf16 *o,
                             const float *lse, void *workspace, cudaStream_t stream);
// Queries of B sequences against their KV cache slots: sequence b has q_len[b] new queries
// (rows q_start[b] .. q_start[b]+q_len[b]−1 of q (Tq, H, D)) at positions lens[b]−q_len[b] ..
// lens[b]−1, attending causally to the first lens[b] entries of its slot in k_cache / v_cache
// (n_slots, max_len, H_kv, D), which already hold the new tokens. Decode is q_len = 1. o (Tq,H,D) =.
void attention_cached_cuda(hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_cache, const hy_bf16 *v_cache,
                           const int32_t *slots, const int32_t *q_start, const int32_t *q_len, const int32_t *lens,
                           int B, int max_tq, int max_len, int H, int H_kv, int D, float scale, cudaStream_t stream);

// ---- paged KV cache (rollout engine; layout in ops_cpu.h, paged_attn_shape) ----------------------
// s: host struct whose block_table, q_start, q_len and lens are DEVICE pointers. max_tq (host)
// bounds q_len; nothing depends on the values of lens or q_len on the host, so the launch can be
// replayed in a CUDA graph while they change. max_tq == 1 (decode) takes the split-key path, which
// needs a workspace of attention_paged_workspace_bytes (a function of the shape and max_tq on
// this device; 0 when none, then workspace may be NULL) and 16-byte aligned q, pools and
// workspace. q, o (Tq, H, D) bf16; pools (n_blocks, block_size, H_kv, D) bf16. Any D ≤ 256 that is
// a multiple of 8. o =.
size_t attention_paged_workspace_bytes(const paged_attn_shape *s, int max_tq);
void attention_paged_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                          const hy_bf16 *v_pool, int max_tq, void *workspace, cudaStream_t stream);
// The two kernels attention_paged_cuda picks between for max_tq > 1 (same arguments and rules; no
// workspace), exposed for the tests and timings. The tensor-core one (attention_paged_prefill.cu)
// returns 0 when it launched (or had nothing to do) and −1, launching nothing, for what it does not
// take: D not a multiple of 16, q or a pool not 16-byte aligned, o not 4-byte aligned, more than
// 65535 sequences. The general one takes every shape attention_paged_cuda does.
int attention_paged_prefill_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                                 const hy_bf16 *v_pool, int max_tq, cudaStream_t stream);
void attention_paged_general_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                                  const hy_bf16 *v_pool, int max_tq, cudaStream_t stream);
// pool row rows[t] (device) = kv row t, for T rows of width elements.
void kv_paged_write_cuda(hy_bf16 *pool, const hy_bf16 *kv, const int32_t *rows, int T, int width,
                         cudaStream_t stream);

// ---- SwiGLU, logprobs --------------------------------------------------------------------------
void swiglu_forward_cuda(hy_bf16 *h, const hy_bf16 *gate, const hy_bf16 *up, int N, int F, cudaStream_t stream);
void swiglu_backward_cuda(hy_bf16 *dgate, hy_bf16 *dup, const hy_bf16 *dh, const hy_bf16 *gate, const hy_bf16 *up,
                          int N, int F, cudaStream_t stream);
// logits (N, V) fp32 (a chunk of rows from the lm_head GEMM); targets −1 = none.
void logprobs_forward_cuda(float *logp, float *lse, const float *logits, const int32_t *targets, int N, int V,
                           cudaStream_t stream);
// dlogits (N, V) bf16 += dlogp[n]·(onehot − softmax): the input of the lm_head backward GEMMs.
void logprobs_backward_cuda(hy_bf16 *dlogits, const float *dlogp, const float *logits, const float *lse,
                            const int32_t *targets, int N, int V, cudaStream_t stream);

// ---- optimizer ---------------------------------------------------------------------------------
// AdamW (torch semantics, as adamw_step) on fp32 master p, writing the bf16 working copy p_bf16
// (may be NULL). hp by value (host).
void adamw_step_cuda(float *p, hy_bf16 *p_bf16, float *m, float *v, const float *grad, size_t n, adamw_params hp,
                     int step, int apply_decay, cudaStream_t stream);
// *sumsq (device double) += Σ g².
void grad_sumsq_cuda(double *sumsq, const float *g, size_t n, cudaStream_t stream);
// g *= coef (host value).
void grad_scale_cuda(float *g, size_t n, float coef, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
