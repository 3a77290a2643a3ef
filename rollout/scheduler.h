// One step's plan for the running sequences: which tokens of which sequence go into the batch.
//
// Policy (docs/rollout.md, "Scheduling"): every running sequence with one pending token decodes in
// every step (the decode batch covers them all); prefill of the others is chunked and interleaved:
// pieces are taken in admission order while they fit the step's token budget, and the first one
// always, so prefill progresses under any decode load. A piece ends at the next multiple of chunk
// positions of its sequence (or at the trajectory's end), so where a sequence's pieces fall depends
// on that sequence alone, never on the batch: with batch-invariant ops (the CPU backend) a
// sequence then computes exactly the same numbers however it is batched.
#ifndef HY_SCHEDULER_H
#define HY_SCHEDULER_H

typedef struct {
    int fed;      // tokens already in the cache
    int pending;  // tokens of the trajectory not yet in the cache (≥ 1 to be scheduled)
} hy_sched_seq;

typedef struct {
    int seq;  // index into the caller's table
    int n;    // tokens of that sequence in this step, from position fed
} hy_sched_piece;

// seqs (n) in admission order. Writes the pieces (decode ones first, then prefill) to out (n) and
// returns their number. chunk ≥ 1, budget ≥ 1 tokens.
int hy_sched_plan(const hy_sched_seq *seqs, int n, int chunk, int budget, hy_sched_piece *out);

#endif
