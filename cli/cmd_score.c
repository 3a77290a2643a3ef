// `hybrid score`: next-token logprobs of sequences read from JSONL.
//
// Each input line is scored on its own and its output line is written and flushed before the next
// is read, so an error part-way loses nothing already scored. A malformed line (bad JSON, wrong
// fields, ids outside the vocabulary, an empty sequence) stops the run with a message naming
// file:line and exit status 1; the lines before it are in the output, the rest are not processed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory: config.json + safetensors (+ tokenizer.json)", 0, 0},
    {"input", ARG_STR, NULL, "JSONL: {\"tokens\":[...]}, {\"text\":...} or {\"messages\":[...]} per line", 0, 0},
    {"output", ARG_STR, NULL, "JSONL written: {\"tokens\":[...],\"logprobs\":[...]} per input line", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
};
typedef struct {
    const hy_model *model;
    FILE *out;
    const char *out_path;
    long written;
} scoring;

static const arg_command command = {
    "score", "score --model DIR --input IN.jsonl --output OUT.jsonl [--tokenizer FILE]",
    "logprobs[i] = log p(tokens[i+1] | tokens[0..i]) under the model (fp32 CPU reference path).\n"
    "Stops at the first malformed input line (named in the error); earlier lines are kept.",
    specs, sizeof specs / sizeof *specs};

static int score_sequence(void *ctx, const int32_t *ids, int n, const char *where) {
    scoring *sc = ctx;
    int32_t cu[2] = {0, n};
    hy_batch b = {ids, cu, n, 1};
    float *logp = hy_malloc(sizeof(float) * (size_t)n);
    int rc = hy_model_score(sc->model, &b, logp);
    if (rc) {
        hy_fail_prefix("%s", where);
    } else {
        json_t *o = json_object(), *jt = json_array(), *jl = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(jt, json_integer(ids[i]));
        for (int i = 0; i + 1 < n; i++) json_array_append_new(jl, json_real(logp[i]));
        json_object_set_new(o, "tokens", jt);
        json_object_set_new(o, "logprobs", jl);
        if (json_dumpf(o, sc->out, JSON_COMPACT | JSON_REAL_PRECISION(9)) || fputc('\n', sc->out) == EOF ||
            fflush(sc->out))
            rc = hy_fail("%s: cannot write output", sc->out_path);
        json_decref(o);
    }
    free(logp);
    if (!rc) sc->written++;
    return rc;
}

int cmd_score(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *in_path = arg_str(&a, "input"), *out_path = arg_str(&a, "output");
    if (!arg_str(&a, "model") || !in_path || !out_path) {
        fprintf(stderr, "hybrid score: --model, --input and --output are required\n");
        return 2;
    }
    hy_model m;
    hy_tokenizer *tok;
    if (cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), arg_str(&a, "device"), &m, &tok))
        return cli_error("score");
    scoring sc = {&m, fopen(out_path, "w"), out_path, 0};
    if (!sc.out) {
        rc = hy_fail("%s: cannot create", out_path);
    } else {
        rc = cli_for_each_sequence(in_path, &m, tok, score_sequence, &sc) < 0 ? -1 : 0;
        if (fclose(sc.out) && !rc) rc = hy_fail("%s: write failed", out_path);
    }
    cli_unload_model(&m, tok);
    if (rc) {
        cli_error("score");
        fprintf(stderr, "hybrid score: %ld line(s) scored and written to %s before stopping\n", sc.written, out_path);
        return 1;
    }
    fprintf(stderr, "hybrid score: %ld line(s) scored\n", sc.written);
    return 0;
}
