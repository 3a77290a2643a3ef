// Verifier registry: named checkers that turn (completion, reference) into a reward in [0, 1].
//
// Every way of scoring a completion is reachable by name, so a task, a JSONL dataset line
// ("verifier": "math"), an environment and, later, the reward server answering a
// proto_reward_request {verifier, completion_text, reference} all call the same function:
//   math      final answer (\boxed, <answer>, ####, "answer is", else the last number) compared to
//             the reference under answer_math.h's normalisation; exact for integers, rel_tol for
//             other numbers. "gsm8k" is the same verifier under open-instruct's dataset name.
//   exact     final answer (markers, else the last word, quotes and punctuation stripped) equal to
//             the reference byte for byte (keys, names, codes).
//   sequence  final answer (markers, else the last line) read as a list of items split on
//             anything that is not a letter or digit, equal to the reference's list ignoring case
//             ("C, A, B" == "[c a b]").
//   code      the program in the completion passes the reference tests in the sandbox
//             (verify_code.h).
// A reference that itself holds a marker (a GSM8K solution ending in "#### 72", a MATH solution
// with \boxed{}) is reduced to its final answer first.
//
// 0 means scored: v->reward and v->reason are set (a wrong or missing answer is a score of 0, not
// an error). −1 means the completion could not be scored (unknown verifier, malformed reference,
// sandbox unavailable): the reward server's "error" field; message in hy_last_error().
#ifndef HY_EVALS_VERIFIER_H
#define HY_EVALS_VERIFIER_H

#include "evals/sandbox.h"

typedef struct {
    double reward;  // in [0, 1]
    char reason[256];
} hy_verdict;

typedef struct {
    double math_rel_tol;     // relative tolerance for non-integer numbers (default 1e-6)
    hy_sandbox_limits code;  // limits for "code" (default hy_sandbox_limits_default())
} hy_verify_options;

hy_verify_options hy_verify_options_default(void);

typedef int (*hy_verifier_fn)(const char *completion, const char *reference, const hy_verify_options *opt,
                              hy_verdict *v);

typedef struct {
    const char *name;
    hy_verifier_fn fn;
    const char *help;
} hy_verifier;

// NULL with a message listing the known names when there is no such verifier.
const hy_verifier *hy_verifier_find(const char *name);
int hy_verifier_count(void);
const hy_verifier *hy_verifier_at(int i);

// Scores completion against reference with the named verifier; opt NULL = defaults.
int hy_verify(const char *verifier, const char *completion, const char *reference, const hy_verify_options *opt,
              hy_verdict *v);

#endif
