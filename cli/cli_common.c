// Shared subcommand helpers (see cli_common.h).
#include "cli_common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../common/jsonl.h"
#include "../evals/task.h"
#include "../model/chat_template.h"
#include "device.h"

int cli_error(const char *cmd) {
    fprintf(stderr, "hybrid %s: error: %s\n", cmd, hy_last_error());
    return 1;
}

const char *cli_tokenizer_path(const char *dir, const char *tokenizer_arg, char *buf, size_t n) {
    if (tokenizer_arg) return tokenizer_arg;
    snprintf(buf, n, "%s/tokenizer.json", dir);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

int cli_self_exe(char *path, size_t n) {
    const ssize_t len = readlink("/proc/self/exe", path, n - 1);
    if (len <= 0) return hy_fail("cannot find the hybrid binary (/proc/self/exe)");
    path[len] = 0;
    return 0;
}

int cli_copy_file(const char *from, const char *to) {
    struct stat a, b;
    if (stat(from, &a) == 0 && stat(to, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return 0;
    FILE *in = fopen(from, "rb");
    if (!in) return hy_fail("%s: cannot open: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return hy_fail("%s: cannot create: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = hy_fail("%s: write failed", to);
    fclose(in);
    if (fclose(out)) rc = hy_fail("%s: write failed", to);
    return rc;
}

// "preset:NAME": the preset's shape with every weight zero, made in memory (no checkpoint to read).
static int preset_model(const char *name, hy_model *m) {
    hy_config cfg;
    if (hy_config_preset(&cfg, name)) return -1;
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    hy_param_table_build(&m->table, &cfg);
    m->arena = hy_calloc(m->table.total, sizeof(float));
    hy_model_attach(m, hy_cpu_backend());
    return 0;
}

int cli_load_model(const char *dir, const char *tokenizer_arg, const char *device, hy_model *m, hy_tokenizer **tok) {
    *tok = NULL;
    if (!dir) return hy_fail("--model DIR is required");
    hy_backend *be;
    if (cli_device_open(device, &be)) return -1;
    char path[4096];
    const int is_preset = !strncmp(dir, "preset:", 7);
    const char *tokenizer_path = is_preset ? tokenizer_arg : cli_tokenizer_path(dir, tokenizer_arg, path, sizeof path);
    if ((tokenizer_path && hy_tokenizer_load(tok, tokenizer_path)) ||
        (is_preset ? preset_model(dir + 7, m) : hy_model_load(m, dir))) {
        hy_tokenizer_free(*tok);
        *tok = NULL;
        cli_device_close(be);
        return -1;
    }
    if (cli_device_check(be, &m->cfg)) {
        if (device && strcmp(device, "auto")) {
            hy_tokenizer_free(*tok);
            *tok = NULL;
            hy_model_free(m);
            cli_device_close(be);
            return -1;
        }
        // auto: a model the GPU kernels cannot take still runs, on the CPU reference path
        fprintf(stderr, "hybrid: %s; running on the CPU\n", hy_last_error());
        cli_device_close(be);
        be = hy_cpu_backend();
    }
    if (be != m->be) hy_model_attach(m, be);
    return 0;
}

void cli_unload_model(hy_model *m, hy_tokenizer *tok) {
    hy_backend *be = m->be;
    hy_tokenizer_free(tok);
    hy_model_free(m);
    cli_device_close(be);
}

static int need_tokenizer(const hy_tokenizer *tok, const char *where, const char *field) {
    if (tok) return 0;
    return hy_fail("%s: field '%s' needs a tokenizer: put tokenizer.json in the model directory or pass "
                   "--tokenizer FILE",
                   where, field);
}

int cli_input_tokens(const json_t *obj, const hy_tokenizer *tok, const char *where, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    const json_t *tokens = json_object_get(obj, "tokens");
    const json_t *text = json_object_get(obj, "text");
    const json_t *messages = json_object_get(obj, "messages");
    int present = (tokens != NULL) + (text != NULL) + (messages != NULL);
    if (present != 1)
        return hy_fail("%s: expected exactly one of 'tokens', 'text' or 'messages', found %d", where, present);
    if (tokens) {
        if (!json_is_array(tokens)) return hy_fail("%s: field 'tokens' must be an array of integers", where);
        size_t len = json_array_size(tokens);
        *ids = hy_malloc(sizeof(int32_t) * (len ? len : 1));
        for (size_t i = 0; i < len; i++) {
            const json_t *v = json_array_get(tokens, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
                free(*ids);
                *ids = NULL;
                return hy_fail("%s: field 'tokens'[%zu] must be a non-negative integer", where, i);
            }
            (*ids)[i] = (int32_t)json_integer_value(v);
        }
        *n = (int)len;
        return 0;
    }
    if (text) {
        if (!json_is_string(text)) return hy_fail("%s: field 'text' must be a string", where);
        if (need_tokenizer(tok, where, "text")) return -1;
        if (hy_tokenizer_encode(tok, json_string_value(text), json_string_length(text), ids, n))
            return hy_fail_prefix("%s: field 'text'", where);
        return 0;
    }
    if (need_tokenizer(tok, where, "messages")) return -1;
    char *rendered = NULL;
    char field[4300];
    snprintf(field, sizeof field, "%s: field 'messages'", where);
    size_t len;
    if (cli_render_messages(messages, field, 0, &rendered, &len)) return -1;
    int rc = hy_tokenizer_encode(tok, rendered, len, ids, n);
    free(rendered);
    return rc ? hy_fail_prefix("%s: field 'messages'", where) : 0;
}

long cli_for_each_sequence(const char *path, const hy_model *m, const hy_tokenizer *tok, cli_sequence_fn on_sequence,
                           void *ctx) {
    hy_jsonl_reader r;
    if (hy_jsonl_open(&r, path)) return -1;
    long count = 0;
    int rc = 0;
    for (;;) {
        json_t *obj;
        int got = hy_jsonl_next(&r, &obj);
        if (got <= 0) {
            rc = got;
            break;
        }
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, r.line_no);
        int32_t *ids;
        int n;
        rc = cli_input_tokens(obj, tok, where, &ids, &n);
        json_decref(obj);
        if (!rc && n == 0) rc = hy_fail("%s: empty sequence (no tokens)", where);
        if (!rc && hy_model_check_tokens(m, ids, n)) rc = hy_fail_prefix("%s", where);
        if (!rc) rc = on_sequence(ctx, ids, n, where);
        free(ids);
        if (rc) break;
        count++;
    }
    hy_jsonl_close(&r);
    if (!rc && count == 0) rc = hy_fail("%s: empty input (no JSON lines)", path);
    return rc ? -1 : count;
}

int cli_render_messages(const json_t *messages, const char *where, int add_generation_prompt, char **text,
                        size_t *len) {
    hy_chat_message *msgs = NULL;
    int n = 0;
    if (hy_chat_messages_from_json(messages, where, &msgs, &n)) return -1;
    int rc = hy_chat_render(msgs, n, add_generation_prompt, text, len);
    hy_chat_messages_free(msgs, n);
    return rc;
}

int cli_parse_id_list(const char *text, int32_t **ids, int *n) {
    size_t cap = 16;
    int count = 0;
    int32_t *out = hy_malloc(sizeof(int32_t) * cap);
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(out);
            return hy_fail("bad token id list '%s': expected comma-separated non-negative integers", text);
        }
        if ((size_t)count == cap) out = hy_realloc(out, sizeof(int32_t) * (cap *= 2));
        out[count++] = (int32_t)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) {
            free(out);
            return hy_fail("bad token id list '%s': unexpected '%c'", text, *p);
        }
    }
    if (count == 0) {
        free(out);
        return hy_fail("empty token id list");
    }
    *ids = out;
    *n = count;
    return 0;
}

