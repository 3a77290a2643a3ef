// Causal softmax attention with grouped KV heads, over packed documents; and the KV-cache variant.
//
// Plain row-at-a-time attention, the definition rather than a flash-style kernel: for query i of a
// document, scores s_j = scale·(q_i·k_j) over the keys j ≤ i of the same document, softmax, then
// o_i = Σ_j p_j·v_j (scale applied after the dot product, as HF eager attention does). Query head h
// reads KV head h / (H / H_kv), which is HF's repeat_kv. The softmax subtracts the row max and sums
// the exponentials in double; lse = max + log(sum) is saved so backward can rebuild p from it.
//
// Backward, per query row (the flash-attention form, with δ_i = do_i·o_i from the saved output):
//   p_j = exp(s_j − lse_i);  dp_j = do_i·v_j;  ds_j = p_j·(dp_j − δ_i)
//   dq_i += scale·Σ_j ds_j·k_j;  dk_j += scale·ds_j·q_i;  dv_j += p_j·do_i.
// Several query heads share a KV head, so dk and dv sum over the group, as repeat_kv's backward does.
//
// Both forwards go through attend_row(), so full and cached attention differ only in which keys a
// row sees; the test checks that the cached form reproduces the full one row by row.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>

#include "../../common/hy_error.h"

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// o (D) = softmax_j(scale·q·k_j)·v over n keys whose rows are kv_stride floats apart; returns lse.
// p (n) is scratch.
static float attend_row(float *o, const float *q, const float *k, const float *v, int n, size_t kv_stride, int D,
                        float scale, float *p) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) {
        p[j] = dot(q, k + j * kv_stride, D) * scale;
        if (p[j] > m) m = p[j];
    }
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        p[j] = expf(p[j] - m);
        sum += p[j];
    }
    float inv = (float)(1.0 / sum);
    for (int d = 0; d < D; d++) o[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        float w = p[j] * inv;
        const float *vj = v + j * kv_stride;
        for (int d = 0; d < D; d++) o[d] += w * vj[d];
    }
    return m + (float)log(sum);
}

static int longest_doc(const attn_shape *s) {
    int longest = 1;
    for (int d = 0; d < s->n_docs; d++)
        if (s->cu_seqlens[d + 1] - s->cu_seqlens[d] > longest) longest = s->cu_seqlens[d + 1] - s->cu_seqlens[d];
    return longest;
}

void attention_forward(const attn_shape *s, float *o, float *lse, const float *q, const float *k, const float *v) {
    int H = s->H, D = s->D, group = s->H / s->H_kv;
    size_t q_stride = (size_t)H * D, kv_stride = (size_t)s->H_kv * D;
    float *p = hy_malloc((size_t)longest_doc(s) * sizeof(float));
    for (int d = 0; d < s->n_docs; d++) {
        int start = s->cu_seqlens[d], end = s->cu_seqlens[d + 1];
        for (int t = start; t < end; t++)
            for (int h = 0; h < H; h++) {
                size_t kv_off = (size_t)start * kv_stride + (size_t)(h / group) * D;
                float l = attend_row(o + t * q_stride + (size_t)h * D, q + t * q_stride + (size_t)h * D, k + kv_off,
                                     v + kv_off, t - start + 1, kv_stride, D, s->scale, p);
                if (lse) lse[(size_t)t * H + h] = l;
            }
    }
    free(p);
}

void attention_backward(const attn_shape *s, float *dq, float *dk, float *dv, const float *d_o, const float *q,
                        const float *k, const float *v, const float *o, const float *lse) {
    int H = s->H, D = s->D, group = s->H / s->H_kv;
    size_t q_stride = (size_t)H * D, kv_stride = (size_t)s->H_kv * D;
    float *p = hy_malloc((size_t)longest_doc(s) * sizeof(float));
    for (int d = 0; d < s->n_docs; d++) {
        int start = s->cu_seqlens[d], end = s->cu_seqlens[d + 1];
        for (int t = start; t < end; t++)
            for (int h = 0; h < H; h++) {
                size_t qo = t * q_stride + (size_t)h * D;
                size_t kv0 = (size_t)start * kv_stride + (size_t)(h / group) * D;
                const float *qi = q + qo, *doi = d_o + qo;
                int n = t - start + 1;
                float l = lse[(size_t)t * H + h];
                float delta = dot(doi, o + qo, D);
                for (int j = 0; j < n; j++) p[j] = expf(dot(qi, k + kv0 + j * kv_stride, D) * s->scale - l);
                for (int j = 0; j < n; j++) {
                    const float *kj = k + kv0 + j * kv_stride, *vj = v + kv0 + j * kv_stride;
                    float ds = p[j] * (dot(doi, vj, D) - delta) * s->scale;
                    if (dq)
                        for (int e = 0; e < D; e++) dq[qo + e] += ds * kj[e];
                    if (dk)
                        for (int e = 0; e < D; e++) dk[kv0 + j * kv_stride + e] += ds * qi[e];
                    if (dv)
                        for (int e = 0; e < D; e++) dv[kv0 + j * kv_stride + e] += p[j] * doi[e];
                }
            }
    }
    free(p);
}

void attention_cached_forward(float *o, const float *q, const float *k, const float *v, int Tq, int p0, int H,
                              int H_kv, int D, float scale) {
    int group = H / H_kv;
    size_t q_stride = (size_t)H * D, kv_stride = (size_t)H_kv * D;
    float *p = hy_malloc((size_t)(p0 + Tq) * sizeof(float));
    for (int i = 0; i < Tq; i++)
        for (int h = 0; h < H; h++) {
            size_t qo = i * q_stride + (size_t)h * D, kv0 = (size_t)(h / group) * D;
            attend_row(o + qo, q + qo, k + kv0, v + kv0, p0 + i + 1, kv_stride, D, scale, p);
        }
    free(p);
}
