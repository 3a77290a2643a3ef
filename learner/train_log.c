// Per-step metrics and progress lines (see train_log.h).
#include "train_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"

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

static void metric_add(hy_step_metrics *m, const char *name, double v) {
    m->names[m->n] = name;
    m->values[m->n++] = v;
}

static const char *skip_space(const char *p) {
    while (*p == ' ') p++;
    return p;
}

// Appends the task's members — `, "name": number` or `, "name": null`, as hy_json_member_append
// and "%d" write them — to m. Leaves one slot free for tokens_per_s.
static int members_parse(hy_step_metrics *m, const char *extra) {
    size_t used = 0;
    for (const char *p = skip_space(extra); *p; p = skip_space(p)) {
        if (*p != ',') goto bad;
        p = skip_space(p + 1);
        if (*p != '"') goto bad;
        const char *key = ++p;
        while (*p && *p != '"' && *p != '\\') p++;
        if (*p != '"' || p == key) goto bad;
        const size_t len = (size_t)(p - key);
        p = skip_space(p + 1);
        if (*p != ':') goto bad;
        p = skip_space(p + 1);
        double v = NAN;
        if (!strncmp(p, "null", 4)) {
            p += 4;
        } else {
            char *end;
            v = strtod(p, &end);
            if (end == p) goto bad;
            p = end;
        }
        if (m->n + 1 >= HY_STEP_METRICS_MAX || used + len + 1 > sizeof m->name_buf)
            return hy_fail("step metrics: the task's members exceed %d metrics or %zu bytes of names",
                           HY_STEP_METRICS_MAX - 1, sizeof m->name_buf);
        char *name = memcpy(m->name_buf + used, key, len);
        name[len] = '\0';
        used += len + 1;
        metric_add(m, name, v);
    }
    return 0;
bad:
    return hy_fail("step metrics: the task's members are not `, \"name\": number|null` JSON: '%.200s'", extra);
}

// Integers (token counts, pair counts) print as integers, other numbers with 9 significant digits.
static void json_number(FILE *f, const char *key, double v) {
    if (!isfinite(v))
        fprintf(f, ", \"%s\": null", key);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, ", \"%s\": %.0f", key, v);
    else
        fprintf(f, ", \"%s\": %.9g", key, v);
}

static void format_duration(char *buf, size_t n, double seconds) {
    if (!isfinite(seconds) || seconds < 0) seconds = 0;
    const long s = (long)(seconds + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

int hy_train_log_task_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr,
                           const hy_step_stats *st, long skipped_total, const char *extra, hy_step_metrics *out) {
    out->n = 0;
    metric_add(out, "loss", st->loss);
    metric_add(out, "grad_norm", st->grad_norm);
    metric_add(out, "lr", lr);
    metric_add(out, "tokens", (double)st->tokens);
    metric_add(out, "skipped", (double)skipped_total);
    if (extra && members_parse(out, extra)) return -1;

    if (metrics) {
        fprintf(metrics, "{\"step\": %ld", step);
        for (int i = 0; i < out->n; i++) json_number(metrics, out->names[i], out->values[i]);
        fprintf(metrics, "}\n");
        fflush(metrics);
    }

    l->tokens += st->tokens;
    const double elapsed = now_seconds() - l->t0;
    const long done = step - l->first_step + 1;
    const double tok_s = elapsed > 0 ? (double)l->tokens / elapsed : 0.0;
    metric_add(out, "tokens_per_s", tok_s);
    if (!progress) return 0;  // the caller prints its own progress line
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
    return 0;
}

void hy_train_log_step(hy_train_log *l, FILE *metrics, FILE *progress, long step, double lr, const hy_step_stats *st,
                       long skipped_total) {
    hy_step_metrics unused;
    hy_train_log_task_step(l, metrics, progress, step, lr, st, skipped_total, NULL, &unused);
}
