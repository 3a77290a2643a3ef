// `hybrid worker`: a rollout worker process (rollout/worker.h). `hybrid run` starts these itself;
// on other hosts start them by hand with the learner's endpoint and the CURVE key files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../proto/weights.h"
#include "../rollout/worker.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"connect", ARG_STR, NULL, "the learner's endpoint (tcp://HOST:PORT or ipc://PATH)", 0, 0},
    {"name", ARG_STR, NULL, "this worker's name (its ZeroMQ routing id; unique per learner)", 0, 0},
    {"model", ARG_STR, NULL, "model directory, or preset:NAME (its shape; the weights come from the learner)", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json for stop strings (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
    {"memory", ARG_STR, "0.5", "state pool budget: bytes (e.g. 2GiB, 512MiB) or a fraction of free memory", 0, 0},
    {"max-seqs", ARG_INT, "64", "sequences held at once at most", 1, 1e6},
    {"max-len", ARG_INT, "2048", "tokens per sequence at most (prompt + generated)", 1, 1e7},
    {"block-size", ARG_INT, "16", "tokens per KV block", 1, 4096},
    {"chunk", ARG_INT, "256", "prefill tokens of one sequence per step", 1, 1e6},
    {"key-file", ARG_STR, NULL, "CURVE: this worker's key pair (needed for a non-loopback learner)", 0, 0},
    {"server-key", ARG_STR, NULL, "CURVE: the learner's public key file", 0, 0},
    {"table-hash", ARG_STR, NULL, "the learner's parameter-table hash (NCCL sync): refuse to start on another layout", 0, 0},
    {"orphan-s", ARG_FLOAT, "0", "exit when nothing has come from the learner for this many seconds; 0 = never", 0, 1e9},
};
static const arg_command command = {
    "worker",
    "worker --connect ENDPOINT --name NAME --model DIR [--device cuda] [--memory 0.5] [--key-file K --server-key S]",
    "A rollout worker: takes generation requests from a learner over ZeroMQ, generates with the rollout\n"
    "engine (continuous batching, fp32 recurrent state) and sends each sample back as a trajectory; loads\n"
    "new weights from the learner between decode steps (docs/run.md).",
    specs, sizeof specs / sizeof *specs};

int cmd_worker(int argc, char **argv) {
    arg_values a;
    const int prc = args_parse(&command, argc, argv, &a);
    if (prc) {
        args_free(&a);
        return prc > 0 ? 0 : 2;
    }
    if (!arg_str(&a, "connect") || !arg_str(&a, "name") || !arg_str(&a, "model")) {
        fprintf(stderr, "hybrid worker: --connect, --name and --model are required\n");
        args_free(&a);
        return 2;
    }
    hy_worker_options o;
    hy_worker_options_default(&o);
    o.connect = arg_str(&a, "connect");
    o.name = arg_str(&a, "name");
    o.key_file = arg_str(&a, "key-file");
    o.server_key_file = arg_str(&a, "server-key");
    o.orphan_s = arg_float(&a, "orphan-s");
    o.engine.max_seqs = (int)arg_int(&a, "max-seqs");
    o.engine.max_len = (int)arg_int(&a, "max-len");
    o.engine.block_size = (int)arg_int(&a, "block-size");
    o.engine.prefill_chunk = (int)arg_int(&a, "chunk");
    hy_model m;
    hy_tokenizer *tok = NULL;
    int status = 0;
    if (cli_parse_memory(arg_str(&a, "memory"), &o.engine.memory_bytes, &o.engine.memory_fraction) ||
        cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), arg_str(&a, "device"), &m, &tok)) {
        status = cli_error("worker");
    } else if (arg_str(&a, "table-hash") &&
               strtoull(arg_str(&a, "table-hash"), NULL, 16) != hy_weights_table_hash(&m)) {
        hy_fail("the learner's parameters are laid out differently (table hash %s, this model's %016llx): "
                "another model or config than %s",
                arg_str(&a, "table-hash"), (unsigned long long)hy_weights_table_hash(&m), arg_str(&a, "model"));
        status = cli_error("worker");
        cli_unload_model(&m, tok);
    } else {
        o.engine.tok = tok;
        if (hy_worker_run(&m, &o)) status = cli_error("worker");
        cli_unload_model(&m, tok);
    }
    args_free(&a);
    return status;
}
