// `hybrid bench learner`: the time of one training step (forward, token cross-entropy, backward,
// grad-norm clipping, AdamW: hy_trainer_step) on one packed batch, as ms/step, tokens/s and MFU,
// next to the same step in PyTorch (evals/bench/learner_peer.py: transformers'
// OlmoHybridForCausalLM with fla's kernels, bf16, torch AdamW) run in the same invocation.
//
// Model: random weights at HF's scale (bench_model_init), built in memory; default "hybrid-1b"
// below: C 2048, 16 layers in the released 3 GDN : 1 attention pattern, 16 attention heads of 128
// (NoPE), GDN 16 key and 16 value heads with the 7B's Dk 96 / Dv 192, SwiGLU 5632, the dolma2
// vocabulary (100352, untied lm_head): 1,334,956,672 parameters, of which 205,520,896 are the input
// embedding. Every head dim is a multiple of 16, so the CUDA kernels take it.
//
// FLOP model (counted per step of T tokens; training = forward + backward = 3 × forward):
//   dense      6 · N · T, N = every parameter but the input embedding table (a gather, no FLOPs);
//              the lm_head product (2·V·C per token forward) is in N. Norm weights, conv taps and
//              the GDN gate vectors are in N as well (< 0.01 % of it).
//   attention  12 · L_attn · (H·D) · T_ctx · T, T_ctx = Σ_d n_d (n_d + 1) / 2 / T: the mean number of
//              keys a query sees under the causal mask within its document (QKᵀ and P·V are
//              4·H·D FLOPs per kept (query, key) pair forward). One 8192-token document: T_ctx =
//              4096.5. PaLM's convention counts the full T × T square, 2× this.
//   GDN        the chunked form's products (chunk 64) as bench_kernels.cu counts them, per value
//              head: 2·(64·(3·Dk + 2·Dv) + 3·Dk·Dv) per token forward, backward 2× forward.
// MFU counts dense + attention, as is common (the 6N + attention of PaLM / Megatron); the GDN
// term is printed beside it and in a second MFU that includes it. MFU is given against the bf16
// GEMM rate measured in this run (8192³ through the backend's own linear op, the cuBLASLt path
// bench_kernels times) and against the nominal H100/H200 SXM dense bf16 peak, 989 TFLOP/s.
//
// Timing: warm-up steps first (the first step sizes the backend's step arena), then each timed step
// between two backend synchronisations on the host clock; the median is reported. Memory: on CUDA
// the device memory in use after the timed steps (total − free). The step arena only grows and
// nothing is freed in between, so that is the peak; the part added since the backend opened
// (weights, optimizer state, arena) is given apart from the CUDA context.
//
// The peer runs after our model, trainer and backend are freed, so it has the GPU to itself. It
// gets the resolved config as config.json in a temporary directory; when it fails, the tail of its
// stderr is printed and our row stands alone.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../common/hy_error.h"
#include "../learner/trainer.h"
#include "args.h"
#include "cli_common.h"
#include "device.h"

int cmd_bench_learner(int argc, char **argv);

enum { CPU_MAX_PARAMS = 200000000 };  // beyond this the CPU reference takes minutes per step
static const double NOMINAL_TFLOPS = 989.0;  // H100 / H200 SXM, dense bf16

// The default model: an HF config.json, parsed like any other (HF defaults for every absent field).
static const char HYBRID_1B_JSON[] =
    "{\"model_type\": \"olmo_hybrid\", \"architectures\": [\"OlmoHybridForCausalLM\"],"
    " \"hidden_size\": 2048, \"intermediate_size\": 5632, \"num_hidden_layers\": 16,"
    " \"num_attention_heads\": 16, \"num_key_value_heads\": 16, \"head_dim\": 128,"
    " \"linear_num_key_heads\": 16, \"linear_num_value_heads\": 16,"
    " \"linear_key_head_dim\": 96, \"linear_value_head_dim\": 192,"
    " \"vocab_size\": 100352, \"max_position_embeddings\": 65536, \"tie_word_embeddings\": false,"
    " \"eos_token_id\": 100257, \"pad_token_id\": 100277, \"bos_token_id\": null,"
    " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": null}}";

