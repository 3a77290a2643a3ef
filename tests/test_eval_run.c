// Tests of evals/eval_run.h, host only (a tiny random model on the CPU backend):
//   pass_at_k   the unbiased estimator on hand-computed counts (n=4, c=1, k=2 → 0.5, ...), a large
//               n against the log-gamma form, and NaN for impossible counts
//   prompts     hy_eval_prompt_tokens in chat mode (the chat template + generation prompt) and raw
//               mode (the plain prompt text), and a {"messages"} sample refused in raw mode
//   run         hy_eval_run on the arithmetic task: the callback sees every completion once in
//               (index, sample) order with the verdict hy_task_check gives its text; the sums are
//               the means of those verdicts; the completions do not depend on the pool size or on
//               first_index; a completion ending at an eos id is decoded without it; bad ranges
//               (an unbounded task with n_prompts 0, indices past a file's end) fail by name
//
// Usage: test_eval_run SOURCE_DIR [section]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/hy_error.h"
#include "evals/eval_run.h"
#include "evals/task.h"
#include "model/chat_template.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "rollout/engine.h"

static const char *src_dir;

// rc must be −1 and the last error must contain needle.
static void check_error(const char *what, int rc, const char *needle) {
    CHECK(rc != 0, "%s: accepted", what);
    CHECK(strstr(hy_last_error(), needle), "%s: message lacks '%s': %s", what, needle, hy_last_error());
    if (rc) printf("  ok   %s: %s\n", what, hy_last_error());
}

static hy_tokenizer *load_tokenizer(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model/tokenizers/dolma2-tokenizer.json", src_dir);
    hy_tokenizer *tok;
    if (hy_tokenizer_load(&tok, path)) {
        fprintf(stderr, "cannot load %s: %s\n", path, hy_last_error());
        exit(1);
    }
    return tok;
}

static char *decode(const hy_tokenizer *tok, const int32_t *ids, int n) {
    char *text;
    size_t len;
    if (hy_tokenizer_decode(tok, ids, n, 0, &text, &len)) {
        fprintf(stderr, "decode: %s\n", hy_last_error());
        exit(1);
    }
    return text;
}

