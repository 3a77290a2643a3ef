// Recursive-descent arithmetic evaluator (see calc_expr.h).
#include "evals/calc_expr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LEN = 1000, MAX_DEPTH = 100 };

typedef struct {
    const char *s, *p;
    int depth;
    char *err;
    size_t n;
    int failed;
} parser;

static int fail(parser *ps, const char *what) {
    if (!ps->failed) {
        if (*ps->p) snprintf(ps->err, ps->n, "%s at position %d", what, (int)(ps->p - ps->s) + 1);
        else snprintf(ps->err, ps->n, "%s at the end", what);
    }
    ps->failed = 1;
    return -1;
}

static void skip_space(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

// Consumes one of the given operator spellings; returns its index in ops or −1.
static int take_op(parser *ps, const char *const *ops, int n_ops) {
    skip_space(ps);
    for (int i = 0; i < n_ops; i++) {
        const size_t l = strlen(ops[i]);
        if (!strncmp(ps->p, ops[i], l)) {
            ps->p += l;
            return i;
        }
    }
    return -1;
}

static const char *const ADD_OPS[] = {"+", "-", "\xE2\x88\x92"};  // + - −
static const char *const MUL_OPS[] = {"*", "/", "\xC3\x97", "\xC3\xB7"};  // * / × ÷

static int parse_expr(parser *ps, double *v);

static int parse_number(parser *ps, double *v) {
    const char *start = ps->p;
    size_t digits = 0;
    while (*ps->p >= '0' && *ps->p <= '9') ps->p++, digits++;
    if (*ps->p == '.') {
        ps->p++;
        while (*ps->p >= '0' && *ps->p <= '9') ps->p++, digits++;
    }
    if (!digits) {
        ps->p = start;
        return fail(ps, *start ? "expected a number or '('" : "expected a number");
    }
    char buf[MAX_LEN + 1];
    memcpy(buf, start, (size_t)(ps->p - start));
    buf[ps->p - start] = '\0';
    *v = strtod(buf, NULL);
    return 0;
}

static int parse_unary(parser *ps, double *v) {
    if (++ps->depth > MAX_DEPTH) return fail(ps, "nested too deeply");
    int rc;
    const int op = take_op(ps, ADD_OPS, 3);
    if (op >= 0) {
        rc = parse_unary(ps, v);
        if (op > 0) *v = -*v;
    } else if (*ps->p == '(') {
        ps->p++;
        rc = parse_expr(ps, v);
        skip_space(ps);
        if (!rc && *ps->p != ')') rc = fail(ps, "missing ')'");
        if (!rc) ps->p++;
    } else {
        rc = parse_number(ps, v);
    }
    ps->depth--;
    return rc;
}

static int parse_term(parser *ps, double *v) {
    if (parse_unary(ps, v)) return -1;
    for (int op; (op = take_op(ps, MUL_OPS, 4)) >= 0;) {
        const char *at = ps->p;
        double r;
        if (parse_unary(ps, &r)) return -1;
        if (op == 1 || op == 3) {
            if (r == 0) {
                ps->p = at;
                return fail(ps, "division by zero");
            }
            *v /= r;
        } else {
            *v *= r;
        }
    }
    return 0;
}

static int parse_expr(parser *ps, double *v) {
    if (parse_term(ps, v)) return -1;
    for (int op; (op = take_op(ps, ADD_OPS, 3)) >= 0;) {
        double r;
        if (parse_term(ps, &r)) return -1;
        *v = op == 0 ? *v + r : *v - r;
    }
    return 0;
}

int hy_calc_eval(const char *expr, double *value, char *err, size_t n) {
    *value = 0;
    if (n) err[0] = '\0';
    if (strlen(expr) > MAX_LEN) {
        snprintf(err, n, "expression longer than %d bytes", MAX_LEN);
        return -1;
    }
    parser ps = {expr, expr, 0, err, n, 0};
    skip_space(&ps);
    if (!*ps.p) {
        snprintf(err, n, "empty expression");
        return -1;
    }
    if (parse_expr(&ps, value)) return -1;
    skip_space(&ps);
    if (*ps.p) return fail(&ps, *ps.p == ')' ? "unmatched ')'" : "unexpected character");
    if (!isfinite(*value)) {
        snprintf(err, n, "result is too large");
        return -1;
    }
    return 0;
}

void hy_calc_format(double v, char *out, size_t n) {
    if (v == 0) v = 0;  // no "-0"
    if (v == floor(v) && fabs(v) < 1e15) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%.12g", v);
}
