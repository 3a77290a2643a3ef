// `hybrid bench kernels`: times our CUDA kernels at the model's real shapes, next to the measured
// ceilings of this GPU and the peers run in the same invocation (evals/bench/kernel_peers.py: fla
// for GDN, PyTorch SDPA flash for attention).
//
// Method (performance.md): ceilings measured first (device-to-device copy bandwidth, bf16 GEMM
// 8192³ through our cuBLASLt path); random inputs from each op's real range; warm-up, then the
// median of repeats timed with CUDA events. Each row prints ms, a rate (TFLOP/s from a stated FLOP
// count, or GB/s from the minimum bytes moved) and that rate as % of the ceiling, then the peer's
// ms and our speed-up over it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include <jansson.h>

#include "../ops_cuda.h"
#include "bench_kernels.h"
#include "cuda_check.h"
#include "gemm.h"

namespace {

struct row {
    std::string op, shape;
    double ms;
    double rate;       // TFLOP/s or GB/s
    bool flops;        // rate is TFLOP/s
    double ceiling;    // same unit as rate
    double peer_ms = -1;
    std::string peer_note;
    std::string peer_op = "";  // the peer's op to compare with, when it is not `op`
};

template <typename F>
double time_ms(F fn, int repeats = 10) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 2; i++) fn();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < repeats; i++) {
        CUDA_CHECK(cudaEventRecord(a));
        fn();
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

__global__ void fill_kernel(float *x, size_t n, float lo, float hi, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        x[i] = lo + (hi - lo) * (h & 0xffffff) / 16777216.0f;
    }
}

float *random_f32(size_t n, float lo, float hi, unsigned seed) {
    float *p;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
    fill_kernel<<<1024, 256>>>(p, n, lo, hi, seed);
    CUDA_CHECK_LAUNCH();
    return p;
}

hy_bf16 *random_bf16(size_t n, float lo, float hi, unsigned seed) {
    float *f = random_f32(n, lo, hi, seed);
    hy_bf16 *p;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(hy_bf16)));
    f32_to_bf16_cuda(p, f, n, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    cudaFree(f);
    return p;
}

// q, k rows normalised as the model feeds them (l2norm output)
hy_bf16 *unit_rows_bf16(size_t rows, int D, unsigned seed) {
    hy_bf16 *x = random_bf16(rows * D, -1.0f, 1.0f, seed), *y;
    float *r;
    CUDA_CHECK(cudaMalloc(&y, rows * D * sizeof(hy_bf16)));
    CUDA_CHECK(cudaMalloc(&r, rows * sizeof(float)));
    l2norm_forward_cuda(y, r, x, (int)rows, D, 1e-6f, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    cudaFree(x);
    cudaFree(r);
    return y;
}

std::vector<int32_t> even_docs(int T, int docs) {
    std::vector<int32_t> cu(docs + 1);
    for (int d = 0; d <= docs; d++) cu[d] = (int32_t)((long)T * d / docs);
    return cu;
}

int32_t *to_device(const std::vector<int32_t> &h) {
    int32_t *p;
    CUDA_CHECK(cudaMalloc(&p, h.size() * sizeof(int32_t)));
    CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    return p;
}

double measure_copy_gbs() {
    const size_t bytes = 1ull << 30;
    void *a, *b;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&b, bytes));
    double ms = time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
    cudaFree(a);
    cudaFree(b);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;  // bytes read + written
}

double measure_gemm_tflops(hy_gemm *g) {
    const int n = 8192;
    hy_bf16 *x = random_bf16((size_t)n * n, -1, 1, 1), *w = random_bf16((size_t)n * n, -1, 1, 2), *y;
    CUDA_CHECK(cudaMalloc(&y, (size_t)n * n * sizeof(hy_bf16)));
    double ms = time_ms([&] { linear_forward_cuda(g, y, NULL, x, w, n, n, n, 0); });
    cudaFree(x);
    cudaFree(w);
    cudaFree(y);
    return 2.0 * n * (double)n * n / (ms * 1e-3) / 1e12;
}

// FLOPs of the chunked gated delta rule forward (chunk C = 64): per chunk and head, the products
// QKᵀ, KKᵀ (C²·Dk each), the WY factors W, U (C²·Dk, C²·Dv), the intra-chunk output A·V (C²·Dv)
// and the state terms Q·S, W·S, Kᵀ·V (C·Dk·Dv each); 2 FLOPs per multiply-add. The backward is
// counted as twice the forward.
double gdn_fwd_flops(double T, int H, int Dk, int Dv) {
    const double C = 64, chunks = T / C;
    return chunks * H * 2.0 * (C * C * (3.0 * Dk + 2.0 * Dv) + 3.0 * C * Dk * Dv);
}

