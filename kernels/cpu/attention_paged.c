// Causal attention of new queries against a paged KV cache (the rollout engine's layout), and the
// scatter that writes new keys and values into it.
//
// The pool is (n_blocks, block_size, H_kv, D); a sequence's position j lives in row j % block_size
// of block block_table[j / block_size]. Blocks let sequences grow without reserving max_len rows
// each and let forked sequences share their prompt's blocks (copy-on-write in model/cache.c).
//
// The math is attention_cached_forward's, row by row, in the same order (fp32 dot products, the
// exponential sum in double, the output accumulated key by key), so a paged cache and a flat
// cache holding the same keys give bit-identical outputs: the test compares them exactly.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>

#include "../../common/hy_error.h"

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// Element offset of (position j, kv head hk) of one sequence in the pool.
static size_t pool_at(const paged_attn_shape *s, const int32_t *table, int j, int hk) {
    size_t row = (size_t)table[j / s->block_size] * s->block_size + (size_t)(j % s->block_size);
    return (row * s->H_kv + hk) * s->D;
}

// o (D) = softmax_j(scale·q·k_j)·v_j over positions j < n; p (n) is scratch.
static void attend_row(const paged_attn_shape *s, const int32_t *table, float *o, const float *q, const float *k_pool,
                       const float *v_pool, int n, int hk, float *p) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) {
        p[j] = dot(q, k_pool + pool_at(s, table, j, hk), s->D) * s->scale;
        if (p[j] > m) m = p[j];
    }
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        p[j] = expf(p[j] - m);
        sum += p[j];
    }
    float inv = (float)(1.0 / sum);
    for (int d = 0; d < s->D; d++) o[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        float w = p[j] * inv;
        const float *vj = v_pool + pool_at(s, table, j, hk);
        for (int d = 0; d < s->D; d++) o[d] += w * vj[d];
    }
}

void attention_paged_forward(const paged_attn_shape *s, float *o, const float *q, const float *k_pool,
                             const float *v_pool) {
    int longest = 1;
    for (int b = 0; b < s->n_seqs; b++)
        if (s->lens[b] > longest) longest = s->lens[b];
    float *p = hy_malloc((size_t)longest * sizeof(float));
    const int group = s->H / s->H_kv;
    const size_t q_stride = (size_t)s->H * s->D;
    for (int b = 0; b < s->n_seqs; b++) {
        const int32_t *table = s->block_table + (size_t)b * s->max_blocks;
        const int p0 = s->lens[b] - s->q_len[b];
        for (int i = 0; i < s->q_len[b]; i++)
            for (int h = 0; h < s->H; h++) {
                size_t qo = (size_t)(s->q_start[b] + i) * q_stride + (size_t)h * s->D;
                attend_row(s, table, o + qo, q + qo, k_pool, v_pool, p0 + i + 1, h / group, p);
            }
    }
    free(p);
}

void kv_paged_write(float *pool, const float *kv, const int32_t *rows, int T, int width) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < width; i++) pool[(size_t)rows[t] * width + i] = kv[(size_t)t * width + i];
}
