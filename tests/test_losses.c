// The learner's losses (learner/losses.h) and the two-pass lm head (learner/lm_loss.h).
//
// 1. Hand-computed cases, one behaviour each: SFT normalisers, one DPO pair, PPO-clip inside the
//    range and on each clipped side, dropped groups and the two advantage kinds, the IS cap, a
//    stale token dropped or kept, the k3 KL.
// 2. Fixtures from tests/fixtures/make_loss_fixtures.py (PyTorch autograd in float64 over the
//    same float32 inputs): loss, every dlogp entry, advantages and stats.
//    Tolerances: loss and stats 1e-10 relative — both sides compute in double from identical
//    inputs, so only summation order and libm rounding differ (~1e-15); dlogp 1e-6 relative plus
//    1e-12 of the largest entry — the C side rounds dlogp to fp32 once (≤ 6e-8 relative), and
//    entries that must be exactly 0 (masked, clipped, dropped) are 0 on both sides.
// 3. Equivalences: old_logp = NULL is old_logp = logp; values at masked-out positions are never
//    read (NaN there changes nothing).
// 4. Bad input: each refused with −1, a message naming the field, and dlogp left untouched.
// 5. Finite differences of every loss in logp on random inputs (central, the fp32 step actually
//    taken as denominator, loss in double): relative norm error ≤ 1e-6. The truncation error
//    h²·f'''/6 at h = 1e-3 is ~1e-7 for these O(1)-curvature losses; a wrong or missing term is
//    O(1).
// 6. The lm head on a tiny random model (CPU backend): lm_token_logprobs equals hy_model_score
//    exactly (same arithmetic), lm_logprobs_backward with dlogp = −1/N equals lm_loss_mean_ce's
//    gradients exactly, and the RL loss end to end through the model matches finite differences
//    of two parameters (policy of docs/tolerances.md: 1e-2, fp32 forward).
//
// argv[1]: the source directory (fixtures under tests/fixtures/losses).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/rng.h"
#include "../learner/lm_loss.h"
#include "../learner/losses.h"
#include "../learner/trainer.h"
#include "../model/model.h"

static int failures;

