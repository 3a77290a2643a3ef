// Declarative command-line options: one table per subcommand (name, type, default, range, help)
// generates the parser, `--help` and validation, so the three cannot disagree (house style 14).
#ifndef HY_ARGS_H
#define HY_ARGS_H

#include <stdbool.h>

typedef enum { ARG_STR, ARG_INT, ARG_FLOAT, ARG_FLAG } arg_type;

typedef struct {
    const char *name;  // without the leading "--"
    arg_type type;
    const char *def;   // default as text; NULL = no default (absent unless given)
    const char *help;
    double min, max;   // inclusive range for ARG_INT / ARG_FLOAT when min < max
} arg_spec;

enum { ARGS_MAX = 32 };

typedef struct {
    const arg_spec *specs;
    int n;
    const char *value[ARGS_MAX];  // NULL when absent and without default
    bool given[ARGS_MAX];
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

#endif
