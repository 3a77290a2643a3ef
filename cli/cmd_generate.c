// `hybrid generate`: sampling through the rollout engine (rollout/engine.h), one prompt or a batch.
//
// Single mode (--prompt / --tokens) prints one continuation. Batch mode (--prompts IN.jsonl --out
// OUT.jsonl) submits every line (n samples each, prefilled once and forked) to one engine, which
// batches them continuously in a pool sized from --memory, and writes one JSON line per sample in
// input order as soon as the samples before it are done; stderr carries a progress line (sequences
// done, tokens/s, pool memory in use). A bad input line gets an "error" line in the output and a
// message on stderr; the other lines are still generated, and the exit status is 1.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../common/jsonl.h"
#include "../rollout/engine.h"
#include "../rollout/state_pool.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory: config.json + safetensors (+ tokenizer.json)", 0, 0},
    {"prompt", ARG_STR, NULL, "prompt text (needs a tokenizer)", 0, 0},
    {"tokens", ARG_STR, NULL, "prompt as comma-separated token ids", 0, 0},
    {"prompts", ARG_STR, NULL, "batch mode: JSONL of {\"tokens\"|\"text\"|\"messages\": ...} (+ per-line overrides)", 0, 0},
    {"out", ARG_STR, NULL, "batch mode: JSONL output, one line per sample", 0, 0},
    {"n", ARG_INT, "1", "samples per prompt (prefilled once, then forked)", 1, 4096},
    {"max-tokens", ARG_INT, NULL, "tokens to generate at most (default: --max-new-tokens)", 1, 1e7},
    {"max-new-tokens", ARG_INT, "32", "tokens to generate at most", 1, 1e7},
    {"temperature", ARG_FLOAT, "1.0", "sampling temperature; 0 = greedy", 0, 100},
    {"top-p", ARG_FLOAT, "1.0", "nucleus sampling mass (1 = off)", 1e-6, 1},
    {"top-k", ARG_INT, "0", "keep the k most likely tokens (0 = off)", 0, 1e9},
    {"seed", ARG_INT, "0", "sampling seed (same seed and inputs give the same tokens; sample i uses seed + i)", 0, 0},
    {"logprobs", ARG_INT, "0", "top alternatives (untempered logprobs) per generated token", 0, 20},
    {"stop", ARG_STR, NULL, "stop string (needs a tokenizer); per-line \"stop\": [...] adds more", 0, 0},
    {"ignore-eos", ARG_FLAG, NULL, "do not stop at the config's eos ids", 0, 0},
    {"memory", ARG_STR, "0.5", "state pool budget: bytes (e.g. 2GiB, 512MiB) or a fraction of free memory", 0, 0},
    {"max-seqs", ARG_INT, "64", "sequences held at once at most", 1, 1e6},
    {"max-len", ARG_INT, NULL, "tokens per sequence at most (default: longest prompt + max tokens)", 1, 1e7},
    {"block-size", ARG_INT, "16", "tokens per KV block", 1, 4096},
    {"chunk", ARG_INT, "256", "prefill tokens of one sequence per step", 1, 1e6},
    {"snapshot-memory", ARG_STR, "0",
     "host memory for prefix snapshots (e.g. 1GiB): a prompt that starts with an earlier prompt loads that "
     "prompt's state instead of prefilling it again; 0 = off",
     0, 0},
    {"cuda-graphs", ARG_INT, "1", "replay decode steps as CUDA graphs, one per batch size (0: launch each kernel)", 0, 1},
    {"json", ARG_FLAG, NULL, "single mode: print JSON (tokens, logprobs, text, finish reason)", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
};
static const arg_command command = {
    "generate",
    "generate --model DIR (--prompt TEXT | --tokens 1,2,3 | --prompts IN.jsonl --out OUT.jsonl) [--n N] "
    "[--max-tokens N --temperature T --top-p P --top-k K --seed S --stop STR --logprobs K] [--memory 2GiB]",
    "Samples continuations with the rollout engine: prompts are prefilled in chunks interleaved with\n"
    "the decode of running sequences (one recurrent GDN step per token on the held fp32 state), n\n"
    "samples of a prompt share its prefill. logprobs are of each sampled token under the sampling\n"
    "distribution; model_logprobs under the untempered model. Batch lines may override n,\n"
    "max_tokens, temperature, top_p, top_k, seed and add stop strings.",
    specs, sizeof specs / sizeof *specs};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
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

