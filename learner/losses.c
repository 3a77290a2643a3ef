// SFT, DPO and RL losses with their exact gradients (see losses.h; formulas in docs/learner.md).
//
// Every loss is written the same way: validate everything (nothing is written on a bad input),
// decide which tokens contribute ("active"), give each active token its coefficient in the
// normalised sum (token_scales: 1/N, 1/(n_s·N) or 1/(N·max_tokens)), then one loop computes the
// per-token loss ℓ_t and its derivative dℓ_t/dlogp_t, and
//   loss = Σ_t scale_t·ℓ_t,   dlogp_t = scale_t·dℓ_t/dlogp_t.
// DPO's loss is per pair, not per token, so it computes a per-sequence derivative instead and
// spreads it over the sequence's masked tokens (π is a plain sum of them).
// Accumulation is in double; only dlogp is rounded to fp32, once.
#include "losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

// ---- shared checks ------------------------------------------------------------------------------

int loss_tokens_check(const loss_tokens *tok) {
    if (tok->T < 0) return hy_fail("T = %d is negative", tok->T);
    if (tok->n_seqs < 0) return hy_fail("n_seqs = %d is negative", tok->n_seqs);
    if (!tok->cu_seqlens) return hy_fail("cu_seqlens is NULL");
    if (tok->T > 0 && (!tok->logp || !tok->mask)) return hy_fail("%s is NULL", tok->logp ? "mask" : "logp");
    if (tok->cu_seqlens[0] != 0) return hy_fail("cu_seqlens[0] = %d, expected 0", tok->cu_seqlens[0]);
    for (int s = 0; s < tok->n_seqs; s++)
        if (tok->cu_seqlens[s + 1] < tok->cu_seqlens[s])
            return hy_fail("cu_seqlens[%d] = %d is below cu_seqlens[%d] = %d", s + 1, tok->cu_seqlens[s + 1], s,
                           tok->cu_seqlens[s]);
    if (tok->cu_seqlens[tok->n_seqs] != tok->T)
        return hy_fail("cu_seqlens[%d] = %d but T = %d: the sequences do not cover the tokens", tok->n_seqs,
                       tok->cu_seqlens[tok->n_seqs], tok->T);
    for (int t = 0; t < tok->T; t++) {
        if (tok->mask[t] > 1) return hy_fail("mask[%d] = %d, expected 0 or 1", t, tok->mask[t]);
        if (tok->mask[t] && !isfinite(tok->logp[t])) return hy_fail("logp[%d] = %g (masked token)", t, tok->logp[t]);
    }
    return 0;
}

// A per-token array the caller supplies beside logp: finite wherever the mask is set.
static int check_masked_finite(const loss_tokens *tok, const float *x, const char *field) {
    for (int t = 0; t < tok->T; t++)
        if (tok->mask[t] && !isfinite(x[t])) return hy_fail("%s[%d] = %g (masked token)", field, t, x[t]);
    return 0;
}

void loss_seq_sums(const loss_tokens *tok, const float *values, double *out) {
    for (int s = 0; s < tok->n_seqs; s++) {
        double sum = 0.0;
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++)
            if (tok->mask[t]) sum += values[t];
        out[s] = sum;
    }
}

