// The learner's losses over per-token logprobs: SFT, DPO and RL (GRPO-style PPO-clip), each with
// its exact gradient with respect to every token's logprob.
//
// Pure host code. A loss reads the current policy's logprob of each target token (from
// lm_token_logprobs, learner/lm_loss.h) plus what it needs, and writes dlogp (T), the derivative of
// the returned loss with respect to each logp, which lm_logprobs_backward pushes through the lm
// head. Sums are in double; dlogp is rounded to fp32 once, at the end, because that is what the
// backend takes.
//
// Normalisation is by counts the caller passes in (loss_normaliser): the count over the whole
// optimizer step — every micro-batch on every rank — not over this call. Then summing the
// gradients of the micro-batches gives exactly the gradient of one big batch, whatever the split.
// docs/learner.md has the formulas, the defaults and where each default comes from.
//
// Errors: the inputs are data (rewards, rollouts, datasets), so a bad one (NaN, an index out of
// range, a zero normaliser, a negative count) is refused with −1 and an hy_fail message naming the
// field and the position; nothing is written then. Values at positions whose mask is 0 are never
// read (the rollout engine has no logprob for prompt tokens, for example).
#ifndef HY_LOSSES_H
#define HY_LOSSES_H

#include <stdint.h>

// Tokens of n_seqs sequences laid end to end (the packed-batch layout of model.h). Position t is
// a prediction: logp[t] = log π(target[t] | tokens ..t), with the targets given to
// lm_token_logprobs; mask[t] = 1 puts it in the loss, and requires a target there.
typedef struct {
    int T, n_seqs;
    const int32_t *cu_seqlens;  // (n_seqs + 1): sequence s is [cu_seqlens[s], cu_seqlens[s+1]); 0 … T
    const float *logp;          // (T) current policy
    const uint8_t *mask;        // (T) 1 = in the loss (response / assistant tokens), 0 = ignored
} loss_tokens;

// 0 when the layout is consistent (T, n_seqs ≥ 0; cu_seqlens starts at 0, never decreases, ends at
// T; masks 0/1; logp finite where masked); −1 with a message otherwise. Every loss runs it.
int loss_tokens_check(const loss_tokens *tok);

// out (n_seqs) = Σ mask·values over each sequence's tokens, in double: a sequence's summed logprob
// (e.g. the reference model's, for DPO). values (T), read only where masked; tok must pass
// loss_tokens_check (this helper does not check).
void loss_seq_sums(const loss_tokens *tok, const float *values, double *out);

// How the summed per-token losses are divided.
typedef enum {
    LOSS_NORM_TOKEN = 0,     // Σ_t ℓ_t / n_global, n_global = contributing tokens in the step
    LOSS_NORM_SEQUENCE = 1,  // Σ_s (mean of ℓ_t over s's tokens) / n_global, n_global = sequences
    LOSS_NORM_CONSTANT = 2,  // Σ_t ℓ_t / (n_global · max_tokens), n_global = sequences (Dr.GRPO)
} loss_norm_kind;

typedef struct {
    loss_norm_kind kind;
    double n_global;  // > 0 and at least this call's own count
    int max_tokens;   // LOSS_NORM_CONSTANT only: the generation budget per sequence (> 0)
} loss_normaliser;

// ---- SFT: masked token cross-entropy ----------------------------------------------------------
typedef struct {
    int n_tokens, n_seqs;  // contributing tokens, and sequences with at least one
    double nll_sum;        // Σ −logp over them: perplexity over micro-batches is exp(Σ nll_sum / Σ n_tokens)
} loss_sft_stats;

// loss = Σ_t mask·(−logp) normalised by norm. dlogp (T) =. stats may be NULL. Returns 0 / −1.
int loss_sft(const loss_tokens *tok, const loss_normaliser *norm, double *loss, float *dlogp, loss_sft_stats *stats);

// ---- DPO ---------------------------------------------------------------------------------------
typedef enum {
    LOSS_DPO_SIGMOID = 0,  // h = β·((πc − rc) − (πr − rr))
    LOSS_DPO_NORM = 1,     // h = β·((πc − rc)/|c| − (πr − rr)/|r|), |·| the response token count
} loss_dpo_kind;

typedef struct {
    loss_dpo_kind kind;
    double beta;             // > 0; default 0.1 (sigmoid) / 5 (norm)
    double label_smoothing;  // ε in [0, 0.5): conservative DPO; 0 = plain DPO
    double n_global;         // pairs in the step (> 0)
} loss_dpo_opts;

void loss_dpo_opts_default(loss_dpo_opts *o, loss_dpo_kind kind, double n_global);

// Pairs over the sequences of a loss_tokens; π is Σ mask·logp of a sequence. A sequence may be in
// several pairs (one chosen against several rejected, say); its gradients add up.
typedef struct {
    int n_pairs;
    const int32_t *chosen, *rejected;  // (n_pairs) sequence indices, chosen[i] ≠ rejected[i]
    const double *ref_logp;            // (n_seqs) reference model's Σ mask·logp per sequence (loss_seq_sums)
} loss_dpo_pairs;

typedef struct {
    int n_pairs;
    double reward_accuracy;                    // fraction of pairs with chosen reward > rejected reward
    double margin_mean;                        // mean of chosen − rejected reward
    double chosen_reward_mean, rejected_reward_mean;  // reward = β·log-ratio (per token for NORM)
} loss_dpo_stats;

