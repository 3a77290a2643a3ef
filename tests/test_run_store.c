// Tests for common/run_store.c: schema creation, round trips of every table (bit-exact blobs,
// NaN, NULL fields, replaced rows), metric series ordering, several processes writing one store at
// once (fork; a fresh file that all of them race to create, and a learner + workers sharing one
// run while a reader reads) without losing a row, and the refusals: a newer schema, files that are
// not SQLite or not a run store, a damaged blob, a held write lock, bad arguments — each message
// must name the file and the problem.
//
// Usage: test_run_store SOURCE_DIR [CASE]   (CASE: run only that case; the list is printed on a typo)
//        test_run_store --make-demo FILE    (writes a store with a synthetic SFT run and RL run for
//                                            tests/test_report.sh; replaces FILE)
#include "common/hy_error.h"
#include "common/run_store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_fail, n_pass;
static char g_tmp[256];

static void report(const char *name, int ok, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s\n", name, detail);
}

#define CHECK(name, cond) report(name, (cond), "%s (last error: %s)", #cond, hy_last_error())

// A path in the test's temporary folder; the buffer is reused after 16 calls.
static const char *tmp_path(const char *name) {
    static char buf[16][512];
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, 512, "%s/%s", g_tmp, name);
    return p;
}

// The call failed and its message holds every needle.
static void expect_error(const char *name, int rc, ...) {
    if (rc == 0) {
        report(name, 0, "succeeded, expected an error");
        return;
    }
    va_list ap;
    va_start(ap, rc);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(hy_last_error(), needle)) {
            report(name, 0, "message lacks '%s': %s", needle, hy_last_error());
            va_end(ap);
            return;
        }
    va_end(ap);
    report(name, 1, "");
    printf("  %-38s -> %s\n", name, hy_last_error());
}

static void remove_store(const char *path) {
    char p[600];
    remove(path);
    snprintf(p, sizeof p, "%s-wal", path);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", path);
    remove(p);
}

