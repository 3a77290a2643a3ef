// The verifier table and the answer-based verifiers (see verifier.h); "code" lives in
// verify_code.c and is only adapted here.
#include "evals/verifier.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/answer_math.h"
#include "evals/strbuf.h"
#include "evals/verify_code.h"

hy_verify_options hy_verify_options_default(void) {
    return (hy_verify_options){.math_rel_tol = 1e-6, .code = hy_sandbox_limits_default()};
}

static void verdict(hy_verdict *v, double reward, const char *fmt, ...) HY_PRINTF(3, 4);
static void verdict(hy_verdict *v, double reward, const char *fmt, ...) {
    v->reward = reward;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
}

// The reference's final answer: extracted when it carries a marker, else the whole text trimmed.
static char *reference_answer(const char *reference) {
    if (hy_answer_has_marker(reference)) {
        char *a = hy_answer_extract(reference, HY_FALLBACK_NONE, NULL);
        if (a) return a;
    }
    const char *s = reference;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    char *d = hy_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int verify_math(const char *completion, const char *reference, const hy_verify_options *opt, hy_verdict *v) {
    hy_answer_source src;
    char *got = hy_answer_extract(completion, HY_FALLBACK_NUMBER, &src);
    char *want = reference_answer(reference);
    if (!got) verdict(v, 0, "no final answer found (expected %.60s)", want);
    else if (hy_answer_equal(got, want, opt->math_rel_tol))
        verdict(v, 1, "correct: %.60s (from %s)", got, hy_answer_source_name(src));
    else verdict(v, 0, "expected %.60s, got %.60s (from %s)", want, got, hy_answer_source_name(src));
    free(got);
    free(want);
    return 0;
}

static int strip_char(char c) { return strchr("\"'`*.,;:!?", c) != NULL; }

static char *strip_quotes(char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && (strip_char(s[i]) || isspace((unsigned char)s[i]))) i++;
    while (n > i && (strip_char(s[n - 1]) || isspace((unsigned char)s[n - 1]))) n--;
    memmove(s, s + i, n - i);
    s[n - i] = '\0';
    return s;
}

static int verify_exact(const char *completion, const char *reference, const hy_verify_options *opt, hy_verdict *v) {
    hy_answer_source src;
    char *got = hy_answer_extract(completion, HY_FALLBACK_WORD, &src);
    char *want = reference_answer(reference);
    if (!got) verdict(v, 0, "no final answer found (expected %.60s)", want);
    else if (!strcmp(strip_quotes(got), want))
        verdict(v, 1, "correct: %.60s (from %s)", got, hy_answer_source_name(src));
    else verdict(v, 0, "expected %.60s, got %.60s (from %s)", want, got, hy_answer_source_name(src));
    free(got);
    free(want);
    return 0;
}

// Items of a list answer, upper-cased and joined by single spaces.
static char *items(const char *s) {
    hy_strbuf b;
    hy_strbuf_init(&b);
    for (const char *p = s; *p;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        if (!*p) break;
        if (b.len) hy_strbuf_add(&b, " ");
        for (; isalnum((unsigned char)*p); p++) {
            const char c = (char)toupper((unsigned char)*p);
            hy_strbuf_addn(&b, &c, 1);
        }
    }
    return hy_strbuf_take(&b);
}

static int verify_sequence(const char *completion, const char *reference, const hy_verify_options *opt,
                           hy_verdict *v) {
    hy_answer_source src;
    char *raw = hy_answer_extract(completion, HY_FALLBACK_LINE, &src), *ref = reference_answer(reference);
    char *got = raw ? items(raw) : NULL, *want = items(ref);
    if (!got) verdict(v, 0, "no final answer found (expected %.60s)", want);
    else if (!strcmp(got, want)) verdict(v, 1, "correct: %.60s (from %s)", got, hy_answer_source_name(src));
    else verdict(v, 0, "expected %.60s, got %.60s (from %s)", want, got, hy_answer_source_name(src));
    free(raw);
    free(ref);
    free(got);
    free(want);
    return 0;
}

static int verify_code(const char *completion, const char *reference, const hy_verify_options *opt, hy_verdict *v) {
    hy_code_report rep;
    if (hy_code_verify(completion, reference, &opt->code, &rep)) return -1;
    v->reward = rep.reward;
    snprintf(v->reason, sizeof v->reason, "%s", rep.reason);
    return 0;
}

static const hy_verifier table[] = {
    {"math", verify_math, "final answer vs reference: numbers normalised, integers exact, others to rel_tol"},
    {"gsm8k", verify_math, "the math verifier under open-instruct's dataset name"},
    {"exact", verify_exact, "final answer (else last word) equal to the reference byte for byte"},
    {"sequence", verify_sequence, "final answer (else last line) as a list of items, case-insensitive"},
    {"code", verify_code, "Python program passes the reference tests in the sandbox"},
};
static const int n_table = (int)(sizeof table / sizeof *table);

int hy_verifier_count(void) { return n_table; }
const hy_verifier *hy_verifier_at(int i) { return i >= 0 && i < n_table ? &table[i] : NULL; }

const hy_verifier *hy_verifier_find(const char *name) {
    for (int i = 0; i < n_table; i++)
        if (!strcmp(table[i].name, name)) return &table[i];
    hy_strbuf known;
    hy_strbuf_init(&known);
    for (int i = 0; i < n_table; i++) hy_strbuf_addf(&known, "%s%s", i ? ", " : "", table[i].name);
    hy_fail("unknown verifier '%s' (known: %s)", name, known.s);
    hy_strbuf_free(&known);
    return NULL;
}

int hy_verify(const char *verifier, const char *completion, const char *reference, const hy_verify_options *opt,
              hy_verdict *v) {
    memset(v, 0, sizeof *v);
    const hy_verifier *f = hy_verifier_find(verifier);
    if (!f) return -1;
    const hy_verify_options def = hy_verify_options_default();
    if (f->fn(completion, reference, opt ? opt : &def, v)) return hy_fail_prefix("verifier %s", verifier);
    return 0;
}
