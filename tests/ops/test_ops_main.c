// The op test driver: `test_ops [test|grad|all] [NAME-SUBSTRING]`. Runs every registered op's
// checks (see op_test.h) and prints one line per op and mode; exits non-zero on any failure.
#include <stdio.h>
#include <string.h>

#include "op_test.h"

static int run_table(const op_test_entry *table, int do_test, int do_grad, const char *filter, int *n_run) {
    int failures = 0;
    for (const op_test_entry *e = table; e->name; e++) {
        if (filter && !strstr(e->name, filter)) continue;
        if (do_test && e->test) {
            int rc = e->test();
            printf("%-28s test  %s\n", e->name, rc ? "FAIL" : "ok");
            failures += rc != 0;
            (*n_run)++;
        }
        if (do_grad && e->grad) {
            int rc = e->grad();
            printf("%-28s grad  %s\n", e->name, rc ? "FAIL" : "ok");
            failures += rc != 0;
            (*n_run)++;
        }
    }
    return failures;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    const char *filter = argc > 2 ? argv[2] : NULL;
    int do_test = !strcmp(mode, "test") || !strcmp(mode, "all");
    int do_grad = !strcmp(mode, "grad") || !strcmp(mode, "all");
    if (!do_test && !do_grad) {
        fprintf(stderr, "usage: test_ops [test|grad|all] [name-filter]\n");
        return 2;
    }
    int n_run = 0;
    int failures = run_table(dense_op_tests, do_test, do_grad, filter, &n_run);
    failures += run_table(gdn_op_tests, do_test, do_grad, filter, &n_run);
    printf("%d checks, %d failed\n", n_run, failures);
    if (n_run == 0) {
        fprintf(stderr, "no op matched '%s'\n", filter ? filter : "");
        return 1;
    }
    return failures != 0;
}