// One SQL statement on a raw connection (to set up states the API never writes).
static int raw_exec(const char *path, const char *sql) {
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    sqlite3_busy_timeout(db, 10000);
    const int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) printf("raw_exec: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static int64_t raw_count(const char *path, const char *sql) {
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int begin_run(run_store *s, const char *name, const char *kind, int64_t *id) {
    run_store_run_info info = {name, kind, "lr: 1e-5\n", "models/tiny", "abc123"};
    return run_store_run_begin(s, &info, id);
}

// ---------------------------------------------------------------- cases

static void test_schema(void) {
    const char *path = tmp_path("nested/dir/store.sqlite");
    run_store *s;
    CHECK("schema: create in missing folders", run_store_open(path, RUN_STORE_CREATE, &s) == 0);
    if (!s) return;
    CHECK("schema: path kept", !strcmp(run_store_path(s), path));
    run_store_close(s);
    CHECK("schema: WAL mode", raw_count(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode") == 1);
    CHECK("schema: version recorded",
          raw_count(path, "SELECT value FROM store_meta WHERE key = 'schema_version'") == RUN_STORE_SCHEMA_VERSION);
    CHECK("schema: application id", raw_count(path, "PRAGMA application_id") == 0x48594252);
    const char *tables[] = {"runs", "metrics", "trajectories", "checkpoints", "evaluations", "store_meta"};
    for (int i = 0; i < 6; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", tables[i]);
        report("schema: table exists", raw_count(path, sql) == 1, "%s", tables[i]);
    }
    CHECK("schema: reopen (existing)", run_store_open(path, RUN_STORE_EXISTING, &s) == 0);
    run_store_close(s);
    CHECK("schema: reopen (create) leaves it", run_store_open(path, RUN_STORE_CREATE, &s) == 0);
    run_store_close(s);
    CHECK("schema: one version row", raw_count(path, "SELECT count(*) FROM store_meta") == 2);
}

static void test_runs(void) {
    const char *path = tmp_path("runs.sqlite");
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) {
        report("runs: open", 0, "%s", hy_last_error());
        return;
    }
    const char *recipe = "model: \"x\"\nnote: 'quotes' <tags> & ünïcödé ✓\n";
    run_store_run_info info = {"sft <one>", "sft", recipe, "/models/a b", NULL};
    int64_t a = 0, b = 0, c = 0;
    CHECK("runs: begin a", run_store_run_begin(s, &info, &a) == 0);
    CHECK("runs: begin b", begin_run(s, "shared", "dpo", &b) == 0);
    CHECK("runs: begin c", begin_run(s, "shared", "rl", &c) == 0);
    CHECK("runs: ids increase", a > 0 && b > a && c > b);
    run_store_run r;
    CHECK("runs: get", run_store_run_get(s, a, &r) == 0);
    CHECK("runs: fields", r.id == a && !strcmp(r.name, "sft <one>") && !strcmp(r.kind, "sft") &&
                              !strcmp(r.status, "running") && !strcmp(r.recipe, recipe) &&
                              !strcmp(r.model, "/models/a b") && r.git_commit == NULL && r.ended == 0 &&
                              r.created > 1.6e9 && r.last_step == -1);
    run_store_run_free(&r);
    CHECK("runs: end", run_store_run_end(s, a, "done") == 0);
    CHECK("runs: get ended", run_store_run_get(s, a, &r) == 0);
    CHECK("runs: ended fields", !strcmp(r.status, "done") && r.ended >= r.created);
    run_store_run_free(&r);
    int64_t id = 0;
    CHECK("runs: find latest", run_store_run_find(s, "latest", &id) == 0 && id == c);
    CHECK("runs: find by id", run_store_run_find(s, "2", &id) == 0 && id == b);
    CHECK("runs: find newest of a name", run_store_run_find(s, "shared", &id) == 0 && id == c);
    CHECK("runs: find name with markup", run_store_run_find(s, "sft <one>", &id) == 0 && id == a);
    expect_error("runs: find unknown", run_store_run_find(s, "nope", &id), path, "'nope'", NULL);
    expect_error("runs: get unknown", run_store_run_get(s, 999, &r), path, "999", NULL);
    expect_error("runs: bad kind", begin_run(s, "x", "ppo", &id), path, "ppo", NULL);
    expect_error("runs: no name", begin_run(s, "", "rl", &id), path, "name", NULL);
    expect_error("runs: bad status", run_store_run_end(s, b, "finished"), path, "finished", NULL);
    expect_error("runs: end unknown run", run_store_run_end(s, 12345, "failed"), path, "12345", NULL);
    run_store_run *list;
    int n;
    CHECK("runs: list", run_store_runs_list(s, &list, &n) == 0 && n == 3 && list[0].id == a && list[2].id == c &&
                            !strcmp(list[1].kind, "dpo"));
    run_store_runs_free(list, n);
    run_store_close(s);

    const char *empty = tmp_path("empty_runs.sqlite");
    CHECK("runs: open empty store", run_store_open(empty, RUN_STORE_CREATE, &s) == 0);
    expect_error("runs: latest of no runs", run_store_run_find(s, "latest", &id), empty, "no runs", NULL);
    run_store_close(s);
}

static void test_metrics(void) {
    const char *path = tmp_path("metrics.sqlite");
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) {
        report("metrics: open", 0, "%s", hy_last_error());
        return;
    }
    int64_t run, other;
    begin_run(s, "m", "rl", &run);
    begin_run(s, "o", "rl", &other);
    const char *names[] = {"loss", "reward_mean", "lr"};
    const int64_t order[] = {5, 1, 3, 0, 4, 2};  // logged out of order: series must come back sorted
    for (int i = 0; i < 6; i++) {
        const double v[] = {10.0 - (double)order[i], 0.1 * (double)order[i], 1e-5};
        CHECK("metrics: log", run_store_metrics_log(s, run, order[i], 3, names, v) == 0);
    }
    const double nan_row[] = {NAN, INFINITY};
    const char *nan_names[] = {"nan_metric", "inf_metric"};
    CHECK("metrics: log non-finite", run_store_metrics_log(s, run, 7, 2, nan_names, nan_row) == 0);
    const double replaced = 42;
    CHECK("metrics: replace a step", run_store_metrics_log(s, run, 3, 1, names, &replaced) == 0);
    const double o = 1;
    CHECK("metrics: other run", run_store_metrics_log(s, other, 100, 1, names, &o) == 0);
    int64_t *steps;
    double *values;
    int n;
    CHECK("metrics: series", run_store_metric_series(s, run, "loss", &steps, &values, &n) == 0 && n == 6);
    int sorted = 1;
    for (int i = 0; i < n; i++) sorted &= steps[i] == i && values[i] == (i == 3 ? 42.0 : 10.0 - (double)i);
    report("metrics: series in step order with replaced value", sorted, "n = %d", n);
    free(steps);
    free(values);
    CHECK("metrics: NaN reads back as NaN", run_store_metric_series(s, run, "nan_metric", &steps, &values, &n) == 0 &&
                                                n == 1 && steps[0] == 7 && isnan(values[0]));
    free(steps);
    free(values);
    CHECK("metrics: inf reads back", run_store_metric_series(s, run, "inf_metric", &steps, &values, &n) == 0 &&
                                         n == 1 && isinf(values[0]) && values[0] > 0);
    free(steps);
    free(values);
    CHECK("metrics: absent series is empty",
          run_store_metric_series(s, run, "nope", &steps, &values, &n) == 0 && n == 0);
    free(steps);
    free(values);
    char **list;
    CHECK("metrics: names", run_store_metric_names(s, run, &list, &n) == 0 && n == 5 &&
                                !strcmp(list[0], "inf_metric") && !strcmp(list[4], "reward_mean"));
    run_store_names_free(list, n);
    int found;
    int64_t step;
    double v;
    CHECK("metrics: last", run_store_metric_last(s, run, "reward_mean", &found, &step, &v) == 0 && found && step == 5 &&
                               fabs(v - 0.5) < 1e-12);
    CHECK("metrics: last absent", run_store_metric_last(s, run, "nope", &found, &step, &v) == 0 && !found);
    run_store_run r;
    CHECK("metrics: run last_step", run_store_run_get(s, run, &r) == 0 && r.last_step == 7 && r.updated >= r.created);
    run_store_run_free(&r);
    expect_error("metrics: unknown run", run_store_metrics_log(s, 777, 1, 1, names, &o), path, "777", NULL);
    const char *bad[] = {"ok", ""};
    const double two[] = {1, 2};
    expect_error("metrics: empty name", run_store_metrics_log(s, run, 1, 2, bad, two), path, "no name", NULL);
    expect_error("metrics: negative step", run_store_metrics_log(s, run, -1, 1, names, &o), path, "negative", NULL);
    CHECK("metrics: nothing written by the failed calls",
          run_store_metric_series(s, run, "ok", &steps, &values, &n) == 0 && n == 0);
    free(steps);
    free(values);
    // a big batch in one call: one transaction
    enum { BIG = 2000 };
    const char **many = malloc(sizeof *many * BIG);
    double *vals = malloc(sizeof *vals * BIG);
    char(*buf)[16] = malloc(16 * BIG);
    for (int i = 0; i < BIG; i++) {
        snprintf(buf[i], 16, "m%04d", i);
        many[i] = buf[i];
        vals[i] = i;
    }
    CHECK("metrics: 2000 values in one call", run_store_metrics_log(s, run, 9, BIG, many, vals) == 0);
    CHECK("metrics: all stored", raw_count(path, "SELECT count(*) FROM metrics WHERE step = 9") == BIG);
    free(many);
    free(vals);
    free(buf);
    run_store_close(s);
}

static int same_i32(const int32_t *a, const int32_t *b, int n) {
    return n == 0 || (a && b && !memcmp(a, b, 4 * (size_t)n));
}

static void test_trajectories(void) {
    const char *path = tmp_path("traj.sqlite");
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) {
        report("trajectories: open", 0, "%s", hy_last_error());
        return;
    }
    int64_t run;
    begin_run(s, "t", "rl", &run);
    const int32_t prompt[] = {1, 2, 3, 100351, 0, -1, 2147483647};
    const int32_t completion[] = {7, 8, 9, 10};
    const uint8_t mask[] = {1, 1, 0, 1};
    const float lp[] = {-0.0f, -1.5f, -1e-30f, -88.25f};
    const int32_t versions[] = {3, 3, 4, 4};
    run_store_trajectory t[3] = {
        {.step = 2,
         .id = 10,
         .group_id = 1,
         .weight_version = 3,
         .prompt_tokens = prompt,
         .n_prompt = 7,
         .completion_tokens = completion,
         .n_completion = 4,
         .generated_mask = mask,
         .logprobs = lp,
         .token_versions = versions,
         .reward = 1.0,
         .finish_reason = "stop",
         .text = "<b>x</b> & ✓"},
        {.step = 2,
         .id = 11,
         .group_id = 1,
         .weight_version = 3,
         .prompt_tokens = prompt,
         .n_prompt = 7,
         .completion_tokens = NULL,
         .n_completion = 0,
         .reward = NAN},
        {.step = 3,
         .id = 12,
         .group_id = -1,
         .weight_version = 4,
         .prompt_tokens = NULL,
         .n_prompt = 0,
         .completion_tokens = completion,
         .n_completion = 4,
         .logprobs = lp,
         .reward = -0.5,
         .finish_reason = "length"},
    };
    CHECK("trajectories: add 3", run_store_trajectory_add(s, run, t, 3) == 0);
    run_store_trajectory g;
    CHECK("trajectories: get full", run_store_trajectory_get(s, run, 10, &g) == 0);
    CHECK("trajectories: full round trip", g.step == 2 && g.id == 10 && g.group_id == 1 && g.weight_version == 3 &&
                                               g.n_prompt == 7 && same_i32(g.prompt_tokens, prompt, 7) &&
                                               g.n_completion == 4 && same_i32(g.completion_tokens, completion, 4) &&
                                               g.generated_mask && !memcmp(g.generated_mask, mask, 4) && g.logprobs &&
                                               !memcmp(g.logprobs, lp, 16) && g.token_versions &&
                                               same_i32(g.token_versions, versions, 4) && g.reward == 1.0 &&
                                               !strcmp(g.finish_reason, "stop") && !strcmp(g.text, "<b>x</b> & ✓"));
    CHECK("trajectories: -0.0 logprob keeps its sign", g.logprobs && signbit(g.logprobs[0]));
    run_store_trajectory_free(&g);
    CHECK("trajectories: get sparse", run_store_trajectory_get(s, run, 11, &g) == 0);
    CHECK("trajectories: sparse round trip", g.n_completion == 0 && g.n_prompt == 7 && !g.generated_mask &&
                                                 !g.logprobs && !g.token_versions && isnan(g.reward) &&
                                                 !g.finish_reason && !g.text);
    run_store_trajectory_free(&g);
    run_store_trajectory *recent;
    int n;
    CHECK("trajectories: recent", run_store_trajectories_recent(s, run, 2, &recent, &n) == 0 && n == 2 &&
                                      recent[0].id == 12 && recent[1].id == 11 && recent[0].n_prompt == 0);
    run_store_trajectories_free(recent, n);
    int64_t count;
    CHECK("trajectories: count", run_store_trajectory_count(s, run, &count) == 0 && count == 3);
    t[0].reward = 0.25;
    CHECK("trajectories: re-adding an id replaces it", run_store_trajectory_add(s, run, t, 1) == 0 &&
                                                           run_store_trajectory_get(s, run, 10, &g) == 0 &&
                                                           g.reward == 0.25);
    run_store_trajectory_free(&g);
    CHECK("trajectories: still 3", run_store_trajectory_count(s, run, &count) == 0 && count == 3);
    expect_error("trajectories: missing id", run_store_trajectory_get(s, run, 99, &g), path, "99", NULL);
    run_store_trajectory bad = t[0];
    bad.completion_tokens = NULL;
    expect_error("trajectories: count without array", run_store_trajectory_add(s, run, &bad, 1), path, "completion",
                 NULL);
    expect_error("trajectories: unknown run", run_store_trajectory_add(s, run + 50, t, 1), path, "no run", NULL);
    // one bad record in a batch: nothing of the batch is written
    run_store_trajectory batch[2] = {t[0], t[0]};
    batch[0].id = 20;
    batch[1].id = 21;
    batch[1].n_prompt = -3;
    expect_error("trajectories: bad record in a batch", run_store_trajectory_add(s, run, batch, 2), path, "21", NULL);
    CHECK("trajectories: batch not written", run_store_trajectory_count(s, run, &count) == 0 && count == 3);
    run_store_close(s);
    // a damaged blob is refused on read, not trusted
    raw_exec(path, "UPDATE trajectories SET logprobs = x'000102' WHERE id = 10");
    CHECK("trajectories: reopen", run_store_open(path, RUN_STORE_EXISTING, &s) == 0);
    expect_error("trajectories: damaged blob", run_store_trajectory_get(s, run, 10, &g), path, "logprobs", "id 10",
                 NULL);
    expect_error("trajectories: damaged blob in recent", run_store_trajectories_recent(s, run, 10, &recent, &n), path,
                 "logprobs", NULL);
    run_store_close(s);
}

