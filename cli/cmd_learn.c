// `hybrid learn`: one training command (sft, dpo, rl) as a data-parallel job of several ranks, one
// process per GPU, started from one command line (design: docs/learner.md, "Several GPUs").
//
// Each rank is this binary running the given command with RANK, WORLD_SIZE, LOCAL_RANK and the
// rendezvous in its environment (learner/dp.h), and its own GPU in CUDA_VISIBLE_DEVICES. On one
// host the rendezvous is an ipc:// socket of this launcher's; across hosts each host runs
// `hybrid learn --nnodes K --node-rank I --master HOST:PORT` (or a cluster launcher sets the same
// variables itself). Rank 0's stdout is this command's stdout (the metrics lines); the other ranks'
// stdout goes to stderr. The launcher watches its ranks: when one fails, the others are stopped
// (they would wait for it forever in their next collective) and the failing rank and its status
// are reported; a killed launcher takes its ranks with it.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../common/text_list.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"nproc", ARG_INT, NULL, "ranks on this host (default: one per GPU of --gpus)", 1, 1024},
    {"gpus", ARG_STR, NULL, "GPUs of this host's ranks, e.g. \"0,1\" (default: CUDA_VISIBLE_DEVICES, else 0..nproc-1)",
     0, 0},
    {"nnodes", ARG_INT, "1", "hosts in the job", 1, 4096},
    {"node-rank", ARG_INT, "0", "this host's index among them", 0, 4095},
    {"master", ARG_STR, NULL, "HOST:PORT of rank 0's rendezvous (needed with several hosts)", 0, 0},
};
static const arg_command command = {
    "learn", "learn --nproc N [--gpus 0,1] [--nnodes K --node-rank I --master HOST:PORT] -- sft|dpo|rl OPTIONS...",
    "Runs one training command as a data-parallel job: one rank per GPU, gradients reduce-scattered and the\n"
    "optimizer state sharded across ranks (docs/learner.md, \"Several GPUs\"). Everything after -- is the\n"
    "command as it would run alone; the global batch is the same for any number of ranks.",
    specs, sizeof specs / sizeof *specs};

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

typedef struct {
    pid_t pid;
    int rank, status, done;
} rank_proc;

