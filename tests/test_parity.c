// Parity with HF transformers' OlmoHybridForCausalLM on committed fixtures
// (tests/fixtures/parity/<case>/, made by tests/fixtures/make_fixtures.py).
//
// For every case: logprobs of a packed batch (documents run separately in HF) within 1e-4
// absolute; every parameter's gradient of the mean next-token cross-entropy within 1e-4 relative
// norm error; HF's greedy generate (cache on) reproduced token for token by our prefill + recurrent
// decode, its logprobs within 1e-4 of HF's and within 1e-5 of our own full-sequence forward; and
// the loss along 3 AdamW steps within 1e-4 relative. These thresholds are the foundation issue's.
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../learner/trainer.h"
#include "../model/model.h"
#include "../model/safetensors.h"

static int failures;

#define CHECK(cond, ...)                         \
    do {                                         \
        if (!(cond)) {                           \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");               \
            failures++;                          \
        }                                        \
    } while (0)

typedef struct {
    st_archive st;
    const char *dir;
} expect;

static float *read_f32(const expect *e, const char *name, int64_t *n) {
    const st_tensor *t = st_find(&e->st, name);
    if (!t) {
        fprintf(stderr, "  fixture %s lacks '%s'\n", e->dir, name);
        exit(1);
    }
    float *x = hy_malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (st_read_f32(&e->st, t, x)) {
        fprintf(stderr, "  %s\n", hy_last_error());
        exit(1);
    }
    if (n) *n = t->numel;
    return x;
}

static int32_t *read_i32(const expect *e, const char *name, int64_t *n) {
    const st_tensor *t = st_find(&e->st, name);
    if (!t) {
        fprintf(stderr, "  fixture %s lacks '%s'\n", e->dir, name);
        exit(1);
    }
    int32_t *x = hy_malloc(sizeof(int32_t) * (size_t)(t->numel ? t->numel : 1));
    if (st_read_i32(&e->st, t, x)) {
        fprintf(stderr, "  %s\n", hy_last_error());
        exit(1);
    }
    if (n) *n = t->numel;
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;  // NaN propagates as a failure
    }
    return m;
}

static void check_logprobs(const hy_model *m, const hy_batch *b, const expect *e) {
    int64_t n;
    float *want = read_f32(e, "logprobs", &n);
    float *got = hy_malloc(sizeof(float) * (size_t)b->T);
    CHECK(n == b->T - b->n_docs, "logprobs count %lld != T - n_docs", (long long)n);
    CHECK(hy_model_score(m, b, got) == 0, "score failed: %s", hy_last_error());
    double d = max_abs_diff(got, want, (size_t)n);
    printf("  logprobs       max |Δ| %.3g over %lld positions\n", d, (long long)n);
    CHECK(d <= 1e-4, "logprobs differ from HF by %.3g (> 1e-4)", d);
    free(want);
    free(got);
}

static void check_gradients(hy_model *m, const hy_batch *b, const expect *e) {
    adamw_params hp = {0};
    hy_trainer t;
    hy_trainer_init(&t, m, &hp, 0.0f);
    int32_t *targets = hy_malloc(sizeof(int32_t) * (size_t)b->T);
    hy_next_token_targets(b, targets);
    double loss, gnorm;
    CHECK(hy_trainer_loss_and_grads(&t, b, targets, &loss, &gnorm) == 0, "forward/backward failed: %s", hy_last_error());
    double worst = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        char name[200];
        snprintf(name, sizeof name, "grad.%s", s->name);
        int64_t n;
        float *want = read_f32(e, name, &n);
        CHECK((size_t)n == s->numel, "%s has %lld elements, expected %zu", name, (long long)n, s->numel);
        double err = 0.0, ref = 0.0;
        for (size_t j = 0; j < s->numel; j++) {
            double d = (double)t.grads[s->offset + j] - want[j];
            err += d * d;
            ref += (double)want[j] * want[j];
        }
        double rel = sqrt(err) / fmax(sqrt(ref), 1e-12);
        if (!(rel <= worst)) {
            worst = rel;
            worst_name = s->name;
        }
        CHECK(rel <= 1e-4, "gradient of %s: relative norm error %.3g (> 1e-4)", s->name, rel);
        CHECK(ref > 0.0, "HF gradient of %s is all zero: the fixture cannot test it",
              s->name);
        free(want);
    }
    printf("  gradients      %d tensors, worst relative error %.3g (%s)\n", m->table.n, worst, worst_name);
    free(targets);
    hy_trainer_free(&t);
}

