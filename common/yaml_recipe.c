// Flat YAML recipes through libcyaml with a schema built from the caller's keys (see yaml_recipe.h).
//
// libcyaml reports problems through its log callback rather than in the return code (which says
// only "Invalid key" and the like): the callback keeps the first error and the first location line
// of its backtrace, and those are turned into one message in our words. For an unknown key the
// backtrace points at the start of the mapping, so the key's own line is found by scanning the
// file for "key:".
#include "yaml_recipe.h"

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hy_error.h"

typedef struct {
    char problem[512];   // first error message, without libcyaml's "Load: " prefix
    char field[128];     // key named by the backtrace ("" when none)
    int line;            // line of that backtrace entry (0 when none)
} load_log;

static void on_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args) {
    load_log *log = ctx;
    if (level < CYAML_LOG_ERROR) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, args);
    msg[strcspn(msg, "\n")] = '\0';
    const char *m = strncmp(msg, "Load: ", 6) ? msg : msg + 6;
    if (!strncmp(m, "Backtrace:", 10)) return;
    const char *in_field = strstr(m, "in mapping field '");
    if (in_field || strstr(m, "in mapping (line")) {
        if (log->line) return;
        if (in_field) {
            const char *k = in_field + strlen("in mapping field '");
            snprintf(log->field, sizeof log->field, "%.*s", (int)strcspn(k, "'"), k);
        }
        const char *l = strstr(m, "(line: ");
        if (l) log->line = atoi(l + 7);
        return;
    }
    if (!log->problem[0]) snprintf(log->problem, sizeof log->problem, "%s", m);
}

// Line (1-based) of the nth (1-based) "key:" at the start of a line (after indentation), 0 if none.
static int key_line_nth(const char *path, const char *key, int nth) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[4096];
    int line = 0, seen = 0;
    const size_t klen = strlen(key);
    while (seen < nth && fgets(buf, sizeof buf, f)) {
        line++;
        const char *p = buf + strspn(buf, " \t");
        if (strncmp(p, key, klen)) continue;
        p += klen;
        p += strspn(p, " \t");
        seen += *p == ':';
    }
    fclose(f);
    return seen == nth ? line : 0;
}

int hy_yaml_key_line(const char *path, const char *key) { return key_line_nth(path, key, 1); }

// libcyaml's backtrace line is the enclosing node's, not always the problem's, so the lines given
// here are the key's own, found in the text.
static int describe_failure(const char *path, cyaml_err_t err, const load_log *log) {
    const char *problem = log->problem[0] ? log->problem : cyaml_strerror(err);
    static const char unexpected_key[] = "Unexpected key: ", seen_twice[] = "Mapping field already seen: ";
    if (!strncmp(problem, unexpected_key, sizeof unexpected_key - 1)) {
        const char *key = problem + sizeof unexpected_key - 1;
        const int line = hy_yaml_key_line(path, key);
        return hy_fail("%s:%d: unknown key '%s' (not an option of this command; see --help)", path, line, key);
    }
    if (!strncmp(problem, seen_twice, sizeof seen_twice - 1)) {
        const char *key = problem + sizeof seen_twice - 1;
        return hy_fail("%s:%d: key '%s' given a second time (first on line %d)", path, key_line_nth(path, key, 2), key,
                       hy_yaml_key_line(path, key));
    }
    const int line = log->field[0] ? hy_yaml_key_line(path, log->field) : 0;
    if (strstr(problem, "Expecting STRING, got event: SEQUENCE"))
        return hy_fail("%s:%d: key '%s' expects a single value, found a list", path, line, log->field);
    if (strstr(problem, "Expecting STRING, got event: MAPPING"))
        return hy_fail("%s:%d: key '%s' expects a single value, found a mapping (recipes are flat key: value lines)",
                       path, line, log->field);
    if (strstr(problem, "Expecting MAPPING"))
        return hy_fail("%s: a recipe is a mapping of key: value lines (%s)", path, problem);
    const char *what = strncmp(problem, "libyaml: ", 9) ? problem : problem + 9;
    if (line) return hy_fail("%s: YAML syntax error at or after key '%s' (line %d): %s", path, log->field, line, what);
    return hy_fail("%s: YAML syntax error: %s", path, what);
}

int hy_yaml_recipe_load(const char *path, const char *const *names, int n, char **values) {
    for (int i = 0; i < n; i++) values[i] = NULL;
    FILE *probe = fopen(path, "rb");
    if (!probe) return hy_fail("%s: cannot open recipe", path);
    fclose(probe);
    static const cyaml_schema_value_t string_value = {
        .type = CYAML_STRING, .flags = CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, .data_size = 1,
        .string = {.min = 0, .max = CYAML_UNLIMITED}};
    cyaml_schema_field_t *fields = hy_calloc((size_t)n + 1, sizeof *fields);  // zeroed entry ends the list
    for (int i = 0; i < n; i++) {
        fields[i].key = names[i];
        fields[i].value = string_value;
        fields[i].data_offset = (uint32_t)(i * sizeof(char *));
    }
    const cyaml_schema_value_t top = {.type = CYAML_MAPPING, .flags = CYAML_FLAG_POINTER,
                                      .data_size = (uint32_t)(n * sizeof(char *)), .mapping = {.fields = fields}};
    load_log log = {{0}, {0}, 0};
    const cyaml_config_t cfg = {.log_fn = on_log, .log_ctx = &log, .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR,
                                .flags = CYAML_CFG_DEFAULT};
    char **loaded = NULL;
    cyaml_err_t err = cyaml_load_file(path, &cfg, &top, (cyaml_data_t **)&loaded, NULL);
    int rc = 0;
    if (err != CYAML_OK) {
        rc = describe_failure(path, err, &log);
    } else if (loaded) {  // NULL for an empty document
        for (int i = 0; i < n; i++)
            if (loaded[i]) values[i] = hy_strdup(loaded[i]);
        cyaml_free(&cfg, &top, loaded, 0);
    }
    free(fields);
    return rc;
}

void hy_yaml_recipe_free(char **values, int n) {
    for (int i = 0; i < n; i++) {
        free(values[i]);
        values[i] = NULL;
    }
}

char *hy_yaml_quote(const char *text) {
    size_t w = 0;
    char *out = hy_malloc(4 * strlen(text) + 3);  // worst case: every byte a 4-byte \xNN escape
    out[w++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out[w++] = '\\';
            out[w++] = (char)*p;
        } else if (*p == '\n') {
            out[w++] = '\\';
            out[w++] = 'n';
        } else if (*p == '\t') {
            out[w++] = '\\';
            out[w++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            w += (size_t)sprintf(out + w, "\\x%02x", *p);
        } else {
            out[w++] = (char)*p;
        }
    }
    out[w++] = '"';
    out[w] = '\0';
    return out;
}
