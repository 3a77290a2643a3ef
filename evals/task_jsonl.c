// The jsonl task: samples from a dataset file, one JSON object per line.
//
// Fields (open-instruct's RLVR names are accepted as aliases, so its files load as they are):
//   "prompt": "..."  or  "messages": [{"role", "content"}, ...]   exactly one of the two
//   "answer" or "ground_truth": string or number                  the verifier's reference
//   "verifier" or "dataset": registry name                        else the task's verifier=
//   "id": string or integer (optional; default "<file>:<line>")
//   "metadata": object (optional; merged into the sample's metadata)
// Other fields are ignored. The whole file is read and checked at open, so a run fails before it
// starts rather than at line 90,000; a bad line is an error naming file:line and the field.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "common/jsonl.h"
#include "evals/strbuf.h"
#include "evals/task_impl.h"

static const hy_param_spec params[] = {
    {"path", HY_PARAM_STR, 0, 0, 0, "", "JSONL file, one sample per line (required)"},
    {"verifier", HY_PARAM_STR, 0, 0, 0, "", "verifier for lines that name none; empty = every line must"},
};

typedef struct {
    hy_task_sample *samples;  // (n) as read; hy_task_sample_get hands out copies
    long n;
} jsonl_data;

// The value of field `name` or of its alias; *which says which was present. Both present fails.
static int field_alias(const json_t *o, const char *name, const char *alias, const char *where, const json_t **v,
                       const char **which) {
    const json_t *a = json_object_get(o, name), *b = json_object_get(o, alias);
    if (a && b) return hy_fail("%s: fields '%s' and '%s' both given; give one", where, name, alias);
    *v = a ? a : b;
    *which = a ? name : b ? alias : name;
    return 0;
}

// A string, or a number written as text (answers like 72 or 0.5 are often stored as numbers).
static char *scalar_text(const json_t *v) {
    if (json_is_string(v)) return hy_strdup(json_string_value(v));
    hy_strbuf b;
    hy_strbuf_init(&b);
    if (json_is_integer(v)) hy_strbuf_addf(&b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) hy_strbuf_addf(&b, "%.17g", json_real_value(v));
    else return NULL;
    return hy_strbuf_take(&b);
}

static int parse_line(const json_t *o, const char *path, long line, const char *default_verifier, hy_task_sample *s) {
    char where[512];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    const json_t *prompt = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (prompt && msgs) return hy_fail("%s: fields 'prompt' and 'messages' both given; give one", where);
    if (!prompt && !msgs) return hy_fail("%s: field 'prompt' or 'messages': missing", where);
    if (prompt) {
        if (!json_is_string(prompt) || !json_string_length(prompt))
            return hy_fail("%s: field 'prompt': expected a non-empty string", where);
        s->prompt = hy_strdup(json_string_value(prompt));
        s->n_messages = 1;
        s->messages = hy_calloc(1, sizeof *s->messages);
        s->messages[0].role = hy_strdup("user");
        s->messages[0].content = hy_strdup(s->prompt);
        s->messages[0].content_len = strlen(s->prompt);
    } else {
        if (hy_chat_messages_from_json(msgs, where, &s->messages, &s->n_messages)) return -1;
        if (s->n_messages == 0) return hy_fail("%s: field 'messages': empty; the prompt needs a message", where);
    }

    const json_t *v;
    const char *name;
    if (field_alias(o, "answer", "ground_truth", where, &v, &name)) return -1;
    if (!v) return hy_fail("%s: field 'answer' (or 'ground_truth'): missing", where);
    if (!(s->answer = scalar_text(v))) return hy_fail("%s: field '%s': expected a string or a number", where, name);

    if (field_alias(o, "verifier", "dataset", where, &v, &name)) return -1;
    if (v && !json_is_string(v)) return hy_fail("%s: field '%s': expected a string", where, name);
    const char *verifier = v ? json_string_value(v) : default_verifier;
    if (!*verifier)
        return hy_fail("%s: field 'verifier' (or 'dataset'): missing, and the task has no verifier= default", where);
    if (!hy_verifier_find(verifier)) return hy_fail_prefix("%s: field '%s'", where, v ? name : "verifier");
    s->verifier = hy_strdup(verifier);

    const json_t *id = json_object_get(o, "id");
    if (id && !json_is_string(id) && !json_is_integer(id))
        return hy_fail("%s: field 'id': expected a string or an integer", where);
    s->id = id ? scalar_text(id) : hy_strdup(where);

    const json_t *meta = json_object_get(o, "metadata");
    if (meta && !json_is_object(meta)) return hy_fail("%s: field 'metadata': expected an object", where);
    s->metadata = meta ? json_deep_copy(meta) : json_object();
    json_object_set_new(s->metadata, "task", json_string("jsonl"));
    json_object_set_new(s->metadata, "file", json_string(path));
    json_object_set_new(s->metadata, "line", json_integer(line));
    return 0;
}

