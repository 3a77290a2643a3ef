// Code verifier: runs a candidate Python program against tests in the sandbox (sandbox.h).
//
// Two kinds of reference, as RL code datasets ship them:
//   test code   Python statements (asserts, a check() call, unittest.main()) run after the program
//               in one file, main.py = program + "\n\n" + tests (HumanEval/MBPP style). Passing =
//               exit status 0.
//   stdin/out   {"inputs": ["1 2\n", ...], "outputs": ["3\n", ...]} (the APPS/TACO "input_output"
//               shape): the program runs once per case with the input on stdin; its stdout must
//               equal the output after trailing whitespace is dropped from every line and trailing
//               blank lines are dropped. Cases run in order and stop at the first failure.
// The reward is 1 when everything passes, else 0; a partial score would reward programs that
// special-case the visible tests. The program comes from the completion's last fenced block tagged
// python/py/python3 or untagged (an unclosed final fence runs to the end), else the whole text.
//
// Outcomes are told apart from the exit status and stderr so a reason says what went wrong:
// a wall-clock kill, SIGKILL at the CPU limit, MemoryError (the address-space limit), fork/thread
// failures with EAGAIN (the process limit), "File too large"/SIGXFSZ (the file-size limit), another
// signal (a crash), else a failing test with the last line of its traceback.
#ifndef HY_EVALS_VERIFY_CODE_H
#define HY_EVALS_VERIFY_CODE_H

#include "evals/sandbox.h"

typedef enum {
    HY_CODE_PASSED,
    HY_CODE_FAILED,         // a test failed, wrong output, or an exception
    HY_CODE_WALL_TIMEOUT,
    HY_CODE_CPU_LIMIT,
    HY_CODE_MEMORY_LIMIT,
    HY_CODE_PROCESS_LIMIT,
    HY_CODE_FILE_LIMIT,
    HY_CODE_CRASHED,        // killed by another signal
} hy_code_outcome;

typedef struct {
    hy_code_outcome outcome;
    double reward;              // 1 when outcome is HY_CODE_PASSED, else 0
    int cases_passed, cases_total;  // stdin/stdout cases; test code counts as one case
    char reason[256];
    // isolation that applied, from the last run (see hy_sandbox_result)
    int net_namespace, net_guard, pid_namespace, user_namespace;
    double wall_s;              // all runs together
} hy_code_report;

const char *hy_code_outcome_name(hy_code_outcome o);

// The program in a completion (new string; caller frees).
char *hy_code_extract(const char *completion);

// Runs program followed by tests. 0 with *rep however the program fared; −1 when the sandbox could
// not run it (message set).
int hy_code_run_tests(const char *program, const char *tests, const hy_sandbox_limits *lim, hy_code_report *rep);

// Runs program once per case (n ≥ 1) and compares stdout. 0 / −1 as above.
int hy_code_run_io(const char *program, const char *const *inputs, const char *const *outputs, int n,
                   const hy_sandbox_limits *lim, hy_code_report *rep);

// The verifier: extracts the program from completion and runs it against reference (test code, or
// the JSON stdin/stdout object). −1 also for a malformed JSON reference, naming the field.
int hy_code_verify(const char *completion, const char *reference, const hy_sandbox_limits *lim, hy_code_report *rep);

#endif
