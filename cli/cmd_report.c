// `hybrid report`: one run of the run store (common/run_store.h) as a self-contained HTML page;
// `hybrid runs`: the store's runs as a table.
//
// The page is a training dashboard that opens from disk anywhere: inline CSS and inline SVG, no
// JavaScript and no network. A header (name, kind, status, duration, model, commit) and the
// resolved recipe (collapsible) come first, then a grid of line charts: the metrics people look
// for first (loss, reward, accuracy, mismatch KL, clip fraction, grad norm, lr, tokens/s, sync
// time; a few common spellings of each are recognised) in that order, then every other logged
// metric, then evaluations, checkpoints and the most recent trajectories.
//
// Each chart draws the raw points faintly and a debiased exponential moving average over them
// boldly (the span grows with the number of points, so a long noisy run still shows its trend); a
// series that is smooth already (a learning-rate schedule) is drawn as it is, unlagged. Gridlines
// sit at "nice" tick values; the caption gives the last value. Non-finite values are counted and
// left out. Series longer than the plot is wide keep each pixel column's minimum and maximum, so
// spikes survive and the page stays small. Charts with one point show a dot, with none a note.
// Every text that comes from the store (names, recipe, trajectory text) is HTML-escaped, so a run
// name cannot inject markup.
//
// The report is written to OUT.tmp and renamed over OUT, so a reader never sees half a page.
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../common/run_store.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

// ---------------------------------------------------------------- options

static const arg_spec report_specs[] = {
    {"store", ARG_STR, RUN_STORE_DEFAULT_PATH, "the run store (SQLite file) to read", 0, 0},
    {"out", ARG_STR, "report.html", "the HTML page to write", 0, 0},
    {"run", ARG_STR, NULL, "run id, name or 'latest' (instead of the positional RUN)", 0, 0},
    {"trajectories", ARG_INT, "8", "how many of the most recent trajectories to show", 0, 1000},
};

static const arg_command report_command = {
    "report", "report [--store FILE] (RUN_ID | NAME | latest) [--out report.html]",
    "Writes one self-contained HTML page (inline SVG charts, no scripts, no network) for a run:\n"
    "its header and resolved recipe, curves of every logged metric with a smoothed line,\n"
    "evaluations, checkpoints and recent trajectories. A name picks the newest run of that name.",
    report_specs, sizeof report_specs / sizeof *report_specs};

static const arg_spec runs_specs[] = {
    {"store", ARG_STR, RUN_STORE_DEFAULT_PATH, "the run store (SQLite file) to read", 0, 0},
};

static const arg_command runs_command = {
    "runs", "runs [--store FILE]",
    "Lists the runs of a run store: id, kind, status, start time, last step, last loss, name.", runs_specs,
    sizeof runs_specs / sizeof *runs_specs};

// args_parse takes options only: pull the one positional argument out of argv first. An option that
// takes a value consumes the next word, as args_parse will. Returns 0, or 2 (usage message printed).
static int take_positional(const arg_command *cmd, int argc, char **argv, int *rest_argc, char **rest,
                           const char **positional) {
    *positional = NULL;
    *rest_argc = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--", 2) || !strcmp(a, "-h")) {
            rest[(*rest_argc)++] = argv[i];
            if (!strcmp(a, "--help") || !strcmp(a, "-h")) continue;
            const size_t len = strcspn(a + 2, "=");
            int k = 0;
            while (k < cmd->n_specs && (strlen(cmd->specs[k].name) != len || strncmp(cmd->specs[k].name, a + 2, len)))
                k++;
            if (k == cmd->n_specs) {  // said here: its value would otherwise be taken for the run
                fprintf(stderr, "hybrid %s: unknown option '--%.*s' (see hybrid %s --help)\n", cmd->name, (int)len,
                        a + 2, cmd->name);
                return 2;
            }
            if (!a[2 + len] && cmd->specs[k].type != ARG_FLAG && i + 1 < argc) rest[(*rest_argc)++] = argv[++i];
            continue;
        }
        if (*positional) {
            fprintf(stderr, "hybrid %s: one run at a time: got '%s' and '%s' (usage: hybrid %s)\n", cmd->name,
                    *positional, a, cmd->usage);
            return 2;
        }
        *positional = a;
    }
    return 0;
}

