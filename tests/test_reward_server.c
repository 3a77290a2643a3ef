// Tests for the reward client and server (evals/reward_client.h, evals/reward_server.h) and for
// `hybrid reward-server` as a separate process; also the usage example of all three.
//
// Client cases run against a scripted ROUTER in this process, so every misbehaviour a server can
// show is produced on purpose: results out of order, a duplicate, an id nobody asked for, garbage
// bytes, a message of the wrong type, a result that never comes. The in-process server case runs
// the real server loop with a pool of workers on inproc://. The process cases start ./hybrid (the
// build directory is the working directory) on tcp://127.0.0.1:* and read the port it prints: a
// scored batch (math right → 1, wrong → 0, unknown verifier → an error naming it), garbage and a
// wrong-type frame from another socket that must be logged and must not stop it, a control
// shutdown and its exit status and counters; then CURVE, plaintext refused, and SIGTERM.
//
// Usage: test_reward_server SOURCE_DIR [CASE]        (CASE: run only that case)
//        test_reward_server SOURCE_DIR external ENDPOINT   (check a server that is already running)
#include "check.h"
#include "common/hy_error.h"
#include "evals/reward_client.h"
#include "evals/reward_server.h"
#include "proto/keys.h"
#include "proto/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define HYBRID "./hybrid"

static char g_tmp[256];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---------------------------------------------------------------- log capture

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_log[16384];

static void capture_log(void *ud, const char *line) {
    pthread_mutex_lock(&g_log_lock);
    const size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_lock);
}

static int log_has(const char *needle) {
    pthread_mutex_lock(&g_log_lock);
    const int found = strstr(g_log, needle) != NULL;
    pthread_mutex_unlock(&g_log_lock);
    return found;
}

// ---------------------------------------------------------------- helpers

static proto_socket *open_socket(proto_ctx *c, int type, const char *key, const char *server_key,
                                 const char *routing_id) {
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.linger_ms = 0;
    o.key_file = key;
    o.server_key_file = server_key;
    o.routing_id = routing_id;
    proto_socket *s = proto_socket_new(c, type, &o);
    CHECK(s, "open socket: %s", hy_last_error());
    return s;
}

static proto_reward_request request(uint64_t id, char *verifier, char *text, char *reference) {
    return (proto_reward_request){.trajectory_id = id, .verifier = verifier, .completion_text = text,
                                 .reference = reference};
}

static void free_results(proto_reward_result *r, int n) {
    for (int i = 0; i < n; i++) proto_reward_result_free(&r[i]);
}

static int send_result(proto_socket *router, const char *peer, uint64_t id) {
    proto_score length = {"length", (double)id};
    proto_msg m = {.type = PROTO_REWARD_RESULT};
    m.u.reward_result = (proto_reward_result){.trajectory_id = id, .reward = (double)id / 100.0,
                                              .scores = {&length, 1}, .error = ""};
    return proto_socket_send(router, peer, &m, 2000);
}

// ---------------------------------------------------------------- client cases

// A scripted server: takes n requests, then answers with garbage, a heartbeat, a result for an id
// never asked, the first result twice, and the rest in reverse order.
typedef struct {
    proto_socket *router;
    int n;
    int ok;
    char why[512];
} script;

