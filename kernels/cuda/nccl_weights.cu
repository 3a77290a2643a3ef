// NCCL weight broadcast, the data-parallel collectives (learner/dp.h) and the GPU checksum of a
// parameter arena (see proto/nccl_ops.h).
//
// The checksum is a sum over elements of splitmix64(bits(x_i) + i·φ) modulo 2^64: every element
// and its position count, and a sum can be formed in any order, so each GPU reduces it with plain
// atomics and gets the same value as any other for the same bytes.
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/hy_error.h"
#include "proto/nccl_ops.h"
}

struct hy_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
};

static __device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static __global__ void checksum_kernel(const unsigned int *bits, size_t n, unsigned long long *out) {
    unsigned long long h = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        h += mix64((unsigned long long)bits[i] + i * 0x9e3779b97f4a7c15ull);
    for (int o = 16; o > 0; o >>= 1) h += __shfl_down_sync(0xffffffffu, h, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(out, h);
}

static uint64_t nccl_checksum(const float *dev, size_t n) {
    unsigned long long *d = NULL, h = 0;
    if (cudaMalloc(&d, sizeof *d) != cudaSuccess) return 0;
    cudaMemset(d, 0, sizeof *d);
    checksum_kernel<<<1024, 256>>>((const unsigned int *)dev, n, d);
    cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(d);
    return h;
}

static int nccl_unique_id(char *hex) {
    ncclUniqueId id;
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return hy_fail("ncclGetUniqueId: %s", ncclGetErrorString(r));
    for (int i = 0; i < (int)sizeof id.internal; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)id.internal[i]);
    return 0;
}

static int nccl_init(hy_nccl **out, const char *hex, int rank, int nranks) {
    ncclUniqueId id;
    if (strlen(hex) != 2 * sizeof id.internal) return hy_fail("nccl id: %zu hex characters, expected %zu", strlen(hex),
                                                             2 * sizeof id.internal);
    for (int i = 0; i < (int)sizeof id.internal; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return hy_fail("nccl id: not hex at character %d", 2 * i);
        id.internal[i] = (char)v;
    }
    hy_nccl *c = (hy_nccl *)hy_calloc(1, sizeof *c);
    ncclResult_t r = ncclCommInitRank(&c->comm, nranks, id, rank);
    if (r != ncclSuccess) {
        free(c);
        return hy_fail("ncclCommInitRank (rank %d of %d): %s", rank, nranks, ncclGetErrorString(r));
    }
    cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    *out = c;
    return 0;
}

static int nccl_broadcast(hy_nccl *c, float *dev, size_t n) {
    cudaDeviceSynchronize();  // the parameters are final (the optimizer's or loader's streams are done)
    const ncclResult_t r = ncclBroadcast(dev, dev, n, ncclFloat, 0, c->comm, c->stream);
    if (r != ncclSuccess) return hy_fail("ncclBroadcast of %zu floats: %s", n, ncclGetErrorString(r));
    const cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) return hy_fail("ncclBroadcast: %s", cudaGetErrorString(e));
    return 0;
}

// The collectives of data-parallel training: the caller's kernels are finished first (they run on
// the backend's streams), and the call returns when the result is in place.
static int nccl_finish(hy_nccl *c, ncclResult_t r, const char *what, size_t n) {
    if (r != ncclSuccess) return hy_fail("%s of %zu floats: %s", what, n, ncclGetErrorString(r));
    const cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) return hy_fail("%s: %s", what, cudaGetErrorString(e));
    return 0;
}

static int nccl_reduce_scatter(hy_nccl *c, float *dev, size_t shard, int rank) {
    cudaDeviceSynchronize();
    return nccl_finish(c, ncclReduceScatter(dev, dev + (size_t)rank * shard, shard, ncclFloat, ncclSum, c->comm, c->stream),
                       "ncclReduceScatter", shard);
}

static int nccl_all_gather(hy_nccl *c, float *dev, size_t shard, int rank) {
    cudaDeviceSynchronize();
    return nccl_finish(c, ncclAllGather(dev + (size_t)rank * shard, dev, shard, ncclFloat, c->comm, c->stream),
                       "ncclAllGather", shard);
}

static void nccl_destroy(hy_nccl *c) {
    if (!c) return;
    ncclCommAbort(c->comm);  // not Destroy: at teardown the peers may be gone already, and Destroy waits for them
    cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" const hy_nccl_ops hy_nccl_cuda_ops = {nccl_unique_id, nccl_init,           nccl_broadcast,
                                                 nccl_checksum,  nccl_destroy,        nccl_reduce_scatter,
                                                 nccl_all_gather};
