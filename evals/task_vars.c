// The variables task: state tracking through a chain of assignments.
//
// `vars` variables (a, b, c, ...) each start at a digit 0..9; then `steps` assignments follow,
// each `x = k` (one in six), `x = y`, `x = y + k` or `x = y - k` with k in 1..9 and y any variable
// (x itself included). The question asks for one variable's final value. Every value stays within
// ±9·(steps + 1), far inside int64, so plain integers are exact. Copies chain values across
// variables, so the answer needs the whole history, not the last line naming the variable.
#include <stdlib.h>

#include "evals/strbuf.h"
#include "evals/task_impl.h"

enum { MAX_VARS = 26 };

static const hy_param_spec params[] = {
    {"vars", HY_PARAM_INT, 4, 2, MAX_VARS, NULL, "variables (a, b, c, ...)"},
    {"steps", HY_PARAM_INT, 8, 1, 2000, NULL, "assignments after the initial values"},
};

static int vars_sample(const hy_task *t, long index, hy_task_sample *s) {
    hy_rng r;
    hy_task_rng(&r, t->seed, index);
    const int n = (int)hy_params_int(&t->params, "vars"), steps = (int)hy_params_int(&t->params, "steps");
    long long v[MAX_VARS];
    hy_strbuf prompt;
    hy_strbuf_init(&prompt);
    hy_strbuf_add(&prompt, "The following assignments run in order, top to bottom:\n\n");
    for (int i = 0; i < n; i++) {
        v[i] = (long long)hy_task_uniform(&r, 10);
        hy_strbuf_addf(&prompt, "%c = %lld\n", 'a' + i, v[i]);
    }
    for (int k = 0; k < steps; k++) {
        const int x = (int)hy_task_uniform(&r, (uint64_t)n);
        const int y = (int)hy_task_uniform(&r, (uint64_t)n);
        const long long c = 1 + (long long)hy_task_uniform(&r, 9);
        switch (hy_task_uniform(&r, 6)) {
        case 0:
            v[x] = c;
            hy_strbuf_addf(&prompt, "%c = %lld\n", 'a' + x, c);
            break;
        case 1:
        case 2:
            v[x] = v[y];
            hy_strbuf_addf(&prompt, "%c = %c\n", 'a' + x, 'a' + y);
            break;
        case 3:
        case 4:
            v[x] = v[y] + c;
            hy_strbuf_addf(&prompt, "%c = %c + %lld\n", 'a' + x, 'a' + y, c);
            break;
        default:
            v[x] = v[y] - c;
            hy_strbuf_addf(&prompt, "%c = %c - %lld\n", 'a' + x, 'a' + y, c);
            break;
        }
    }
    const int q = (int)hy_task_uniform(&r, (uint64_t)n);
    hy_strbuf_addf(&prompt, "\nWhat is the value of %c after the last line? Put the final answer in \\boxed{}.",
                   'a' + q);
    hy_strbuf answer;
    hy_strbuf_init(&answer);
    hy_strbuf_addf(&answer, "%lld", v[q]);
    const char query[2] = {(char)('a' + q), '\0'};
    json_t *extra = json_pack("{s:s}", "query", query);
    hy_task_sample_fill(t, index, s, hy_strbuf_take(&prompt), hy_strbuf_take(&answer), "math", extra);
    return 0;
}

const hy_task_kind hy_task_variables = {
    .name = "variables",
    .help = "state tracking: the final value of a variable after a chain of assignments",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .sample = vars_sample,
};