// ---------------------------------------------------------------- text helpers

// Writes s as HTML text or attribute content: markup characters as entities, control characters
// (but tab and newline) as U+FFFD.
static void esc(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                fputs("&#xFFFD;", f);
            else
                fputc(*p, f);
        }
    }
}

// The first max_bytes of s, cut back to a UTF-8 character boundary, escaped; "…" when cut.
static void esc_prefix(FILE *f, const char *s, size_t max_bytes) {
    const size_t len = strlen(s);
    if (len <= max_bytes) {
        esc(f, s);
        return;
    }
    size_t n = max_bytes;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    char *cut = hy_malloc(n + 1);
    memcpy(cut, s, n);
    cut[n] = '\0';
    esc(f, cut);
    fputs("…", f);
    free(cut);
}

// A value for people: 4 significant digits, with SI suffixes from 10k.
static const char *fmt_value(double v, char *buf, size_t n) {
    const double a = fabs(v);
    if (!isfinite(v))
        snprintf(buf, n, "%s", isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
    else if (a < 1e4 || a >= 1e18)
        snprintf(buf, n, "%.4g", v);
    else {
        int k = 0;
        double scaled = v;
        while (fabs(scaled) >= 1e3 && k < 5) scaled /= 1e3, k++;
        snprintf(buf, n, "%.4g%c", scaled, "kMGTPE"[k - 1]);
    }
    return buf;
}

// A tick label: as many decimals as the tick spacing dt needs, the same scale for every tick.
static const char *fmt_tick(double v, double dt, double max_abs, char *buf, size_t n) {
    if (max_abs > 0 && max_abs < 1e-3) {  // learning rates, KLs: "2e-07" is shorter than 0.0000002
        snprintf(buf, n, "%.3g", fabs(v) < 1e-6 * dt ? 0.0 : v);
        return buf;
    }
    int k = 0;
    double scale = 1;
    while (max_abs / scale >= 1e4 && k < 6) scale *= 1e3, k++;
    int decimals = (int)-floor(log10(dt / scale) + 1e-9);
    if (decimals < 0) decimals = 0;
    if (decimals > 9) decimals = 9;
    double shown = v / scale;
    if (fabs(shown) < 0.5 * pow(10, -decimals)) shown = 0;  // no "-0.00"
    if (k && shown != 0)
        snprintf(buf, n, "%.*f%c", decimals, shown, "kMGTPE"[k - 1]);
    else
        snprintf(buf, n, "%.*f", decimals, shown);
    return buf;
}

static const char *fmt_time(double unix_s, char *buf, size_t n) {
    const time_t t = (time_t)unix_s;
    struct tm tm;
    if (unix_s <= 0 || !gmtime_r(&t, &tm))
        snprintf(buf, n, "-");
    else
        strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

static const char *fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0)) s = 0;
    const long t = (long)(s + 0.5);
    if (t >= 86400)
        snprintf(buf, n, "%ldd %02ldh %02ldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
    else if (t >= 3600)
        snprintf(buf, n, "%ldh %02ldm %02lds", t / 3600, t % 3600 / 60, t % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm %02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%.1fs", s);
    return buf;
}

// ---------------------------------------------------------------- charts

enum { CHART_W = 440, CHART_H = 230, PAD_L = 58, PAD_R = 14, PAD_T = 10, PAD_B = 28 };
static const int plot_w = CHART_W - PAD_L - PAD_R, plot_h = CHART_H - PAD_T - PAD_B;

enum { N_COLORS = 10 };
static const char *const palette[N_COLORS] = {"#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed",
                                              "#0891b2", "#db2777", "#4d7c0f", "#b45309", "#475569"};

// Heckbert's "nice numbers": 1, 2 or 5 times a power of ten, near x.
static double nice_step(double x) {
    const double e = pow(10, floor(log10(x))), f = x / e;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

typedef struct {
    double x0, x1, y0, y1;
} frame;

static double px(const frame *fr, double x) { return PAD_L + (x - fr->x0) / (fr->x1 - fr->x0) * plot_w; }
static double py(const frame *fr, double y) { return PAD_T + (fr->y1 - y) / (fr->y1 - fr->y0) * plot_h; }

static void draw_axes(FILE *f, const frame *fr) {
    char label[48];
    const double dy = nice_step((fr->y1 - fr->y0) / 4), max_abs = fmax(fabs(fr->y0), fabs(fr->y1));
    const double yk0 = ceil(fr->y0 / dy);  // ticks at whole multiples of dy, at most 20 of them
    for (int k = 0; k < 20 && (yk0 + k) * dy <= fr->y1 + 1e-9 * dy; k++) {
        const double t = (yk0 + k) * dy, y = py(fr, t);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PAD_L, y, PAD_L + plot_w, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\">%s</text>", PAD_L - 5, y,
                fmt_tick(t, dy, max_abs, label, sizeof label));
    }
    const double dx = fmax(1, nice_step((fr->x1 - fr->x0) / 5)), x_abs = fmax(fabs(fr->x0), fabs(fr->x1));
    const double xk0 = ceil(fr->x0 / dx);  // ticks at whole multiples of dx, at most 20 of them
    for (int k = 0; k < 20 && (xk0 + k) * dx <= fr->x1 + 1e-9 * dx; k++) {
        const double t = (xk0 + k) * dx, x = px(fr, t);
        fprintf(f, "<line class=\"tick\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, PAD_T + plot_h, x,
                PAD_T + plot_h + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, PAD_T + plot_h + 16,
                fmt_tick(t, dx, x_abs, label, sizeof label));
    }
    fprintf(f, "<path class=\"axis\" d=\"M%d %dV%dH%d\"/>", PAD_L, PAD_T, PAD_T + plot_h, PAD_L + plot_w);
    fprintf(f, "<text class=\"xlabel\" x=\"%d\" y=\"%d\" text-anchor=\"end\">step</text>", PAD_L + plot_w, CHART_H - 1);
}

// A polyline through the points. Past two points per pixel column, each column keeps only its
// first, lowest, highest and last point (in order), which draws the same envelope.
static void draw_line(FILE *f, const frame *fr, const double *x, const double *y, int n, const char *cls,
                      const char *color) {
    fprintf(f, "<path class=\"%s\" stroke=\"%s\" d=\"", cls, color);
    const int thin = n > 2 * plot_w;
    int col_start = 0, first = 1;
    for (int i = 0; i < n; i++) {
        int keep[4] = {i, i, i, i};
        if (thin) {
            const int col = (int)floor(px(fr, x[i]));
            if (i + 1 < n && (int)floor(px(fr, x[i + 1])) == col) continue;
            int lo = col_start, hi = col_start;  // the column holds points col_start..i
            for (int j = col_start; j <= i; j++) {
                if (y[j] < y[lo]) lo = j;
                if (y[j] > y[hi]) hi = j;
            }
            keep[0] = col_start;
            keep[1] = lo < hi ? lo : hi;
            keep[2] = lo < hi ? hi : lo;
            col_start = i + 1;
        }
        for (int k = 0; k < 4; k++) {
            if (k && keep[k] == keep[k - 1]) continue;
            fprintf(f, "%s%.1f %.1f", first ? "M" : "L", px(fr, x[keep[k]]), py(fr, y[keep[k]]));
            first = 0;
        }
    }
    fputs("\"/>", f);
}

// Whether a series is smooth already (a schedule, a clean trend): then it is drawn as it is, since an
// EMA would only lag it. Smooth: the mean distance of each point from its neighbours' midpoint is
// under 1% of the value range.
static int is_smooth(const double *y, int m, double range) {
    if (m < 3 || !(range > 0)) return 1;
    double dev = 0;
    for (int i = 1; i + 1 < m; i++) dev += fabs(y[i] - 0.5 * (y[i - 1] + y[i + 1]));
    return dev / (m - 2) < 0.01 * range;
}

static void draw_note(FILE *f, const char *text) {
    fprintf(f, "<rect class=\"empty\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", PAD_L, PAD_T, plot_w, plot_h);
    fprintf(f, "<text class=\"note\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>", PAD_L + plot_w / 2,
            PAD_T + plot_h / 2, text);
}

// Axes, lines and points for m ≥ 1 finite points with values in [y0, y1].
static void draw_plot(FILE *f, const double *x, const double *y, int m, double y0, double y1, const char *color) {
    frame fr = {x[0], x[m - 1], y0, y1};
    if (fr.x1 <= fr.x0) fr.x0 -= 1, fr.x1 += 1;
    const double span = y1 - y0, mag = fmax(fabs(y0), fabs(y1));
    if (span <= 1e-9 * mag || span == 0) {  // a constant series: centre it in a small band
        const double d = mag > 0 ? 0.1 * mag : 1;
        fr.y0 -= d, fr.y1 += d;
    } else {
        fr.y0 -= 0.05 * span, fr.y1 += 0.05 * span;
    }
    draw_axes(f, &fr);
    if (m > 1 && is_smooth(y, m, span)) {
        draw_line(f, &fr, x, y, m, "ema", color);
    } else if (m > 1) {
        draw_line(f, &fr, x, y, m, "raw", color);
        // debiased EMA: the early average is not dragged toward the first point or toward 0
        const double span_pts = fmin(fmax(m / 20.0, 1), 200), alpha = 2 / (span_pts + 1);
        double num = 0, den = 0, *ema = hy_malloc(sizeof(double) * (size_t)m);
        for (int i = 0; i < m; i++) {
            num = (1 - alpha) * num + alpha * y[i];
            den = (1 - alpha) * den + alpha;
            ema[i] = num / den;
        }
        draw_line(f, &fr, x, ema, m, "ema", color);
        free(ema);
    }
    if (m <= 40)
        for (int i = 0; i < m; i++)
            fprintf(f, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(&fr, x[i]),
                    py(&fr, y[i]), color);
    fprintf(f, "<circle class=\"lastpt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", px(&fr, x[m - 1]),
            py(&fr, y[m - 1]), color);
}

// One chart figure. x in steps; non-finite y are counted and left out.
static void write_chart(FILE *f, const char *title, const char *name, const int64_t *steps, const double *values, int n,
                        const char *color) {
    double *x = hy_malloc(sizeof(double) * (size_t)(n + 1)), *y = hy_malloc(sizeof(double) * (size_t)(n + 1));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) {
            x[m] = (double)steps[i];
            y[m++] = values[i];
        }
    char a[48], b[48], c[48];
    fputs("<figure class=\"chart\"><figcaption><span class=\"title\">", f);
    esc(f, title);
    fputs("</span>", f);
    if (name && strcmp(name, title)) {
        fputs(" <code>", f);
        esc(f, name);
        fputs("</code>", f);
    }
    if (m)
        fprintf(f, "<span class=\"last\">last <b>%s</b> @ step %.0f</span>", fmt_value(y[m - 1], a, sizeof a),
                x[m - 1]);
    fputs("</figcaption>\n", f);
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", CHART_W, CHART_H);
    esc(f, title);
    fputs("\">", f);
    if (m == 0) {
        draw_note(f, n ? "no finite values" : "no points");
    } else {
        double y0 = y[0], y1 = y[0];
        for (int i = 1; i < m; i++) y0 = fmin(y0, y[i]), y1 = fmax(y1, y[i]);
        fprintf(f, "<title>");
        esc(f, name ? name : title);
        fprintf(f, ": %d point%s, min %s, max %s, last %s</title>", m, m == 1 ? "" : "s", fmt_value(y0, a, sizeof a),
                fmt_value(y1, b, sizeof b), fmt_value(y[m - 1], c, sizeof c));
        const double mag = fmax(fabs(y0), fabs(y1));
        if (mag >= 1e300 || (mag > 0 && mag < 1e-300))  // the frame's arithmetic would overflow or underflow
            draw_note(f, "values beyond the drawable range (see min and max in the tooltip)");
        else
            draw_plot(f, x, y, m, y0, y1, color);
    }
    fputs("</svg>", f);
    if (m == 1) fputs("<p class=\"sub\">1 point</p>", f);
    if (n > m) fprintf(f, "<p class=\"sub warn\">%d non-finite value%s not drawn</p>", n - m, n - m == 1 ? "" : "s");
    fputs("</figure>\n", f);
    free(x);
    free(y);
}