static void test_checkpoints_evals(void) {
    const char *path = tmp_path("ckpt.sqlite");
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) {
        report("checkpoints: open", 0, "%s", hy_last_error());
        return;
    }
    int64_t run;
    begin_run(s, "c", "dpo", &run);
    CHECK("checkpoints: add", run_store_checkpoint_add(s, run, 200, "out/step-200") == 0 &&
                                  run_store_checkpoint_add(s, run, 100, "out/step-100") == 0 &&
                                  run_store_checkpoint_add(s, run, 200, "out/step-200b") == 0);
    run_store_checkpoint *c;
    int n;
    CHECK("checkpoints: list in step order, replaced", run_store_checkpoints_list(s, run, &c, &n) == 0 && n == 2 &&
                                                           c[0].step == 100 && !strcmp(c[1].path, "out/step-200b") &&
                                                           c[1].created > 1.6e9);
    run_store_checkpoints_free(c, n);
    expect_error("checkpoints: empty path", run_store_checkpoint_add(s, run, 1, ""), path, "path", NULL);
    expect_error("checkpoints: unknown run", run_store_checkpoint_add(s, 99, 1, "p"), path, "99", NULL);
    CHECK("evals: add", run_store_eval_add(s, run, 100, "gsm8k", "accuracy", 0.5, 1319) == 0 &&
                            run_store_eval_add(s, run, 50, "gsm8k", "accuracy", 0.25, 1319) == 0 &&
                            run_store_eval_add(s, run, 100, "aime", "pass@1", NAN, 30) == 0);
    run_store_eval *e;
    CHECK("evals: list", run_store_evals_list(s, run, &e, &n) == 0 && n == 3 && !strcmp(e[0].task, "aime") &&
                             isnan(e[0].value) && e[0].n == 30 && e[1].step == 50 && e[2].value == 0.5 &&
                             !strcmp(e[2].metric, "accuracy"));
    run_store_evals_free(e, n);
    expect_error("evals: no task", run_store_eval_add(s, run, 1, "", "m", 1, 1), path, "task", NULL);
    expect_error("evals: unknown run", run_store_eval_add(s, 98, 1, "t", "m", 1, 1), path, "98", NULL);
    run_store_close(s);
}

