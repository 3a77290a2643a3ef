// Tests of evals/: verifiers, tasks, the code sandbox and environments (host only, no GPU).
//   bigint      add/sub/mul against __int128 on random operands
//   params      key=value parsing, defaults, ranges and the messages for bad keys
//   answers     final-answer extraction, normalisation and comparison on a table of tricky cases
//   tasks       every generator: deterministic per (seed, index), golden samples, the reference is
//               accepted and a wrong answer rejected, and the answer re-derived from the prompt
//               text by an independent reading (so prompt and answer cannot drift apart)
//   jsonl       dataset lines (aliases, numbers as answers) and bad lines named by file:line, field
//   verifiers   the registry by name, GSM8K/MATH references, unknown names
//   calc        the calculator's expression evaluator: precedence, unicode operators, errors
//   envs        scripted calculator and kv_lookup episodes, max_calls, misuse
//   code        the sandbox: pass, fail, stdin/stdout cases, CPU and wall limits, memory, file
//               size, fork bombs (no process survives the run), network; with and without
//               namespaces. Skipped with a note when python3 is missing.
//
// Usage: test_evals SOURCE_DIR [section]
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/hy_error.h"
#include "common/rng.h"
#include "evals/answer_math.h"
#include "evals/bigint.h"
#include "evals/calc_expr.h"
#include "evals/env.h"
#include "evals/params.h"
#include "evals/sandbox.h"
#include "evals/task.h"
#include "evals/verifier.h"
#include "evals/verify_code.h"

// Answers recorded from the generators (seed 1234, index 7); see check_golden.
#define GOLDEN_ARITH "-105365840821"
#define GOLDEN_PERM "C B A D F E"
#define GOLDEN_VARS "10"
#define GOLDEN_KV "0tpokz5z"

static int failures, checks;
static char tmp_root[256];

