// Packing one optimizer step's sequences into micro-batches under a token budget.
//
// A micro-batch is a packed hy_batch (documents back to back, cu_seqlens boundaries: the model
// restarts GDN state, conv windows and attention at each) plus next-token targets that honour the
// loss masks: targets[i] = tokens[i + 1] when token i + 1 is a training target of the same
// document, else −1. Placement is first-fit in the step's order — each sequence goes to the first
// micro-batch with room, or opens a new one — which fills micro-batches well without sorting, is
// deterministic, and keeps the data order visible. Because the trainer normalises the loss by the
// step's global counts, how sequences fall into micro-batches changes the gradient only by rounding.
#ifndef HY_PACKING_H
#define HY_PACKING_H

#include <stdint.h>

#include "../model/model.h"
#include "sft_data.h"

typedef struct {
    int32_t *tokens;       // (T)
    int32_t *targets;      // (T) −1 = no loss at this position
    int32_t *cu_seqlens;   // (n_docs + 1)
    int32_t *doc_targets;  // (n_docs) targets per document
    int T, n_docs, n_targets;
    int cap_T, cap_docs;
} hy_micro_batch;

typedef struct {
    hy_micro_batch *mb;  // (n) micro-batches; buffers are reused from step to step
    int n, cap;
    long tokens, targets;  // over all micro-batches
    int sequences;
} hy_step_batch;

// Packs sequences idx[0..n) of ds into out (its previous content is replaced). budget: most tokens
// per micro-batch, 0 = one micro-batch for the whole step. A sequence longer than the budget is an
// internal error (the loader refuses those), and aborts.
void hy_pack_step(const hy_dataset *ds, const int *idx, int n, int budget, hy_step_batch *out);
void hy_step_batch_free(hy_step_batch *b);
// Empties a micro-batch, keeping (or making) its buffers.
void hy_micro_batch_reset(hy_micro_batch *mb);
// Appends sequence seq of ds as the next document (targets = next tokens where the mask trains
// them, −1 elsewhere); returns how many targets it brought.
int hy_micro_batch_append(hy_micro_batch *mb, const hy_dataset *ds, int seq);
// The model's view of a micro-batch.
hy_batch hy_micro_batch_view(const hy_micro_batch *mb);

#endif
