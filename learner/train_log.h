// What a training run reports each step: one JSON line of metrics on stdout (for machines) and
// one progress line on stderr (for people).
//
//   stdout  {"step": s, "loss": L, "grad_norm": G, "lr": η, "tokens": n, "skipped": k}
//           loss and grad_norm (before clipping) measured before step s's update; tokens run
//           through the model in the step; skipped = steps refused so far for a non-finite loss or
//           gradient (cumulative). Non-finite numbers print as null (JSON has no NaN).
//   stderr  step s/S | loss | tokens/s | lr | ETA [| MFU]   and a note for each skipped step
// Throughput and ETA count from the first step this process ran (a resumed run does not credit
// the steps before it). MFU = 6·N_params·tokens/s over a stated peak — the standard dense-
// transformer estimate (forward 2N, backward 4N FLOPs per token; attention and the GDN recurrence
// are left out, so it slightly understates the work) — printed only when a peak is given (the
// CLI gives one on CUDA).
#ifndef HY_TRAIN_LOG_H
#define HY_TRAIN_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "trainer.h"

typedef struct {
    long total_steps, first_step;
    double t0;             // seconds (monotonic) when the first step of this process began
    long tokens;           // tokens since then
    double n_params;
    double peak_flops;     // FLOP/s; 0 = no MFU column
} hy_train_log;

// first_step: the step this process starts at. peak_tflops 0 = no MFU.
void hy_train_log_init(hy_train_log *l, long total_steps, long first_step, size_t n_params, double peak_tflops);
void hy_train_log_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr,
                       const hy_step_stats *st, long skipped_total);

#endif
