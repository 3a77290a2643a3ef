// `hybrid sft`: full-batch AdamW steps on the CPU reference path, then save the model.
//
// Every line of --data is read and validated before the first step, so a bad line (named by
// file:line) costs nothing: the run stops before training with exit status 1. All sequences are
// packed into one batch with document boundaries; the loss is the mean token cross-entropy over
// every next-token prediction of every sequence. One JSON line per step on stdout:
// {"step": i, "loss": L, "grad_norm": G}, loss and grad norm (before clipping) measured before
// step i's update.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../learner/trainer.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory to start from", 0, 0},
    {"data", ARG_STR, NULL, "JSONL of {\"tokens\"}, {\"text\"} or {\"messages\"} lines", 0, 0},
    {"out", ARG_STR, NULL, "output model directory", 0, 0},
    {"steps", ARG_INT, "1", "AdamW steps", 0, 1e9},
    {"lr", ARG_FLOAT, "1e-3", "learning rate (torch AdamW default)", 0, 0},
    {"beta1", ARG_FLOAT, "0.9", "AdamW beta1", 0, 1},
    {"beta2", ARG_FLOAT, "0.999", "AdamW beta2", 0, 1},
    {"eps", ARG_FLOAT, "1e-8", "AdamW epsilon", 0, 0},
    {"weight-decay", ARG_FLOAT, "0.01", "AdamW decoupled weight decay, applied to every parameter", 0, 0},
    {"grad-clip", ARG_FLOAT, "1.0", "global grad-norm clipping threshold; 0 = no clipping", 0, 1e30},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
};
static const arg_command command = {
    "sft",
    "sft --model DIR --data IN.jsonl --out DIR [--steps N --lr X --beta1 B1 --beta2 B2 --eps E "
    "--weight-decay W --grad-clip G]",
    "Full-batch AdamW (PyTorch semantics) on the mean next-token cross-entropy of all sequences.\n"
    "Prints one JSON line per step with step, loss and grad_norm (before clipping); saves to --out.",
    specs, sizeof specs / sizeof *specs};

typedef struct {
    int32_t *tokens;
    int32_t *cu;
    int T, n_docs, cap_T, cap_docs;
} packed;

static int pack_append(void *ctx, const int32_t *ids, int n, const char *where) {
    packed *p = ctx;
    if (p->T + n > p->cap_T) {
        p->cap_T = 2 * (p->T + n);
        p->tokens = hy_realloc(p->tokens, sizeof(int32_t) * (size_t)p->cap_T);
    }
    if (p->n_docs + 2 > p->cap_docs) {
        p->cap_docs = 2 * (p->n_docs + 2);
        p->cu = hy_realloc(p->cu, sizeof(int32_t) * (size_t)p->cap_docs);
    }
    if (p->n_docs == 0) p->cu[0] = 0;
    memcpy(p->tokens + p->T, ids, sizeof(int32_t) * (size_t)n);
    p->T += n;
    p->cu[++p->n_docs] = p->T;
    return 0;
}

static int read_data(const char *path, const hy_model *m, const hy_tokenizer *tok, packed *p) {
    if (cli_for_each_sequence(path, m, tok, pack_append, p) < 0) return -1;
    if (p->T == p->n_docs) return hy_fail("%s: every sequence has one token: nothing to predict", path);
    return 0;
}

int cmd_sft(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *data = arg_str(&a, "data"), *out = arg_str(&a, "out");
    if (!arg_str(&a, "model") || !data || !out) {
        fprintf(stderr, "hybrid sft: --model, --data and --out are required\n");
        return 2;
    }
    hy_model m;
    hy_tokenizer *tok;
    if (cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), arg_str(&a, "device"), &m, &tok))
        return cli_error("sft");
    packed p = {0};
    rc = read_data(data, &m, tok, &p);
    if (!rc) {
        adamw_params hp = {arg_float(&a, "lr"), arg_float(&a, "beta1"), arg_float(&a, "beta2"), arg_float(&a, "eps"),
                           arg_float(&a, "weight-decay")};
        hy_trainer t;
        hy_trainer_init(&t, &m, &hp, (float)arg_float(&a, "grad-clip"));
        hy_batch b = {p.tokens, p.cu, p.T, p.n_docs};
        int32_t *targets = hy_malloc(sizeof(int32_t) * (size_t)p.T);
        hy_next_token_targets(&b, targets);
        fprintf(stderr, "hybrid sft: %d sequences, %d tokens, %d predictions, %zu parameters\n", p.n_docs, p.T,
                p.T - p.n_docs, m.table.total);
        const long steps = arg_int(&a, "steps");
        for (long s = 1; s <= steps && !rc; s++) {
            double loss, gnorm;
            rc = hy_trainer_step(&t, &b, targets, &loss, &gnorm);
            if (!rc) {
                printf("{\"step\": %ld, \"loss\": %.9g, \"grad_norm\": %.9g}\n", s, loss, gnorm);
                fflush(stdout);
            }
        }
        free(targets);
        hy_trainer_free(&t);
    }
    if (!rc) {
        hy_model_sync_to_host(&m);
        rc = hy_model_save(&m, out);
    }
    if (!rc && tok) {
        // keep the saved directory self-contained for score / generate
        char src_buf[4096], dst[4096];
        snprintf(dst, sizeof dst, "%s/tokenizer.json", out);
        rc = cli_copy_file(cli_tokenizer_path(arg_str(&a, "model"), arg_str(&a, "tokenizer"), src_buf, sizeof src_buf),
                           dst);
    }
    free(p.tokens);
    free(p.cu);
    cli_unload_model(&m, tok);
    return rc ? cli_error("sft") : 0;
}
