// Option parsing driven by arg_spec tables (see args.h).
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int validate(const arg_command *cmd, const arg_spec *s, const char *text) {
    if (s->type == ARG_STR || s->type == ARG_FLAG) return 0;
    char *end;
    errno = 0;
    double v = s->type == ARG_INT ? (double)strtol(text, &end, 10) : strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) {
        fprintf(stderr, "hybrid %s: --%s expects %s, got '%s'\n", cmd->name, s->name,
                s->type == ARG_INT ? "an integer" : "a number", text);
        return -1;
    }
    if (s->min < s->max && (v < s->min || v > s->max)) {
        fprintf(stderr, "hybrid %s: --%s = %s is outside [%g, %g]\n", cmd->name, s->name, text, s->min, s->max);
        return -1;
    }
    return 0;
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