// ---------------------------------------------------------------- the page

// The dashboard's first charts: a title and the names writers use for it (run_store.h first).
static const struct {
    const char *title;
    const char *names[4];
} known_metrics[] = {
    {"Loss", {RUN_METRIC_LOSS, "train_loss"}},
    {"Reward (mean)", {RUN_METRIC_REWARD, "reward", "reward/mean", "mean_reward"}},
    {"Accuracy", {RUN_METRIC_ACCURACY, "acc"}},
    {"Mismatch KL (rollout vs learner)", {RUN_METRIC_MISMATCH_KL, "kl_mismatch", "mismatch/kl"}},
    {"Clip fraction", {RUN_METRIC_CLIP_FRACTION, "clip_frac", "clipfrac"}},
    {"Grad norm", {RUN_METRIC_GRAD_NORM, "gradnorm"}},
    {"Learning rate", {RUN_METRIC_LR, "learning_rate"}},
    {"Tokens/s", {RUN_METRIC_TOKENS_PER_S, "tokens_per_sec", "tok_per_s", "throughput"}},
    {"Weight sync time (s)", {RUN_METRIC_SYNC_TIME, "sync_time", "sync_s"}},
};

static const char page_css[] =
    ":root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff}"
    "body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif}"
    "main{max-width:1480px;margin:0 auto;padding:20px 24px 40px}"
    "header h1{font-size:22px;margin:0 8px 4px 0;display:inline;word-break:break-word}"
    ".badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;"
    "vertical-align:4px;margin-right:4px;background:#e5e7eb;color:#374151}"
    ".s-running{background:#dbeafe;color:#1e40af}.s-done{background:#dcfce7;color:#166534}"
    ".s-failed{background:#fee2e2;color:#991b1b}.s-stopped{background:#f3f4f6;color:#4b5563}"
    ".meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 18px;margin:14px 0;"
    "padding:12px 16px;background:var(--card);border:1px solid var(--line);border-radius:8px}"
    ".meta div{min-width:0}.meta dt{color:var(--muted);font-size:12px}.meta dd{margin:0;word-break:break-all}"
    "details{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;margin:10px 0}"
    "summary{cursor:pointer;font-weight:600}"
    "pre{white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:8px 0}"
    "h2{font-size:16px;margin:26px 0 10px;color:#374151}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}"
    ".chart{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px 6px}"
    ".chart figcaption{display:flex;flex-wrap:wrap;gap:4px 8px;align-items:baseline;margin-bottom:2px}"
    ".chart .title{font-weight:600}.chart code{color:var(--muted);font-size:11px}"
    ".chart .last{margin-left:auto;color:var(--muted);font-size:12px}.chart .last b{color:var(--fg)}"
    ".chart svg{width:100%;height:auto;display:block}"
    "svg text{font-size:11px;fill:#6b7280}svg .note{font-size:13px}"
    "svg .grid{stroke:#eef0f3}svg .axis,svg .tick{stroke:#9ca3af;fill:none}"
    "svg .raw{fill:none;stroke-width:1;opacity:.35}svg .ema{fill:none;stroke-width:2;stroke-linejoin:round}"
    "svg .pt{opacity:.45}svg .empty{fill:#f9fafb;stroke:#e5e7eb}"
    ".sub{margin:0;font-size:12px;color:var(--muted)}.warn{color:#b45309}"
    "table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);width:100%}"
    "th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;font-size:13px}"
    "th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td pre{margin:0;max-height:9em;overflow:auto}"
    ".empty-note{color:var(--muted)}footer{margin-top:30px;color:var(--muted);font-size:12px}";

