// Option parsing driven by arg_spec tables (see args.h).
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/hy_error.h"
#include "../common/yaml_recipe.h"

static int find(const arg_command *cmd, const char *name) {
    for (int i = 0; i < cmd->n_specs; i++)
        if (!strcmp(cmd->specs[i].name, name)) return i;
    return -1;
}

static const char *type_name(arg_type t) {
    switch (t) {
    case ARG_INT: return "INT";
    case ARG_FLOAT: return "X";
    case ARG_STR: return "S";
    case ARG_CHOICE: return "NAME";
    default: return "";
    }
}

void args_print_help(const arg_command *cmd) {
    printf("usage: hybrid %s\n\n%s\n\noptions:\n", cmd->usage, cmd->summary);
    for (int i = 0; i < cmd->n_specs; i++) {
        const arg_spec *s = &cmd->specs[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", s->name, type_name(s->type));
        printf("  %-24s %s", left, s->help);
        if (s->def) printf(" (default: %s)", s->def);
        if (s->min < s->max) printf(" [%g, %g]", s->min, s->max);
        printf("\n");
    }
    printf("  %-24s show this help\n", "--help");
}

// The allowed values of an ARG_CHOICE option: the first "{a|b|c}" group (braces holding a '|') of
// its help text.
static int choice_ok(const arg_spec *s, const char *text, const char **set, int *set_len) {
    const char *open = s->help, *close = NULL;
    while ((open = strchr(open, '{'))) {
        close = strchr(open, '}');
        if (!close) break;
        if (memchr(open, '|', (size_t)(close - open))) break;
        open = close;
    }
    if (!open || !close) {
        fprintf(stderr, "internal: option '%s' is ARG_CHOICE without a {a|b} group in its help\n", s->name);
        abort();
    }
    *set = open + 1;
    *set_len = (int)(close - open - 1);
    const size_t n = strlen(text);
    for (const char *p = open + 1; p < close;) {
        const size_t len = strcspn(p, "|}");
        if (len == n && !strncmp(p, text, n)) return 1;
        p += len + 1;
    }
    return 0;
}

// Checks text against s; on failure writes the problem (after the option's name) into why.
static int check_value(const arg_spec *s, const char *text, char *why, size_t n) {
    if (s->type == ARG_STR || s->type == ARG_FLAG) return 0;
    if (s->type == ARG_CHOICE) {
        const char *set;
        int set_len;
        if (choice_ok(s, text, &set, &set_len)) return 0;
        snprintf(why, n, "expects one of %.*s, got '%s'", set_len, set, text);
        return -1;
    }
    char *end;
    errno = 0;
    double v = s->type == ARG_INT ? (double)strtol(text, &end, 10) : strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) {
        snprintf(why, n, "expects %s, got '%s'", s->type == ARG_INT ? "an integer" : "a number", text);
        return -1;
    }
    if (s->min < s->max && (v < s->min || v > s->max)) {
        snprintf(why, n, "= %s is outside [%g, %g]", text, s->min, s->max);
        return -1;
    }
    return 0;
}

static int validate(const arg_command *cmd, const arg_spec *s, const char *text) {
    char why[512];
    if (!check_value(s, text, why, sizeof why)) return 0;
    fprintf(stderr, "hybrid %s: --%s %s\n", cmd->name, s->name, why);
    return -1;
}

int args_parse(const arg_command *cmd, int argc, char **argv, arg_values *out) {
    memset(out, 0, sizeof *out);
    out->specs = cmd->specs;
    out->n = cmd->n_specs;
    for (int i = 0; i < cmd->n_specs; i++) out->value[i] = cmd->specs[i].def;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args_print_help(cmd);
            return 1;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "hybrid %s: unexpected argument '%s' (see hybrid %s --help)\n", cmd->name, a, cmd->name);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        int k = find(cmd, name);
        if (k < 0) {
            fprintf(stderr, "hybrid %s: unknown option '--%s' (see hybrid %s --help)\n", cmd->name, name, cmd->name);
            return -1;
        }
        const char *value;
        if (cmd->specs[k].type == ARG_FLAG) {
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "hybrid %s: option '--%s' needs a value\n", cmd->name, name);
            return -1;
        }
        if (validate(cmd, &cmd->specs[k], value)) return -1;
        out->value[k] = value;
        out->given[k] = true;
    }
    return 0;
}