// The JSON of one finished sample: generated tokens, text, logprobs, alternatives, finish reason.
static json_t *result_json(const hy_result *r, const hy_tokenizer *tok, const char *const *stops, int *rc) {
    const int t0 = r->turn_start, n = r->n_new;
    json_t *o = json_object();
    json_object_set_new(o, "tokens", int_array(r->tokens + t0, n));
    if (tok) {
        char *text = NULL;
        size_t len = 0;
        if (decode_known(tok, r->tokens + t0, n, &text, &len) == 0)
            json_object_set_new(o, "text", json_stringn(text, len));
        else
            *rc = -1;
        free(text);
    }
    json_object_set_new(o, "logprobs", float_array(r->logprobs + t0, n));
    json_object_set_new(o, "model_logprobs", float_array(r->model_logprobs + t0, n));
    if (r->n_top) {
        json_t *top = json_array();
        for (int i = t0; i < t0 + n; i++) {
            json_t *alts = json_array();
            for (int j = 0; j < r->n_top; j++) {
                json_t *a = json_object();
                json_object_set_new(a, "id", json_integer(r->top_ids[(size_t)i * r->n_top + j]));
                json_object_set_new(a, "logprob", json_real(r->top_logprobs[(size_t)i * r->n_top + j]));
                json_array_append_new(alts, a);
            }
            json_array_append_new(top, alts);
        }
        json_object_set_new(o, "top_logprobs", top);
    }
    json_object_set_new(o, "finish_reason", json_string(hy_finish_name(r->finish)));
    if (r->finish == HY_FINISH_STOP_STRING && r->stop_index >= 0)
        json_object_set_new(o, "stop", json_string(stops[r->stop_index]));
    return o;
}

static void gen_params(const arg_values *a, hy_gen_params *p) {
    hy_gen_params_default(p);
    p->temperature = (float)arg_float(a, "temperature");
    p->top_p = (float)arg_float(a, "top-p");
    p->top_k = (int)arg_int(a, "top-k");
    p->seed = (uint64_t)arg_int(a, "seed");
    p->max_tokens = (int)(arg_given(a, "max-tokens") ? arg_int(a, "max-tokens") : arg_int(a, "max-new-tokens"));
    p->n_logprobs = (int)arg_int(a, "logprobs");
    p->ignore_eos = arg_flag(a, "ignore-eos");
}

static int engine_for(const hy_model *m, const arg_values *a, const hy_tokenizer *tok, int max_len, int verbose,
                      hy_engine **e) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    if (cli_parse_memory(arg_str(a, "memory"), &c.memory_bytes, &c.memory_fraction)) return -1;
    c.max_seqs = (int)arg_int(a, "max-seqs");
    c.max_len = arg_given(a, "max-len") ? (int)arg_int(a, "max-len") : max_len;
    c.block_size = (int)arg_int(a, "block-size");
    c.prefill_chunk = (int)arg_int(a, "chunk");
    c.step_tokens = c.prefill_chunk > 1024 ? c.prefill_chunk : 1024;
    double fraction = 0.0;
    const char *snap = arg_str(a, "snapshot-memory");
    if (strcmp(snap, "0") && (cli_parse_memory(snap, &c.snapshot_bytes, &fraction) || fraction > 0.0))
        return hy_fail("--snapshot-memory '%s': expected bytes, e.g. 1GiB or 512MiB (0 = off)", snap);
    c.tok = tok;
    c.verbose = verbose;
    c.cuda_graphs = (int)arg_int(a, "cuda-graphs");
    return hy_engine_new(e, m, &c);
}

// ---- single mode -------------------------------------------------------------------------------

