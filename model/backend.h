// The compute backend the model code runs on: one model code path, two backends (CPU, CUDA).
//
// forward.c, backward.c and the losses call only these entry points, so the model is written once.
// A backend fixes the activation element type (fp32 on the CPU reference, bf16 on CUDA: the
// system's precision rules) and owns all memory the model touches while running:
// - activations, gradients of activations and small per-token fp32 tensors (norm statistics, GDN
//   gates and states, lse) come from one bump arena, reset per step; its size is learned on the
//   first step and then fixed, so the hot loop never allocates (mark/release);
// - parameters are a table-ordered fp32 arena (the master weights) plus, for matrix products,
//   a "matmul view" (the fp32 arena itself on the CPU, a bf16 working copy on CUDA).
// Pointers handed to ops are in the backend's memory (device pointers on CUDA). Backward entry
// points accumulate (+=) like the ops they wrap (kernels/ops_cpu.h).
#ifndef HY_BACKEND_H
#define HY_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops_cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HY_DEVICE_CPU = 0, HY_DEVICE_CUDA = 1 } hy_device;

typedef struct hy_backend hy_backend;

enum { HY_REPLAY_EAGER = 0, HY_REPLAY_CAPTURED = 1, HY_REPLAY_REPLAYED = 2 };

// act: an activation buffer (fp32 on CPU, bf16 on CUDA); f32: always fp32; i32: int32.
typedef void hy_act;

struct hy_backend {
    hy_device device;
    const char *name;
    size_t act_bytes;  // bytes of one activation element

    // ---- memory (arena: zeroed on allocation; release frees everything allocated after mark) ----
    hy_act *(*act_alloc)(hy_backend *be, size_t n);
    float *(*f32_alloc)(hy_backend *be, size_t n);
    int32_t *(*i32_upload)(hy_backend *be, const int32_t *host, size_t n);
    size_t (*mark)(hy_backend *be);
    void (*release)(hy_backend *be, size_t mark);
    void (*act_zero)(hy_backend *be, hy_act *x, size_t n);
    void (*f32_zero)(hy_backend *be, float *x, size_t n);
    void (*act_copy)(hy_backend *be, hy_act *dst, const hy_act *src, size_t n);
    void (*f32_copy)(hy_backend *be, float *dst, const float *src, size_t n);
    // Row copies, one call for many rows (decode moves its sequences' states between the slot pool
    // and a batch buffer): dst row (dst_rows ? dst_rows[i] : i) = src row (src_rows ? src_rows[i] :
    // i) for i < n, rows of `per` floats; dst_rows / src_rows are host arrays (or NULL).
    void (*f32_copy_rows)(hy_backend *be, float *dst, const int32_t *dst_rows, const float *src,
                          const int32_t *src_rows, int n, size_t per);
    // host <-> backend copies of fp32 data (parameters, logits rows, results)
    void (*f32_to_host)(hy_backend *be, float *host, const float *src, size_t n);
    void (*f32_from_host)(hy_backend *be, float *dst, const float *host, size_t n);
    // the backend's own long-lived memory (parameter arenas, caches); freed with free_persistent
    void *(*alloc_persistent)(hy_backend *be, size_t bytes);
    void (*free_persistent)(hy_backend *be, void *p);
    // raw byte copies between backend and host memory (rollout slot images: swap, snapshots)
    void (*bytes_to_host)(hy_backend *be, void *host, const void *src, size_t bytes);
    void (*bytes_from_host)(hy_backend *be, void *dst, const void *host, size_t bytes);
    // backend memory free now and in all (CUDA: the device; CPU: physical memory), for pool sizing
    void (*memory_info)(hy_backend *be, size_t *free_bytes, size_t *total_bytes);
    void (*synchronize)(hy_backend *be);
    void (*destroy)(hy_backend *be);

    // ---- replayed steps (CUDA graphs) ----
    // A step whose device work depends on the host only through the data it uploads (i32_upload,
    // sample_rows' inputs) and whose shapes repeat — the rollout engine's decode step, keyed by its
    // batch size — can be bracketed by replay_begin(key) ... replay_end. The CUDA backend runs the
    // first bracket with a key eagerly (it sizes the step's pinned staging), captures the second
    // into a CUDA graph and launches it, and for later ones re-runs the host code with every launch
    // skipped (uploads land in the graph's staging at the same places) and launches the graph. So
    // host results inside a bracket (sample_rows' outputs) are valid only after replay_end. Nothing
    // else may reach the host inside a bracket. Arena memory taken inside a bracket is not zeroed:
    // a bracketed step must write everything it reads (the rollout tests compare such steps with
    // unbracketed ones bit for bit). The CPU backend runs brackets eagerly.
    void (*replay_begin)(hy_backend *be, uint64_t key);
    // ok = 0: the bracketed work failed before launching anything (nothing is kept). Returns
    // HY_REPLAY_EAGER / _CAPTURED / _REPLAYED, or −1 with a message (a replay that diverged from
    // its capture: an internal error; the graph is dropped).
    int (*replay_end)(hy_backend *be, int ok);
    // forget every graph (the buffers they were captured on are about to be freed or moved)
    void (*replay_reset)(hy_backend *be);

