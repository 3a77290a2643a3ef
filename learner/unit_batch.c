// Packing whole units of sequences into micro-batches (see unit_batch.h).
#include "unit_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

static int seq_len(const hy_dataset *ds, int s) { return (int)(ds->start[s + 1] - ds->start[s]); }


// Appends sequence s of ds as the next document of micro-batch i, remembering which sequence it is.
static void mb_append(hy_unit_batch *ub, int i, const hy_dataset *ds, int s) {
    hy_micro_batch *mb = &ub->sb.mb[i];
    if (mb->n_docs + 1 > ub->doc_seq_cap[i]) {
        ub->doc_seq_cap[i] = 2 * (mb->n_docs + 1);
        ub->doc_seq[i] = hy_realloc(ub->doc_seq[i], sizeof **ub->doc_seq * (size_t)ub->doc_seq_cap[i]);
    }
    ub->doc_seq[i][mb->n_docs] = s;
    const int count = hy_micro_batch_append(mb, ds, s);
    ub->sb.tokens += seq_len(ds, s);
    ub->sb.targets += count;
    ub->sb.sequences++;
}

static int open_micro_batch(hy_unit_batch *ub) {
    hy_step_batch *sb = &ub->sb;
    if (sb->n == sb->cap) {
        const int cap = 2 * sb->cap + 4;
        sb->mb = hy_realloc(sb->mb, sizeof *sb->mb * (size_t)cap);
        memset(sb->mb + sb->cap, 0, sizeof *sb->mb * (size_t)(cap - sb->cap));
        ub->doc_seq = hy_realloc(ub->doc_seq, sizeof *ub->doc_seq * (size_t)cap);
        ub->doc_seq_cap = hy_realloc(ub->doc_seq_cap, sizeof *ub->doc_seq_cap * (size_t)cap);
        for (int i = sb->cap; i < cap; i++) {
            ub->doc_seq[i] = NULL;
            ub->doc_seq_cap[i] = 0;
        }
        sb->cap = ub->cap = cap;
    }
    hy_micro_batch_reset(&sb->mb[sb->n]);
    return sb->n++;
}

void hy_pack_units(const hy_dataset *ds, const int *seqs, const int *unit_start, int n_units, int budget,
                   hy_unit_batch *out) {
    hy_step_batch *sb = &out->sb;
    sb->n = 0;
    sb->tokens = sb->targets = 0;
    sb->sequences = 0;
    for (int u = 0; u < n_units; u++) {
        int len = 0;
        for (int k = unit_start[u]; k < unit_start[u + 1]; k++) len += seq_len(ds, seqs[k]);
        if (budget > 0 && len > budget) {
            fprintf(stderr, "hybrid: internal error: unit %d (%d tokens) exceeds the micro-batch budget %d\n", u, len,
                    budget);
            abort();
        }
        int target = -1;
        for (int j = 0; j < sb->n && target < 0; j++)
            if (budget == 0 || sb->mb[j].T + len <= budget) target = j;
        if (target < 0) target = open_micro_batch(out);
        for (int k = unit_start[u]; k < unit_start[u + 1]; k++) mb_append(out, target, ds, seqs[k]);
    }
}

void hy_unit_batch_free(hy_unit_batch *b) {
    for (int i = 0; i < b->cap; i++) free(b->doc_seq[i]);
    free(b->doc_seq);
    free(b->doc_seq_cap);
    hy_step_batch_free(&b->sb);
    memset(b, 0, sizeof *b);
}