static const arg_spec specs[] = {
    {"preset", ARG_STR, NULL, "model shape with random weights: hybrid-1b (default), tiny, tiny-dolma2, olmo-hybrid-7b", 0, 0},
    {"config", ARG_STR, NULL, "HF config.json of the model shape instead of a preset", 0, 0},
    {"tokens", ARG_INT, "8192", "tokens per step (one packed batch)", 2, 1 << 20},
    {"docs", ARG_INT, "1", "documents packed into the batch, T/docs tokens each (the last takes the rest)", 1, 1 << 19},
    {"steps", ARG_INT, "10", "timed steps (the median is reported)", 1, 10000},
    {"warmup", ARG_INT, "3", "untimed steps first", 0, 1000},
    {"peers", ARG_STR, NULL, "PyTorch peer script run in the same invocation (evals/bench/learner_peer.py)", 0, 0},
    {"python", ARG_STR, "python3", "interpreter for the peer script (fla and transformers importable)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
    {"seed", ARG_INT, "0", "seed of the random weights and tokens", 0, 0},
};
static const arg_command command = {
    "bench learner",
    "bench learner [--preset NAME | --config FILE] [--tokens 8192] [--docs N] [--steps N] [--warmup N] "
    "[--peers evals/bench/learner_peer.py] [--device cuda|cpu]",
    "Times one training step (forward, cross-entropy, backward, clip, AdamW; fp32 master weights, bf16\n"
    "matmuls on CUDA) of a model with random weights on one packed batch, and prints ms/step, tokens/s,\n"
    "model TFLOP/s and MFU against the bf16 GEMM rate measured in the same run and against 989 TFLOP/s,\n"
    "and the device memory in use. With --peers, the same step in PyTorch (transformers'\n"
    "OlmoHybridForCausalLM + fla, bf16, torch AdamW) follows in the same invocation, with the ratio.\n"
    "Default model: hybrid-1b (C 2048, 16 layers 3 GDN : 1 attention, 16x128 heads, GDN Dk 96 Dv 192,\n"
    "F 5632, V 100352; 1.33 B parameters). The FLOP model is printed with the results.",
    specs, sizeof specs / sizeof *specs};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// ---- the model's FLOPs ------------------------------------------------------------------------------

typedef struct {
    size_t params, embed, n_dense;  // all parameters, the input embedding, N of 6N
    int L_attn, L_gdn;
    double t_ctx;                   // mean keys per query (see the opening comment)
    double dense, attn, gdn;        // FLOPs per token of a training step
} flop_model;

static void flop_model_init(flop_model *f, const hy_config *c, const hy_param_table *t, const int32_t *cu,
                            int n_docs, int T) {
    memset(f, 0, sizeof *f);
    f->params = t->n_params;
    f->embed = (size_t)c->vocab_size * (size_t)c->hidden_size;
    f->n_dense = c->tie_word_embeddings ? f->params : f->params - f->embed;  // tied: the table is lm_head too
    f->L_gdn = hy_config_n_gdn_layers(c);
    f->L_attn = c->num_hidden_layers - f->L_gdn;
    double pairs = 0;
    for (int d = 0; d < n_docs; d++) {
        const double n = cu[d + 1] - cu[d];
        pairs += n * (n + 1) / 2;
    }
    f->t_ctx = pairs / T;
    f->dense = 6.0 * (double)f->n_dense;
    f->attn = 12.0 * f->L_attn * (double)c->num_attention_heads * c->head_dim * f->t_ctx;
    const double Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim;
    f->gdn = 3.0 * f->L_gdn * c->linear_num_value_heads * 2.0 * (GDN_CHUNK * (3 * Dk + 2 * Dv) + 3 * Dk * Dv);
}

// xorshift64*: a fast stream for values nothing checks but their range (weights, operands, tokens).
static uint64_t next_random(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

// Uniform on [−1, 1) from the top 24 bits of a draw.
static float uniform_pm1(uint64_t *s) { return (float)(next_random(s) >> 40) / 8388608.0f - 1.0f; }

// ---- the GEMM ceiling, through the backend's own linear op ------------------------------------------

// Random values in [−1, 1) → n elements of the backend's activation type at dst (via an fp32 stage
// on backends whose activations are not fp32).
static void upload_random(hy_backend *be, void *dst, size_t n, uint64_t seed) {
    float *host = hy_malloc(sizeof(float) * n);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) host[i] = uniform_pm1(&s);
    if (be->act_bytes == sizeof(float)) {
        be->bytes_from_host(be, dst, host, n * sizeof(float));
    } else {
        float *stage = be->alloc_persistent(be, sizeof(float) * n);
        be->f32_from_host(be, stage, host, n);
        be->params_to_matmul_view(be, dst, stage, n);
        be->free_persistent(be, stage);  // synchronises first
    }
    free(host);
}

// TFLOP/s of N³ products y = x·wᵀ on random bf16 (CUDA) / fp32 (CPU) operands: median of samples.
static double measure_gemm_tflops(hy_backend *be, int *n_out) {
    const int gpu = be->device != HY_DEVICE_CPU, N = gpu ? 8192 : 256, reps = gpu ? 5 : 1, samples = 7;
    const size_t nn = (size_t)N * N;
    void *x = be->alloc_persistent(be, nn * be->act_bytes), *w = be->alloc_persistent(be, nn * be->act_bytes);
    void *y = be->alloc_persistent(be, nn * be->act_bytes);
    upload_random(be, x, nn, 1);
    upload_random(be, w, nn, 2);
    double t[7];
    for (int k = -1; k < samples; k++) {  // k = −1: warm-up
        be->synchronize(be);
        const double t0 = now_s();
        for (int r = 0; r < reps; r++) be->linear_forward(be, y, x, w, N, N, N);
        be->synchronize(be);
        if (k >= 0) t[k] = (now_s() - t0) / reps;
    }
    be->free_persistent(be, x);
    be->free_persistent(be, w);
    be->free_persistent(be, y);
    qsort(t, samples, sizeof *t, by_value);
    *n_out = N;
    return 2.0 * (double)N * N * N / t[samples / 2] / 1e12;
}

// ---- our step ------------------------------------------------------------------------------------------

// hy_model_init with the matrices and the embedding drawn uniform on ±std·√3 (HF's variance) from
// next_random instead of one normal draw each: hy_model_init took 154 s for the 1.33 B model on a
// build machine, this a few seconds, and step time does not depend on the distribution. Norms,
// convs, A_log and dt_bias get HF's init (hy_params_init_random over a table of only their rows:
// the same offsets into the same arena). The model is on the CPU backend, as after hy_model_init.
static void bench_model_init(hy_model *m, const hy_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    hy_param_table_build(&m->table, cfg);
    m->arena = hy_calloc(m->table.total, sizeof(float));
    hy_param_table small = {hy_malloc(sizeof(hy_param_spec) * (size_t)m->table.n), 0, m->table.total, 0};
    const float amp = cfg->initializer_range * 1.7320508f;
    uint64_t s = (seed * 0x9e3779b97f4a7c15ull + 0x5851f42d4c957f2dull) | 1;
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *p = &m->table.specs[i];
        if (p->role != HY_ROLE_MATRIX && p->role != HY_ROLE_EMBED) {
            small.specs[small.n++] = *p;
            continue;
        }
        float *x = m->arena + p->offset;
        for (size_t j = 0; j < p->numel; j++) x[j] = amp * uniform_pm1(&s);
        const int pad = cfg->pad_token_id;
        if (p->role == HY_ROLE_EMBED && pad >= 0 && pad < cfg->vocab_size)  // HF zeroes the padding row
            memset(x + (size_t)pad * (size_t)cfg->hidden_size, 0, sizeof(float) * (size_t)cfg->hidden_size);
    }
    hy_params_init_random(m->arena, &small, cfg, seed);
    hy_param_table_free(&small);
    hy_model_attach(m, hy_cpu_backend());
}

