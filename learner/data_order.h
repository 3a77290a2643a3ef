// The order sequences are trained in: a fresh permutation per epoch, drawn from one seeded stream,
// with a position that a checkpoint records so a resumed run continues with the very next sequence.
//
// The stream is an hy_rng seeded once; at the start of each epoch the permutation (Fisher–Yates) is
// drawn from it. What a checkpoint keeps is the stream's state *before* the current epoch's draw,
// the epoch and the position in it: restoring redraws the same permutation and leaves the stream
// where the uninterrupted run had it, so later epochs match too. Batches never straddle epochs: the
// last one of an epoch may be short, and the next call starts the new epoch.
#ifndef HY_DATA_ORDER_H
#define HY_DATA_ORDER_H

#include "../common/rng.h"

typedef struct {
    int n;              // sequences
    int shuffle;        // 0: file order every epoch
    hy_rng rng;         // the stream, after the current epoch's draw
    hy_rng epoch_rng;   // the stream before it: what a checkpoint stores
    long epoch;         // current epoch, 0-based (−1 before the first)
    int pos;            // next index into perm
    int *perm;          // (n) this epoch's order
} hy_data_order;

void hy_data_order_init(hy_data_order *o, int n, uint64_t seed, int shuffle);
// Continues from a stored (epoch_rng, epoch, pos) (see the design comment); −1 when pos > n.
int hy_data_order_restore(hy_data_order *o, int n, int shuffle, const hy_rng *epoch_rng, long epoch, int pos);
void hy_data_order_free(hy_data_order *o);
// The next batch: up to batch_size indices (0 = the rest of the epoch) into out; returns how many.
int hy_data_order_next(hy_data_order *o, int batch_size, int *out);

#endif