#define CHECK(cond, ...)                             \
    do {                                             \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

// |a − b| ≤ atol + rtol·|b|, NaN never passes
static int within(double a, double b, double rtol, double atol) { return fabs(a - b) <= atol + rtol * fabs(b); }

#define CHECK_CLOSE(a, b, rtol, what) \
    CHECK(within((a), (b), (rtol), 1e-14), "%s: got %.17g, expected %.17g", (what), (double)(a), (double)(b))

// ---- small builders -----------------------------------------------------------------------------

static loss_tokens tokens_of(int T, int n_seqs, const int32_t *cu, const float *logp, const uint8_t *mask) {
    return (loss_tokens){T, n_seqs, cu, logp, mask};
}

static loss_normaliser token_norm(double n) { return (loss_normaliser){LOSS_NORM_TOKEN, n, 0}; }

// ---- 1. hand-computed cases ---------------------------------------------------------------------

static void test_hand_sft(void) {
    const int32_t cu[] = {0, 3, 5};
    const float logp[] = {-1.0f, -2.0f, -3.0f, -0.5f, -4.0f};
    const uint8_t mask[] = {1, 0, 1, 0, 1};
    loss_tokens tok = tokens_of(5, 2, cu, logp, mask);
    float d[5];
    double loss;
    loss_sft_stats st;
    // token: (1 + 3 + 4) / 8, where 8 counts tokens of other micro-batches too
    loss_normaliser n = token_norm(8);
    CHECK(loss_sft(&tok, &n, &loss, d, &st) == 0, "sft token: %s", hy_last_error());
    CHECK_CLOSE(loss, 1.0, 1e-15, "sft token loss");
    CHECK(d[0] == -0.125f && d[1] == 0.0f && d[2] == -0.125f && d[3] == 0.0f && d[4] == -0.125f,
          "sft token dlogp %g %g %g %g %g", d[0], d[1], d[2], d[3], d[4]);
    CHECK(st.n_tokens == 3 && st.n_seqs == 2 && st.nll_sum == 8.0, "sft stats %d %d %g", st.n_tokens, st.n_seqs,
          st.nll_sum);
    // sequence: ((1 + 3)/2 + 4/1) / 3
    n = (loss_normaliser){LOSS_NORM_SEQUENCE, 3, 0};
    CHECK(loss_sft(&tok, &n, &loss, d, NULL) == 0, "sft sequence: %s", hy_last_error());
    CHECK_CLOSE(loss, 2.0, 1e-15, "sft sequence loss");
    CHECK(within(d[0], -1.0 / 6, 1e-7, 0) && within(d[4], -1.0 / 3, 1e-7, 0), "sft sequence dlogp %g %g", d[0], d[4]);
    printf("  hand: sft ok\n");
}

static void test_hand_dpo(void) {
    // one token per sequence: log-ratios 2 (chosen) and −1 (rejected), β = 0.1 → h = 0.3
    const int32_t cu[] = {0, 1, 2};
    const float logp[] = {-1.0f, -2.0f};
    const uint8_t mask[] = {1, 1};
    const int32_t chosen[] = {0}, rejected[] = {1};
    const double ref[] = {-3.0, -1.0};
    loss_tokens tok = tokens_of(2, 2, cu, logp, mask);
    loss_dpo_pairs pairs = {1, chosen, rejected, ref};
    loss_dpo_opts o;
    loss_dpo_opts_default(&o, LOSS_DPO_SIGMOID, 1);
    CHECK(o.beta == 0.1, "dpo default beta %g", o.beta);
    float d[2];
    double loss;
    loss_dpo_stats st;
    CHECK(loss_dpo(&tok, &pairs, &o, &loss, d, &st) == 0, "dpo: %s", hy_last_error());
    const double h = 0.3, sig = 1.0 / (1.0 + exp(-h));
    CHECK_CLOSE(loss, log1p(exp(-h)), 1e-14, "dpo loss");
    CHECK(within(d[0], (sig - 1.0) * 0.1, 1e-7, 0) && within(d[1], -(sig - 1.0) * 0.1, 1e-7, 0), "dpo dlogp %g %g",
          d[0], d[1]);
    CHECK(st.reward_accuracy == 1.0 && within(st.margin_mean, 0.3, 1e-14, 0) &&
              within(st.chosen_reward_mean, 0.2, 1e-14, 0) && within(st.rejected_reward_mean, -0.1, 1e-14, 0),
          "dpo stats %g %g %g %g", st.reward_accuracy, st.margin_mean, st.chosen_reward_mean, st.rejected_reward_mean);
    loss_dpo_opts_default(&o, LOSS_DPO_NORM, 1);
    CHECK(o.beta == 5.0, "dpo_norm default beta %g", o.beta);
    printf("  hand: dpo ok\n");
}

// One token of one sequence with advantage A; returns the loss, d the gradient.
static double one_token_rl(float logp, const float *old, const float *rollout, double A, const loss_rl_opts *o,
                           float *d, loss_rl_stats *st) {
    const int32_t cu[] = {0, 1};
    const uint8_t mask[] = {1};
    loss_tokens tok = tokens_of(1, 1, cu, &logp, mask);
    loss_rl_inputs in = {.old_logp = old, .rollout_logp = rollout, .adv = &A};
    double loss = NAN;
    CHECK(loss_rl(&tok, &in, o, &loss, d, st) == 0, "rl one token: %s", hy_last_error());
    return loss;
}

static void test_hand_clip(void) {
    loss_rl_opts o;
    loss_rl_opts_default(&o, 1);
    CHECK(o.clip_low == 0.2 && o.clip_high == 0.28 && o.is_cap == 2.0 && o.kl_coef == 0.0, "rl defaults");
    float d;
    loss_rl_stats st;
    // inside the range: ρ = e^0.1, loss −ρA, gradient −ρA
    float old = -1.1f;
    double r = exp(-1.0 - (double)old);
    double loss = one_token_rl(-1.0f, &old, NULL, 1.0, &o, &d, &st);
    CHECK(within(loss, -r, 1e-14, 0) && within(d, -r, 1e-7, 0), "inside clip: loss %g d %g (want %g)", loss, d, -r);
    CHECK(st.clip_low_frac == 0 && st.clip_high_frac == 0 && within(st.ratio_mean, r, 1e-14, 0), "inside clip stats");
    // above 1 + clip_high with A > 0: clipped, loss −1.28·A, no gradient
    old = -1.5f;
    loss = one_token_rl(-1.0f, &old, NULL, 2.0, &o, &d, &st);
    CHECK(within(loss, -1.28 * 2.0, 1e-14, 0) && d == 0.0f, "above clip, A > 0: loss %g d %g", loss, d);
    CHECK(st.clip_high_frac == 1.0 && st.clip_low_frac == 0.0, "above clip stats %g %g", st.clip_high_frac,
          st.clip_low_frac);
    // above 1 + clip_high with A < 0: the clip does not bind, full gradient −ρA
    r = exp(0.5);
    loss = one_token_rl(-1.0f, &old, NULL, -1.0, &o, &d, &st);
    CHECK(within(loss, r, 1e-14, 0) && within(d, r, 1e-7, 0) && st.clip_high_frac == 0.0,
          "above clip, A < 0: loss %g d %g", loss, d);
    // below 1 − clip_low with A < 0: clipped, loss 0.8·|A|, no gradient
    old = -1.5f;
    loss = one_token_rl(-2.0f, &old, NULL, -1.0, &o, &d, &st);
    CHECK(within(loss, 0.8, 1e-14, 0) && d == 0.0f && st.clip_low_frac == 1.0, "below clip, A < 0: loss %g d %g", loss,
          d);
    // below 1 − clip_low with A > 0: not clipped
    r = exp(-0.5);
    loss = one_token_rl(-2.0f, &old, NULL, 1.0, &o, &d, &st);
    CHECK(within(loss, -r, 1e-14, 0) && within(d, -r, 1e-7, 0) && st.clip_low_frac == 0.0,
          "below clip, A > 0: loss %g d %g", loss, d);
    printf("  hand: ppo clip ok\n");
}

static void test_hand_is_and_kl(void) {
    loss_rl_opts o;
    loss_rl_opts_default(&o, 1);
    float d;
    loss_rl_stats st;
    // old − rollout = 1: exp(1) > cap 2, so w = 2; ratio 1 (old = NULL)
    float rollout = -2.0f;
    double loss = one_token_rl(-1.0f, NULL, &rollout, 1.0, &o, &d, &st);
    CHECK(within(loss, -2.0, 1e-14, 0) && within(d, -2.0, 1e-7, 0), "IS cap: loss %g d %g", loss, d);
    CHECK(st.is_capped_frac == 1.0 && st.is_weight_mean == 2.0 && within(st.mismatch_kl, exp(1.0) - 2.0, 1e-14, 0),
          "IS cap stats %g %g %g", st.is_capped_frac, st.is_weight_mean, st.mismatch_kl);
    // below the cap: w = e^0.5
    rollout = -1.5f;
    loss = one_token_rl(-1.0f, NULL, &rollout, 1.0, &o, &d, &st);
    CHECK(within(loss, -exp(0.5), 1e-14, 0) && st.is_capped_frac == 0.0, "IS below cap: loss %g", loss);

    // k3 with ref − logp = 1: kl·(e − 2), gradient kl·(1 − e); A = 0 isolates the KL term
    const int32_t cu[] = {0, 1};
    const uint8_t mask[] = {1};
    const float logp = -2.0f, ref = -1.0f;
    const double A = 0.0;
    loss_tokens tok = tokens_of(1, 1, cu, &logp, mask);
    loss_rl_inputs in = {.ref_logp = &ref, .adv = &A};
    o.kl_coef = 0.5;
    CHECK(loss_rl(&tok, &in, &o, &loss, &d, &st) == 0, "kl: %s", hy_last_error());
    CHECK(within(loss, 0.5 * (exp(1.0) - 2.0), 1e-14, 0) && within(d, 0.5 * (1.0 - exp(1.0)), 1e-7, 0),
          "k3: loss %g d %g", loss, d);
    CHECK(within(st.ref_kl, exp(1.0) - 2.0, 1e-14, 0) && within(st.kl_loss, loss, 1e-14, 0) && st.pg_loss == 0.0,
          "k3 stats %g %g %g", st.ref_kl, st.kl_loss, st.pg_loss);
    printf("  hand: IS cap, k3 ok\n");
}

static void test_hand_advantages(void) {
    // group 5 all equal (dropped), group 2 = {0, 1}, group 9 a single member (dropped)
    const double reward[] = {1, 0, 1, 1, 1, 0.5};
    const int32_t group[] = {5, 2, 5, 5, 2, 9};
    double adv[6];
    uint8_t keep[6];
    loss_adv_stats st;
    CHECK(loss_rl_advantages(6, reward, group, LOSS_ADV_GRPO, 1e-6, adv, keep, &st) == 0, "adv: %s", hy_last_error());
    const double a = 0.5 / (sqrt(0.5) + 1e-6);  // sample std of {0, 1} is sqrt(1/2)
    CHECK(adv[0] == 0 && adv[2] == 0 && adv[3] == 0 && adv[5] == 0 && within(adv[1], -a, 1e-15, 0) &&
              within(adv[4], a, 1e-15, 0),
          "grpo adv %g %g %g %g %g %g", adv[0], adv[1], adv[2], adv[3], adv[4], adv[5]);
    CHECK(!keep[0] && keep[1] && !keep[2] && !keep[3] && keep[4] && !keep[5], "grpo keep");
    CHECK(st.n_groups == 3 && st.n_dropped_groups == 2 && st.n_dropped_seqs == 4 && within(st.reward_mean, 4.5 / 6, 1e-15, 0),
          "adv stats %d %d %d %g", st.n_groups, st.n_dropped_groups, st.n_dropped_seqs, st.reward_mean);
    CHECK(loss_rl_advantages(6, reward, group, LOSS_ADV_DR_GRPO, 1e-6, adv, keep, NULL) == 0, "dr adv");
    CHECK(adv[1] == -0.5 && adv[4] == 0.5 && adv[0] == 0.0, "dr.grpo adv %g %g", adv[1], adv[4]);

    // the dropped sequence's tokens contribute nothing and are counted
    const int32_t cu[] = {0, 2, 4};
    const float logp[] = {-1, -1, -2, -2};
    const uint8_t mask[] = {1, 1, 1, 1};
    const double sadv[] = {0.0, 1.0};
    const uint8_t skeep[] = {0, 1};
    loss_tokens tok = tokens_of(4, 2, cu, logp, mask);
    loss_rl_inputs in = {.adv = sadv, .keep = skeep};
    loss_rl_opts o;
    loss_rl_opts_default(&o, 2);
    int nt, ns;
    CHECK(loss_rl_count(&tok, &in, &o, &nt, &ns) == 0 && nt == 2 && ns == 1, "count with a dropped sequence %d %d", nt,
          ns);
    float d[4];
    double loss;
    loss_rl_stats rs;
    CHECK(loss_rl(&tok, &in, &o, &loss, d, &rs) == 0, "rl dropped: %s", hy_last_error());
    CHECK(d[0] == 0 && d[1] == 0 && d[2] == -0.5f && d[3] == -0.5f && within(loss, -1.0, 1e-15, 0),
          "dropped group tokens: %g %g %g %g loss %g", d[0], d[1], d[2], d[3], loss);
    CHECK(rs.n_dropped_tokens == 2 && rs.n_tokens == 2 && rs.n_seqs == 1, "dropped stats %d %d", rs.n_dropped_tokens,
          rs.n_tokens);
    printf("  hand: advantages, dropped groups ok\n");
}

static void test_hand_stale_and_norms(void) {
    const int32_t cu[] = {0, 2, 5};
    const float logp[] = {-1, -1, -1, -1, -1};
    const uint8_t mask[] = {1, 1, 0, 1, 1};
    const int32_t version[] = {3, 9, 10, 10, 6};  // current 10, max staleness 4: versions < 6 are stale
    const float rollout[] = {-1.25f, -1, -1, -1, -1};
    const double adv[] = {1.0, 1.0};
    loss_tokens tok = tokens_of(5, 2, cu, logp, mask);
    loss_rl_inputs in = {.rollout_logp = rollout, .version = version, .adv = adv};
    loss_rl_opts o;
    loss_rl_opts_default(&o, 3);
    o.current_version = 10;
    o.max_staleness = 4;
    float d[5];
    double loss;
    loss_rl_stats st;
    CHECK(loss_rl(&tok, &in, &o, &loss, d, &st) == 0, "stale drop: %s", hy_last_error());
    CHECK(d[0] == 0.0f && st.n_stale_tokens == 1 && st.n_tokens == 3, "stale token dropped: d %g stale %d tokens %d",
          d[0], st.n_stale_tokens, st.n_tokens);
    CHECK(within(loss, -1.0, 1e-15, 0), "stale drop loss %g", loss);
    // kept: corrected by w = exp(0.25)
    o.stale = LOSS_STALE_KEEP;
    o.norm.n_global = 4;
    CHECK(loss_rl(&tok, &in, &o, &loss, d, &st) == 0, "stale keep: %s", hy_last_error());
    CHECK(within(d[0], -exp(0.25) / 4, 1e-7, 0) && st.n_stale_tokens == 1 && st.n_tokens == 4,
          "stale token kept: d %g stale %d tokens %d", d[0], st.n_stale_tokens, st.n_tokens);

    // the three normalisers on ℓ = −1 per token, sequences of 2 and 2 loss tokens (plus one masked)
    in = (loss_rl_inputs){.adv = adv};
    o.norm = (loss_normaliser){LOSS_NORM_SEQUENCE, 4, 0};
    CHECK(loss_rl(&tok, &in, &o, &loss, d, NULL) == 0 && within(loss, -0.5, 1e-15, 0) && d[0] == -0.125f,
          "sequence norm: loss %g d %g", loss, d[0]);
    o.norm = (loss_normaliser){LOSS_NORM_CONSTANT, 2, 8};
    CHECK(loss_rl(&tok, &in, &o, &loss, d, NULL) == 0 && within(loss, -0.25, 1e-15, 0) && d[3] == -0.0625f,
          "constant norm: loss %g d %g", loss, d[3]);
    printf("  hand: staleness, normalisers ok\n");
}

// ---- 2. fixtures --------------------------------------------------------------------------------

typedef struct {
    json_t *root;
    const char *name;
    int T, n_seqs;
    int32_t *cu;
    float *logp;
    uint8_t *mask;
} fixture;

static json_t *need(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!v) {
        fprintf(stderr, "fixture lacks '%s'\n", key);
        exit(1);
    }
    return v;
}

