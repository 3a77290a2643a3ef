// Weight-decay groups from rules over the parameter table (see param_groups.h).
#include "param_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/hy_error.h"

typedef enum { KIND_NONE = -1, KIND_NAME = 0, KIND_NORM, KIND_BIAS, KIND_A_LOG, KIND_DT_BIAS, KIND_EMBED, KIND_CONV,
               KIND_LM_HEAD } rule_kind;

static rule_kind kind_of(const char *rule, size_t len) {
    static const struct {
        const char *word;
        rule_kind kind;
    } words[] = {{"none", KIND_NONE},   {"norm", KIND_NORM},   {"bias", KIND_BIAS}, {"a_log", KIND_A_LOG},
                 {"dt_bias", KIND_DT_BIAS}, {"embed", KIND_EMBED}, {"conv", KIND_CONV}, {"lm_head", KIND_LM_HEAD}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i].word) == len && !strncasecmp(rule, words[i].word, len)) return words[i].kind;
    return KIND_NAME;
}

static int name_ends_with(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

static int rule_matches(rule_kind kind, const char *rule, size_t len, const hy_param_spec *s) {
    switch (kind) {
    case KIND_NONE: return 0;
    case KIND_NORM: return s->role == HY_ROLE_NORM;
    case KIND_BIAS: return name_ends_with(s->name, "bias") && s->role != HY_ROLE_DT_BIAS;
    case KIND_A_LOG: return s->role == HY_ROLE_A_LOG;
    case KIND_DT_BIAS: return s->role == HY_ROLE_DT_BIAS;
    case KIND_EMBED: return s->role == HY_ROLE_EMBED;
    case KIND_CONV: return s->role == HY_ROLE_CONV;
    case KIND_LM_HEAD: return !strcmp(s->name, "lm_head.weight");
    case KIND_NAME: {
        char buf[160];
        snprintf(buf, sizeof buf, "%.*s", (int)len, rule);
        return strstr(s->name, buf) != NULL;
    }
    }
    return 0;
}

// Calls fn for each rule of the list (split at commas, surrounding spaces trimmed, empties skipped).
typedef int (*rule_fn)(rule_kind kind, const char *rule, size_t len, void *ctx);

static int for_each_rule(const char *list, rule_fn fn, void *ctx) {
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t')) trimmed--;
        if (trimmed) {
            int rc = fn(kind_of(p, trimmed), p, trimmed, ctx);
            if (rc) return rc;
        }
        p += len;
    }
    return 0;
}

typedef struct {
    const hy_param_spec *spec;
    int hit;
} match_ctx;

static int match_one(rule_kind kind, const char *rule, size_t len, void *ctx) {
    match_ctx *m = ctx;
    m->hit |= rule_matches(kind, rule, len, m->spec);
    return 0;
}

int hy_param_groups_excludes(const hy_param_spec *s, const char *no_decay) {
    match_ctx m = {s, 0};
    for_each_rule(no_decay, match_one, &m);
    return m.hit;
}

static int check_rule(rule_kind kind, const char *rule, size_t len, void *ctx) {
    const hy_param_table *t = ctx;
    if (kind != KIND_NAME) return 0;
    if (len >= 160) return hy_fail("no-decay rule '%.*s...' is too long", 40, rule);
    for (int i = 0; i < t->n; i++)
        if (rule_matches(kind, rule, len, &t->specs[i])) return 0;
    return hy_fail("no-decay rule '%.*s' is neither a kind (norm, bias, a_log, dt_bias, embed, conv, lm_head, none) "
                   "nor part of any parameter name",
                   (int)len, rule);
}

int hy_param_groups_build(hy_param_groups *g, const hy_param_table *t, const char *no_decay) {
    memset(g, 0, sizeof *g);
    if (for_each_rule(no_decay, check_rule, (void *)t)) return -1;
    g->ranges = hy_malloc(sizeof *g->ranges * (size_t)(t->n ? t->n : 1));
    for (int i = 0; i < t->n; i++) {
        const hy_param_spec *s = &t->specs[i];
        const int decay = !hy_param_groups_excludes(s, no_decay);
        // The ranges tile the arena: the zero gaps that align each tensor (params.c) go to the range
        // that follows them, where AdamW leaves them zero whatever the decay.
        hy_param_range *last = g->n_ranges ? &g->ranges[g->n_ranges - 1] : NULL;
        const size_t start = last ? last->offset + last->n : 0, end = s->offset + s->numel;
        if (last && last->decay == decay)
            last->n = end - last->offset;
        else
            g->ranges[g->n_ranges++] = (hy_param_range){start, end - start, decay};
        *(decay ? &g->n_decay : &g->n_no_decay) += s->numel;
    }
    return 0;
}

void hy_param_groups_free(hy_param_groups *g) {
    free(g->ranges);
    memset(g, 0, sizeof *g);
}
