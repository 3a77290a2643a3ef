// Rollout benchmarks behind `hybrid bench rollout` (workloads, ceiling model: docs/rollout.md,
// "Benchmark"): the engine's throughput and latency on a serving, a GRPO and an agentic workload,
// each printed next to a ceiling derived from bytes and FLOPs over the rates measured in the same
// run, and the agreement of the engine's logprobs with the learner's full-sequence forward.
//
// Everything here is written against the backend table, so the same code runs on the CPU (smoke
// runs of tiny models) and on CUDA (the 7B shape on one GPU).
#ifndef HY_BENCH_ROLLOUT_H
#define HY_BENCH_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

// An inference-only model on be: the matmul view of every matrix and of the embedding (bf16 on
// CUDA) and the small fp32 tensors (norms, conv, A_log, dt_bias) — no fp32 master copy of the
// matrices. Inference never reads that copy (forward.c reaches matrices only through pmm), and on
// the 7B it would add 29.7 GB to the 14.9 GB matmul view: memory the state pool needs (32
// sequences of 9k tokens take 38 GB). With src (a loaded model, host arena) its values are
// copied; without, the weights are random: the small tensors by HF's init (hy_params_init_random
// on a table of just them), matrices and embedding uniform with HF's std (initializer_range) from
// a counter-based hash — Box-Muller normals cost ~80 ns each, 10 minutes for 7.4 B values.
// Supports hy_model_forward, hy_model_score and the engine; not training, save or sync_to_host
// (no host arena, no master). Free with hy_model_free. 0 / −1.
int hy_bench_model_build(hy_model *m, const hy_config *cfg, const hy_model *src, hy_backend *be, uint64_t seed);
// Backend bytes such a model holds.
size_t hy_bench_model_bytes(const hy_model *m);

// Rates of this machine, measured through the backend table (what the model's ops run on).
typedef struct {
    double copy_gbs;     // device-to-device copy, bytes read + written per second / 1e9
    double gemm_tflops;  // the backend's linear_forward on gemm_n³ random activations
    int gemm_n;
} hy_bench_ceilings;
void hy_bench_measure_ceilings(hy_backend *be, hy_bench_ceilings *c);

// Engine vs learner path on one sequence: a random prompt of total − generated tokens, generated
// tokens sampled (temperature 1) by the engine, then the whole sequence scored by hy_model_score
// on the same backend; per generated token, the engine's untempered logprob against the score's.
typedef struct {
    int total, prompt, generated;
    double mean_abs, max_abs;  // over generated tokens, |Δ logprob|
    int max_at;                // position (in the sequence) of the largest |Δ|
    double gen_s, score_s;     // wall time of the generation and of the scoring
} hy_bench_agreement;
// chunk: the engine's prefill chunk. 0 / −1 (message set; a non-finite logprob is an error).
int hy_bench_agreement_run(const hy_model *m, int total, int generated, int chunk, uint64_t seed,
                           hy_bench_agreement *out);

typedef struct {
    const char *workload;     // serving, grpo, agentic, agreement or all
    double scale;             // multiplies prompt counts and lengths (agreement: lengths)
    double count_scale;       // multiplies prompt counts only
    uint64_t seed;            // prompts and sampling
    size_t memory_bytes;      // the engine's pool budget
    int chunk;                // prefill chunk (tokens of one sequence per step)
    const char *model_name;   // for the report
    const char *device_name;  // for the report ("cpu", "NVIDIA H100 80GB HBM3", ...)
    int peers;                // print vLLM's published figures beside serving (7B preset, GPU, full shape)
    int progress;             // progress lines on stderr
    int cuda_graphs;          // the engine replays decode steps as CUDA graphs
} hy_bench_rollout_opts;

// Runs the workloads o->workload names and prints the report on stdout. 0 / −1.
int hy_bench_rollout_run(const hy_model *m, const hy_bench_rollout_opts *o);

#ifdef __cplusplus
}
#endif

#endif