// Arrays of numbers; NULL for a JSON null. n: expected length (checked).
static float *arr_f32(json_t *o, const char *key, int n) {
    json_t *a = need(o, key);
    if (json_is_null(a)) return NULL;
    if ((int)json_array_size(a) != n) {
        fprintf(stderr, "fixture '%s' has %zu entries, expected %d\n", key, json_array_size(a), n);
        exit(1);
    }
    float *x = hy_malloc(sizeof(float) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) x[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    return x;
}

static double *arr_f64(json_t *o, const char *key, int n) {
    json_t *a = need(o, key);
    if ((int)json_array_size(a) != n) {
        fprintf(stderr, "fixture '%s' has %zu entries, expected %d\n", key, json_array_size(a), n);
        exit(1);
    }
    double *x = hy_malloc(sizeof(double) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) x[i] = json_number_value(json_array_get(a, (size_t)i));
    return x;
}

static int32_t *arr_i32(json_t *o, const char *key, int n) {
    json_t *a = need(o, key);
    if (json_is_null(a)) return NULL;
    if (n < 0) n = (int)json_array_size(a);
    if ((int)json_array_size(a) != n) {
        fprintf(stderr, "fixture '%s' has %zu entries, expected %d\n", key, json_array_size(a), n);
        exit(1);
    }
    int32_t *x = hy_malloc(sizeof(int32_t) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) x[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return x;
}

static double num(json_t *o, const char *key) { return json_number_value(need(o, key)); }

static loss_normaliser norm_of(json_t *j) {
    const char *k = json_string_value(need(j, "kind"));
    loss_normaliser n = {LOSS_NORM_TOKEN, num(j, "n_global"), (int)num(j, "max_tokens")};
    if (!strcmp(k, "sequence")) n.kind = LOSS_NORM_SEQUENCE;
    if (!strcmp(k, "constant")) n.kind = LOSS_NORM_CONSTANT;
    return n;
}

static void fixture_load(fixture *f, const char *src, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tests/fixtures/losses/%s.json", src, name);
    json_error_t err;
    f->root = json_load_file(path, 0, &err);
    if (!f->root) {
        fprintf(stderr, "cannot read %s: %s\n", path, err.text);
        exit(1);
    }
    f->name = name;
    f->T = (int)num(f->root, "T");
    json_t *cu = need(f->root, "cu_seqlens");
    f->n_seqs = (int)json_array_size(cu) - 1;
    f->cu = arr_i32(f->root, "cu_seqlens", f->n_seqs + 1);
    f->logp = arr_f32(f->root, "logp", f->T);
    int32_t *m = arr_i32(f->root, "mask", f->T);
    f->mask = hy_malloc((size_t)f->T + 1);
    for (int t = 0; t < f->T; t++) f->mask[t] = (uint8_t)m[t];
    free(m);
}

static void fixture_free(fixture *f) {
    json_decref(f->root);
    free(f->cu);
    free(f->logp);
    free(f->mask);
}

// loss to 1e-10 relative, every dlogp entry to 1e-6 relative + 1e-12 of the largest (header).
static void compare_grad(const fixture *f, double loss, const float *d) {
    json_t *e = need(f->root, "expect");
    const double want_loss = num(e, "loss");
    CHECK(within(loss, want_loss, 1e-10, 1e-14), "%s: loss %.17g, expected %.17g", f->name, loss, want_loss);
    double *want = arr_f64(e, "dlogp", f->T);
    double scale = 0.0, worst = 0.0;
    for (int t = 0; t < f->T; t++) scale = fmax(scale, fabs(want[t]));
    int n_nonzero = 0;
    for (int t = 0; t < f->T; t++) {
        const double err = fabs(d[t] - want[t]);
        if (want[t] != 0.0) worst = fmax(worst, err / fabs(want[t]));
        n_nonzero += d[t] != 0.0f;
        CHECK(within(d[t], want[t], 1e-6, 1e-12 * scale), "%s: dlogp[%d] = %.9g, expected %.17g", f->name, t, d[t],
              want[t]);
    }
    CHECK(n_nonzero > 0 && loss != 0.0, "%s: the loss or its gradient is all zero", f->name);
    printf("  fixture %-22s loss %.6f (|Δ| %.1e), dlogp %d nonzero, worst rel %.1e\n", f->name, loss,
           fabs(loss - want_loss), n_nonzero, worst);
    free(want);
}

static void compare_stat(const fixture *f, const char *key, double got) {
    const double want = num(need(need(f->root, "expect"), "stats"), key);
    CHECK(within(got, want, 1e-10, 1e-14), "%s: stats.%s = %.17g, expected %.17g", f->name, key, got, want);
}

static void run_sft_fixture(const char *src, const char *name) {
    fixture f;
    fixture_load(&f, src, name);
    loss_tokens tok = tokens_of(f.T, f.n_seqs, f.cu, f.logp, f.mask);
    loss_normaliser n = norm_of(need(f.root, "norm"));
    float *d = hy_malloc(sizeof(float) * (size_t)f.T);
    double loss;
    loss_sft_stats st;
    CHECK(loss_sft(&tok, &n, &loss, d, &st) == 0, "%s: %s", name, hy_last_error());
    compare_grad(&f, loss, d);
    compare_stat(&f, "n_tokens", st.n_tokens);
    compare_stat(&f, "n_seqs", st.n_seqs);
    compare_stat(&f, "nll_sum", st.nll_sum);
    free(d);
    fixture_free(&f);
}

static void run_dpo_fixture(const char *src, const char *name) {
    fixture f;
    fixture_load(&f, src, name);
    loss_tokens tok = tokens_of(f.T, f.n_seqs, f.cu, f.logp, f.mask);
    json_t *p = need(f.root, "pairs"), *oj = need(f.root, "opts");
    const int n_pairs = (int)json_array_size(need(p, "chosen"));
    int32_t *chosen = arr_i32(p, "chosen", n_pairs), *rejected = arr_i32(p, "rejected", n_pairs);
    double *ref = arr_f64(p, "ref_logp", f.n_seqs);
    loss_dpo_pairs pairs = {n_pairs, chosen, rejected, ref};
    loss_dpo_opts o = {strcmp(json_string_value(need(oj, "kind")), "norm") ? LOSS_DPO_SIGMOID : LOSS_DPO_NORM,
                       num(oj, "beta"), num(oj, "label_smoothing"), num(oj, "n_global")};
    float *d = hy_malloc(sizeof(float) * (size_t)f.T);
    double loss;
    loss_dpo_stats st;
    CHECK(loss_dpo(&tok, &pairs, &o, &loss, d, &st) == 0, "%s: %s", name, hy_last_error());
    compare_grad(&f, loss, d);
    compare_stat(&f, "n_pairs", st.n_pairs);
    compare_stat(&f, "reward_accuracy", st.reward_accuracy);
    compare_stat(&f, "margin_mean", st.margin_mean);
    compare_stat(&f, "chosen_reward_mean", st.chosen_reward_mean);
    compare_stat(&f, "rejected_reward_mean", st.rejected_reward_mean);
    free(chosen);
    free(rejected);
    free(ref);
    free(d);
    fixture_free(&f);
}

typedef struct {
    double *adv;
    uint8_t *keep;
    float *old, *rollout, *ref;
    int32_t *version;
    loss_rl_inputs in;
    loss_rl_opts o;
} rl_fixture;

static void rl_fixture_load(rl_fixture *r, const fixture *f) {
    json_t *root = f->root, *oj = need(root, "opts");
    double *reward = arr_f64(root, "reward", f->n_seqs);
    int32_t *group = arr_i32(root, "group", f->n_seqs);
    r->adv = hy_malloc(sizeof(double) * (size_t)f->n_seqs);
    r->keep = hy_malloc((size_t)f->n_seqs);
    const loss_adv_kind kind = strcmp(json_string_value(need(root, "adv_kind")), "grpo") ? LOSS_ADV_DR_GRPO
                                                                                         : LOSS_ADV_GRPO;
    CHECK(loss_rl_advantages(f->n_seqs, reward, group, kind, num(root, "eps"), r->adv, r->keep, NULL) == 0, "%s: %s",
          f->name, hy_last_error());
    json_t *e = need(root, "expect");
    double *want_adv = arr_f64(e, "adv", f->n_seqs);
    int32_t *want_keep = arr_i32(e, "keep", f->n_seqs);
    for (int s = 0; s < f->n_seqs; s++) {
        // advantages: the same double arithmetic as torch's mean/std (1e-12 allows summation order)
        CHECK(within(r->adv[s], want_adv[s], 1e-12, 1e-15), "%s: adv[%d] = %.17g, expected %.17g", f->name, s,
              r->adv[s], want_adv[s]);
        CHECK(r->keep[s] == want_keep[s], "%s: keep[%d] = %d, expected %d", f->name, s, r->keep[s], want_keep[s]);
    }
    free(want_adv);
    free(want_keep);
    free(reward);
    free(group);
    r->old = arr_f32(root, "old_logp", f->T);
    r->rollout = arr_f32(root, "rollout_logp", f->T);
    r->ref = arr_f32(root, "ref_logp", f->T);
    r->version = arr_i32(root, "version", f->T);
    r->in = (loss_rl_inputs){r->old, r->rollout, r->ref, r->version, r->adv, r->keep};
    r->o = (loss_rl_opts){num(oj, "clip_low"),
                          num(oj, "clip_high"),
                          num(oj, "is_cap"),
                          num(oj, "kl_coef"),
                          (int)num(oj, "current_version"),
                          (int)num(oj, "max_staleness"),
                          strcmp(json_string_value(need(oj, "stale")), "keep") ? LOSS_STALE_DROP : LOSS_STALE_KEEP,
                          norm_of(need(oj, "norm"))};
}

static void rl_fixture_free(rl_fixture *r) {
    free(r->adv);
    free(r->keep);
    free(r->old);
    free(r->rollout);
    free(r->ref);
    free(r->version);
}

static void run_rl_fixture(const char *src, const char *name) {
    fixture f;
    fixture_load(&f, src, name);
    rl_fixture r;
    rl_fixture_load(&r, &f);
    loss_tokens tok = tokens_of(f.T, f.n_seqs, f.cu, f.logp, f.mask);
    float *d = hy_malloc(sizeof(float) * (size_t)f.T), *d2 = hy_malloc(sizeof(float) * (size_t)f.T);
    double loss, loss2;
    loss_rl_stats st, st2;
    CHECK(loss_rl(&tok, &r.in, &r.o, &loss, d, &st) == 0, "%s: %s", name, hy_last_error());
    compare_grad(&f, loss, d);
    int nt, ns;
    CHECK(loss_rl_count(&tok, &r.in, &r.o, &nt, &ns) == 0 && nt == st.n_tokens && ns == st.n_seqs,
          "%s: loss_rl_count %d %d vs stats %d %d", name, nt, ns, st.n_tokens, st.n_seqs);
    const struct {
        const char *key;
        double got;
    } stats[] = {{"n_tokens", st.n_tokens},           {"n_seqs", st.n_seqs},
                 {"n_dropped_tokens", st.n_dropped_tokens}, {"n_stale_tokens", st.n_stale_tokens},
                 {"clip_low_frac", st.clip_low_frac}, {"clip_high_frac", st.clip_high_frac},
                 {"ratio_mean", st.ratio_mean},       {"is_weight_mean", st.is_weight_mean},
                 {"is_capped_frac", st.is_capped_frac}, {"mismatch_kl", st.mismatch_kl},
                 {"ref_kl", st.ref_kl},               {"adv_mean", st.adv_mean},
                 {"pg_loss", st.pg_loss},             {"kl_loss", st.kl_loss}};
    for (size_t i = 0; i < sizeof stats / sizeof *stats; i++) compare_stat(&f, stats[i].key, stats[i].got);

    // 3. old_logp = NULL is old_logp = logp (bit for bit)
    if (!r.old) {
        r.in.old_logp = f.logp;
        CHECK(loss_rl(&tok, &r.in, &r.o, &loss2, d2, &st2) == 0 && loss2 == loss && !memcmp(d, d2, sizeof(float) * f.T),
              "%s: old_logp = logp differs from old_logp = NULL", name);
        r.in.old_logp = NULL;
    }
    // 3. masked-out positions are never read
    for (int t = 0; t < f.T; t++)
        if (!f.mask[t]) {
            f.logp[t] = NAN;
            if (r.old) r.old[t] = NAN;
            if (r.rollout) r.rollout[t] = NAN;
            if (r.ref) r.ref[t] = NAN;
        }
    CHECK(loss_rl(&tok, &r.in, &r.o, &loss2, d2, &st2) == 0 && loss2 == loss && !memcmp(d, d2, sizeof(float) * f.T),
          "%s: NaN at masked-out positions changed the result (%s)", name, hy_last_error());
    free(d);
    free(d2);
    rl_fixture_free(&r);
    fixture_free(&f);
}

static void test_fixtures(const char *src) {
    run_sft_fixture(src, "sft_token");
    run_sft_fixture(src, "sft_sequence");
    run_dpo_fixture(src, "dpo_sigmoid");
    run_dpo_fixture(src, "dpo_norm");
    run_dpo_fixture(src, "dpo_smoothed");
    run_rl_fixture(src, "rl_grpo_token");
    run_rl_fixture(src, "rl_drgrpo_constant");
    run_rl_fixture(src, "rl_grpo_sequence_kl");
}

// ---- 4. bad input -------------------------------------------------------------------------------

// rc must be −1, the message must mention field, and d (sentinel 7) must be untouched.
static void expect_error(int rc, const char *field, const float *d, int n, const char *what) {
    CHECK(rc == -1, "%s: accepted (rc %d)", what, rc);
    CHECK(strstr(hy_last_error(), field) != NULL, "%s: message '%s' does not name '%s'", what, hy_last_error(), field);
    for (int i = 0; i < n; i++) CHECK(d[i] == 7.0f, "%s: dlogp[%d] written on error", what, i);
    hy_error_clear();
}

static void test_errors(void) {
    int32_t cu[] = {0, 2, 4};
    float logp[] = {-1, -2, -1, -3};
    uint8_t mask[] = {1, 1, 1, 1};
    float d[4] = {7, 7, 7, 7};
    double loss;
    loss_normaliser n = token_norm(4);
    loss_tokens tok = tokens_of(4, 2, cu, logp, mask);

    logp[1] = NAN;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "logp[1]", d, 4, "NaN logp");
    logp[1] = -2;
    tok.T = 5;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "cu_seqlens", d, 4, "lengths disagree");
    tok.T = -1;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "T = -1", d, 4, "negative T");
    tok.T = 4;
    tok.n_seqs = -2;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "n_seqs", d, 4, "negative n_seqs");
    tok.n_seqs = 2;
    cu[1] = 5;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "cu_seqlens[2]", d, 4, "decreasing cu_seqlens");
    cu[1] = 2;
    mask[2] = 2;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "mask[2]", d, 4, "mask not 0/1");
    mask[2] = 1;
    n.n_global = 0;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "n_global", d, 4, "zero normaliser");
    n.n_global = 3;
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "n_global", d, 4, "normaliser below the local count");
    n = (loss_normaliser){LOSS_NORM_CONSTANT, 2, 1};
    expect_error(loss_sft(&tok, &n, &loss, d, NULL), "max_tokens", d, 4, "sequence longer than max_tokens");

    int32_t chosen[] = {0}, rejected[] = {2};
    double ref[] = {-1, -1};
    loss_dpo_pairs pairs = {1, chosen, rejected, ref};
    loss_dpo_opts o;
    loss_dpo_opts_default(&o, LOSS_DPO_SIGMOID, 1);
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "rejected[0]", d, 4, "dpo index out of range");
    rejected[0] = 0;
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "itself", d, 4, "dpo pair with itself");
    rejected[0] = 1;
    ref[1] = NAN;
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "ref_logp[1]", d, 4, "dpo NaN reference");
    ref[1] = -1;
    o.n_global = 0;
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "n_global", d, 4, "dpo zero normaliser");
    loss_dpo_opts_default(&o, LOSS_DPO_NORM, 1);
    mask[2] = mask[3] = 0;
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "no masked tokens", d, 4, "dpo_norm empty response");
    mask[2] = mask[3] = 1;
    pairs.n_pairs = -1;
    expect_error(loss_dpo(&tok, &pairs, &o, &loss, d, NULL), "n_pairs", d, 4, "dpo negative pair count");

    double reward[] = {1, NAN}, adv[2];
    int32_t group[] = {0, 0};
    uint8_t keep[2];
    CHECK(loss_rl_advantages(2, reward, group, LOSS_ADV_GRPO, 1e-6, adv, keep, NULL) == -1 &&
              strstr(hy_last_error(), "reward[1]"),
          "NaN reward: %s", hy_last_error());
    reward[1] = 0;
    group[0] = -3;
    CHECK(loss_rl_advantages(2, reward, group, LOSS_ADV_GRPO, 1e-6, adv, keep, NULL) == -1 &&
              strstr(hy_last_error(), "group[0]"),
          "negative group: %s", hy_last_error());
    CHECK(loss_rl_advantages(-1, reward, group, LOSS_ADV_GRPO, 1e-6, adv, keep, NULL) == -1 &&
              strstr(hy_last_error(), "n_seqs"),
          "negative n_seqs: %s", hy_last_error());

    double sadv[] = {1, -1};
    int32_t version[] = {1, 2, 12, 3};
    float old[] = {-1, -1, NAN, -1};
    loss_rl_inputs in = {.adv = sadv};
    loss_rl_opts ro;
    loss_rl_opts_default(&ro, 4);
    ro.kl_coef = 0.1;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "ref_logp", d, 4, "kl without reference");
    ro.kl_coef = 0;
    in.old_logp = old;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "old_logp[2]", d, 4, "NaN old_logp");
    in.old_logp = NULL;
    in.version = version;
    ro.current_version = 10;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "version[2]", d, 4, "version from the future");
    version[2] = 3;
    ro.stale = LOSS_STALE_KEEP;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "rollout_logp", d, 4, "stale kept without rollout");
    ro.stale = LOSS_STALE_DROP;
    ro.max_staleness = -1;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "max_staleness", d, 4, "negative staleness");
    in.version = NULL;
    ro.norm.n_global = 0;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "n_global", d, 4, "rl zero normaliser");
    ro.norm.n_global = 4;
    sadv[1] = INFINITY;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "adv[1]", d, 4, "infinite advantage");
    sadv[1] = -1;
    ro.clip_low = 1.5;
    expect_error(loss_rl(&tok, &in, &ro, &loss, d, NULL), "clip_low", d, 4, "clip_low out of range");
    printf("  bad input: refused with messages ok\n");
}

