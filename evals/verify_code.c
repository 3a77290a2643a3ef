// Code verification on top of the sandbox (see verify_code.h).
#include "evals/verify_code.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"

const char *hy_code_outcome_name(hy_code_outcome o) {
    switch (o) {
    case HY_CODE_PASSED: return "passed";
    case HY_CODE_FAILED: return "failed";
    case HY_CODE_WALL_TIMEOUT: return "wall-clock limit";
    case HY_CODE_CPU_LIMIT: return "CPU time limit";
    case HY_CODE_MEMORY_LIMIT: return "memory limit";
    case HY_CODE_PROCESS_LIMIT: return "process limit";
    case HY_CODE_FILE_LIMIT: return "file size limit";
    case HY_CODE_CRASHED: return "crashed";
    }
    return "unknown";
}

static int python_tag(const char *tag, size_t n) {
    while (n && (tag[n - 1] == ' ' || tag[n - 1] == '\r' || tag[n - 1] == '\t')) n--;
    if (n == 0) return 1;
    static const char *const ok[] = {"python", "python3", "py"};
    for (int i = 0; i < 3; i++)
        if (strlen(ok[i]) == n && !strncasecmp(tag, ok[i], n)) return 1;
    return 0;
}

char *hy_code_extract(const char *completion) {
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *p = strstr(completion, "```"); p;) {
        const char *tag = p + 3;
        const size_t tag_len = strcspn(tag, "\n");
        if (!tag[tag_len]) break;  // a fence with nothing after its tag line
        const char *body = tag + tag_len + 1;
        const char *close = strstr(body, "```");
        const size_t len = close ? (size_t)(close - body) : strlen(body);
        if (python_tag(tag, tag_len)) best = body, best_len = len;
        if (!close) break;
        p = strstr(close + 3, "```");
    }
    if (!best) return hy_strdup(completion);
    char *s = hy_malloc(best_len + 1);
    memcpy(s, best, best_len);
    s[best_len] = '\0';
    return s;
}

// The last non-blank line of stderr, for the reason (a traceback ends with the exception).
static void last_line(const char *err, char *out, size_t n) {
    const char *end = err + strlen(err);
    while (end > err && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) end--;
    const char *start = end;
    while (start > err && start[-1] != '\n') start--;
    snprintf(out, n, "%.*s", (int)(end - start), start);
}

// strsignal is not thread-safe; these are the signals a crashing Python program dies of.
static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGPIPE: return "SIGPIPE";
    }
    return "other";
}

// Fills outcome and reason from how a run ended; 1 if it exited 0 (output not yet judged).
static int classify(const hy_sandbox_result *r, const hy_sandbox_limits *lim, const char *label, hy_code_report *rep) {
    char line[160];
    last_line(r->err ? r->err : "", line, sizeof line);
    hy_code_outcome o = HY_CODE_FAILED;
    char what[200];
    if (r->wall_timeout) {
        o = HY_CODE_WALL_TIMEOUT;
        snprintf(what, sizeof what, "killed at the wall-clock limit (%.3g s)", lim->wall_s);
    } else if (!r->exited) {
        const int sig = r->term_signal;
        if (sig == SIGXCPU || (sig == SIGKILL && r->cpu_s >= 0.5 * lim->cpu_s)) {
            o = HY_CODE_CPU_LIMIT;
            snprintf(what, sizeof what, "killed at the CPU time limit (%d s)", lim->cpu_s);
        } else if (sig == SIGXFSZ) {
            o = HY_CODE_FILE_LIMIT;
            snprintf(what, sizeof what, "killed at the file size limit (%zu bytes)", lim->file_bytes);
        } else {
            o = HY_CODE_CRASHED;
            snprintf(what, sizeof what, "killed by signal %d (%s)", sig, signal_name(sig));
        }
    } else if (r->exit_code != 0) {
        const char *err = r->err ? r->err : "";
        if (strstr(err, "MemoryError")) {
            o = HY_CODE_MEMORY_LIMIT;
            snprintf(what, sizeof what, "out of memory at the address-space limit (%zu MiB): %.120s",
                     lim->mem_bytes >> 20, line);
        } else if (strstr(err, "BlockingIOError") || strstr(err, "Resource temporarily unavailable") ||
                   strstr(err, "can't start new thread")) {
            o = HY_CODE_PROCESS_LIMIT;
            snprintf(what, sizeof what, "hit the process limit (%d): %.120s", lim->max_procs, line);
        } else if (strstr(err, "File too large")) {
            o = HY_CODE_FILE_LIMIT;
            snprintf(what, sizeof what, "hit the file size limit (%zu bytes): %.120s", lim->file_bytes, line);
        } else {
            snprintf(what, sizeof what, "exit status %d: %.160s", r->exit_code, line[0] ? line : "(no stderr)");
        }
    } else {
        return 1;
    }
    rep->outcome = o;
    rep->reward = 0;
    snprintf(rep->reason, sizeof rep->reason, "%.40s%.200s", label, what);
    return 0;
}