void bench_gdn(std::vector<row> &rows, double tflops_ceiling, json_t *peers) {
    const int H = 30, Dk = 96, Dv = 192;
    for (int T : {8192, 32768}) {
        for (int docs : {1, 8}) {
            std::vector<int32_t> cu_h = even_docs(T, docs);
            int32_t *cu = to_device(cu_h);
            hy_bf16 *q = unit_rows_bf16((size_t)T * H, Dk, 3), *k = unit_rows_bf16((size_t)T * H, Dk, 4);
            hy_bf16 *v = random_bf16((size_t)T * H * Dv, -1, 1, 5), *o, *d_o = random_bf16((size_t)T * H * Dv, -1, 1, 6);
            float *g = random_f32((size_t)T * H, -2.0f, -1e-3f, 7), *beta = random_f32((size_t)T * H, 0, 2, 8);
            hy_bf16 *dq, *dk, *dv;
            float *dg, *dbeta;
            CUDA_CHECK(cudaMalloc(&o, (size_t)T * H * Dv * sizeof(hy_bf16)));
            CUDA_CHECK(cudaMalloc(&dq, (size_t)T * H * Dk * sizeof(hy_bf16)));
            CUDA_CHECK(cudaMalloc(&dk, (size_t)T * H * Dk * sizeof(hy_bf16)));
            CUDA_CHECK(cudaMalloc(&dv, (size_t)T * H * Dv * sizeof(hy_bf16)));
            CUDA_CHECK(cudaMalloc(&dg, (size_t)T * H * sizeof(float)));
            CUDA_CHECK(cudaMalloc(&dbeta, (size_t)T * H * sizeof(float)));
            gdn_shape s = {T, docs, cu, H, H, Dk, Dv, 1.0f / sqrtf((float)Dk)};
            void *ws;
            CUDA_CHECK(cudaMalloc(&ws, gdn_chunked_workspace_bytes(&s) + 1));
            char shape[96];
            snprintf(shape, sizeof shape, "T=%d docs=%d H=%d Dk=%d Dv=%d", T, docs, H, Dk, Dv);
            const double f = gdn_fwd_flops(T, H, Dk, Dv);
            double fwd = time_ms([&] { gdn_chunked_forward_cuda(&s, o, NULL, q, k, v, g, beta, NULL, ws, 0); });
            double both = time_ms([&] {
                gdn_chunked_forward_cuda(&s, o, NULL, q, k, v, g, beta, NULL, ws, 0);
                gdn_chunked_backward_cuda(&s, dq, dk, dv, dg, dbeta, NULL, d_o, NULL, q, k, v, g, beta, NULL, ws, 0);
            });
            rows.push_back({"gdn_chunked_fwd", shape, fwd, f / (fwd * 1e-3) / 1e12, true, tflops_ceiling});
            // As the trainer runs it: the forward keeps its part of the workspace and the backward
            // reads it instead of re-running the forward's phases (fla re-runs them).
            char *saved = (char *)ws, *bwd_ws = saved + gdn_chunked_saved_bytes(&s);
            double kept = time_ms([&] {
                gdn_chunked_forward_cuda(&s, o, NULL, q, k, v, g, beta, NULL, saved, 0);
                gdn_chunked_backward_saved_cuda(&s, dq, dk, dv, dg, dbeta, NULL, d_o, NULL, q, k, v, g, beta, saved,
                                                bwd_ws, 0);
            });
            rows.push_back({"gdn_chunked_fwd_bwd", shape, both, 3 * f / (both * 1e-3) / 1e12, true, tflops_ceiling});
            rows.push_back({"gdn_fwd_bwd_kept", shape, kept, 3 * f / (kept * 1e-3) / 1e12, true, tflops_ceiling, -1, "",
                            "gdn_chunked_fwd_bwd"});
            json_array_append_new(peers, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "kind", "gdn", "T", T, "docs", docs,
                                                   "H", H, "Dk", Dk, "Dv", Dv));
            for (void *p : {(void *)cu, (void *)q, (void *)k, (void *)v, (void *)o, (void *)d_o, (void *)g,
                            (void *)beta, (void *)dq, (void *)dk, (void *)dv, (void *)dg, (void *)dbeta, ws})
                cudaFree(p);
        }
    }
}

