// The permutation task: state tracking by composing permutations.
//
// A row of n positions holds the items A, B, C, ... in order. `steps` operations follow, each a
// swap of two positions or (kind=perm) a rearrangement in one-line notation [p1 ... pn], meaning
// the new item at position i is the one that was at position p_i; kind=mixed draws either with
// equal odds. The answer is the final row. Composing permutations is the textbook state-tracking
// problem (S5 word problems): the answer depends on every step in order, which a fixed-size
// recurrent state can carry and a bag of steps cannot. Rearrangements are never the identity, so
// every step moves something.
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"
#include "evals/task_impl.h"

enum { MAX_ITEMS = 26 };

static const hy_param_spec params[] = {
    {"n", HY_PARAM_INT, 5, 2, MAX_ITEMS, NULL, "items in the row (A, B, C, ...)"},
    {"steps", HY_PARAM_INT, 5, 1, 500, NULL, "operations applied in order"},
    {"kind", HY_PARAM_STR, 0, 0, 0, "swap", "operations: swap, perm (one-line rearrangements) or mixed"},
};

static int perm_open(hy_task *t) {
    const char *kind = hy_params_str(&t->params, "kind");
    if (strcmp(kind, "swap") && strcmp(kind, "perm") && strcmp(kind, "mixed"))
        return hy_fail("task permutation: parameter 'kind': \"%s\" is not one of swap, perm, mixed", kind);
    return 0;
}

static int perm_sample(const hy_task *t, long index, hy_task_sample *s) {
    hy_rng r;
    hy_task_rng(&r, t->seed, index);
    const int n = (int)hy_params_int(&t->params, "n"), steps = (int)hy_params_int(&t->params, "steps");
    const char *kind = hy_params_str(&t->params, "kind");
    char row[MAX_ITEMS], next[MAX_ITEMS];
    for (int i = 0; i < n; i++) row[i] = (char)('A' + i);

    hy_strbuf prompt;
    hy_strbuf_init(&prompt);
    hy_strbuf_addf(&prompt, "A row of %d positions, numbered 1 to %d from left to right, holds the items", n, n);
    for (int i = 0; i < n; i++) hy_strbuf_addf(&prompt, " %c", row[i]);
    hy_strbuf_add(&prompt, " in that order. Apply these operations in order:\n");
    for (int k = 0; k < steps; k++) {
        const int swap = !strcmp(kind, "swap") || (!strcmp(kind, "mixed") && hy_task_uniform(&r, 2) == 0);
        if (swap) {
            const int i = (int)hy_task_uniform(&r, (uint64_t)n);
            const int j = (i + 1 + (int)hy_task_uniform(&r, (uint64_t)n - 1)) % n;  // j != i
            const int a = i < j ? i : j, b = i < j ? j : i;
            hy_strbuf_addf(&prompt, "%d. Swap the items at positions %d and %d.\n", k + 1, a + 1, b + 1);
            const char tmp = row[a];
            row[a] = row[b];
            row[b] = tmp;
            continue;
        }
        int p[MAX_ITEMS], identity = 1;
        while (identity) {  // Fisher-Yates, redrawn in the rare case it moves nothing
            for (int i = 0; i < n; i++) p[i] = i;
            for (int i = n - 1; i > 0; i--) {
                const int j = (int)hy_task_uniform(&r, (uint64_t)i + 1);
                const int tmp = p[i];
                p[i] = p[j];
                p[j] = tmp;
            }
            identity = 1;
            for (int i = 0; i < n; i++) identity &= p[i] == i;
        }
        hy_strbuf_addf(&prompt, "%d. Rearrange by [", k + 1);
        for (int i = 0; i < n; i++) hy_strbuf_addf(&prompt, "%s%d", i ? " " : "", p[i] + 1);
        hy_strbuf_add(&prompt, "]: the new item at position i is the one that was at position p_i.\n");
        for (int i = 0; i < n; i++) next[i] = row[p[i]];
        memcpy(row, next, (size_t)n);
    }
    hy_strbuf_add(&prompt, "Which items are in the row at the end, from left to right? Put the final answer, "
                           "the letters separated by spaces, in \\boxed{}.");
    hy_strbuf answer;
    hy_strbuf_init(&answer);
    for (int i = 0; i < n; i++) hy_strbuf_addf(&answer, "%s%c", i ? " " : "", row[i]);
    hy_task_sample_fill(t, index, s, hy_strbuf_take(&prompt), hy_strbuf_take(&answer), "sequence", NULL);
    return 0;
}

const hy_task_kind hy_task_permutation = {
    .name = "permutation",
    .help = "state tracking: the final order of a row of items after swaps / rearrangements",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .open = perm_open,
    .sample = perm_sample,
};
