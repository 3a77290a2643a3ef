// The whole model on the CUDA backend against the CPU reference, on the HF parity fixtures:
// logprobs of the packed batch, every parameter's gradient of the mean cross-entropy, the GPU
// decode path against the GPU full-sequence forward, and a few AdamW steps of loss. Also, GPU
// against GPU: gradients with activation checkpointing (recompute_layers) against without.
//
// Tolerances (docs/tolerances.md, section 4): both sides get the same bf16-representable weights;
// the GPU stores activations and activation gradients in bf16, so its distance to the fp32 CPU
// reference is bf16 rounding (2^-9 relative per stored value) compounded through the layers — in
// the backward it grows from ~3 % at the top layer to ~7 % at the bottom one, uniformly over the
// tensors of a layer, which is the signature of rounding rather than of a wrong kernel (a dropped
// term or a wrong head mapping moves single tensors by O(100 %)). Limits are the errors measured
// on the H100 (gpu_rope_gqa_hv: logprobs 0.080, worst tensor 0.072, whole gradient 0.051, decode
// vs full 0.017, AdamW losses 0.011) with a margin of about 3×. Each kernel is held to the
// tighter per-op rules in the other GPU tests.
//
// Checkpointing recomputes each layer with the same kernels on the same inputs, and no forward
// kernel uses atomics, so the loss must match exactly. The backward sums a few terms with atomics
// in an unspecified order (attention dQ in fp32, embedding rows, GDN dγ/dβ in double), so two runs
// without checkpointing may already differ in low bits, which the bf16 activation gradients carry
// down the layers; the recompute is held to twice that run-to-run spread, measured here, or to
// kCkptRel when the spread is smaller. Measured on the H100: on this fixture both are bitwise
// equal; at 4 layers of the 7B shape and 16k tokens two runs without recompute differ by 6.7e-3
// (whole-gradient relative) and recompute differs from them by the same 6.75e-3.
#include <cuda_bf16.h>
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "../../common/hy_error.h"
#include "../../learner/trainer.h"
#include "../../model/model.h"
#include "../../model/safetensors.h"
}

static const double kLogprobAbs = 0.25;      // max |Δ logprob| GPU vs CPU
static const double kGradRelNorm = 0.2;      // gradient error, per tensor and whole vector
static const double kDecodeVsFull = 0.05;    // GPU decode path vs GPU full forward, max |Δ logprob|
static const double kLossRel = 0.03;         // loss along AdamW steps, relative
// recompute vs keep on the GPU, whole-gradient relative, when two keeping runs agree better: 50×
// below the bf16 distance to the CPU (0.05), while a layer recomputed wrongly moves it by O(1)
static const double kCkptRel = 1e-3;

static int failures, n_run;

static void check(bool ok, const char *what, double value, double limit) {
    printf("  %-44s %.4g (limit %.3g)%s\n", what, value, limit, ok ? "" : "  FAIL");
    if (!ok) failures++;
}

static std::vector<int32_t> read_i32(const st_archive *a, const char *name) {
    const st_tensor *t = st_find(a, name);
    std::vector<int32_t> x(t ? t->numel : 0);
    if (!t || st_read_i32(a, t, x.data())) {
        fprintf(stderr, "fixture lacks %s\n", name);
        exit(1);
    }
    return x;
}

// ‖a − b‖ / ‖b‖ over a whole gradient vector, in double; *n_diff: elements not bitwise equal.
static double rel_l2(const std::vector<float> &a, const std::vector<float> &b, size_t *n_diff) {
    double e = 0, r = 0;
    *n_diff = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double d = (double)a[i] - b[i];
        e += d * d;
        r += (double)b[i] * b[i];
        *n_diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    }
    return std::sqrt(e / r);
}