#define CHECK(cond, ...)                             \
    do {                                             \
        checks++;                                    \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

// rc must be −1 and the last error must contain every needle (NULL-terminated).
static void check_error(const char *what, int rc, ...) {
    CHECK(rc != 0, "%s: accepted", what);
    va_list ap;
    va_start(ap, rc);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
        CHECK(strstr(hy_last_error(), n), "%s: message lacks '%s': %s", what, n, hy_last_error());
    va_end(ap);
    if (rc) printf("  ok   %s: %s\n", what, hy_last_error());
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---------------------------------------------------------------------------------------------

static void i128_str(__int128 v, char *out) {
    char tmp[64];
    int n = 0;
    const int neg = v < 0;
    unsigned __int128 m = neg ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    int w = 0;
    if (neg) out[w++] = '-';
    while (n) out[w++] = tmp[--n];
    out[w] = '\0';
}

static void test_bigint(void) {
    printf("bigint\n");
    hy_rng r;
    hy_rng_init(&r, 11);
    for (int it = 0; it < 2000; it++) {
        // magnitudes from 0 to 2^62, both signs, so sums and products cover carries and sign changes
        const int shift = (int)(hy_rng_next(&r) % 63);
        const int64_t a = (int64_t)(hy_rng_next(&r) >> (1 + shift)) * (hy_rng_next(&r) & 1 ? -1 : 1);
        const int64_t b = (int64_t)(hy_rng_next(&r) >> (1 + (it % 63))) * (hy_rng_next(&r) & 1 ? -1 : 1);
        hy_bigint x, y, z;
        hy_bigint_init(&x);
        hy_bigint_init(&y);
        hy_bigint_init(&z);
        hy_bigint_set_i64(&x, a);
        hy_bigint_set_i64(&y, b);
        const __int128 want[3] = {(__int128)a + b, (__int128)a - b, (__int128)a * b};
        for (int op = 0; op < 3; op++) {
            if (op == 0) hy_bigint_add(&z, &x, &y);
            if (op == 1) hy_bigint_sub(&z, &x, &y);
            if (op == 2) hy_bigint_mul(&z, &x, &y);
            char w[64];
            i128_str(want[op], w);
            char *got = hy_bigint_to_string(&z);
            CHECK(!strcmp(got, w), "bigint op %d of %lld, %lld: got %s want %s", op, (long long)a, (long long)b, got,
                  w);
            free(got);
        }
        hy_bigint_mul(&x, &x, &x);  // aliasing: r == a == b
        char w[64];
        i128_str((__int128)a * a, w);
        char *got = hy_bigint_to_string(&x);
        CHECK(!strcmp(got, w), "bigint square in place of %lld: %s", (long long)a, got);
        free(got);
        hy_bigint_free(&x);
        hy_bigint_free(&y);
        hy_bigint_free(&z);
    }
}

static void test_params(void) {
    printf("params\n");
    static const hy_param_spec spec[] = {
        {"digits", HY_PARAM_INT, 3, 1, 30, NULL, "digits"},
        {"ops", HY_PARAM_STR, 0, 0, 0, "+-*", "ops"},
    };
    hy_params p;
    CHECK(hy_params_parse(&p, spec, 2, NULL, "task t") == 0, "defaults: %s", hy_last_error());
    CHECK(hy_params_int(&p, "digits") == 3 && !strcmp(hy_params_str(&p, "ops"), "+-*"), "default values");
    hy_params_free(&p);
    CHECK(hy_params_parse(&p, spec, 2, " digits = 12 , ops=+ ,", "task t") == 0, "spaces: %s", hy_last_error());
    CHECK(hy_params_int(&p, "digits") == 12 && !strcmp(hy_params_str(&p, "ops"), "+"), "parsed values");
    json_t *j = hy_params_to_json(&p);
    CHECK(json_integer_value(json_object_get(j, "digits")) == 12, "params as JSON");
    json_decref(j);
    hy_params_free(&p);
    check_error("unknown key", hy_params_parse(&p, spec, 2, "digit=3", "task t"), "task t", "'digit'",
                "known: digits, ops", NULL);
    check_error("out of range", hy_params_parse(&p, spec, 2, "digits=31", "task t"), "'digits'", "31",
                "[1, 30]", NULL);
    check_error("not an integer", hy_params_parse(&p, spec, 2, "digits=3x", "task t"), "'digits'", "3x", NULL);
    check_error("twice", hy_params_parse(&p, spec, 2, "digits=3,digits=4", "task t"), "given twice", NULL);
    check_error("no '='", hy_params_parse(&p, spec, 2, "digits", "task t"), "key=value", NULL);
}

// ---------------------------------------------------------------------------------------------

static void test_answers(void) {
    printf("answers\n");
    static const struct {
        const char *text;
        hy_answer_fallback fb;
        const char *want;  // NULL = none
        hy_answer_source src;
    } ex[] = {
        {"so \\boxed{\\frac{1}{2}} and then \\boxed{\\frac{3}{\\sqrt{4}}}.", HY_FALLBACK_NONE, "\\frac{3}{\\sqrt{4}}",
         HY_ANSWER_BOXED},
        {"\\boxed{\\{1, 2\\}}", HY_FALLBACK_NONE, "\\{1, 2\\}", HY_ANSWER_BOXED},
        {"broken \\boxed{12 then \\boxed{7}", HY_FALLBACK_NONE, "7", HY_ANSWER_BOXED},
        {"$\\boxed 5$", HY_FALLBACK_NONE, "5", HY_ANSWER_BOXED},
        {"\\fbox{x+1}", HY_FALLBACK_NONE, "x+1", HY_ANSWER_BOXED},
        {"#### 72 and \\boxed{9}", HY_FALLBACK_NONE, "9", HY_ANSWER_BOXED},
        {"Natalia sold 48/2 = 24 clips.\n#### 72", HY_FALLBACK_NUMBER, "72", HY_ANSWER_HASHES},
        {"first #### 1\nthen ##### 2\n", HY_FALLBACK_NONE, "2", HY_ANSWER_HASHES},
        {"<answer> 42 </answer> wait <answer>43</answer>", HY_FALLBACK_NONE, "43", HY_ANSWER_TAG},
        {"The answer is 3.5. Done", HY_FALLBACK_NUMBER, "3.5", HY_ANSWER_PHRASE},
        {"Final Answer: $-7$", HY_FALLBACK_NUMBER, "$-7$", HY_ANSWER_PHRASE},
        {"So the answer is 18 apples.\nThanks 99", HY_FALLBACK_NUMBER, "18 apples", HY_ANSWER_PHRASE},
        {"we get 5-3 = 2, then 1,234,567.", HY_FALLBACK_NUMBER, "1,234,567", HY_ANSWER_LAST_NUMBER},
        {"x = -12 and y = 3/4", HY_FALLBACK_NUMBER, "3/4", HY_ANSWER_LAST_NUMBER},
        {"temperature \xE2\x88\x92" "4 degrees", HY_FALLBACK_NUMBER, "\xE2\x88\x92" "4", HY_ANSWER_LAST_NUMBER},
        {"5-3", HY_FALLBACK_NUMBER, "3", HY_ANSWER_LAST_NUMBER},
        {"no digits here", HY_FALLBACK_NUMBER, NULL, HY_ANSWER_NONE},
        {"The value is \"7f3a9c\".", HY_FALLBACK_WORD, "7f3a9c", HY_ANSWER_LAST_WORD},
        {"order:\nC A B\n\n", HY_FALLBACK_LINE, "C A B", HY_ANSWER_LAST_LINE},
        {"", HY_FALLBACK_WORD, NULL, HY_ANSWER_NONE},
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        hy_answer_source src;
        char *got = hy_answer_extract(ex[i].text, ex[i].fb, &src);
        CHECK((!got && !ex[i].want) || (got && ex[i].want && !strcmp(got, ex[i].want)),
              "extract %zu (%s): got '%s', want '%s'", i, ex[i].text, got ? got : "(none)",
              ex[i].want ? ex[i].want : "(none)");
        CHECK(src == ex[i].src, "extract %zu: source %s, want %s", i, hy_answer_source_name(src),
              hy_answer_source_name(ex[i].src));
        free(got);
    }

    static const struct {
        const char *in, *want;
    } norm[] = {
        {"1,234", "1234"},          {"+01234", "1234"},       {"1234.000", "1234"},      {"-0", "0"},
        {"2.50", "2.5"},            {".5", "0.5"},            {"6/8", "3/4"},            {"\\frac{6}{8}", "3/4"},
        {"\\dfrac68", "3/4"},       {"-\\frac{3}{4}", "-3/4"}, {"\\frac{-3}{4}", "-3/4"}, {"10/5", "2"},
        {"$\\$5.00$", "5"},         {"50\\%", "50"},          {"x = 5", "5"},            {"18 apples", "18"},
        {"5 \\text{ cm}", "5"},     {"90^\\circ", "90"},      {"\xE2\x88\x92" "4", "-4"}, {"42.", "42"},
        {"\\left( 1, 2 \\right)", "(1,2)"}, {"1/0", "1/0"},   {"1,2", "1,2"},            {"x^2", "x^2"},
        {"\\text{(B)}", "(B)"},     {"\\textit{b}", "\\textit{b}"}, {"\\(3\\)", "3"},  {"007", "7"},
    };
    for (size_t i = 0; i < sizeof norm / sizeof *norm; i++) {
        char *got = hy_answer_normalize(norm[i].in);
        CHECK(!strcmp(got, norm[i].want), "normalize '%s': got '%s', want '%s'", norm[i].in, got, norm[i].want);
        free(got);
    }

    static const struct {
        const char *a, *b;
        int eq;
    } cmp[] = {
        {"0.5", "1/2", 1},
        {"\\frac{1}{3}", "0.3333333", 1},  // within rel 1e-6
        {"\\frac{1}{3}", "0.333", 0},
        {"123456789012345678901234567890", "123456789012345678901234567891", 0},  // integers: exact
        {"123456789012345678901234567890", "123,456,789,012,345,678,901,234,567,890", 1},
        {"3", "3.0", 1},
        {"-4", "\xE2\x88\x92" "4", 1},
        {"72", "$72", 1},
        {"5", "x", 0},
        {"x + 1", "x+1", 1},
        {"\\sqrt{2}", "\\sqrt{3}", 0},
        {"0", "-0.0", 1},
    };
    for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++)
        CHECK(hy_answer_equal(cmp[i].a, cmp[i].b, 1e-6) == cmp[i].eq, "equal('%s', '%s') should be %d", cmp[i].a,
              cmp[i].b, cmp[i].eq);
    double v;
    int is_int;
    CHECK(hy_answer_number("-3/4", &v, &is_int) && v == -0.75 && !is_int, "number -3/4");
    CHECK(!hy_answer_number("18 apples", &v, &is_int), "units are not a bare number");
}

// ---------------------------------------------------------------------------------------------

// Evaluates "a op b op c" (+ - * with precedence) in __int128: the arithmetic task's oracle.
static __int128 eval_i128(const char *expr) {
    __int128 sum = 0, product = 0;
    int sign = 1;
    char op = '+';
    for (const char *p = expr; *p;) {
        while (*p == ' ') p++;
        __int128 x = 0;
        while (*p >= '0' && *p <= '9') x = x * 10 + (*p++ - '0');
        if (op == '*') product *= x;
        else {
            sum += sign * product;
            sign = op == '-' ? -1 : 1;
            product = x;
        }
        while (*p == ' ') p++;
        if (*p) op = *p++;
    }
    return sum + sign * product;
}

// Replays the permutation prompt's operations (read back from the prompt text).
static void replay_permutation(const char *prompt, int n, char *row) {
    for (int i = 0; i < n; i++) row[i] = (char)('A' + i);
    row[n] = '\0';
    for (const char *p = prompt; (p = strchr(p, '\n'));) {
        p++;
        int k, a, b;
        if (sscanf(p, "%d. Swap the items at positions %d and %d.", &k, &a, &b) == 3) {
            const char t = row[a - 1];
            row[a - 1] = row[b - 1];
            row[b - 1] = t;
        } else if (sscanf(p, "%d. Rearrange by [", &k) == 1) {
            const char *q = strchr(p, '[') + 1;
            char next[27];
            for (int i = 0; i < n; i++) {
                int pi, used;
                sscanf(q, "%d%n", &pi, &used);
                q += used;
                next[i] = row[pi - 1];
            }
            memcpy(row, next, (size_t)n);
        }
    }
}

// Replays the variables prompt's assignments; returns the queried variable's value.
static long long replay_variables(const char *prompt) {
    long long v[26] = {0};
    for (const char *p = prompt; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char x, y, op;
        long long c;
        if (sscanf(p, "%c = %c %c %lld", &x, &y, &op, &c) == 4 && y >= 'a' && y <= 'z')
            v[x - 'a'] = op == '+' ? v[y - 'a'] + c : v[y - 'a'] - c;
        else if (sscanf(p, "%c = %lld", &x, &c) == 2 && x >= 'a' && x <= 'z')
            v[x - 'a'] = c;
        else if (sscanf(p, "%c = %c", &x, &y) == 2 && x >= 'a' && x <= 'z' && y >= 'a' && y <= 'z')
            v[x - 'a'] = v[y - 'a'];
    }
    const char *q = strstr(prompt, "What is the value of ");
    return q ? v[q[21] - 'a'] : -999999;
}

// A wrong answer of the same shape as the right one.
static char *corrupt(const char *verifier, const char *answer) {
    char *w = hy_strdup(answer);
    const size_t n = strlen(w);
    if (!strcmp(verifier, "sequence")) {  // reverse the letters: distinct items, so it differs
        for (size_t i = 0, j = n - 1; i < j; i++, j--) {
            const char t = w[i];
            w[i] = w[j];
            w[j] = t;
        }
    } else {  // change the last character
        w[n - 1] = w[n - 1] == '1' ? '2' : w[n - 1] == 'z' ? 'y' : (char)(w[n - 1] == '9' ? '8' : '1');
    }
    return w;
}

static void check_task(const char *name, const char *params, uint64_t seed, int n) {
    hy_task *t, *t2;
    if (hy_task_new(&t, name, params, seed) || hy_task_new(&t2, name, params, seed)) {
        CHECK(0, "open %s (%s): %s", name, params, hy_last_error());
        return;
    }
    int distinct = 0;
    char *prev = NULL;
    for (int i = 0; i < n; i++) {
        hy_task_sample s, s2;
        CHECK(hy_task_sample_get(t, i, &s) == 0, "%s sample %d: %s", name, i, hy_last_error());
        CHECK(hy_task_sample_get(t2, i, &s2) == 0, "%s sample %d again", name, i);
        CHECK(!strcmp(s.prompt, s2.prompt) && !strcmp(s.answer, s2.answer) && !strcmp(s.id, s2.id),
              "%s sample %d not deterministic", name, i);
        CHECK(s.n_messages == 1 && !strcmp(s.messages[0].role, "user") && !strcmp(s.messages[0].content, s.prompt),
              "%s sample %d: messages", name, i);
        CHECK(json_is_object(s.metadata) && !strcmp(json_string_value(json_object_get(s.metadata, "task")), name),
              "%s sample %d: metadata", name, i);
        distinct += prev && strcmp(prev, s.prompt) != 0;
        free(prev);
        prev = hy_strdup(s.prompt);

        char completion[4096];
        hy_verdict v;
        snprintf(completion, sizeof completion, "Working it out step by step... so \\boxed{%s}", s.answer);
        CHECK(hy_task_check(&s, completion, NULL, &v) == 0 && v.reward == 1, "%s sample %d: reference rejected: %s",
              name, i, v.reason);
        char *wrong = corrupt(s.verifier, s.answer);
        snprintf(completion, sizeof completion, "\\boxed{%s}", wrong);
        CHECK(hy_task_check(&s, completion, NULL, &v) == 0 && v.reward == 0, "%s sample %d: wrong answer %s accepted",
              name, i, wrong);
        free(wrong);
        CHECK(hy_task_check(&s, "I do not know.", NULL, &v) == 0 && v.reward == 0, "%s: no answer accepted", name);

        // the answer, re-derived from the prompt text alone
        if (!strcmp(name, "arithmetic")) {
            char want[64];
            i128_str(eval_i128(json_string_value(json_object_get(s.metadata, "expression"))), want);
            CHECK(!strcmp(want, s.answer), "arithmetic %d: %s = %s, oracle %s", i,
                  json_string_value(json_object_get(s.metadata, "expression")), s.answer, want);
            CHECK(strstr(s.prompt, json_string_value(json_object_get(s.metadata, "expression"))) != NULL,
                  "arithmetic %d: the prompt shows the expression", i);
        } else if (!strcmp(name, "permutation")) {
            const int items = (int)json_integer_value(json_object_get(s.metadata, "n"));
            char row[27], want[64] = "";
            replay_permutation(s.prompt, items, row);
            for (int k = 0; k < items; k++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%c", k ? " " : "", row[k]);
            CHECK(!strcmp(want, s.answer), "permutation %d: replay %s, answer %s", i, want, s.answer);
        } else if (!strcmp(name, "variables")) {
            CHECK(replay_variables(s.prompt) == atoll(s.answer), "variables %d: replay %lld, answer %s", i,
                  replay_variables(s.prompt), s.answer);
        } else if (!strcmp(name, "kv_recall")) {
            const char *key = json_string_value(json_object_get(s.metadata, "key"));
            char line[128];
            snprintf(line, sizeof line, "\n%s: %s\n", key, s.answer);
            const char *hit = strstr(s.prompt, line);
            CHECK(hit != NULL, "kv_recall %d: line '%s: %s' not in the prompt", i, key, s.answer);
            snprintf(line, sizeof line, "\n%s: ", key);
            CHECK(hit && !strstr(hit + 1, line), "kv_recall %d: key %s appears twice", i, key);
        }
        hy_task_sample_free(&s);
        hy_task_sample_free(&s2);
    }
    CHECK(distinct >= n / 2, "%s: only %d of %d consecutive prompts differ", name, distinct, n - 1);
    free(prev);
    hy_task_destroy(t);
    hy_task_destroy(t2);
    printf("  ok   %s (%s) seed %llu: %d samples\n", name, params, (unsigned long long)seed, n);
}

static void check_golden(const char *name, const char *params, long index, const char *want_answer) {
    hy_task *t;
    hy_task_sample s;
    if (hy_task_new(&t, name, params, 1234) || hy_task_sample_get(t, index, &s)) {
        CHECK(0, "golden %s: %s", name, hy_last_error());
        return;
    }
    CHECK(!strcmp(s.answer, want_answer), "golden %s[%ld]: answer '%s', recorded '%s' (a generator changed: "
          "every recorded dataset and eval changes with it)", name, index, s.answer, want_answer);
    hy_task_sample_free(&s);
    hy_task_destroy(t);
}

static void test_tasks(void) {
    printf("tasks\n");
    check_task("arithmetic", NULL, 1, 30);
    check_task("arithmetic", "digits=6,terms=3,ops=*", 2, 30);
    check_task("arithmetic", "digits=1,terms=8,ops=+-", 3, 30);
    check_task("permutation", NULL, 1, 30);
    check_task("permutation", "n=26,steps=40,kind=mixed", 2, 20);
    check_task("permutation", "n=3,steps=3,kind=perm", 3, 10);
    check_task("variables", NULL, 1, 30);
    check_task("variables", "vars=26,steps=300", 2, 10);
    check_task("kv_recall", NULL, 1, 20);
    check_task("kv_recall", "pairs=3000,key_len=20,value_len=4", 2, 3);

    // big operands: exactness beyond __int128, checked by the algebra (a·b)·c == a·(b·c) is not
    // available here, so check the digit count of a 30-digit square
    hy_task *t;
    hy_task_sample s;
    if (!hy_task_new(&t, "arithmetic", "digits=30,terms=2,ops=*", 5) && !hy_task_sample_get(t, 0, &s)) {
        const size_t len = strlen(s.answer);
        CHECK(len == 59 || len == 60, "30-digit product has %zu digits: %s", len, s.answer);
        hy_task_sample_free(&s);
        hy_task_destroy(t);
    }
    // depth places the needle
    if (!hy_task_new(&t, "kv_recall", "pairs=50,depth=0", 5) && !hy_task_sample_get(t, 3, &s)) {
        CHECK(json_integer_value(json_object_get(s.metadata, "position")) == 0, "depth=0 puts the key first");
        hy_task_sample_free(&s);
        hy_task_destroy(t);
    }
    if (!hy_task_new(&t, "kv_recall", "pairs=50,depth=100", 5) && !hy_task_sample_get(t, 3, &s)) {
        CHECK(json_integer_value(json_object_get(s.metadata, "position")) == 49, "depth=100 puts the key last");
        hy_task_sample_free(&s);
        hy_task_destroy(t);
    }
    // the same seed gives the same samples on every platform: recorded answers
    check_golden("arithmetic", "digits=12,terms=3", 7, GOLDEN_ARITH);
    check_golden("permutation", "n=6,steps=8,kind=mixed", 7, GOLDEN_PERM);
    check_golden("variables", "vars=5,steps=12", 7, GOLDEN_VARS);
    check_golden("kv_recall", "pairs=40", 7, GOLDEN_KV);

    check_error("unknown task", hy_task_new(&t, "arithmetics", NULL, 0), "unknown task 'arithmetics'",
                "arithmetic, permutation, variables, kv_recall, jsonl", NULL);
    check_error("bad ops", hy_task_new(&t, "arithmetic", "ops=+/", 0), "task arithmetic", "'ops'", NULL);
    check_error("bad kind", hy_task_new(&t, "permutation", "kind=rotate", 0), "'kind'", "rotate", NULL);
    check_error("digits range", hy_task_new(&t, "arithmetic", "digits=0", 0), "'digits'", "[1, 30]", NULL);
    if (!hy_task_new(&t, "variables", NULL, 0)) {
        check_error("negative index", hy_task_sample_get(t, -1, &s), "index -1", NULL);
        CHECK(hy_task_size(t) == -1, "generators are unbounded");
        hy_task_destroy(t);
    }
}

// ---------------------------------------------------------------------------------------------

static void jsonl_case(const char *name, const char *second_line, const char *params_extra, ...) {
    char path[512], params[600];
    snprintf(path, sizeof path, "%s/%s.jsonl", tmp_root, name);
    char text[2048];
    snprintf(text, sizeof text, "{\"prompt\": \"fine\", \"answer\": \"1\", \"verifier\": \"math\"}\n%s\n", second_line);
    write_text(path, text);
    snprintf(params, sizeof params, "path=%s%s", path, params_extra);
    hy_task *t = NULL;
    const int rc = hy_task_new(&t, "jsonl", params, 0);
    char where[600];
    snprintf(where, sizeof where, "%s:2", path);
    CHECK(strstr(hy_last_error(), where) != NULL || rc == 0, "%s: message lacks '%s': %s", name, where,
          hy_last_error());
    va_list ap;
    va_start(ap, params_extra);
    const char *n1 = va_arg(ap, const char *);
    va_end(ap);
    check_error(name, rc, n1, NULL);
    hy_task_destroy(t);
}

static void test_jsonl(void) {
    printf("jsonl\n");
    char path[512];
    snprintf(path, sizeof path, "%s/good.jsonl", tmp_root);
    write_text(path,
               "{\"prompt\": \"What is 6*7?\", \"answer\": \"42\", \"verifier\": \"math\"}\n"
               "\n"
               "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
               "\"Half of 1?\"}], \"ground_truth\": 0.5, \"dataset\": \"gsm8k\", \"id\": 17, \"metadata\": {\"src\": "
               "\"x\"}}\n"
               "{\"prompt\": \"Name?\", \"answer\": \"Ada\"}\n");
    hy_task *t;
    char params[600];
    snprintf(params, sizeof params, "path=%s,verifier=exact", path);
    if (hy_task_new(&t, "jsonl", params, 0)) {
        CHECK(0, "good jsonl: %s", hy_last_error());
        return;
    }
    CHECK(hy_task_size(t) == 3, "3 samples (blank line skipped), got %ld", hy_task_size(t));
    hy_task_sample s;
    hy_verdict v;
    CHECK(hy_task_sample_get(t, 0, &s) == 0 && s.prompt && !strcmp(s.prompt, "What is 6*7?") &&
              !strcmp(s.verifier, "math"),
          "line 1");
    char where[600];
    snprintf(where, sizeof where, "%s:1", path);
    CHECK(!strcmp(s.id, where), "default id is file:line, got %s", s.id);
    CHECK(hy_task_check(&s, "6*7 = 42", NULL, &v) == 0 && v.reward == 1, "line 1 checked: %s", v.reason);
    hy_task_sample_free(&s);
    CHECK(hy_task_sample_get(t, 1, &s) == 0 && !s.prompt && s.n_messages == 2 && !strcmp(s.answer, "0.5") &&
              !strcmp(s.verifier, "gsm8k") && !strcmp(s.id, "17"),
          "line 3: messages, numeric ground_truth, dataset alias, integer id");
    CHECK(json_integer_value(json_object_get(s.metadata, "line")) == 3 &&
              !strcmp(json_string_value(json_object_get(s.metadata, "src")), "x"),
          "metadata keeps the line number and the line's own metadata");
    CHECK(hy_task_check(&s, "It is \\boxed{\\frac{1}{2}}", NULL, &v) == 0 && v.reward == 1, "1/2 == 0.5: %s",
          v.reason);
    hy_task_sample_free(&s);
    CHECK(hy_task_sample_get(t, 2, &s) == 0 && !strcmp(s.verifier, "exact"), "default verifier applies");
    hy_task_sample_free(&s);
    check_error("index past the end", hy_task_sample_get(t, 3, &s), "index 3", "[0, 3)", NULL);
    hy_task_destroy(t);

    jsonl_case("missing_answer", "{\"prompt\": \"p\", \"verifier\": \"math\"}", "", "field 'answer'");
    jsonl_case("both_prompts", "{\"prompt\": \"p\", \"messages\": [], \"answer\": \"1\", \"verifier\": \"math\"}", "",
               "'prompt' and 'messages' both");
    jsonl_case("no_prompt", "{\"answer\": \"1\", \"verifier\": \"math\"}", "", "field 'prompt' or 'messages'");
    jsonl_case("unknown_verifier", "{\"prompt\": \"p\", \"answer\": \"1\", \"verifier\": \"maths\"}", "",
               "field 'verifier': unknown verifier 'maths'");
    jsonl_case("unknown_dataset", "{\"prompt\": \"p\", \"answer\": \"1\", \"dataset\": \"ifeval\"}", "",
               "field 'dataset': unknown verifier 'ifeval'");
    jsonl_case("answer_object", "{\"prompt\": \"p\", \"answer\": {\"a\": 1}, \"verifier\": \"math\"}", "",
               "field 'answer': expected a string or a number");
    jsonl_case("both_answers",
               "{\"prompt\": \"p\", \"answer\": \"1\", \"ground_truth\": \"1\", \"verifier\": \"math\"}", "",
               "'answer' and 'ground_truth' both");
    jsonl_case("bad_json", "{\"prompt\": \"p\", \"answer\": ", "", "invalid JSON");
    jsonl_case("bad_message", "{\"messages\": [{\"role\": \"user\"}], \"answer\": \"1\", \"verifier\": \"math\"}", "",
               "messages[0].content: missing");
    jsonl_case("empty_messages", "{\"messages\": [], \"answer\": \"1\", \"verifier\": \"math\"}", "",
               "field 'messages': empty");
    jsonl_case("no_verifier", "{\"prompt\": \"p\", \"answer\": \"1\"}", "", "no verifier= default");
    jsonl_case("empty_prompt", "{\"prompt\": \"\", \"answer\": \"1\", \"verifier\": \"math\"}", "",
               "field 'prompt': expected a non-empty string");

    check_error("jsonl without path", hy_task_new(&t, "jsonl", NULL, 0), "'path': required", NULL);
    check_error("jsonl missing file", hy_task_new(&t, "jsonl", "path=/nonexistent/x.jsonl", 0), "task jsonl",
                "/nonexistent/x.jsonl", "cannot open", NULL);
    check_error("jsonl bad default verifier", hy_task_new(&t, "jsonl", "path=x,verifier=nope", 0), "'verifier'",
                "unknown verifier 'nope'", NULL);
    snprintf(path, sizeof path, "%s/empty.jsonl", tmp_root);
    write_text(path, "\n\n");
    check_error("empty jsonl", hy_task_open_jsonl(&t, path, NULL), "no samples", NULL);
    snprintf(path, sizeof path, "%s/with,comma.jsonl", tmp_root);
    write_text(path, "{\"prompt\": \"p\", \"answer\": \"1\", \"verifier\": \"math\"}\n");
    CHECK(hy_task_open_jsonl(&t, path, NULL) == 0 && hy_task_size(t) == 1, "open_jsonl with a comma in the path: %s",
          hy_last_error());
    hy_task_destroy(t);
}

// ---------------------------------------------------------------------------------------------

static void test_verifiers(void) {
    printf("verifiers\n");
    hy_verdict v;
    static const struct {
        const char *verifier, *completion, *reference;
        double reward;
    } cases[] = {
        {"math", "She has 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", 1},
        {"gsm8k", "#### 18.00", "18", 1},
        {"math", "The answer is $\\boxed{\\dfrac{3}{4}}$.", "The ratio is $\\boxed{\\frac34}$.", 1},
        {"math", "I think it is 17", "18", 0},
        {"math", "\\boxed{1,000,000}", "1000000", 1},
        {"math", "\\boxed{x^2+1}", "x^2 + 1", 1},
        {"exact", "The value is 7f3a9c.", "7f3a9c", 1},
        {"exact", "The value is 7F3A9C.", "7f3a9c", 0},
        {"exact", "\\boxed{`abc`}", "abc", 1},
        {"sequence", "Final order:\n[c, a, b]", "C A B", 1},
        {"sequence", "\\boxed{C B A}", "C A B", 0},
        {"sequence", "\\boxed{C A}", "C A B", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int rc = hy_verify(cases[i].verifier, cases[i].completion, cases[i].reference, NULL, &v);
        CHECK(rc == 0 && v.reward == cases[i].reward, "%s on '%s' vs '%s': reward %g (%s), want %g", cases[i].verifier,
              cases[i].completion, cases[i].reference, v.reward, v.reason, cases[i].reward);
    }
    CHECK(hy_verify("math", "no answer here", "5", NULL, &v) == 0 && v.reward == 0 &&
              strstr(v.reason, "no final answer"),
          "missing answer scores 0 with a reason: %s", v.reason);
    check_error("unknown verifier", hy_verify("maths", "x", "y", NULL, &v), "unknown verifier 'maths'",
                "math, gsm8k, exact, sequence, code", NULL);
    CHECK(hy_verifier_count() == 5 && hy_verifier_find("code") != NULL, "registry lists 5 verifiers");
}

static void test_calc(void) {
    printf("calc\n");
    static const struct {
        const char *expr, *want;  // want: formatted value, or "!" + error substring
    } cases[] = {
        {"12*(3+4)", "84"},
        {"2 + 3 * 4", "14"},
        {"(2 + 3) * 4", "20"},
        {"10 - 4 - 3", "3"},
        {"100 / 4 / 5", "5"},
        {"-3 * -2", "6"},
        {"--3", "3"},
        {"1.5 + .25", "1.75"},
        {"7 / 2", "3.5"},
        {"1 / 3", "0.333333333333"},
        {"6 \xC3\x97 7", "42"},
        {"8 \xC3\xB7 2", "4"},
        {"5 \xE2\x88\x92 9", "-4"},
        {"0.1 + 0.2", "0.3"},
        {"-0", "0"},
        {"999999 * 999999", "999998000001"},
        {"1/0", "!division by zero at position 3"},
        {"2 * (3 + 4", "!missing ')'"},
        {"2 + x", "!expected a number or '(' at position 5"},
        {"", "!empty expression"},
        {"3 4", "!unexpected character at position 3"},
        {"(1))", "!unmatched ')'"},
        {"2 ** 3", "!expected a number"},
        {"1e3", "!unexpected character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double v;
        char err[128], out[64];
        const int rc = hy_calc_eval(cases[i].expr, &v, err, sizeof err);
        if (cases[i].want[0] == '!') {
            CHECK(rc != 0 && strstr(err, cases[i].want + 1), "calc '%s': want error '%s', got rc %d '%s'",
                  cases[i].expr, cases[i].want + 1, rc, err);
        } else {
            hy_calc_format(v, out, sizeof out);
            CHECK(rc == 0 && !strcmp(out, cases[i].want), "calc '%s' = '%s', want '%s' (%s)", cases[i].expr, out,
                  cases[i].want, err);
        }
    }
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "1");
    double v;
    char err[128];
    CHECK(hy_calc_eval(deep, &v, err, sizeof err) != 0 && strstr(err, "nested too deeply"), "deep nesting: %s", err);
    char big[1100];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(hy_calc_eval(big, &v, err, sizeof err) != 0 && strstr(err, "longer than"), "long input: %s", err);
    CHECK(hy_calc_eval("99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * "
                       "99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * "
                       "99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * "
                       "99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * "
                       "99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999 * 99999999999",
                       &v, err, sizeof err) != 0 &&
              strstr(err, "too large"),
          "overflow: %s", err);
}

// ---------------------------------------------------------------------------------------------

// Text between "Compute " and the first '.' that ends a sentence: the calculator problem.
static void problem_expr(const char *obs, char *out, size_t n) {
    const char *p = strstr(obs, "Compute ");
    out[0] = '\0';
    if (!p) return;
    p += 8;
    const char *e = strstr(p, ".\n");
    snprintf(out, n, "%.*s", e ? (int)(e - p) : 0, p);
}

static void test_envs(void) {
    printf("envs\n");
    hy_env *e;
    if (hy_env_new(&e, "calculator", "max_calls=3")) {
        CHECK(0, "calculator: %s", hy_last_error());
        return;
    }
    const char *const *stops = hy_env_stop_strings(e);
    CHECK(stops && !strcmp(stops[0], "</calc>") && !stops[1], "calculator stops at </calc>");
    hy_env_step_result r;
    check_error("step before reset", hy_env_step(e, "hi", &r), "before reset", NULL);

    char *obs, *obs2, expr[256], turn[512];
    CHECK(hy_env_reset(e, 7, &obs) == 0 && strstr(obs, "<calc>"), "reset gives the prompt");
    CHECK(hy_env_reset(e, 7, &obs2) == 0 && !strcmp(obs, obs2), "reset is deterministic per seed");
    free(obs2);
    problem_expr(obs, expr, sizeof expr);
    char answer[64];
    snprintf(answer, sizeof answer, "%s", hy_env_answer(e));  // reset frees the env's copy
    printf("  episode: %s = %s\n", expr, answer);
    // the scripted episode: a correct call, a call with an error, then the final answer
    snprintf(turn, sizeof turn, "Let me use the calculator. <calc>%s</calc>\n", expr);
    CHECK(hy_env_step(e, turn, &r) == 0 && !r.done, "tool call continues the episode");
    char want[256];
    snprintf(want, sizeof want, "<result>%s</result>", answer);
    CHECK(!strcmp(r.observation, want), "calc result '%s', want '%s'", r.observation, want);
    hy_env_step_result_free(&r);
    CHECK(hy_env_step(e, "Check: <calc>1/0</calc>", &r) == 0 && !r.done &&
              !strcmp(r.observation, "<result>error: division by zero at position 3</result>"),
          "division by zero comes back as a result: %s", r.observation);
    hy_env_step_result_free(&r);
    CHECK(hy_env_step(e, "<calc>2+</calc> is not closed at the end <calc>", &r) == 0 && r.done,
          "a turn not ending in a call is final");
    CHECK(r.reward == 0, "a final turn without the answer scores 0 (%s)", r.reason);
    hy_env_step_result_free(&r);
    check_error("step after done", hy_env_step(e, "more", &r), "after the episode ended", NULL);

    CHECK(hy_env_reset(e, 7, &obs2) == 0, "reset again");
    free(obs2);
    snprintf(turn, sizeof turn, "<calc>%s</calc>", expr);
    hy_env_step(e, turn, &r);
    hy_env_step_result_free(&r);
    snprintf(turn, sizeof turn, "The result is %s, so the answer is \\boxed{%s}.", answer, answer);
    CHECK(hy_env_step(e, turn, &r) == 0 && r.done && r.reward == 1, "correct final answer: %s", r.reason);
    printf("  ok   final: %s\n", r.reason);
    hy_env_step_result_free(&r);

    CHECK(hy_env_reset(e, 8, &obs2) == 0, "reset for max_calls");
    free(obs2);
    for (int i = 0; i < 3; i++) {
        hy_env_step(e, "<calc>1+1</calc>", &r);
        CHECK(!r.done && !strcmp(r.observation, "<result>2</result>"), "call %d allowed", i + 1);
        hy_env_step_result_free(&r);
    }
    CHECK(hy_env_step(e, "<calc>1+1</calc>", &r) == 0 && r.done && r.reward == 0 && strstr(r.reason, "max_calls=3"),
          "the 4th call ends the episode: %s", r.reason);
    hy_env_step_result_free(&r);
    free(obs);
    hy_env_destroy(e);

    // kv_lookup: follow the chain with the tool, then answer
    if (hy_env_new(&e, "kv_lookup", "keys=30,hops=3")) {
        CHECK(0, "kv_lookup: %s", hy_last_error());
        return;
    }
    CHECK(hy_env_reset(e, 5, &obs) == 0, "kv reset");
    const char *p = strstr(obs, "Start from the key ");
    char key[64] = "";
    if (p) sscanf(p + 19, "%6s", key);
    for (int hop = 0; hop < 3; hop++) {
        snprintf(turn, sizeof turn, "<lookup> %s </lookup>", key);
        CHECK(hy_env_step(e, turn, &r) == 0 && !r.done, "lookup %d", hop + 1);
        CHECK(r.observation && sscanf(r.observation, "<result>%63[^<]</result>", key) == 1, "lookup result %s",
              r.observation);
        hy_env_step_result_free(&r);
    }
    CHECK(!strcmp(key, hy_env_answer(e)), "3 lookups reach the answer: %s vs %s", key, hy_env_answer(e));
    hy_env_step(e, "<lookup>zzzzzz</lookup>", &r);
    CHECK(!strcmp(r.observation, "<result>not found</result>"), "unknown key: %s", r.observation);
    hy_env_step_result_free(&r);
    snprintf(turn, sizeof turn, "\\boxed{%s}", key);
    CHECK(hy_env_step(e, turn, &r) == 0 && r.done && r.reward == 1, "kv final answer: %s", r.reason);
    hy_env_step_result_free(&r);
    free(obs);
    hy_env_destroy(e);

    check_error("unknown env", hy_env_new(&e, "calculater", NULL), "unknown environment 'calculater'",
                "calculator, kv_lookup", NULL);
    check_error("calculator too wide", hy_env_new(&e, "calculator", "digits=6,terms=3"), "digits * terms = 18", NULL);
    check_error("env unknown param", hy_env_new(&e, "kv_lookup", "hop=2"), "environment kv_lookup", "'hop'", NULL);
    check_error("kv keys < hops", hy_env_new(&e, "kv_lookup", "keys=2,hops=3"), "at least hops", NULL);
}

// ---------------------------------------------------------------------------------------------

// Processes whose command line mentions this test's sandbox directories (test_code points TMPDIR
// at tmp_root): what a run must not leave behind. Other processes' sandboxes do not count.
static int sandbox_survivors(void) {
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        const size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < got; i++)
            if (!buf[i]) buf[i] = ' ';
        buf[got] = '\0';
        n += strstr(buf, tmp_root) != NULL;
    }
    closedir(d);
    return n;
}

static int survivors_after_wait(void) {
    int n = sandbox_survivors();
    for (int i = 0; i < 100 && n; i++) {  // SIGKILLed processes may take a moment to go
        usleep(20000);
        n = sandbox_survivors();
    }
    return n;
}

static void run_code(const char *what, const char *program, const char *tests, const hy_sandbox_limits *lim,
                     hy_code_outcome want, hy_code_report *rep) {
    const double t0 = now_s();
    const int rc = hy_code_run_tests(program, tests, lim, rep);
    CHECK(rc == 0, "%s: could not run: %s", what, hy_last_error());
    if (rc) return;
    CHECK(rep->outcome == want, "%s: outcome '%s' (%s), want '%s'", what, hy_code_outcome_name(rep->outcome),
          rep->reason, hy_code_outcome_name(want));
    CHECK(rep->reward == (want == HY_CODE_PASSED), "%s: reward %g", what, rep->reward);
    printf("  ok   %-28s %.2f s  %s\n", what, now_s() - t0, rep->reason);
}

static void test_code_mode(int no_namespaces) {
    hy_sandbox_limits lim = hy_sandbox_limits_default();
    lim.no_namespaces = no_namespaces;
    lim.cpu_s = 1;
    lim.wall_s = 20;  // generous: only the cases that expect a wall-clock kill set it short
    hy_code_report rep;
    printf(" %s\n", no_namespaces ? "without namespaces (process group + Python network guard)"
                                  : "with namespaces where permitted");

    run_code("passing tests", "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\nassert add(-1, 1) == 0",
             &lim, HY_CODE_PASSED, &rep);
    printf("       isolation: network %s, pid namespace %d, user namespace %d\n",
           rep.net_namespace ? "namespace" : rep.net_guard ? "python guard" : "none", rep.pid_namespace,
           rep.user_namespace);
    CHECK(no_namespaces ? (rep.net_guard && !rep.net_namespace && !rep.pid_namespace)
                        : (rep.net_namespace || rep.net_guard),
          "network is isolated one way or the other");
    run_code("failing tests", "def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5", &lim, HY_CODE_FAILED,
             &rep);
    CHECK(strstr(rep.reason, "AssertionError") != NULL, "failure names the exception: %s", rep.reason);
    run_code("syntax error", "def add(a, b) return a\n", "assert add(1, 2) == 1", &lim, HY_CODE_FAILED, &rep);
    CHECK(strstr(rep.reason, "SyntaxError") != NULL, "syntax error named: %s", rep.reason);
    if (!no_namespaces) {  // rlimits and the wall clock act the same way in both modes; once is enough
        run_code("infinite loop", "while True:\n    pass\n", "", &lim, HY_CODE_CPU_LIMIT, &rep);
        hy_sandbox_limits fast = lim;
        fast.wall_s = 1.0;
        run_code("sleeping forever", "import time\ntime.sleep(60)\n", "", &fast, HY_CODE_WALL_TIMEOUT, &rep);
        CHECK(rep.wall_s < 3.0, "wall limit kills at ~1 s (%.2f s)", rep.wall_s);
    }

    hy_sandbox_limits small = lim;
    small.mem_bytes = (size_t)256 << 20;
    run_code("memory hog", "x = bytearray(1 << 30)\n", "", &small, HY_CODE_MEMORY_LIMIT, &rep);

    hy_sandbox_limits files = lim;
    files.file_bytes = (size_t)1 << 20;
    run_code("file size", "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (4 << 20))\n", "", &files,
             HY_CODE_FILE_LIMIT, &rep);

    run_code("stdout flood", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", "", &files,
             HY_CODE_FILE_LIMIT, &rep);
    run_code("crash", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "", &lim,
             HY_CODE_CRASHED, &rep);

    // fork bombs: bounded by the process limit, and nothing survives the run
    hy_sandbox_limits bomb = lim, endless_bomb = lim;
    bomb.max_procs = endless_bomb.max_procs = 16;
    endless_bomb.wall_s = 1.5;
    run_code("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
             "", &endless_bomb, HY_CODE_WALL_TIMEOUT, &rep);
    CHECK(survivors_after_wait() == 0, "fork bomb: %d processes survived the run", sandbox_survivors());
    run_code("fork bomb, failing fast", "import os\nwhile True:\n    os.fork()\n", "", &bomb, HY_CODE_PROCESS_LIMIT,
             &rep);
    CHECK(survivors_after_wait() == 0, "fork bomb: %d processes survived the run", sandbox_survivors());
    run_code("orphaned children",
             "import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        time.sleep(60)\n", "", &bomb,
             HY_CODE_PASSED, &rep);
    CHECK(survivors_after_wait() == 0, "background children: %d survived the run", sandbox_survivors());
    // setsid() leaves the process group; only the pid namespace catches it (3 s sleep: without a
    // namespace the escapee ends on its own soon after)
    run_code("escape with setsid", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3)\n", "",
             &bomb, HY_CODE_PASSED, &rep);
    if (rep.pid_namespace) CHECK(survivors_after_wait() == 0, "setsid escapee survived the pid namespace");
    else printf("       (no pid namespace: a setsid() escapee outlives the run, as sandbox.h documents)\n");

    // network: a listener on the host's loopback must be unreachable from the program
    const int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (srv < 0 || bind(srv, (struct sockaddr *)&addr, sizeof addr) || listen(srv, 4) ||
        getsockname(srv, (struct sockaddr *)&addr, &alen)) {
        printf("  note: no loopback listener (%s); network test skipped\n", strerror(errno));
    } else {
        char program[512];
        snprintf(program, sizeof program,
                 "import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=2).close()\n"
                 "    connected = True\nexcept OSError as e:\n    print(e)\n    connected = False\n",
                 ntohs(addr.sin_port));
        run_code("socket blocked", program, "assert not connected", &lim, HY_CODE_PASSED, &rep);
        hy_sandbox_limits open_net = lim;
        open_net.allow_network = 1;
        open_net.no_namespaces = 1;
        run_code("socket allowed (control)", program, "assert connected", &open_net, HY_CODE_PASSED, &rep);
    }
    if (srv >= 0) close(srv);
}