// scale (T) = each active token's coefficient in the normalised loss (0 elsewhere). Refuses a
// normaliser that cannot be the step-wide count this call is part of.
static int token_scales(const loss_tokens *tok, const uint8_t *active, const loss_normaliser *nm, double *scale) {
    if (!(isfinite(nm->n_global) && nm->n_global > 0.0))
        return hy_fail("normaliser n_global = %g: it must be a positive count (a step with no loss tokens "
                       "should be skipped)", nm->n_global);
    if (nm->kind == LOSS_NORM_CONSTANT && nm->max_tokens <= 0)
        return hy_fail("normaliser max_tokens = %d: the constant normaliser needs the generation budget (> 0)",
                       nm->max_tokens);
    if (nm->kind != LOSS_NORM_TOKEN && nm->kind != LOSS_NORM_SEQUENCE && nm->kind != LOSS_NORM_CONSTANT)
        return hy_fail("normaliser kind = %d is unknown", (int)nm->kind);
    int n_tokens = 0, n_seqs = 0;
    for (int s = 0; s < tok->n_seqs; s++) {
        int n = 0;
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) n += active[t];
        if (nm->kind == LOSS_NORM_CONSTANT && n > nm->max_tokens)
            return hy_fail("sequence %d has %d loss tokens, more than the normaliser's max_tokens = %d", s, n,
                           nm->max_tokens);
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) {
            if (!active[t])
                scale[t] = 0.0;
            else if (nm->kind == LOSS_NORM_TOKEN)
                scale[t] = 1.0 / nm->n_global;
            else if (nm->kind == LOSS_NORM_SEQUENCE)
                scale[t] = 1.0 / ((double)n * nm->n_global);
            else
                scale[t] = 1.0 / (nm->n_global * nm->max_tokens);
        }
        n_tokens += n;
        n_seqs += n > 0;
    }
    const int local = nm->kind == LOSS_NORM_TOKEN ? n_tokens : n_seqs;
    if (nm->n_global < local)
        return hy_fail("normaliser n_global = %g is below this call's own %d %s: it must count the whole step",
                       nm->n_global, local, nm->kind == LOSS_NORM_TOKEN ? "tokens" : "sequences");
    return 0;
}

// log σ(x) = −softplus(−x), without overflow for either sign.
static double softplus(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }

static double sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

// ---- SFT ----------------------------------------------------------------------------------------

int loss_sft(const loss_tokens *tok, const loss_normaliser *norm, double *loss, float *dlogp, loss_sft_stats *stats) {
    if (loss_tokens_check(tok)) return hy_fail_prefix("loss_sft");
    double *scale = hy_malloc(sizeof(double) * (size_t)(tok->T + 1));
    if (token_scales(tok, tok->mask, norm, scale)) {
        free(scale);
        return hy_fail_prefix("loss_sft");
    }
    loss_sft_stats st = {0};
    double total = 0.0;
    for (int s = 0; s < tok->n_seqs; s++) {
        int n = 0;
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) {
            dlogp[t] = 0.0f;
            if (!tok->mask[t]) continue;
            // ℓ = −logp, dℓ/dlogp = −1
            total -= scale[t] * tok->logp[t];
            dlogp[t] = (float)-scale[t];
            n++;
            st.nll_sum -= tok->logp[t];
        }
        st.n_tokens += n;
        st.n_seqs += n > 0;
    }
    free(scale);
    *loss = total;
    if (stats) *stats = st;
    return 0;
}

// ---- DPO ----------------------------------------------------------------------------------------

void loss_dpo_opts_default(loss_dpo_opts *o, loss_dpo_kind kind, double n_global) {
    // β: 0.1 is the DPO paper's and most libraries' default for the summed log-ratio; the
    // length-normalised log-ratio is ~|response| times smaller, and Tulu 3 / OLMo 2 use β = 5 with it
    *o = (loss_dpo_opts){kind, kind == LOSS_DPO_NORM ? 5.0 : 0.1, 0.0, n_global};
}