// loss = Σ_pairs −[(1−ε)·log σ(h) + ε·log σ(−h)] / n_global. dlogp (T) =. Returns 0 / −1.
int loss_dpo(const loss_tokens *tok, const loss_dpo_pairs *pairs, const loss_dpo_opts *o, double *loss, float *dlogp,
             loss_dpo_stats *stats);

// ---- RL: group advantages ----------------------------------------------------------------------
typedef enum {
    LOSS_ADV_GRPO = 0,     // A = (r − mean_g) / (std_g + eps), std_g the sample std (N − 1)
    LOSS_ADV_DR_GRPO = 1,  // A = r − mean_g
} loss_adv_kind;

typedef struct {
    int n_groups, n_dropped_groups, n_dropped_seqs;
    double reward_mean;  // over all sequences
} loss_adv_stats;

// Advantages of n_seqs sequences from their rewards (n_seqs) and group ids (n_seqs, ≥ 0; members of
// a group need not be adjacent). A group whose rewards are all equal (one member included) carries
// no signal: its sequences get adv 0 and keep 0. Run it over whole groups, before splitting into
// micro-batches. eps (≥ 0; default 1e-6) is used by GRPO only. adv, keep (n_seqs) =; stats may be
// NULL. Returns 0 / −1.
int loss_rl_advantages(int n_seqs, const double *reward, const int32_t *group, loss_adv_kind kind, double eps,
                       double *adv, uint8_t *keep, loss_adv_stats *stats);

// ---- RL: PPO-clip with truncated importance sampling -------------------------------------------
typedef enum {
    LOSS_STALE_DROP = 0,  // stale tokens leave the loss (mask 0)
    LOSS_STALE_KEEP = 1,  // stale tokens stay, corrected by the importance weight (needs rollout_logp)
} loss_stale_policy;

typedef struct {
    double clip_low, clip_high;  // ratio clipped to [1 − clip_low, 1 + clip_high]; 0.2 / 0.28
    double is_cap;               // truncated importance weight cap (> 0); 2
    double kl_coef;              // k3 KL to the reference (≥ 0); 0 = off
    int current_version;         // the learner's weight version now
    int max_staleness;           // with version: tokens older than current_version − max_staleness are stale
    loss_stale_policy stale;     // LOSS_STALE_DROP
    loss_normaliser norm;        // LOSS_NORM_TOKEN (DAPO)
} loss_rl_opts;

// The defaults above with the given normaliser count (tokens for LOSS_NORM_TOKEN).
void loss_rl_opts_default(loss_rl_opts *o, double n_global);

// Per-token and per-sequence inputs beside loss_tokens. Optional arrays are NULL when absent.
typedef struct {
    const float *old_logp;      // (T) learner's logp under the behaviour weights; NULL: = logp, detached
    const float *rollout_logp;  // (T) the rollout engine's logp of the same tokens; NULL: no IS correction
    const float *ref_logp;      // (T) reference model's logp; required when kl_coef > 0
    const int32_t *version;     // (T) weight version that generated each token; NULL: none is stale
    const double *adv;          // (n_seqs) advantage of each sequence (loss_rl_advantages)
    const uint8_t *keep;        // (n_seqs) 0 = sequence left out (dropped group); NULL: all kept
} loss_rl_inputs;

typedef struct {
    int n_tokens, n_seqs;        // contributing tokens, and sequences with at least one
    int n_dropped_tokens;        // masked tokens of sequences with keep 0
    int n_stale_tokens;          // masked tokens of kept sequences that are stale (dropped or kept per policy)
    double clip_low_frac;        // fraction of contributing tokens with A < 0, ratio < 1 − clip_low (no gradient)
    double clip_high_frac;       // fraction with A > 0, ratio > 1 + clip_high (no gradient)
    double ratio_mean;           // mean of exp(logp − old_logp)
    double is_weight_mean;       // mean truncated importance weight (1 without rollout_logp)
    double is_capped_frac;       // fraction whose weight hit the cap
    double mismatch_kl;          // mean k3 estimate of KL(rollout ‖ learner) from old_logp vs rollout_logp
    double ref_kl;               // mean k3 estimate of KL(π ‖ ref) (0 without ref_logp)
    double adv_mean;             // mean advantage over contributing tokens
    double pg_loss, kl_loss;     // the two terms of the returned loss (already normalised)
} loss_rl_stats;

// Tokens and sequences that contribute to loss_rl under these inputs and options: what the caller
// sums over micro-batches and ranks to get opts->norm.n_global. Returns 0 / −1.
int loss_rl_count(const loss_tokens *tok, const loss_rl_inputs *in, const loss_rl_opts *o, int *n_tokens,
                  int *n_seqs);

// Per contributing token t of sequence s (ratio ρ = exp(logp − old_logp), A = adv[s]):
//   ℓ_t = w_t·(−min(ρ·A, clip(ρ, 1 − clip_low, 1 + clip_high)·A)) + kl_coef·k3_t,
//   w_t = min(exp(old_logp − rollout_logp), is_cap) (detached), k3_t = exp(ref − logp) − (ref − logp) − 1,
// normalised by o->norm. dlogp (T) =; stats may be NULL. Returns 0 / −1.
int loss_rl(const loss_tokens *tok, const loss_rl_inputs *in, const loss_rl_opts *o, double *loss, float *dlogp,
            loss_rl_stats *stats);

#endif