static void *scripted_server(void *arg) {
    script *sc = arg;
    char peer[PROTO_PEER_ID_MAX + 1];
    uint64_t ids[16];
    for (int i = 0; i < sc->n; i++) {
        proto_msg m;
        const int rc = proto_socket_recv(sc->router, &m, peer, 5000);
        if (rc != 0 || m.type != PROTO_REWARD_REQUEST) {
            snprintf(sc->why, sizeof sc->why, "request %d: rc %d: %s", i, rc, hy_last_error());
            if (rc == 0) proto_msg_free(&m);
            return NULL;
        }
        ids[i] = m.u.reward_request.trajectory_id;
        proto_msg_free(&m);
    }
    const proto_msg hb = {.type = PROTO_HEARTBEAT, .u.heartbeat = {.sender = "impostor", .role = PROTO_ROLE_VERIFIER}};
    int rc = proto_socket_send_raw(sc->router, peer, "\xde\xad\xbe\xef", 4, 2000);
    rc |= proto_socket_send(sc->router, peer, &hb, 2000);
    rc |= send_result(sc->router, peer, 999);
    rc |= send_result(sc->router, peer, ids[0]);
    rc |= send_result(sc->router, peer, ids[0]);
    for (int i = sc->n - 1; i >= 1; i--) rc |= send_result(sc->router, peer, ids[i]);
    sc->ok = rc == 0;
    if (rc) snprintf(sc->why, sizeof sc->why, "send: %s", hy_last_error());
    return NULL;
}

static void case_client_matching(void) {
    proto_ctx *ctx = proto_ctx_new();
    script sc = {.router = open_socket(ctx, ZMQ_ROUTER, NULL, NULL, NULL), .n = 4};
    proto_socket_bind(sc.router, "inproc://scripted");
    hy_reward_client *c;
    CHECK(hy_reward_client_new(&c, ctx, "inproc://scripted", NULL) == 0, "client connects: %s", hy_last_error());
    g_log[0] = '\0';
    hy_reward_client_set_log(c, capture_log, NULL);
    pthread_t t;
    pthread_create(&t, NULL, scripted_server, &sc);
    proto_reward_request reqs[4] = {request(40, "math", "4", "4"), request(10, "math", "1", "1"),
                                    request(30, "math", "3", "3"), request(20, "math", "2", "2")};
    proto_reward_result out[4];
    const int rc = hy_reward_client_score(c, reqs, 4, out, 5000);
    pthread_join(t, NULL);
    CHECK(sc.ok, "scripted server ran: %s", sc.why);
    int in_order = rc == 0;
    for (int i = 0; i < 4 && in_order; i++)
        in_order = out[i].trajectory_id == reqs[i].trajectory_id && out[i].reward == (double)reqs[i].trajectory_id / 100 &&
                   out[i].scores.n == 1 && strcmp(out[i].scores.items[0].name, "length") == 0 && out[i].error[0] == '\0';
    CHECK(in_order, "results in request order, whatever order they came in: rc %d: %s", rc, hy_last_error());
    hy_reward_client_stats st;
    hy_reward_client_stats_get(c, &st);
    CHECK(st.received == 4 && st.ignored == 2 && st.dropped == 2,
          "unknown id and duplicate ignored, garbage and heartbeat dropped: received %llu ignored %llu dropped %llu",
          (unsigned long long)st.received, (unsigned long long)st.ignored, (unsigned long long)st.dropped);
    CHECK(log_has("trajectory 999") && log_has("already answered") && log_has("malformed") &&
              log_has("dropped a heartbeat"),
          "each is logged; log:\n%s", g_log);
    free_results(out, 4);

    // a batch the client refuses sends nothing, and still leaves every out[i] freeable
    proto_reward_request dup[2] = {request(5, "math", "1", "1"), request(5, "math", "2", "2")};
    CHECK(hy_reward_client_score(c, dup, 2, out, 100) == -1 && strstr(hy_last_error(), "appears twice") &&
              strstr(out[1].error, "not sent"),
          "repeated id refused: %s", hy_last_error());
    free_results(out, 2);
    proto_reward_request bad[2] = {request(1, "math", "1", "1"), request(2, "", "2", "2")};
    CHECK(hy_reward_client_score(c, bad, 2, out, 100) == -1 && strstr(hy_last_error(), "request 1") &&
              strstr(hy_last_error(), "verifier"),
          "invalid request refused: %s", hy_last_error());
    free_results(out, 2);
    CHECK(hy_reward_client_score(c, NULL, 0, NULL, 0) == 0, "empty batch: %s", hy_last_error());
    hy_reward_client_destroy(c);
    proto_socket_destroy(sc.router);
    proto_ctx_destroy(ctx);
}

