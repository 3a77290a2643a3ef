// `hybrid run` end to end with real processes on loopback (CPU): a learner and two rollout workers
// over ZeroMQ run GRPO steps on a tiny model while a peer sends garbage frames and a worker is
// killed mid-run; then a learner is killed and the same command resumes it. Checked through the
// run store: every trajectory exactly once, every step's metrics once, versions advancing,
// checkpoints, evaluations, the report; and no worker outlives its learner. Then a colocated run
// scores every completion on a `hybrid reward-server` process, and a worker runs calculator episodes.
//
// Run from the build directory (ctest does): ./hybrid is the binary under test. argv[1] = source
// directory (unused: the model is made here with `hybrid init --preset demo`).
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "common/run_store.h"
#include "proto/transport.h"

static char tmp[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    fclose(f);
    return s;
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

// Starts ./hybrid with args (NULL-terminated), stdout and stderr to log.
static pid_t start(const char *const *args, const char *log) {
    const pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(126);
        const char *argv[64] = {"./hybrid"};
        int n = 1;
        for (; args[n - 1]; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        execv("./hybrid", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

// Waits until log contains needle (1) or the process exits / timeout_s passes (0).
static int wait_for(pid_t pid, const char *log, const char *needle, double timeout_s) {
    const double t0 = now_s();
    while (now_s() - t0 < timeout_s) {
        char *s = read_file(log);
        const int found = strstr(s, needle) != NULL;
        free(s);
        if (found) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        sleep_ms(50);
    }
    return 0;
}

static int wait_exit(pid_t pid, double timeout_s) {
    const double t0 = now_s();
    int status;
    while (now_s() - t0 < timeout_s) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

// Pids of worker processes whose command line contains marker (their --connect endpoint).
static int find_workers(const char *marker, const char *name, pid_t *pids, int max) {
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        const pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        const size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (!buf[i]) buf[i] = ' ';
        buf[len] = 0;
        char want[64] = "";
        if (name) snprintf(want, sizeof want, "--name %s", name);
        if (strstr(buf, " worker ") && strstr(buf, marker) && (!name || strstr(buf, want))) pids[n++] = pid;
    }
    if (d) closedir(d);
    return n;
}

// The endpoint the learner printed ("... rollout workers on tcp://127.0.0.1:PORT").
static int learner_endpoint(const char *log, char *ep, size_t n) {
    char *s = read_file(log);
    const char *p = strstr(s, "rollout workers on ");
    int ok = 0;
    if (p) {
        p += strlen("rollout workers on ");
        size_t k = 0;
        while (p[k] && p[k] != '\n' && k + 1 < n) k++;
        memcpy(ep, p, k);
        ep[k] = 0;
        ok = 1;
    }
    free(s);
    return ok;
}

// A peer that is not a worker: raw garbage, then a well-formed frame of a type the learner does
// not take from workers.
static void send_garbage(const char *endpoint) {
    proto_ctx *ctx = proto_ctx_new();
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.routing_id = "garbage-peer";
    o.linger_ms = 500;
    proto_socket *s = proto_socket_new(ctx, ZMQ_DEALER, &o);
    CHECK(s && proto_socket_connect(s, endpoint) == 0, "garbage peer: connect %s", endpoint);
    static const char junk[] = "\x93\xa4HYBR\xff not a frame at all";
    CHECK(proto_socket_send_raw(s, NULL, junk, sizeof junk, 2000) == 0, "garbage peer: send");
    CHECK(proto_socket_send_raw(s, NULL, "x", 1, 2000) == 0, "garbage peer: send");
    proto_msg m = {.type = PROTO_CONTROL};
    m.u.control = (proto_control){PROTO_CMD_PAUSE, "not yours to pause"};
    CHECK(proto_socket_send(s, NULL, &m, 2000) == 0, "garbage peer: send control");
    sleep_ms(300);
    proto_socket_destroy(s);
    proto_ctx_destroy(ctx);
}

typedef struct {
    int64_t run_id;
    char status[16];
    int64_t trajectories;
    int metric_steps, metric_dupes;
    int evals, checkpoints;
    int versions_ok;
} store_view;

static void view_store(const char *path, const char *run_name, int steps, store_view *v) {
    memset(v, 0, sizeof *v);
    run_store *s;
    if (run_store_open(path, RUN_STORE_EXISTING, &s)) {
        CHECK(0, "open store %s", path);
        return;
    }
    CHECK(run_store_run_find(s, run_name, &v->run_id) == 0, "run %s in %s", run_name, path);
    run_store_run r;
    if (run_store_run_get(s, v->run_id, &r) == 0) {
        snprintf(v->status, sizeof v->status, "%s", r.status);
        run_store_run_free(&r);
    }
    run_store_trajectory_count(s, v->run_id, &v->trajectories);
    int64_t *st;
    double *val;
    int n;
    if (run_store_metric_series(s, v->run_id, "reward_mean", &st, &val, &n) == 0) {
        v->metric_steps = n;
        for (int i = 0; i < n; i++) v->metric_dupes += st[i] != i + 1;
        free(st);
        free(val);
    }
    run_store_eval *ev;
    if (run_store_evals_list(s, v->run_id, &ev, &n) == 0) {
        v->evals = n;
        run_store_evals_free(ev, n);
    }
    run_store_checkpoint *ck;
    if (run_store_checkpoints_list(s, v->run_id, &ck, &n) == 0) {
        v->checkpoints = n;
        run_store_checkpoints_free(ck, n);
    }
    // versions advance: a trajectory of step s was generated by version s−1 − k .. s−1 (k = 1)
    run_store_trajectory *tr;
    if (run_store_trajectories_recent(s, v->run_id, 1000, &tr, &n) == 0) {
        v->versions_ok = n > 0;
        for (int i = 0; i < n; i++)
            if (tr[i].weight_version > tr[i].step - 1 || tr[i].weight_version < tr[i].step - 2) v->versions_ok = 0;
        run_store_trajectories_free(tr, n);
    }
    (void)steps;
    run_store_close(s);
}

#define RUN_ARGS(out, steps, workers, save)                                                                       \
    "run", "--model", model, "--out", out, "--task", "arithmetic", "--task-params",                                \
        "digits=1,terms=2,ops=+,style=terse", "--chat", "0", "--steps", steps, "--groups-per-step", "4",           \
        "--group-size", "4", "--max-tokens", "4", "--eval-prompts", "8", "--eval-every", "3", "--workers", workers, \
        "--device", "cpu", "--memory", "64MiB", "--max-len", "64", "--save-every", save, "--lr", "1e-3"

static void test_workers_garbage_and_a_lost_worker(const char *model) {
    char out[300], log[320], store[340];
    snprintf(out, sizeof out, "%s/a", tmp);
    snprintf(log, sizeof log, "%s/a.log", tmp);
    snprintf(store, sizeof store, "%s/runs.sqlite", out);
    const char *args[] = {RUN_ARGS(out, "30", "2", "0"), "--sft-steps", "30", "--sft-batch-size", "16", "--sft-lr", "3e-3", NULL};
    const int failures_before = check_failures;
    const pid_t pid = start(args, log);
    CHECK(wait_for(pid, log, "rollout workers on", 600), "learner did not start its workers");
    char ep[256] = "";
    CHECK(learner_endpoint(log, ep, sizeof ep), "no endpoint in the log");
    if (ep[0]) send_garbage(ep);
    CHECK(wait_for(pid, log, "rl step 2/30", 600), "no RL progress");
    pid_t w[4];
    const int nw = ep[0] ? find_workers(ep, "w0", w, 4) : 0;
    CHECK(nw == 1, "worker w0 not found (%d)", nw);
    if (nw == 1) kill(w[0], SIGKILL);
    const int rc = wait_exit(pid, 900);
    CHECK(rc == 0, "hybrid run exited with %d", rc);
    char *text = read_file(log);
    CHECK(strstr(text, "rollout worker w0 lost"), "the lost worker was not noticed");
    CHECK(count_of(text, "rollout worker w0 joined") >= 2, "w0 was not restarted");
    CHECK(strstr(text, "garbage-peer"), "the garbage frames were not logged with their peer");
    CHECK(strstr(text, "rl step 30/30"), "the run did not finish");
    CHECK(strstr(text, "updates\": 1"), "no step made an update");
    store_view v;
    view_store(store, "run-a", 30, &v);
    CHECK(!strcmp(v.status, "done"), "run status %s", v.status);
    CHECK(v.trajectories == 30 * 4 * 4, "%lld trajectories stored, expected %d (each exactly once)",
          (long long)v.trajectories, 30 * 4 * 4);
    CHECK(v.metric_steps == 30 && v.metric_dupes == 0, "reward_mean logged for %d steps (%d out of order)",
          v.metric_steps, v.metric_dupes);
    CHECK(v.versions_ok, "trajectory weight versions do not follow the steps");
    CHECK(v.evals >= 10, "%d evaluation rows", v.evals);
    char report[360];
    snprintf(report, sizeof report, "%s/report.html", out);
    struct stat st;
    CHECK(stat(report, &st) == 0 && st.st_size > 1000, "no report at %s", report);
    pid_t left[8];
    CHECK(ep[0] && find_workers(ep, NULL, left, 8) == 0, "workers outlived the run");
    if (check_failures > failures_before) fprintf(stderr, "---- %s ----\n%s\n", log, text);
    free(text);
}

static void test_learner_killed_and_resumed(const char *model) {
    char out[300], log[320], log2[320], store[340], ckpt[360];
    snprintf(out, sizeof out, "%s/b", tmp);
    snprintf(log, sizeof log, "%s/b.log", tmp);
    snprintf(log2, sizeof log2, "%s/b2.log", tmp);
    snprintf(store, sizeof store, "%s/runs.sqlite", out);
    snprintf(ckpt, sizeof ckpt, "checkpoint %s/step-000002", out);
    const char *args[] = {RUN_ARGS(out, "6", "1", "1"), NULL};
    const int failures_before = check_failures;
    const pid_t pid = start(args, log);
    CHECK(wait_for(pid, log, "rollout workers on", 600), "learner did not start its workers");
    char ep[256] = "";
    learner_endpoint(log, ep, sizeof ep);
    CHECK(wait_for(pid, log, ckpt, 600), "no checkpoint at step 2");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pid_t w[4];
    int nw = 1;
    for (int i = 0; i < 100 && nw; i++, sleep_ms(50)) nw = find_workers(ep, NULL, w, 4);
    CHECK(nw == 0, "%d workers outlived their killed learner", nw);
    const pid_t again = start(args, log2);
    const int rc = wait_exit(again, 900);
    CHECK(rc == 0, "resumed hybrid run exited with %d", rc);
    char *text = read_file(log2);
    CHECK(strstr(text, "continuing from"), "the second start did not continue the run");
    CHECK(!strstr(text, "rl step 1/6"), "the resumed run repeated step 1");
    CHECK(strstr(text, "rl step 6/6"), "the resumed run did not finish");
    store_view v;
    view_store(store, "run-b", 6, &v);
    CHECK(!strcmp(v.status, "done"), "run status %s", v.status);
    CHECK(v.trajectories == 6 * 4 * 4, "%lld trajectories stored, expected %d", (long long)v.trajectories, 6 * 4 * 4);
    CHECK(v.metric_steps == 6 && v.metric_dupes == 0, "reward_mean logged for %d steps (%d out of order)",
          v.metric_steps, v.metric_dupes);
    CHECK(v.checkpoints >= 6, "%d checkpoints recorded", v.checkpoints);
    if (check_failures > failures_before) fprintf(stderr, "---- %s ----\n%s\n", log2, text);
    free(text);
}

// Scoring on an external reward server: `hybrid reward-server` as its own process, the learner
// colocated; every completion of every step is scored there (its served count says so).
static void test_reward_server_scores(const char *model) {
    const int failures_before = check_failures;
    char out[300], log[320], srv_log[320];
    snprintf(out, sizeof out, "%s/c", tmp);
    snprintf(log, sizeof log, "%s/c.log", tmp);
    snprintf(srv_log, sizeof srv_log, "%s/server.log", tmp);
    const char *srv_args[] = {"reward-server", "--bind", "tcp://127.0.0.1:*", NULL};
    const pid_t srv = start(srv_args, srv_log);
    CHECK(wait_for(srv, srv_log, "listening on ", 120), "the reward server did not start");
    char *text = read_file(srv_log), ep[256] = "";
    const char *p = strstr(text, "listening on ");
    if (p) sscanf(p + strlen("listening on "), "%255s", ep);
    free(text);
    const char *args[] = {RUN_ARGS(out, "2", "0", "0"), "--reward-server", ep, NULL};
    const pid_t pid = start(args, log);
    const int rc = wait_exit(pid, 900);
    CHECK(rc == 0, "hybrid run with a reward server exited with %d", rc);
    kill(srv, SIGTERM);
    CHECK(wait_exit(srv, 60) == 0, "the reward server did not stop cleanly on SIGTERM");
    text = read_file(srv_log);
    CHECK(strstr(text, "served 32, errors 0"), "the server did not score the 2 × 4 × 4 completions: %s",
          strstr(text, "stopped") ? strstr(text, "stopped") : "(no stop line)");
    free(text);
    text = read_file(log);
    CHECK(strstr(text, "rl step 2/2") && strstr(text, "\"score_errors\": 0"), "the run did not finish scoring cleanly");
    if (check_failures > failures_before) fprintf(stderr, "---- %s ----\n%s\n", log, text);
    free(text);
}

// Environment episodes end to end: calculator episodes generated by a worker process, rewards by
// replay, held-out episodes evaluated through the worker (a random model scores 0: this checks the
// wiring, tests/test_episode.c the episodes themselves).
static void test_environment_episodes(const char *model) {
    const int failures_before = check_failures;
    char out[300], log[320], store[340];
    snprintf(out, sizeof out, "%s/d", tmp);
    snprintf(log, sizeof log, "%s/d.log", tmp);
    snprintf(store, sizeof store, "%s/runs.sqlite", out);
    const char *args[] = {"run", "--model", model, "--out", out, "--env", "calculator", "--env-params",
                          "digits=1,terms=2,max_calls=2", "--chat", "1", "--steps", "2", "--groups-per-step", "2",
                          "--group-size", "2", "--max-tokens", "8", "--eval-prompts", "3", "--eval-samples", "2",
                          "--eval-every", "1", "--workers", "1", "--device", "cpu", "--memory", "64MiB", "--max-len",
                          "256", NULL};
    const pid_t pid = start(args, log);
    const int rc = wait_exit(pid, 900);
    CHECK(rc == 0, "hybrid run with an environment exited with %d", rc);
    char *text = read_file(log);
    CHECK(strstr(text, "eval calculator at step 2: pass@1"), "no held-out episodes evaluated after the last step");
    CHECK(strstr(text, "\"turns\": "), "no turns metric");
    // 2 steps × 2 prompts × 2 samples, and 3 evaluations (before, after step 1 and 2) × 3 × 2
    CHECK(strstr(text, "26 trajectories (26 episodes)"), "the worker did not run the 26 episodes");
    store_view v;
    view_store(store, "run-d", 2, &v);
    CHECK(v.trajectories == 2 * 2 * 2, "%lld episode trajectories stored, expected 8", (long long)v.trajectories);
    CHECK(v.evals >= 3 * 3, "%d evaluation rows (3 evaluations × pass@1, pass@2, mean reward)", v.evals);
    if (check_failures > failures_before) fprintf(stderr, "---- %s ----\n%s\n", log, text);
    free(text);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/hy_run_loop_XXXXXX");
    if (!mkdtemp(tmp)) return perror("mkdtemp"), 1;
    char model[300], cmd[700];
    snprintf(model, sizeof model, "%s/model", tmp);
    snprintf(cmd, sizeof cmd, "./hybrid init --preset demo --out %s --seed 3 > %s/init.log 2>&1", model, tmp);
    if (system(cmd) != 0) return fprintf(stderr, "FAIL: %s\n", cmd), 1;
    test_workers_garbage_and_a_lost_worker(model);
    test_learner_killed_and_resumed(model);
    test_reward_server_scores(model);
    test_environment_episodes(model);
    if (check_failures) {
        printf("logs kept in %s\n", tmp);
    } else {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) fprintf(stderr, "note: %s failed\n", cmd);
    }
    return check_summary("test_run_loop");
}