// Greedy decode from gen.prompt: prefill once, then one recurrent step per token.
static void check_decode(const hy_model *m, const expect *e) {
    int64_t P, N, n_lp;
    int32_t *prompt = read_i32(e, "gen.prompt", &P);
    int32_t *want_tokens = read_i32(e, "gen.tokens", &N);
    float *want_lp = read_f32(e, "gen.logprobs", &n_lp);
    const int V = m->cfg.vocab_size;
    hy_cache cache;
    hy_cache_init(&cache, m, 2, (int)(P + N));
    const int slot = 1;  // not slot 0, so slot offsets are exercised
    float *logits = hy_malloc(sizeof(float) * (size_t)V);
    int32_t *seq = hy_malloc(sizeof(int32_t) * (size_t)(P + N));
    float *lp = hy_malloc(sizeof(float) * (size_t)N);
    memcpy(seq, prompt, sizeof(int32_t) * (size_t)P);
    int32_t cu[2] = {0, (int32_t)P};
    hy_batch b = {prompt, cu, (int)P, 1};
    int rc = hy_model_forward(m, &b, HY_LOGITS_LAST_DOC, logits, NULL, &cache, &slot);
    int same_tokens = 1;
    for (int64_t i = 0; i < N && !rc; i++) {
        int best = 0;
        double mx = logits[0], s = 0.0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        mx = logits[best];
        for (int v = 0; v < V; v++) s += exp((double)logits[v] - mx);
        lp[i] = (float)((double)logits[want_tokens[i]] - mx - log(s));
        same_tokens &= best == want_tokens[i];
        seq[P + i] = want_tokens[i];  // follow HF's path even after a divergence, to keep comparing
        int32_t one[2] = {0, 1};
        hy_batch step = {&seq[P + i], one, 1, 1};
        if (i + 1 < N) rc = hy_model_forward(m, &step, HY_LOGITS_LAST_DOC, logits, NULL, &cache, &slot);
    }
    CHECK(rc == 0, "decode failed: %s", hy_last_error());
    CHECK(same_tokens, "greedy tokens differ from HF generate");
    double d_hf = max_abs_diff(lp, want_lp, (size_t)N);
    // our own full-sequence forward over prompt + generated tokens
    float *full = hy_malloc(sizeof(float) * (size_t)(P + N));
    int32_t cu_full[2] = {0, (int32_t)(P + N)};
    hy_batch fb = {seq, cu_full, (int)(P + N), 1};
    CHECK(hy_model_score(m, &fb, full) == 0, "score failed: %s", hy_last_error());
    double d_full = max_abs_diff(lp, full + P - 1, (size_t)N);
    printf("  decode         %lld tokens after a %lld-token prompt: max |Δ| vs HF %.3g, vs full forward %.3g\n",
           (long long)N, (long long)P, d_hf, d_full);
    CHECK(d_hf <= 1e-4, "decode logprobs differ from HF generate by %.3g (> 1e-4)", d_hf);
    CHECK(d_full <= 1e-5, "decode logprobs differ from the full-sequence forward by %.3g (> 1e-5)", d_full);
    free(full);
    free(prompt);
    free(want_tokens);
    free(want_lp);
    free(logits);
    free(seq);
    free(lp);
    hy_cache_free(&cache);
}

static double json_num(const json_t *o, const char *key) {
    o = json_object_get(o, "adamw");
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) {
        fprintf(stderr, "  fixture.json lacks number '%s'\n", key);
        exit(1);
    }
    return json_number_value(v);
}