static void note_isolation(const hy_sandbox_result *r, hy_code_report *rep) {
    rep->net_namespace = r->net_namespace;
    rep->net_guard = r->net_guard;
    rep->pid_namespace = r->pid_namespace;
    rep->user_namespace = r->user_namespace;
    rep->wall_s += r->wall_s;
}

int hy_code_run_tests(const char *program, const char *tests, const hy_sandbox_limits *lim, hy_code_report *rep) {
    memset(rep, 0, sizeof *rep);
    rep->cases_total = 1;
    hy_strbuf src;
    hy_strbuf_init(&src);
    hy_strbuf_add(&src, program);
    hy_strbuf_add(&src, "\n\n");
    hy_strbuf_add(&src, tests);
    hy_strbuf_add(&src, "\n");
    char *dir = NULL;
    hy_sandbox_result r;
    int rc = hy_sandbox_dir_new(&dir);
    if (!rc) rc = hy_sandbox_write(dir, "main.py", src.s, src.len);
    if (!rc) rc = hy_sandbox_run_python(lim, dir, "main.py", NULL, 0, &r);
    if (!rc) {
        note_isolation(&r, rep);
        if (classify(&r, lim, "", rep)) {
            rep->outcome = HY_CODE_PASSED;
            rep->reward = 1;
            rep->cases_passed = 1;
            snprintf(rep->reason, sizeof rep->reason, "all tests passed");
        }
        hy_sandbox_result_free(&r);
    }
    hy_sandbox_dir_remove(dir);
    free(dir);
    hy_strbuf_free(&src);
    return rc;
}

// Output as compared: trailing whitespace off every line, trailing blank lines off the end.
static char *canonical_output(const char *s) {
    hy_strbuf b;
    hy_strbuf_init(&b);
    for (const char *p = s; *p;) {
        const size_t n = strcspn(p, "\n");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t' || p[m - 1] == '\r')) m--;
        hy_strbuf_addn(&b, p, m);
        hy_strbuf_add(&b, "\n");
        p += n;
        if (*p) p++;
    }
    while (b.len && b.s[b.len - 1] == '\n') b.s[--b.len] = '\0';
    return hy_strbuf_take(&b);
}