static void meta_item(FILE *f, const char *key, const char *value) {
    fprintf(f, "<div><dt>%s</dt><dd>", key);
    esc(f, value && value[0] ? value : "-");
    fputs("</dd></div>", f);
}

static int chart_metric(run_store *s, FILE *f, int64_t run, const char *title, const char *name, int *n_charts) {
    int64_t *steps;
    double *values;
    int n;
    if (run_store_metric_series(s, run, name, &steps, &values, &n)) return -1;
    write_chart(f, title, name, steps, values, n, palette[*n_charts % N_COLORS]);
    ++*n_charts;
    free(steps);
    free(values);
    return 0;
}

static int write_metrics(run_store *s, FILE *f, int64_t run) {
    char **names;
    int n_names, n_charts = 0, rc = 0;
    if (run_store_metric_names(s, run, &names, &n_names)) return -1;
    char *used = hy_calloc((size_t)n_names + 1, 1);
    fputs("<h2>Training</h2>\n", f);
    if (!n_names)
        fputs("<p class=\"empty-note\">No metrics logged yet.</p>\n", f);
    else
        fputs("<div class=\"grid\">\n", f);
    for (size_t k = 0; !rc && k < sizeof known_metrics / sizeof *known_metrics; k++)
        for (int a = 0; !rc && a < 4 && known_metrics[k].names[a]; a++)
            for (int i = 0; !rc && i < n_names; i++)
                if (!used[i] && !strcmp(names[i], known_metrics[k].names[a])) {
                    used[i] = 1;
                    rc = chart_metric(s, f, run, known_metrics[k].title, names[i], &n_charts);
                }
    int others = 0;
    for (int i = 0; i < n_names; i++) others += !used[i];
    if (n_names && others && n_charts) fputs("</div>\n<h2>Other metrics</h2>\n<div class=\"grid\">\n", f);
    for (int i = 0; !rc && i < n_names; i++)
        if (!used[i]) rc = chart_metric(s, f, run, names[i], names[i], &n_charts);
    if (n_names) fputs("</div>\n", f);
    free(used);
    run_store_names_free(names, n_names);
    return rc;
}