// ---- several processes

// Children wait on the pipe so they all start writing at the same moment.
static void wait_for_start(int fd) {
    char c;
    while (read(fd, &c, 1) < 0) {
    }
}

static int wait_children(pid_t *pids, int n) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status)) ok = 0;
    }
    return ok;
}

enum { N_PROC = 4, N_STEPS = 150, N_TRAJ = 40 };

// Child of the fresh-file race: open (creating the schema if first), one run, metrics, trajectories.
static int fresh_child(const char *path, int k) {
    run_store *s;
    int64_t run;
    if (run_store_open(path, RUN_STORE_CREATE, &s) || begin_run(s, "racer", "rl", &run)) return 1;
    const char *names[] = {"loss", "reward_mean", "tokens_per_s"};
    for (int step = 0; step < N_STEPS; step++) {
        const double v[] = {k + step * 1e-3, -step, 1000.0 * k};
        if (run_store_metrics_log(s, run, step, 3, names, v)) return 1;
    }
    const int32_t toks[] = {1, 2, 3};
    for (int i = 0; i < N_TRAJ; i++) {
        run_store_trajectory t = {.step = i,
                                  .id = i,
                                  .group_id = i / 4,
                                  .prompt_tokens = toks,
                                  .n_prompt = 3,
                                  .completion_tokens = toks,
                                  .n_completion = 3,
                                  .reward = k};
        if (run_store_trajectory_add(s, run, &t, 1)) return 1;
    }
    if (run_store_run_end(s, run, "done")) return 1;
    run_store_close(s);
    return 0;
}

