// The SFT training loop: data order → packing → optimizer step → metrics → checkpoints.
//
// Each step takes the next batch_size sequences of the epoch's order (data_order.h), packs them
// into micro-batches under the token budget (packing.h) and makes one optimizer step over them at
// the schedule's rate (trainer.h, lr_schedule.h); metrics and progress go out per step
// (train_log.h), and to the loop's sink when it has one (the CLI's run store). Every save_every
// steps a checkpoint goes to save_dir/step-NNNNNN, and the final state to out (train_state.h). Resuming restores the trainer, the data order and the counters
// from a checkpoint made on the same data (size and hash), so the remaining steps see the same
// batches, rates and optimizer state as an uninterrupted run — bit for bit on the CPU backend.
#ifndef HY_SFT_LOOP_H
#define HY_SFT_LOOP_H

#include <stdint.h>
#include <stdio.h>

#include "lr_schedule.h"
#include "sft_data.h"
#include "train_log.h"
#include "trainer.h"

// Who else hears of a run besides the metrics and progress streams (the CLI's run store): each
// step's metrics (after its JSON line is written) and each checkpoint once it is saved. A sink
// cannot fail the run: it handles its own errors (training goes on).
typedef struct {
    void (*step)(void *ctx, long step, const hy_step_metrics *m);
    void (*checkpoint)(void *ctx, long step, const char *dir);
    void *ctx;
} hy_train_sink;

typedef struct {
    long steps;                 // optimizer steps in all, skipped ones included
    int batch_size;             // sequences per step; 0 = every sequence
    int micro_tokens;           // token budget per micro-batch; 0 = the whole step at once
    hy_loss_norm norm;
    hy_lr_schedule schedule;    // its total_steps is normally steps
    uint64_t seed;
    int shuffle;
    long save_every;            // 0 = only the final checkpoint
    const char *save_dir;       // needed when save_every > 0 (must exist)
    const char *out;            // the final checkpoint
    int no_final_save;          // 1: no final checkpoint (timing runs)
    const char *resume;         // checkpoint to continue from, or NULL
    const char *tokenizer_path; // copied into each checkpoint (may be NULL)
    const char *config_yaml;    // stored in each checkpoint as recipe.yaml (may be NULL)
    double peak_tflops;         // for the MFU column; 0 = none
    FILE *metrics, *progress;   // JSON lines, progress lines
    const hy_train_sink *sink;  // NULL = none
} hy_sft_loop;

// The same loop for other losses (DPO, RL): what the data order permutes (units: sequences, pairs,
// groups) and what one optimizer step over a batch of them does.
typedef struct {
    int n_units;
    uint64_t hash;          // of the data; a resumed run refuses other data
    const char *unit_name;  // "sequence", "pair", "group": for messages
    // One loop step s over units idx[0..k) at rate lr: fills st, and may write extra metrics as
    // JSON members (", \"name\": value" ...) into extra (n bytes; "" = none). Returns 0 / −1.
    int (*step)(void *ctx, long s, const int *idx, int k, double lr, hy_step_stats *st, char *extra, size_t n);
    void *ctx;
} hy_loop_task;

// Runs the loop c (its norm is not used) for task on trainer t: order, resume, metrics (train_log's
// line plus the task's members, also to c->sink), checkpoints. Returns 0 / −1.
int hy_train_loop_run(const hy_sft_loop *c, hy_trainer *t, const hy_loop_task *task);

// Runs the loop on trainer t (set up for the model and the groups wanted; its model's weights are
// the starting point, or the resume checkpoint's when resuming). Returns 0 / −1 (hy_fail message).
int hy_sft_loop_run(const hy_sft_loop *c, hy_trainer *t, const hy_dataset *ds);

#endif