static int write_evals(run_store *s, FILE *f, int64_t run) {
    run_store_eval *e;
    int n;
    if (run_store_evals_list(s, run, &e, &n)) return -1;
    if (n) {
        fputs("<h2>Evaluations</h2>\n<div class=\"grid\">\n", f);
        int64_t *steps = hy_malloc(sizeof(int64_t) * (size_t)n);
        double *values = hy_malloc(sizeof(double) * (size_t)n);
        for (int i = 0, charts = 0; i < n;) {  // rows come grouped by (task, metric), in step order
            int j = i;
            for (; j < n && !strcmp(e[j].task, e[i].task) && !strcmp(e[j].metric, e[i].metric); j++) {
                steps[j - i] = e[j].step;
                values[j - i] = e[j].value;
            }
            const size_t len = strlen(e[i].task) + strlen(e[i].metric) + 8;
            char *title = hy_malloc(len);
            snprintf(title, len, "%s · %s", e[i].task, e[i].metric);
            write_chart(f, title, NULL, steps, values, j - i, palette[(charts++ + 2) % N_COLORS]);
            free(title);
            i = j;
        }
        free(steps);
        free(values);
        fputs("</div>\n<table><tr><th>task</th><th>metric</th><th>step</th><th>value</th><th>n</th></tr>\n", f);
        for (int i = 0; i < n; i++) {
            if (i + 1 < n && !strcmp(e[i + 1].task, e[i].task) && !strcmp(e[i + 1].metric, e[i].metric)) continue;
            char v[48];
            fputs("<tr><td>", f);
            esc(f, e[i].task);
            fputs("</td><td>", f);
            esc(f, e[i].metric);
            fprintf(f, "</td><td class=\"num\">%lld</td><td class=\"num\">%s</td><td class=\"num\">%lld</td></tr>\n",
                    (long long)e[i].step, fmt_value(e[i].value, v, sizeof v), (long long)e[i].n);
        }
        fputs("</table>\n", f);
    }
    run_store_evals_free(e, n);
    return 0;
}

