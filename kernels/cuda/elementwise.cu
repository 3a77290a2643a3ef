// Conversions and elementwise helpers on flat bf16/fp32 buffers: fp32 ↔ bf16, y = a + b,
// y += x, and copying / accumulating a band of columns between a wide row-major buffer and a
// narrow one (the q|k|v|... slices of fused projections).
//
// All of these are pure streaming: a grid-stride loop of packed 16-byte accesses (8 bf16 or
// 4–8 fp32 per thread) with a scalar tail, so every warp moves whole 128-byte lines. The width
// drops to 2 or 1 when a pointer, a stride or a column offset is not aligned for it. bf16 sums
// are formed in fp32 and rounded once (ops_cuda.h). Nothing here aliases except as stated: add
// may write over a or b, because each element is read before it is written by the same thread.
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256;

template <int VEC>
__global__ void f32_to_bf16_kernel(hy_bf16 *__restrict__ y, const float *__restrict__ x, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float v[VEC];
        hy::load_f32<VEC>(v, x + i * VEC);
        hy::store_bf16<VEC>(y + i * VEC, v);
    }
    if (tid < n - nvec * VEC) y[nvec * VEC + tid] = __float2bfloat16_rn(x[nvec * VEC + tid]);
}

template <int VEC>
__global__ void bf16_to_f32_kernel(float *__restrict__ y, const hy_bf16 *__restrict__ x, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float v[VEC];
        hy::load_bf16<VEC>(v, x + i * VEC);
        hy::store_f32<VEC>(y + i * VEC, v);
    }
    if (tid < n - nvec * VEC) y[nvec * VEC + tid] = __bfloat162float(x[nvec * VEC + tid]);
}

// y = a + b; y may be a or b (no __restrict__).
template <int VEC>
__global__ void add_bf16_kernel(hy_bf16 *y, const hy_bf16 *a, const hy_bf16 *b, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float va[VEC], vb[VEC];
        hy::load_bf16<VEC>(va, a + i * VEC);
        hy::load_bf16<VEC>(vb, b + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) va[k] += vb[k];
        hy::store_bf16<VEC>(y + i * VEC, va);
    }
    if (tid < n - nvec * VEC) {
        const size_t i = nvec * VEC + tid;
        y[i] = __float2bfloat16_rn(__bfloat162float(a[i]) + __bfloat162float(b[i]));
    }
}

// Row-band copy, both directions: dst row t, `width` columns = (or +=) src row t, `width` columns;
// the caller has already offset the wide side by `col`. One block per row, grid-stride over rows.
template <int VEC, bool ACCUMULATE>
__global__ void columns_kernel(hy_bf16 *__restrict__ dst, const hy_bf16 *__restrict__ src, int T, int dst_stride,
                               int src_stride, int width) {
    const int nvec = width / VEC;
    for (long t = blockIdx.x; t < T; t += gridDim.x) {
        const hy_bf16 *s = src + t * src_stride;
        hy_bf16 *d = dst + t * dst_stride;
        for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
            float v[VEC];
            hy::load_bf16<VEC>(v, s + i * VEC);
            if (ACCUMULATE) {
                float o[VEC];
                hy::load_bf16<VEC>(o, d + i * VEC);
#pragma unroll
                for (int k = 0; k < VEC; k++) v[k] += o[k];
            }
            hy::store_bf16<VEC>(d + i * VEC, v);
        }
    }
}

}  // namespace