typedef struct {
    double ms, ms_min, ms_max;     // per timed step
    double loss_first, loss_last;  // of the timed steps
    int skipped;                   // steps refused for a non-finite loss or gradient
    double used_gib, added_gib;    // CUDA: device memory in use after the steps, and since the backend opened
} learner_result;

static double used_gib(hy_backend *be) {
    size_t free_b = 0, total_b = 0;
    be->memory_info(be, &free_b, &total_b);
    return (double)(total_b - free_b) / (double)(1ull << 30);
}

// Builds the model on be, runs warm-up + timed steps of batch b. 0 / −1 (message set).
static int run_steps(hy_backend *be, const hy_config *cfg, const hy_batch *b, const int32_t *targets,
                     const arg_values *a, double used_before, learner_result *r) {
    memset(r, 0, sizeof *r);
    const double t0 = now_s();
    hy_model m;
    bench_model_init(&m, cfg, (uint64_t)arg_int(a, "seed"));
    hy_model_attach(&m, be);
    const adamw_params hp = {1e-4, 0.9, 0.95, 1e-8, 0.1};
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 1.0f);
    fprintf(stderr, "hybrid bench learner: model and optimizer state on %s in %.1f s\n", be->name, now_s() - t0);
    const int warmup = (int)arg_int(a, "warmup"), steps = (int)arg_int(a, "steps");
    double *ms = hy_malloc(sizeof(double) * (size_t)steps);
    int rc = 0;
    for (int i = 0; i < warmup + steps && !rc; i++) {
        double loss = 0, grad_norm = 0;
        const long skipped = t.skipped;
        be->synchronize(be);
        const double s0 = now_s();
        rc = hy_trainer_step(&t, b, targets, &loss, &grad_norm);
        be->synchronize(be);
        const double dt = (now_s() - s0) * 1e3;
        if (rc) break;
        if (i == 0) fprintf(stderr, "hybrid bench learner: first step %.1f ms, loss %.4f\n", dt, loss);
        if (i < warmup) continue;
        ms[i - warmup] = dt;
        r->skipped += t.skipped > skipped;
        if (i == warmup) r->loss_first = loss;
        r->loss_last = loss;
    }
    if (!rc) {
        if (be->device == HY_DEVICE_CUDA) {
            r->used_gib = used_gib(be);
            r->added_gib = r->used_gib - used_before;
        }
        qsort(ms, (size_t)steps, sizeof *ms, by_value);
        r->ms = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
        r->ms_min = ms[0];
        r->ms_max = ms[steps - 1];
    }
    free(ms);
    hy_trainer_free(&t);
    hy_model_free(&m);
    return rc ? hy_fail_prefix("training step") : 0;
}

