// Requests in flight and the trajectories that came back for them: the bookkeeping that makes
// delivery exactly-once for whoever generates (the colocated engine or remote workers).
//
// A request is added with its n; each trajectory is filed under (request_id, sample_index). The
// first arrival of a sample is kept; a second one (a worker that was given up on and came back, a
// request sent again after a worker died) is counted as a duplicate and dropped, as is one for a
// request the table does not hold (already handed over, or never sent). A request is complete when
// all n samples are in; take hands its trajectories over (in sample order) and forgets the request,
// so nothing is delivered twice.
#ifndef HY_ROLLOUT_REQUEST_TABLE_H
#define HY_ROLLOUT_REQUEST_TABLE_H

#include <stdint.h>

#include "proto/messages.h"

typedef struct {
    proto_gen_request req;   // a deep copy (for sending again)
    proto_trajectory *traj;  // (req.n)
    uint8_t *got;            // (req.n)
    uint32_t received;
    int owner;               // who is generating it (a worker index; −1 = nobody yet)
    double sent_at;          // when it went to its owner (seconds, monotonic)
} hy_request_entry;

typedef struct {
    hy_request_entry *e;
    int n, cap;
    uint64_t duplicates, unknown;  // trajectories dropped, by reason
} hy_request_table;

void hy_request_table_init(hy_request_table *t);
void hy_request_table_free(hy_request_table *t);
// Adds a deep copy of r (owner −1). −1 when its id is already held.
int hy_request_table_add(hy_request_table *t, const proto_gen_request *r);
hy_request_entry *hy_request_table_find(hy_request_table *t, uint64_t request_id);
// Files *tr (taken over on 1; left to the caller otherwise). 1 = kept, 0 = dropped (duplicate or
// unknown request: the caller frees it).
int hy_request_table_file(hy_request_table *t, proto_trajectory *tr);
// 1 when request_id is complete: *out (n, in sample order; caller frees each and the array), and
// the request is removed. 0 otherwise (still incomplete, or unknown).
int hy_request_table_take(hy_request_table *t, uint64_t request_id, proto_trajectory **out, int *n);

#endif
