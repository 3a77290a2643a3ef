// Offline RL data, step and loop task (see rl.h).
#include "rl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/jsonl.h"
#include "json_fields.h"
#include "ref_logprobs.h"

void hy_rl_data_init(hy_rl_data *d) {
    memset(d, 0, sizeof *d);
    hy_dataset_init(&d->ds);
}

void hy_rl_data_free(hy_rl_data *d) {
    hy_dataset_free(&d->ds);
    free(d->rollout_logp);
    free(d->version);
    free(d->reward);
    free(d->group);
    free(d->group_of);
    free(d->prompt_len);
    free(d->group_start);
    free(d->group_seqs);
    memset(d, 0, sizeof *d);
}

void hy_rl_data_add(hy_rl_data *d, int group, const int32_t *prompt, int n_prompt, const int32_t *completion,
                    int n_completion, const uint8_t *gen_mask, const float *rollout_logp, const int32_t *version,
                    double reward) {
    hy_token_buf b = {0};
    hy_token_buf_append(&b, prompt, n_prompt, 0);
    hy_token_buf_append(&b, completion, n_completion, 1);
    if (gen_mask)
        for (int j = 0; j < n_completion; j++) b.mask[n_prompt + j] = gen_mask[j] != 0;
    const int64_t at = d->ds.total;
    hy_dataset_add(&d->ds, b.ids, b.mask, b.n);
    const int n = d->ds.n;
    d->reward = hy_realloc(d->reward, sizeof *d->reward * (size_t)n);
    d->group = hy_realloc(d->group, sizeof *d->group * (size_t)n);
    d->prompt_len = hy_realloc(d->prompt_len, sizeof *d->prompt_len * (size_t)n);
    d->rollout_logp = hy_realloc(d->rollout_logp, sizeof *d->rollout_logp * (size_t)d->ds.total);
    d->version = hy_realloc(d->version, sizeof *d->version * (size_t)d->ds.total);
    d->reward[n - 1] = reward;
    d->group[n - 1] = group;
    d->prompt_len[n - 1] = n_prompt;
    for (int i = 0; i < b.n; i++) {
        const int j = i - n_prompt;
        const int gen = j >= 0 && b.mask[i];
        d->rollout_logp[at + i] = gen && rollout_logp ? rollout_logp[j] : 0.0f;
        d->version[at + i] = gen ? (version ? version[j] : 0) : -1;
        if (gen && d->version[at + i] > d->max_version) d->max_version = d->version[at + i];
    }
    if (n_completion > d->max_completion) d->max_completion = n_completion;
    hy_token_buf_free(&b);
}

static int cmp_int2(const void *a, const void *b) {
    const int *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] > y[1]) - (x[1] < y[1]);
}

void hy_rl_data_finish(hy_rl_data *d) {
    const int n = d->ds.n;
    int *pairs = hy_malloc(sizeof *pairs * 2 * (size_t)(n + 1));
    for (int s = 0; s < n; s++) {
        pairs[2 * s] = d->group[s];
        pairs[2 * s + 1] = s;
    }
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, cmp_int2);
    free(d->group_of);
    free(d->group_start);
    free(d->group_seqs);
    d->group_of = hy_malloc(sizeof *d->group_of * (size_t)(n + 1));
    d->group_start = hy_malloc(sizeof *d->group_start * (size_t)(n + 1));
    d->group_seqs = hy_malloc(sizeof *d->group_seqs * (size_t)(n + 1));
    d->n_groups = 0;
    for (int k = 0; k < n; k++) {
        if (k == 0 || pairs[2 * k] != pairs[2 * k - 2]) d->group_start[d->n_groups++] = k;
        d->group_seqs[k] = pairs[2 * k + 1];
        d->group_of[pairs[2 * k + 1]] = d->n_groups - 1;
    }
    d->group_start[d->n_groups] = n;
    free(pairs);
    uint64_t h = hy_hash_bytes(0, &d->ds.hash, sizeof d->ds.hash);
    h = hy_hash_bytes(h, d->reward, sizeof *d->reward * (size_t)n);
    h = hy_hash_bytes(h, d->group, sizeof *d->group * (size_t)n);
    h = hy_hash_bytes(h, d->rollout_logp, sizeof *d->rollout_logp * (size_t)d->ds.total);
    h = hy_hash_bytes(h, d->version, sizeof *d->version * (size_t)d->ds.total);
    d->hash = h;
}

