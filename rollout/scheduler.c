// Step planning (see scheduler.h).
#include "scheduler.h"

int hy_sched_plan(const hy_sched_seq *seqs, int n, int chunk, int budget, hy_sched_piece *out) {
    int k = 0, used = 0;
    for (int i = 0; i < n; i++)
        if (seqs[i].pending == 1) {
            out[k++] = (hy_sched_piece){i, 1};
            used++;
        }
    int prefill_pieces = 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i].pending <= 1) continue;
        int end = (seqs[i].fed / chunk + 1) * chunk;  // the next chunk boundary of this sequence
        if (end > seqs[i].fed + seqs[i].pending) end = seqs[i].fed + seqs[i].pending;
        const int len = end - seqs[i].fed;
        if (prefill_pieces && used + len > budget) continue;
        out[k++] = (hy_sched_piece){i, len};
        used += len;
        prefill_pieces++;
    }
    return k;
}