static int write_checkpoints(run_store *s, FILE *f, int64_t run) {
    run_store_checkpoint *c;
    int n;
    if (run_store_checkpoints_list(s, run, &c, &n)) return -1;
    if (n) {
        fputs("<h2>Checkpoints</h2>\n<table><tr><th>step</th><th>path</th><th>written</th></tr>\n", f);
        for (int i = 0; i < n; i++) {
            char t[64];
            fprintf(f, "<tr><td class=\"num\">%lld</td><td>", (long long)c[i].step);
            esc(f, c[i].path);
            fprintf(f, "</td><td>%s</td></tr>\n", fmt_time(c[i].created, t, sizeof t));
        }
        fputs("</table>\n", f);
    }
    run_store_checkpoints_free(c, n);
    return 0;
}

static int write_trajectories(run_store *s, FILE *f, int64_t run, int limit) {
    run_store_trajectory *t;
    int n;
    int64_t total;
    if (run_store_trajectory_count(s, run, &total) || run_store_trajectories_recent(s, run, limit, &t, &n)) return -1;
    if (n) {
        fprintf(f, "<h2>Recent trajectories <span class=\"sub\">(%d of %lld)</span></h2>\n", n, (long long)total);
        fputs(
            "<table><tr><th>step</th><th>id</th><th>group</th><th>version</th><th>reward</th><th>finish</th>"
            "<th>prompt</th><th>completion</th><th>mean logprob</th><th>text</th></tr>\n",
            f);
        for (int i = 0; i < n; i++) {
            const run_store_trajectory *r = &t[i];
            char reward[48], lp[48] = "-";
            if (r->logprobs && r->n_completion) {
                double sum = 0;
                for (int k = 0; k < r->n_completion; k++) sum += r->logprobs[k];
                fmt_value(sum / r->n_completion, lp, sizeof lp);
            }
            int generated = r->n_completion;
            if (r->generated_mask) {
                generated = 0;
                for (int k = 0; k < r->n_completion; k++) generated += r->generated_mask[k] != 0;
            }
            fprintf(f,
                    "<tr><td class=\"num\">%lld</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td>"
                    "<td class=\"num\">%lld</td><td class=\"num\">%s</td><td>",
                    (long long)r->step, (long long)r->id, (long long)r->group_id, (long long)r->weight_version,
                    fmt_value(r->reward, reward, sizeof reward));
            esc(f, r->finish_reason ? r->finish_reason : "-");
            fprintf(f, "</td><td class=\"num\">%d</td><td class=\"num\">%d", r->n_prompt, r->n_completion);
            if (generated != r->n_completion) fprintf(f, " (%d generated)", generated);
            fprintf(f, "</td><td class=\"num\">%s</td><td><pre>", lp);
            esc_prefix(f, r->text ? r->text : "", 600);
            fputs("</pre></td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    run_store_trajectories_free(t, n);
    return 0;
}

static int write_page(run_store *s, FILE *f, const run_store_run *r, int n_trajectories) {
    char created[64], ended[64], dur[64], buf[64];
    const double end = r->ended > 0 ? r->ended : r->updated;
    fputs(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
        f);
    esc(f, r->name);
    fprintf(f, " · hybrid report</title>\n<style>%s</style></head>\n<body><main>\n<header><h1>", page_css);
    esc(f, r->name);
    fprintf(f, "</h1><span class=\"badge s-");
    esc(f, r->status);
    fputs("\">", f);
    esc(f, r->status);
    fputs("</span><span class=\"badge\">", f);
    esc(f, r->kind);
    fputs("</span></header>\n<dl class=\"meta\">", f);
    snprintf(buf, sizeof buf, "%lld", (long long)r->id);
    meta_item(f, "run id", buf);
    meta_item(f, "started", fmt_time(r->created, created, sizeof created));
    meta_item(f, r->ended > 0 ? "ended" : "last write", fmt_time(end, ended, sizeof ended));
    fmt_duration(end - r->created, dur, sizeof dur);
    if (!(r->ended > 0)) strncat(dur, !strcmp(r->status, "running") ? " so far" : "", sizeof dur - strlen(dur) - 1);
    meta_item(f, "duration", dur);
    if (r->last_step >= 0)
        snprintf(buf, sizeof buf, "%lld", (long long)r->last_step);
    else
        snprintf(buf, sizeof buf, "-");
    meta_item(f, "last step", buf);
    meta_item(f, "model", r->model);
    meta_item(f, "git commit", r->git_commit);
    meta_item(f, "store", run_store_path(s));
    fputs("</dl>\n<details><summary>Resolved recipe</summary><pre>", f);
    esc(f, r->recipe ? r->recipe : "(none stored)");
    fputs("</pre></details>\n", f);
    if (write_metrics(s, f, r->id) || write_evals(s, f, r->id) || write_checkpoints(s, f, r->id) ||
        write_trajectories(s, f, r->id, n_trajectories))
        return -1;
    char now[64];
    fprintf(f, "<footer>hybrid report · %s</footer>\n</main></body></html>\n",
            fmt_time((double)time(NULL), now, sizeof now));
    return 0;
}

// Writes the page to out.tmp and renames it over out.
static int write_report(run_store *s, const run_store_run *r, const char *out, int n_trajectories) {
    const size_t len = strlen(out) + 8;
    char *tmp = hy_malloc(len);
    snprintf(tmp, len, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    int rc;
    if (!f) {
        rc = hy_fail("%s: cannot create the report: %s", out, strerror(errno));
    } else {
        rc = write_page(s, f, r, n_trajectories);
        if (!rc && (ferror(f) || fflush(f))) rc = hy_fail("%s: write failed: %s", tmp, strerror(errno));
        if (fclose(f) && !rc) rc = hy_fail("%s: write failed: %s", tmp, strerror(errno));
        if (!rc && rename(tmp, out)) rc = hy_fail("%s: cannot rename %s to it: %s", out, tmp, strerror(errno));
        if (rc) remove(tmp);
    }
    free(tmp);
    return rc;
}

// Copies s for a terminal: control characters become '?', so a stored name cannot move the cursor.
static void print_plain(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

int cmd_report(int argc, char **argv) {
    char **rest = hy_malloc(sizeof(char *) * (size_t)(argc + 1));
    int n_rest;
    const char *ref;
    arg_values a;
    const int usage = take_positional(&report_command, argc, argv, &n_rest, rest, &ref);
    const int parsed = usage ? 0 : args_parse(&report_command, n_rest, rest, &a);
    free(rest);
    if (usage) return usage;
    if (parsed) return parsed > 0 ? 0 : 2;
    if (ref && arg_str(&a, "run")) {
        fprintf(stderr, "hybrid report: give the run once (positional RUN or --run)\n");
        return 2;
    }
    if (!ref) ref = arg_str(&a, "run");
    if (!ref) {
        fprintf(stderr, "hybrid report: which run? give an id, a name or 'latest' (usage: hybrid %s)\n",
                report_command.usage);
        return 2;
    }
    const char *out = arg_str(&a, "out");
    run_store *s;
    if (run_store_open(arg_str(&a, "store"), RUN_STORE_EXISTING, &s)) return cli_error("report");
    int64_t id;
    run_store_run r = {0};
    const int rc = run_store_run_find(s, ref, &id) || run_store_run_get(s, id, &r) ||
                   write_report(s, &r, out, (int)arg_int(&a, "trajectories"));
    if (!rc) {
        fprintf(stderr, "hybrid report: run %lld (", (long long)r.id);
        print_plain(stderr, r.name);
        fprintf(stderr, ") -> %s\n", out);
    }
    run_store_run_free(&r);
    run_store_close(s);
    return rc ? cli_error("report") : 0;
}

// ---------------------------------------------------------------- hybrid runs

int cmd_runs(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&runs_command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    run_store *s;
    if (run_store_open(arg_str(&a, "store"), RUN_STORE_EXISTING, &s)) return cli_error("runs");
    run_store_run *runs;
    int n;
    if (run_store_runs_list(s, &runs, &n)) {
        run_store_close(s);
        return cli_error("runs");
    }
    if (!n)
        printf("no runs in %s\n", run_store_path(s));
    else
        printf("%5s  %-4s %-8s %-23s %9s %10s  %s\n", "id", "kind", "status", "started", "last step", "last loss",
               "name");
    for (int i = 0; !rc && i < n; i++) {
        int found;
        int64_t step;
        double loss;
        char t[64], v[48] = "-";
        if ((rc = run_store_metric_last(s, runs[i].id, RUN_METRIC_LOSS, &found, &step, &loss))) break;
        if (found) fmt_value(loss, v, sizeof v);
        char last[24] = "-";
        if (runs[i].last_step >= 0) snprintf(last, sizeof last, "%lld", (long long)runs[i].last_step);
        printf("%5lld  %-4s %-8s %-23s %9s %10s  ", (long long)runs[i].id, runs[i].kind, runs[i].status,
               fmt_time(runs[i].created, t, sizeof t), last, v);
        print_plain(stdout, runs[i].name);  // last: names have any length
        putchar('\n');
    }
    run_store_runs_free(runs, n);
    run_store_close(s);
    return rc ? cli_error("runs") : 0;
}