// Per-completion-token array field of a line: numbers (or null where the token is not generated).
static int read_token_values(const json_t *obj, const char *where, const char *field, int n, const uint8_t *gen,
                             int integer, double *out) {
    const json_t *v = json_object_get(obj, field);
    if (!json_is_array(v) || (int)json_array_size(v) != n)
        return hy_fail("%s: field '%s' must be an array of %d values (one per completion token)", where, field, n);
    for (int j = 0; j < n; j++) {
        const json_t *x = json_array_get(v, (size_t)j);
        if (!gen[j] && (json_is_null(x) || json_is_number(x))) {
            out[j] = 0.0;
            continue;
        }
        if (integer ? !json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX
                    : !json_is_number(x) || !isfinite(json_number_value(x)))
            return hy_fail("%s: field '%s'[%d] must be %s", where, field, j,
                           integer ? "a non-negative integer" : "a finite number");
        out[j] = json_number_value(x);
    }
    return 0;
}

// One line, validated, appended to d.
static int read_trajectory(hy_rl_data *d, const json_t *obj, const hy_rl_data_options *o, const char *where) {
    hy_token_buf p = {0}, c = {0};
    uint8_t *gen = NULL;
    double *vals = NULL;
    float *lp = NULL;
    int32_t *ver = NULL;
    long group, wv = 0;
    double reward;
    int rc = -1;
    if (hy_json_int(obj, where, "group", 0, INT32_MAX, &group) || hy_json_number(obj, where, "reward", &reward) ||
        hy_json_token_ids(json_object_get(obj, "prompt_tokens"), where, "prompt_tokens", o->vocab, &p, 0) ||
        hy_json_token_ids(json_object_get(obj, "completion_tokens"), where, "completion_tokens", o->vocab, &c, 1))
        goto done;
    const int n = c.n;
    gen = hy_malloc((size_t)n);
    vals = hy_malloc(sizeof *vals * (size_t)n);
    lp = hy_malloc(sizeof *lp * (size_t)n);
    ver = hy_malloc(sizeof *ver * (size_t)n);
    const json_t *gm = json_object_get(obj, "generated_mask");
    for (int j = 0; j < n; j++) gen[j] = 1;
    if (gm) {
        if (!json_is_array(gm) || (int)json_array_size(gm) != n) {
            hy_fail("%s: field 'generated_mask' must be an array of %d 0/1 values (one per completion token)", where, n);
            goto done;
        }
        for (int j = 0; j < n; j++) {
            const json_t *x = json_array_get(gm, (size_t)j);
            const json_int_t v = json_is_integer(x) ? json_integer_value(x) : -1;
            if (v != 0 && v != 1) {
                hy_fail("%s: field 'generated_mask'[%d] must be 0 or 1", where, j);
                goto done;
            }
            gen[j] = (uint8_t)v;
        }
    }
    if (read_token_values(obj, where, "rollout_logprobs", n, gen, 0, vals)) goto done;
    for (int j = 0; j < n; j++) lp[j] = (float)vals[j];
    const json_t *vs = json_object_get(obj, "versions");
    if (vs && json_object_get(obj, "weight_version")) {
        hy_fail("%s: fields 'weight_version' and 'versions': give one, not both", where);
        goto done;
    }
    if (vs) {
        if (read_token_values(obj, where, "versions", n, gen, 1, vals)) goto done;
        for (int j = 0; j < n; j++) ver[j] = (int32_t)vals[j];
    } else {
        if (!json_object_get(obj, "weight_version")) {
            hy_fail("%s: field 'weight_version' (or per-token 'versions') is missing", where);
            goto done;
        }
        if (hy_json_int(obj, where, "weight_version", 0, INT32_MAX, &wv)) goto done;
        for (int j = 0; j < n; j++) ver[j] = (int32_t)wv;
    }
    const int len = p.n + n;
    if ((o->max_seq_len > 0 && len > o->max_seq_len) || (o->max_tokens > 0 && len > o->max_tokens)) {
        const int lim = o->max_seq_len > 0 && (o->max_tokens <= 0 || o->max_seq_len < o->max_tokens) ? o->max_seq_len
                                                                                                       : o->max_tokens;
        hy_fail("%s: trajectory of %d tokens is longer than %d (max-seq-len / micro-batch-tokens); trajectories are "
                "not cut, since a reward belongs to the whole completion",
                where, len, lim);
        goto done;
    }
    hy_rl_data_add(d, (int)group, p.ids, p.n, c.ids, n, gen, lp, ver, reward);
    rc = 0;
done:
    hy_token_buf_free(&p);
    hy_token_buf_free(&c);
    free(gen);
    free(vals);
    free(lp);
    free(ver);
    return rc;
}

