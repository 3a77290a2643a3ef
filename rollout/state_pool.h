// Sizing the rollout state pool from a memory budget, and handing out its sequence slots.
//
// The pool is two arenas made once at start-up (hy_cache): per-slot fp32 GDN states + conv
// windows (fixed size per sequence, whatever its length) and the paged KV blocks of the attention
// layers (shared, taken as sequences grow). The plan is the single source of truth for both sizes;
// nothing is grown mid-run. Policy (docs/rollout.md, "Pool sizing"): as many slots as max_seqs
// allows while one sequence of max_len still fits beside them, each slot with at least one block;
// the rest of the budget is KV blocks, no more than all slots at max_len could use.
#ifndef HY_STATE_POOL_H
#define HY_STATE_POOL_H

#include <stddef.h>

#include "../model/model.h"

typedef struct {
    int n_slots, n_blocks, block_size, max_len;
    size_t slot_bytes;   // one slot's GDN states + conv windows (fp32)
    size_t block_bytes;  // one KV block over all attention layers (activation type)
    size_t total_bytes;  // n_slots·slot_bytes + n_blocks·block_bytes ≤ the budget
} hy_pool_plan;

// −1 with a message when budget cannot hold one sequence of max_len (the message says how much
// it needs) or an argument is out of range.
int hy_pool_plan_make(const hy_config *cfg, size_t act_bytes, size_t budget, int max_seqs, int max_len,
                      int block_size, hy_pool_plan *out);
// One line: budget use and how many sequences of which length fit.
void hy_pool_plan_describe(const hy_pool_plan *p, char *buf, size_t n);
// The cache the plan describes.
int hy_pool_cache_init(hy_cache *c, const hy_model *m, const hy_pool_plan *p);
// "1.5 GiB"-style text of a byte count (buf of ≥ 16 bytes).
const char *hy_bytes_text(size_t bytes, char *buf, size_t n);

// Free sequence slots: a stack, lowest ids first.
typedef struct {
    int *free_ids, n_free, n_slots;
} hy_slot_pool;
void hy_slot_pool_init(hy_slot_pool *p, int n_slots);
void hy_slot_pool_free(hy_slot_pool *p);
int hy_slot_take(hy_slot_pool *p);  // a free slot, or −1 when none
void hy_slot_give(hy_slot_pool *p, int slot);

#endif