int hy_code_run_io(const char *program, const char *const *inputs, const char *const *outputs, int n,
                   const hy_sandbox_limits *lim, hy_code_report *rep) {
    memset(rep, 0, sizeof *rep);
    rep->cases_total = n;
    if (n < 1) return hy_fail("code verifier: no stdin/stdout cases");
    char *dir = NULL;
    int rc = hy_sandbox_dir_new(&dir);
    if (!rc) rc = hy_sandbox_write(dir, "main.py", program, strlen(program));
    int failed = 0;
    for (int i = 0; i < n && !rc && !failed; i++) {
        hy_sandbox_result r;
        // rewritten every case: an earlier case's program may have changed its own file
        rc = hy_sandbox_write(dir, "main.py", program, strlen(program));
        if (!rc) rc = hy_sandbox_run_python(lim, dir, "main.py", inputs[i], strlen(inputs[i]), &r);
        if (rc) break;
        note_isolation(&r, rep);
        char label[48];
        snprintf(label, sizeof label, "case %d of %d: ", i + 1, n);
        if (!classify(&r, lim, label, rep)) {
            failed = 1;
        } else {
            char *got = canonical_output(r.out), *want = canonical_output(outputs[i]);
            if (strcmp(got, want)) {
                failed = 1;
                rep->outcome = HY_CODE_FAILED;
                snprintf(rep->reason, sizeof rep->reason, "%swrong output: expected \"%.40s\", got \"%.40s\"", label,
                         want, got);
            } else {
                rep->cases_passed++;
            }
            free(got);
            free(want);
        }
        hy_sandbox_result_free(&r);
    }
    if (!rc && !failed) {
        rep->outcome = HY_CODE_PASSED;
        rep->reward = 1;
        snprintf(rep->reason, sizeof rep->reason, "all %d cases passed", n);
    }
    hy_sandbox_dir_remove(dir);
    free(dir);
    return rc;
}

// {"inputs": [...], "outputs": [...]}: equal-length non-empty arrays of strings.
static int run_json_reference(const char *program, const char *reference, const hy_sandbox_limits *lim,
                              hy_code_report *rep) {
    json_error_t err;
    json_t *root = json_loads(reference, 0, &err);
    if (!root) return hy_fail("code verifier: reference: invalid JSON at column %d: %s", err.column, err.text);
    int rc = 0;
    const json_t *in = json_object_get(root, "inputs"), *out = json_object_get(root, "outputs");
    const char **ins = NULL, **outs = NULL;
    size_t n = 0;
    const char *bad = NULL;  // what is wrong with the reference's shape
    if (!json_is_object(root)) bad = "expected a JSON object";
    else if (json_object_get(root, "fn_name"))
        bad = "field 'fn_name': call-based cases are not supported, only stdin/stdout";
    else if (!json_is_array(in)) bad = "field 'inputs': expected an array of strings";
    else if (!json_is_array(out)) bad = "field 'outputs': expected an array of strings";
    if (bad) rc = hy_fail("code verifier: reference: %s", bad);
    else if (json_array_size(in) != json_array_size(out) || !json_array_size(in))
        rc = hy_fail("code verifier: reference: 'inputs' (%zu) and 'outputs' (%zu) must have the same non-zero length",
                     json_array_size(in), json_array_size(out));
    if (!rc) {
        n = json_array_size(in);
        ins = hy_calloc(n, sizeof *ins);
        outs = hy_calloc(n, sizeof *outs);
        for (size_t i = 0; i < n && !rc; i++) {
            ins[i] = json_string_value(json_array_get(in, i));
            outs[i] = json_string_value(json_array_get(out, i));
            if (!ins[i]) rc = hy_fail("code verifier: reference: inputs[%zu]: expected a string", i);
            else if (!outs[i]) rc = hy_fail("code verifier: reference: outputs[%zu]: expected a string", i);
        }
    }
    if (!rc) rc = hy_code_run_io(program, ins, outs, (int)n, lim, rep);
    free(ins);
    free(outs);
    json_decref(root);
    return rc;
}

int hy_code_verify(const char *completion, const char *reference, const hy_sandbox_limits *lim, hy_code_report *rep) {
    memset(rep, 0, sizeof *rep);
    char *program = hy_code_extract(completion);
    const char *r = reference;
    while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') r++;
    const int rc =
        *r == '{' ? run_json_reference(program, r, lim, rep) : hy_code_run_tests(program, reference, lim, rep);
    free(program);
    return rc;
}
