// `hybrid bench rollout`: the rollout engine on the serving, GRPO and agentic workloads and the
// logprob agreement with the learner's path (rollout/bench_rollout.h; docs/rollout.md, "Benchmark").
//
// The model is built in memory (no 28 GB checkpoint to write or read): a preset's shape with
// random weights, default the 7B, or a model directory; either way only the weights inference
// reads are put on the device (hy_bench_model_build), leaving the rest of the GPU to the state
// pool. The CPU reference backend would need hours for the 7B, so on the CPU the command refuses
// models beyond a smoke-test size and says which preset to use instead.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../rollout/bench_rollout.h"
#include "../rollout/state_pool.h"
#include "args.h"
#include "cli_common.h"
#include "device.h"

int cmd_bench_rollout(int argc, char **argv);

enum { CPU_MAX_PARAMS = 200000000 };  // beyond this the CPU backend takes hours per workload

static const arg_spec specs[] = {
    {"workload", ARG_STR, "all", "serving, grpo, agentic, agreement or all", 0, 0},
    {"scale", ARG_FLOAT, "1", "multiplies prompt counts and lengths (0.01: a smoke run)", 1e-4, 1},
    {"count-scale", ARG_FLOAT, "1", "multiplies prompt counts only: a shorter run of the same shapes", 1e-4, 1},
    {"preset", ARG_STR, NULL, "model shape built in memory with random weights (default olmo-hybrid-7b; tiny on the CPU)", 0, 0},
    {"model", ARG_STR, NULL, "model directory (config.json + safetensors) instead of a preset", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
    {"memory", ARG_STR, NULL, "state pool budget: bytes (40GiB) or a fraction of the memory free after the weights "
                              "(default: all but 6 GiB on a GPU, 512 MiB on the CPU)", 0, 0},
    {"chunk", ARG_INT, NULL, "prefill tokens of one sequence per step (default 2048 on a GPU, 256 on the CPU)", 16, 1e6},
    {"seed", ARG_INT, "0", "seed of the random weights, prompts and sampling", 0, 0},
    {"cuda-graphs", ARG_INT, "1", "replay decode steps as CUDA graphs, one per batch size (0: launch each kernel)", 0, 1},
};
static const arg_command command = {
    "bench rollout",
    "bench rollout [--workload serving|grpo|agentic|agreement|all] [--scale F] [--count-scale F] "
    "[--preset NAME | --model DIR] [--device cpu|cuda|auto] [--memory 40GiB] [--chunk N] [--cuda-graphs 0|1]",
    "Runs the rollout engine on three workloads and prints, per row, the measurement next to a ceiling\n"
    "derived from bytes and FLOPs over the copy and GEMM rates measured in the same run:\n"
    "  serving   512 prompts of 8192 random tokens, 1024 out (eos ignored), greedy, 32 in flight: output\n"
    "            tok/s, mean TTFT and ITL (vLLM's `bench serve` random workload)\n"
    "  grpo      64 prompts of 512 tokens x 16 samples (prefilled once, forked), 4096 out, temperature 1\n"
    "  agentic   64 episodes of 8 turns: 256 tokens appended to the held sequence, 512 generated per turn\n"
    "  agreement the engine's untempered logprobs vs the full-sequence forward (hy_model_score) at 1k, 8k\n"
    "            and 32k tokens: mean and max |dlogp|\n"
    "Default model: olmo-hybrid-7b with random weights, built in memory (bf16 matmul view only, ~14 GiB).",
    specs, sizeof specs / sizeof *specs};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// "40GiB", "512MiB", "4e10" (bytes) or "0.8" (≤ 1: that fraction of free_b).
static int parse_budget(const char *text, size_t free_b, size_t *out) {
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (errno || end == text || !(v > 0))
        return hy_fail("--memory '%s': expected a positive size (40GiB, 512MiB) or a fraction in (0, 1]", text);
    double scale = 1.0;
    if (!strcmp(end, "KiB") || !strcmp(end, "K")) scale = 1024.0;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M")) scale = 1048576.0;
    else if (!strcmp(end, "GiB") || !strcmp(end, "G")) scale = 1073741824.0;
    else if (*end) return hy_fail("--memory '%s': unknown unit '%s' (use KiB, MiB or GiB)", text, end);
    *out = !*end && v <= 1.0 ? (size_t)(v * (double)free_b) : (size_t)(v * scale);
    return 0;
}

// Everything after parsing: the backend, the model, the budget, the run. 0 / −1 (message set).
static int bench(const arg_values *a) {
    const char *dir = arg_str(a, "model"), *preset = arg_str(a, "preset");
    hy_config cfg;
    hy_model src;
    memset(&src, 0, sizeof src);
    if (dir ? hy_model_load(&src, dir) : hy_config_preset(&cfg, preset ? preset : "olmo-hybrid-7b")) return -1;
    if (dir) cfg = src.cfg;
    const char *name = dir ? dir : preset ? preset : "olmo-hybrid-7b";
    hy_backend *be;
    if (cli_device_open(arg_str(a, "device"), &be)) {
        hy_model_free(&src);
        return -1;
    }
    hy_param_table table;
    hy_param_table_build(&table, &cfg);
    const size_t params = table.n_params;
    hy_param_table_free(&table);
    int rc = 0;
    if (be->device == HY_DEVICE_CPU && params > CPU_MAX_PARAMS)
        rc = hy_fail("%s has %.2f B parameters: the CPU reference backend would take hours on it. Run it on a GPU "
                     "(--device cuda), or smoke-test here with --preset tiny",
                     name, params / 1e9);
    if (!rc) rc = cli_device_check(be, &cfg);
    hy_model m;
    memset(&m, 0, sizeof m);
    if (!rc) {
        const double t0 = now_s();
        rc = hy_bench_model_build(&m, &cfg, dir ? &src : NULL, be, (uint64_t)arg_int(a, "seed"));
        if (!rc)
            fprintf(stderr, "hybrid bench rollout: %s on %s in %.1f s (%s weights)\n", name, be->name, now_s() - t0,
                    dir ? "loaded" : "random");
    }
    hy_model_free(&src);  // the host copy is not needed once the device copy exists
    const int gpu = be->device != HY_DEVICE_CPU;
    size_t free_b = 0, total_b = 0, budget = 0;
    if (!rc) {
        be->memory_info(be, &free_b, &total_b);
        const size_t reserve = (size_t)6 << 30;  // activations of a step and the scoring forward
        if (arg_str(a, "memory"))
            rc = parse_budget(arg_str(a, "memory"), free_b, &budget);
        else if (gpu)
            budget = free_b > 2 * reserve ? free_b - reserve : free_b / 2;
        else
            budget = free_b / 4 < ((size_t)512 << 20) ? free_b / 4 : (size_t)512 << 20;
    }
    if (!rc) {
        char dev[300];
        cli_device_name(be, dev, sizeof dev);
        char model_text[4200];
        snprintf(model_text, sizeof model_text, "%s (%s weights)", name, dir ? "loaded" : "random");
        hy_bench_rollout_opts o = {
            arg_str(a, "workload"), arg_float(a, "scale"), arg_float(a, "count-scale"), (uint64_t)arg_int(a, "seed"),
            budget, arg_given(a, "chunk") ? (int)arg_int(a, "chunk") : gpu ? 2048 : 256, model_text, dev,
            gpu && !dir && !strcmp(name, "olmo-hybrid-7b"), 1, (int)arg_int(a, "cuda-graphs")};
        rc = hy_bench_rollout_run(&m, &o);
    }
    hy_model_free(&m);
    cli_device_close(be);
    return rc;
}

int cmd_bench_rollout(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    static const char *const workloads[5] = {"serving", "grpo", "agentic", "agreement", "all"};
    int known = 0;
    for (int i = 0; i < 5; i++) known |= !strcmp(arg_str(&a, "workload"), workloads[i]);
    if (!known) {
        fprintf(stderr, "hybrid bench rollout: --workload '%s': expected serving, grpo, agentic, agreement or all\n",
                arg_str(&a, "workload"));
        return 2;
    }
    if (arg_str(&a, "preset") && arg_str(&a, "model")) {
        fprintf(stderr, "hybrid bench rollout: give --preset or --model, not both\n");
        return 2;
    }
    return bench(&a) ? cli_error("bench rollout") : 0;
}
