// Declarative command-line options: one table per subcommand (name, type, default, range, help)
// generates the parser, `--help` and validation, so the three cannot disagree (house style 14).
// The same table checks values from other sources — a YAML recipe (`--recipe`, read by
// common/yaml_recipe.h) and `--set key=value` overrides — and writes the resolved configuration
// back out as a recipe, so a run's stored config can be replayed.
#ifndef HY_ARGS_H
#define HY_ARGS_H

#include <stdbool.h>

// ARG_CHOICE: a string from the set written in the help text as its first "{a|b|c}" group (braces
// holding a '|'), so the help shows exactly what validation accepts.
typedef enum { ARG_STR, ARG_INT, ARG_FLOAT, ARG_FLAG, ARG_CHOICE } arg_type;

typedef struct {
    const char *name;  // without the leading "--"
    arg_type type;
    const char *def;   // default as text; NULL = no default (absent unless given)
    const char *help;
    double min, max;   // inclusive range for ARG_INT / ARG_FLOAT when min < max
} arg_spec;

enum { ARGS_MAX = 64 };

typedef struct {
    const arg_spec *specs;
    int n;
    const char *value[ARGS_MAX];  // NULL when absent and without default
    bool given[ARGS_MAX];
    char *owned[ARGS_MAX];  // values read from a recipe (freed by args_free)
} arg_values;

typedef struct {
    const char *name;     // subcommand
    const char *usage;    // one-line synopsis
    const char *summary;  // what it does, a few lines
    const arg_spec *specs;
    int n_specs;
} arg_command;

// Parses argv (after the subcommand). Returns 0 on success, 1 when --help was printed, −1 on a
// bad option (message printed to stderr naming the option and the problem).
int args_parse(const arg_command *cmd, int argc, char **argv, arg_values *out);
void args_print_help(const arg_command *cmd);
const char *arg_str(const arg_values *v, const char *name);
long arg_int(const arg_values *v, const char *name);
double arg_float(const arg_values *v, const char *name);
bool arg_flag(const arg_values *v, const char *name);
bool arg_given(const arg_values *v, const char *name);

// Sets option name to text after the same checks as the command line (type, range, choices; flags
// take true/false/yes/no/1/0). origin names the source in the message ("--set", "r.yaml:3: key"). 0 / −1
// (hy_fail message naming origin, option and problem). text must outlive v.
int args_set(const arg_command *cmd, arg_values *v, const char *name, const char *text, const char *origin);
// Applies a YAML recipe: each of its keys sets the option of that name unless the command line gave
// it. Keys must be options of cmd; those in skip (NULL-terminated: e.g. "recipe", "set") are refused
// by name.
// 0 / −1 (message naming the file, the key and the problem).
int args_apply_recipe(const arg_command *cmd, arg_values *v, const char *path, const char *const *skip);
// Every option with a value (but those in skip), one "name: value" line each, strings quoted:
// a recipe that reproduces the resolved configuration. Caller frees.
char *args_to_yaml(const arg_values *v, const char *const *skip);
void args_free(arg_values *v);

#endif
