// Direct preference optimisation on the learner: preference-pair data, the step, and the loop task.
//
// Each pair becomes two sequences of one hy_dataset — 2p = prompt + chosen, 2p + 1 = prompt +
// rejected — with the mask on response tokens only, so π_c and π_r are the summed logprobs of the
// responses (loss_dpo, learner/losses.h). A pair is packed whole into one micro-batch
// (unit_batch.h): its loss needs both sums before any gradient exists. The loss is normalised by
// the pairs of the whole step, so micro-batches add up to one batch. The reference's summed
// logprobs come from ref_logprobs.h, computed once before training.
//
// JSONL lines (docs/learner.md): {"prompt": text | messages, "chosen": text | messages, "rejected":
// ...}, "prompt" optional when chosen and rejected are conversations, or {"prompt_tokens",
// "chosen_tokens", "rejected_tokens"}. With a conversation prompt a text response is the content of
// an assistant turn; a conversation response trains its assistant turns' content and <|im_end|>
// (as sft's train-on assistant). Every line is validated before training (file:line and field).
#ifndef HY_DPO_H
#define HY_DPO_H

#include <stdint.h>

#include "../model/tokenizer.h"
#include "losses.h"
#include "sft_loop.h"
#include "trainer.h"
#include "unit_batch.h"

typedef struct {
    int max_seq_len;  // 0 = no limit; each sequence keeps its first max_seq_len tokens
    int max_tokens;   // 0 = no limit; a pair (both sequences) longer than this is an error
    int vocab;
} hy_dpo_data_options;

typedef struct {
    hy_dataset ds;   // 2·n_pairs sequences: chosen, rejected, chosen, ...
    int n_pairs;
    int n_dropped;   // pairs with an empty response after cutting
    int n_truncated; // sequences cut to max_seq_len
} hy_dpo_data;

// Reads and validates every line of path. 0 / −1 (message names file:line and field; d empty then).
int hy_dpo_data_load(hy_dpo_data *d, const char *path, const hy_tokenizer *tok, const hy_dpo_data_options *o);
// Adds one pair from token arrays (tests). Responses are fully trained.
void hy_dpo_data_add(hy_dpo_data *d, const int32_t *prompt, int n_prompt, const int32_t *chosen, int n_chosen,
                     const int32_t *rejected, int n_rejected);
void hy_dpo_data_init(hy_dpo_data *d);
void hy_dpo_data_free(hy_dpo_data *d);

typedef struct {
    hy_trainer *t;
    const hy_dpo_data *d;
    double *ref_seq;       // (2·n_pairs) reference Σ mask·logp per sequence (hy_dpo_set_reference)
    loss_dpo_opts loss;    // kind, beta, label_smoothing (n_global is set per step)
    int micro_tokens;      // token budget per micro-batch; 0 = the whole step at once
    hy_unit_batch ub;      // the prepared step
    loss_dpo_stats stats;  // of the last gradient pass, combined over micro-batches
} hy_dpo_stepper;

void hy_dpo_stepper_init(hy_dpo_stepper *x, hy_trainer *t, const hy_dpo_data *d, const loss_dpo_opts *loss,
                         int micro_tokens);
void hy_dpo_stepper_free(hy_dpo_stepper *x);
// ref_tok (ds.total): per-token reference logprobs (ref_logprobs.h) → the per-sequence sums.
void hy_dpo_set_reference(hy_dpo_stepper *x, const float *ref_tok);
// Packs pairs[0..k) for a step.
void hy_dpo_prepare(hy_dpo_stepper *x, const int *pairs, int k);
// hy_logp_loss_fn for the prepared step (ctx = the stepper); adds to x->stats.
int hy_dpo_loss_fn(void *ctx, int i, const hy_micro_batch *mb, const float *logp, float *dlogp, double *loss);
// One optimizer step over the prepared pairs at rate lr; x->stats has the step's DPO stats.
int hy_dpo_step(hy_dpo_stepper *x, double lr, hy_step_stats *st);
// The loop task (sft_loop.h) over the pairs: metrics add reward accuracy, margin, chosen/rejected rewards.
hy_loop_task hy_dpo_loop_task(hy_dpo_stepper *x);

#endif
