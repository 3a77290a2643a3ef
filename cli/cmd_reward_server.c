// `hybrid reward-server`: the verifier registry behind a ZeroMQ ROUTER (evals/reward_server.h), so
// an orchestrator, or any program speaking docs/proto.md, can have completions scored by this
// process.
//
// Once bound it prints "reward-server: listening on ENDPOINT" on stdout and flushes it, with the
// real port when --bind asked for tcp://HOST:*, so a script or test can read where to connect; when
// it stops, one line of counters. Log lines go to stderr.
// SIGINT / SIGTERM set a flag the server checks between polls: the requests in flight are finished
// and answered, then it exits 0. The handler is one-shot (SA_RESETHAND), so a second signal kills
// the process at once if a verifier hangs.
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../evals/reward_server.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"bind", ARG_STR, "tcp://127.0.0.1:5600",
     "endpoint to bind: tcp://HOST:PORT (PORT * = a free one, printed), ipc://PATH; a non-loopback address needs "
     "--keys", 0, 0},
    {"keys", ARG_STR, NULL, "this server's CURVE key pair file (docs/proto.md, \"Key files\"); needs --authorized-keys",
     0, 0},
    {"authorized-keys", ARG_STR, NULL, "public keys of the clients admitted (CURVE); needs --keys", 0, 0},
    {"threads", ARG_INT, "1", "worker threads scoring requests in parallel", 1, HY_REWARD_SERVER_MAX_THREADS},
    {"quiet", ARG_FLAG, NULL, "no log line per dropped frame or unscored request (counters still printed at exit)",
     0, 0},
};

static const arg_command command = {
    "reward-server", "reward-server [--bind ENDPOINT] [--keys FILE --authorized-keys FILE] [--threads N] [--quiet]",
    "Answers reward_request messages (docs/proto.md) with the built-in verifiers (math, exact, sequence, code):\n"
    "reward_result {reward, error} back to the asking peer. Bad frames are logged and dropped. Stops on a control\n"
    "shutdown message or SIGINT / SIGTERM after answering what is in flight.",
    specs, sizeof specs / sizeof *specs};

static atomic_int g_stop;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, 1);  // lock-free atomic: allowed in a handler
}

int cmd_reward_server(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    hy_reward_server_opts o;
    hy_reward_server_opts_default(&o);
    o.sock.key_file = arg_str(&a, "keys");
    o.sock.authorized_keys = arg_str(&a, "authorized-keys");
    o.threads = (int)arg_int(&a, "threads");
    o.quiet = arg_flag(&a, "quiet");
    if (!o.sock.key_file != !o.sock.authorized_keys) {
        fprintf(stderr, "hybrid reward-server: --keys and --authorized-keys go together (CURVE needs both)\n");
        args_free(&a);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    proto_ctx *ctx = proto_ctx_new();
    hy_reward_server *s = NULL;
    if (!ctx || hy_reward_server_new(&s, ctx, arg_str(&a, "bind"), &o)) {
        proto_ctx_destroy(ctx);
        args_free(&a);
        return cli_error("reward-server");
    }
    printf("reward-server: listening on %s\n", hy_reward_server_endpoint(s));  // exactly this: scripts read it
    fflush(stdout);
    if (!o.quiet) fprintf(stderr, "reward-server: %d worker thread%s\n", o.threads, o.threads == 1 ? "" : "s");
    rc = hy_reward_server_run(s, &g_stop);
    if (rc) cli_error("reward-server");
    hy_reward_server_stats st;
    hy_reward_server_stats_get(s, &st);
    printf("reward-server: stopped (%s): served %llu, errors %llu, dropped %llu, undeliverable %llu\n",
           rc ? "socket error" : atomic_load(&g_stop) ? "signal" : "shutdown message", (unsigned long long)st.served,
           (unsigned long long)st.errors, (unsigned long long)st.dropped, (unsigned long long)st.undeliverable);
    fflush(stdout);
    hy_reward_server_destroy(s);
    proto_ctx_destroy(ctx);
    args_free(&a);
    return rc ? 1 : 0;
}
