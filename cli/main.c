// `hybrid`: one binary, one subcommand per job (docs/cli.md). Dispatch only; each subcommand
// lives in its own cmd_*.c with its option table.
#include <stdio.h>
#include <string.h>

#include "../proto/nccl_ops.h"
#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} command;

static const command commands[] = {
    {"init", cmd_init, "write a randomly initialised HF-format checkpoint from a config or preset"},
    {"generate", cmd_generate, "sample continuations through the rollout engine (one prompt, or JSONL in batch mode)"},
    {"score", cmd_score, "per-token logprobs of sequences from JSONL"},
    {"eval", cmd_eval, "held-out evaluation on a task: pass@1, pass@k and mean reward from the verifier"},
    {"sft", cmd_sft, "supervised fine-tuning: packed micro-batches, AdamW, schedules, checkpoints, recipes"},
    {"dpo", cmd_dpo, "preference tuning: DPO / length-normalised DPO against cached reference logprobs"},
    {"run", cmd_run, "the post-training loop from a recipe: SFT, online RL with rollout workers, evals, report"},
    {"worker", cmd_worker, "a rollout worker process for a learner (hybrid run starts them itself)"},
    {"learn", cmd_learn, "run sft, dpo or rl as a data-parallel job: one rank per GPU, sharded optimizer state"},
    {"rl", cmd_rl, "offline RL from trajectories: group advantages, PPO-clip, truncated importance sampling"},
    {"tokenize", cmd_tokenize, "encode text or chat messages, or decode ids"},
    {"bench", cmd_bench, "benchmarks: kernels, rollout workloads, the learner step; each against ceilings and peers"},
    {"report", cmd_report, "one run of the run store as an HTML dashboard (inline SVG charts)"},
    {"runs", cmd_runs, "list the runs of the run store"},
    {"reward-server", cmd_reward_server, "score reward requests from other processes over ZeroMQ with the built-in verifiers"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: hybrid <command> [options]   (hybrid <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].what);
}

#ifdef HY_HAVE_NCCL
extern const hy_nccl_ops hy_nccl_cuda_ops;  // kernels/cuda/nccl_weights.cu
#endif

int main(int argc, char **argv) {
#ifdef HY_HAVE_NCCL
    hy_nccl_ops_set(&hy_nccl_cuda_ops);  // weight-sync nccl for run / worker / bench sync
#endif
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "hybrid: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