// ---- 5. finite differences ----------------------------------------------------------------------

typedef double (*loss_fn)(void *ctx, const float *logp, float *dlogp);

// Central differences over every masked token; relative norm error ≤ 1e-6 (header).
static void fd_check(const char *what, loss_fn f, void *ctx, float *logp, const uint8_t *mask, int T) {
    float *d = hy_malloc(sizeof(float) * (size_t)T), *scratch = hy_malloc(sizeof(float) * (size_t)T);
    f(ctx, logp, d);
    double err = 0.0, ref = 0.0;
    for (int t = 0; t < T; t++) {
        if (!mask[t]) {
            CHECK(d[t] == 0.0f, "%s: dlogp[%d] = %g at a masked-out token", what, t, d[t]);
            continue;
        }
        const float x = logp[t], xp = x + 1e-3f, xm = x - 1e-3f;
        logp[t] = xp;
        const double lp = f(ctx, logp, scratch);
        logp[t] = xm;
        const double lm = f(ctx, logp, scratch);
        logp[t] = x;
        const double numeric = (lp - lm) / ((double)xp - xm);
        err += (d[t] - numeric) * (d[t] - numeric);
        ref += numeric * numeric;
    }
    const double rel = sqrt(err) / fmax(sqrt(ref), 1e-30);
    printf("  finite differences %-28s relative error %.2e\n", what, rel);
    CHECK(rel <= 1e-6 && ref > 0.0, "%s: finite-difference relative error %.3g (> 1e-6)", what, rel);
    free(d);
    free(scratch);
}

