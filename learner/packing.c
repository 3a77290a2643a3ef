// First-fit packing of a step's sequences into micro-batches (see packing.h).
#include "packing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

void hy_micro_batch_reset(hy_micro_batch *mb) {
    mb->T = 0;
    mb->n_docs = 0;
    mb->n_targets = 0;
    if (!mb->cu_seqlens) {
        mb->cap_docs = 16;
        mb->cu_seqlens = hy_malloc(sizeof *mb->cu_seqlens * (size_t)(mb->cap_docs + 1));
        mb->doc_targets = hy_malloc(sizeof *mb->doc_targets * (size_t)mb->cap_docs);
    }
    mb->cu_seqlens[0] = 0;
}

int hy_micro_batch_append(hy_micro_batch *mb, const hy_dataset *ds, int seq) {
    const int64_t s0 = ds->start[seq];
    const int n = (int)(ds->start[seq + 1] - s0);
    if (mb->T + n > mb->cap_T) {
        mb->cap_T = 2 * (mb->T + n);
        mb->tokens = hy_realloc(mb->tokens, sizeof *mb->tokens * (size_t)mb->cap_T);
        mb->targets = hy_realloc(mb->targets, sizeof *mb->targets * (size_t)mb->cap_T);
    }
    if (mb->n_docs + 1 > mb->cap_docs) {
        mb->cap_docs *= 2;
        mb->cu_seqlens = hy_realloc(mb->cu_seqlens, sizeof *mb->cu_seqlens * (size_t)(mb->cap_docs + 1));
        mb->doc_targets = hy_realloc(mb->doc_targets, sizeof *mb->doc_targets * (size_t)mb->cap_docs);
    }
    int32_t *tok = mb->tokens + mb->T, *tgt = mb->targets + mb->T;
    memcpy(tok, ds->tokens + s0, sizeof *tok * (size_t)n);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const int trained = i + 1 < n && ds->mask[s0 + i + 1];
        tgt[i] = trained ? tok[i + 1] : -1;
        count += trained;
    }
    mb->doc_targets[mb->n_docs] = count;
    mb->n_targets += count;
    mb->T += n;
    mb->cu_seqlens[++mb->n_docs] = mb->T;
    return count;
}

void hy_pack_step(const hy_dataset *ds, const int *idx, int n, int budget, hy_step_batch *out) {
    out->n = 0;
    out->tokens = out->targets = 0;
    out->sequences = n;
    for (int k = 0; k < n; k++) {
        const int seq = idx[k];
        const int len = (int)(ds->start[seq + 1] - ds->start[seq]);
        if (budget > 0 && len > budget) {
            fprintf(stderr, "hybrid: internal error: sequence %d (%d tokens) exceeds the micro-batch budget %d\n", seq,
                    len, budget);
            abort();
        }
        int target = -1;
        for (int j = 0; j < out->n && target < 0; j++)
            if (budget == 0 || out->mb[j].T + len <= budget) target = j;
        if (target < 0) {
            if (out->n == out->cap) {
                out->cap = 2 * out->cap + 4;
                out->mb = hy_realloc(out->mb, sizeof *out->mb * (size_t)out->cap);
                memset(out->mb + out->n, 0, sizeof *out->mb * (size_t)(out->cap - out->n));
            }
            target = out->n++;
            hy_micro_batch_reset(&out->mb[target]);
        }
        hy_micro_batch_append(&out->mb[target], ds, seq);
        out->tokens += len;
        out->targets += ds->n_targets[seq];
    }
}

void hy_step_batch_free(hy_step_batch *b) {
    for (int i = 0; i < b->cap; i++) {
        free(b->mb[i].tokens);
        free(b->mb[i].targets);
        free(b->mb[i].cu_seqlens);
        free(b->mb[i].doc_targets);
    }
    free(b->mb);
    memset(b, 0, sizeof *b);
}

hy_batch hy_micro_batch_view(const hy_micro_batch *mb) {
    return (hy_batch){mb->tokens, mb->cu_seqlens, mb->T, mb->n_docs};
}