// ---- the peer -------------------------------------------------------------------------------------------

typedef struct {
    int ok;
    double ms, peak_gb, reserved_gb;
    long params;
    char kernel_path[1024], packed[512], versions[320], device[128];
} peer_result;

// Appends s to buf (size n) in single quotes for /bin/sh. 0 / −1 when it does not fit.
static int append_quoted(char *buf, size_t n, const char *s) {
    size_t len = strlen(buf);
    if (len + 3 >= n) return -1;
    buf[len++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        const size_t k = piece ? 4 : 1;
        if (len + k + 2 >= n) return -1;
        if (piece) memcpy(buf + len, piece, k);
        else buf[len] = *s;
        len += k;
    }
    buf[len++] = '\'';
    buf[len] = 0;
    return 0;
}

static void print_tail(const char *path, size_t max_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    const long from = size > (long)max_bytes ? size - (long)max_bytes : 0;
    fseek(f, from, SEEK_SET);
    char buf[512];
    size_t got;
    fprintf(stderr, "---- peer stderr (last %ld bytes) ----\n", size - from);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, got, stderr);
    fprintf(stderr, "\n---- end of peer stderr ----\n");
    fclose(f);
}

static void json_text(const json_t *o, const char *key, char *out, size_t n) {
    const json_t *v = json_object_get(o, key);
    snprintf(out, n, "%s", json_is_string(v) ? json_string_value(v) : "?");
}

static double json_num(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : -1.0;
}

