// cuBLASLt linear layers vs the CPU linear op on bf16-rounded inputs: forward (bf16 and fp32
// outputs) and backward (bf16 dx accumulated, fp32 dw accumulated), ragged shapes included.
#include "gpu_test.h"

#include "../../kernels/cuda/gemm.h"

static int run(hy_gemm *g, int N, int in, int out) {
    printf("linear N=%d in=%d out=%d\n", N, in, out);
    hy_rng r;
    hy_rng_init(&r, 17 + N + 3 * in + 7 * out);
    std::vector<float> x = normal_vec(&r, (size_t)N * in, 1.0f), w = normal_vec(&r, (size_t)out * in, 0.1f);
    std::vector<float> dy = normal_vec(&r, (size_t)N * out, 1.0f);
    round_to_bf16(x);
    round_to_bf16(w);
    round_to_bf16(dy);
    std::vector<float> y_ref((size_t)N * out), dx_ref((size_t)N * in, 0.5f), dw_ref((size_t)out * in, 0.25f);
    linear_forward(y_ref.data(), x.data(), w.data(), N, in, out);
    // the GPU dx starts from bf16(0.5) = 0.5 and accumulates, as does the reference
    linear_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), N, in, out);

    auto *dx_in = upload_bf16(x), *dw_in = upload_bf16(w), *ddy = upload_bf16(dy);
    dev_buf<hy_bf16> y((size_t)N * out);
    dev_buf<float> y32((size_t)N * out), dw((size_t)out * in);
    auto *dx = upload_bf16(std::vector<float>((size_t)N * in, 0.5f));
    std::vector<float> dw_init((size_t)out * in, 0.25f);
    CUDA_CHECK(cudaMemcpy(dw.p, dw_init.data(), dw_init.size() * sizeof(float), cudaMemcpyHostToDevice));
    linear_forward_cuda(g, y.p, NULL, dx_in->p, dw_in->p, N, in, out, 0);
    linear_forward_cuda(g, NULL, y32.p, dx_in->p, dw_in->p, N, in, out, 0);
    linear_backward_cuda(g, dx->p, dw.p, ddy->p, dx_in->p, dw_in->p, N, in, out, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    int fail = check_bf16("y (bf16)", download_bf16(y.p, y.n), y_ref);
    // fp32 output: same products, different summation order; |Δ| ≲ in · 2^-24 · Σ|x w| — 1e-4 relative
    fail |= check_f32("y (fp32)", download(y32.p, y32.n), y_ref, 1e-4, 1e-4);
    // accumulating into bf16 rounds twice (cuBLASLt's epilogue rounds the product before adding
    // the old value, then the sum): a naive same-precision version has that error too, so 3×
    fail |= check_bf16("dx (bf16, accumulated)", download_bf16(dx->p, dx->n), dx_ref, 3.0);
    fail |= check_f32("dw (fp32, accumulated)", download(dw.p, dw.n), dw_ref, 1e-3, 1e-4);
    delete dx_in;
    delete dw_in;
    delete ddy;
    delete dx;
    return fail;
}

int main() {
    hy_gemm *g = hy_gemm_new(32u << 20);
    int fail = 0;
    // includes unaligned widths (30, 4, 12 outputs: the narrow GDN projections) that take the
    // fallback kernels: the warp-per-output forward, and for many tokens (700, 1000) the column
    // kernel of the weight gradient
    const int shapes[][3] = {{1, 64, 64},  {70, 48, 96}, {203, 48, 192}, {257, 96, 136},
                             {64, 3840, 256}, {70, 48, 4}, {33, 3840, 30}, {19, 12, 20}, {64, 4096, 30}, {5, 100, 30},
                             {700, 4096, 30}, {1000, 100, 12}};
    for (auto &s : shapes) fail |= run(g, s[0], s[1], s[2]);
    hy_gemm_destroy(g);
    printf("%s\n", fail ? "gemm: FAIL" : "gemm: all ok");
    return fail;
}