static void test_concurrent_fresh(void) {
    const char *path = tmp_path("race.sqlite");
    int fds[2];
    if (pipe(fds)) return;
    pid_t pids[N_PROC];
    for (int k = 0; k < N_PROC; k++) {
        if ((pids[k] = fork()) == 0) {
            close(fds[1]);
            wait_for_start(fds[0]);
            const int rc = fresh_child(path, k);
            if (rc) fprintf(stderr, "child %d: %s\n", k, hy_last_error());
            _exit(rc);
        }
    }
    close(fds[0]);
    close(fds[1]);  // EOF wakes every child at once
    CHECK("concurrent fresh: every child succeeded", wait_children(pids, N_PROC));
    CHECK("concurrent fresh: one schema", raw_count(path, "SELECT count(*) FROM store_meta") == 2);
    CHECK("concurrent fresh: every run", raw_count(path, "SELECT count(*) FROM runs WHERE status = 'done'") == N_PROC);
    CHECK("concurrent fresh: no metric lost", raw_count(path, "SELECT count(*) FROM metrics") == N_PROC * N_STEPS * 3);
    CHECK("concurrent fresh: no trajectory lost",
          raw_count(path, "SELECT count(*) FROM trajectories") == N_PROC * N_TRAJ);
    CHECK("concurrent fresh: last steps", raw_count(path, "SELECT count(*) FROM runs WHERE last_step = 149") == N_PROC);
}

