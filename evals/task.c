// Task registry and the parts every task shares (see task.h and task_impl.h).
#include "evals/task.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"
#include "evals/task_impl.h"

static const hy_task_kind *const kinds[] = {&hy_task_arithmetic, &hy_task_permutation, &hy_task_variables,
                                            &hy_task_kv_recall, &hy_task_jsonl};
static const int n_kinds = (int)(sizeof kinds / sizeof *kinds);

int hy_task_kind_count(void) { return n_kinds; }
const char *hy_task_kind_name(int i) { return i >= 0 && i < n_kinds ? kinds[i]->name : NULL; }

void hy_task_print_help(FILE *out) {
    for (int i = 0; i < n_kinds; i++) {
        fprintf(out, "%s: %s\n", kinds[i]->name, kinds[i]->help);
        hy_params_print_help(kinds[i]->params, kinds[i]->n_params, out);
    }
}

int hy_task_new(hy_task **out, const char *name, const char *params, uint64_t seed) {
    *out = NULL;
    const int which = hy_registry_find("task", name, n_kinds, hy_task_kind_name);
    if (which < 0) return -1;
    const hy_task_kind *kind = kinds[which];
    hy_task *t = hy_calloc(1, sizeof *t);
    t->kind = kind;
    t->seed = seed;
    hy_strbuf owner;
    hy_strbuf_init(&owner);
    hy_strbuf_addf(&owner, "task %s", name);
    const int rc = hy_params_parse(&t->params, kind->params, kind->n_params, params, owner.s);
    hy_strbuf_free(&owner);
    if (rc || (kind->open && kind->open(t))) {
        if (!rc) hy_params_free(&t->params);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int hy_task_open_jsonl(hy_task **out, const char *path, const char *default_verifier) {
    *out = NULL;
    hy_task *t = hy_calloc(1, sizeof *t);
    t->kind = &hy_task_jsonl;
    if (hy_params_parse(&t->params, hy_task_jsonl.params, hy_task_jsonl.n_params, NULL, "task jsonl")) {
        free(t);
        return -1;
    }
    // set directly: a path may hold the commas the key=value syntax cannot carry
    for (int i = 0; i < t->params.n; i++) {
        const char *v = !strcmp(t->params.spec[i].name, "path")       ? path
                        : !strcmp(t->params.spec[i].name, "verifier") ? (default_verifier ? default_verifier : "")
                                                                      : NULL;
        if (v) {
            free(t->params.strs[i]);
            t->params.strs[i] = hy_strdup(v);
        }
    }
    if (hy_task_jsonl.open(t)) {
        hy_params_free(&t->params);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void hy_task_destroy(hy_task *t) {
    if (!t) return;
    if (t->kind->close) t->kind->close(t);
    hy_params_free(&t->params);
    free(t);
}

const char *hy_task_name(const hy_task *t) { return t->kind->name; }

long hy_task_size(const hy_task *t) { return t->kind->size ? t->kind->size(t) : -1; }

int hy_task_sample_get(const hy_task *t, long index, hy_task_sample *s) {
    memset(s, 0, sizeof *s);
    const long n = hy_task_size(t);
    if (index < 0 || (n >= 0 && index >= n))
        return hy_fail("task %s: sample index %ld is outside [0, %ld)", t->kind->name, index, n);
    return t->kind->sample(t, index, s);
}

void hy_task_sample_free(hy_task_sample *s) {
    free(s->id);
    hy_chat_messages_free(s->messages, s->n_messages);
    free(s->prompt);
    free(s->answer);
    free(s->verifier);
    json_decref(s->metadata);
    memset(s, 0, sizeof *s);
}

int hy_task_check(const hy_task_sample *s, const char *completion, const hy_verify_options *opt, hy_verdict *v) {
    if (hy_verify(s->verifier, completion, s->answer, opt, v)) return hy_fail_prefix("sample %s", s->id);
    return 0;
}

// ---- shared by the generators -------------------------------------------------------------------

void hy_task_rng(hy_rng *r, uint64_t seed, long index) {
    // mix the index through a splitmix64 finaliser so neighbouring indices get unrelated streams
    uint64_t z = (uint64_t)index + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    hy_rng_init(r, seed ^ z ^ (z >> 31));
}

uint64_t hy_task_uniform(hy_rng *r, uint64_t n) { return hy_rng_next(r) % n; }

void hy_task_sample_fill(const hy_task *t, long index, hy_task_sample *s, char *prompt, char *answer,
                         const char *verifier, json_t *extra) {
    hy_strbuf id;
    hy_strbuf_init(&id);
    hy_strbuf_addf(&id, "%s:%llu:%ld", t->kind->name, (unsigned long long)t->seed, index);
    s->id = hy_strbuf_take(&id);
    s->n_messages = 1;
    s->messages = hy_calloc(1, sizeof *s->messages);
    s->messages[0].role = hy_strdup("user");
    s->messages[0].content = hy_strdup(prompt);
    s->messages[0].content_len = strlen(prompt);
    s->prompt = prompt;
    s->answer = answer;
    s->verifier = hy_strdup(verifier);
    json_t *m = json_object();
    json_object_set_new(m, "task", json_string(t->kind->name));
    // JSON integers are signed 64-bit: a larger seed is kept exactly as a string
    json_object_set_new(m, "seed", t->seed <= INT64_MAX ? json_integer((json_int_t)t->seed)
                                                        : json_sprintf("%llu", (unsigned long long)t->seed));
    json_object_set_new(m, "index", json_integer(index));
    json_t *params = hy_params_to_json(&t->params);
    json_object_update(m, params);
    json_decref(params);
    if (extra) {
        json_object_update(m, extra);
        json_decref(extra);
    }
    s->metadata = m;
}
