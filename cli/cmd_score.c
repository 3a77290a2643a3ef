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
#include "../common/jsonl.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory: config.json + safetensors (+ tokenizer.json)", 0, 0},
    {"input", ARG_STR, NULL, "JSONL: {\"tokens\":[...]}, {\"text\":...} or {\"messages\":[...]} per line", 0, 0},
    {"output", ARG_STR, NULL, "JSONL written: {\"tokens\":[...],\"logprobs\":[...]} per input line", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
};
static const arg_command command = {
    "score", "score --model DIR --input IN.jsonl --output OUT.jsonl [--tokenizer FILE]",
    "logprobs[i] = log p(tokens[i+1] | tokens[0..i]) under the model (fp32 CPU reference path).\n"
    "Stops at the first malformed input line (named in the error); earlier lines are kept.",
    specs, sizeof specs / sizeof *specs};

static int score_line(const hy_model *m, const hy_tokenizer *tok, const json_t *obj, const char *where, FILE *out) {
    int32_t *ids = NULL;
    int n = 0;
    if (cli_input_tokens(obj, tok, where, &ids, &n)) return -1;
    if (n == 0) {
        free(ids);
        return hy_fail("%s: empty sequence (no tokens to score)", where);
    }
    int32_t cu[2] = {0, n};
    hy_batch b = {ids, cu, n, 1};
    float *logp = hy_malloc(sizeof(float) * (size_t)n);
    int rc = hy_model_score(m, &b, logp);
    if (rc) {
        hy_fail_prefix("%s", where);
    } else {
        json_t *o = json_object(), *jt = json_array(), *jl = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(jt, json_integer(ids[i]));
        for (int i = 0; i + 1 < n; i++) json_array_append_new(jl, json_real(logp[i]));
        json_object_set_new(o, "tokens", jt);
        json_object_set_new(o, "logprobs", jl);
        if (json_dumpf(o, out, JSON_COMPACT | JSON_REAL_PRECISION(9)) || fputc('\n', out) == EOF || fflush(out))
            rc = hy_fail("cannot write output");
        json_decref(o);
    }
    free(logp);
    free(ids);
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
    if (cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), &m, &tok)) return cli_error("score");
    hy_jsonl_reader r;
    FILE *out = NULL;
    if (hy_jsonl_open(&r, in_path) == 0) {
        out = fopen(out_path, "w");
        if (!out) rc = hy_fail("%s: cannot create", out_path);
    } else {
        rc = -1;
    }
    long scored = 0;
    while (!rc) {
        json_t *obj;
        int got = hy_jsonl_next(&r, &obj);
        if (got <= 0) {
            rc = got;
            break;
        }
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", in_path, r.line_no);
        rc = score_line(&m, tok, obj, where, out);
        json_decref(obj);
        scored += rc == 0;
    }
    if (!rc && scored == 0) rc = hy_fail("%s: empty input (no JSON lines to score)", in_path);
    if (out && fclose(out)) rc = hy_fail("%s: write failed", out_path);
    hy_jsonl_close(&r);
    hy_tokenizer_free(tok);
    hy_model_free(&m);
    if (rc) {
        cli_error("score");
        fprintf(stderr, "hybrid score: %ld line(s) scored and written to %s before stopping\n", scored, out_path);
        return 1;
    }
    fprintf(stderr, "hybrid score: %ld line(s) scored\n", scored);
    return 0;
}