// The learner logs metrics of one run while workers add its trajectories and a reader (this
// process) reads series and runs; rows are disjoint, so every one must be there at the end.
static void test_concurrent_shared_run(void) {
    const char *path = tmp_path("shared.sqlite");
    run_store *s;
    int64_t run;
    if (run_store_open(path, RUN_STORE_CREATE, &s) || begin_run(s, "shared", "rl", &run)) {
        report("concurrent shared: setup", 0, "%s", hy_last_error());
        return;
    }
    run_store_close(s);  // SQLite connections must not cross fork()
    int fds[2];
    if (pipe(fds)) return;
    pid_t pids[N_PROC];
    for (int k = 0; k < N_PROC; k++) {
        if ((pids[k] = fork()) == 0) {
            close(fds[1]);
            wait_for_start(fds[0]);
            run_store *c;
            int rc = run_store_open(path, RUN_STORE_EXISTING, &c);
            for (int step = 0; !rc && step < 2 * N_STEPS; step++) {
                if (k == 0) {  // the learner
                    const char *names[] = {"loss", "mismatch_kl", "clip_fraction", "grad_norm"};
                    const double v[] = {1.0 / (step + 1), 1e-4, 0.1, 2.0};
                    rc = run_store_metrics_log(c, run, step, 4, names, v);
                } else {  // a worker: a batch of 2 trajectories per step, ids disjoint across workers
                    const int32_t toks[] = {5, 6, 7, 8};
                    const float lp[] = {-1, -2, -3, -4};
                    run_store_trajectory t[2];
                    for (int j = 0; j < 2; j++)
                        t[j] = (run_store_trajectory){.step = step,
                                                      .id = (int64_t)k * 1000000 + step * 2 + j,
                                                      .group_id = step,
                                                      .weight_version = step / 10,
                                                      .prompt_tokens = toks,
                                                      .n_prompt = 4,
                                                      .completion_tokens = toks,
                                                      .n_completion = 4,
                                                      .logprobs = lp,
                                                      .reward = j};
                    rc = run_store_trajectory_add(c, run, t, 2);
                }
            }
            if (rc) fprintf(stderr, "child %d: %s\n", k, hy_last_error());
            run_store_close(c);
            _exit(rc ? 1 : 0);
        }
    }
    close(fds[0]);
    close(fds[1]);
    // the reader: WAL lets it read while they write
    int reads_ok = 1, reads = 0;
    if (run_store_open(path, RUN_STORE_EXISTING, &s) == 0) {
        for (int i = 0; i < 50; i++) {
            int64_t *steps;
            double *values;
            int n;
            int64_t count;
            if (run_store_metric_series(s, run, "loss", &steps, &values, &n) ||
                run_store_trajectory_count(s, run, &count)) {
                reads_ok = 0;
                printf("reader: %s\n", hy_last_error());
                break;
            }
            for (int j = 0; j < n; j++) reads_ok &= steps[j] == j;  // a consistent prefix, in order
            free(steps);
            free(values);
            reads++;
            usleep(2000);
        }
        run_store_close(s);
    } else {
        reads_ok = 0;
    }
    CHECK("concurrent shared: every child succeeded", wait_children(pids, N_PROC));
    report("concurrent shared: reader saw consistent series", reads_ok, "after %d reads", reads);
    CHECK("concurrent shared: no metric lost", raw_count(path, "SELECT count(*) FROM metrics") == 2 * N_STEPS * 4);
    CHECK("concurrent shared: no trajectory lost",
          raw_count(path, "SELECT count(*) FROM trajectories") == (N_PROC - 1) * 2 * N_STEPS * 2);
}

// ---- refusals

static void test_newer_schema(void) {
    const char *path = tmp_path("newer.sqlite");
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) return;
    run_store_close(s);
    raw_exec(path, "UPDATE store_meta SET value = 99 WHERE key = 'schema_version'");
    expect_error("newer schema refused", run_store_open(path, RUN_STORE_EXISTING, &s), path, "schema version 99",
                 "newer", NULL);
    expect_error("newer schema refused (create mode)", run_store_open(path, RUN_STORE_CREATE, &s), path, "newer", NULL);
    CHECK("newer schema left untouched",
          raw_count(path, "SELECT value FROM store_meta WHERE key = 'schema_version'") == 99);
}

static void write_file(const char *path, const char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(bytes, 1, n, f);
        fclose(f);
    }
}