static int generate_one(const hy_model *m, const hy_tokenizer *tok, const arg_values *a, const int32_t *prompt,
                        int n_prompt) {
    hy_gen_params p;
    gen_params(a, &p);
    const char *stop = arg_str(a, "stop");
    p.stop = &stop;
    p.n_stop = stop != NULL;
    hy_engine *e;
    if (engine_for(m, a, tok, n_prompt + p.max_tokens, 0, &e)) return -1;
    const double t0 = now_s();
    hy_result r = {0};
    int rc = hy_engine_submit(e, prompt, n_prompt, &p) < 0 || hy_engine_run(e) || !hy_engine_poll(e, &r) ? -1 : 0;
    const double dt = now_s() - t0;
    if (!rc) {
        json_t *o = result_json(&r, tok, &stop, &rc);
        if (!rc && arg_flag(a, "json")) {
            json_object_set_new(o, "prompt_tokens", int_array(prompt, n_prompt));
            json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
            putchar('\n');
        } else if (!rc && json_object_get(o, "text")) {
            fputs(json_string_value(json_object_get(o, "text")), stdout);
            putchar('\n');
        } else if (!rc) {
            for (int i = 0; i < r.n_new; i++) printf("%s%d", i ? " " : "", r.tokens[r.turn_start + i]);
            putchar('\n');
        }
        json_decref(o);
        fprintf(stderr, "hybrid generate: %d prompt + %d new tokens in %.2f s (%.1f tok/s), finish: %s\n", n_prompt,
                r.n_new, dt, dt > 0 ? r.n_new / dt : 0.0, hy_finish_name(r.finish));
    }
    hy_result_free(&r);
    hy_engine_destroy(e);
    return rc;
}

// ---- batch mode --------------------------------------------------------------------------------

enum { MAX_LINE_STOPS = HY_MAX_STOP_STRINGS };

typedef struct {
    int32_t *prompt;
    int n_prompt, n;
    hy_gen_params p;
    char *stops[MAX_LINE_STOPS];
    int n_stops;
    char *error;      // the line's problem, when it has one
    int64_t first_id; // engine id of sample 0 (samples are consecutive ids)
    json_t **out;     // (n) finished samples' JSON
    int n_done;
} line_req;

static int get_number(const json_t *obj, const char *key, double lo, double hi, double *v, const char *where) {
    const json_t *x = json_object_get(obj, key);
    if (!x) return 0;
    if (!json_is_number(x) || json_number_value(x) < lo || json_number_value(x) > hi)
        return hy_fail("%s: field '%s' must be a number in [%g, %g]", where, key, lo, hi);
    *v = json_number_value(x);
    return 0;
}

// One input line → a request: the prompt (a "messages" prompt gets the assistant generation
// prompt) and the line's overrides of the command-line sampling options.
static int parse_line(const json_t *obj, const hy_tokenizer *tok, const char *where, line_req *q) {
    const json_t *msgs = json_object_get(obj, "messages");
    if (msgs && !json_object_get(obj, "tokens") && !json_object_get(obj, "text")) {
        if (!tok)
            return hy_fail("%s: field 'messages' needs a tokenizer: put tokenizer.json in the model directory or pass "
                           "--tokenizer FILE",
                           where);
        char *text, field[4300];
        size_t len;
        snprintf(field, sizeof field, "%s: field 'messages'", where);
        if (cli_render_messages(msgs, field, 1, &text, &len)) return -1;
        const int rc = hy_tokenizer_encode(tok, text, len, &q->prompt, &q->n_prompt);
        free(text);
        if (rc) return hy_fail_prefix("%s: field 'messages'", where);
    } else {
        json_t *input = json_object();  // only the prompt field: the others are overrides
        const char *keys[3] = {"tokens", "text", "messages"};
        for (int i = 0; i < 3; i++)
            if (json_object_get(obj, keys[i])) json_object_set(input, keys[i], json_object_get(obj, keys[i]));
        const int rc = cli_input_tokens(input, tok, where, &q->prompt, &q->n_prompt);
        json_decref(input);
        if (rc) return -1;
    }
    double v;
    v = q->n;
    if (get_number(obj, "n", 1, 4096, &v, where)) return -1;
    q->n = (int)v;
    v = q->p.max_tokens;
    if (get_number(obj, "max_tokens", -1e18, 1e18, &v, where)) return -1;
    q->p.max_tokens = v > 2e9 ? 2000000000 : v < -2e9 ? -2000000000 : (int)v;
    v = q->p.temperature;
    if (get_number(obj, "temperature", -1e9, 1e9, &v, where)) return -1;
    q->p.temperature = (float)v;
    v = q->p.top_p;
    if (get_number(obj, "top_p", -1e9, 1e9, &v, where)) return -1;
    q->p.top_p = (float)v;
    v = q->p.top_k;
    if (get_number(obj, "top_k", -1e9, 1e9, &v, where)) return -1;
    q->p.top_k = (int)v;
    v = (double)q->p.seed;
    if (get_number(obj, "seed", 0, 9007199254740992.0, &v, where)) return -1;
    q->p.seed = (uint64_t)v;
    const json_t *stop = json_object_get(obj, "stop");
    if (stop) {
        if (!json_is_array(stop)) return hy_fail("%s: field 'stop' must be an array of strings", where);
        for (size_t i = 0; i < json_array_size(stop); i++) {
            const json_t *s = json_array_get(stop, i);
            if (!json_is_string(s)) return hy_fail("%s: field 'stop'[%zu] must be a string", where, i);
            if (q->n_stops == MAX_LINE_STOPS)
                return hy_fail("%s: field 'stop': at most %d stop strings", where, MAX_LINE_STOPS);
            q->stops[q->n_stops++] = hy_strdup(json_string_value(s));
        }
    }
    return 0;
}

