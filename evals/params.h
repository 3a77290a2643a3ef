// Named parameters for tasks and environments: one declarative table per kind, parsed from a
// "key=value,key=value" string.
//
// Each task or environment declares its knobs once (name, type, default, range, help); parsing,
// validation, the printed help and the metadata recorded with every sample all come from that
// table, so a knob cannot be accepted in one place and forgotten in another. Values are integers
// or strings. A string value runs to the next comma, so it cannot itself contain one.
#ifndef HY_EVALS_PARAMS_H
#define HY_EVALS_PARAMS_H

#include <jansson.h>
#include <stdio.h>

typedef enum { HY_PARAM_INT, HY_PARAM_STR } hy_param_type;

typedef struct {
    const char *name;
    hy_param_type type;
    long long def, min, max;  // HY_PARAM_INT: default and inclusive range
    const char *def_str;      // HY_PARAM_STR: default ("" allowed)
    const char *help;
} hy_param_spec;

enum { HY_PARAMS_MAX = 16 };

typedef struct {
    const hy_param_spec *spec;  // (n) not owned; a static table
    int n;
    long long ints[HY_PARAMS_MAX];
    char *strs[HY_PARAMS_MAX];  // owned copies for HY_PARAM_STR entries, NULL otherwise
} hy_params;

// Parses text (NULL or "" = all defaults) against spec. owner prefixes every message, e.g.
// "task arithmetic: parameter 'digits': 99 is outside [1, 40]". Unknown and repeated keys fail,
// and the message for an unknown key lists the known ones. On failure *p needs no free.
int hy_params_parse(hy_params *p, const hy_param_spec *spec, int n, const char *text, const char *owner);
void hy_params_free(hy_params *p);

// Lookups by name; a name absent from the spec is a programming error and aborts.
long long hy_params_int(const hy_params *p, const char *name);
const char *hy_params_str(const hy_params *p, const char *name);

// {"name": value, ...} for sample metadata (new reference).
json_t *hy_params_to_json(const hy_params *p);
// One line per parameter: name, type, default, range, help.
void hy_params_print_help(const hy_param_spec *spec, int n, FILE *out);

// The index of the registry entry called name among n (name_at(i) gives the i-th name), or −1
// with "unknown <what> '<name>' (known: a, b, ...)": the lookup the task and environment
// registries share.
int hy_registry_find(const char *what, const char *name, int n, const char *(*name_at)(int));

#endif