static void test_code(void) {
    printf("code\n");
    char *python = hy_sandbox_find_python(NULL);
    if (!python) {
        printf("  SKIP code verifier tests: %s\n", hy_last_error());
        return;
    }
    printf("  python: %s\n", python);
    free(python);
    // sandboxes under our own directory, which the sandbox uid (nobody, under root) must traverse
    char prev_tmpdir[512] = "";
    if (getenv("TMPDIR")) snprintf(prev_tmpdir, sizeof prev_tmpdir, "%s", getenv("TMPDIR"));
    chmod(tmp_root, 0711);
    setenv("TMPDIR", tmp_root, 1);

    char *prog = hy_code_extract("Here:\n```bash\nls\n```\n```python\ndef f():\n    return 1\n```\ndone");
    CHECK(!strcmp(prog, "def f():\n    return 1\n"), "extract the python block: '%s'", prog);
    free(prog);
    prog = hy_code_extract("```\nx = 1\n```\n```py\nx = 2\n```\n```\nx = 3");
    CHECK(!strcmp(prog, "x = 3"), "unclosed final untagged fence runs to the end: '%s'", prog);
    free(prog);
    prog = hy_code_extract("x = 5");
    CHECK(!strcmp(prog, "x = 5"), "no fence: the whole text");
    free(prog);

    test_code_mode(0);
    test_code_mode(1);

    hy_verify_options opt = hy_verify_options_default();
    opt.code.cpu_s = 2;
    opt.code.wall_s = 5;
    hy_verdict v;
    const char *io_ref = "{\"inputs\": [\"1 2\\n\", \"10 -4\\n\"], \"outputs\": [\"3\\n\", \"6\"]}";
    CHECK(
        hy_verify("code", "```python\na, b = map(int, input().split())\nprint(a + b)   \n```", io_ref, &opt, &v) == 0 &&
            v.reward == 1,
        "stdin/stdout cases pass: %s", v.reason);
    CHECK(hy_verify("code", "a, b = map(int, input().split())\nprint(a * b)", io_ref, &opt, &v) == 0 && v.reward == 0 &&
              strstr(v.reason, "case 1 of 2: wrong output"),
          "wrong output named by case: %s", v.reason);
    CHECK(hy_verify("code", "```python\ndef sq(x):\n    return x * x\n```", "assert sq(3) == 9", &opt, &v) == 0 &&
              v.reward == 1,
          "code verifier with test code: %s", v.reason);
    check_error("io reference lengths",
                hy_verify("code", "print(1)", "{\"inputs\": [\"1\"], \"outputs\": []}", &opt, &v), "verifier code",
                "same non-zero length", NULL);
    check_error("io reference types",
                hy_verify("code", "print(1)", "{\"inputs\": [1], \"outputs\": [\"1\"]}", &opt, &v),
                "inputs[0]: expected a string", NULL);
    check_error("io reference JSON", hy_verify("code", "print(1)", "{\"inputs\": [", &opt, &v), "invalid JSON", NULL);
    check_error("fn_name",
                hy_verify("code", "print(1)", "{\"fn_name\": \"f\", \"inputs\": [], \"outputs\": []}", &opt, &v),
                "fn_name", NULL);
    hy_sandbox_limits bad = opt.code;
    bad.python = "/nonexistent/python3";
    hy_code_report rep;
    check_error("missing interpreter", hy_code_run_tests("x = 1", "", &bad, &rep), "/nonexistent/python3",
                "not executable", NULL);
    if (prev_tmpdir[0]) setenv("TMPDIR", prev_tmpdir, 1);
    else unsetenv("TMPDIR");
}

// ---------------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_evals SOURCE_DIR [section]\n");
        return 2;
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    snprintf(tmp_root, sizeof tmp_root, "%s/test_evals_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    static const struct {
        const char *name;
        void (*fn)(void);
    } sections[] = {{"bigint", test_bigint}, {"params", test_params},       {"answers", test_answers},
                    {"tasks", test_tasks},   {"jsonl", test_jsonl},         {"verifiers", test_verifiers},
                    {"calc", test_calc},     {"envs", test_envs},           {"code", test_code}};
    const double t0 = now_s();
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (!only || !strcmp(only, sections[i].name)) sections[i].fn();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    printf("%d checks, %d failures, %.1f s\n", checks, failures, now_s() - t0);
    return failures ? 1 : 0;
}