// A server that answers one request of three: -1 naming how many are missing, and the missing
// ones carry an error. A result left over from before (id 777) is ignored, not taken.
static void case_client_timeout(void) {
    proto_ctx *ctx = proto_ctx_new();
    proto_socket *router = open_socket(ctx, ZMQ_ROUTER, NULL, NULL, NULL);
    proto_socket_bind(router, "inproc://silent");
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.routing_id = "timeout-client";
    hy_reward_client *c;
    hy_reward_client_new(&c, ctx, "inproc://silent", &o);
    g_log[0] = '\0';
    hy_reward_client_set_log(c, capture_log, NULL);
    // the connection is up once a send to the client's id stops failing
    int rc = -1;
    for (int i = 0; i < 100 && rc; i++) {
        rc = send_result(router, "timeout-client", 777);
        if (rc) usleep(10000);
    }
    CHECK(rc == 0, "stale result sent: %s", hy_last_error());
    proto_reward_request reqs[3] = {request(1, "math", "1", "1"), request(2, "math", "2", "2"),
                                    request(3, "math", "3", "3")};
    proto_reward_result out[3];
    const double t0 = now_s();
    rc = hy_reward_client_score(c, reqs, 3, out, 300);
    const double waited = now_s() - t0;
    CHECK(rc == -1 && strstr(hy_last_error(), "3 of 3 results missing") && waited >= 0.29 && waited < 2,
          "timeout names the missing count: rc %d after %.3f s: %s", rc, waited, hy_last_error());
    CHECK(strstr(out[0].error, "no result within 300 ms") != NULL, "missing results carry an error: '%s'",
          out[0].error);
    CHECK(log_has("trajectory 777"), "stale result ignored; log:\n%s", g_log);
    free_results(out, 3);
    // the same batch again; the server answers only id 2 (queued before the batch is sent, read after)
    char peer[PROTO_PEER_ID_MAX + 1];
    proto_msg m;
    for (int i = 0; i < 3; i++)
        if (proto_socket_recv(router, &m, peer, 1000) == 0) proto_msg_free(&m);  // the first batch's requests
    send_result(router, "timeout-client", 2);
    rc = hy_reward_client_score(c, reqs, 3, out, 300);
    CHECK(rc == -1 && strstr(hy_last_error(), "2 of 3 results missing") && out[1].error[0] == '\0' &&
              out[1].reward == 0.02 && strstr(out[2].error, "no result"),
          "partial answer: 2 of 3 missing: rc %d: %s", rc, hy_last_error());
    free_results(out, 3);
    hy_reward_client_destroy(c);
    proto_socket_destroy(router);
    proto_ctx_destroy(ctx);
}

// ---------------------------------------------------------------- the server in this process

typedef struct {
    hy_reward_server *s;
    atomic_int stop;
    int rc;
} server_thread;

static void *run_server(void *arg) {
    server_thread *st = arg;
    st->rc = hy_reward_server_run(st->s, &st->stop);
    return NULL;
}