extern "C" void f32_to_bf16_cuda(hy_bf16 *y, const float *x, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    const int vec = hy::pick_vec(8, {{y, 2}, {x, 4}}, {});
    const unsigned blocks = hy::stream_blocks(n / vec > 0 ? n / vec : 1, kThreads);
    if (vec == 8) f32_to_bf16_kernel<8><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else if (vec == 4) f32_to_bf16_kernel<4><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else if (vec == 2) f32_to_bf16_kernel<2><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else f32_to_bf16_kernel<1><<<blocks, kThreads, 0, stream>>>(y, x, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void bf16_to_f32_cuda(float *y, const hy_bf16 *x, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    const int vec = hy::pick_vec(8, {{y, 4}, {x, 2}}, {});
    const unsigned blocks = hy::stream_blocks(n / vec > 0 ? n / vec : 1, kThreads);
    if (vec == 8) bf16_to_f32_kernel<8><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else if (vec == 4) bf16_to_f32_kernel<4><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else if (vec == 2) bf16_to_f32_kernel<2><<<blocks, kThreads, 0, stream>>>(y, x, n);
    else bf16_to_f32_kernel<1><<<blocks, kThreads, 0, stream>>>(y, x, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void add_bf16_cuda(hy_bf16 *y, const hy_bf16 *a, const hy_bf16 *b, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    const int vec = hy::pick_vec(8, {{y, 2}, {a, 2}, {b, 2}}, {});
    const unsigned blocks = hy::stream_blocks(n / vec > 0 ? n / vec : 1, kThreads);
    if (vec == 8) add_bf16_kernel<8><<<blocks, kThreads, 0, stream>>>(y, a, b, n);
    else if (vec == 4) add_bf16_kernel<4><<<blocks, kThreads, 0, stream>>>(y, a, b, n);
    else if (vec == 2) add_bf16_kernel<2><<<blocks, kThreads, 0, stream>>>(y, a, b, n);
    else add_bf16_kernel<1><<<blocks, kThreads, 0, stream>>>(y, a, b, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void accumulate_bf16_cuda(hy_bf16 *y, const hy_bf16 *x, size_t n, cudaStream_t stream) {
    add_bf16_cuda(y, y, x, n, stream);
}

namespace {

template <bool ACCUMULATE>
void launch_columns(hy_bf16 *dst, const hy_bf16 *src, int T, int dst_stride, int src_stride, int width,
                    cudaStream_t stream) {
    if (T <= 0 || width <= 0) return;
    const int vec = hy::pick_vec(8, {{dst, 2}, {src, 2}}, {dst_stride, src_stride, width});
    int threads = (width / vec + 31) / 32 * 32;
    threads = threads < kThreads ? threads : kThreads;
    const unsigned blocks = (unsigned)(T < 65536 * 8 ? T : 65536 * 8);
    if (vec == 8) columns_kernel<8, ACCUMULATE><<<blocks, threads, 0, stream>>>(dst, src, T, dst_stride, src_stride, width);
    else if (vec == 4) columns_kernel<4, ACCUMULATE><<<blocks, threads, 0, stream>>>(dst, src, T, dst_stride, src_stride, width);
    else if (vec == 2) columns_kernel<2, ACCUMULATE><<<blocks, threads, 0, stream>>>(dst, src, T, dst_stride, src_stride, width);
    else columns_kernel<1, ACCUMULATE><<<blocks, threads, 0, stream>>>(dst, src, T, dst_stride, src_stride, width);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

namespace {

// grid.y walks the rows (grid-stride past 65,535), grid.x the row's VEC-wide pieces.
template <int VEC>
__global__ void copy_rows_kernel(float *__restrict__ dst, const int32_t *__restrict__ dst_rows,
                                 const float *__restrict__ src, const int32_t *__restrict__ src_rows, int n,
                                 size_t per) {
    const size_t nvec = per / VEC;
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        float *d = dst + (size_t)(dst_rows ? dst_rows[i] : i) * per;
        const float *s = src + (size_t)(src_rows ? src_rows[i] : i) * per;
        for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < nvec; j += (size_t)gridDim.x * blockDim.x) {
            if (VEC == 4)
                reinterpret_cast<float4 *>(d)[j] = reinterpret_cast<const float4 *>(s)[j];
            else
                d[j] = s[j];
        }
    }
}

}  // namespace

extern "C" void copy_rows_f32_cuda(float *dst, const int32_t *dst_rows, const float *src, const int32_t *src_rows,
                                   int n, size_t per, cudaStream_t stream) {
    if (n <= 0 || per == 0) return;
    // float4 when every row start is 16-byte aligned: aligned bases and per a multiple of 4
    const int vec = hy::pick_vec(4, {{dst, 4}, {src, 4}}, {(long)per}) == 4 ? 4 : 1;
    const size_t nvec = per / vec;
    const unsigned bx = (unsigned)((nvec + kThreads - 1) / kThreads < 1024 ? (nvec + kThreads - 1) / kThreads : 1024);
    const dim3 grid(bx, (unsigned)(n < 65535 ? n : 65535));
    if (vec == 4) copy_rows_kernel<4><<<grid, kThreads, 0, stream>>>(dst, dst_rows, src, src_rows, n, per);
    else copy_rows_kernel<1><<<grid, kThreads, 0, stream>>>(dst, dst_rows, src, src_rows, n, per);
    CUDA_CHECK_LAUNCH();
}

extern "C" void copy_columns_bf16_cuda(hy_bf16 *dst, const hy_bf16 *src, int T, int src_stride, int col, int width,
                                       cudaStream_t stream) {
    launch_columns<false>(dst, src + col, T, width, src_stride, width, stream);
}

extern "C" void accumulate_columns_bf16_cuda(hy_bf16 *dst, const hy_bf16 *src, int T, int dst_stride, int col,
                                             int width, cudaStream_t stream) {
    launch_columns<true>(dst + col, src, T, dst_stride, width, width, stream);
}
