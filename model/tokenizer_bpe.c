// Byte-level BPE: vocabulary and merge maps plus the merge loop (see tokenizer_bpe.h).
//
// Both maps are open-addressing hash tables with linear probing, sized to a power of two at least
// twice the expected entries and grown when half full, so probes stay short. The merge loop keeps
// the symbols of a piece in a doubly linked list over an array and the candidate merges in a binary
// min-heap keyed by (rank, position); a popped candidate is stale when its left symbol was merged
// away or its pair no longer yields the same token, and is then skipped. That is HF's algorithm, so
// ties resolve identically, and a piece of n bytes costs O(n log n) rather than the O(n^2) of
// rescanning for the best pair after every merge (pieces can be 100 KB of letters).
#include "model/tokenizer_bpe.h"

#include "common/hy_error.h"
#include "model/tokenizer_utf8.h"

#include <stdlib.h>
#include <string.h>

struct hy_bpe_merge {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
};

typedef struct {
    uint64_t key;  // left << 32 | right; UINT64_MAX marks an empty slot
    uint32_t rank;
    int32_t merged;
} pair_slot;

typedef struct {
    uint64_t hash;
    size_t offset;  // into hy_bpe.text
    uint32_t len;
    int32_t id;
} vocab_entry;

struct hy_bpe {
    char *text;  // all vocabulary strings back to back
    size_t text_len, text_cap;
    vocab_entry *entries;
    size_t n_entries, entries_cap;
    int32_t *vocab_slots;  // index into entries, -1 when empty
    size_t vocab_mask;
    pair_slot *pairs;
    size_t n_pairs, pair_mask;
    int32_t byte_ids[256];
    int ignore_merges;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

static void vocab_rehash(hy_bpe *m, size_t slots) {
    free(m->vocab_slots);
    m->vocab_slots = hy_malloc(slots * sizeof *m->vocab_slots);
    memset(m->vocab_slots, 0xff, slots * sizeof *m->vocab_slots);
    m->vocab_mask = slots - 1;
    for (size_t e = 0; e < m->n_entries; e++) {
        size_t i = m->entries[e].hash & m->vocab_mask;
        while (m->vocab_slots[i] >= 0) i = (i + 1) & m->vocab_mask;
        m->vocab_slots[i] = (int32_t)e;
    }
}

static void pairs_alloc(hy_bpe *m, size_t slots) {
    m->pairs = hy_malloc(slots * sizeof *m->pairs);
    for (size_t i = 0; i < slots; i++) m->pairs[i].key = UINT64_MAX;
    m->pair_mask = slots - 1;
}

hy_bpe *hy_bpe_new(size_t vocab_hint, size_t merges_hint) {
    hy_bpe *m = hy_calloc(1, sizeof *m);
    vocab_rehash(m, pow2_at_least(2 * vocab_hint));
    pairs_alloc(m, pow2_at_least(2 * merges_hint));
    for (int b = 0; b < 256; b++) m->byte_ids[b] = -1;
    return m;
}

void hy_bpe_free(hy_bpe *m) {
    if (!m) return;
    free(m->text);
    free(m->entries);
    free(m->vocab_slots);
    free(m->pairs);
    free(m);
}

int32_t hy_bpe_lookup(const hy_bpe *m, const char *s, size_t len) {
    uint64_t h = hash_bytes(s, len);
    for (size_t i = h & m->vocab_mask; m->vocab_slots[i] >= 0; i = (i + 1) & m->vocab_mask) {
        const vocab_entry *e = &m->entries[m->vocab_slots[i]];
        if (e->hash == h && e->len == len && memcmp(m->text + e->offset, s, len) == 0) return e->id;
    }
    return -1;
}

int hy_bpe_add_token(hy_bpe *m, const char *s, size_t len, int32_t id) {
    if (hy_bpe_lookup(m, s, len) >= 0) return -1;
    if (2 * (m->n_entries + 1) > m->vocab_mask + 1) vocab_rehash(m, 2 * (m->vocab_mask + 1));
    if (m->n_entries == m->entries_cap) {
        m->entries_cap = m->entries_cap ? 2 * m->entries_cap : 1024;
        m->entries = hy_realloc(m->entries, m->entries_cap * sizeof *m->entries);
    }
    if (m->text_len + len > m->text_cap) {
        while (m->text_len + len > m->text_cap) m->text_cap = m->text_cap ? 2 * m->text_cap : 1 << 16;
        m->text = hy_realloc(m->text, m->text_cap);
    }
    memcpy(m->text + m->text_len, s, len);
    vocab_entry *e = &m->entries[m->n_entries];
    *e = (vocab_entry){.hash = hash_bytes(s, len), .offset = m->text_len, .len = (uint32_t)len, .id = id};
    m->text_len += len;
    size_t i = e->hash & m->vocab_mask;
    while (m->vocab_slots[i] >= 0) i = (i + 1) & m->vocab_mask;
    m->vocab_slots[i] = (int32_t)m->n_entries++;
    return 0;
}

static const pair_slot *pair_find(const hy_bpe *m, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = hash_pair(key) & m->pair_mask; m->pairs[i].key != UINT64_MAX; i = (i + 1) & m->pair_mask)
        if (m->pairs[i].key == key) return &m->pairs[i];
    return NULL;
}