// A JSONL task file in the temp directory; path receives its name.
static void write_jsonl(const char *text, char *path, size_t n) {
    snprintf(path, n, "%s/test_eval_run_%d.jsonl", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

// ---------------------------------------------------------------------------------------------

static void test_pass_at_k(void) {
    printf("pass_at_k\n");
    // by hand: 1 − C(n−c, k)/C(n, k)
    static const struct {
        int n, c, k;
        double want;
    } cases[] = {
        {4, 1, 2, 0.5},                // 1 − C(3,2)/C(4,2) = 1 − 3/6
        {4, 0, 2, 0.0},                // nothing passed
        {4, 4, 1, 1.0},                // everything passed
        {4, 2, 1, 0.5},                // k = 1 is c/n
        {5, 2, 2, 0.7},                // 1 − C(3,2)/C(5,2) = 1 − 3/10
        {10, 3, 5, 1.0 - 21.0 / 252},  // 1 − C(7,5)/C(10,5)
        {4, 3, 2, 1.0},                // n − c < k: every draw of 2 holds a pass
        {4, 1, 4, 1.0},                // k = n is "any passed"
        {4, 0, 4, 0.0},
        {1, 1, 1, 1.0},
        {1, 0, 1, 0.0},
        {200, 1, 1, 0.005},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const double got = hy_eval_pass_at_k(cases[i].n, cases[i].c, cases[i].k);
        // the product form rounds once per factor: a few ulps, far below 1e-12
        CHECK(fabs(got - cases[i].want) <= 1e-12, "pass@%d with n=%d, c=%d: got %.17g, want %.17g", cases[i].k,
              cases[i].n, cases[i].c, got, cases[i].want);
    }
    // n = 1000, c = 10, k = 100 through log-gamma: C(990,100)/C(1000,100) = Γ(991)Γ(901) / (Γ(891)Γ(1001));
    // lgamma of numbers near 1000 carries ~1e-13 relative error, hence the tolerance
    const double ref = 1.0 - exp(lgamma(991) + lgamma(901) - lgamma(891) - lgamma(1001));
    const double got = hy_eval_pass_at_k(1000, 10, 100);
    CHECK(fabs(got - ref) <= 1e-9, "pass@100 of n=1000, c=10: got %.17g, log-gamma gives %.17g", got, ref);
    static const int bad[][3] = {{4, 1, 5}, {4, 5, 1}, {4, -1, 1}, {0, 0, 1}, {4, 1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(isnan(hy_eval_pass_at_k(bad[i][0], bad[i][1], bad[i][2])), "n=%d, c=%d, k=%d accepted", bad[i][0],
              bad[i][1], bad[i][2]);
    printf("  ok   %zu counts, log-gamma at n=1000, %zu impossible counts give NaN\n", sizeof cases / sizeof *cases,
           sizeof bad / sizeof *bad);
}

static void test_prompts(void) {
    printf("prompts\n");
    hy_tokenizer *tok = load_tokenizer();
    hy_task *t;
    hy_task_sample s;
    if (hy_task_new(&t, "arithmetic", NULL, 1) || hy_task_sample_get(t, 0, &s)) {
        fprintf(stderr, "arithmetic: %s\n", hy_last_error());
        exit(1);
    }
    int32_t *ids, *want;
    int n, n_want;
    CHECK(hy_eval_prompt_tokens(tok, &s, 1, &ids, &n) == 0, "chat: %s", hy_last_error());
    CHECK(hy_chat_encode(tok, s.messages, s.n_messages, 1, &want, &n_want) == 0, "chat_encode: %s", hy_last_error());
    CHECK(n == n_want && !memcmp(ids, want, sizeof *ids * (size_t)n), "chat ids differ from hy_chat_encode");
    char *text = decode(tok, ids, n), expect[4096];
    snprintf(expect, sizeof expect, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", s.prompt);
    CHECK(!strcmp(text, expect), "chat prompt decodes to '%s'", text);
    printf("  ok   chat: %d tokens, the user turn and the assistant generation prompt\n", n);
    free(text);
    free(ids);
    free(want);

    CHECK(hy_eval_prompt_tokens(tok, &s, 0, &ids, &n) == 0, "raw: %s", hy_last_error());
    text = decode(tok, ids, n);
    CHECK(!strcmp(text, s.prompt), "raw prompt decodes to '%s', not the sample's '%s'", text, s.prompt);
    printf("  ok   raw: %d tokens, the prompt text as is\n", n);
    free(text);
    free(ids);
    hy_task_sample_free(&s);
    hy_task_destroy(t);

    char path[4096];
    write_jsonl("{\"id\":\"conv-1\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                "{\"role\":\"user\",\"content\":\"2+2?\"}],\"answer\":\"4\",\"verifier\":\"math\"}\n",
                path, sizeof path);
    if (hy_task_open_jsonl(&t, path, NULL) || hy_task_sample_get(t, 0, &s)) {
        fprintf(stderr, "jsonl: %s\n", hy_last_error());
        exit(1);
    }
    check_error("raw mode on a {\"messages\"} sample", hy_eval_prompt_tokens(tok, &s, 0, &ids, &n), "conv-1");
    CHECK(strstr(hy_last_error(), "chat mode"), "the message does not point to chat mode: %s", hy_last_error());
    CHECK(hy_eval_prompt_tokens(tok, &s, 1, &ids, &n) == 0, "chat on messages: %s", hy_last_error());
    text = decode(tok, ids, n);
    CHECK(!strcmp(text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                        "<|im_start|>assistant\n"),
          "messages render as '%s'", text);
    free(text);
    free(ids);
    hy_task_sample_free(&s);
    hy_task_destroy(t);
    unlink(path);
    hy_tokenizer_free(tok);
}

// ---------------------------------------------------------------------------------------------

enum { MAX_SEEN = 64 };

typedef struct {
    int n;
    char *id[MAX_SEEN], *text[MAX_SEEN];
    int sample[MAX_SEEN];
    hy_verdict v[MAX_SEEN];
    int verdict_mismatch;  // the verdict differs from hy_task_check on the same text
} seen;

static void record(void *ctx, const hy_task_sample *s, int j, const char *completion, const hy_verdict *v) {
    seen *r = ctx;
    hy_verdict again;
    if (hy_task_check(s, completion, NULL, &again) || again.reward != v->reward || strcmp(again.reason, v->reason))
        r->verdict_mismatch++;
    if (r->n == MAX_SEEN) return;
    r->id[r->n] = hy_strdup(s->id);
    r->text[r->n] = hy_strdup(completion);
    r->sample[r->n] = j;
    r->v[r->n] = *v;
    r->n++;
}

static void seen_free(seen *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->id[i]);
        free(r->text[i]);
    }
    memset(r, 0, sizeof *r);
}

static int run(const hy_model *m, const hy_tokenizer *tok, const hy_task *t, const hy_eval_options *o,
               hy_eval_result *res, seen *r) {
    memset(r, 0, sizeof *r);
    return hy_eval_run(m, tok, t, o, res, record, r);
}

// The greedy tokens the engine generates for sample 0 of t (chat mode), up to max_tokens.
static int engine_tokens(const hy_model *m, const hy_tokenizer *tok, const hy_task *t, int max_tokens, int32_t *out) {
    hy_task_sample s;
    int32_t *ids;
    int n;
    if (hy_task_sample_get(t, 0, &s) || hy_eval_prompt_tokens(tok, &s, 1, &ids, &n)) return -1;
    hy_task_sample_free(&s);
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.memory_bytes = 64u << 20;
    c.max_len = n + max_tokens;
    hy_engine *e;
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.ignore_eos = 1;
    hy_result r = {0};
    int got = -1;
    if (!hy_engine_new(&e, m, &c)) {
        if (hy_engine_submit(e, ids, n, &p) >= 0 && !hy_engine_run(e) && hy_engine_poll(e, &r)) {
            got = r.n_new;
            memcpy(out, r.tokens + r.turn_start, sizeof *out * (size_t)r.n_new);
        }
        hy_result_free(&r);
        hy_engine_destroy(e);
    }
    free(ids);
    return got;
}

static void test_run(void) {
    printf("run\n");
    hy_tokenizer *tok = load_tokenizer();
    hy_config cfg;
    if (hy_config_preset(&cfg, "tiny-dolma2")) {
        fprintf(stderr, "preset: %s\n", hy_last_error());
        exit(1);
    }
    hy_model m;
    hy_model_init(&m, &cfg, 3);
    hy_task *t;
    if (hy_task_new(&t, "arithmetic", "digits=2", 1)) {
        fprintf(stderr, "arithmetic: %s\n", hy_last_error());
        exit(1);
    }
    hy_eval_options o;
    hy_eval_options_default(&o);
    o.n_prompts = 3;
    o.samples = 2;
    o.temperature = 0.9f;
    o.top_k = 50;
    o.seed = 7;
    o.max_tokens = 5;
    o.memory_bytes = 64u << 20;
    hy_eval_result res;
    seen a;
    CHECK(run(&m, tok, t, &o, &res, &a) == 0, "eval: %s", hy_last_error());
    CHECK(a.n == 6 && res.n_completions == 6 && res.n_prompts == 3 && res.k == 2, "%d callbacks, %d completions",
          a.n, res.n_completions);
    int in_order = a.n == 6;
    for (int i = 0; i < a.n && in_order; i++) {
        char id[64];
        snprintf(id, sizeof id, "arithmetic:1:%d", i / 2);
        in_order = !strcmp(a.id[i], id) && a.sample[i] == i % 2;
    }
    CHECK(in_order, "callbacks not in (index, sample) order");
    CHECK(a.verdict_mismatch == 0, "%d verdicts differ from hy_task_check on the completion", a.verdict_mismatch);
    double sum = 0, pass1 = 0, passk = 0;
    for (int p = 0; p < a.n / 2; p++) {
        const int c = (a.v[2 * p].reward >= HY_EVAL_PASS_REWARD) + (a.v[2 * p + 1].reward >= HY_EVAL_PASS_REWARD);
        sum += a.v[2 * p].reward + a.v[2 * p + 1].reward;
        pass1 += c / 2.0 / 3;
        passk += (c > 0) / 3.0;
    }
    CHECK(fabs(res.mean_reward - sum / 6) < 1e-12 && fabs(res.pass_at_1 - pass1) < 1e-12 &&
              fabs(res.pass_at_k - passk) < 1e-12,
          "sums: mean reward %g (want %g), pass@1 %g (%g), pass@2 %g (%g)", res.mean_reward, sum / 6, res.pass_at_1,
          pass1, res.pass_at_k, passk);
    CHECK(res.generated_tokens > 0 && res.generated_tokens <= 30 && res.seconds > 0, "%ld tokens in %g s",
          res.generated_tokens, res.seconds);
    printf("  ok   3 prompts x 2: callbacks in order, verdicts as hy_task_check, pass@1 %.3f, pass@2 %.3f\n",
           res.pass_at_1, res.pass_at_k);

    // one prompt at a time (its 2 samples), and starting at index 1: the same completions
    seen b;
    o.max_seqs = 2;
    CHECK(run(&m, tok, t, &o, &res, &b) == 0, "eval, max_seqs 2: %s", hy_last_error());
    int same = b.n == a.n;
    for (int i = 0; i < b.n && same; i++) same = !strcmp(a.text[i], b.text[i]);
    CHECK(same, "completions change with the pool size");
    seen_free(&b);
    o.max_seqs = 0;
    o.first_index = 1;
    o.n_prompts = 2;
    CHECK(run(&m, tok, t, &o, &res, &b) == 0, "eval from index 1: %s", hy_last_error());
    same = b.n == 4;
    for (int i = 0; i < b.n && same; i++) same = !strcmp(a.text[i + 2], b.text[i]) && !strcmp(a.id[i + 2], b.id[i]);
    CHECK(same, "completions of indices 1, 2 change with first_index");
    seen_free(&b);
    printf("  ok   the same completions with one prompt at a time, and from first_index 1\n");
    seen_free(&a);

    // an eos id the model generates: the completion stops there, and its text leaves it out
    int32_t g[6];
    const int ng = engine_tokens(&m, tok, t, 6, g);
    CHECK(ng == 6, "engine: %s", hy_last_error());
    int cut = -1;  // the first position whose token did not occur before it
    for (int i = 1; i < ng && cut < 0; i++) {
        int fresh = 1;
        for (int j = 0; j < i; j++) fresh &= g[j] != g[i];
        if (fresh && g[i] < hy_tokenizer_vocab_size(tok)) cut = i;
    }
    if (cut < 0) {
        printf("  skip the eos cut: greedy tokens repeat\n");
    } else {
        hy_model stop_model = m;
        stop_model.cfg.eos_token_ids[0] = g[cut];
        stop_model.cfg.n_eos = 1;
        hy_eval_options_default(&o);
        o.n_prompts = 1;
        o.max_tokens = 6;
        o.memory_bytes = 64u << 20;
        CHECK(run(&stop_model, tok, t, &o, &res, &b) == 0, "eval with eos %d: %s", g[cut], hy_last_error());
        int32_t kept[6];
        int n_kept = 0;
        for (int i = 0; i < cut; i++)
            if (g[i] < hy_tokenizer_vocab_size(tok)) kept[n_kept++] = g[i];
        char *want = decode(tok, kept, n_kept);
        CHECK(b.n == 1 && !strcmp(b.text[0], want), "completion '%s', want '%s' (cut before token %d)",
              b.n ? b.text[0] : "", want, g[cut]);
        CHECK(res.generated_tokens == cut + 1, "%ld tokens generated, want %d (the eos counts)", res.generated_tokens,
              cut + 1);
        printf("  ok   stops at eos id %d after %d tokens; the text leaves it out: '%s'\n", g[cut], cut + 1, want);
        free(want);
        seen_free(&b);
    }

    // ranges
    hy_eval_options_default(&o);
    o.memory_bytes = 64u << 20;
    check_error("n_prompts 0 on a generator", run(&m, tok, t, &o, &res, &b), "unbounded");
    char path[4096];
    write_jsonl("{\"prompt\":\"1+1?\",\"answer\":\"2\",\"verifier\":\"math\"}\n"
                "{\"prompt\":\"2+2?\",\"answer\":\"4\",\"verifier\":\"math\"}\n",
                path, sizeof path);
    hy_task *file;
    CHECK(hy_task_open_jsonl(&file, path, NULL) == 0, "jsonl: %s", hy_last_error());
    o.first_index = 1;
    o.n_prompts = 2;
    check_error("indices past a file's end", run(&m, tok, file, &o, &res, &b), "has 2 samples");
    o.first_index = 2;
    o.n_prompts = 0;
    check_error("first_index at a file's end", run(&m, tok, file, &o, &res, &b), "leaves none");
    o.first_index = 1;
    o.max_tokens = 2;
    CHECK(run(&m, tok, file, &o, &res, &b) == 0 && res.n_prompts == 1 && b.n == 1, "every sample from 1: %s",
          hy_last_error());
    seen_free(&b);
    o.first_index = 0;
    o.samples = 0;
    check_error("samples 0", run(&m, tok, file, &o, &res, &b), "samples");
    o.samples = 1;
    check_error("no tokenizer", run(&m, NULL, file, &o, &res, &b), "tokenizer");
    hy_task_destroy(file);
    unlink(path);

    hy_task_destroy(t);
    hy_model_free(&m);
    hy_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_eval_run SOURCE_DIR [section]\n");
        return 2;
    }
    src_dir = argv[1];
    const char *only = argc > 2 ? argv[2] : NULL;
    static const struct {
        const char *name;
        void (*fn)(void);
    } sections[] = {{"pass_at_k", test_pass_at_k}, {"prompts", test_prompts}, {"run", test_run}};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (!only || !strcmp(only, sections[i].name)) sections[i].fn();
    return check_summary("test_eval_run");
}