typedef struct {
    loss_tokens tok;
    loss_normaliser norm;
    loss_dpo_pairs pairs;
    loss_dpo_opts dpo;
    loss_rl_inputs rl;
    loss_rl_opts rlo;
} fd_ctx;

static double fd_sft(void *p, const float *logp, float *d) {
    fd_ctx *c = p;
    c->tok.logp = logp;
    double loss = NAN;
    if (loss_sft(&c->tok, &c->norm, &loss, d, NULL)) fprintf(stderr, "  %s\n", hy_last_error());
    return loss;
}

static double fd_dpo(void *p, const float *logp, float *d) {
    fd_ctx *c = p;
    c->tok.logp = logp;
    double loss = NAN;
    if (loss_dpo(&c->tok, &c->pairs, &c->dpo, &loss, d, NULL)) fprintf(stderr, "  %s\n", hy_last_error());
    return loss;
}

static double fd_rl(void *p, const float *logp, float *d) {
    fd_ctx *c = p;
    c->tok.logp = logp;
    double loss = NAN;
    if (loss_rl(&c->tok, &c->rl, &c->rlo, &loss, d, NULL)) fprintf(stderr, "  %s\n", hy_last_error());
    return loss;
}

static void test_finite_differences(void) {
    enum { S = 6, T = 60 };
    hy_rng rng;
    hy_rng_init(&rng, 11);
    int32_t cu[S + 1];
    uint8_t mask[T];
    float logp[T], old[T], rollout[T], ref[T];
    int32_t version[T];
    for (int s = 0; s <= S; s++) cu[s] = s * T / S;
    for (int s = 0; s < S; s++)
        for (int t = cu[s]; t < cu[s + 1]; t++) mask[t] = t - cu[s] >= 1 + s % 3;  // prompts of 1–3 tokens
    for (int t = 0; t < T; t++) {
        logp[t] = hy_rng_range(&rng, -5.0f, -0.05f);
        ref[t] = logp[t] + 0.3f * hy_rng_normal(&rng);
        version[t] = 7 + (int)(hy_rng_uniform(&rng) * 4);
        // ratios spread over both clip sides, kept ≥ 5e-3 (in log) from the clip edges so the
        // ±1e-3 steps never cross one
        float lr;
        do lr = 0.4f * hy_rng_normal(&rng);
        while (fabsf(lr - logf(0.8f)) < 5e-3f || fabsf(lr - logf(1.28f)) < 5e-3f);
        old[t] = logp[t] - lr;
        rollout[t] = old[t] + 0.6f * hy_rng_normal(&rng);
    }
    fd_ctx c = {.tok = tokens_of(T, S, cu, logp, mask)};
    int n_mask = 0;
    for (int t = 0; t < T; t++) n_mask += mask[t];

    c.norm = token_norm(n_mask + 3);
    fd_check("sft token", fd_sft, &c, logp, mask, T);
    c.norm = (loss_normaliser){LOSS_NORM_SEQUENCE, S, 0};
    fd_check("sft sequence", fd_sft, &c, logp, mask, T);

    const int32_t chosen[] = {0, 2, 4, 0}, rejected[] = {1, 3, 5, 5};
    double seq_ref[S];
    loss_seq_sums(&c.tok, ref, seq_ref);
    c.pairs = (loss_dpo_pairs){4, chosen, rejected, seq_ref};
    loss_dpo_opts_default(&c.dpo, LOSS_DPO_SIGMOID, 4);
    c.dpo.label_smoothing = 0.1;
    fd_check("dpo (smoothed)", fd_dpo, &c, logp, mask, T);
    loss_dpo_opts_default(&c.dpo, LOSS_DPO_NORM, 5);
    fd_check("dpo_norm", fd_dpo, &c, logp, mask, T);

    const double reward[S] = {1, 0, 0.5, 1, 0, 0.25};
    const int32_t group[S] = {0, 0, 0, 1, 1, 1};
    double adv[S];
    uint8_t keep[S];
    CHECK(loss_rl_advantages(S, reward, group, LOSS_ADV_GRPO, 1e-6, adv, keep, NULL) == 0, "fd adv");
    c.rl = (loss_rl_inputs){old, rollout, ref, version, adv, keep};
    loss_rl_opts_default(&c.rlo, 0);
    c.rlo.kl_coef = 0.1;
    c.rlo.current_version = 10;
    c.rlo.max_staleness = 2;
    c.rlo.stale = LOSS_STALE_KEEP;
    int nt, ns;
    CHECK(loss_rl_count(&c.tok, &c.rl, &c.rlo, &nt, &ns) == 0, "fd count");
    c.rlo.norm = token_norm(nt);
    fd_check("rl token (clip, IS, k3)", fd_rl, &c, logp, mask, T);
    c.rlo.norm = (loss_normaliser){LOSS_NORM_SEQUENCE, ns, 0};
    c.rlo.stale = LOSS_STALE_DROP;
    fd_check("rl sequence (stale dropped)", fd_rl, &c, logp, mask, T);
    c.rlo.norm = (loss_normaliser){LOSS_NORM_CONSTANT, S, 16};
    fd_check("rl constant", fd_rl, &c, logp, mask, T);
}

