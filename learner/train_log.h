// What a training run reports each step: one JSON line of metrics on stdout (for machines), one
// progress line on stderr (for people), and the same metrics as (name, value) pairs for whoever
// else records the run (the CLI's run store, sft_loop.h's hy_train_sink).
//
//   stdout  {"step": s, "loss": L, "grad_norm": G, "lr": η, "tokens": n, "skipped": k[, task's]}
//           loss and grad_norm (before clipping) measured before step s's update; tokens run
//           through the model in the step; skipped = steps refused so far for a non-finite loss or
//           gradient (cumulative); then the task's own members (DPO, RL). Non-finite numbers print
//           as null (JSON has no NaN).
//   stderr  step s/S | loss | tokens/s | lr | ETA [| MFU]   and a note for each skipped step
// The pairs are the single source of both the JSON line and the other records: train_log's own
// fields, then the task's members parsed back from the JSON text it writes, then tokens_per_s —
// which stays off the JSON line because it depends on the clock, and runs are compared line by line.
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

// One step's metrics, in JSON-line order. Parallel arrays, as run_store_metrics_log takes them;
// names point at literals or into name_buf. NaN = not finite (null on the JSON line).
#define HY_STEP_METRICS_MAX 64
typedef struct {
    int n;
    const char *names[HY_STEP_METRICS_MAX];
    double values[HY_STEP_METRICS_MAX];
    char name_buf[1024];  // the task's member names (its extra text is at most this long)
} hy_step_metrics;

// first_step: the step this process starts at. peak_tflops 0 = no MFU.
void hy_train_log_init(hy_train_log *l, long total_steps, long first_step, size_t n_params, double peak_tflops);
// Step s: builds out (train_log's fields, the task's extra members ", \"name\": number|null" ...,
// then tokens_per_s), writes the JSON line (all but tokens_per_s) to metrics and the progress line
// to progress (either may be NULL: not written). Returns 0, or −1 (hy_fail; nothing written) when extra is not such members.
int hy_train_log_task_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr,
                           const hy_step_stats *st, long skipped_total, const char *extra, hy_step_metrics *out);
// The same without task members, for callers that need no pairs.
void hy_train_log_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr, const hy_step_stats *st,
                       long skipped_total);

#endif