typedef struct {
    hy_rl_data *d;
    const hy_rl_data_options *o;
} rl_load_ctx;

static int rl_load_line(json_t *obj, const char *where, void *ctx) {
    rl_load_ctx *c = ctx;
    return read_trajectory(c->d, obj, c->o, where);
}

int hy_rl_data_load(hy_rl_data *d, const char *path, const hy_rl_data_options *o) {
    hy_rl_data_init(d);
    rl_load_ctx c = {d, o};
    long lines;
    int rc = hy_jsonl_each(path, rl_load_line, &c, &lines);
    if (!rc && d->ds.n == 0) rc = hy_fail("%s: empty input (no JSON lines)", path);
    if (rc) {
        hy_rl_data_free(d);
        return -1;
    }
    hy_rl_data_finish(d);
    return 0;
}

void hy_rl_options_default(hy_rl_options *o) {
    memset(o, 0, sizeof *o);
    o->advantage = LOSS_ADV_GRPO;
    o->adv_eps = 1e-6;
    loss_rl_opts_default(&o->loss, 1.0);
    o->use_rollout_logp = 1;
    o->ppo_epochs = 1;
}

void hy_rl_stepper_init(hy_rl_stepper *x, hy_trainer *t, const hy_rl_data *d, const float *ref_tok,
                        const hy_rl_options *o, int micro_tokens) {
    memset(x, 0, sizeof *x);
    x->t = t;
    x->d = d;
    x->ref_tok = ref_tok;
    x->o = *o;
    if (x->o.loss.norm.kind == LOSS_NORM_CONSTANT && x->o.loss.norm.max_tokens <= 0)
        x->o.loss.norm.max_tokens = d->max_completion;
    x->micro_tokens = micro_tokens;
    x->adv = hy_calloc((size_t)d->ds.n + 1, sizeof *x->adv);
    x->keep = hy_calloc((size_t)d->ds.n + 1, 1);
}

void hy_rl_stepper_free(hy_rl_stepper *x) {
    for (int i = 0; i < x->n_old; i++) free(x->old[i]);
    free(x->old);
    free(x->old_cap);
    free(x->adv);
    free(x->keep);
    hy_unit_batch_free(&x->ub);
    memset(x, 0, sizeof *x);
}

// Per-position inputs of micro-batch i: position t predicts token k + 1 of its sequence, so the
// per-token arrays are read one token ahead.
typedef struct {
    uint8_t *mask;
    float *rollout, *ref, *zero;
    int32_t *version;
    double *adv;
    uint8_t *keep;
} micro_inputs;

