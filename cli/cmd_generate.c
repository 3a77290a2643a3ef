// `hybrid generate`: prefill a prompt once, then decode token by token from the held state
// (conv windows, fp32 GDN states, KV cache) — the recurrent decode path, never re-prefilling.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../rollout/sampler.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory: config.json + safetensors (+ tokenizer.json)", 0, 0},
    {"prompt", ARG_STR, NULL, "prompt text (needs a tokenizer)", 0, 0},
    {"tokens", ARG_STR, NULL, "prompt as comma-separated token ids", 0, 0},
    {"max-new-tokens", ARG_INT, "32", "tokens to generate at most", 1, 1e7},
    {"temperature", ARG_FLOAT, "1.0", "sampling temperature; 0 = greedy", 0, 100},
    {"top-p", ARG_FLOAT, "1.0", "nucleus sampling mass (1 = off)", 1e-6, 1},
    {"top-k", ARG_INT, "0", "keep the k most likely tokens (0 = off)", 0, 1e9},
    {"seed", ARG_INT, "0", "sampling seed (same seed and inputs give the same tokens)", 0, 0},
    {"ignore-eos", ARG_FLAG, NULL, "do not stop at the config's eos ids", 0, 0},
    {"json", ARG_FLAG, NULL, "print JSON: prompt and generated tokens, logprobs, text, finish reason", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
};
static const arg_command command = {
    "generate",
    "generate --model DIR (--prompt TEXT | --tokens 1,2,3) --max-new-tokens N [--temperature T --top-p P "
    "--top-k K --seed S] [--json]",
    "Samples a continuation. The prompt is prefilled once (chunked GDN form), then each new token runs\n"
    "one recurrent decode step on the held state. logprobs are of each sampled token under the\n"
    "sampling distribution; model_logprobs under the untempered model.",
    specs, sizeof specs / sizeof *specs};

static int is_eos(const hy_config *c, int token) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] == token) return 1;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int32_t *tokens;
    float *logprobs, *model_logprobs;
    int n;
    const char *finish;
} generation;

static int generate(const hy_model *m, const int32_t *prompt, int n_prompt, int max_new, const hy_sampling *s,
                    uint64_t seed, int ignore_eos, generation *g) {
    const int V = m->cfg.vocab_size;
    hy_cache cache;
    hy_cache_init(&cache, m, 1, n_prompt + max_new);
    hy_rng rng;
    hy_rng_init(&rng, seed);
    float *logits = hy_malloc(sizeof(float) * (size_t)V);
    g->tokens = hy_malloc(sizeof(int32_t) * (size_t)max_new);
    g->logprobs = hy_malloc(sizeof(float) * (size_t)max_new);
    g->model_logprobs = hy_malloc(sizeof(float) * (size_t)max_new);
    g->n = 0;
    g->finish = "length";
    const int slot = 0;
    int32_t cu[2] = {0, n_prompt};
    hy_batch b = {prompt, cu, n_prompt, 1};
    int rc = hy_model_forward(m, &b, HY_LOGITS_LAST_DOC, logits, NULL, &cache, &slot);
    while (!rc && g->n < max_new) {
        hy_sample smp = hy_sample_token(logits, V, s, &rng);
        g->tokens[g->n] = smp.token;
        g->logprobs[g->n] = smp.logprob;
        g->model_logprobs[g->n] = smp.model_logprob;
        g->n++;
        if (!ignore_eos && is_eos(&m->cfg, smp.token)) {
            g->finish = "stop";
            break;
        }
        if (g->n == max_new) break;
        int32_t one_cu[2] = {0, 1};
        hy_batch step = {&g->tokens[g->n - 1], one_cu, 1, 1};
        rc = hy_model_forward(m, &step, HY_LOGITS_LAST_DOC, logits, NULL, &cache, &slot);
    }
    free(logits);
    hy_cache_free(&cache);
    return rc;
}

