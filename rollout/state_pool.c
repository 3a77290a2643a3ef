// Pool sizing and slot hand-out (see state_pool.h).
#include "state_pool.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/hy_error.h"

const char *hy_bytes_text(size_t bytes, char *buf, size_t n) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

int hy_pool_plan_make(const hy_config *cfg, size_t act_bytes, size_t budget, int max_seqs, int max_len,
                      int block_size, hy_pool_plan *out) {
    if (max_seqs <= 0) return hy_fail("rollout pool: max_seqs must be positive (got %d)", max_seqs);
    if (max_len <= 0) return hy_fail("rollout pool: max_len must be positive (got %d)", max_len);
    if (block_size <= 0 || block_size > 4096)
        return hy_fail("rollout pool: block_size must be in [1, 4096] (got %d)", block_size);
    hy_pool_plan p = {0, 0, block_size, max_len, hy_cache_slot_bytes(cfg), 0, 0};
    p.block_bytes = hy_cache_block_bytes(cfg, act_bytes, block_size);
    // a model without attention layers has zero-byte blocks: count them as one byte so the
    // arithmetic below stays finite (the pool then holds max_blocks per slot, costing nothing)
    const size_t block = p.block_bytes ? p.block_bytes : 1, slot = p.slot_bytes ? p.slot_bytes : 1;
    const long max_blocks = (max_len + block_size - 1) / block_size;
    const size_t one_seq = slot + (size_t)max_blocks * block;
    char a[32], b[32], c[32];
    if (budget < one_seq)
        return hy_fail("rollout pool: a memory budget of %s cannot hold one sequence of %d tokens (needs %s: %s of "
                       "GDN state + %ld KV blocks)",
                       hy_bytes_text(budget, a, sizeof a), max_len, hy_bytes_text(one_seq, b, sizeof b),
                       hy_bytes_text(p.slot_bytes, c, sizeof c), max_blocks);
    long s = (long)(budget / (slot + block));
    if (s > max_seqs) s = max_seqs;
    while (s > 1 && (size_t)s * slot + (size_t)(s > max_blocks ? s : max_blocks) * block > budget) s--;
    long blocks = (long)((budget - (size_t)s * slot) / block);
    if (blocks > s * max_blocks) blocks = s * max_blocks;
    if (blocks > 1L << 30) blocks = 1L << 30;
    p.n_slots = (int)s;
    p.n_blocks = (int)blocks;
    p.total_bytes = (size_t)s * p.slot_bytes + (size_t)blocks * p.block_bytes;
    *out = p;
    return 0;
}

void hy_pool_plan_describe(const hy_pool_plan *p, char *buf, size_t n) {
    char tot[32], sl[32], bl[32];
    const long max_blocks = (p->max_len + p->block_size - 1) / p->block_size;
    long full = p->n_blocks / max_blocks;
    if (full > p->n_slots) full = p->n_slots;
    const long each = (long)p->n_blocks * p->block_size / p->n_slots;
    snprintf(buf, n,
             "rollout pool %s: %d slots x %s fp32 GDN state, %d KV blocks x %d tokens x %s; fits %ld sequences "
             "of %d tokens (max_len), or %d of %ld tokens each",
             hy_bytes_text(p->total_bytes, tot, sizeof tot), p->n_slots, hy_bytes_text(p->slot_bytes, sl, sizeof sl),
             p->n_blocks, p->block_size, hy_bytes_text(p->block_bytes, bl, sizeof bl), full, p->max_len, p->n_slots,
             each < p->max_len ? each : p->max_len);
}

int hy_pool_cache_init(hy_cache *c, const hy_model *m, const hy_pool_plan *p) {
    hy_cache_spec spec = {p->n_slots, p->max_len, p->n_blocks, p->block_size};
    return hy_cache_init_spec(c, m, &spec);
}

void hy_slot_pool_init(hy_slot_pool *p, int n_slots) {
    p->n_slots = n_slots;
    p->free_ids = hy_malloc(sizeof(int) * (size_t)(n_slots ? n_slots : 1));
    for (int i = 0; i < n_slots; i++) p->free_ids[i] = n_slots - 1 - i;
    p->n_free = n_slots;
}

void hy_slot_pool_free(hy_slot_pool *p) {
    free(p->free_ids);
    p->free_ids = NULL;
    p->n_free = 0;
}

int hy_slot_take(hy_slot_pool *p) { return p->n_free ? p->free_ids[--p->n_free] : -1; }

void hy_slot_give(hy_slot_pool *p, int slot) { p->free_ids[p->n_free++] = slot; }
