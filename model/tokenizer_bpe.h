// Byte-level BPE model: the vocabulary (token string -> id), the merge table ((left id, right id)
// -> rank, merged id) and the merge loop that turns one pre-tokenized piece into ids.
//
// Pieces arrive as raw bytes; each byte starts as the id of its one-character byte-level token, so
// the merge loop never handles the GPT-2 alphabet itself. Token strings in the vocabulary are kept
// in their byte-level form, as tokenizer.json spells them.
#ifndef HY_TOKENIZER_BPE_H
#define HY_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hy_bpe hy_bpe;

// Per-call working memory for hy_bpe_encode_piece, so one hy_bpe serves many threads at once.
typedef struct {
    int32_t *sym;  // (n) current token id of each live symbol
    int32_t *prev;  // (n) index of the previous live symbol, -1 at the start
    int32_t *next;  // (n) index of the next live symbol, -1 at the end
    struct hy_bpe_merge *heap;
    size_t cap, heap_cap;
} hy_bpe_scratch;

hy_bpe *hy_bpe_new(size_t vocab_hint, size_t merges_hint);
void hy_bpe_free(hy_bpe *m);

// Adds a vocabulary entry (byte-level spelling). Returns -1 (no message) when the string is
// already present; the first id stays.
int hy_bpe_add_token(hy_bpe *m, const char *s, size_t len, int32_t id);
// Id of a vocabulary string, -1 when absent.
int32_t hy_bpe_lookup(const hy_bpe *m, const char *s, size_t len);
// Registers merge number `rank` of (left, right) into merged. A repeated pair takes the later
// rank, as HF's map construction does.
void hy_bpe_add_merge(hy_bpe *m, int32_t left, int32_t right, uint32_t rank, int32_t merged);
// The id of the one-character token of every byte (all 256 must be set before encoding).
void hy_bpe_set_byte_id(hy_bpe *m, unsigned char byte, int32_t id);
// HF's ignore_merges: a piece that is itself a vocabulary entry maps to that id directly.
void hy_bpe_set_ignore_merges(hy_bpe *m, int on);

// Appends the ids of one piece (raw bytes, n >= 1) to *ids (grown with hy_realloc; *n_ids and
// *cap track its length and capacity). Merges apply lowest rank first, leftmost first among equal
// ranks, exactly HF's order.
void hy_bpe_encode_piece(const hy_bpe *m, const unsigned char *piece, size_t n, hy_bpe_scratch *scratch, int32_t **ids,
                         size_t *n_ids, size_t *cap);
void hy_bpe_scratch_free(hy_bpe_scratch *s);

#endif
