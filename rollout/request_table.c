// Requests in flight and their trajectories (see request_table.h). A linear table: a run holds a
// few hundred requests at most, and every lookup is by id.
#include "rollout/request_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

void hy_request_table_init(hy_request_table *t) { memset(t, 0, sizeof *t); }

static void entry_free(hy_request_entry *e) {
    for (uint32_t i = 0; i < e->req.n; i++)
        if (e->got[i]) proto_trajectory_free(&e->traj[i]);
    free(e->traj);
    free(e->got);
    proto_gen_request_free(&e->req);
}

void hy_request_table_free(hy_request_table *t) {
    for (int i = 0; i < t->n; i++) entry_free(&t->e[i]);
    free(t->e);
    memset(t, 0, sizeof *t);
}

hy_request_entry *hy_request_table_find(hy_request_table *t, uint64_t request_id) {
    for (int i = 0; i < t->n; i++)
        if (t->e[i].req.id == request_id) return &t->e[i];
    return NULL;
}

static char *dup_or_empty(const char *s) { return hy_strdup(s ? s : ""); }

int hy_request_table_add(hy_request_table *t, const proto_gen_request *r) {
    if (hy_request_table_find(t, r->id)) return hy_fail("request %llu is already in flight", (unsigned long long)r->id);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->e = hy_realloc(t->e, sizeof *t->e * (size_t)t->cap);
    }
    hy_request_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    proto_gen_request *c = &e->req;
    *c = *r;
    c->prompt = hy_malloc(sizeof(int32_t) * r->n_prompt);
    memcpy(c->prompt, r->prompt, sizeof(int32_t) * r->n_prompt);
    c->stop_token_ids = hy_malloc(sizeof(int32_t) * (r->n_stop_token_ids + 1));
    if (r->n_stop_token_ids) memcpy(c->stop_token_ids, r->stop_token_ids, sizeof(int32_t) * r->n_stop_token_ids);
    c->stop_strings = hy_calloc(r->n_stop_strings + 1, sizeof(char *));
    for (uint32_t i = 0; i < r->n_stop_strings; i++) c->stop_strings[i] = dup_or_empty(r->stop_strings[i]);
    c->env_id = dup_or_empty(r->env_id);
    c->metadata.items = hy_calloc(r->metadata.n + 1, sizeof(proto_str_pair));
    for (uint32_t i = 0; i < r->metadata.n; i++) {
        c->metadata.items[i].key = dup_or_empty(r->metadata.items[i].key);
        c->metadata.items[i].value = dup_or_empty(r->metadata.items[i].value);
    }
    e->traj = hy_calloc(r->n, sizeof *e->traj);
    e->got = hy_calloc(r->n, 1);
    e->owner = -1;
    return 0;
}

int hy_request_table_file(hy_request_table *t, proto_trajectory *tr) {
    hy_request_entry *e = hy_request_table_find(t, tr->request_id);
    if (!e || tr->sample_index >= e->req.n) {
        t->unknown++;
        return 0;
    }
    if (e->got[tr->sample_index]) {
        t->duplicates++;
        return 0;
    }
    e->traj[tr->sample_index] = *tr;
    e->got[tr->sample_index] = 1;
    e->received++;
    return 1;
}

int hy_request_table_take(hy_request_table *t, uint64_t request_id, proto_trajectory **out, int *n) {
    hy_request_entry *e = hy_request_table_find(t, request_id);
    if (!e || e->received < e->req.n) return 0;
    *out = e->traj;
    *n = (int)e->req.n;
    e->traj = NULL;
    memset(e->got, 0, e->req.n);  // handed over: entry_free must not free them
    entry_free(e);
    *e = t->e[--t->n];
    return 1;
}
