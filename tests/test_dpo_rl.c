// Tests of `hybrid dpo` and `hybrid rl`'s learner pieces on the tiny model (CPU reference backend):
//   dpo_start     policy = reference: the first DPO loss is log 2 (sigmoid and length-normalised)
//   dpo_moves     a separable toy pair: loss falls and reward accuracy reaches 1 within a few steps
//   ref_cache     the cache is written, reused for the same key, recomputed when the data file or the
//                 reference weights change; its values equal a fresh computation bit for bit
//   rl_dlogp      a step's dlogp (hy_rl_loss_fn) equals loss_rl's on the same logprobs and inputs
//                 built by hand
//   rl_accum      micro-batches (budget 12 tokens) == one batch: gradients to 1e-6 relative L2
//                 (fp32 rounding only, as in test_learner's accumulation case)
//   rl_groups     a step holding part of a group is refused, naming the group
//   rl_appended   appended (tool) tokens have no target and dlogp 0: their logits get no gradient
//   rl_fd         finite differences of the whole RL loss (second PPO pass, KL on) in one parameter
//
// Usage: test_dpo_rl SOURCE_DIR
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../learner/dpo.h"
#include "../learner/ref_logprobs.h"
#include "../learner/rl.h"
#include "../learner/trainer.h"
#include "../model/model.h"

static int failures, checks;
static char tmp_root[256];

