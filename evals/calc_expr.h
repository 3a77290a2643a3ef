// A small, safe arithmetic evaluator for the calculator tool: text from the model in, a number or
// an error message out, and nothing else can happen (no names, no calls, no eval).
//
// Grammar (recursive descent; precedence climbs from + − to × ÷ to unary signs):
//   expr    := term   (('+' | '-' | '−') term)*
//   term    := unary  (('*' | '/' | '×' | '÷') unary)*
//   unary   := ('+' | '-' | '−') unary | primary
//   primary := number | '(' expr ')'
//   number  := digits ['.' digits] | '.' digits           (no exponents, no thousands commas)
// Spaces anywhere between tokens. Evaluation is in double: integers are exact up to 2^53, which
// is why the calculator environment keeps its problems' values below 10^15. Errors: division by
// zero, a non-finite result, an unexpected or missing token (with its byte position), input over
// 1000 bytes or nested deeper than 100 levels (bounded recursion for untrusted text).
#ifndef HY_EVALS_CALC_EXPR_H
#define HY_EVALS_CALC_EXPR_H

#include <stddef.h>

// 0 with *value, or −1 with a short message in err[0..n) (bad model input is a result for the
// model to read, not a system error, so hy_last_error() is left alone).
int hy_calc_eval(const char *expr, double *value, char *err, size_t n);

// As a calculator shows it: integers in full (below 10^15), else up to 12 significant digits.
void hy_calc_format(double v, char *out, size_t n);

#endif