void bench_gdn_decode(std::vector<row> &rows, double copy_gbs, json_t *peers) {
    const int H = 30, Dk = 96, Dv = 192;
    for (int B : {32, 64, 256}) {
        const size_t state = (size_t)B * H * Dk * Dv;
        float *states = random_f32(state, -0.1f, 0.1f, 9);
        hy_bf16 *q = unit_rows_bf16((size_t)B * H, Dk, 10), *k = unit_rows_bf16((size_t)B * H, Dk, 11);
        hy_bf16 *v = random_bf16((size_t)B * H * Dv, -1, 1, 12), *o;
        float *g = random_f32((size_t)B * H, -2.0f, -1e-3f, 13), *beta = random_f32((size_t)B * H, 0, 2, 14);
        CUDA_CHECK(cudaMalloc(&o, (size_t)B * H * Dv * sizeof(hy_bf16)));
        std::vector<int32_t> slots_h(B);
        for (int b = 0; b < B; b++) slots_h[b] = b;
        int32_t *slots = to_device(slots_h);
        char shape[64];
        snprintf(shape, sizeof shape, "B=%d H=%d Dk=%d Dv=%d", B, H, Dk, Dv);
        double ms = time_ms([&] {
            gdn_decode_step_cuda(o, states, slots, q, k, v, g, beta, B, H, H, Dk, Dv, 1.0f / sqrtf(96.0f), 0);
        }, 50);
        // minimum traffic: every fp32 state read and written once, plus q, k, v in and o out
        double bytes = 2.0 * state * 4 + (double)B * H * (2 * Dk + 2 * Dv) * 2;
        rows.push_back({"gdn_decode", shape, ms, bytes / (ms * 1e-3) / 1e9, false, copy_gbs});
        json_array_append_new(peers, json_pack("{s:s, s:i, s:i, s:i, s:i}", "kind", "gdn_decode", "B", B, "H", H, "Dk",
                                               Dk, "Dv", Dv));
        for (void *p : {(void *)states, (void *)q, (void *)k, (void *)v, (void *)o, (void *)g, (void *)beta,
                        (void *)slots})
            cudaFree(p);
    }
}

void bench_attention(std::vector<row> &rows, double tflops_ceiling, json_t *peers) {
    const int H = 30, D = 128;
    for (int T : {8192, 32768}) {
        std::vector<int32_t> cu_h = even_docs(T, 1);
        int32_t *cu = to_device(cu_h);
        const size_t n = (size_t)T * H * D;
        hy_bf16 *q = random_bf16(n, -1, 1, 15), *k = random_bf16(n, -1, 1, 16), *v = random_bf16(n, -1, 1, 17);
        hy_bf16 *o, *d_o = random_bf16(n, -1, 1, 18), *dq, *dk, *dv;
        float *lse;
        CUDA_CHECK(cudaMalloc(&o, n * sizeof(hy_bf16)));
        CUDA_CHECK(cudaMalloc(&dq, n * sizeof(hy_bf16)));
        CUDA_CHECK(cudaMalloc(&dk, n * sizeof(hy_bf16)));
        CUDA_CHECK(cudaMalloc(&dv, n * sizeof(hy_bf16)));
        CUDA_CHECK(cudaMalloc(&lse, (size_t)T * H * sizeof(float)));
        attn_shape s = {T, 1, cu, H, H, D, 1.0f / sqrtf((float)D)};
        void *ws;
        CUDA_CHECK(cudaMalloc(&ws, attention_backward_workspace_bytes(&s) + 1));
        char shape[64];
        snprintf(shape, sizeof shape, "T=%d H=%d D=%d causal", T, H, D);
        // causal: half of the 4·T²·H·D FLOPs of QKᵀ and PV; backward 2.5× the forward
        const double f = 2.0 * (double)T * T * H * D;
        double fwd = time_ms([&] { attention_forward_cuda(&s, o, lse, q, k, v, 0); }, 5);
        double bwd = time_ms([&] { attention_backward_cuda(&s, dq, dk, dv, d_o, q, k, v, o, lse, ws, 0); }, 5);
        rows.push_back({"attention_fwd", shape, fwd, f / (fwd * 1e-3) / 1e12, true, tflops_ceiling});
        rows.push_back({"attention_bwd", shape, bwd, 2.5 * f / (bwd * 1e-3) / 1e12, true, tflops_ceiling});
        json_array_append_new(peers, json_pack("{s:s, s:i, s:i, s:i}", "kind", "attention", "T", T, "H", H, "D", D));
        for (void *p : {(void *)cu, (void *)q, (void *)k, (void *)v, (void *)o, (void *)d_o, (void *)dq, (void *)dk,
                        (void *)dv, (void *)lse, ws})
            cudaFree(p);
    }
}

