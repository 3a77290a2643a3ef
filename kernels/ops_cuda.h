// CUDA versions of the ops in ops_cpu.h (same math, same accumulate/write conventions), each
// tested against its CPU reference in tests/gpu/. Pointers are device pointers; every launch is on
// the given stream and asynchronous. The CUDA backend issue fills this in op by op.
#ifndef HY_OPS_CUDA_H
#define HY_OPS_CUDA_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

// Rows of D: y = x · rsqrt(mean(x²) + eps) · w (=), rstd (N) saved. fp32 in and out.
void rmsnorm_forward_cuda(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps,
                          cudaStream_t stream);
// dx (N, D) +=, dw (D) += (atomics across rows).
void rmsnorm_backward_cuda(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                           int N, int D, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