static void inputs_build(const hy_rl_stepper *x, int i, const hy_micro_batch *mb, micro_inputs *in) {
    const hy_rl_data *d = x->d;
    const size_t T = (size_t)mb->T + 1, D = (size_t)mb->n_docs + 1;
    in->mask = hy_calloc(T, 1);
    in->rollout = hy_calloc(T, sizeof(float));
    in->ref = hy_calloc(T, sizeof(float));
    in->zero = hy_calloc(T, sizeof(float));
    in->version = hy_calloc(T, sizeof(int32_t));
    in->adv = hy_calloc(D, sizeof(double));
    in->keep = hy_calloc(D, 1);
    for (int doc = 0; doc < mb->n_docs; doc++) {
        const int s = x->ub.doc_seq[i][doc];
        in->adv[doc] = x->adv[s];
        in->keep[doc] = x->keep[s];
        for (int t = mb->cu_seqlens[doc]; t < mb->cu_seqlens[doc + 1]; t++) {
            in->mask[t] = mb->targets[t] >= 0;
            if (!in->mask[t]) continue;
            const int64_t j = d->ds.start[s] + (t - mb->cu_seqlens[doc]) + 1;
            in->rollout[t] = d->rollout_logp[j];
            in->version[t] = d->version[j];
            if (x->ref_tok) in->ref[t] = x->ref_tok[j];
        }
    }
}

static void inputs_free(micro_inputs *in) {
    free(in->mask);
    free(in->rollout);
    free(in->ref);
    free(in->zero);
    free(in->version);
    free(in->adv);
    free(in->keep);
}

static loss_rl_inputs rl_inputs(const hy_rl_stepper *x, const micro_inputs *in, const float *old) {
    return (loss_rl_inputs){old, x->o.use_rollout_logp ? in->rollout : NULL, x->ref_tok ? in->ref : NULL,
                            x->o.use_versions ? in->version : NULL, in->adv, in->keep};
}

int hy_rl_prepare(hy_rl_stepper *x, const int *seqs, int n, int current_version) {
    const hy_rl_data *d = x->d;
    // whole groups only
    int *seen = hy_calloc((size_t)d->n_groups + 1, sizeof *seen);
    for (int k = 0; k < n; k++) seen[d->group_of[seqs[k]]]++;
    for (int k = 0; k < n; k++) {
        const int g = d->group_of[seqs[k]], size = d->group_start[g + 1] - d->group_start[g];
        if (seen[g] != size) {
            const int have = seen[g];
            free(seen);
            return hy_fail("RL step: group %d has %d trajectories, the step holds %d of them: a step takes whole "
                           "groups (advantages are relative to the group's mean)",
                           d->group[seqs[k]], size, have);
        }
    }
    free(seen);
    double *reward = hy_malloc(sizeof *reward * (size_t)(n + 1)), *adv = hy_malloc(sizeof *adv * (size_t)(n + 1));
    int32_t *group = hy_malloc(sizeof *group * (size_t)(n + 1));
    uint8_t *keep = hy_malloc((size_t)n + 1);
    int *start = hy_malloc(sizeof *start * (size_t)(n + 1));
    for (int k = 0; k < n; k++) {
        reward[k] = d->reward[seqs[k]];
        group[k] = d->group_of[seqs[k]];
        start[k] = k;
    }
    start[n] = n;
    memset(&x->stats, 0, sizeof x->stats);
    int rc = loss_rl_advantages(n, reward, group, x->o.advantage, x->o.adv_eps, adv, keep, &x->stats.adv);
    for (int k = 0; k < n && !rc; k++) {
        x->adv[seqs[k]] = adv[k];
        x->keep[seqs[k]] = keep[k];
    }
    free(reward);
    free(adv);
    free(group);
    free(keep);
    if (rc) {
        free(start);
        return hy_fail_prefix("RL advantages");
    }
    hy_pack_units(&d->ds, seqs, start, n, x->micro_tokens, &x->ub);
    free(start);
    x->o.loss.current_version = current_version;
    // the step-wide normaliser: counts of every micro-batch first
    x->o.loss.norm.n_global = 1.0;
    int tokens = 0, nseq = 0;
    for (int i = 0; i < x->ub.sb.n && !rc; i++) {
        const hy_micro_batch *mb = &x->ub.sb.mb[i];
        micro_inputs in;
        inputs_build(x, i, mb, &in);
        const loss_tokens tok = {mb->T, mb->n_docs, mb->cu_seqlens, in.zero, in.mask};
        const loss_rl_inputs ri = rl_inputs(x, &in, NULL);
        int nt, ns;
        rc = loss_rl_count(&tok, &ri, &x->o.loss, &nt, &ns);
        tokens += nt;
        nseq += ns;
        inputs_free(&in);
    }
    if (rc) return hy_fail_prefix("RL step");
    x->stats.n_tokens = tokens;
    x->stats.n_seqs = nseq;
    x->o.loss.norm.n_global = x->o.loss.norm.kind == LOSS_NORM_TOKEN ? tokens : nseq;
    // old logprobs buffers, one per micro-batch
    if (x->ub.sb.n > x->n_old) {
        x->old = hy_realloc(x->old, sizeof *x->old * (size_t)x->ub.sb.n);
        x->old_cap = hy_realloc(x->old_cap, sizeof *x->old_cap * (size_t)x->ub.sb.n);
        for (int i = x->n_old; i < x->ub.sb.n; i++) {
            x->old[i] = NULL;
            x->old_cap[i] = 0;
        }
        x->n_old = x->ub.sb.n;
    }
    for (int i = 0; i < x->ub.sb.n; i++)
        if (x->ub.sb.mb[i].T > x->old_cap[i]) {
            x->old_cap[i] = x->ub.sb.mb[i].T;
            x->old[i] = hy_realloc(x->old[i], sizeof *x->old[i] * (size_t)x->old_cap[i]);
        }
    x->pass = 0;
    return 0;
}