static int start_rank(rank_proc *p, char **argv, const char *exe, int local, int world, const char *gpu,
                      const char *endpoint, const char *master_addr, const char *master_port) {
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return hy_fail("starting rank %d: fork: %s", p->rank, strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // a killed launcher takes its ranks with it
        if (getppid() != parent) _exit(1);
        if (p->rank != 0) dup2(2, 1);  // one stream of metrics lines: rank 0's
        char v[32];
        snprintf(v, sizeof v, "%d", p->rank);
        setenv("RANK", v, 1);
        snprintf(v, sizeof v, "%d", world);
        setenv("WORLD_SIZE", v, 1);
        snprintf(v, sizeof v, "%d", local);
        setenv("LOCAL_RANK", v, 1);
        if (endpoint) setenv("HY_DP_ENDPOINT", endpoint, 1);
        if (master_addr) {
            setenv("MASTER_ADDR", master_addr, 1);
            setenv("MASTER_PORT", master_port, 1);
        }
        if (gpu) setenv("CUDA_VISIBLE_DEVICES", gpu, 1);
        argv[0] = (char *)exe;
        execv(exe, argv);
        fprintf(stderr, "hybrid learn: rank %d: exec %s: %s\n", p->rank, exe, strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

static void describe_status(int status, char *buf, size_t n) {
    if (WIFSIGNALED(status))
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The rank that caused a failure: after the first one, the others are watched a moment longer,
// because a rank that dies takes its peers' next collective down with it and one of those may be
// reaped first; a rank killed by a signal is the cause over one that exited with an error.
static void note_failure(const rank_proc *ps, int i, int *cause) {
    if (*cause < 0 || (WIFSIGNALED(ps[i].status) && !WIFSIGNALED(ps[*cause].status))) *cause = i;
}

// Waits for every rank; after a failure (or a signal to the launcher) stops the rest: SIGTERM,
// then SIGKILL after 10 s. Returns the job's exit status.
static int watch(rank_proc *ps, int n) {
    const double grace_s = 1.0;
    int running = n, cause = -1, exit_status = 0;
    double failed_at = 0, stop_at = 0;
    while (running > 0 || (cause >= 0 && stop_at == 0)) {
        int status;
        const pid_t pid = running > 0 ? waitpid(-1, &status, WNOHANG) : 0;
        if (pid > 0) {
            for (int i = 0; i < n; i++)
                if (ps[i].pid == pid && !ps[i].done) {
                    ps[i].done = 1;
                    ps[i].status = status;
                    running--;
                    const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                    if (!ok && !g_stop && stop_at == 0) {
                        note_failure(ps, i, &cause);
                        if (failed_at == 0) failed_at = now_s();
                    }
                }
            continue;
        }
        const int announce = cause >= 0 && stop_at == 0 && (running == 0 || now_s() - failed_at >= grace_s);
        if ((announce || g_stop) && stop_at == 0) {
            if (cause >= 0) {
                char what[128];
                describe_status(ps[cause].status, what, sizeof what);
                fprintf(stderr, "hybrid learn: rank %d %s; stopping the other ranks\n", ps[cause].rank, what);
                exit_status = WIFEXITED(ps[cause].status) ? WEXITSTATUS(ps[cause].status)
                                                          : 128 + WTERMSIG(ps[cause].status);
            } else {
                fprintf(stderr, "hybrid learn: signal %d: stopping the ranks\n", (int)g_stop);
                exit_status = 128 + (int)g_stop;
            }
            for (int i = 0; i < n; i++)
                if (!ps[i].done) kill(ps[i].pid, SIGTERM);
            stop_at = now_s() + 10;
        } else if (stop_at > 0 && now_s() > stop_at) {
            for (int i = 0; i < n; i++)
                if (!ps[i].done) kill(ps[i].pid, SIGKILL);
        }
        if (running > 0) usleep(20000);
    }
    return exit_status;
}

int cmd_learn(int argc, char **argv) {
    int sep = 1;
    while (sep < argc && strcmp(argv[sep], "--")) sep++;
    arg_values a;
    int status = args_parse(&command, sep, argv, &a);
    if (status) {
        args_free(&a);
        return status > 0 ? 0 : 2;
    }
    const char *sub = sep + 1 < argc ? argv[sep + 1] : NULL;
    const char *gpus = arg_str(&a, "gpus") ? arg_str(&a, "gpus") : getenv("CUDA_VISIBLE_DEVICES");
    if (gpus && !*gpus) gpus = NULL;
    const int nproc = arg_given(&a, "nproc") ? (int)arg_int(&a, "nproc") : arg_str(&a, "gpus") ? hy_list_count(gpus) : 0;
    const int nnodes = (int)arg_int(&a, "nnodes"), node = (int)arg_int(&a, "node-rank");
    const char *master = arg_str(&a, "master");
    const char *problem = NULL;
    if (!sub || (strcmp(sub, "sft") && strcmp(sub, "dpo") && strcmp(sub, "rl")))
        problem = "give the training command after --: sft, dpo or rl, with its options";
    else if (nproc < 1)
        problem = "--nproc (or --gpus) is required: how many ranks to start on this host";
    else if (node >= nnodes)
        problem = "--node-rank must be below --nnodes";
    else if (nnodes > 1 && !master)
        problem = "several hosts (--nnodes > 1) need --master HOST:PORT, rank 0's rendezvous";
    else if (master && (!strrchr(master, ':') || strrchr(master, ':') == master))
        problem = "--master must be HOST:PORT";
    else if (gpus && arg_given(&a, "nproc") && hy_list_count(gpus) < nproc)
        problem = "--gpus (or CUDA_VISIBLE_DEVICES) lists fewer GPUs than --nproc";
    if (problem) {
        fprintf(stderr, "hybrid learn: %s\n", problem);
        args_free(&a);
        return 2;
    }
    char exe[4096];
    if (cli_self_exe(exe, sizeof exe)) {
        fprintf(stderr, "hybrid learn: %s\n", hy_last_error());
        args_free(&a);
        return 1;
    }
    char endpoint[128], addr[512] = "", port[16] = "";
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/hybrid-learn-%d.sock", (int)getpid());
    if (master) {
        const char *colon = strrchr(master, ':');
        snprintf(addr, sizeof addr, "%.*s", (int)(colon - master), master);
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    const int world = nproc * nnodes;
    fprintf(stderr, "hybrid learn: %s as %d rank%s (%d on this host, host %d of %d)\n", sub, world,
            world > 1 ? "s" : "", nproc, node, nnodes);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rank_proc *ps = hy_calloc((size_t)nproc, sizeof *ps);
    char **child_argv = hy_calloc((size_t)(argc - sep) + 1, sizeof *child_argv);
    for (int i = sep + 1; i < argc; i++) child_argv[i - sep] = argv[i];
    int started = 0, rc = 0;
    for (int i = 0; i < nproc && !rc; i++) {
        char gpu[64] = "", *gpu_arg = NULL;
        if (gpus) {
            hy_list_entry(gpus, i, gpu, sizeof gpu);
            gpu_arg = gpu;
        } else {
            snprintf(gpu, sizeof gpu, "%d", i);
            gpu_arg = gpu;
        }
        ps[i].rank = node * nproc + i;
        rc = start_rank(&ps[i], child_argv, exe, i, world, gpu_arg, master ? NULL : endpoint, master ? addr : NULL,
                        port);
        started += !rc;
    }
    if (rc) {
        fprintf(stderr, "hybrid learn: %s\n", hy_last_error());
        g_stop = SIGTERM;
    }
    status = watch(ps, started);
    if (!status && rc) status = 1;
    if (!master) unlink(endpoint + strlen("ipc://"));
    if (!status) fprintf(stderr, "hybrid learn: all %d ranks finished\n", started);
    free(ps);
    free(child_argv);
    args_free(&a);
    return status;
}
