// A parallel for-loop over host threads, for independent per-item work on the host's cores (the
// rollout engine samples one row of 100k logits per sequence per decode step: at 64 sequences that
// is most of a step on one core).
//
// The threads are started on first use and kept (one pool per process): a decode step is a few
// milliseconds, too short to start threads each time. The calling thread works too. Items are
// handed out one at a time from a shared counter, so uneven items balance; which thread runs an
// item must not matter to the result (each item writes only its own outputs). Calls from several
// threads at once are serialised.
#ifndef HY_PARALLEL_H
#define HY_PARALLEL_H

// Threads of the pool: HY_THREADS if set (1 = everything on the caller), else the online cores,
// at most 64.
int hy_parallel_threads(void);
// fn(ctx, i) for every i in [0, n), on the pool; returns when all are done.
void hy_parallel_for(int n, void (*fn)(void *ctx, int i), void *ctx);

#endif