    // ---- elementwise ----
    void (*add)(hy_backend *be, hy_act *y, const hy_act *a, const hy_act *b, size_t n);  // y = a + b
    void (*accumulate)(hy_backend *be, hy_act *y, const hy_act *x, size_t n);           // y += x
    void (*copy_columns)(hy_backend *be, hy_act *dst, const hy_act *src, int T, int src_stride, int col, int width);
    void (*accumulate_columns)(hy_backend *be, hy_act *dst, const hy_act *src, int T, int dst_stride, int col,
                               int width);

    // ---- ops (see ops_cpu.h for the math; weights w of linear are matmul-view pointers) ----
    void (*embedding_forward)(hy_backend *be, hy_act *out, const int32_t *ids, const void *table, int T, int C);
    void (*embedding_backward)(hy_backend *be, float *dtable, const int32_t *ids, const hy_act *dout, int T, int C,
                               int skip_id);
    void (*linear_forward)(hy_backend *be, hy_act *y, const hy_act *x, const void *w, int N, int in, int out);
    // y fp32 (logits rows)
    void (*linear_forward_f32)(hy_backend *be, float *y, const hy_act *x, const void *w, int N, int in, int out);
    void (*linear_backward)(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x, const void *w,
                            int N, int in, int out);
    void (*rmsnorm_forward)(hy_backend *be, hy_act *y, float *rstd, const hy_act *x, const float *w, int N, int D,
                            float eps);
    void (*rmsnorm_backward)(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x, const float *w,
                             const float *rstd, int N, int D);
    void (*gated_rmsnorm_forward)(hy_backend *be, hy_act *y, float *rstd, const hy_act *x, const hy_act *z,
                                  const float *w, int N, int D, float eps);
    void (*gated_rmsnorm_backward)(hy_backend *be, hy_act *dx, hy_act *dz, float *dw, const hy_act *dy,
                                   const hy_act *x, const hy_act *z, const float *w, const float *rstd, int N, int D);
    void (*l2norm_forward)(hy_backend *be, hy_act *y, float *rnorm, const hy_act *x, int N, int D, float eps);
    void (*l2norm_backward)(hy_backend *be, hy_act *dx, const hy_act *dy, const hy_act *x, const float *rnorm, int N,
                            int D);
    void (*conv1d_silu_forward)(hy_backend *be, hy_act *y, float *window_out, const hy_act *x, const float *w,
                                const float *window_in, const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K);
    // The same over a cache: document d's window is row slots[d] (host array; distinct rows) of
    // window_pool (rows × Ch × (K−1) fp32), read and updated in place — no gather and scatter.
    void (*conv1d_silu_forward_pool)(hy_backend *be, hy_act *y, float *window_pool, const int32_t *slots,
                                     const hy_act *x, const float *w, const int32_t *cu_seqlens, int n_docs, int T,
                                     int Ch, int K);
    void (*conv1d_silu_backward)(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x,
                                 const float *w, const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K);
    void (*gdn_gates_forward)(hy_backend *be, float *beta, float *g, const hy_act *b, const hy_act *a,
                              const float *A_log, const float *dt_bias, int T, int H, int neg);
    void (*gdn_gates_backward)(hy_backend *be, hy_act *db, hy_act *da, float *dA_log, float *ddt_bias,
                               const float *dbeta, const float *dg, const hy_act *b, const hy_act *a,
                               const float *A_log, const float *dt_bias, int T, int H, int neg);
    // s->cu_seqlens is a backend pointer. chunked: prefill / training; recurrent: decode.
    // saved (chunked training forward; NULL otherwise): the backend may keep the intermediates its
    // backward would recompute, in the step arena (alive until the caller releases past this call),
    // and set *saved to them, or to NULL when it keeps nothing (the CPU, which recomputes). The
    // backward takes that pointer back (NULL: recompute). The recurrent form ignores it.
    void (*gdn_chunked_forward)(hy_backend *be, const gdn_shape *s, hy_act *o, float *state_out, const hy_act *q,
                                const hy_act *k, const hy_act *v, const float *g, const float *beta,
                                const float *state_in, void **saved);
    void (*gdn_recurrent_forward)(hy_backend *be, const gdn_shape *s, hy_act *o, float *state_out, const hy_act *q,
                                  const hy_act *k, const hy_act *v, const float *g, const float *beta,
                                  const float *state_in, void **saved);
    // Decode of s->n_docs one-token documents (s->T = s->n_docs) whose fp32 states live in a slot
    // pool: document b reads and updates row slots[b] (host array) of pool (rows of H_v·Dk·Dv)
    // in place — the recurrent form without gathering the states out of the pool and back.
    void (*gdn_decode_pool)(hy_backend *be, const gdn_shape *s, hy_act *o, float *pool, const int32_t *slots,
                            const hy_act *q, const hy_act *k, const hy_act *v, const float *g, const float *beta);
    void (*gdn_chunked_backward)(hy_backend *be, const gdn_shape *s, hy_act *dq, hy_act *dk, hy_act *dv, float *dg,
                                 float *dbeta, const hy_act *d_o, const hy_act *q, const hy_act *k, const hy_act *v,
                                 const float *g, const float *beta, const void *saved);
    void (*rope_forward)(hy_backend *be, hy_act *x, const int32_t *pos, int T, int H, int D, float theta);
    void (*rope_backward)(hy_backend *be, hy_act *dx, const int32_t *pos, int T, int H, int D, float theta);
    void (*attention_forward)(hy_backend *be, const attn_shape *s, hy_act *o, float *lse, const hy_act *q,
                              const hy_act *k, const hy_act *v);
    void (*attention_backward)(hy_backend *be, const attn_shape *s, hy_act *dq, hy_act *dk, hy_act *dv,
                               const hy_act *d_o, const hy_act *q, const hy_act *k, const hy_act *v, const hy_act *o,
                               const float *lse);
    // Paged KV pool (n_blocks, block_size, H_kv·D) in activation type (paged_attn_shape, ops_cpu.h):
    // token t of kv (T, width) goes to pool row rows[t] (host array of T block·block_size + offset).
    void (*kv_write_paged)(hy_backend *be, hy_act *pool, const hy_act *kv, const int32_t *rows, int T, int width);
    // queries of s->n_seqs sequences against their blocks; s's arrays are host memory. o (Tq, H, D) =
    void (*attention_paged)(hy_backend *be, const paged_attn_shape *s, hy_act *o, const hy_act *q,
                            const hy_act *k_pool, const hy_act *v_pool);
    void (*swiglu_forward)(hy_backend *be, hy_act *h, const hy_act *gate, const hy_act *up, int N, int F);
    void (*swiglu_backward)(hy_backend *be, hy_act *dgate, hy_act *dup, const hy_act *dh, const hy_act *gate,
                            const hy_act *up, int N, int F);
    // logits (N, V) fp32; dlogits in activation type (+=)
    void (*logprobs_forward)(hy_backend *be, float *logp, float *lse, const float *logits, const int32_t *targets,
                             int N, int V);
    void (*logprobs_backward)(hy_backend *be, hy_act *dlogits, const float *dlogp, const float *logits,
                              const float *lse, const int32_t *targets, int N, int V);
    // Tokens drawn on the backend (the rollout engine's plain sampling: greedy or the whole tempered
    // distribution; sample_row's rule, ops_cpu.h): draw j from row rows[j] of logits (·, V) fp32 in
    // backend memory at temperature[j] with uniform u[j]; rows, temperature, u and the results
    // token, logprob, model_logprob are host arrays of n.
    void (*sample_rows)(hy_backend *be, const float *logits, const int32_t *rows, int n, int V, const float *temperature,
                        const double *u, int32_t *token, float *logprob, float *model_logprob);
    // ---- optimizer over fp32 arenas; mm: the matmul view refreshed from p (NULL on the CPU) ----
    void (*adamw_step)(hy_backend *be, float *p, void *mm, float *m, float *v, const float *grad, size_t n,
                       const adamw_params *hp, int step, int apply_decay);
    double (*grad_sumsq)(hy_backend *be, const float *g, size_t n);
    void (*grad_scale)(hy_backend *be, float *g, size_t n, float coef);
    // refresh the matmul view of n parameters from the fp32 master (no-op on the CPU)
    void (*params_to_matmul_view)(hy_backend *be, void *mm, const float *p, size_t n);
};

hy_backend *hy_backend_cpu_new(void);
// Defined only in CUDA builds (model/backend_cuda.cu): NULL with a message when no GPU is usable.
hy_backend *hy_backend_cuda_new(void);
int hy_backend_cuda_available(void);

#ifdef __cplusplus
}
#endif

#endif