// 64 math requests through 4 workers (results come back in whatever order the workers finish),
// then the stop flag.
static void case_server_inproc(void) {
    proto_ctx *ctx = proto_ctx_new();
    hy_reward_server_opts o;
    hy_reward_server_opts_default(&o);
    o.threads = 4;
    o.log = capture_log;
    server_thread st = {0};
    CHECK(hy_reward_server_new(&st.s, ctx, "inproc://reward-server", &o) == 0, "server starts: %s", hy_last_error());
    if (!st.s) return;
    pthread_t t;
    pthread_create(&t, NULL, run_server, &st);
    hy_reward_client *c;
    hy_reward_client_new(&c, ctx, "inproc://reward-server", NULL);
    enum { N = 64 };
    proto_reward_request reqs[N];
    char text[N][64], ref[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "so the answer is \\boxed{%d}", i % 2 ? i + 1 : i);
        snprintf(ref[i], sizeof ref[i], "%d", i);
        reqs[i] = request(1000 + (uint64_t)i, "math", text[i], ref[i]);
    }
    proto_reward_result out[N];
    const int rc = hy_reward_client_score(c, reqs, N, out, 10000);
    int right = rc == 0;
    for (int i = 0; i < N && right; i++)
        right = out[i].trajectory_id == 1000 + (uint64_t)i && out[i].reward == (i % 2 ? 0.0 : 1.0) && !out[i].error[0];
    CHECK(right, "64 requests through 4 workers: rc %d: %s", rc, hy_last_error());
    free_results(out, N);
    const double t0 = now_s();
    atomic_store(&st.stop, 1);
    pthread_join(t, NULL);
    CHECK(st.rc == 0 && now_s() - t0 < 1.0, "stop flag ends the loop within a poll: rc %d after %.3f s", st.rc,
          now_s() - t0);
    hy_reward_server_stats s;
    hy_reward_server_stats_get(st.s, &s);
    CHECK(s.served == N && s.errors == 0 && s.dropped == 0 && s.undeliverable == 0,
          "server counters: served %llu errors %llu dropped %llu undeliverable %llu", (unsigned long long)s.served,
          (unsigned long long)s.errors, (unsigned long long)s.dropped, (unsigned long long)s.undeliverable);
    hy_reward_client_destroy(c);
    hy_reward_server_destroy(st.s);
    hy_reward_server_opts_default(&o);
    o.threads = 0;
    hy_reward_server *bad;
    CHECK(hy_reward_server_new(&bad, ctx, "inproc://never", &o) == -1 && strstr(hy_last_error(), "threads"),
          "threads 0 refused: %s", hy_last_error());
    proto_ctx_destroy(ctx);
}

// ---------------------------------------------------------------- `hybrid reward-server` as a process

typedef struct {
    pid_t pid;
    int out_fd;  // its stdout
    char err_path[320];
    char endpoint[512];
} child;