// The text of the generated ids. A model's embedding usually has more rows than its tokenizer
// has tokens (OLMo: 100352 vs 100278); an untrained or random model can sample those padding ids.
// They have no text, so they are left out of it (as HF's decode does), with a note; the ids
// themselves are still reported.
static int decode_known(const hy_tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len) {
    const int known = hy_tokenizer_vocab_size(tok);
    int32_t *kept = hy_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int n_kept = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] < known) kept[n_kept++] = ids[i];
    if (n_kept < n)
        fprintf(stderr, "hybrid generate: %d generated id(s) beyond the tokenizer's %d tokens have no text\n",
                n - n_kept, known);
    int rc = hy_tokenizer_decode(tok, kept, n_kept, 0, text, len);
    free(kept);
    return rc;
}

static json_t *float_array(const float *x, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real(x[i]));
    return a;
}

static json_t *int_array(const int32_t *x, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(x[i]));
    return a;
}

int cmd_generate(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *prompt_text = arg_str(&a, "prompt"), *prompt_ids = arg_str(&a, "tokens");
    if (!arg_str(&a, "model") || !prompt_text == !prompt_ids) {
        fprintf(stderr, "hybrid generate: give --model and exactly one of --prompt or --tokens\n");
        return 2;
    }
    hy_model m;
    hy_tokenizer *tok;
    if (cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), arg_str(&a, "device"), &m, &tok))
        return cli_error("generate");
    int32_t *prompt = NULL;
    int n_prompt = 0;
    if (prompt_ids) {
        rc = cli_parse_id_list(prompt_ids, &prompt, &n_prompt);
    } else if (!tok) {
        rc = hy_fail("--prompt needs a tokenizer: put tokenizer.json in the model directory or pass --tokenizer");
    } else {
        rc = hy_tokenizer_encode(tok, prompt_text, strlen(prompt_text), &prompt, &n_prompt);
        if (!rc && n_prompt == 0) rc = hy_fail("--prompt encodes to no tokens");
    }
    if (!rc) rc = hy_model_check_tokens(&m, prompt, n_prompt);
    generation g = {0};
    double t0 = now_s();
    if (!rc) {
        hy_sampling s = {(float)arg_float(&a, "temperature"), (int)arg_int(&a, "top-k"), (float)arg_float(&a, "top-p")};
        rc = generate(&m, prompt, n_prompt, (int)arg_int(&a, "max-new-tokens"), &s, (uint64_t)arg_int(&a, "seed"),
                      arg_flag(&a, "ignore-eos"), &g);
    }
    double dt = now_s() - t0;
    char *text = NULL;
    size_t text_len = 0;
    if (!rc && tok) rc = decode_known(tok, g.tokens, g.n, &text, &text_len);
    if (!rc) {
        if (arg_flag(&a, "json")) {
            json_t *o = json_object();
            json_object_set_new(o, "prompt_tokens", int_array(prompt, n_prompt));
            json_object_set_new(o, "tokens", int_array(g.tokens, g.n));
            json_object_set_new(o, "logprobs", float_array(g.logprobs, g.n));
            json_object_set_new(o, "model_logprobs", float_array(g.model_logprobs, g.n));
            if (text) json_object_set_new(o, "text", json_stringn(text, text_len));
            json_object_set_new(o, "finish_reason", json_string(g.finish));
            json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
            putchar('\n');
            json_decref(o);
        } else if (text) {
            fwrite(text, 1, text_len, stdout);
            putchar('\n');
        } else {
            for (int i = 0; i < g.n; i++) printf("%s%d", i ? " " : "", g.tokens[i]);
            putchar('\n');
        }
        fprintf(stderr, "hybrid generate: %d prompt + %d new tokens in %.2f s (%.1f tok/s), finish: %s\n", n_prompt,
                g.n, dt, dt > 0 ? g.n / dt : 0.0, g.finish);
    }
    free(text);
    free(g.tokens);
    free(g.logprobs);
    free(g.model_logprobs);
    free(prompt);
    cli_unload_model(&m, tok);
    return rc ? cli_error("generate") : 0;
}
