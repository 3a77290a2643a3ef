// Final answers in free text: extraction, normalisation and comparison (math and short answers).
//
// Extraction looks for the most explicit marker first, because a reply usually mentions several
// numbers and only the one the model commits to counts:
//   1. the last \boxed{...} (or \fbox{...}), braces nested to any depth; \{ and \} do not count
//   2. the last <answer>...</answer>
//   3. the last "#### x" (GSM8K), to the end of its line
//   4. the last "answer is x" / "answer: x" (any case), to the end of its sentence or line
//   5. a fallback chosen by the caller: the last number, the last word, or the last non-blank line
//
// Normalisation makes equal answers equal strings. It strips $...$, \(...\), \[...\], $ signs,
// \left/\right, thin spaces (\! \, \; \:), \displaystyle, degree signs and percent signs (so "50%"
// == "50", as in GSM8K), unwraps \text{}, \textbf{}, \mathrm{}, \mbox{}, reads \dfrac and \tfrac as
// \frac, takes the right side of "x = 5", and drops one sentence-final period. Then, if what is left
// is a number, it is written canonically:
//   integer    "1,234" / "+01234" / "1234.000" → "1234"; "-0" → "0"; unicode minus − → "-"
//   decimal    "2.50" → "2.5", ".5" → "0.5"
//   fraction   "6/8", "\frac{6}{8}", "\frac68", "-\frac{3}{4}" → reduced "3/4" (integer when the
//              denominator becomes 1); a zero denominator is not a number
//   with units "18 apples", "5 \text{cm}" → the number (a number followed by words only)
// Otherwise all whitespace is removed and the string is compared as is (LaTeX ignores spaces).
//
// Comparison: two integers must be equal digit for digit (no tolerance, so 30-digit answers are
// exact); other numbers are equal when their canonical forms match or |a − b| ≤ rel_tol·max(|a|,|b|)
// (so 0.5 == 1/2, and 0.3333333 == 1/3 at rel_tol 1e-6, but 0.333 ≠ 1/3); a number never equals a
// non-number; two non-numbers must match as normalised strings.
#ifndef HY_EVALS_ANSWER_MATH_H
#define HY_EVALS_ANSWER_MATH_H

#include <stddef.h>

typedef enum {
    HY_ANSWER_NONE,
    HY_ANSWER_BOXED,
    HY_ANSWER_TAG,
    HY_ANSWER_HASHES,
    HY_ANSWER_PHRASE,
    HY_ANSWER_LAST_NUMBER,
    HY_ANSWER_LAST_WORD,
    HY_ANSWER_LAST_LINE,
} hy_answer_source;

typedef enum { HY_FALLBACK_NONE, HY_FALLBACK_NUMBER, HY_FALLBACK_WORD, HY_FALLBACK_LINE } hy_answer_fallback;

// The final answer in text (new string, trimmed; caller frees), or NULL when there is none. *src
// (may be NULL) says which rule found it.
char *hy_answer_extract(const char *text, hy_answer_fallback fallback, hy_answer_source *src);
const char *hy_answer_source_name(hy_answer_source src);

// Whether text holds an explicit marker (rules 1-4): a reference with one is itself extracted.
int hy_answer_has_marker(const char *text);

// The canonical form described above (new string; caller frees).
char *hy_answer_normalize(const char *answer);

// 1 if the two answers (already extracted) are equal under the rules above, else 0.
int hy_answer_equal(const char *a, const char *b, double rel_tol);

// Parses a normalised answer as a number: 1 with *value (and *is_integer), 0 if not a number.
int hy_answer_number(const char *normalized, double *value, int *is_integer);

#endif
