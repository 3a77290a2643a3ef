// The kv_recall task: long-context recall of one value among many key: value lines.
//
// `pairs` lines "<key>: <value>" with random-looking hexadecimal keys of key_len characters and
// lowercase alphanumeric values of value_len characters, then a question for one key's value. The
// queried line sits at `depth` percent of the list (0 = first line, 100 = last; −1 = anywhere,
// drawn per sample), the needle-in-a-haystack axis. Context length grows linearly with pairs
// (about 10 tokens a line at the defaults), so this is the probe for long-context recall.
//
// Keys must be unique or the question has two answers. They are the images of 0, 1, 2, ... under
// a seeded bijection of the 4·min(key_len, 16)-bit integers (multiply by an odd number, add,
// xor-shift; each step is invertible mod 2^bits), so uniqueness holds by construction at any size,
// with no lookup table. Keys longer than 16 characters get random hex padding in front.
#include <stdlib.h>

#include "evals/strbuf.h"
#include "evals/task_impl.h"

static const hy_param_spec params[] = {
    {"pairs", HY_PARAM_INT, 100, 1, 200000, NULL, "key: value lines in the context"},
    {"key_len", HY_PARAM_INT, 8, 6, 32, NULL, "hex characters per key (6 give 16M distinct keys)"},
    {"value_len", HY_PARAM_INT, 8, 1, 32, NULL, "characters per value"},
    {"depth", HY_PARAM_INT, -1, -1, 100, NULL, "where the queried line sits, percent of the list; -1 = random"},
};

typedef struct {
    uint64_t mask, mul1, add, mul2;
    int bits;
} key_map;

static uint64_t key_of(const key_map *m, uint64_t i) {
    uint64_t x = (i * m->mul1 + m->add) & m->mask;
    x ^= x >> (m->bits / 2);
    return (x * m->mul2) & m->mask;
}

static void put_key(hy_strbuf *b, const key_map *m, uint64_t i, int key_len, const char *pad) {
    const int hex = key_len < 16 ? key_len : 16;
    hy_strbuf_addn(b, pad, (size_t)(key_len - hex));
    hy_strbuf_addf(b, "%0*llx", hex, (unsigned long long)key_of(m, i));
}

static int kv_sample(const hy_task *t, long index, hy_task_sample *s) {
    hy_rng r;
    hy_task_rng(&r, t->seed, index);
    const long pairs = (long)hy_params_int(&t->params, "pairs");
    const int key_len = (int)hy_params_int(&t->params, "key_len");
    const int value_len = (int)hy_params_int(&t->params, "value_len");
    const int depth = (int)hy_params_int(&t->params, "depth");
    key_map m;
    m.bits = 4 * (key_len < 16 ? key_len : 16);
    m.mask = m.bits == 64 ? ~0ull : (1ull << m.bits) - 1;
    m.mul1 = hy_rng_next(&r) | 1;
    m.add = hy_rng_next(&r);
    m.mul2 = hy_rng_next(&r) | 1;
    static const char hexdigits[] = "0123456789abcdef", alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char pad[17] = {0};  // shared by all keys: padding adds length, uniqueness comes from the map
    for (int i = 0; i < key_len - 16; i++) pad[i] = hexdigits[hy_task_uniform(&r, 16)];
    const long target = depth < 0 ? (long)hy_task_uniform(&r, (uint64_t)pairs)
                                  : (long)((double)depth / 100.0 * (double)(pairs - 1) + 0.5);

    hy_strbuf prompt, key, value;
    hy_strbuf_init(&prompt);
    hy_strbuf_init(&key);
    hy_strbuf_init(&value);
    hy_strbuf_add(&prompt, "Below is a list of key: value pairs.\n\n");
    for (long i = 0; i < pairs; i++) {
        const size_t start = prompt.len;
        put_key(&prompt, &m, (uint64_t)i, key_len, pad);
        if (i == target) hy_strbuf_addn(&key, prompt.s + start, prompt.len - start);
        hy_strbuf_add(&prompt, ": ");
        const size_t vstart = prompt.len;
        for (int k = 0; k < value_len; k++) hy_strbuf_addn(&prompt, &alnum[hy_task_uniform(&r, 36)], 1);
        if (i == target) hy_strbuf_addn(&value, prompt.s + vstart, prompt.len - vstart);
        hy_strbuf_add(&prompt, "\n");
    }
    hy_strbuf_addf(&prompt, "\nWhat is the value for the key %s? Put the final answer in \\boxed{}.", key.s);
    json_t *extra = json_pack("{s:s, s:I}", "key", key.s, "position", (json_int_t)target);
    hy_strbuf_free(&key);
    hy_task_sample_fill(t, index, s, hy_strbuf_take(&prompt), hy_strbuf_take(&value), "exact", extra);
    return 0;
}

const hy_task_kind hy_task_kv_recall = {
    .name = "kv_recall",
    .help = "long-context recall: the value of one key among many key: value lines",
    .params = params,
    .n_params = (int)(sizeof params / sizeof *params),
    .sample = kv_sample,
};
