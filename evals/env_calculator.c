// The calculator environment: an arithmetic problem and a calculator tool.
//
// Problems come from the arithmetic task's generator (hy_arith_make) with the same digits, terms
// and ops parameters. The tool evaluates in double (calc_expr.h), so digits × terms is capped at 15:
// every intermediate and final value then stays below 10^15 and the tool's integers are exact,
// which keeps "used the tool correctly" and "got the right answer" the same thing.
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/calc_expr.h"
#include "evals/env_impl.h"
#include "evals/task_impl.h"

static const hy_param_spec params[] = {
    {"digits", HY_PARAM_INT, 3, 1, 7, NULL, "digits in every operand (digits * terms <= 15)"},
    {"terms", HY_PARAM_INT, 3, 2, 8, NULL, "number of operands"},
    {"ops", HY_PARAM_STR, 0, 0, 0, "+-*", "operators to draw from, a subset of +-*"},
    {"max_calls", HY_PARAM_INT, 8, 1, 256, NULL, "tool calls allowed per episode"},
};

static const char *const stops[] = {"</calc>", NULL};

static int calc_open(hy_env *e) {
    const long long digits = hy_params_int(&e->params, "digits"), terms = hy_params_int(&e->params, "terms");
    if (digits * terms > 15)
        return hy_fail("environment calculator: digits * terms = %lld exceeds 15 (values must stay exact in double)",
                       digits * terms);
    const char *ops = hy_params_str(&e->params, "ops");
    if (!*ops || strspn(ops, "+-*") != strlen(ops))
        return hy_fail("environment calculator: parameter 'ops': \"%s\" must be a non-empty subset of \"+-*\"", ops);
    return 0;
}

static void calc_reset(hy_env *e, uint64_t seed, char **observation, char **answer) {
    hy_rng r;
    hy_task_rng(&r, seed, 0);
    char *expr;
    hy_arith_make(&r, (int)hy_params_int(&e->params, "digits"), (int)hy_params_int(&e->params, "terms"),
                  hy_params_str(&e->params, "ops"), &expr, answer);
    hy_strbuf b;
    hy_strbuf_init(&b);
    hy_strbuf_addf(&b,
                   "Compute %s.\n\nYou have a calculator. To use it, write <calc>expression</calc> (numbers, + - * /, "
                   "parentheses) and stop; the result comes back as <result>value</result>. When you are done, put "
                   "the final answer in \\boxed{}.",
                   expr);
    *observation = hy_strbuf_take(&b);
    free(expr);
}

static void calc_tool(hy_env *e, const char *argument, hy_strbuf *out) {
    double v;
    char msg[128];
    if (hy_calc_eval(argument, &v, msg, sizeof msg)) {
        hy_strbuf_addf(out, "error: %s", msg);
        return;
    }
    hy_calc_format(v, msg, sizeof msg);
    hy_strbuf_add(out, msg);
}

const hy_env_kind hy_env_calculator = {
    .name = "calculator",
    .help = "arithmetic problem with a <calc>expression</calc> tool; final answer checked by the math verifier",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .open_tag = "<calc>",
    .close_tag = "</calc>",
    .stop_strings = stops,
    .verifier = "math",
    .open = calc_open,
    .reset = calc_reset,
    .tool = calc_tool,
};
