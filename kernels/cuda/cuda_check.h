// One check macro per CUDA library (house style 8): the failing call, file:line, host and device
// are printed and the process aborts — a kernel or learner error leaves nothing worth saving.
#ifndef HY_CUDA_CHECK_H
#define HY_CUDA_CHECK_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void hy_cuda_die(const char *call, const char *what, const char *file, int line) {
    char host[256] = "?";
    gethostname(host, sizeof host);
    int dev = -1;
    cudaGetDevice(&dev);
    fprintf(stderr, "hybrid: %s failed: %s (%s:%d, host %s, device %d)\n", call, what, file, line, host, dev);
    abort();
}

#define CUDA_CHECK(call)                                                                   \
    do {                                                                                   \
        cudaError_t hy_err_ = (call);                                                      \
        if (hy_err_ != cudaSuccess) hy_cuda_die(#call, cudaGetErrorString(hy_err_), __FILE__, __LINE__); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                 \
    do {                                                                                   \
        cublasStatus_t hy_st_ = (call);                                                    \
        if (hy_st_ != CUBLAS_STATUS_SUCCESS) hy_cuda_die(#call, cublasGetStatusString(hy_st_), __FILE__, __LINE__); \
    } while (0)

// After a launch: catches bad configurations at once (asynchronous faults surface at the next sync).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#endif