#define CHECK(cond, ...)                             \
    do {                                             \
        checks++;                                    \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

static void tiny_model(hy_model *m, uint64_t seed) {
    hy_config c;
    if (hy_config_preset(&c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
    hy_model_init(m, &c, seed);
}

static const adamw_params hp = {1e-2, 0.9, 0.999, 1e-8, 0.0};

static void dpo_toy(hy_dpo_data *d) {
    hy_dpo_data_init(d);
    const int32_t p0[] = {1, 2, 3}, c0[] = {4, 5, 6}, r0[] = {7, 8};
    const int32_t p1[] = {9, 10}, c1[] = {11, 12}, r1[] = {13, 14, 15};
    hy_dpo_data_add(d, p0, 3, c0, 3, r0, 2);
    hy_dpo_data_add(d, p1, 2, c1, 2, r1, 3);
}

static void test_dpo_start(void) {
    hy_model m;
    tiny_model(&m, 1);
    hy_dpo_data d;
    dpo_toy(&d);
    float *ref = hy_malloc(sizeof *ref * (size_t)d.ds.total);
    CHECK(!hy_ref_logprobs_compute(&m, &d.ds, 0, ref), "ref compute: %s", hy_last_error());
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 0.0f);
    for (int kind = 0; kind < 2; kind++) {
        loss_dpo_opts lo;
        loss_dpo_opts_default(&lo, kind ? LOSS_DPO_NORM : LOSS_DPO_SIGMOID, 1.0);
        hy_dpo_stepper x;
        hy_dpo_stepper_init(&x, &t, &d, &lo, 12);
        hy_dpo_set_reference(&x, ref);
        const int pairs[] = {0, 1};
        hy_dpo_prepare(&x, pairs, 2);
        double loss, gn;
        CHECK(!hy_trainer_grads_custom(&t, &x.ub.sb, hy_dpo_loss_fn, &x, &loss, &gn), "grads: %s", hy_last_error());
        CHECK(fabs(loss - log(2.0)) < 1e-6, "dpo kind %d: first loss %.9f, expected log 2", kind, loss);
        CHECK(x.ub.sb.n == 2 && gn > 0, "two micro-batches (one pair each) and a gradient: %d, %g", x.ub.sb.n, gn);
        printf("  ok   dpo_start kind %d: loss %.9f (log 2 = %.9f), grad norm %.3g\n", kind, loss, log(2.0), gn);
        hy_dpo_stepper_free(&x);
    }
    hy_trainer_free(&t);
    free(ref);
    hy_dpo_data_free(&d);
    hy_model_free(&m);
}

static void test_dpo_moves(void) {
    hy_model m;
    tiny_model(&m, 2);
    hy_dpo_data d;
    hy_dpo_data_init(&d);
    const int32_t p[] = {5, 6, 7}, c[] = {40, 41, 42}, r[] = {90, 91, 92};
    hy_dpo_data_add(&d, p, 3, c, 3, r, 3);
    float *ref = hy_malloc(sizeof *ref * (size_t)d.ds.total);
    hy_ref_logprobs_compute(&m, &d.ds, 0, ref);
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 1.0f);
    loss_dpo_opts lo;
    loss_dpo_opts_default(&lo, LOSS_DPO_SIGMOID, 1.0);
    hy_dpo_stepper x;
    hy_dpo_stepper_init(&x, &t, &d, &lo, 0);
    hy_dpo_set_reference(&x, ref);
    double first = 0, last = 0, acc = 0;
    for (int s = 0; s < 5; s++) {
        const int pair = 0;
        hy_dpo_prepare(&x, &pair, 1);
        hy_step_stats st;
        CHECK(!hy_dpo_step(&x, 1e-2, &st), "dpo step: %s", hy_last_error());
        if (s == 0) first = st.loss;
        last = st.loss;
        acc = x.stats.reward_accuracy;
    }
    CHECK(last < first - 0.05 && acc == 1.0, "dpo: loss %.4f -> %.4f, accuracy %.2f", first, last, acc);
    printf("  ok   dpo_moves: loss %.4f -> %.4f, reward accuracy %.0f, margin %.3f\n", first, last, acc,
           x.stats.margin_mean);
    hy_dpo_stepper_free(&x);
    hy_trainer_free(&t);
    free(ref);
    hy_dpo_data_free(&d);
    hy_model_free(&m);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void test_ref_cache(void) {
    hy_model m;
    tiny_model(&m, 3);
    char data[300], cache[300];
    snprintf(data, sizeof data, "%s/pairs.jsonl", tmp_root);
    snprintf(cache, sizeof cache, "%s/cache", tmp_root);
    write_text(data, "{\"prompt_tokens\":[1,2],\"chosen_tokens\":[3,4],\"rejected_tokens\":[5]}\n");
    const hy_dpo_data_options o = {0, 0, m.cfg.vocab_size};
    hy_dpo_data d;
    CHECK(!hy_dpo_data_load(&d, data, NULL, &o), "load: %s", hy_last_error());
    float *a = hy_malloc(sizeof *a * (size_t)d.ds.total), *b = hy_malloc(sizeof *b * (size_t)d.ds.total);
    FILE *null = fopen("/dev/null", "w");
    uint64_t k1, k2, k3;
    int reused = -1;
    hy_ref_key(data, &d.ds, "dpo", NULL, &m, &k1);
    CHECK(!hy_ref_logprobs_cached(cache, k1, &m, &d.ds, 0, a, &reused, null) && reused == 0, "first run computes");
    CHECK(!hy_ref_logprobs_cached(cache, k1, &m, &d.ds, 0, b, &reused, null) && reused == 1, "second run reuses");
    CHECK(!memcmp(a, b, sizeof *a * (size_t)d.ds.total), "cached values are the computed ones");
    // the data file changes (a trailing blank line: same pairs, other bytes)
    write_text(data, "{\"prompt_tokens\":[1,2],\"chosen_tokens\":[3,4],\"rejected_tokens\":[5]}\n\n");
    hy_ref_key(data, &d.ds, "dpo", NULL, &m, &k2);
    CHECK(k2 != k1 && !hy_ref_logprobs_cached(cache, k2, &m, &d.ds, 0, b, &reused, null) && reused == 0,
          "changed data recomputes");
    m.arena[17] += 1e-3f;
    hy_ref_key(data, &d.ds, "dpo", NULL, &m, &k3);
    CHECK(k3 != k2 && !hy_ref_logprobs_cached(cache, k3, &m, &d.ds, 0, b, &reused, null) && reused == 0,
          "changed reference weights recompute");
    CHECK(!hy_ref_logprobs_cached(cache, k3, &m, &d.ds, 0, b, &reused, null) && reused == 1, "and then reuse");
    printf("  ok   ref_cache: keys %016llx %016llx %016llx\n", (unsigned long long)k1, (unsigned long long)k2,
           (unsigned long long)k3);
    fclose(null);
    free(a);
    free(b);
    hy_dpo_data_free(&d);
    hy_model_free(&m);
}

// 3 groups: group 7 (rewards 1, 0, 0.5; one trajectory with two appended tokens), group 2 (0, 1),
// group 5 (1, 1: dropped).
static void rl_toy(hy_rl_data *d) {
    hy_rl_data_init(d);
    const int32_t p0[] = {1, 2, 3}, p1[] = {9, 10};
    const int32_t c[][5] = {{4, 5, 6}, {7, 8, 30, 31, 9}, {11, 12, 13, 14}, {15, 16}, {17, 18, 19}, {20}, {21, 22}};
    const int n[] = {3, 5, 4, 2, 3, 1, 2};
    const uint8_t gen1[] = {1, 1, 0, 0, 1};
    const float lp[] = {-5.3f, -5.6f, -5.4f, -5.5f, -5.7f};
    const int32_t ver[] = {0, 1, 1, 1, 1};
    hy_rl_data_add(d, 7, p0, 3, c[0], n[0], NULL, lp, ver, 1.0);
    hy_rl_data_add(d, 7, p0, 3, c[1], n[1], gen1, lp, ver, 0.0);
    hy_rl_data_add(d, 2, p1, 2, c[2], n[2], NULL, lp, NULL, 0.0);
    hy_rl_data_add(d, 7, p0, 3, c[3], n[3], NULL, lp, ver, 0.5);
    hy_rl_data_add(d, 2, p1, 2, c[4], n[4], NULL, lp, NULL, 1.0);
    hy_rl_data_add(d, 5, p1, 2, c[5], n[5], NULL, lp, NULL, 1.0);
    hy_rl_data_add(d, 5, p1, 2, c[6], n[6], NULL, lp, NULL, 1.0);
    hy_rl_data_finish(d);
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static const int all_seqs[] = {0, 1, 2, 3, 4, 5, 6};

static void test_rl_dlogp_and_appended(void) {
    hy_model m;
    tiny_model(&m, 4);
    hy_rl_data d;
    rl_toy(&d);
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 0.0f);
    hy_rl_options o;
    hy_rl_options_default(&o);
    o.use_versions = 1;
    o.loss.max_staleness = 0;
    o.loss.stale = LOSS_STALE_KEEP;
    hy_rl_stepper x;
    hy_rl_stepper_init(&x, &t, &d, NULL, &o, 0);
    CHECK(!hy_rl_prepare(&x, all_seqs, 7, 1), "prepare: %s", hy_last_error());
    const hy_micro_batch *mb = &x.ub.sb.mb[0];
    const int T = mb->T;
    float *logp = hy_malloc(sizeof(float) * T), *dl = hy_malloc(sizeof(float) * T), *ref = hy_malloc(sizeof(float) * T);
    const hy_batch b = hy_micro_batch_view(mb);
    hy_model_target_logprobs(&m, &b, mb->targets, logp);
    double loss, loss_ref;
    CHECK(!hy_rl_loss_fn(&x, 0, mb, logp, dl, &loss), "loss fn: %s", hy_last_error());
    // the same inputs by hand: per position, the next token's rollout logprob and version
    uint8_t *mask = hy_calloc((size_t)T, 1);
    float *roll = hy_calloc((size_t)T, sizeof(float));
    int32_t *ver = hy_calloc((size_t)T, sizeof(int32_t));
    double adv[7];
    uint8_t keep[7];
    int appended_positions = 0, appended_zero = 0;
    for (int doc = 0; doc < mb->n_docs; doc++) {
        const int s = x.ub.doc_seq[0][doc];
        adv[doc] = x.adv[s];
        keep[doc] = x.keep[s];
        for (int k = 0; mb->cu_seqlens[doc] + k + 1 < mb->cu_seqlens[doc + 1]; k++) {
            const int tpos = mb->cu_seqlens[doc] + k;
            const int64_t j = d.ds.start[s] + k + 1;
            mask[tpos] = d.ds.mask[j];
            roll[tpos] = d.rollout_logp[j];
            ver[tpos] = d.version[j];
            if (k + 1 >= d.prompt_len[s] && !d.ds.mask[j]) {
                appended_positions++;
                appended_zero += mb->targets[tpos] == -1 && dl[tpos] == 0.0f;
            }
        }
    }
    loss_rl_opts lo = x.o.loss;
    const loss_tokens tok = {T, mb->n_docs, mb->cu_seqlens, logp, mask};
    const loss_rl_inputs in = {NULL, roll, NULL, ver, adv, keep};
    loss_rl(&tok, &in, &lo, &loss_ref, ref, NULL);
    CHECK(loss == loss_ref && !memcmp(dl, ref, sizeof(float) * T), "dlogp differs from loss_rl's (loss %g vs %g)", loss,
          loss_ref);
    CHECK(appended_positions == 2 && appended_zero == 2, "appended tokens: %d positions, %d without target and dlogp",
          appended_positions, appended_zero);
    printf("  ok   rl_dlogp: loss %.9g == loss_rl's, dlogp identical over %d positions\n", loss, T);
    printf("  ok   rl_appended: %d appended positions, no target, dlogp 0 (zero dlogits row)\n", appended_positions);
    free(mask);
    free(roll);
    free(ver);
    free(logp);
    free(dl);
    free(ref);
    // a step holding part of a group
    const int part[] = {0, 1, 2, 4};
    CHECK(hy_rl_prepare(&x, part, 4, 1) != 0 && strstr(hy_last_error(), "group 7"), "split group accepted: %s",
          hy_last_error());
    printf("  ok   rl_groups: %s\n", hy_last_error());
    hy_rl_stepper_free(&x);
    hy_trainer_free(&t);
    hy_rl_data_free(&d);
    hy_model_free(&m);
}

static void test_rl_accum_and_fd(void) {
    hy_model m;
    tiny_model(&m, 5);
    hy_rl_data d;
    rl_toy(&d);
    float *ref_tok = hy_malloc(sizeof(float) * (size_t)d.ds.total);
    hy_ref_logprobs_compute(&m, &d.ds, 0, ref_tok);
    for (size_t i = 0; i < (size_t)d.ds.total; i++) ref_tok[i] -= 0.05f * (float)(i % 3);  // a reference ≠ policy
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 0.0f);
    hy_rl_options o;
    hy_rl_options_default(&o);
    o.loss.kl_coef = 0.1;
    const size_t N = m.table.total;
    float *g_one = hy_malloc(sizeof(float) * N);
    double loss_one = 0, loss_k = 0, gn;
    for (int split = 0; split < 2; split++) {
        hy_rl_stepper x;
        hy_rl_stepper_init(&x, &t, &d, ref_tok, &o, split ? 12 : 0);
        hy_rl_prepare(&x, all_seqs, 7, 1);
        CHECK(!hy_trainer_grads_custom(&t, &x.ub.sb, hy_rl_loss_fn, &x, split ? &loss_k : &loss_one, &gn), "grads: %s",
              hy_last_error());
        if (!split) {
            memcpy(g_one, t.grads, sizeof(float) * N);
        } else {
            const double e = rel_l2(t.grads, g_one, N);
            CHECK(x.ub.sb.n >= 3 && e < 1e-6 && fabs(loss_k - loss_one) < 1e-9, "accumulation: %d micro-batches, rel %g",
                  x.ub.sb.n, e);
            printf("  ok   rl_accum: %d micro-batches vs 1: gradient rel L2 %.2e, loss %.3g vs %.3g\n", x.ub.sb.n, e,
                   loss_k, loss_one);
        }
        hy_rl_stepper_free(&x);
    }
    // finite differences on the second PPO pass (old logprobs recorded, ratio varies with θ)
    hy_rl_stepper x;
    hy_rl_stepper_init(&x, &t, &d, ref_tok, &o, 0);
    hy_rl_prepare(&x, all_seqs, 7, 1);
    double l0;
    hy_trainer_grads_custom(&t, &x.ub.sb, hy_rl_loss_fn, &x, &l0, &gn);  // records old logprobs
    x.pass = 1;
    hy_trainer_grads_custom(&t, &x.ub.sb, hy_rl_loss_fn, &x, &l0, &gn);
    size_t best = 0;
    for (size_t i = 0; i < N; i++)
        if (fabsf(t.grads[i]) > fabsf(t.grads[best])) best = i;
    const double g = t.grads[best], h = 1e-3;
    const float w0 = m.arena[best];
    double lp, lm;
    m.arena[best] = w0 + (float)h;
    hy_trainer_grads_custom(&t, &x.ub.sb, hy_rl_loss_fn, &x, &lp, &gn);
    m.arena[best] = w0 - (float)h;
    hy_trainer_grads_custom(&t, &x.ub.sb, hy_rl_loss_fn, &x, &lm, &gn);
    m.arena[best] = w0;
    const double fd = (lp - lm) / (((double)(w0 + (float)h)) - (double)(w0 - (float)h));
    // fp32 forward: loss noise ~1e-7 over a 2e-3 step, curvature O(h²): 1 % is loose for both
    CHECK(fabs(fd - g) <= 1e-2 * fabs(g), "rl fd: param %zu analytic %.6g, finite difference %.6g", best, g, fd);
    printf("  ok   rl_fd: param %zu analytic %.6g vs central difference %.6g\n", best, g, fd);
    hy_rl_stepper_free(&x);
    free(g_one);
    free(ref_tok);
    hy_trainer_free(&t);
    hy_rl_data_free(&d);
    hy_model_free(&m);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_dpo_rl.XXXXXX");
    if (!mkdtemp(tmp_root)) return 1;
    test_dpo_start();
    test_dpo_moves();
    test_ref_cache();
    test_rl_dlogp_and_appended();
    test_rl_accum_and_fd();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    printf("test_dpo_rl: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
