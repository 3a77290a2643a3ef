// Token embedding: forward gathers table rows, backward scatter-adds the output gradient back.
//
// Backward walks tokens in order, so a row hit by several tokens sums their gradients in token
// order (deterministic). The row skip_id is left alone because nn.Embedding(padding_idx=...) never
// gives the padding row a gradient; training on pad-filled batches must not move it either.
#include "../ops_cpu.h"

#include <string.h>

void embedding_forward(float *out, const int32_t *ids, const float *table, int T, int C) {
    for (int t = 0; t < T; t++) memcpy(out + (size_t)t * C, table + (size_t)ids[t] * C, (size_t)C * sizeof(float));
}

void embedding_backward(float *dtable, const int32_t *ids, const float *dout, int T, int C, int skip_id) {
    if (!dtable) return;
    for (int t = 0; t < T; t++) {
        if (ids[t] == skip_id) continue;
        float *row = dtable + (size_t)ids[t] * C;
        const float *g = dout + (size_t)t * C;
        for (int c = 0; c < C; c++) row[c] += g[c];
    }
}
