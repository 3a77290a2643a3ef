// Prefix snapshot cache (see prefix_cache.h). A linear table: it holds tens of entries (each is a
// whole sequence state), so lookups by scanning are cheaper than keeping an index in step.
#include "prefix_cache.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

static const uint64_t FNV_OFFSET = 1469598103934665603ull, FNV_PRIME = 1099511628211ull;

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

uint64_t hy_prefix_hash(const int32_t *tokens, int n, uint32_t version) {
    uint64_t h = fnv_bytes(FNV_OFFSET, &version, sizeof version);
    return fnv_bytes(h, tokens, sizeof(int32_t) * (size_t)n);
}

void hy_prefix_cache_init(hy_prefix_cache *pc, size_t budget_bytes, int V) {
    memset(pc, 0, sizeof *pc);
    pc->budget = budget_bytes;
    pc->V = V;
}

static size_t entry_bytes(const hy_prefix_cache *pc, const hy_prefix_entry *e) {
    return e->img.bytes + sizeof(float) * (size_t)pc->V + sizeof(int32_t) * (size_t)e->n;
}

static void drop(hy_prefix_cache *pc, int i) {
    hy_prefix_entry *e = &pc->e[i];
    pc->bytes -= entry_bytes(pc, e);
    hy_slot_image_free(&e->img);
    free(e->logits);
    free(e->tokens);
    pc->e[i] = pc->e[--pc->n];
}

void hy_prefix_cache_clear(hy_prefix_cache *pc) {
    while (pc->n) drop(pc, pc->n - 1);
}

void hy_prefix_cache_free(hy_prefix_cache *pc) {
    hy_prefix_cache_clear(pc);
    free(pc->e);
    memset(pc, 0, sizeof *pc);
}

static int matches(const hy_prefix_entry *e, const int32_t *tokens, int n, uint32_t version, uint64_t hash) {
    return e->n <= n && e->version == version && e->hash == hash &&
           !memcmp(e->tokens, tokens, sizeof(int32_t) * (size_t)e->n);
}

int hy_prefix_cache_put(hy_prefix_cache *pc, const int32_t *tokens, int n, uint32_t version, hy_slot_image *img,
                        float *logits) {
    hy_prefix_entry e = {0};
    e.n = n;
    e.version = version;
    e.hash = hy_prefix_hash(tokens, n, version);
    e.img = *img;
    e.logits = logits;
    memset(img, 0, sizeof *img);
    const size_t need = entry_bytes(pc, &e);
    int stored = need <= pc->budget;
    for (int i = 0; i < pc->n && stored; i++)
        if (pc->e[i].n == n && matches(&pc->e[i], tokens, n, version, e.hash)) stored = 0;
    if (!stored) {
        hy_slot_image_free(&e.img);
        free(e.logits);
        return 0;
    }
    while (pc->bytes + need > pc->budget) {
        int lru = 0;
        for (int i = 1; i < pc->n; i++)
            if (pc->e[i].last_use < pc->e[lru].last_use) lru = i;
        drop(pc, lru);
    }
    e.tokens = hy_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    memcpy(e.tokens, tokens, sizeof(int32_t) * (size_t)n);
    e.last_use = ++pc->clock;
    if (pc->n == pc->cap) {
        pc->cap = pc->cap ? 2 * pc->cap : 8;
        pc->e = hy_realloc(pc->e, sizeof *pc->e * (size_t)pc->cap);
    }
    pc->e[pc->n++] = e;
    pc->bytes += need;
    return 1;
}

const hy_prefix_entry *hy_prefix_cache_find(hy_prefix_cache *pc, const int32_t *tokens, int n, uint32_t version) {
    hy_prefix_entry *best = NULL;
    for (int i = 0; i < pc->n; i++) {
        hy_prefix_entry *e = &pc->e[i];
        if (e->n > n || (best && e->n <= best->n)) continue;
        if (matches(e, tokens, n, version, hy_prefix_hash(tokens, e->n, version))) best = e;
    }
    if (best) {
        best->last_use = ++pc->clock;
        pc->hits++;
    } else {
        pc->misses++;
    }
    return best;
}