int hy_rl_loss_fn(void *ctx, int i, const hy_micro_batch *mb, const float *logp, float *dlogp, double *loss) {
    hy_rl_stepper *x = ctx;
    micro_inputs in;
    inputs_build(x, i, mb, &in);
    if (x->pass == 0) memcpy(x->old[i], logp, sizeof *logp * (size_t)mb->T);
    const loss_tokens tok = {mb->T, mb->n_docs, mb->cu_seqlens, logp, in.mask};
    const loss_rl_inputs ri = rl_inputs(x, &in, x->pass == 0 ? NULL : x->old[i]);
    loss_rl_stats st;
    const int rc = loss_rl(&tok, &ri, &x->o.loss, loss, dlogp, &st);
    if (!rc) {
        // token-weighted sums here, divided in hy_rl_step
        loss_rl_stats *a = &x->stats.rl;
        const double w = st.n_tokens;
        a->n_tokens += st.n_tokens;
        a->n_seqs += st.n_seqs;
        a->clip_low_frac += st.clip_low_frac * w;
        a->clip_high_frac += st.clip_high_frac * w;
        a->ratio_mean += st.ratio_mean * w;
        a->is_weight_mean += st.is_weight_mean * w;
        a->is_capped_frac += st.is_capped_frac * w;
        a->mismatch_kl += st.mismatch_kl * w;
        a->ref_kl += st.ref_kl * w;
        a->adv_mean += st.adv_mean * w;
        if (x->pass == 0) {
            a->n_dropped_tokens += st.n_dropped_tokens;
            a->n_stale_tokens += st.n_stale_tokens;
            a->pg_loss += st.pg_loss;
            a->kl_loss += st.kl_loss;
        }
    }
    inputs_free(&in);
    return rc ? hy_fail_prefix("RL loss, micro-batch %d", i) : 0;
}