typedef struct {
    line_req *lines;
    int n_lines, cap;
    long next_line;  // first line not yet written
    int next_sample;
    FILE *out;
    int errors;
} batch;

// Writes every line whose samples are all done, in input order.
static void flush_ready(batch *b) {
    while (b->next_line < b->n_lines) {
        line_req *q = &b->lines[b->next_line];
        if (q->error) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer(b->next_line));
            json_object_set_new(o, "error", json_string(q->error));
            json_dumpf(o, b->out, JSON_COMPACT);
            fputc('\n', b->out);
            json_decref(o);
        } else {
            if (q->n_done < q->n) return;
            for (int k = 0; k < q->n; k++) {
                json_dumpf(q->out[k], b->out, JSON_COMPACT | JSON_REAL_PRECISION(9));
                fputc('\n', b->out);
                json_decref(q->out[k]);
                q->out[k] = NULL;
            }
        }
        fflush(b->out);
        b->next_line++;
    }
}

static line_req *line_of(batch *b, int64_t id, int *sample) {
    for (int i = 0; i < b->n_lines; i++) {
        line_req *q = &b->lines[i];
        if (!q->error && id >= q->first_id && id < q->first_id + q->n) {
            *sample = (int)(id - q->first_id);
            return q;
        }
    }
    return NULL;
}

static void batch_free(batch *b) {
    for (int i = 0; i < b->n_lines; i++) {
        line_req *q = &b->lines[i];
        free(q->prompt);
        free(q->error);
        for (int s = 0; s < q->n_stops; s++) free(q->stops[s]);
        if (q->out)
            for (int k = 0; k < q->n; k++) json_decref(q->out[k]);
        free(q->out);
    }
    free(b->lines);
    memset(b, 0, sizeof *b);
}

static void progress(const hy_engine *e, long done, long total, long tokens, double dt, int final) {
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    char used[32], pool[32];
    char snaps[96] = "";
    if (st.snapshot_hits || st.snapshot_bytes_in_use)
        snprintf(snaps, sizeof snaps, ", %lld prefix snapshot hit(s)", (long long)st.snapshot_hits);
    fprintf(stderr, "\rhybrid generate: %ld/%ld sequences done, %.1f tok/s, memory %s of %s in use%s%s", done, total,
            dt > 0 ? tokens / dt : 0.0, hy_bytes_text(st.bytes_in_use, used, sizeof used),
            hy_bytes_text(st.pool_bytes, pool, sizeof pool), snaps, final ? "\n" : "");
}

