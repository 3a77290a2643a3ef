// Packing whole units of sequences (DPO pairs, RL sequences) into micro-batches, remembering which
// dataset sequence each document is.
//
// Like packing.h (first-fit in the step's order, masked next-token targets), but a unit — the two
// sequences of a preference pair, say — always lands in one micro-batch, because its loss needs all
// of its members' logprobs before any gradient exists. The per-document sequence index lets a loss
// find what it keeps per sequence (reference logprobs, rollout logprobs, advantages).
#ifndef HY_UNIT_BATCH_H
#define HY_UNIT_BATCH_H

#include <stdint.h>

#include "packing.h"
#include "sft_data.h"

typedef struct {
    hy_step_batch sb;
    int32_t **doc_seq;  // (sb.cap) per micro-batch: (n_docs) dataset sequence of each document
    int *doc_seq_cap;   // (sb.cap)
    int cap;
} hy_unit_batch;

// Packs units u = 0..n_units) of ds — unit u is the sequences seqs[unit_start[u] .. unit_start[u + 1])
// — into out (previous content replaced; buffers reused). budget: most tokens per micro-batch, 0 =
// one micro-batch. A unit longer than the budget is an internal error (loaders refuse those): aborts.
void hy_pack_units(const hy_dataset *ds, const int *seqs, const int *unit_start, int n_units, int budget,
                   hy_unit_batch *out);
void hy_unit_batch_free(hy_unit_batch *b);

#endif
