// The colocated rollout source (see local_source.h): a generator over an engine on the learner's
// model, filed into a request table.
#include "rollout/local_source.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "rollout/generator.h"
#include "rollout/request_table.h"

struct hy_local_source {
    hy_engine *e;
    hy_generator *g;
    hy_request_table table;
    uint64_t delivered;
};

void hy_gen_params_from_request(const proto_gen_request *r, hy_gen_params *p) {
    hy_gen_params_default(p);
    p->temperature = r->sampling.temperature;
    p->top_p = r->sampling.top_p;
    p->top_k = r->sampling.top_k;
    p->seed = r->sampling.seed;
    p->max_tokens = (int)r->max_tokens;
    p->n_logprobs = r->sampling.top_logprobs;
    p->ignore_eos = r->ignore_eos;
    p->stop = (const char *const *)r->stop_strings;
    p->n_stop = (int)r->n_stop_strings;
}

int hy_local_source_new(hy_local_source **out, const hy_model *m, const hy_engine_config *cfg,
                        uint64_t start_version) {
    hy_local_source *s = hy_calloc(1, sizeof *s);
    if (hy_engine_new(&s->e, m, cfg)) {
        free(s);
        return -1;
    }
    s->g = hy_generator_new(s->e, cfg->tok, &m->cfg, start_version, "colocated rollout", stderr);
    hy_request_table_init(&s->table);
    *out = s;
    return 0;
}

void hy_local_source_destroy(hy_local_source *s) {
    if (!s) return;
    hy_generator_destroy(s->g);
    hy_engine_destroy(s->e);
    hy_request_table_free(&s->table);
    free(s);
}

static int local_submit(void *ctx, const proto_gen_request *r) {
    hy_local_source *s = ctx;
    if (hy_request_table_add(&s->table, r)) return -1;
    hy_generator_submit(s->g, r);
    return 0;
}

static void file_ready(hy_local_source *s) {
    proto_trajectory tr;
    while (hy_generator_take(s->g, &tr))
        if (!hy_request_table_file(&s->table, &tr)) proto_trajectory_free(&tr);
}

static int local_collect(void *ctx, uint64_t request_id, proto_trajectory **out, int *n) {
    hy_local_source *s = ctx;
    if (!hy_request_table_find(&s->table, request_id))
        return hy_fail("collect: request %llu was never submitted", (unsigned long long)request_id);
    for (;;) {
        file_ready(s);
        if (hy_request_table_take(&s->table, request_id, out, n)) {
            s->delivered += (uint64_t)*n;
            return 0;
        }
        const int rc = hy_generator_step(s->g);
        if (rc < 0) return -1;
        if (rc == 0) {  // idle: whatever finished is filed on the next round, else it never will be
            file_ready(s);
            if (!hy_request_table_take(&s->table, request_id, out, n))
                return hy_fail("collect: the engine went idle before request %llu finished",
                               (unsigned long long)request_id);
            s->delivered += (uint64_t)*n;
            return 0;
        }
    }
}

static int local_publish(void *ctx, uint64_t version, double *sync_s) {
    hy_local_source *s = ctx;
    hy_generator_weights(s->g, version);  // the weights themselves are read in place
    *sync_s = 0.0;
    return 0;
}

static void local_describe(void *ctx, char *buf, int n) {
    hy_local_source *s = ctx;
    hy_engine_stats st;
    hy_engine_stats_get(s->e, &st);
    hy_generator_stats gs;
    hy_generator_stats_get(s->g, &gs);
    snprintf(buf, (size_t)n,
             "colocated engine: %llu trajectories (%llu episodes), %llu requests refused, %lld tokens generated",
             (unsigned long long)s->delivered, (unsigned long long)gs.episodes, (unsigned long long)gs.refused,
             (long long)st.generated_tokens);
}

hy_rollout_source hy_local_source_iface(hy_local_source *s) {
    return (hy_rollout_source){local_submit, local_collect, local_publish, local_describe, s};
}