static int generate_batch(const hy_model *m, const hy_tokenizer *tok, const arg_values *a) {
    const char *in_path = arg_str(a, "prompts"), *out_path = arg_str(a, "out");
    if (!out_path) return hy_fail("--prompts needs --out OUT.jsonl");
    hy_jsonl_reader rd;
    if (hy_jsonl_open(&rd, in_path)) return -1;
    batch b = {0};
    hy_gen_params base;
    gen_params(a, &base);
    const char *cli_stop = arg_str(a, "stop");
    int max_len = 1;
    for (;;) {
        json_t *obj = NULL;
        const int got = hy_jsonl_next(&rd, &obj);
        if (got == 0) break;
        if (b.n_lines == b.cap) {
            b.cap = b.cap ? 2 * b.cap : 64;
            b.lines = hy_realloc(b.lines, sizeof *b.lines * (size_t)b.cap);
        }
        line_req *q = &b.lines[b.n_lines++];
        memset(q, 0, sizeof *q);
        q->n = (int)arg_int(a, "n");
        q->p = base;
        if (cli_stop) q->stops[q->n_stops++] = hy_strdup(cli_stop);
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", in_path, rd.line_no);
        if (got < 0 || parse_line(obj, tok, where, q)) q->error = hy_strdup(hy_last_error());
        json_decref(obj);
        if (!q->error && q->n_prompt + q->p.max_tokens > max_len) max_len = q->n_prompt + q->p.max_tokens;
    }
    hy_jsonl_close(&rd);
    if (b.n_lines == 0) return hy_fail("%s: empty input (no JSON lines)", in_path);
    hy_engine *e;
    if (max_len > m->cfg.max_position_embeddings && !arg_given(a, "max-len")) max_len = m->cfg.max_position_embeddings;
    if (engine_for(m, a, tok, max_len, 1, &e)) {
        batch_free(&b);
        return -1;
    }
    b.out = fopen(out_path, "w");
    if (!b.out) {
        batch_free(&b);
        hy_engine_destroy(e);
        return hy_fail("%s: cannot create: %s", out_path, strerror(errno));
    }
    long total = 0;
    for (int i = 0; i < b.n_lines; i++) {
        line_req *q = &b.lines[i];
        if (q->error) continue;
        q->p.stop = (const char *const *)q->stops;
        q->p.n_stop = q->n_stops;
        int64_t *ids = hy_malloc(sizeof(int64_t) * (size_t)q->n);
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", in_path, i + 1);
        if (hy_engine_submit_n(e, q->prompt, q->n_prompt, &q->p, q->n, ids)) {
            hy_fail_prefix("%s", where);
            q->error = hy_strdup(hy_last_error());
        } else {
            q->first_id = ids[0];
            q->out = hy_calloc((size_t)q->n, sizeof(json_t *));
            total += q->n;
        }
        free(ids);
    }
    for (int i = 0; i < b.n_lines; i++)
        if (b.lines[i].error) {
            fprintf(stderr, "hybrid generate: line %d: %s\n", i + 1, b.lines[i].error);
            b.errors++;
        }
    const double t0 = now_s();
    double last = 0.0;
    long done = 0, tokens = 0;
    int rc = 0, more = 1;
    while (more > 0) {
        more = hy_engine_step(e);
        if (more < 0) rc = -1;
        hy_result r;
        while (hy_engine_poll(e, &r)) {
            int k;
            line_req *q = line_of(&b, r.id, &k);
            if (q) {
                q->out[k] = result_json(&r, tok, (const char *const *)q->stops, &rc);
                json_object_set_new(q->out[k], "index", json_integer(q - b.lines));
                json_object_set_new(q->out[k], "sample", json_integer(k));
                q->n_done++;
                done++;
                tokens += r.n_new;
            }
            hy_result_free(&r);
        }
        flush_ready(&b);
        const double t = now_s() - t0;
        if (t - last >= 0.5) {
            progress(e, done, total, tokens, t, 0);
            last = t;
        }
    }
    flush_ready(&b);
    progress(e, done, total, tokens, now_s() - t0, 1);
    if (fclose(b.out)) rc = hy_fail("%s: write failed", out_path);
    const int n_lines = b.n_lines, errors = b.errors;
    batch_free(&b);
    hy_engine_destroy(e);
    if (!rc && errors)
        rc = hy_fail("%d of %d input line(s) failed (see the 'error' lines of %s)", errors, n_lines, out_path);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *prompt_text = arg_str(&a, "prompt"), *prompt_ids = arg_str(&a, "tokens"),
               *prompts = arg_str(&a, "prompts");
    if (!arg_str(&a, "model") || (prompt_text != NULL) + (prompt_ids != NULL) + (prompts != NULL) != 1) {
        fprintf(stderr, "hybrid generate: give --model and exactly one of --prompt, --tokens or --prompts\n");
        return 2;
    }
    hy_model m;
    hy_tokenizer *tok;
    if (cli_load_model(arg_str(&a, "model"), arg_str(&a, "tokenizer"), arg_str(&a, "device"), &m, &tok))
        return cli_error("generate");
    if (prompts) {
        rc = generate_batch(&m, tok, &a);
    } else {
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
        if (!rc) rc = generate_one(&m, tok, &a, prompt, n_prompt);
        free(prompt);
    }
    cli_unload_model(&m, tok);
    return rc ? cli_error("generate") : 0;
}