// Starts ./hybrid reward-server --bind tcp://127.0.0.1:* ARGS... and reads the endpoint it prints.
static int spawn_server(child *ch, const char *name, const char *const *args) {
    memset(ch, 0, sizeof *ch);
    ch->pid = -1;
    if (access(HYBRID, X_OK) != 0) {
        CHECK(0, "%s: %s not found in the working directory (tests run in the build directory)", name, HYBRID);
        return -1;
    }
    snprintf(ch->err_path, sizeof ch->err_path, "%s/%s.stderr", g_tmp, name);
    const char *argv[16] = {HYBRID, "reward-server", "--bind", "tcp://127.0.0.1:*"};
    int argc = 4;
    for (int i = 0; args && args[i] && argc < 15; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds)) return -1;
    const int err_fd = open(ch->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fflush(stdout);
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(fds[1], 1);
        dup2(err_fd, 2);
        close(fds[0]);
        close(fds[1]);
        close(err_fd);
        execv(HYBRID, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    close(err_fd);
    ch->out_fd = fds[0];
    // one line, within 10 s
    char line[512];
    size_t n = 0;
    const double t0 = now_s();
    while (n + 1 < sizeof line && now_s() - t0 < 10) {
        struct pollfd p = {ch->out_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        if (read(ch->out_fd, line + n, 1) != 1) break;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    const char *prefix = "reward-server: listening on tcp://127.0.0.1:";
    const int ok = strncmp(line, prefix, strlen(prefix)) == 0 && strcmp(line + strlen(prefix), "*") != 0;
    CHECK(ok, "%s: first line '%s' (stderr in %s)", name, line, ch->err_path);
    if (ok) snprintf(ch->endpoint, sizeof ch->endpoint, "%s", line + strlen("reward-server: listening on "));
    return ok ? 0 : -1;
}

// Waits up to 10 s for the child; its exit status, or -1 (then it is killed).
static int wait_child(child *ch) {
    int status = 0;
    for (int i = 0; i < 500; i++) {
        const pid_t w = waitpid(ch->pid, &status, WNOHANG);
        if (w == ch->pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(20000);
    }
    kill(ch->pid, SIGKILL);
    waitpid(ch->pid, &status, 0);
    return -1;
}

// What is left on the child's stdout (after it exited).
static void read_rest(child *ch, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(ch->out_fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(ch->out_fd);
}

static int file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char buf[65536];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static int wait_file_has(const char *path, const char *needle) {
    for (int i = 0; i < 250; i++) {
        if (file_has(path, needle)) return 1;
        usleep(20000);
    }
    return 0;
}

static void case_process(void) {
    child ch;
    if (spawn_server(&ch, "process: prints its endpoint", NULL)) {
        if (ch.pid > 0) wait_child(&ch);
        return;
    }
    proto_ctx *ctx = proto_ctx_new();
    hy_reward_client *c;
    hy_reward_client_new(&c, ctx, ch.endpoint, NULL);
    proto_reward_request reqs[3] = {request(7, "math", "Adding them up, the answer is \\boxed{42}.", "42"),
                                    request(3, "math", "I get 41", "#### 42"),
                                    request(5, "no-such-verifier", "42", "42")};
    proto_reward_result out[3];
    int rc = hy_reward_client_score(c, reqs, 3, out, 10000);
    CHECK(rc == 0, "process: batch scored: %s", hy_last_error());
    if (rc == 0) {
        CHECK(out[0].trajectory_id == 7 && out[0].reward == 1 && !out[0].error[0],
              "process: math right → 1: id %llu reward %g error '%s'", (unsigned long long)out[0].trajectory_id,
              out[0].reward, out[0].error);
        CHECK(out[1].trajectory_id == 3 && out[1].reward == 0 && !out[1].error[0],
              "process: math wrong → 0: reward %g error '%s'", out[1].reward, out[1].error);
        CHECK(out[2].trajectory_id == 5 && strstr(out[2].error, "no-such-verifier") &&
                  strstr(out[2].error, "unknown verifier"),
              "process: unknown verifier → error naming it; error '%s'", out[2].error);
    }
    free_results(out, 3);

    // garbage, a wrong-type frame and an anonymous peer, from other sockets: logged and dropped
    proto_socket *rogue = open_socket(ctx, ZMQ_DEALER, NULL, NULL, "rogue");
    proto_socket *anon = open_socket(ctx, ZMQ_DEALER, NULL, NULL, NULL);
    proto_socket_connect(rogue, ch.endpoint);
    proto_socket_connect(anon, ch.endpoint);
    const proto_msg hb = {.type = PROTO_HEARTBEAT, .u.heartbeat = {.sender = "rogue", .role = PROTO_ROLE_ROLLOUT}};
    proto_msg req = {.type = PROTO_REWARD_REQUEST, .u.reward_request = reqs[0]};
    rc = proto_socket_send_raw(rogue, NULL, "\xde\xad\xbe\xef garbage", 12, 2000);
    rc |= proto_socket_send(rogue, NULL, &hb, 2000);
    rc |= proto_socket_send(anon, NULL, &req, 2000);
    CHECK(rc == 0, "process: bad frames sent: %s", hy_last_error());
    CHECK(wait_file_has(ch.err_path, "malformed"), "process: garbage logged with its reason; see %s", ch.err_path);
    CHECK(wait_file_has(ch.err_path, "dropped a heartbeat message from peer \"rogue\""),
          "process: wrong type logged; see %s", ch.err_path);
    CHECK(wait_file_has(ch.err_path, "routing_id"), "process: peer without routing id logged; see %s", ch.err_path);
    proto_reward_request more[2] = {request(8, "exact", "the key is 3fa9", "3fa9"),
                                    request(9, "sequence", "C, A, B", "[c a b]")};
    rc = hy_reward_client_score(c, more, 2, out, 10000);
    CHECK(rc == 0 && out[0].reward == 1 && out[1].reward == 1, "process: still serving after bad frames: rc %d: %s", rc,
          hy_last_error());
    free_results(out, 2);

    // shutdown by message: exit status 0 and the counters
    const proto_msg stop = {.type = PROTO_CONTROL, .u.control = {PROTO_CMD_SHUTDOWN, "test done"}};
    CHECK(proto_socket_send(rogue, NULL, &stop, 2000) == 0, "process: shutdown sent: %s", hy_last_error());
    const int status = wait_child(&ch);
    char rest[1024];
    read_rest(&ch, rest, sizeof rest);
    CHECK(status == 0, "process: exits 0 on shutdown: status %d", status);
    CHECK(strstr(rest, "stopped (shutdown message): served 4, errors 1, dropped 3, undeliverable 0") != NULL,
          "process: counters at exit; stdout: %s", rest);
    CHECK(file_has(ch.err_path, "shutdown requested by peer \"rogue\" (test done)"), "process: shutdown logged; see %s",
          ch.err_path);
    proto_socket_destroy(anon);
    proto_socket_destroy(rogue);
    hy_reward_client_destroy(c);
    proto_ctx_destroy(ctx);
}

// CURVE: the authorized client is scored, a plaintext one gets nothing; SIGTERM stops the server
// cleanly.
static void case_process_curve(void) {
    char server[300], client[300], server_key[320], server_pub[320], client_key[320], client_pub[320];
    snprintf(server, sizeof server, "%s/server", g_tmp);
    snprintf(client, sizeof client, "%s/client", g_tmp);
    snprintf(server_key, sizeof server_key, "%s.key", server);
    snprintf(server_pub, sizeof server_pub, "%s.pub", server);
    snprintf(client_key, sizeof client_key, "%s.key", client);
    snprintf(client_pub, sizeof client_pub, "%s.pub", client);
    if (proto_keygen(server, NULL) || proto_keygen(client, NULL)) {
        CHECK(0, "curve: keygen: %s", hy_last_error());
        return;
    }
    const char *args[] = {"--keys", server_key, "--authorized-keys", client_pub, NULL};
    child ch;
    if (spawn_server(&ch, "curve: prints its endpoint", args)) {
        if (ch.pid > 0) wait_child(&ch);
        return;
    }
    proto_ctx *ctx = proto_ctx_new();
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.linger_ms = 0;
    o.key_file = client_key;
    o.server_key_file = server_pub;
    hy_reward_client *c, *plain;
    hy_reward_client_new(&c, ctx, ch.endpoint, &o);
    proto_reward_request reqs[1] = {request(1, "math", "\\boxed{6}", "6")};
    proto_reward_result out[1];
    int rc = hy_reward_client_score(c, reqs, 1, out, 10000);
    CHECK(rc == 0 && out[0].reward == 1, "curve: authorized client scored: rc %d: %s", rc, hy_last_error());
    free_results(out, 1);
    proto_socket_opts_default(&o);
    o.linger_ms = 0;
    hy_reward_client_new(&plain, ctx, ch.endpoint, &o);
    proto_log_set(capture_log, NULL);
    rc = hy_reward_client_score(plain, reqs, 1, out, 300);
    CHECK(rc == -1 && strstr(hy_last_error(), "1 of 1"), "curve: plaintext client gets nothing: rc %d: %s", rc,
          hy_last_error());
    proto_log_set(NULL, NULL);
    free_results(out, 1);
    kill(ch.pid, SIGTERM);
    const int status = wait_child(&ch);
    char rest[1024];
    read_rest(&ch, rest, sizeof rest);
    CHECK(status == 0 && strstr(rest, "stopped (signal): served 1"),
          "curve: SIGTERM exits 0 with counters: status %d, stdout: %s", status, rest);
    hy_reward_client_destroy(plain);
    hy_reward_client_destroy(c);
    proto_ctx_destroy(ctx);
}

// ---------------------------------------------------------------- a server written elsewhere

// `test_reward_server SRC external ENDPOINT`: checks a reward server that is already running
// (evals/examples/reward_server.py, or yours) the way case_process checks ours, with rewards that
// any "last number equals the reference" scorer gives too; then shuts it down. Not in the default
// run: CI has no such server.
static const char *g_external;

static void case_external(void) {
    proto_ctx *ctx = proto_ctx_new();
    hy_reward_client *c;
    CHECK(hy_reward_client_new(&c, ctx, g_external, NULL) == 0, "external: connect: %s", hy_last_error());
    proto_reward_request reqs[3] = {request(11, "math", "Adding them up, the answer is \\boxed{42}.", "42"),
                                    request(12, "math", "I get 41", "#### 42"),
                                    request(13, "math", "first 3.5, then 7", "7")};
    proto_reward_result out[3];
    int rc = hy_reward_client_score(c, reqs, 3, out, 5000);
    CHECK(rc == 0 && out[0].reward == 1 && out[1].reward == 0 && out[2].reward == 1 && !out[0].error[0] &&
              !out[1].error[0] && !out[2].error[0],
          "external: batch scored: rc %d (%s): rewards %g %g %g", rc, hy_last_error(), out[0].reward, out[1].reward,
          out[2].reward);
    free_results(out, 3);
    proto_socket *rogue = open_socket(ctx, ZMQ_DEALER, NULL, NULL, "rogue");
    proto_socket_connect(rogue, g_external);
    const proto_msg hb = {.type = PROTO_HEARTBEAT, .u.heartbeat = {.sender = "rogue", .role = PROTO_ROLE_ROLLOUT}};
    proto_socket_send_raw(rogue, NULL, "\xde\xad\xbe\xef garbage", 12, 2000);
    proto_socket_send(rogue, NULL, &hb, 2000);
    for (int i = 0; i < 3; i++) reqs[i].trajectory_id += 100;
    rc = hy_reward_client_score(c, reqs, 3, out, 5000);
    CHECK(rc == 0, "external: still serving after garbage and a heartbeat: %s", hy_last_error());
    free_results(out, 3);
    const proto_msg stop = {.type = PROTO_CONTROL, .u.control = {PROTO_CMD_SHUTDOWN, "conformance check done"}};
    proto_socket_send(rogue, NULL, &stop, 2000);
    usleep(500000);  // the shutdown travels on another connection: give it time to arrive first
    for (int i = 0; i < 3; i++) reqs[i].trajectory_id += 100;
    rc = hy_reward_client_score(c, reqs, 1, out, 500);
    CHECK(rc == -1, "external: no answers after shutdown: still answering");
    free_results(out, 1);
    proto_socket_destroy(rogue);
    hy_reward_client_destroy(c);
    proto_ctx_destroy(ctx);
}

// ---------------------------------------------------------------- driver

static const struct {
    const char *name;
    void (*fn)(void);
} k_cases[] = {
    {"client_matching", case_client_matching}, {"client_timeout", case_client_timeout},
    {"server_inproc", case_server_inproc},     {"process", case_process},
    {"process_curve", case_process_curve},     {"external", case_external},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_reward_server SOURCE_DIR [CASE]\n");
        return 2;
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    if (only && strcmp(only, "external") == 0) {
        if (argc < 4) {
            fprintf(stderr, "usage: test_reward_server SOURCE_DIR external ENDPOINT\n");
            return 2;
        }
        g_external = argv[3];
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_reward_server.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        if (only ? strcmp(only, k_cases[i].name) != 0 : k_cases[i].fn == case_external) continue;
        const int before = check_failures;
        const double t0 = now_s();
        k_cases[i].fn();
        printf("%s %-18s %.2f s\n", check_failures == before ? "ok  " : "FAIL", k_cases[i].name, now_s() - t0);
        ran++;
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (check_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    if (check_failures) printf("logs kept in %s\n", g_tmp);
    if (!ran) {
        fprintf(stderr, "no case named %s; cases:", only);
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) fprintf(stderr, " %s", k_cases[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    return check_summary("test_reward_server");
}