// Runs the peer script on dir/config.json; fills p (p->ok = 0 when it failed, after printing why).
static void run_peer(const char *script, const char *python, const char *dir, const arg_values *a, int gpu,
                     peer_result *p) {
    memset(p, 0, sizeof *p);
    char cfg_path[4200], err_path[4200], cmd[16384] = "";
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(err_path, sizeof err_path, "%s/peer.stderr", dir);
    char tail[256];
    snprintf(tail, sizeof tail, " --tokens %ld --docs %ld --steps %ld --warmup %ld --seed %ld --device %s 2>",
             arg_int(a, "tokens"), arg_int(a, "docs"), arg_int(a, "steps"), arg_int(a, "warmup"), arg_int(a, "seed"),
             gpu ? "cuda" : "cpu");
    if (append_quoted(cmd, sizeof cmd, python) || strlen(cmd) + 2 >= sizeof cmd || !strcat(cmd, " ") ||
        append_quoted(cmd, sizeof cmd, script) || strlen(cmd) + 12 >= sizeof cmd || !strcat(cmd, " --config ") ||
        append_quoted(cmd, sizeof cmd, cfg_path) || strlen(cmd) + strlen(tail) + 1 >= sizeof cmd ||
        !strcat(cmd, tail) || append_quoted(cmd, sizeof cmd, err_path)) {
        fprintf(stderr, "hybrid bench learner: peer command too long; skipping the peer\n");
        return;
    }
    fprintf(stderr, "hybrid bench learner: running the peer: %s\n", cmd);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f) {
        fprintf(stderr, "hybrid bench learner: cannot run the peer (%s); our row stands alone\n", strerror(errno));
        return;
    }
    char line[8192];
    json_t *last = NULL;
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        if (o && json_is_number(json_object_get(o, "ms_per_step"))) {
            json_decref(last);
            last = o;
        } else {
            json_decref(o);
        }
    }
    const int status = pclose(f);
    if (!last || status != 0) {
        fprintf(stderr, "hybrid bench learner: the peer failed (%s %d%s); our row stands alone\n",
                WIFEXITED(status) ? "exit code" : "status", WIFEXITED(status) ? WEXITSTATUS(status) : status,
                last ? "" : ", no result line");
        print_tail(err_path, 3000);
        json_decref(last);
        return;
    }
    p->ok = 1;
    p->ms = json_num(last, "ms_per_step");
    p->peak_gb = json_num(last, "peak_mem_gb");
    p->reserved_gb = json_num(last, "reserved_gb");
    p->params = (long)json_num(last, "params");
    json_text(last, "kernel_path", p->kernel_path, sizeof p->kernel_path);
    json_text(last, "packed", p->packed, sizeof p->packed);
    json_text(last, "device_name", p->device, sizeof p->device);
    char torch_v[64], tf_v[64], fla_v[64], triton_v[64];
    json_text(last, "torch", torch_v, sizeof torch_v);
    json_text(last, "transformers", tf_v, sizeof tf_v);
    json_text(last, "fla", fla_v, sizeof fla_v);
    json_text(last, "triton", triton_v, sizeof triton_v);
    snprintf(p->versions, sizeof p->versions, "torch %s, transformers %s, fla %s, triton %s", torch_v, tf_v, fla_v,
             triton_v);
    json_decref(last);
}

// ---- the report -------------------------------------------------------------------------------------------

static void print_row(const char *side, double ms, int T, const flop_model *f, double gemm_tflops, int gpu,
                      const char *mem) {
    const double s = ms * 1e-3, tflops = (f->dense + f->attn) * T / s / 1e12;
    const double with_gdn = (f->dense + f->attn + f->gdn) * T / s / 1e12;
    char nominal[32] = "-", nominal_gdn[32] = "-";
    if (gpu) {
        snprintf(nominal, sizeof nominal, "%.1f%%", 100.0 * tflops / NOMINAL_TFLOPS);
        snprintf(nominal_gdn, sizeof nominal_gdn, "%.1f%%", 100.0 * with_gdn / NOMINAL_TFLOPS);
    }
    printf("%-8s %10.2f %11.0f %9.4g %9.1f%% %9s %11s %12s\n", side, ms, T / s, tflops, 100.0 * tflops / gemm_tflops,
           nominal, nominal_gdn, mem);
}

// ---- the command ---------------------------------------------------------------------------------------

static int resolve_config(const arg_values *a, hy_config *cfg, const char **name) {
    const char *file = arg_str(a, "config"), *preset = arg_str(a, "preset");
    *name = file ? file : preset ? preset : "hybrid-1b";
    if (file) return hy_config_load(cfg, file);
    if (!strcmp(*name, "hybrid-1b")) return hy_config_parse(cfg, HYBRID_1B_JSON, "preset 'hybrid-1b'");
    if (hy_config_preset(cfg, *name)) return hy_fail_prefix("--preset (known here: hybrid-1b and the model presets)");
    return 0;
}

// Temporary directory holding config.json for the peer (and its stderr); removed by remove_tmp.
static int make_tmp(char *dir, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, n, "%s/hybrid-bench-learner-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) return hy_fail("cannot create a temporary directory %s: %s", dir, strerror(errno));
    return 0;
}