static int dpo_check(const loss_tokens *tok, const loss_dpo_pairs *p, const loss_dpo_opts *o, const int *len) {
    if (o->kind != LOSS_DPO_SIGMOID && o->kind != LOSS_DPO_NORM) return hy_fail("kind = %d is unknown", (int)o->kind);
    if (!(isfinite(o->beta) && o->beta > 0.0)) return hy_fail("beta = %g, expected > 0", o->beta);
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing < 0.5))
        return hy_fail("label_smoothing = %g, expected in [0, 0.5)", o->label_smoothing);
    if (p->n_pairs < 0) return hy_fail("n_pairs = %d is negative", p->n_pairs);
    if (!(isfinite(o->n_global) && o->n_global > 0.0))
        return hy_fail("n_global = %g: it must be the step's positive pair count", o->n_global);
    if (o->n_global < p->n_pairs)
        return hy_fail("n_global = %g is below this call's own %d pairs: it must count the whole step", o->n_global,
                       p->n_pairs);
    if (p->n_pairs > 0 && (!p->chosen || !p->rejected || !p->ref_logp))
        return hy_fail("%s is NULL", !p->chosen ? "chosen" : !p->rejected ? "rejected" : "ref_logp");
    for (int i = 0; i < p->n_pairs; i++) {
        const int32_t c = p->chosen[i], r = p->rejected[i];
        if (c < 0 || c >= tok->n_seqs) return hy_fail("chosen[%d] = %d outside [0, %d)", i, c, tok->n_seqs);
        if (r < 0 || r >= tok->n_seqs) return hy_fail("rejected[%d] = %d outside [0, %d)", i, r, tok->n_seqs);
        if (c == r) return hy_fail("pair %d compares sequence %d with itself", i, c);
        for (int k = 0; k < 2; k++) {
            const int32_t s = k ? r : c;
            if (!isfinite(p->ref_logp[s])) return hy_fail("ref_logp[%d] = %g (pair %d)", s, p->ref_logp[s], i);
            // a normalised log-ratio of an empty response is 0/0
            if (o->kind == LOSS_DPO_NORM && len[s] == 0)
                return hy_fail("sequence %d (pair %d) has no masked tokens to normalise by", s, i);
        }
    }
    return 0;
}

int loss_dpo(const loss_tokens *tok, const loss_dpo_pairs *pairs, const loss_dpo_opts *o, double *loss, float *dlogp,
             loss_dpo_stats *stats) {
    if (loss_tokens_check(tok)) return hy_fail_prefix("loss_dpo");
    const int S = tok->n_seqs;
    double *pi = hy_malloc(sizeof(double) * (size_t)(S + 1)), *dseq = hy_calloc((size_t)S + 1, sizeof(double));
    int *len = hy_calloc((size_t)S + 1, sizeof(int));
    loss_seq_sums(tok, tok->logp, pi);
    for (int s = 0; s < S; s++)
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) len[s] += tok->mask[t];
    if (dpo_check(tok, pairs, o, len)) {
        free(pi);
        free(dseq);
        free(len);
        return hy_fail_prefix("loss_dpo");
    }
    const double beta = o->beta, eps = o->label_smoothing;
    loss_dpo_stats st = {.n_pairs = pairs->n_pairs};
    double total = 0.0;
    for (int i = 0; i < pairs->n_pairs; i++) {
        const int c = pairs->chosen[i], r = pairs->rejected[i];
        // the reward's slope in π: β, or β/|response| when length-normalised
        const double kc = o->kind == LOSS_DPO_NORM ? beta / len[c] : beta;
        const double kr = o->kind == LOSS_DPO_NORM ? beta / len[r] : beta;
        const double reward_c = kc * (pi[c] - pairs->ref_logp[c]), reward_r = kr * (pi[r] - pairs->ref_logp[r]);
        const double h = reward_c - reward_r;
        // −(1−ε)·log σ(h) − ε·log σ(−h); its slope in h is σ(h) − (1 − ε)
        total += (1.0 - eps) * softplus(-h) + eps * softplus(h);
        const double dh = (sigmoid(h) - (1.0 - eps)) / o->n_global;
        dseq[c] += dh * kc;
        dseq[r] -= dh * kr;
        st.reward_accuracy += reward_c > reward_r;
        st.margin_mean += h;
        st.chosen_reward_mean += reward_c;
        st.rejected_reward_mean += reward_r;
    }
    for (int s = 0; s < S; s++)
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++)
            dlogp[t] = tok->mask[t] ? (float)dseq[s] : 0.0f;
    if (pairs->n_pairs > 0) {
        st.reward_accuracy /= pairs->n_pairs;
        st.margin_mean /= pairs->n_pairs;
        st.chosen_reward_mean /= pairs->n_pairs;
        st.rejected_reward_mean /= pairs->n_pairs;
    }
    free(pi);
    free(dseq);
    free(len);
    *loss = total / o->n_global;
    if (stats) *stats = st;
    return 0;
}