static void test_not_a_store(void) {
    run_store *s;
    const char *text = tmp_path("notes.txt");
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = "this is not a database. "[i % 24];
    write_file(text, junk, sizeof junk);
    expect_error("text file refused", run_store_open(text, RUN_STORE_EXISTING, &s), text, "not a SQLite database",
                 NULL);
    expect_error("text file refused (create mode)", run_store_open(text, RUN_STORE_CREATE, &s), text,
                 "not a SQLite database", NULL);

    const char *garbled = tmp_path("garbled.sqlite");
    if (run_store_open(garbled, RUN_STORE_CREATE, &s) == 0) {
        int64_t run;
        begin_run(s, "g", "sft", &run);
        run_store_close(s);
    }
    FILE *f = fopen(garbled, "r+b");
    if (f) {
        fwrite("garbage garbage!", 1, 16, f);  // the 16-byte magic "SQLite format 3\0"
        fclose(f);
    }
    expect_error("garbled header refused", run_store_open(garbled, RUN_STORE_EXISTING, &s), garbled,
                 "not a SQLite database", NULL);

    const char *foreign = tmp_path("foreign.sqlite");
    raw_exec(foreign, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    expect_error("foreign SQLite refused", run_store_open(foreign, RUN_STORE_CREATE, &s), foreign,
                 "not a hybrid run store", NULL);
    CHECK("foreign SQLite left alone", raw_count(foreign, "SELECT count(*) FROM sqlite_master") == 1);

    const char *empty = tmp_path("empty.sqlite");
    write_file(empty, "", 0);
    expect_error("empty file refused for reading", run_store_open(empty, RUN_STORE_EXISTING, &s), empty,
                 "not a hybrid run store", NULL);
    const char *missing = tmp_path("missing.sqlite");
    expect_error("missing file refused for reading", run_store_open(missing, RUN_STORE_EXISTING, &s), missing,
                 "No such file", NULL);
    CHECK("missing file not created", access(missing, F_OK) != 0);
    expect_error("folder refused", run_store_open(g_tmp, RUN_STORE_CREATE, &s), g_tmp, "folder", NULL);
    char under_file[600];
    snprintf(under_file, sizeof under_file, "%s/x.sqlite", text);
    expect_error("folder that is a file", run_store_open(under_file, RUN_STORE_CREATE, &s), text, NULL);
}

// Another connection holds the write lock: a write waits for the busy timeout, then fails naming
// the file and the step — and the store stays usable.
static void test_locked(void) {
    const char *path = tmp_path("locked.sqlite");
    run_store *s;
    int64_t run;
    if (run_store_open(path, RUN_STORE_CREATE, &s) || begin_run(s, "l", "rl", &run)) return;
    sqlite3 *holder;
    sqlite3_open(path, &holder);
    sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    run_store_set_busy_timeout(s, 50);
    const char *name = "loss";
    const double v = 1;
    expect_error("locked: write fails after the timeout", run_store_metrics_log(s, run, 1, 1, &name, &v), path,
                 "BEGIN IMMEDIATE", "locked", NULL);
    int64_t *steps;
    double *values;
    int n;
    CHECK("locked: reads still work", run_store_metric_series(s, run, "loss", &steps, &values, &n) == 0 && n == 0);
    free(steps);
    free(values);
    sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(holder);
    CHECK("locked: write works once released", run_store_metrics_log(s, run, 1, 1, &name, &v) == 0);
    run_store_close(s);
}

// ---------------------------------------------------------------- demo store for test_report.sh

static double noise(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 8) / (double)(1u << 24) - 0.5;
}