static void remove_tmp(const char *dir) {
    const char *files[2] = {"config.json", "peer.stderr"};
    char path[4200];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

static int bench(const arg_values *a) {
    hy_config cfg;
    const char *name;
    if (resolve_config(a, &cfg, &name)) return -1;
    const int T = (int)arg_int(a, "tokens"), n_docs = (int)arg_int(a, "docs");
    if (n_docs > T / 2)
        return hy_fail("--docs %d with --tokens %d: every document needs at least 2 tokens (at most %d documents)",
                       n_docs, T, T / 2);
    int32_t *cu = hy_malloc(sizeof(int32_t) * (size_t)(n_docs + 1));
    for (int d = 0; d <= n_docs; d++) cu[d] = (int32_t)((long)T * d / n_docs);
    const int longest = cu[n_docs] - cu[n_docs - 1];  // the last document takes the remainder
    hy_param_table table;
    hy_param_table_build(&table, &cfg);
    flop_model f;
    flop_model_init(&f, &cfg, &table, cu, n_docs, T);
    hy_param_table_free(&table);

    hy_backend *be = NULL;
    int rc = 0;
    if (longest > cfg.max_position_embeddings)
        rc = hy_fail("documents of %d tokens exceed max_position_embeddings %d of %s", longest,
                     cfg.max_position_embeddings, name);
    if (!rc) rc = cli_device_open(arg_str(a, "device"), &be);
    if (!rc && be->device == HY_DEVICE_CPU && f.params > CPU_MAX_PARAMS)
        rc = hy_fail("%s has %.2f B parameters: the CPU reference backend would take hours on it. Run it on a GPU "
                     "(--device cuda), or smoke-test here with --preset tiny",
                     name, f.params / 1e9);
    if (!rc) rc = cli_device_check(be, &cfg);
    char dir[4096] = "";
    if (!rc) rc = make_tmp(dir, sizeof dir);
    if (!rc) {
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", dir);
        rc = hy_config_save(&cfg, path);  // validates the config, and is what the peer builds
    }
    if (rc) {
        free(cu);
        if (be) cli_device_close(be);
        if (*dir) remove_tmp(dir);
        return -1;
    }

    const int gpu = be->device == HY_DEVICE_CUDA;
    char dev[300];
    cli_device_name(be, dev, sizeof dev);
    const double used_before = gpu ? used_gib(be) : 0.0;
    int gemm_n = 0;
    const double gemm_tflops = measure_gemm_tflops(be, &gemm_n);
    int32_t *tokens = hy_malloc(sizeof(int32_t) * (size_t)T), *targets = hy_malloc(sizeof(int32_t) * (size_t)T);
    uint64_t s = ((uint64_t)arg_int(a, "seed") * 0x9e3779b97f4a7c15ull + 0x1234567u) | 1;
    for (int i = 0; i < T; i++) tokens[i] = (int32_t)((next_random(&s) >> 33) % (uint64_t)cfg.vocab_size);
    const hy_batch b = {tokens, cu, T, n_docs};
    hy_next_token_targets(&b, targets);

    printf("device: %s\n", dev);
    printf("model: %s, random weights: C %d, L %d (%d GDN + %d attention), attention %dx%d (kv %d, %s), "
           "GDN H_k %d H_v %d Dk %d Dv %d, F %d, V %d\n",
           name, cfg.hidden_size, cfg.num_hidden_layers, f.L_gdn, f.L_attn, cfg.num_attention_heads, cfg.head_dim,
           cfg.num_key_value_heads, cfg.rope ? "RoPE" : "NoPE", cfg.linear_num_key_heads, cfg.linear_num_value_heads,
           cfg.linear_key_head_dim, cfg.linear_value_head_dim, cfg.intermediate_size, cfg.vocab_size);
    printf("parameters: %zu (%.3f B); input embedding %zu%s; N = %zu\n", f.params, f.params / 1e9, f.embed,
           cfg.tie_word_embeddings ? " (tied: also the lm_head, so in N)" : " (not in N)", f.n_dense);
    printf("batch: %d tokens in %d document(s) of %d%s; %ld warm-up + %ld timed steps (median)\n", T, n_docs,
           cu[1] - cu[0], n_docs > 1 && longest != cu[1] - cu[0] ? " (last: longer)" : "", arg_int(a, "warmup"),
           arg_int(a, "steps"));
    printf("step: forward, mean token cross-entropy, backward, clip 1.0, AdamW (lr 1e-4, betas 0.9/0.95, wd 0.1); "
           "fp32 master weights%s\n", gpu ? ", bf16 matmuls and activations" : " (fp32 throughout on the CPU)");
    printf("ceilings (measured now): GEMM %d^3 through the backend's linear op %.4g TFLOP/s; nominal %s\n", gemm_n,
           gemm_tflops, gpu ? "989 TFLOP/s (H100/H200 SXM dense bf16)" : "- (CPU)");
    printf("model FLOPs per token: 6N %.4g G + attention 12*L_attn*H*D*T_ctx %.4g G (T_ctx %.1f) = %.4g G; "
           "GDN chunked form %.4g G more (in 'MFU+GDN' only)\n",
           f.dense / 1e9, f.attn / 1e9, f.t_ctx, (f.dense + f.attn) / 1e9, f.gdn / 1e9);
    fflush(stdout);

    learner_result r;
    rc = run_steps(be, &cfg, &b, targets, a, used_before, &r);
    cli_device_close(be);  // frees the step arena: the peer gets the GPU
    free(tokens);
    free(targets);
    free(cu);
    if (rc) {
        remove_tmp(dir);
        return -1;
    }
    char mem[64] = "-";
    if (gpu) snprintf(mem, sizeof mem, "%.2f GiB", r.used_gib);
    printf("\n%-8s %10s %11s %9s %10s %9s %11s %12s\n", "side", "ms/step", "tokens/s", "TFLOP/s", "MFU(meas)",
           "MFU(989)", "MFU+GDN(989)", "memory");
    print_row("hybrid", r.ms, T, &f, gemm_tflops, gpu, mem);
    fflush(stdout);

    peer_result p = {0};
    const char *script = arg_str(a, "peers");
    if (script) {
        run_peer(script, arg_str(a, "python"), dir, a, gpu, &p);
        if (p.ok) {
            if (p.peak_gb >= 0) snprintf(mem, sizeof mem, "%.2f GiB", p.peak_gb * 1e9 / (double)(1ull << 30));
            else snprintf(mem, sizeof mem, "-");
            print_row("pytorch", p.ms, T, &f, gemm_tflops, gpu, mem);
        } else {
            printf("%-8s %10s\n", "pytorch", "failed");
        }
    }
    remove_tmp(dir);

    printf("\nhybrid: step times %.2f / %.2f / %.2f ms (min / median / max); loss %.4f -> %.4f over the timed "
           "steps%s\n",
           r.ms_min, r.ms, r.ms_max, r.loss_first, r.loss_last, r.skipped ? " (some steps skipped: non-finite)" : "");
    if (gpu)
        printf("hybrid memory: %.2f GiB in use on the device after the steps (the peak: the step arena only grows), "
               "%.2f GiB of it since the backend opened\n",
               r.used_gib, r.added_gib);
    if (p.ok) {
        printf("pytorch: %s; %s; %s; %s\n", p.device, p.versions, p.kernel_path, p.packed);
        if (p.peak_gb >= 0)
            printf("pytorch memory: peak allocated %.2f GiB, peak reserved %.2f GiB (torch.cuda)\n",
                   p.peak_gb * 1e9 / (double)(1ull << 30), p.reserved_gb * 1e9 / (double)(1ull << 30));
        if (p.params != (long)f.params)
            printf("note: the peer's model has %ld parameters, ours %zu\n", p.params, f.params);
        printf("hybrid vs pytorch: %.2fx the PyTorch step's speed (target >= 1.5x: %s)\n", p.ms / r.ms,
               p.ms / r.ms >= 1.5 ? "met" : "not met");
    }
    if (gpu) {
        const double mfu = (f.dense + f.attn) * T / (r.ms * 1e-3) / 1e12 / NOMINAL_TFLOPS;
        printf("MFU target >= 45%% of 989 TFLOP/s: %.1f%%, %s\n", 100.0 * mfu, mfu >= 0.45 ? "met" : "not met");
    }
    return 0;
}

int cmd_bench_learner(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    if (arg_str(&a, "preset") && arg_str(&a, "config")) {
        fprintf(stderr, "hybrid bench learner: give --preset or --config, not both\n");
        return 2;
    }
    return bench(&a) ? cli_error("bench learner") : 0;
}