int hy_rl_step(hy_rl_stepper *x, double lr, hy_step_stats *st) {
    memset(st, 0, sizeof *st);
    memset(&x->stats.rl, 0, sizeof x->stats.rl);
    x->stats.updates = 0;
    if (x->o.loss.norm.n_global <= 0) {
        // every group dropped or every token stale: nothing to learn from, no update
        st->tokens = x->ub.sb.tokens;
        st->sequences = x->ub.sb.sequences;
        st->micro_batches = x->ub.sb.n;
        return 0;
    }
    for (x->pass = 0; x->pass < x->o.ppo_epochs; x->pass++) {
        hy_step_stats one;
        if (hy_trainer_step_custom(x->t, &x->ub.sb, hy_rl_loss_fn, x, lr, &one)) return -1;
        if (x->pass == 0) {
            *st = one;
        } else {
            st->tokens += one.tokens;
            st->micro_batches += one.micro_batches;
            st->skipped |= one.skipped;
        }
        x->stats.updates++;
    }
    loss_rl_stats *a = &x->stats.rl;
    // data-parallel: each rank saw only its micro-batches' tokens
    double sums[14] = {a->n_tokens,     a->n_seqs,         a->n_dropped_tokens, a->n_stale_tokens, a->clip_low_frac,
                       a->clip_high_frac, a->ratio_mean,    a->is_weight_mean,   a->is_capped_frac, a->mismatch_kl,
                       a->ref_kl,       a->adv_mean,       a->pg_loss,          a->kl_loss};
    if (hy_trainer_sum_over_ranks(x->t, sums, 14)) return -1;
    a->n_tokens = (int)sums[0];
    a->n_seqs = (int)sums[1];
    a->n_dropped_tokens = (int)sums[2];
    a->n_stale_tokens = (int)sums[3];
    a->clip_low_frac = sums[4];
    a->clip_high_frac = sums[5];
    a->ratio_mean = sums[6];
    a->is_weight_mean = sums[7];
    a->is_capped_frac = sums[8];
    a->mismatch_kl = sums[9];
    a->ref_kl = sums[10];
    a->adv_mean = sums[11];
    a->pg_loss = sums[12];
    a->kl_loss = sums[13];
    if (a->n_tokens > 0) {
        const double w = a->n_tokens;
        a->clip_low_frac /= w;
        a->clip_high_frac /= w;
        a->ratio_mean /= w;
        a->is_weight_mean /= w;
        a->is_capped_frac /= w;
        a->mismatch_kl /= w;
        a->ref_kl /= w;
        a->adv_mean /= w;
    }
    return 0;
}

static int rl_task_step(void *ctx, long s, const int *idx, int k, double lr, hy_step_stats *st, char *extra,
                        size_t n) {
    hy_rl_stepper *x = ctx;
    const hy_rl_data *d = x->d;
    int *seqs = hy_malloc(sizeof *seqs * (size_t)(d->ds.n + 1)), m = 0;
    for (int j = 0; j < k; j++)
        for (int q = d->group_start[idx[j]]; q < d->group_start[idx[j] + 1]; q++) seqs[m++] = d->group_seqs[q];
    int rc = hy_rl_prepare(x, seqs, m, x->o.start_version + (int)(s - 1));
    free(seqs);
    if (rc || (rc = hy_rl_step(x, lr, st))) return -1;
    const hy_rl_step_stats *r = &x->stats;
    snprintf(extra, n, ", \"groups\": %d, \"dropped_groups\": %d, \"trained_tokens\": %d, \"stale_tokens\": %d, "
             "\"updates\": %d",
             r->adv.n_groups, r->adv.n_dropped_groups, r->n_tokens, r->rl.n_stale_tokens, r->updates);
    hy_json_member_append(extra, n, "reward_mean", r->adv.reward_mean);
    hy_json_member_append(extra, n, "clip_low_frac", r->rl.clip_low_frac);
    hy_json_member_append(extra, n, "clip_high_frac", r->rl.clip_high_frac);
    hy_json_member_append(extra, n, "ratio_mean", r->rl.ratio_mean);
    hy_json_member_append(extra, n, "is_weight_mean", r->rl.is_weight_mean);
    hy_json_member_append(extra, n, "mismatch_kl", r->rl.mismatch_kl);
    hy_json_member_append(extra, n, "ref_kl", r->rl.ref_kl);
    return 0;
}

hy_loop_task hy_rl_loop_task(hy_rl_stepper *x) {
    return (hy_loop_task){x->d->n_groups, x->d->hash, "group", rl_task_step, x};
}
