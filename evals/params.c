// "key=value" parameter parsing against a spec table (see params.h).
#include "evals/params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"

static int find(const hy_param_spec *spec, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(spec[i].name) == len && !memcmp(spec[i].name, name, len)) return i;
    return -1;
}

static void trim(const char **s, const char **e) {
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

static int unknown_key(const hy_param_spec *spec, int n, const char *key, size_t len, const char *owner) {
    hy_strbuf known;
    hy_strbuf_init(&known);
    for (int i = 0; i < n; i++) hy_strbuf_addf(&known, "%s%s", i ? ", " : "", spec[i].name);
    const int rc = hy_fail("%s: unknown parameter '%.*s' (known: %s)", owner, (int)len, key,
                           n ? known.s : "none");
    hy_strbuf_free(&known);
    return rc;
}

static int set_value(hy_params *p, int i, const char *v, size_t len, const char *owner) {
    const hy_param_spec *sp = &p->spec[i];
    if (sp->type == HY_PARAM_STR) {
        free(p->strs[i]);
        p->strs[i] = hy_malloc(len + 1);
        memcpy(p->strs[i], v, len);
        p->strs[i][len] = '\0';
        return 0;
    }
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return hy_fail("%s: parameter '%s': expected an integer, got '%.*s'", owner, sp->name, (int)len, v);
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    const long long x = strtoll(tmp, &end, 10);
    if (errno || *end) return hy_fail("%s: parameter '%s': expected an integer, got '%s'", owner, sp->name, tmp);
    if (x < sp->min || x > sp->max)
        return hy_fail("%s: parameter '%s': %lld is outside [%lld, %lld]", owner, sp->name, x, sp->min, sp->max);
    p->ints[i] = x;
    return 0;
}

int hy_params_parse(hy_params *p, const hy_param_spec *spec, int n, const char *text, const char *owner) {
    if (n > HY_PARAMS_MAX) abort();  // a spec table larger than the struct is a programming error
    memset(p, 0, sizeof *p);
    p->spec = spec;
    p->n = n;
    for (int i = 0; i < n; i++) {
        if (spec[i].type == HY_PARAM_INT)
            p->ints[i] = spec[i].def;
        else
            p->strs[i] = hy_strdup(spec[i].def_str ? spec[i].def_str : "");
    }
    int seen[HY_PARAMS_MAX] = {0};
    const char *s = text ? text : "";
    while (*s) {
        const char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        const char *k0 = s, *k1 = eq ? eq : end;
        trim(&k0, &k1);
        if (k0 == k1 && !eq) {  // tolerate empty items ("a=1,,b=2", a trailing comma)
            s = *end ? end + 1 : end;
            continue;
        }
        if (!eq) {
            hy_params_free(p);
            return hy_fail("%s: parameter '%.*s': expected key=value", owner, (int)(k1 - k0), k0);
        }
        const int i = find(spec, n, k0, (size_t)(k1 - k0));
        if (i < 0) {
            unknown_key(spec, n, k0, (size_t)(k1 - k0), owner);
            hy_params_free(p);
            return -1;
        }
        if (seen[i]++) {
            hy_params_free(p);
            return hy_fail("%s: parameter '%s' given twice", owner, spec[i].name);
        }
        const char *v0 = eq + 1, *v1 = end;
        trim(&v0, &v1);
        if (set_value(p, i, v0, (size_t)(v1 - v0), owner)) {
            hy_params_free(p);
            return -1;
        }
        s = *end ? end + 1 : end;
    }
    return 0;
}

void hy_params_free(hy_params *p) {
    for (int i = 0; i < HY_PARAMS_MAX; i++) free(p->strs[i]);
    memset(p, 0, sizeof *p);
}

static int must_find(const hy_params *p, const char *name, hy_param_type type) {
    const int i = find(p->spec, p->n, name, strlen(name));
    if (i < 0 || p->spec[i].type != type) {
        fprintf(stderr, "hybrid: internal error: parameter '%s' not declared with this type\n", name);
        abort();
    }
    return i;
}

long long hy_params_int(const hy_params *p, const char *name) { return p->ints[must_find(p, name, HY_PARAM_INT)]; }

const char *hy_params_str(const hy_params *p, const char *name) { return p->strs[must_find(p, name, HY_PARAM_STR)]; }

json_t *hy_params_to_json(const hy_params *p) {
    json_t *o = json_object();
    for (int i = 0; i < p->n; i++) {
        if (p->spec[i].type == HY_PARAM_INT)
            json_object_set_new(o, p->spec[i].name, json_integer(p->ints[i]));
        else
            json_object_set_new(o, p->spec[i].name, json_string(p->strs[i]));
    }
    return o;
}

void hy_params_print_help(const hy_param_spec *spec, int n, FILE *out) {
    for (int i = 0; i < n; i++) {
        if (spec[i].type == HY_PARAM_INT)
            fprintf(out, "  %-12s int  default %lld, range [%lld, %lld]: %s\n", spec[i].name, spec[i].def, spec[i].min,
                    spec[i].max, spec[i].help);
        else
            fprintf(out, "  %-12s str  default \"%s\": %s\n", spec[i].name, spec[i].def_str ? spec[i].def_str : "",
                    spec[i].help);
    }
}

int hy_registry_find(const char *what, const char *name, int n, const char *(*name_at)(int)) {
    for (int i = 0; i < n; i++)
        if (!strcmp(name_at(i), name)) return i;
    hy_strbuf known;
    hy_strbuf_init(&known);
    for (int i = 0; i < n; i++) hy_strbuf_addf(&known, "%s%s", i ? ", " : "", name_at(i));
    hy_fail("unknown %s '%s' (known: %s)", what, name, known.s);
    hy_strbuf_free(&known);
    return -1;
}
