// The check harness of the C tests, header-only.
//
//   CHECK(cond, fmt, ...)   counts a check and, when cond is false, a failure, printing
//                           "  FAIL file:line: message" on stderr
//   check_summary(name)     prints "<name>: N checks, M failures" and returns the exit status (0, 1)
//
// A macro so that the failure names the line of the check. stdout is flushed before a failure is
// printed: a test's progress lines and its failures then stay in order when ctest merges the two.
// The counters are plain statics: each test is one translation unit and checks from one thread.
// A test that needs more (a limit on what it prints, a count per section) reads check_count and
// check_failures and builds that on CHECK, locally.
#ifndef HY_TESTS_CHECK_H
#define HY_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int check_count, check_failures;

__attribute__((format(printf, 3, 4))) static inline void check_fail(const char *file, int line, const char *fmt, ...) {
    check_failures++;
    fflush(stdout);
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(cond, ...)                                          \
    do {                                                          \
        check_count++;                                            \
        if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

static inline int check_summary(const char *test_name) {
    printf("%s: %d checks, %d failures\n", test_name, check_count, check_failures);
    return check_failures != 0;
}

#endif
