// Per-step metrics and progress lines (see train_log.h).
#include "train_log.h"

#include <math.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hy_train_log_init(hy_train_log *l, long total_steps, long first_step, size_t n_params, double peak_tflops) {
    l->total_steps = total_steps;
    l->first_step = first_step;
    l->t0 = now_seconds();
    l->tokens = 0;
    l->n_params = (double)n_params;
    l->peak_flops = peak_tflops * 1e12;
}

static void json_number(FILE *f, const char *key, double v) {
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.9g", key, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

static void format_duration(char *buf, size_t n, double seconds) {
    if (!isfinite(seconds) || seconds < 0) seconds = 0;
    const long s = (long)(seconds + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

void hy_train_log_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr,
                       const hy_step_stats *st, long skipped_total) {
    fprintf(metrics, "{\"step\": %ld", step);
    json_number(metrics, "loss", st->loss);
    json_number(metrics, "grad_norm", st->grad_norm);
    json_number(metrics, "lr", lr);
    fprintf(metrics, ", \"tokens\": %ld, \"skipped\": %ld}\n", st->tokens, skipped_total);
    fflush(metrics);

    l->tokens += st->tokens;
    const double elapsed = now_seconds() - l->t0;
    const long done = step - l->first_step + 1;
    const double tok_s = elapsed > 0 ? (double)l->tokens / elapsed : 0.0;
    char eta[32];
    format_duration(eta, sizeof eta, elapsed / (double)done * (double)(l->total_steps - step));
    fprintf(progress, "step %ld/%ld | loss %.4f | %.0f tok/s | lr %.3e | ETA %s", step, l->total_steps, st->loss,
            tok_s, lr, eta);
    if (l->peak_flops > 0) fprintf(progress, " | MFU %.1f%%", 100.0 * 6.0 * l->n_params * tok_s / l->peak_flops);
    fprintf(progress, "\n");
    if (st->skipped)
        fprintf(progress, "hybrid: step %ld skipped: loss %g, grad norm %g (weights and optimizer state unchanged; %ld "
                          "skipped so far)\n",
                step, st->loss, st->grad_norm, skipped_total);
    fflush(progress);
}
