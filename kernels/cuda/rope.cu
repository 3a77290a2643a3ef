// Rotary position embedding, rotate-half (HF), in place on bf16 x (T, H, D); backward rotates by −angle.
//
// The angles must match the CPU reference (kernels/cpu/rope.c) bit for bit, because at positions
// in the tens of thousands one fp32 ulp of inv_freq moves the angle by ~4e-3 rad, as much as a
// bf16 rounding of the output. So the angle is formed exactly as there (and in HF), in fp32:
// e = (float)(2i) / (float)D, inv_freq = 1.0f / powf(theta, e), angle = (float)pos · inv_freq.
// powf itself is computed as the double pow rounded to float — the correctly rounded value that
// glibc's powf returns — because CUDA's powf may be several ulp off. sinf/cosf are CUDA's full-
// precision versions (fast intrinsics would lose accuracy at large angles), and the rotation uses
// non-contracted products as the CPU does, then rounds once to bf16.
// One block per token: the D/2 (cos, sin) pairs go to shared memory and serve all H heads, and
// each thread rotates two adjacent pairs (bf16x2 loads of both halves).
#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "cuda_check.h"

namespace {

__global__ void rope_kernel(__nv_bfloat16 *x, const int32_t *pos, int H, int D, float theta, float direction) {
    __shared__ float cs[128], sn[128];
    const int t = blockIdx.x, half = D / 2;
    const float p = (float)__ldg(pos + t);
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const float e = (float)(2 * i) / (float)D;
        const float inv_freq = 1.0f / (float)pow((double)theta, (double)e);
        const float angle = p * inv_freq;
        cs[i] = cosf(angle);
        sn[i] = direction * sinf(angle);
    }
    __syncthreads();
    __nv_bfloat16 *row = x + (size_t)t * H * D;
    const int pairs = half / 2;  // two frequencies per thread
    for (int idx = threadIdx.x; idx < H * pairs; idx += blockDim.x) {
        const int h = idx / pairs, i = (idx % pairs) * 2;
        __nv_bfloat162 *pa = reinterpret_cast<__nv_bfloat162 *>(row + (size_t)h * D + i);
        __nv_bfloat162 *pb = reinterpret_cast<__nv_bfloat162 *>(row + (size_t)h * D + i + half);
        const float2 a = __bfloat1622float2(*pa), b = __bfloat1622float2(*pb);
        const float c0 = cs[i], s0 = sn[i], c1 = cs[i + 1], s1 = sn[i + 1];
        *pa = __floats2bfloat162_rn(__fsub_rn(__fmul_rn(a.x, c0), __fmul_rn(b.x, s0)),
                                    __fsub_rn(__fmul_rn(a.y, c1), __fmul_rn(b.y, s1)));
        *pb = __floats2bfloat162_rn(__fadd_rn(__fmul_rn(b.x, c0), __fmul_rn(a.x, s0)),
                                    __fadd_rn(__fmul_rn(b.y, c1), __fmul_rn(a.y, s1)));
    }
}

void rope_launch(hy_bf16 *x, const int32_t *pos, int T, int H, int D, float theta, float direction,
                 cudaStream_t stream) {
    if (D <= 0 || D > 256 || D % 4) {
        fprintf(stderr, "hybrid: rope: unsupported head dim %d (a multiple of 4 up to 256)\n", D);
        abort();
    }
    if (T <= 0 || H <= 0) return;
    rope_kernel<<<T, 128, 0, stream>>>(x, pos, H, D, theta, direction);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

extern "C" void rope_forward_cuda(hy_bf16 *x, const int32_t *pos, int T, int H, int D, float theta,
                                  cudaStream_t stream) {
    rope_launch(x, pos, T, H, D, theta, 1.0f, stream);
}

extern "C" void rope_backward_cuda(hy_bf16 *dx, const int32_t *pos, int T, int H, int D, float theta,
                                   cudaStream_t stream) {
    rope_launch(dx, pos, T, H, D, theta, -1.0f, stream);
}
