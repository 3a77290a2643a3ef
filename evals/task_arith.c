// The arithmetic task: multi-digit integer expressions with exact answers.
//
// An expression is `terms` operands of exactly `digits` digits (leading digit non-zero, so the
// difficulty is what the parameter says) joined by operators drawn from `ops`, evaluated with the
// usual precedence (× before + and −, left to right). Answers are computed in big integers:
// 30-digit × 30-digit products and negative results are exact, and the math verifier compares
// integers digit for digit.
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/bigint.h"
#include "evals/strbuf.h"
#include "evals/task_impl.h"

static const hy_param_spec params[] = {
    {"digits", HY_PARAM_INT, 3, 1, 30, NULL, "digits in every operand"},
    {"terms", HY_PARAM_INT, 2, 2, 8, NULL, "number of operands"},
    {"ops", HY_PARAM_STR, 0, 0, 0, "+-*", "operators to draw from, a subset of +-*"},
    {"style", HY_PARAM_STR, 0, 0, 0, "sentence",
     "prompt wording: sentence (Compute ... exactly. Put the final answer in \\boxed{}.) or terse (12+34=, for "
     "small models that see every byte)"},
};

// One operand of exactly `digits` digits, as text and as a big integer.
static void operand(hy_rng *r, int digits, hy_strbuf *text, hy_bigint *v) {
    hy_bigint ten, d;
    hy_bigint_init(&ten);
    hy_bigint_init(&d);
    hy_bigint_set_i64(&ten, 10);
    hy_bigint_set_i64(v, 0);
    for (int i = 0; i < digits; i++) {
        const int digit = (int)(i == 0 ? 1 + hy_task_uniform(r, 9) : hy_task_uniform(r, 10));
        const char c = (char)('0' + digit);
        hy_strbuf_addn(text, &c, 1);
        hy_bigint_set_i64(&d, digit);
        hy_bigint_mul(v, v, &ten);
        hy_bigint_add(v, v, &d);
    }
    hy_bigint_free(&ten);
    hy_bigint_free(&d);
}

void hy_arith_make(hy_rng *r, int digits, int terms, const char *ops, char **expr, char **value) {
    hy_strbuf text;
    hy_strbuf_init(&text);
    // sum of products: `product` accumulates × runs, `sum` takes each finished run with its sign
    hy_bigint sum, product, x;
    hy_bigint_init(&sum);
    hy_bigint_init(&product);
    hy_bigint_init(&x);
    operand(r, digits, &text, &product);
    char sign = '+';
    const size_t n_ops = strlen(ops);
    for (int i = 1; i < terms; i++) {
        const char op = ops[hy_task_uniform(r, n_ops)];
        hy_strbuf_addf(&text, " %c ", op);
        operand(r, digits, &text, &x);
        if (op == '*') {
            hy_bigint_mul(&product, &product, &x);
            continue;
        }
        if (sign == '+') hy_bigint_add(&sum, &sum, &product);
        else hy_bigint_sub(&sum, &sum, &product);
        sign = op;
        hy_bigint_free(&product);
        product = x;
        hy_bigint_init(&x);
    }
    if (sign == '+') hy_bigint_add(&sum, &sum, &product);
    else hy_bigint_sub(&sum, &sum, &product);
    *expr = hy_strbuf_take(&text);
    *value = hy_bigint_to_string(&sum);
    hy_bigint_free(&sum);
    hy_bigint_free(&product);
    hy_bigint_free(&x);
}

static int arith_open(hy_task *t) {
    const char *ops = hy_params_str(&t->params, "ops");
    if (!*ops || strspn(ops, "+-*") != strlen(ops))
        return hy_fail("task arithmetic: parameter 'ops': \"%s\" must be a non-empty subset of \"+-*\"", ops);
    const char *style = hy_params_str(&t->params, "style");
    if (strcmp(style, "sentence") && strcmp(style, "terse"))
        return hy_fail("task arithmetic: parameter 'style': \"%s\" must be sentence or terse", style);
    return 0;
}

static int arith_sample(const hy_task *t, long index, hy_task_sample *s) {
    hy_rng r;
    hy_task_rng(&r, t->seed, index);
    char *expr, *value;
    hy_arith_make(&r, (int)hy_params_int(&t->params, "digits"), (int)hy_params_int(&t->params, "terms"),
                  hy_params_str(&t->params, "ops"), &expr, &value);
    hy_strbuf prompt;
    hy_strbuf_init(&prompt);
    if (!strcmp(hy_params_str(&t->params, "style"), "terse")) {
        for (const char *c = expr; *c; c++)
            if (*c != ' ') hy_strbuf_addn(&prompt, c, 1);
        hy_strbuf_addn(&prompt, "=", 1);
    } else {
        hy_strbuf_addf(&prompt, "Compute %s exactly. Put the final answer in \\boxed{}.", expr);
    }
    json_t *extra = json_pack("{s:s}", "expression", expr);
    free(expr);
    hy_task_sample_fill(t, index, s, hy_strbuf_take(&prompt), value, "math", extra);
    return 0;
}

const hy_task_kind hy_task_arithmetic = {
    .name = "arithmetic",
    .help = "multi-digit integer arithmetic (+ - * with precedence), exact answers",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .open = arith_open,
    .sample = arith_sample,
};