static int make_demo(const char *path) {
    remove_store(path);
    run_store *s;
    if (run_store_open(path, RUN_STORE_CREATE, &s)) return -1;
    unsigned rng = 12345;
    int64_t sft, rl;
    run_store_run_info a = {"baseline-sft", "sft", "lr: 2.0e-5\nepochs: 2\n", "models/tiny", NULL};
    int rc = run_store_run_begin(s, &a, &sft);
    for (int step = 0; !rc && step < 60; step++) {
        const char *names[] = {RUN_METRIC_LOSS, RUN_METRIC_GRAD_NORM, RUN_METRIC_LR};
        const double v[] = {2.5 * exp(-step / 20.0) + 0.3 + 0.05 * noise(&rng), 1 + 0.2 * noise(&rng), 2e-5};
        rc = run_store_metrics_log(s, sft, step, 3, names, v);
    }
    if (!rc) rc = run_store_run_end(s, sft, "done");
    run_store_run_info b = {"<script>alert(\"pwn\")</script> rl & co", "rl",
                            "algorithm: grpo\nclip: [0.2, 0.28]\nnote: \"</pre><script>x()</script>\"\n",
                            "models/<tiny>", "0123abcd"};
    if (!rc) rc = run_store_run_begin(s, &b, &rl);
    for (int step = 0; !rc && step < 300; step++) {
        const double t = step / 300.0;
        const char *names[] = {RUN_METRIC_LOSS,
                               RUN_METRIC_REWARD,
                               RUN_METRIC_ACCURACY,
                               RUN_METRIC_MISMATCH_KL,
                               RUN_METRIC_CLIP_FRACTION,
                               RUN_METRIC_GRAD_NORM,
                               RUN_METRIC_LR,
                               RUN_METRIC_TOKENS_PER_S,
                               RUN_METRIC_SYNC_TIME,
                               "entropy <nats>",
                               "all_nan"};
        const double v[] = {0.05 * noise(&rng),
                            0.2 + 0.6 * t + 0.15 * noise(&rng),
                            0.3 + 0.5 * t + 0.1 * noise(&rng),
                            2e-4 + 1e-4 * noise(&rng),
                            0.02 + 0.01 * noise(&rng),
                            step == 150 ? INFINITY : 0.8 + 0.3 * noise(&rng),
                            1e-6 * fmin(1, step / 30.0),
                            18000 + 2000 * noise(&rng),
                            0.35 + 0.05 * noise(&rng),
                            1.2 - 0.5 * t,
                            NAN};
        rc = run_store_metrics_log(s, rl, step, 11, names, v);
    }
    const char *one = "one_point";
    const double one_v = 3.25;
    if (!rc) rc = run_store_metrics_log(s, rl, 299, 1, &one, &one_v);
    for (int step = 0; !rc && step <= 300; step += 50)
        rc = run_store_eval_add(s, rl, step, "gsm8k", "accuracy", 0.3 + step / 600.0, 1319) ||
             run_store_eval_add(s, rl, step, "math<500>", "pass@1", 0.1 + step / 1000.0, 500);
    for (int step = 100; !rc && step <= 300; step += 100) {
        char p[64];
        snprintf(p, sizeof p, "out/rl/step-%d", step);
        rc = run_store_checkpoint_add(s, rl, step, p);
    }
    const int32_t prompt[] = {1, 2, 3, 4, 5};
    const int32_t completion[] = {9, 8, 7, 6};
    const uint8_t mask[] = {1, 1, 0, 1};
    const float lp[] = {-0.5f, -1.0f, 0.0f, -0.25f};
    for (int i = 0; !rc && i < 16; i++) {
        run_store_trajectory t = {.step = 290 + i / 4,
                                  .id = i,
                                  .group_id = i / 4,
                                  .weight_version = 289 + i / 4,
                                  .prompt_tokens = prompt,
                                  .n_prompt = 5,
                                  .completion_tokens = completion,
                                  .n_completion = 4,
                                  .generated_mask = mask,
                                  .logprobs = lp,
                                  .reward = i % 2,
                                  .finish_reason = "stop",
                                  .text = "The answer is <b>42</b> & \"done\" <img src=x onerror=alert(1)>"};
        rc = run_store_trajectory_add(s, rl, &t, 1);
    }
    // rl stays "running": the report shows a live run
    run_store_close(s);
    return rc;
}

// ---------------------------------------------------------------- driver

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case cases[] = {
    {"schema", test_schema},
    {"runs", test_runs},
    {"metrics", test_metrics},
    {"trajectories", test_trajectories},
    {"checkpoints_evals", test_checkpoints_evals},
    {"concurrent_fresh", test_concurrent_fresh},
    {"concurrent_shared_run", test_concurrent_shared_run},
    {"newer_schema", test_newer_schema},
    {"not_a_store", test_not_a_store},
    {"locked", test_locked},
};

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--make-demo")) {
        if (make_demo(argv[2])) {
            fprintf(stderr, "test_run_store --make-demo: %s\n", hy_last_error());
            return 1;
        }
        return 0;
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    if (only) {
        int known = 0;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) known |= !strcmp(cases[i].name, only);
        if (!known) {
            printf("unknown case '%s'; cases:", only);
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) printf(" %s", cases[i].name);
            printf("\n");
            return 2;
        }
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_run_store.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (only && strcmp(cases[i].name, only)) continue;
        const int before = n_fail;
        cases[i].fn();
        printf("%s %s\n", n_fail == before ? "ok  " : "FAIL", cases[i].name);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd)) printf("note: could not remove %s\n", g_tmp);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