static void pair_put(hy_bpe *m, uint64_t key, uint32_t rank, int32_t merged) {
    size_t i = hash_pair(key) & m->pair_mask;
    while (m->pairs[i].key != UINT64_MAX && m->pairs[i].key != key) i = (i + 1) & m->pair_mask;
    if (m->pairs[i].key == UINT64_MAX) m->n_pairs++;
    m->pairs[i] = (pair_slot){.key = key, .rank = rank, .merged = merged};
}

void hy_bpe_add_merge(hy_bpe *m, int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    if (2 * (m->n_pairs + 1) > m->pair_mask + 1) {
        pair_slot *old = m->pairs;
        size_t old_slots = m->pair_mask + 1;
        pairs_alloc(m, 2 * old_slots);
        m->n_pairs = 0;
        for (size_t i = 0; i < old_slots; i++)
            if (old[i].key != UINT64_MAX) pair_put(m, old[i].key, old[i].rank, old[i].merged);
        free(old);
    }
    pair_put(m, (uint64_t)(uint32_t)left << 32 | (uint32_t)right, rank, merged);
}

void hy_bpe_set_byte_id(hy_bpe *m, unsigned char byte, int32_t id) { m->byte_ids[byte] = id; }

void hy_bpe_set_ignore_merges(hy_bpe *m, int on) { m->ignore_merges = on; }

static int merge_before(const struct hy_bpe_merge *a, const struct hy_bpe_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(hy_bpe_scratch *s, size_t *n, struct hy_bpe_merge item) {
    if (*n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 64;
        s->heap = hy_realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&item, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = item;
}

static struct hy_bpe_merge heap_pop(hy_bpe_scratch *s, size_t *n) {
    struct hy_bpe_merge top = s->heap[0], last = s->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && merge_before(&s->heap[child + 1], &s->heap[child])) child++;
        if (!merge_before(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (*n) s->heap[i] = last;
    return top;
}

static void push_candidate(const hy_bpe *m, hy_bpe_scratch *s, size_t *heap_n, int32_t left_pos) {
    if (left_pos < 0 || s->next[left_pos] < 0) return;
    int32_t right_pos = s->next[left_pos];
    const pair_slot *p = pair_find(m, s->sym[left_pos], s->sym[right_pos]);
    if (p) heap_push(s, heap_n, (struct hy_bpe_merge){.rank = p->rank, .pos = (uint32_t)left_pos, .merged = p->merged});
}

static void append_id(int32_t **ids, size_t *n_ids, size_t *cap, int32_t id) {
    if (*n_ids == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *ids = hy_realloc(*ids, *cap * sizeof **ids);
    }
    (*ids)[(*n_ids)++] = id;
}

// ignore_merges compares the piece's byte-level spelling with the vocabulary.
static int32_t lookup_whole_piece(const hy_bpe *m, const unsigned char *piece, size_t n) {
    char *buf = hy_malloc(2 * n);  // every byte-level character takes one or two bytes
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)hy_utf8_encode_cp(hy_byte_to_cp(piece[i]), buf + len);
    int32_t id = hy_bpe_lookup(m, buf, len);
    free(buf);
    return id;
}

void hy_bpe_encode_piece(const hy_bpe *m, const unsigned char *piece, size_t n, hy_bpe_scratch *s, int32_t **ids,
                         size_t *n_ids, size_t *cap) {
    if (n == 1) {
        append_id(ids, n_ids, cap, m->byte_ids[piece[0]]);
        return;
    }
    if (m->ignore_merges) {
        int32_t whole = lookup_whole_piece(m, piece, n);
        if (whole >= 0) {
            append_id(ids, n_ids, cap, whole);
            return;
        }
    }
    if (n > s->cap) {
        s->cap = n;
        s->sym = hy_realloc(s->sym, n * sizeof *s->sym);
        s->prev = hy_realloc(s->prev, n * sizeof *s->prev);
        s->next = hy_realloc(s->next, n * sizeof *s->next);
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = m->byte_ids[piece[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_candidate(m, s, &heap_n, (int32_t)i);
    while (heap_n) {
        struct hy_bpe_merge top = heap_pop(s, &heap_n);
        int32_t left = (int32_t)top.pos;
        // A merged-away symbol is marked by sym = -1; its heap entries are stale.
        if (s->sym[left] < 0) continue;
        int32_t right = s->next[left];
        if (right < 0) continue;
        const pair_slot *p = pair_find(m, s->sym[left], s->sym[right]);
        if (!p || p->merged != top.merged) continue;
        s->sym[left] = top.merged;
        s->sym[right] = -1;
        s->next[left] = s->next[right];
        if (s->next[right] >= 0) s->prev[s->next[right]] = left;
        push_candidate(m, s, &heap_n, s->prev[left]);
        push_candidate(m, s, &heap_n, left);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) append_id(ids, n_ids, cap, s->sym[i]);
}

void hy_bpe_scratch_free(hy_bpe_scratch *s) {
    free(s->sym);
    free(s->prev);
    free(s->next);
    free(s->heap);
    memset(s, 0, sizeof *s);
}