void bench_logprobs(std::vector<row> &rows, double copy_gbs) {
    const int V = 100352;
    for (int N : {64, 1024}) {
        float *logits = random_f32((size_t)N * V, -10, 10, 19), *logp, *lse, *dlogp = random_f32(N, -1, 0, 20);
        std::vector<int32_t> t(N);
        for (int i = 0; i < N; i++) t[i] = (i * 7919) % V;
        int32_t *targets = to_device(t);
        hy_bf16 *dlogits;
        CUDA_CHECK(cudaMalloc(&logp, N * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&lse, N * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&dlogits, (size_t)N * V * sizeof(hy_bf16)));
        char shape[64];
        snprintf(shape, sizeof shape, "N=%d V=%d", N, V);
        double fwd = time_ms([&] { logprobs_forward_cuda(logp, lse, logits, targets, N, V, 0); }, 20);
        double bwd = time_ms([&] { logprobs_backward_cuda(dlogits, dlogp, logits, lse, targets, N, V, 0); }, 20);
        rows.push_back({"logprobs_fwd", shape, fwd, (double)N * V * 4 / (fwd * 1e-3) / 1e9, false, copy_gbs});
        // backward reads the fp32 logits and reads + writes the bf16 gradient (accumulating)
        rows.push_back({"logprobs_bwd", shape, bwd, (double)N * V * (4 + 2 + 2) / (bwd * 1e-3) / 1e9, false, copy_gbs});
        for (void *p : {(void *)logits, (void *)logp, (void *)lse, (void *)dlogp, (void *)targets, (void *)dlogits})
            cudaFree(p);
    }
}

// Runs the peer script with the shapes; returns its JSON lines keyed "op|shape".
void run_peers(const char *script, json_t *shapes, std::vector<row> &rows) {
    char *arg = json_dumps(shapes, JSON_COMPACT);
    std::string cmd = std::string("python3 ") + script + " '" + arg + "' 2>/dev/null";
    free(arg);
    FILE *p = popen(cmd.c_str(), "r");
    if (!p) {
        fprintf(stderr, "hybrid bench: cannot run %s\n", script);
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue;
        const char *op = json_string_value(json_object_get(o, "op"));
        const char *shape = json_string_value(json_object_get(o, "shape"));
        for (row &r : rows) {
            if (!op || !shape || (r.peer_op.empty() ? r.op : r.peer_op) != op || r.shape != shape) continue;
            if (json_is_number(json_object_get(o, "ms")))
                r.peer_ms = json_number_value(json_object_get(o, "ms"));
            else
                r.peer_note = json_string_value(json_object_get(o, "error")) ? "peer failed" : "";
        }
        json_decref(o);
    }
    pclose(p);
}

}  // namespace

extern "C" int hy_bench_kernels(const char *peer_script, const char *only) {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    hy_gemm *g = hy_gemm_new(32u << 20);
    const double copy_gbs = measure_copy_gbs(), gemm_tflops = measure_gemm_tflops(g);
    printf("GPU: %s\nceilings (measured now): device copy %.0f GB/s, bf16 GEMM 8192^3 %.0f TFLOP/s\n", prop.name,
           copy_gbs, gemm_tflops);
    std::vector<row> rows;
    json_t *peers = json_array();
    auto want = [&](const char *name) { return !only || strstr(name, only); };
    if (want("gdn_chunked")) bench_gdn(rows, gemm_tflops, peers);
    if (want("gdn_decode")) bench_gdn_decode(rows, copy_gbs, peers);
    if (want("attention")) bench_attention(rows, gemm_tflops, peers);
    if (want("logprobs")) bench_logprobs(rows, copy_gbs);
    if (peer_script) run_peers(peer_script, peers, rows);
    json_decref(peers);
    printf("\n%-20s %-32s %9s %12s %8s %9s %8s\n", "op", "shape", "ms", "rate", "%ceil", "peer ms", "speedup");
    for (const row &r : rows) {
        char rate[32], peer[32] = "-", speed[32] = "-";
        snprintf(rate, sizeof rate, "%.1f %s", r.rate, r.flops ? "TFLOP/s" : "GB/s");
        if (r.peer_ms > 0) {
            snprintf(peer, sizeof peer, "%.3f", r.peer_ms);
            snprintf(speed, sizeof speed, "%.2fx", r.peer_ms / r.ms);
        } else if (!r.peer_note.empty()) {
            snprintf(peer, sizeof peer, "%s", r.peer_note.c_str());
        }
        printf("%-20s %-32s %9.3f %12s %7.1f%% %9s %8s\n", r.op.c_str(), r.shape.c_str(), r.ms, rate,
               100.0 * r.rate / r.ceiling, peer, speed);
    }
    if (peer_script)
        printf("\npeers: fla chunk_gated_delta_rule / fused_recurrent (bf16 in, fp32 state), torch SDPA flash; fla's\n"
               "Hopper backward guard (its issue #640) is disabled for timing only.\n");
    hy_gemm_destroy(g);
    return 0;
}