// ---- 6. the lm head on a tiny model -------------------------------------------------------------

typedef struct {
    hy_model m;
    hy_batch b;
    int32_t tokens[200], cu[3], targets[200];
} tiny;

static void tiny_init(tiny *k) {
    hy_config c;
    if (hy_config_preset(&c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
    hy_model_init(&k->m, &c, 5);
    // two documents, 70 + 45 tokens: chunks of 64 rows straddle the boundary and end ragged
    hy_rng rng;
    hy_rng_init(&rng, 3);
    const int T = 115;
    k->cu[0] = 0, k->cu[1] = 70, k->cu[2] = T;
    for (int t = 0; t < T; t++) k->tokens[t] = (int32_t)(hy_rng_uniform(&rng) * 250);
    k->b = (hy_batch){k->tokens, k->cu, T, 2};
    hy_next_token_targets(&k->b, k->targets);
}

static void test_lm_head(tiny *k) {
    hy_model *m = &k->m;
    hy_backend *be = m->be;
    const int T = k->b.T, C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    hy_acts *acts = NULL;
    CHECK(hy_model_forward(m, &k->b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL) == 0, "forward: %s", hy_last_error());
    const hy_act *xf = hy_acts_final_hidden(acts);

    // (a) the first pass equals hy_model_score (same ops, same order: exact)
    float logp[200], score[200];
    lm_token_logprobs(m, xf, k->targets, T, logp);
    CHECK(hy_model_score(m, &k->b, score) == 0, "score: %s", hy_last_error());
    int n = 0, exact = 1;
    double nll = 0.0;
    for (int t = 0; t < T; t++) {
        if (k->targets[t] < 0) {
            CHECK(logp[t] == 0.0f, "logp[%d] = %g where there is no target", t, logp[t]);
            continue;
        }
        exact &= logp[t] == score[n++];
        nll -= logp[t];
    }
    CHECK(exact && n == T - 2, "lm_token_logprobs differs from hy_model_score");

    // (b) the second pass with dlogp = −1/N equals lm_loss_mean_ce's gradients (exact)
    const size_t mark = be->mark(be);
    hy_act *dxf1 = be->act_alloc(be, (size_t)T * C), *dxf2 = be->act_alloc(be, (size_t)T * C);
    float *dw1 = be->f32_alloc(be, (size_t)V * C), *dw2 = be->f32_alloc(be, (size_t)V * C);
    const double ce = lm_loss_mean_ce(m, xf, k->targets, T, dxf1, dw1);
    CHECK(within(ce, nll / n, 1e-12, 0), "mean ce %.17g vs −Σ logp / N %.17g", ce, nll / n);
    float dlogp[200];
    for (int t = 0; t < T; t++) dlogp[t] = k->targets[t] >= 0 ? -1.0f / (float)n : 0.0f;
    lm_logprobs_backward(m, xf, k->targets, T, dlogp, dxf2, dw2);
    // on the CPU backend activations are fp32 in host memory
    const float *a1 = dxf1, *a2 = dxf2;
    double norm_dx = 0.0;
    for (size_t i = 0; i < (size_t)T * C; i++) norm_dx += (double)a1[i] * a1[i];
    CHECK(!memcmp(a1, a2, sizeof(float) * (size_t)T * C) && norm_dx > 0.0, "dxf differs between the two paths");
    CHECK(!memcmp(dw1, dw2, sizeof(float) * (size_t)V * C), "dlm_head differs between the two paths");
    printf("  lm head: logprobs == hy_model_score, two-pass gradients == lm_loss_mean_ce (exact, T = %d)\n", T);
    be->release(be, mark);
    hy_acts_free(acts);
}

// The RL loss through the model: fixed old/rollout/ref logprobs and advantages, gradients into
// grads (table layout) when non-NULL.
typedef struct {
    tiny *k;
    uint8_t mask[200];
    float old[200], rollout[200], ref[200];
    double adv[2];
    loss_rl_opts o;
} model_rl;

static double model_rl_loss(model_rl *r, float *grads) {
    hy_model *m = &r->k->m;
    hy_backend *be = m->be;
    const int T = r->k->b.T;
    hy_acts *acts = NULL;
    if (hy_model_forward(m, &r->k->b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) {
        fprintf(stderr, "  forward: %s\n", hy_last_error());
        exit(1);
    }
    const hy_act *xf = hy_acts_final_hidden(acts);
    float logp[200], dlogp[200];
    lm_token_logprobs(m, xf, r->k->targets, T, logp);
    loss_tokens tok = tokens_of(T, 2, r->k->cu, logp, r->mask);
    loss_rl_inputs in = {r->old, r->rollout, r->ref, NULL, r->adv, NULL};
    double loss = NAN;
    if (loss_rl(&tok, &in, &r->o, &loss, dlogp, NULL)) fprintf(stderr, "  loss_rl: %s\n", hy_last_error());
    if (grads) {
        be->f32_zero(be, grads, m->table.total);
        hy_params g;
        hy_params_bind(&g, &m->table, &m->cfg, grads);
        const size_t mark = be->mark(be);
        hy_act *dxf = be->act_alloc(be, (size_t)T * m->cfg.hidden_size);
        lm_logprobs_backward(m, xf, r->k->targets, T, dlogp, dxf, g.lm_head);
        hy_model_backward_hidden(m, acts, dxf, grads);
        be->release(be, mark);
    }
    hy_acts_free(acts);
    return loss;
}

static void test_rl_through_model(tiny *k) {
    hy_model *m = &k->m;
    const int T = k->b.T;
    model_rl r = {.k = k, .adv = {1.0, -0.5}};
    hy_rng rng;
    hy_rng_init(&rng, 9);
    // behaviour logprobs near the current ones (ratios within e^±0.1, inside the clip range, so a
    // parameter step cannot cross a clip edge), the rollout engine's further off (IS cap active
    // on some), a reference for the k3 term
    hy_acts *acts = NULL;
    CHECK(hy_model_forward(m, &k->b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL) == 0, "forward");
    float logp[200];
    lm_token_logprobs(m, hy_acts_final_hidden(acts), k->targets, T, logp);
    hy_acts_free(acts);
    int n = 0;
    for (int t = 0; t < T; t++) {
        r.mask[t] = k->targets[t] >= 0 && t - k->cu[t >= k->cu[1]] >= 8;  // an 8-token prompt per document
        r.old[t] = logp[t] + 0.1f * (2.0f * hy_rng_uniform(&rng) - 1.0f);
        r.rollout[t] = r.old[t] + 0.6f * hy_rng_normal(&rng);
        r.ref[t] = logp[t] + 0.3f * hy_rng_normal(&rng);
        n += r.mask[t];
    }
    loss_rl_opts_default(&r.o, n);
    r.o.kl_coef = 0.1;
    float *grads = hy_malloc(sizeof(float) * m->table.total);
    const double base = model_rl_loss(&r, grads);
    // two parameters: the largest gradient in lm_head and in the first layer's tensors
    size_t pick[2] = {0, 0};
    double best[2] = {-1, -1};
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        const int which = strstr(s->name, "lm_head") ? 0 : strstr(s->name, "layers.0.") ? 1 : -1;
        if (which < 0) continue;
        for (size_t j = 0; j < s->numel; j++)
            if (fabs(grads[s->offset + j]) > best[which]) best[which] = fabs(grads[s->offset + j]), pick[which] = s->offset + j;
    }
    for (int i = 0; i < 2; i++) {
        CHECK(best[i] > 0.0, "no gradient found for parameter class %d", i);
        // on the CPU backend m->dev is the fp32 arena the forward reads
        const float p0 = m->dev[pick[i]], h = 1e-3f;
        m->dev[pick[i]] = p0 + h;
        const float hp = m->dev[pick[i]];
        const double lp = model_rl_loss(&r, NULL);
        m->dev[pick[i]] = p0 - h;
        const float hm = m->dev[pick[i]];
        const double lm = model_rl_loss(&r, NULL);
        m->dev[pick[i]] = p0;
        const double numeric = (lp - lm) / ((double)hp - hm), rel = fabs(grads[pick[i]] - numeric) / fabs(numeric);
        printf("  RL through the model: %s param %zu analytic %.6e numeric %.6e rel %.2e (loss %.4f)\n",
               i ? "layer-0" : "lm_head", pick[i], grads[pick[i]], numeric, rel, base);
        CHECK(rel <= 1e-2, "RL gradient through the model: relative error %.3g (> 1e-2)", rel);
    }
    free(grads);
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : ".";
    test_hand_sft();
    test_hand_dpo();
    test_hand_clip();
    test_hand_is_and_kl();
    test_hand_advantages();
    test_hand_stale_and_norms();
    test_fixtures(src);
    test_errors();
    test_finite_differences();
    tiny k;
    tiny_init(&k);
    test_lm_head(&k);
    test_rl_through_model(&k);
    hy_model_free(&k.m);
    printf("%d failure(s)\n", failures);
    return failures != 0;
}