static int index_of(const arg_values *v, const char *name) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->specs[i].name, name)) return i;
    fprintf(stderr, "internal: option '%s' is not declared\n", name);
    abort();
}

const char *arg_str(const arg_values *v, const char *name) { return v->value[index_of(v, name)]; }
long arg_int(const arg_values *v, const char *name) {
    const char *s = arg_str(v, name);
    return s ? strtol(s, NULL, 10) : 0;
}
double arg_float(const arg_values *v, const char *name) {
    const char *s = arg_str(v, name);
    return s ? strtod(s, NULL) : 0.0;
}
bool arg_flag(const arg_values *v, const char *name) { return arg_str(v, name) != NULL; }
bool arg_given(const arg_values *v, const char *name) { return v->given[index_of(v, name)]; }

static int flag_value(const char *text, const char **value) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(text, yes[i]) || !strcasecmp(text, no[i])) {
            *value = strcasecmp(text, yes[i]) ? NULL : "1";
            return 0;
        }
    }
    return -1;
}

int args_set(const arg_command *cmd, arg_values *v, const char *name, const char *text, const char *origin) {
    int k = find(cmd, name);
    if (k < 0) return hy_fail("%s '%s': unknown option (see hybrid %s --help)", origin, name, cmd->name);
    const arg_spec *s = &cmd->specs[k];
    const char *value = text;
    char why[512];
    if (s->type == ARG_FLAG) {
        if (flag_value(text, &value)) return hy_fail("%s '%s' expects true or false, got '%s'", origin, name, text);
    } else if (check_value(s, text, why, sizeof why)) {
        return hy_fail("%s '%s' %s", origin, name, why);
    }
    v->value[k] = value;
    return 0;
}

static int skipped(const char *name, const char *const *skip) {
    for (; skip && *skip; skip++)
        if (!strcmp(name, *skip)) return 1;
    return 0;
}

int args_apply_recipe(const arg_command *cmd, arg_values *v, const char *path, const char *const *skip) {
    const char *names[ARGS_MAX] = {NULL};
    int idx[ARGS_MAX] = {0}, n = 0;
    for (int i = 0; i < cmd->n_specs; i++) {  // skipped options are read too, to refuse them by name
        names[n] = cmd->specs[i].name;
        idx[n++] = i;
    }
    char *values[ARGS_MAX];
    if (hy_yaml_recipe_load(path, names, n, values)) return -1;
    int rc = 0;
    for (int j = 0; j < n; j++) {
        const int k = idx[j];
        if (!values[j]) continue;
        if (!rc && skipped(names[j], skip))
            rc = hy_fail("%s:%d: key '%s' is not allowed in a recipe (give --%s on the command line)", path,
                         hy_yaml_key_line(path, names[j]), names[j], names[j]);
        if (rc || v->given[k]) {  // the command line wins over the recipe
            free(values[j]);
            continue;
        }
        char origin[4200];
        snprintf(origin, sizeof origin, "%s:%d: key", path, hy_yaml_key_line(path, names[j]));
        free(v->owned[k]);
        v->owned[k] = values[j];
        rc = args_set(cmd, v, names[j], values[j], origin);
    }
    return rc;
}

char *args_to_yaml(const arg_values *v, const char *const *skip) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        fprintf(stderr, "hybrid: out of host memory writing the configuration\n");
        abort();
    }
    for (int i = 0; i < v->n; i++) {
        const arg_spec *s = &v->specs[i];
        if (!v->value[i] || skipped(s->name, skip)) continue;
        if (s->type == ARG_INT || s->type == ARG_FLOAT) {
            fprintf(f, "%s: %s\n", s->name, v->value[i]);
        } else if (s->type == ARG_FLAG) {
            fprintf(f, "%s: true\n", s->name);
        } else {
            char *q = hy_yaml_quote(v->value[i]);
            fprintf(f, "%s: %s\n", s->name, q);
            free(q);
        }
    }
    fclose(f);
    return text;
}

void args_free(arg_values *v) {
    for (int i = 0; i < ARGS_MAX; i++) {
        free(v->owned[i]);
        v->owned[i] = NULL;
    }
}