static void run_case(const std::string &dir, hy_backend *gpu) {
    printf("case %s\n", dir.c_str());
    hy_model cpu_m, gpu_m;
    if (hy_model_load(&cpu_m, dir.c_str()) || hy_model_load(&gpu_m, dir.c_str())) {
        fprintf(stderr, "load: %s\n", hy_last_error());
        failures++;
        return;
    }
    const hy_config *c = &cpu_m.cfg;
    if (c->head_dim % 16 || c->linear_key_head_dim % 16 || c->linear_value_head_dim % 16) {
        printf("  skipped: head dims %d / %d / %d are not multiples of 16 (CUDA kernels' requirement)\n",
               c->head_dim, c->linear_key_head_dim, c->linear_value_head_dim);
        hy_model_free(&cpu_m);
        hy_model_free(&gpu_m);
        return;
    }
    n_run++;
    // both sides use the same bf16-representable weights, so the comparison measures the GPU's
    // activation precision and kernels, not the rounding of the matmul copy
    for (size_t i = 0; i < cpu_m.table.total; i++)
        cpu_m.arena[i] = gpu_m.arena[i] = __bfloat162float(__float2bfloat16(cpu_m.arena[i]));
    hy_model_attach(&gpu_m, gpu);
    st_archive ex;
    if (st_open(&ex, (dir + "/expect.safetensors").c_str())) {
        fprintf(stderr, "%s\n", hy_last_error());
        exit(1);
    }
    std::vector<int32_t> tokens = read_i32(&ex, "tokens"), cu = read_i32(&ex, "cu_seqlens");
    std::vector<int32_t> prompt = read_i32(&ex, "gen.prompt"), gen = read_i32(&ex, "gen.tokens");
    st_close(&ex);
    hy_batch b = {tokens.data(), cu.data(), (int)tokens.size(), (int)cu.size() - 1};

    // logprobs
    const int n_lp = b.T - b.n_docs;
    std::vector<float> lp_cpu(b.T), lp_gpu(b.T);
    hy_model_score(&cpu_m, &b, lp_cpu.data());
    hy_model_score(&gpu_m, &b, lp_gpu.data());
    double d = 0;
    for (int i = 0; i < n_lp; i++) d = std::max(d, (double)std::fabs(lp_cpu[i] - lp_gpu[i]));
    check(d <= kLogprobAbs, "logprobs: max |GPU - CPU|", d, kLogprobAbs);

    // gradients
    adamw_params hp = {1e-2, 0.9, 0.95, 1e-8, 0.1};
    hy_trainer tc, tg;
    hy_trainer_init(&tc, &cpu_m, &hp, 1.0f);
    hy_trainer_init(&tg, &gpu_m, &hp, 1.0f);
    std::vector<int32_t> targets(b.T);
    hy_next_token_targets(&b, targets.data());
    double lc, lg, gc, gg;
    hy_trainer_loss_and_grads(&tc, &b, targets.data(), &lc, &gc);
    hy_trainer_loss_and_grads(&tg, &b, targets.data(), &lg, &gg);
    std::vector<float> grads(gpu_m.table.total);
    gpu->f32_to_host(gpu, grads.data(), tg.grads, grads.size());
    // per tensor: error relative to max(its own norm, 5 % of the largest tensor's norm), so tiny
    // gradients made of cancelling sums (A_log, dt_bias) are judged on the model's scale
    std::vector<double> err(cpu_m.table.n), ref(cpu_m.table.n);
    double max_ref = 0, all_err = 0, all_ref = 0;
    for (int i = 0; i < cpu_m.table.n; i++) {
        const hy_param_spec *s = &cpu_m.table.specs[i];
        for (size_t j = 0; j < s->numel; j++) {
            double dd = (double)grads[s->offset + j] - tc.grads[s->offset + j];
            err[i] += dd * dd;
            ref[i] += (double)tc.grads[s->offset + j] * tc.grads[s->offset + j];
        }
        all_err += err[i];
        all_ref += ref[i];
        err[i] = std::sqrt(err[i]);
        ref[i] = std::sqrt(ref[i]);
        max_ref = std::max(max_ref, ref[i]);
    }
    double worst = 0;
    std::string worst_name;
    for (int i = 0; i < cpu_m.table.n; i++) {
        double rel = err[i] / std::max(ref[i], 0.05 * max_ref);
        if (!(rel <= worst)) worst = rel, worst_name = cpu_m.table.specs[i].name;
        if (rel > 0.5 * kGradRelNorm)  // print the tensors that come near the limit
            printf("    %-52s error %.3g of norm %.3g\n", cpu_m.table.specs[i].name, err[i], ref[i]);
    }
    char what[200];
    snprintf(what, sizeof what, "gradients: worst per-tensor error (%s)", worst_name.c_str());
    check(worst <= kGradRelNorm, what, worst, kGradRelNorm);
    check(std::sqrt(all_err / all_ref) <= kGradRelNorm, "gradients: whole-vector relative error",
          std::sqrt(all_err / all_ref), kGradRelNorm);

    // activation checkpointing: GPU with recompute against GPU without (see the top)
    std::vector<float> grads_again(grads.size()), grads_ckpt(grads.size());
    double l_again, l_ckpt, g_unused;
    hy_trainer_loss_and_grads(&tg, &b, targets.data(), &l_again, &g_unused);
    gpu->f32_to_host(gpu, grads_again.data(), tg.grads, grads.size());
    gpu_m.recompute_layers = 1;
    hy_trainer_loss_and_grads(&tg, &b, targets.data(), &l_ckpt, &g_unused);
    gpu->f32_to_host(gpu, grads_ckpt.data(), tg.grads, grads.size());
    gpu_m.recompute_layers = 0;
    size_t n_spread, n_ckpt;
    const double spread = rel_l2(grads_again, grads, &n_spread), err_ckpt = rel_l2(grads_ckpt, grads, &n_ckpt);
    printf("    elements not bitwise equal: %zu between two runs, %zu with recompute (of %zu)\n", n_spread, n_ckpt,
           grads.size());
    check(l_again == lg && l_ckpt == lg, "checkpointing: |loss - loss without|",
          std::max(std::fabs(l_again - lg), std::fabs(l_ckpt - lg)), 0.0);
    check(err_ckpt <= std::max(2 * spread, kCkptRel), "checkpointing: gradient relative error", err_ckpt,
          std::max(2 * spread, kCkptRel));

    // decode on the GPU vs the GPU full forward over the same tokens (HF's greedy path)
    const int P = (int)prompt.size(), N = (int)gen.size(), V = gpu_m.cfg.vocab_size;
    hy_cache cache;
    hy_cache_init(&cache, &gpu_m, 2, P + N);
    const int slot = 1;
    std::vector<int32_t> seq(prompt);
    seq.insert(seq.end(), gen.begin(), gen.end());
    std::vector<float> logits(V), dec(N), full(P + N);
    int32_t cu_p[2] = {0, P};
    hy_batch pb = {prompt.data(), cu_p, P, 1};
    hy_model_forward(&gpu_m, &pb, HY_LOGITS_LAST_DOC, logits.data(), NULL, &cache, &slot);
    for (int i = 0; i < N; i++) {
        double mx = *std::max_element(logits.begin(), logits.end()), s = 0;
        for (float v : logits) s += std::exp((double)v - mx);
        dec[i] = (float)((double)logits[gen[i]] - mx - std::log(s));
        int32_t one[2] = {0, 1};
        hy_batch step = {&seq[P + i], one, 1, 1};
        if (i + 1 < N) hy_model_forward(&gpu_m, &step, HY_LOGITS_LAST_DOC, logits.data(), NULL, &cache, &slot);
    }
    int32_t cu_f[2] = {0, P + N};
    hy_batch fb = {seq.data(), cu_f, P + N, 1};
    hy_model_score(&gpu_m, &fb, full.data());
    d = 0;
    for (int i = 0; i < N; i++) d = std::max(d, (double)std::fabs(dec[i] - full[P - 1 + i]));
    check(d <= kDecodeVsFull, "decode vs full forward (GPU): max |Δ|", d, kDecodeVsFull);
    hy_cache_free(&cache);

    // three AdamW steps: losses track the CPU's
    double worst_loss = 0;
    for (int s = 0; s < 3; s++) {
        hy_trainer_step(&tc, &b, targets.data(), &lc, &gc);
        hy_trainer_step(&tg, &b, targets.data(), &lg, &gg);
        worst_loss = std::max(worst_loss, std::fabs(lg - lc) / std::fabs(lc));
    }
    check(worst_loss <= kLossRel, "AdamW steps: loss relative difference", worst_loss, kLossRel);

    hy_trainer_free(&tc);
    hy_trainer_free(&tg);
    hy_model_free(&cpu_m);
    hy_model_free(&gpu_m);
}

int main(int argc, char **argv) {
    std::string root = std::string(argc > 1 ? argv[1] : ".") + "/tests/fixtures/parity";
    hy_backend *gpu = hy_backend_cuda_new();
    if (!gpu) {
        fprintf(stderr, "%s\n", hy_last_error());
        return 1;
    }
    std::vector<std::string> cases;
    if (DIR *d = opendir(root.c_str())) {
        while (dirent *e = readdir(d))
            if (e->d_name[0] != '.') cases.push_back(root + "/" + e->d_name);
        closedir(d);
    }
    std::sort(cases.begin(), cases.end());
    for (auto &c : cases) run_case(c, gpu);
    gpu->destroy(gpu);
    printf("%d case(s) run, %d failure(s)\n", n_run, failures);
    return failures != 0 || n_run == 0;
}