static void jsonl_close(hy_task *t) {
    jsonl_data *d = t->impl;
    if (!d) return;
    for (long i = 0; i < d->n; i++) hy_task_sample_free(&d->samples[i]);
    free(d->samples);
    free(d);
    t->impl = NULL;
}

static int jsonl_open(hy_task *t) {
    const char *path = hy_params_str(&t->params, "path"), *def = hy_params_str(&t->params, "verifier");
    if (!*path) return hy_fail("task jsonl: parameter 'path': required");
    if (*def && !hy_verifier_find(def)) return hy_fail_prefix("task jsonl: parameter 'verifier'");
    hy_jsonl_reader rd;
    if (hy_jsonl_open(&rd, path)) return hy_fail_prefix("task jsonl");
    jsonl_data *d = hy_calloc(1, sizeof *d);
    t->impl = d;
    long cap = 0;
    int rc = 0;
    for (;;) {
        json_t *o;
        const int got = hy_jsonl_next(&rd, &o);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (d->n == cap) {
            cap = 2 * cap + 64;
            d->samples = hy_realloc(d->samples, sizeof *d->samples * (size_t)cap);
        }
        hy_task_sample *s = &d->samples[d->n];
        memset(s, 0, sizeof *s);
        rc = parse_line(o, path, rd.line_no, def, s);
        json_decref(o);
        if (rc) {
            hy_task_sample_free(s);
            break;
        }
        d->n++;
    }
    hy_jsonl_close(&rd);
    if (!rc && d->n == 0) rc = hy_fail("task jsonl: %s: no samples (the file is empty)", path);
    if (rc) jsonl_close(t);
    return rc;
}

static long jsonl_size(const hy_task *t) { return ((const jsonl_data *)t->impl)->n; }

static int jsonl_sample(const hy_task *t, long index, hy_task_sample *s) {
    const hy_task_sample *src = &((const jsonl_data *)t->impl)->samples[index];
    s->id = hy_strdup(src->id);
    s->n_messages = src->n_messages;
    s->messages = hy_calloc((size_t)src->n_messages, sizeof *s->messages);
    for (int i = 0; i < src->n_messages; i++) {
        s->messages[i].role = hy_strdup(src->messages[i].role);
        s->messages[i].content_len = src->messages[i].content_len;
        s->messages[i].content = hy_malloc(src->messages[i].content_len + 1);
        memcpy(s->messages[i].content, src->messages[i].content, src->messages[i].content_len + 1);
    }
    s->prompt = src->prompt ? hy_strdup(src->prompt) : NULL;
    s->answer = hy_strdup(src->answer);
    s->verifier = hy_strdup(src->verifier);
    s->metadata = json_deep_copy(src->metadata);
    return 0;
}

const hy_task_kind hy_task_jsonl = {
    .name = "jsonl",
    .help = "samples from a JSONL file: {prompt|messages, answer|ground_truth, verifier|dataset, id?, metadata?}",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .open = jsonl_open,
    .sample = jsonl_sample,
    .close = jsonl_close,
    .size = jsonl_size,
};