static void check_adamw(hy_model *m, const hy_batch *b, const expect *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fixture.json", e->dir);
    json_error_t err;
    json_t *fx = json_load_file(path, 0, &err);
    if (!fx) {
        fprintf(stderr, "  %s: %s\n", path, err.text);
        exit(1);
    }
    const json_t *betas = json_object_get(json_object_get(fx, "adamw"), "betas");
    adamw_params hp = {json_num(fx, "lr"), json_number_value(json_array_get(betas, 0)),
                       json_number_value(json_array_get(betas, 1)), json_num(fx, "eps"), json_num(fx, "weight_decay")};
    const int steps = (int)json_num(fx, "steps");
    hy_trainer t;
    hy_trainer_init(&t, m, &hp, (float)json_num(fx, "grad_clip"));
    int64_t n_loss, n_gn;
    float *want_loss = read_f32(e, "adamw.loss", &n_loss);
    float *want_gn = read_f32(e, "adamw.grad_norm", &n_gn);
    CHECK(n_loss == steps + 1 && n_gn == steps, "adamw fixture sizes do not match %d steps", steps);
    int32_t *targets = hy_malloc(sizeof(int32_t) * (size_t)b->T);
    hy_next_token_targets(b, targets);
    double worst = 0.0;
    for (int s = 0; s <= steps; s++) {
        double loss, gnorm;
        int rc = s < steps ? hy_trainer_step(&t, b, targets, &loss, &gnorm)
                           : hy_trainer_loss_and_grads(&t, b, targets, &loss, &gnorm);
        CHECK(rc == 0, "training step failed: %s", hy_last_error());
        double rel = fabs(loss - want_loss[s]) / fabs((double)want_loss[s]);
        worst = fmax(worst, rel);
        CHECK(rel <= 1e-4, "loss before step %d: %.9g vs HF %.9g (relative %.3g > 1e-4)", s + 1, loss, want_loss[s], rel);
        if (s < steps) {
            // 1e-3: HF's own grad norm moves by up to 1.8e-4 relative under one-ulp weight noise
            // (fixture.json fp32_sensitivity), so 1e-4 would test noise
            double grel = fabs(gnorm - want_gn[s]) / fabs((double)want_gn[s]);
            CHECK(grel <= 1e-3, "grad norm at step %d: %.9g vs HF %.9g", s + 1, gnorm, want_gn[s]);
        }
    }
    json_decref(fx);
    printf("  adamw          %d steps, losses %.6f → %.6f, worst relative error %.3g\n", steps, want_loss[0],
           want_loss[steps], worst);
    free(want_loss);
    free(want_gn);
    free(targets);
    hy_trainer_free(&t);
}

static void run_case(const char *dir) {
    printf("case %s\n", dir);
    hy_model m;
    if (hy_model_load(&m, dir)) {
        fprintf(stderr, "  FAIL: load: %s\n", hy_last_error());
        failures++;
        return;
    }
    expect e = {.dir = dir};
    char path[4200];
    snprintf(path, sizeof path, "%s/expect.safetensors", dir);
    if (st_open(&e.st, path)) {
        fprintf(stderr, "  FAIL: %s\n", hy_last_error());
        failures++;
        hy_model_free(&m);
        return;
    }
    int64_t T, nd;
    int32_t *tokens = read_i32(&e, "tokens", &T);
    int32_t *cu = read_i32(&e, "cu_seqlens", &nd);
    hy_batch b = {tokens, cu, (int)T, (int)nd - 1};
    check_logprobs(&m, &b, &e);
    check_gradients(&m, &b, &e);
    check_decode(&m, &e);
    check_adamw(&m, &b, &e);  // last: it changes the weights
    free(tokens);
    free(cu);
    st_close(&e.st);
    hy_model_free(&m);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    // argv[1]: source dir (fixtures under tests/fixtures/parity); argv[2], optional: another
    // fixture root, e.g. fixtures freshly made on the GPU box
    const char *src = argc > 1 ? argv[1] : ".";
    char root[2048];
    if (argc > 2)
        snprintf(root, sizeof root, "%s", argv[2]);
    else
        snprintf(root, sizeof root, "%s/tests/fixtures/parity", src);
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", root);
        return 1;
    }
    char *names[64];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 64)
        if (ent->d_name[0] != '.') names[n++] = hy_strdup(ent->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        run_case(dir);
        free(names[i]);
    }
    if (n == 0) {
        fprintf(stderr, "no parity fixtures under %s\n", root);
        return 1;
    }
    printf("%d case(s), %d failure(s)\n", n, failures);
    return failures != 0;
}
