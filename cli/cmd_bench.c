// `hybrid bench kernels`: GPU kernel timings against the hardware ceilings and the peers, in one
// invocation (kernels/cuda/bench_kernels.cu). Needs a CUDA build and a GPU. `hybrid bench rollout`
// (the engine's workloads, any backend) lives in cmd_bench_rollout.c.
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#ifdef HY_HAVE_CUDA
#include "../kernels/cuda/bench_kernels.h"
#include "../model/backend.h"
#endif

int cmd_bench_rollout(int argc, char **argv);  // cmd_bench_rollout.c
int cmd_bench_learner(int argc, char **argv);  // cmd_bench_learner.c
int cmd_bench_sync(int argc, char **argv);     // cmd_bench_sync.c

static const arg_spec specs[] = {
    {"peers", ARG_STR, NULL, "peer script to run in the same invocation (evals/bench/kernel_peers.py)", 0, 0},
    {"only", ARG_STR, NULL, "run only the ops whose name contains this", 0, 0},
};
static const arg_command command = {
    "bench", "bench kernels [--peers evals/bench/kernel_peers.py] [--only NAME]  |  bench rollout | bench learner (see their --help)",
    "Times the CUDA kernels at the 7B shapes (GDN H=30 Dk=96 Dv=192 at 8k/32k tokens, 1 and 8 documents;\n"
    "GDN decode at batch 32/64/256; attention 30x128 causal; logprobs over a 100k vocabulary) and prints\n"
    "ms, TFLOP/s or GB/s, % of the ceilings measured in the same run, and the peers' times.",
    specs, sizeof specs / sizeof *specs};

int cmd_bench(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "rollout")) return cmd_bench_rollout(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "learner")) return cmd_bench_learner(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "sync")) return cmd_bench_sync(argc - 1, argv + 1);
    if (argc < 1 || strcmp(argv[0], "kernels")) {
        if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
            args_print_help(&command);
            return 0;
        }
        fprintf(stderr, "hybrid bench: expected 'kernels', 'rollout', 'learner' or 'sync' (see hybrid bench --help)\n");
        return 2;
    }
    arg_values a;
    int rc = args_parse(&command, argc - 1, argv + 1, &a);
    if (rc) return rc > 0 ? 0 : 2;
#ifdef HY_HAVE_CUDA
    if (!hy_backend_cuda_available()) {
        fprintf(stderr, "hybrid bench: error: no usable CUDA device\n");
        return 1;
    }
    return hy_bench_kernels(arg_str(&a, "peers"), arg_str(&a, "only"));
#else
    fprintf(stderr, "hybrid bench: error: this build has no CUDA support (nvcc was not found at configure time)\n");
    return 1;
#endif
}