// ---- RL: group advantages ------------------------------------------------------------------------

typedef struct {
    int32_t group;
    int index;
} group_member;

static int by_group(const void *a, const void *b) {
    const group_member *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int loss_rl_advantages(int n_seqs, const double *reward, const int32_t *group, loss_adv_kind kind, double eps,
                       double *adv, uint8_t *keep, loss_adv_stats *stats) {
    if (n_seqs < 0) return hy_fail("loss_rl_advantages: n_seqs = %d is negative", n_seqs);
    if (kind != LOSS_ADV_GRPO && kind != LOSS_ADV_DR_GRPO)
        return hy_fail("loss_rl_advantages: kind = %d is unknown", (int)kind);
    if (!(isfinite(eps) && eps >= 0.0)) return hy_fail("loss_rl_advantages: eps = %g, expected ≥ 0", eps);
    for (int i = 0; i < n_seqs; i++) {
        if (!isfinite(reward[i])) return hy_fail("loss_rl_advantages: reward[%d] = %g", i, reward[i]);
        if (group[i] < 0) return hy_fail("loss_rl_advantages: group[%d] = %d is negative", i, group[i]);
    }
    group_member *order = hy_malloc(sizeof(group_member) * (size_t)(n_seqs + 1));
    for (int i = 0; i < n_seqs; i++) order[i] = (group_member){group[i], i};
    qsort(order, (size_t)n_seqs, sizeof *order, by_group);
    loss_adv_stats st = {0};
    for (int i = 0; i < n_seqs; i++) st.reward_mean += reward[i];
    if (n_seqs > 0) st.reward_mean /= n_seqs;
    for (int g0 = 0, g1; g0 < n_seqs; g0 = g1) {
        int all_equal = 1;
        double mean = 0.0;
        for (g1 = g0; g1 < n_seqs && order[g1].group == order[g0].group; g1++) {
            mean += reward[order[g1].index];
            all_equal &= reward[order[g1].index] == reward[order[g0].index];
        }
        const int n = g1 - g0;
        st.n_groups++;
        if (all_equal) {
            // every advantage would be 0 (GRPO: 0/eps): the group carries no signal, and leaving its
            // tokens in the normaliser would only shrink the other groups' gradients
            st.n_dropped_groups++;
            st.n_dropped_seqs += n;
            for (int j = g0; j < g1; j++) adv[order[j].index] = 0.0, keep[order[j].index] = 0;
            continue;
        }
        mean /= n;
        double var = 0.0;
        for (int j = g0; j < g1; j++) var += (reward[order[j].index] - mean) * (reward[order[j].index] - mean);
        // sample std (N − 1), as torch.std's default that the common GRPO implementations call
        const double denom = kind == LOSS_ADV_GRPO ? sqrt(var / (n - 1)) + eps : 1.0;
        for (int j = g0; j < g1; j++) {
            adv[order[j].index] = (reward[order[j].index] - mean) / denom;
            keep[order[j].index] = 1;
        }
    }
    free(order);
    if (stats) *stats = st;
    return 0;
}

// ---- RL: PPO-clip loss ----------------------------------------------------------------------------

void loss_rl_opts_default(loss_rl_opts *o, double n_global) {
    *o = (loss_rl_opts){
        .clip_low = 0.2,   // PPO's ε
        .clip_high = 0.28, // DAPO's clip-higher: more room for low-probability tokens to rise
        .is_cap = 2.0,     // truncated importance sampling: bounds the variance a mismatch can add
        .kl_coef = 0.0,    // DAPO and Dr.GRPO drop the KL term for verifiable-reward RL
        .current_version = 0,
        .max_staleness = 0,
        .stale = LOSS_STALE_DROP,
        .norm = {LOSS_NORM_TOKEN, n_global, 0},
    };
}

// Validates everything but the normaliser and marks the contributing tokens: active (T) =.
// Counters of dropped and stale tokens go to st (may be NULL).
static int rl_select(const loss_tokens *tok, const loss_rl_inputs *in, const loss_rl_opts *o, uint8_t *active,
                     loss_rl_stats *st) {
    if (loss_tokens_check(tok)) return -1;
    if (tok->n_seqs > 0 && !in->adv) return hy_fail("adv is NULL");
    if (!(isfinite(o->clip_low) && o->clip_low >= 0.0 && o->clip_low < 1.0))
        return hy_fail("clip_low = %g, expected in [0, 1)", o->clip_low);
    if (!(isfinite(o->clip_high) && o->clip_high >= 0.0))
        return hy_fail("clip_high = %g, expected ≥ 0", o->clip_high);
    if (!(o->is_cap > 0.0)) return hy_fail("is_cap = %g, expected > 0", o->is_cap);
    if (!(isfinite(o->kl_coef) && o->kl_coef >= 0.0)) return hy_fail("kl_coef = %g, expected ≥ 0", o->kl_coef);
    if (o->kl_coef > 0.0 && !in->ref_logp) return hy_fail("kl_coef = %g needs ref_logp, which is NULL", o->kl_coef);
    if (in->version) {
        if (o->max_staleness < 0) return hy_fail("max_staleness = %d is negative", o->max_staleness);
        if (o->stale != LOSS_STALE_DROP && o->stale != LOSS_STALE_KEEP)
            return hy_fail("stale = %d is unknown", (int)o->stale);
        if (o->stale == LOSS_STALE_KEEP && !in->rollout_logp)
            return hy_fail("stale tokens are kept for importance-sampling correction, but rollout_logp is NULL");
    }
    if (in->old_logp && check_masked_finite(tok, in->old_logp, "old_logp")) return -1;
    if (in->rollout_logp && check_masked_finite(tok, in->rollout_logp, "rollout_logp")) return -1;
    if (in->ref_logp && check_masked_finite(tok, in->ref_logp, "ref_logp")) return -1;
    // the oldest version still fresh, in 64 bits so a large max_staleness cannot overflow
    const int64_t oldest = (int64_t)o->current_version - o->max_staleness;
    for (int s = 0; s < tok->n_seqs; s++) {
        if (!isfinite(in->adv[s])) return hy_fail("adv[%d] = %g", s, in->adv[s]);
        const int kept = !in->keep || in->keep[s];
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) {
            active[t] = tok->mask[t] && kept;
            if (!tok->mask[t]) continue;
            if (!kept) {
                if (st) st->n_dropped_tokens++;
                continue;
            }
            if (!in->version) continue;
            if (in->version[t] > o->current_version)
                return hy_fail("version[%d] = %d is newer than current_version = %d", t, in->version[t],
                               o->current_version);
            if (in->version[t] >= oldest) continue;
            if (st) st->n_stale_tokens++;
            if (o->stale == LOSS_STALE_DROP) active[t] = 0;
        }
    }
    return 0;
}

