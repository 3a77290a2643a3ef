// Generation requests → trajectories (see generator.h).
#include "rollout/generator.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hy_error.h"
#include "rollout/episode.h"
#include "rollout/local_source.h"
#include "rollout/trajectory.h"

typedef struct {
    int64_t engine_id;
    uint64_t request_id, group_id;
    uint32_t sample_index;
    int n_prompt;
    double submitted;
} seq_link;

struct hy_generator {
    hy_engine *e;
    hy_episodes *episodes;
    const char *name;
    FILE *log;
    seq_link *links;
    int n_links, cap_links;
    uint64_t *versions;  // learner version of each engine version
    int n_versions;
    proto_trajectory *ready;  // finished, not taken yet (FIFO)
    int n_ready, cap_ready, head;
    hy_generator_stats st;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

hy_generator *hy_generator_new(hy_engine *e, const hy_tokenizer *tok, const hy_config *cfg, uint64_t start_version,
                               const char *name, FILE *log) {
    hy_generator *g = hy_calloc(1, sizeof *g);
    g->e = e;
    g->episodes = hy_episodes_new(e, tok, cfg);
    g->name = name;
    g->log = log;
    g->versions = hy_malloc(sizeof *g->versions);
    g->versions[0] = start_version;
    g->n_versions = 1;
    return g;
}

void hy_generator_destroy(hy_generator *g) {
    if (!g) return;
    hy_episodes_destroy(g->episodes);
    for (int i = g->head; i < g->n_ready; i++) proto_trajectory_free(&g->ready[i]);
    free(g->ready);
    free(g->links);
    free(g->versions);
    free(g);
}

static void push_ready(hy_generator *g, proto_trajectory *tr) {
    if (g->head > 0 && g->n_ready == g->cap_ready) {  // reuse the taken front
        memmove(g->ready, g->ready + g->head, sizeof *g->ready * (size_t)(g->n_ready - g->head));
        g->n_ready -= g->head;
        g->head = 0;
    }
    if (g->n_ready == g->cap_ready) {
        g->cap_ready = g->cap_ready ? 2 * g->cap_ready : 64;
        g->ready = hy_realloc(g->ready, sizeof *g->ready * (size_t)g->cap_ready);
    }
    g->ready[g->n_ready++] = *tr;
}

void hy_generator_submit(hy_generator *g, const proto_gen_request *r) {
    int64_t *ids = hy_malloc(sizeof *ids * r->n);
    int rc;
    if (r->n_stop_token_ids) {
        rc = hy_fail("request %llu: stop_token_ids are not supported (the model's eos ids and stop strings are)",
                     (unsigned long long)r->id);
    } else if (r->env_id && r->env_id[0]) {
        rc = hy_episodes_start(g->episodes, r, ids);
        if (!rc) g->st.episodes += r->n;
    } else {
        hy_gen_params p;
        hy_gen_params_from_request(r, &p);
        rc = hy_engine_submit_n(g->e, r->prompt, (int)r->n_prompt, &p, (int)r->n, ids);
    }
    if (rc) {  // refused: still answered, as errors
        fprintf(g->log, "%s: request %llu refused: %s\n", g->name, (unsigned long long)r->id, hy_last_error());
        g->st.refused++;
        for (uint32_t i = 0; i < r->n; i++) {
            proto_trajectory tr;
            hy_trajectory_error(r->id, r->group_id, i, r->prompt, (int)r->n_prompt, &tr);
            push_ready(g, &tr);
        }
    } else {
        for (uint32_t i = 0; i < r->n; i++) {
            if (g->n_links == g->cap_links) {
                g->cap_links = g->cap_links ? 2 * g->cap_links : 64;
                g->links = hy_realloc(g->links, sizeof *g->links * (size_t)g->cap_links);
            }
            g->links[g->n_links++] = (seq_link){ids[i], r->id, r->group_id, i, (int)r->n_prompt, now_s()};
        }
    }
    free(ids);
}

void hy_generator_weights(hy_generator *g, uint64_t version) {
    hy_engine_bump_weights(g->e);
    g->versions = hy_realloc(g->versions, sizeof *g->versions * (size_t)(g->n_versions + 1));
    g->versions[g->n_versions++] = version;
}

uint64_t hy_generator_version(const hy_generator *g) { return g->versions[g->n_versions - 1]; }

// Files every finished turn: episode turns go back to their environment; finished samples become
// trajectories.
static int collect(hy_generator *g) {
    hy_result res;
    while (hy_engine_poll(g->e, &res)) {
        int k = 0;
        while (k < g->n_links && g->links[k].engine_id != res.id) k++;
        if (k == g->n_links) {
            hy_result_free(&res);
            continue;
        }
        int turns = 1;
        if (hy_episodes_owns(g->episodes, res.id)) {
            const int rc = hy_episodes_on_result(g->episodes, &res, &turns);
            if (rc == 0) {  // the episode goes on
                hy_result_free(&res);
                continue;
            }
            if (rc < 0) fprintf(g->log, "%s: episode of sequence %lld ended: %s\n", g->name, (long long)res.id,
                                hy_last_error());
        }
        const seq_link l = g->links[k];
        g->links[k] = g->links[--g->n_links];
        const hy_trajectory_meta meta = {l.request_id, l.group_id, l.sample_index, l.n_prompt, g->versions,
                                         g->n_versions, 0.0, 0.0, now_s() - l.submitted};
        proto_trajectory tr;
        const int rc = hy_trajectory_from_result(&res, &meta, &tr);
        hy_result_free(&res);
        if (rc) return -1;
        tr.n_turns = (uint32_t)turns;
        g->st.trajectories++;
        push_ready(g, &tr);
    }
    return 0;
}

int hy_generator_step(hy_generator *g) {
    hy_engine_stats st;
    hy_engine_stats_get(g->e, &st);
    int rc = 0;
    if (st.waiting + st.running > 0) rc = hy_engine_step(g->e);
    if (rc < 0 || collect(g)) return -1;
    hy_engine_stats_get(g->e, &st);
    return st.waiting + st.running > 0;
}

int hy_generator_take(hy_generator *g, proto_trajectory *out) {
    if (g->head == g->n_ready) return 0;
    *out = g->ready[g->head++];
    if (g->head == g->n_ready) g->head = g->n_ready = 0;
    return 1;
}

void hy_generator_stats_get(const hy_generator *g, hy_generator_stats *s) { *s = g->st; }
