// Environment registry and the tool-episode loop shared by the built-in environments (see env.h).
#include "evals/env.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/env_impl.h"
#include "evals/verifier.h"

static const hy_env_kind *const kinds[] = {&hy_env_calculator, &hy_env_kv_lookup};
static const int n_kinds = (int)(sizeof kinds / sizeof *kinds);

int hy_env_kind_count(void) { return n_kinds; }
const char *hy_env_kind_name(int i) { return i >= 0 && i < n_kinds ? kinds[i]->name : NULL; }

void hy_env_print_help(FILE *out) {
    for (int i = 0; i < n_kinds; i++) {
        fprintf(out, "%s: %s\n", kinds[i]->name, kinds[i]->help);
        hy_params_print_help(kinds[i]->params, kinds[i]->n_params, out);
    }
}

int hy_env_new(hy_env **out, const char *name, const char *params) {
    *out = NULL;
    const int which = hy_registry_find("environment", name, n_kinds, hy_env_kind_name);
    if (which < 0) return -1;
    const hy_env_kind *kind = kinds[which];
    hy_env *e = hy_calloc(1, sizeof *e);
    e->kind = kind;
    hy_strbuf owner;
    hy_strbuf_init(&owner);
    hy_strbuf_addf(&owner, "environment %s", name);
    int rc = hy_params_parse(&e->params, kind->params, kind->n_params, params, owner.s);
    hy_strbuf_free(&owner);
    if (!rc && kind->open && kind->open(e)) {
        hy_params_free(&e->params);
        rc = -1;
    }
    if (rc) {
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void hy_env_destroy(hy_env *e) {
    if (!e) return;
    if (e->kind->close) e->kind->close(e);
    hy_params_free(&e->params);
    free(e->answer);
    free(e);
}

const char *hy_env_name(const hy_env *e) { return e->kind->name; }
const char *const *hy_env_stop_strings(const hy_env *e) { return e->kind->stop_strings; }
const char *hy_env_answer(const hy_env *e) { return e->answer; }

int hy_env_reset(hy_env *e, uint64_t seed, char **observation) {
    free(e->answer);
    e->answer = NULL;
    e->kind->reset(e, seed, observation, &e->answer);
    e->calls = 0;
    e->done = 0;
    return 0;
}

// The argument of a tool call that ends the turn (trailing whitespace aside): the text between
// the last open tag and the closing tag at the end. NULL when the turn does not end with a call.
static char *trailing_call(const char *turn, const char *open_tag, const char *close_tag) {
    size_t n = strlen(turn);
    while (n && (turn[n - 1] == ' ' || turn[n - 1] == '\n' || turn[n - 1] == '\r' || turn[n - 1] == '\t')) n--;
    const size_t cl = strlen(close_tag), ol = strlen(open_tag);
    if (n < cl || memcmp(turn + n - cl, close_tag, cl)) return NULL;
    const char *end = turn + n - cl, *open = NULL;
    for (const char *p = turn; (p = strstr(p, open_tag)) && p + ol <= end; p++) open = p;
    if (!open) return NULL;
    const size_t len = (size_t)(end - (open + ol));
    char *arg = hy_malloc(len + 1);
    memcpy(arg, open + ol, len);
    arg[len] = '\0';
    return arg;
}

int hy_env_step(hy_env *e, const char *turn, hy_env_step_result *r) {
    memset(r, 0, sizeof *r);
    if (!e->answer) return hy_fail("environment %s: step before reset", e->kind->name);
    if (e->done) return hy_fail("environment %s: step after the episode ended; reset first", e->kind->name);
    char *arg = trailing_call(turn, e->kind->open_tag, e->kind->close_tag);
    if (arg) {
        const long long max_calls = hy_params_int(&e->params, "max_calls");
        if (++e->calls > max_calls) {
            e->done = 1;
            r->done = 1;
            r->observation = hy_strdup("");
            snprintf(r->reason, sizeof r->reason, "more than max_calls=%lld tool calls", max_calls);
            free(arg);
            return 0;
        }
        hy_strbuf result;
        hy_strbuf_init(&result);
        e->kind->tool(e, arg, &result);
        snprintf(r->reason, sizeof r->reason, "call %d: %s%.80s%s -> %.80s", e->calls, e->kind->open_tag, arg,
                 e->kind->close_tag, result.s ? result.s : "");
        hy_strbuf obs;
        hy_strbuf_init(&obs);
        hy_strbuf_addf(&obs, "<result>%s</result>", result.s ? result.s : "");
        r->observation = hy_strbuf_take(&obs);
        hy_strbuf_free(&result);
        free(arg);
        return 0;
    }
    hy_verdict v;
    if (hy_verify(e->kind->verifier, turn, e->answer, NULL, &v)) return hy_fail_prefix("environment %s", e->kind->name);
    e->done = 1;
    r->done = 1;
    r->reward = v.reward;
    r->observation = hy_strdup("");
    snprintf(r->reason, sizeof r->reason, "final answer: %.240s", v.reason);
    return 0;
}

void hy_env_step_result_free(hy_env_step_result *r) {
    free(r->observation);
    memset(r, 0, sizeof *r);
}
