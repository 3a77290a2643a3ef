// Causal depthwise conv1d + SiLU over packed documents: the short convolution applied to q, k and v
// in the GDN sublayer (kernel K = 4 in the model).
//
// Every document sees its own history only: taps that reach before the document's first token
// read that document's window_in (the last K−1 *pre-conv* inputs from an earlier call, oldest
// first) or zeros. This one function therefore serves training (window_in NULL), prefill that must
// leave a window behind (window_out), chunked prefill continuation and decode (one token per
// document, window_out aliasing window_in). Backward recomputes the pre-activation instead of
// saving it: it is K multiply-adds per element.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/hy_error.h"

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// The pre-conv input of channel c at position p of the document [start, ·) with index d: x itself
// inside the document, the window before it, zeros before the window.
static float conv_input(const float *x, const float *window_in, int d, int start, int p, int c, int Ch, int K) {
    if (p >= start) return x[(size_t)p * Ch + c];
    int back = start - p;  // 1 = the newest window entry
    if (!window_in || back > K - 1) return 0.0f;
    return window_in[((size_t)d * Ch + c) * (K - 1) + (K - 1 - back)];
}

static float conv_preact(const float *x, const float *w, const float *window_in, int d, int start, int t, int c, int Ch,
                         int K) {
    float acc = 0.0f;
    for (int j = 0; j < K; j++)
        acc += w[(size_t)c * K + j] * conv_input(x, window_in, d, start, t - (K - 1) + j, c, Ch, K);
    return acc;
}

void conv1d_silu_forward(float *y, float *window_out, const float *x, const float *w, const float *window_in,
                         const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K) {
    // the next window of one document, staged so window_out may alias window_in
    float *next = window_out && K > 1 ? hy_malloc((size_t)Ch * (K - 1) * sizeof(float)) : NULL;
    for (int d = 0; d < n_docs; d++) {
        int start = cu_seqlens[d], end = cu_seqlens[d + 1];
        for (int t = start; t < end; t++)
            for (int c = 0; c < Ch; c++) {
                float a = conv_preact(x, w, window_in, d, start, t, c, Ch, K);
                y[(size_t)t * Ch + c] = (float)(a * sigmoid(a));
            }
        if (!next) continue;
        for (int c = 0; c < Ch; c++)
            for (int i = 0; i < K - 1; i++)
                next[(size_t)c * (K - 1) + i] = conv_input(x, window_in, d, start, end - (K - 1) + i, c, Ch, K);
        memcpy(window_out + (size_t)d * Ch * (K - 1), next, (size_t)Ch * (K - 1) * sizeof(float));
    }
    free(next);
}

// dpre = dy·silu'(pre); dw[c, j] += dpre·input(t − (K−1) + j); the same product with w goes to dx
// or, for taps before the document start, to dwindow_in. dw is summed over all T in double.
void conv1d_silu_backward(float *dx, float *dw, float *dwindow_in, const float *dy, const float *x, const float *w,
                          const float *window_in, const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K) {
    double *dw_acc = dw ? hy_calloc((size_t)Ch * K, sizeof(double)) : NULL;
    for (int d = 0; d < n_docs; d++) {
        int start = cu_seqlens[d], end = cu_seqlens[d + 1];
        for (int t = start; t < end; t++)
            for (int c = 0; c < Ch; c++) {
                double a = conv_preact(x, w, window_in, d, start, t, c, Ch, K);
                double s = sigmoid(a);
                double dpre = dy[(size_t)t * Ch + c] * s * (1.0 + a * (1.0 - s));
                for (int j = 0; j < K; j++) {
                    int p = t - (K - 1) + j;
                    if (dw_acc) dw_acc[(size_t)c * K + j] += dpre * conv_input(x, window_in, d, start, p, c, Ch, K);
                    float g_in = (float)(dpre * w[(size_t)c * K + j]);
                    if (p >= start) {
                        if (dx) dx[(size_t)p * Ch + c] += g_in;
                    } else if (dwindow_in && start - p <= K - 1) {
                        dwindow_in[((size_t)d * Ch + c) * (K - 1) + (K - 1 - (start - p))] += g_in;
                    }
                }
            }
    }
    if (dw_acc) {
        for (size_t i = 0; i < (size_t)Ch * K; i++) dw[i] += (float)dw_acc[i];
        free(dw_acc);
    }
}