int loss_rl_count(const loss_tokens *tok, const loss_rl_inputs *in, const loss_rl_opts *o, int *n_tokens,
                  int *n_seqs) {
    uint8_t *active = hy_malloc((size_t)(tok->T > 0 ? tok->T : 1));
    if (rl_select(tok, in, o, active, NULL)) {
        free(active);
        return hy_fail_prefix("loss_rl_count");
    }
    *n_tokens = *n_seqs = 0;
    for (int s = 0; s < tok->n_seqs; s++) {
        int n = 0;
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) n += active[t];
        *n_tokens += n;
        *n_seqs += n > 0;
    }
    free(active);
    return 0;
}

int loss_rl(const loss_tokens *tok, const loss_rl_inputs *in, const loss_rl_opts *o, double *loss, float *dlogp,
            loss_rl_stats *stats) {
    const size_t T = (size_t)(tok->T > 0 ? tok->T : 1);
    uint8_t *active = hy_malloc(T);
    double *scale = hy_malloc(sizeof(double) * T);
    loss_rl_stats st = {0};
    if (rl_select(tok, in, o, active, &st) || token_scales(tok, active, &o->norm, scale)) {
        free(active);
        free(scale);
        return hy_fail_prefix("loss_rl");
    }
    const double lo = 1.0 - o->clip_low, hi = 1.0 + o->clip_high;
    double total = 0.0;
    for (int s = 0; s < tok->n_seqs; s++) {
        const double A = in->adv[s];
        int n = 0;
        for (int t = tok->cu_seqlens[s]; t < tok->cu_seqlens[s + 1]; t++) {
            dlogp[t] = 0.0f;
            if (!active[t]) continue;
            n++;
            const double lp = tok->logp[t];
            // without old_logp the behaviour policy is the current one (one update per batch): ρ = 1
            // in value, and its slope dρ/dlogp = ρ = 1 is what exp(logp − stop_grad(logp)) gives
            const double old = in->old_logp ? in->old_logp[t] : lp;
            const double ratio = exp(lp - old);
            // the unclipped term wins the min unless the clip binds: A > 0 above hi, A < 0 below lo;
            // there the loss is constant in logp (zero gradient)
            const double unclipped = ratio * A, clipped = fmin(fmax(ratio, lo), hi) * A;
            double pg, dpg;
            if (unclipped <= clipped) {
                pg = -unclipped;
                dpg = -unclipped;  // d(−ρA)/dlogp = −ρA
            } else {
                pg = -clipped;
                dpg = 0.0;
                if (A > 0.0)
                    st.clip_high_frac++;
                else
                    st.clip_low_frac++;
            }
            // truncated importance weight of the learner's behaviour logprob over the rollout
            // engine's: a constant factor (detached), so it scales the gradient without adding terms
            double w = 1.0;
            if (in->rollout_logp) {
                const double x = old - in->rollout_logp[t], raw = exp(x);
                w = fmin(raw, o->is_cap);
                st.is_capped_frac += raw > o->is_cap;
                st.mismatch_kl += raw - x - 1.0;
            }
            double l = w * pg, dl = w * dpg;
            st.pg_loss += scale[t] * l;
            if (in->ref_logp) {
                const double d = in->ref_logp[t] - lp, e = exp(d), k3 = e - d - 1.0;
                st.ref_kl += k3;
                if (o->kl_coef > 0.0) {
                    l += o->kl_coef * k3;
                    dl += o->kl_coef * (1.0 - e);  // d(e^d − d − 1)/dlogp with dd/dlogp = −1
                    st.kl_loss += scale[t] * o->kl_coef * k3;
                }
            }
            total += scale[t] * l;
            dlogp[t] = (float)(scale[t] * dl);
            st.ratio_mean += ratio;
            st.is_weight_mean += w;
            st.adv_mean += A;
        }
        st.n_tokens += n;
        st.n_seqs += n > 0;
    }
    if (st.n_tokens > 0) {
        const double n = st.n_tokens;
        st.clip_low_frac /= n;
        st.clip_high_frac /= n;
        st.ratio_mean /= n;
        st.is_weight_mean /= n;
        st.is_capped_frac /= n;
        st.mismatch_kl /= n;
        st.ref_kl /= n;
        st.adv_mean /= n;
    }
    free(active);
    free(scale);
    *loss = total;
    if (stats) *stats = st;
    return 0;
}
