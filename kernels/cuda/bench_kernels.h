// Kernel benchmarks behind `hybrid bench kernels` (see bench_kernels.cu).
#ifndef HY_BENCH_KERNELS_H
#define HY_BENCH_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

// peer_script: path of evals/bench/kernel_peers.py, or NULL to skip peers; only: run the ops whose
// name contains this (NULL = all). Prints the table; returns 0.
int hy_bench_kernels(const char *peer_script, const char *only);

#ifdef __cplusplus
}
#endif

#endif
