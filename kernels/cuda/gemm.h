// GEMMs of the model's linear layers through cuBLASLt: bf16 operands, fp32 accumulation.
//
// Row-major (PyTorch Linear) shapes are mapped onto cuBLASLt's column-major view by transposing
// the roles (a row-major (r, c) matrix is a column-major (c, r) one), so no data is ever
// transposed in memory. One hy_gemm holds the cuBLASLt handle and a workspace allocated once.
#ifndef HY_GEMM_H
#define HY_GEMM_H

#include <cuda_runtime.h>
#include <stddef.h>

#include "../ops_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hy_gemm hy_gemm;

hy_gemm *hy_gemm_new(size_t workspace_bytes);
void hy_gemm_destroy(hy_gemm *g);

// y (N, out) = x (N, in) · w (out, in)ᵀ, y bf16 (or fp32 when y_f32 is non-NULL and y is NULL).
void linear_forward_cuda(hy_gemm *g, hy_bf16 *y, float *y_f32, const hy_bf16 *x, const hy_bf16 *w, int N, int in,
                         int out, cudaStream_t stream);
// dx (N, in) bf16 += dy · w;  dw (out, in) fp32 += dyᵀ · x.  Either may be NULL.
void linear_backward_cuda(hy_gemm *g, hy_bf16 *dx, float *dw, const hy_bf16 *dy, const hy_bf16 *x, const hy_bf16 *w,
                          int N, int in, int out, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