// "2GiB", "512MiB", "1e9" (bytes) or "0.5" (≤ 1: a fraction of free memory).
int cli_parse_memory(const char *text, size_t *bytes, double *fraction) {
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (errno || end == text || !(v > 0))
        return hy_fail("--memory '%s': expected a positive size (2GiB, 512MiB) or a fraction in (0, 1]", text);
    double scale = 1.0;
    if (!strcmp(end, "KiB") || !strcmp(end, "K")) scale = 1024.0;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M")) scale = 1048576.0;
    else if (!strcmp(end, "GiB") || !strcmp(end, "G")) scale = 1073741824.0;
    else if (*end) return hy_fail("--memory '%s': unknown unit '%s' (use KiB, MiB or GiB)", text, end);
    *bytes = 0;
    *fraction = 0.0;
    if (!*end && v <= 1.0)
        *fraction = v;
    else
        *bytes = (size_t)(v * scale);
    return 0;
}

static int is_task_kind(const char *name) {
    for (int i = 0; i < hy_task_kind_count(); i++)
        if (!strcmp(name, hy_task_kind_name(i))) return 1;
    return 0;
}

// A task by name or file (see cli_common.h), else a JSONL file (a name ending in .jsonl, or any existing file).
// label (what the summary and the store call it): the name with its parameters, or the file's
// base name.
int cli_open_task(const char *name, const char *params, uint64_t seed, hy_task **t, char *label, size_t n) {
    if (params && !params[0]) params = NULL;
    const size_t len = strlen(name);
    struct stat sb;
    if (is_task_kind(name) || !((len > 6 && !strcmp(name + len - 6, ".jsonl")) || stat(name, &sb) == 0)) {
        snprintf(label, n, "%s%s%s", name, params ? ":" : "", params ? params : "");
        return hy_task_new(t, name, params, seed);
    }
    const char *base = strrchr(name, '/');
    snprintf(label, n, "%s", base ? base + 1 : name);
    if (!params) return hy_task_open_jsonl(t, name, NULL);
    // key=value text cannot carry a comma; without parameters, hy_task_open_jsonl takes any path
    if (strchr(name, ',')) return hy_fail("--task %s: a path with a comma takes no --task-params", name);
    char *text = hy_malloc(len + strlen(params) + 8);
    sprintf(text, "path=%s,%s", name, params);
    const int rc = hy_task_new(t, "jsonl", text, 0);
    free(text);
    return rc;
}
