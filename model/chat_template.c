// ChatML rendering and conversation parsing (see chat_template.h).
//
// Roles are checked rather than trusted: a role with a newline or "<|" would change where the
// header ends or smuggle in a special token, so the rendered text would no longer say what the
// messages say. Content is free text; special tokens written in it are recognised when encoding,
// exactly as HF does when it encodes a rendered template.
#include "model/chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

static const char im_start[] = "<|im_start|>";
static const char im_end[] = "<|im_end|>\n";
static const char gen_prompt[] = "<|im_start|>assistant\n";

// NULL when the role is acceptable, else what is wrong with it.
static const char *role_problem(const char *role) {
    if (!role) return "missing";
    if (!role[0]) return "empty";
    if (strchr(role, '\n') || strchr(role, '\r')) return "contains a line break";
    if (strstr(role, "<|")) return "contains \"<|\"";
    return NULL;
}

int hy_chat_render(const hy_chat_message *msgs, int n, int add_generation_prompt, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    size_t total = add_generation_prompt ? sizeof gen_prompt - 1 : 0;
    for (int i = 0; i < n; i++) {
        const char *problem = role_problem(msgs[i].role);
        if (problem) return hy_fail("chat template: messages[%d].role: %s", i, problem);
        if (!msgs[i].content) return hy_fail("chat template: messages[%d].content: missing", i);
        total += sizeof im_start - 1 + strlen(msgs[i].role) + 1 + msgs[i].content_len + sizeof im_end - 1;
    }
    char *out = hy_malloc(total + 1);
    size_t w = 0;
#define PUT(s, n)                  \
    do {                           \
        memcpy(out + w, (s), (n)); \
        w += (n);                  \
    } while (0)
    for (int i = 0; i < n; i++) {
        PUT(im_start, sizeof im_start - 1);
        PUT(msgs[i].role, strlen(msgs[i].role));
        PUT("\n", 1);
        PUT(msgs[i].content, msgs[i].content_len);
        PUT(im_end, sizeof im_end - 1);
    }
    if (add_generation_prompt) PUT(gen_prompt, sizeof gen_prompt - 1);
#undef PUT
    out[w] = '\0';
    *text = out;
    *len = w;
    return 0;
}

int hy_chat_encode(const hy_tokenizer *t, const hy_chat_message *msgs, int n, int add_generation_prompt, int32_t **ids,
                   int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    char *text;
    size_t len;
    if (hy_chat_render(msgs, n, add_generation_prompt, &text, &len)) return -1;
    int rc = hy_tokenizer_encode(t, text, len, ids, n_ids);
    free(text);
    return rc;
}

int hy_chat_messages_from_json(const json_t *arr, const char *where, hy_chat_message **msgs, int *n) {
    *msgs = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return hy_fail("%s: messages: expected an array of {\"role\", \"content\"} objects", where);
    size_t count = json_array_size(arr);
    hy_chat_message *out = hy_calloc(count ? count : 1, sizeof *out);
    for (size_t i = 0; i < count; i++) {
        const json_t *m = json_array_get(arr, i);
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        const char *problem = NULL;
        if (!json_is_object(m)) {
            hy_fail("%s: messages[%zu]: expected an object", where, i);
        } else if (!json_is_string(role)) {
            hy_fail("%s: messages[%zu].role: %s", where, i, role ? "expected a string" : "missing");
        } else if (strlen(json_string_value(role)) != json_string_length(role)) {
            hy_fail("%s: messages[%zu].role: contains a NUL character", where, i);
        } else if ((problem = role_problem(json_string_value(role)))) {
            hy_fail("%s: messages[%zu].role: %s", where, i, problem);
        } else if (!json_is_string(content)) {
            hy_fail("%s: messages[%zu].content: %s", where, i, content ? "expected a string" : "missing");
        } else {
            out[i].role = hy_strdup(json_string_value(role));
            out[i].content_len = json_string_length(content);
            out[i].content = hy_malloc(out[i].content_len + 1);
            memcpy(out[i].content, json_string_value(content), out[i].content_len + 1);
            continue;
        }
        hy_chat_messages_free(out, (int)i);
        return -1;
    }
    *msgs = out;
    *n = (int)count;
    return 0;
}

void hy_chat_messages_free(hy_chat_message *msgs, int n) {
    if (!msgs) return;
    for (int i = 0; i < n; i++) {
        free(msgs[i].role);
        free(msgs[i].content);
    }
    free(msgs);
}
