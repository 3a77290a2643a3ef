// Token embedding on the GPU: forward gathers bf16 table rows, backward scatter-adds the bf16
// output gradient into the fp32 table gradient.
//
// Forward is a row copy: one block per token, 16-byte packed accesses along the row.
// Backward: one block per token adds its row into dtable[ids[t]] with fp32 atomics (vector
// float4 atomics on sm_90 when the row allows). Tokens that share an id therefore sum in an
// unspecified order, so those rows' low bits can differ from run to run; the deterministic
// alternative (sort tokens by id, then reduce runs of equal ids) needs a workspace this signature
// does not carry, and only repeated ids are affected. The row skip_id (padding) gets nothing, as
// nn.Embedding(padding_idx) gives it no gradient.
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256;

template <int VEC>
__global__ void embedding_forward_kernel(hy_bf16 *__restrict__ out, const int32_t *__restrict__ ids,
                                         const hy_bf16 *__restrict__ table, int T, int C) {
    const int nvec = C / VEC;
    for (long t = blockIdx.x; t < T; t += gridDim.x) {
        const hy_bf16 *row = table + (size_t)ids[t] * C;
        hy_bf16 *o = out + (size_t)t * C;
        for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
            float v[VEC];
            hy::load_bf16<VEC>(v, row + i * VEC);
            hy::store_bf16<VEC>(o + i * VEC, v);
        }
    }
}

template <int VEC>
__global__ void embedding_backward_kernel(float *dtable, const int32_t *__restrict__ ids,
                                          const hy_bf16 *__restrict__ dout, int T, int C, int skip_id) {
    const int nvec = C / VEC;
    for (long t = blockIdx.x; t < T; t += gridDim.x) {
        const int id = ids[t];
        if (id == skip_id) continue;
        float *row = dtable + (size_t)id * C;
        const hy_bf16 *g = dout + (size_t)t * C;
        for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
            float v[VEC];
            hy::load_bf16<VEC>(v, g + i * VEC);
            if constexpr (VEC == 4) {
                atomicAdd(reinterpret_cast<float4 *>(row + i * VEC), make_float4(v[0], v[1], v[2], v[3]));
            } else {
#pragma unroll
                for (int k = 0; k < VEC; k++) atomicAdd(row + i * VEC + k, v[k]);
            }
        }
    }
}

unsigned row_blocks(int T) { return (unsigned)(T < (1 << 20) ? T : (1 << 20)); }

int row_threads(int nvec) {
    const int t = (nvec + 31) / 32 * 32;
    return t < kThreads ? (t > 0 ? t : 32) : kThreads;
}

}  // namespace

extern "C" void embedding_forward_cuda(hy_bf16 *out, const int32_t *ids, const hy_bf16 *table, int T, int C,
                                       cudaStream_t stream) {
    if (T <= 0 || C <= 0) return;
    const int vec = hy::pick_vec(8, {{out, 2}, {table, 2}}, {C});
    const int threads = row_threads(C / vec);
    if (vec == 8) embedding_forward_kernel<8><<<row_blocks(T), threads, 0, stream>>>(out, ids, table, T, C);
    else if (vec == 4) embedding_forward_kernel<4><<<row_blocks(T), threads, 0, stream>>>(out, ids, table, T, C);
    else if (vec == 2) embedding_forward_kernel<2><<<row_blocks(T), threads, 0, stream>>>(out, ids, table, T, C);
    else embedding_forward_kernel<1><<<row_blocks(T), threads, 0, stream>>>(out, ids, table, T, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void embedding_backward_cuda(float *dtable, const int32_t *ids, const hy_bf16 *dout, int T, int C,
                                        int skip_id, cudaStream_t stream) {
    if (!dtable || T <= 0 || C <= 0) return;
    // float4 atomics need 16-byte aligned fp32 rows and 8-byte aligned bf16 rows.
    const int vec = hy::pick_vec(4, {{dtable, 4}, {dout, 2}}, {C}) == 4 ? 4 : 1;
    const int threads = row_threads(C / vec);
    if (vec == 4) embedding_backward_kernel<4><<<row_blocks(T), threads, 0, stream>>>(dtable, ids, dout, T, C, skip_id);
    else embedding_backward_kernel<1><<<row_blocks(T), threads, 0, stream>>>(dtable, ids, dout, T, C, skip_id);
    CUDA_CHECK_LAUNCH();
}
