// Prefix snapshot cache: slot images (GDN states, conv windows, KV rows) of prompts already
// prefilled, so a later request whose prompt starts with one of them loads the state instead of
// recomputing it.
//
// Entries are keyed by (a 64-bit FNV-1a hash of the token prefix, the weight version) and keep
// their tokens, so a hash collision can never hand out a wrong state. A snapshot is only valid for
// the weights that computed it: bumping the weight version clears the cache. Host memory, bounded
// by a byte budget; the least recently used entries go first. Each entry also keeps the logits
// row of its last token, so a request whose whole prompt is cached samples at once.
#ifndef HY_PREFIX_CACHE_H
#define HY_PREFIX_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"

typedef struct {
    int32_t *tokens;
    int n;
    uint32_t version;
    uint64_t hash;
    hy_slot_image img;  // img.len == n
    float *logits;      // (V) next-token logits after the prefix
    uint64_t last_use;
} hy_prefix_entry;

typedef struct {
    hy_prefix_entry *e;
    int n, cap;
    size_t budget, bytes;
    int V;
    uint64_t clock, hits, misses;
} hy_prefix_cache;

void hy_prefix_cache_init(hy_prefix_cache *pc, size_t budget_bytes, int V);
void hy_prefix_cache_free(hy_prefix_cache *pc);
// Hash of tokens[0..n) under a weight version.
uint64_t hy_prefix_hash(const int32_t *tokens, int n, uint32_t version);
// Stores a snapshot of tokens[0..n), taking img and logits (V floats, malloc'd) over; evicts the
// least recently used entries to make room. An entry larger than the whole budget, or a prefix
// already stored, is dropped (its memory freed). Returns 1 when stored.
int hy_prefix_cache_put(hy_prefix_cache *pc, const int32_t *tokens, int n, uint32_t version, hy_slot_image *img,
                        float *logits);
// The longest stored prefix of tokens[0..n) under version (at most n tokens), or NULL.
const hy_prefix_entry *hy_prefix_cache_find(hy_prefix_cache *pc, const int32_t *tokens, int n, uint32_t version);
// Drops every entry (weights changed).
void hy_prefix_cache_clear(hy_prefix_cache *pc);

#endif
