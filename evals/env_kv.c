// The kv_lookup environment: follow a chain of keys through a store the model cannot see.
//
// The store holds `keys` random 6-hex-character keys. A chain of `hops` distinct keys starts at
// the key named in the prompt: each key's value is the next key, and the last key's value is a
// word (the answer). Every other key holds a word or another key, so a model that guesses or
// stops early lands on a plausible wrong value. Solving takes exactly `hops` lookups, which makes
// this a multi-turn task whose length is a parameter. Keys are drawn with rejection of repeats
// (the store is small enough for a linear check).
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/env_impl.h"
#include "evals/task_impl.h"

enum { KEY_LEN = 6, WORD_LEN = 6, MAX_KEYS = 1000 };

static const hy_param_spec params[] = {
    {"keys", HY_PARAM_INT, 50, 2, MAX_KEYS, NULL, "keys in the hidden store (>= hops)"},
    {"hops", HY_PARAM_INT, 2, 1, 16, NULL, "lookups needed: the chain's length"},
    {"max_calls", HY_PARAM_INT, 16, 1, 256, NULL, "tool calls allowed per episode"},
};

static const char *const stops[] = {"</lookup>", NULL};

typedef struct {
    int n;
    char key[MAX_KEYS][KEY_LEN + 1];
    char value[MAX_KEYS][KEY_LEN > WORD_LEN ? KEY_LEN + 1 : WORD_LEN + 1];
} store;

static int kv_open(hy_env *e) {
    if (hy_params_int(&e->params, "keys") < hy_params_int(&e->params, "hops"))
        return hy_fail("environment kv_lookup: keys (%lld) must be at least hops (%lld)",
                       hy_params_int(&e->params, "keys"), hy_params_int(&e->params, "hops"));
    e->impl = hy_calloc(1, sizeof(store));
    return 0;
}

static void kv_close(hy_env *e) { free(e->impl); }

// Letters g..z only: a word can never be mistaken for a (hexadecimal) key.
static void random_word(hy_rng *r, char *out) {
    for (int i = 0; i < WORD_LEN; i++) out[i] = (char)('g' + hy_task_uniform(r, 20));
    out[WORD_LEN] = '\0';
}

static void kv_reset(hy_env *e, uint64_t seed, char **observation, char **answer) {
    store *st = e->impl;
    hy_rng r;
    hy_task_rng(&r, seed, 0);
    st->n = (int)hy_params_int(&e->params, "keys");
    const int hops = (int)hy_params_int(&e->params, "hops");
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < st->n; i++) {
        for (int again = 1; again;) {
            for (int k = 0; k < KEY_LEN; k++) st->key[i][k] = hex[hy_task_uniform(&r, 16)];
            st->key[i][KEY_LEN] = '\0';
            again = 0;
            for (int j = 0; j < i && !again; j++) again = !strcmp(st->key[i], st->key[j]);
        }
    }
    // distractors first: words, or pointers to random keys
    for (int i = 0; i < st->n; i++) {
        if (hy_task_uniform(&r, 2)) strcpy(st->value[i], st->key[hy_task_uniform(&r, (uint64_t)st->n)]);
        else random_word(&r, st->value[i]);
    }
    // the chain: the first `hops` slots of a partial shuffle of the indices
    int order[MAX_KEYS];
    for (int i = 0; i < st->n; i++) order[i] = i;
    for (int i = 0; i < hops; i++) {
        const int j = i + (int)hy_task_uniform(&r, (uint64_t)(st->n - i));
        const int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i + 1 < hops; i++) strcpy(st->value[order[i]], st->key[order[i + 1]]);
    random_word(&r, st->value[order[hops - 1]]);
    *answer = hy_strdup(st->value[order[hops - 1]]);

    hy_strbuf b;
    hy_strbuf_init(&b);
    hy_strbuf_addf(&b,
                   "A key-value store is hidden from you. To look up a key, write <lookup>key</lookup> and stop; the "
                   "value comes back as <result>value</result> (or <result>not found</result>). Start from the key "
                   "%s and look up %d time%s, each time looking up the value you got last (the first lookup is of "
                   "%s). What is the value returned by lookup number %d? Put the final answer in \\boxed{}.",
                   st->key[order[0]], hops, hops == 1 ? "" : "s", st->key[order[0]], hops);
    *observation = hy_strbuf_take(&b);
}

static void kv_tool(hy_env *e, const char *argument, hy_strbuf *out) {
    const store *st = e->impl;
    // tolerate the spacing and quoting models put around a key
    const char *s = argument;
    size_t n = strlen(s);
    while (n && strchr(" \t\n\"'`", *s)) s++, n--;
    while (n && strchr(" \t\n\"'`", s[n - 1])) n--;
    for (int i = 0; i < st->n; i++)
        if (n == KEY_LEN && !memcmp(st->key[i], s, n)) {
            hy_strbuf_add(out, st->value[i]);
            return;
        }
    hy_strbuf_add(out, "not found");
}

const hy_env_kind hy_env_kv_lookup = {
    .name = "kv_lookup",
    .help = "follow a chain of keys in a hidden store with a <lookup>key</lookup> tool; exact final answer",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .open_tag = "<lookup>",
    .close_tag = "</lookup>",
    .stop_strings = stops,
    .verifier = "exact",
    .open = kv_open,
    .reset = kv_reset,
    .tool = kv_tool,
    .close = kv_close,
};
