// `hybrid bench sync`: weight sync from the learner to rollout workers, timed the way a run does it
// (learner/dispatch.h): the learner's model at a preset's shape on its device, worker processes
// started with the same shape and zero weights, then `rounds` updates published — each one a
// changed weight, a notice to every worker, the transfer (NCCL broadcast GPU to GPU, or ZeroMQ weight
// images), each worker's checksum check and its heartbeat saying the new version is in use.
// Reports per round the learner's publish time and the end-to-end latency, and the bandwidth.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../learner/dispatch.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"preset", ARG_STR, "olmo-hybrid-7b", "model shape (weights made in memory)", 0, 0},
    {"workers", ARG_INT, "1", "rollout worker processes", 1, 64},
    {"worker-gpus", ARG_STR, NULL, "GPUs of the workers, e.g. \"1\" (learner on the first visible GPU)", 0, 0},
    {"transport", ARG_CHOICE, "nccl", "{nccl|zmq}: NCCL broadcast, or ZeroMQ weight images (small models)", 0, 0},
    {"rounds", ARG_INT, "5", "weight updates timed", 1, 1000},
    {"device", ARG_STR, "auto", "the learner's device (nccl needs cuda)", 0, 0},
};
static const arg_command command = {
    "bench sync", "bench sync [--preset olmo-hybrid-7b] [--workers 1 --worker-gpus 1] [--transport nccl|zmq] [--rounds 5]",
    "Times weight sync learner → rollout workers as hybrid run does it, checksum verified on every worker.", specs,
    sizeof specs / sizeof *specs};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(const arg_values *a) {
    char model[128];
    snprintf(model, sizeof model, "preset:%s", arg_str(a, "preset"));
    hy_model m;
    hy_tokenizer *tok = NULL;
    double t0 = now_s();
    if (cli_load_model(model, NULL, arg_str(a, "device"), &m, &tok)) return -1;
    const size_t n = m.table.total;
    // a pattern instead of zeros, so the checksum covers real bytes (random init of 7B takes minutes)
    for (size_t i = 0; i < n; i++) m.arena[i] = (float)((uint32_t)(i * 2654435761u) >> 8) * 1e-9f;
    m.be->f32_from_host(m.be, m.dev, m.arena, n);
    if ((void *)m.mm != (void *)m.dev) m.be->params_to_matmul_view(m.be, m.mm, m.dev, n);
    m.be->synchronize(m.be);
    const double gb = (double)n * sizeof(float) / 1e9;
    fprintf(stderr, "bench sync: %s, %zu parameters (%.2f GB fp32) on %s in %.1f s\n", arg_str(a, "preset"),
            m.table.n_params, gb, m.be->name, now_s() - t0);
    const int nccl = !strcmp(arg_str(a, "transport"), "nccl");
    if (!nccl && n * sizeof(float) > (size_t)60 << 20) {
        cli_unload_model(&m, tok);
        return hy_fail("transport zmq sends one weight image per message (at most 64 MiB): %.2f GB is for nccl", gb);
    }
    static char exe[4096];
    if (cli_self_exe(exe, sizeof exe)) {
        cli_unload_model(&m, tok);
        return -1;
    }
    const char *argv[] = {exe, "worker", "--model", model, "--device", nccl ? "cuda" : arg_str(a, "device"),
                          "--memory", "1GiB", "--max-len", "64", "--max-seqs", "4", NULL};
    hy_dispatch_options o;
    hy_dispatch_options_default(&o);
    o.n_spawn = (int)arg_int(a, "workers");
    o.spawn_argv = argv;
    o.nccl = nccl;
    o.worker_gpus = arg_str(a, "worker-gpus");
    hy_dispatch *d = NULL;
    t0 = now_s();
    int rc = hy_dispatch_new(&d, &m, &o, 0);
    if (!rc && !nccl) rc = hy_dispatch_wait_version(d, 0, 600);
    if (!rc) fprintf(stderr, "bench sync: %d workers up with version 0 in %.1f s\n", o.n_spawn, now_s() - t0);
    hy_rollout_source src = rc ? (hy_rollout_source){0} : hy_dispatch_iface(d);
    const int rounds = (int)arg_int(a, "rounds");
    double pub_sum = 0, e2e_sum = 0, pub_min = 1e30, e2e_min = 1e30;
    for (int r = 1; r <= rounds && !rc; r++) {
        float mark = (float)r;  // one changed weight per version: the checksum must follow it
        m.be->f32_from_host(m.be, m.dev, &mark, 1);
        if ((void *)m.mm != (void *)m.dev) m.be->params_to_matmul_view(m.be, m.mm, m.dev, n);
        m.be->synchronize(m.be);
        double pub = 0;
        const double t1 = now_s();
        rc = src.publish(src.ctx, (uint64_t)r, &pub);
        if (!rc) rc = hy_dispatch_wait_version(d, (uint64_t)r, 600);
        const double e2e = now_s() - t1;
        if (rc) break;
        pub_sum += pub, e2e_sum += e2e;
        pub_min = pub < pub_min ? pub : pub_min;
        e2e_min = e2e < e2e_min ? e2e : e2e_min;
        printf("{\"round\": %d, \"transport\": \"%s\", \"workers\": %d, \"gb\": %.3f, \"publish_s\": %.4f, "
               "\"end_to_end_s\": %.4f, \"gb_per_s\": %.1f}\n",
               r, nccl ? "nccl" : "zmq", o.n_spawn, gb, pub, e2e, gb / e2e);
        fflush(stdout);
    }
    if (!rc)
        fprintf(stderr,
                "bench sync: %s %.2f GB to %d workers over %s: publish %.3f s (min %.3f), end to end %.3f s (min "
                "%.3f) = %.1f GB/s, every version's checksum verified on every worker\n",
                arg_str(a, "preset"), gb, o.n_spawn, nccl ? "NCCL" : "ZeroMQ", pub_sum / rounds, pub_min,
                e2e_sum / rounds, e2e_min, gb / (e2e_sum / rounds));
    hy_dispatch_destroy(d);
    cli_unload_model(&m, tok);
    return rc;
}

int cmd_bench_sync(int argc, char **argv) {
    arg_values a;
    const int prc = args_parse(&command, argc, argv, &a);
    if (prc) {
        args_free(&a);
        return prc > 0 ? 0 : 2;
    }
    const int rc = bench(&a) ? cli_error("bench sync") : 0;
    args_free(&a);
    return rc;
}
