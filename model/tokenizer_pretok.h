// Pre-tokenizer of a byte-level BPE tokenizer.json: the chain of Split steps (a regex or literal,
// a delimiter behaviour, invert) that cuts text into pieces, ending in the ByteLevel step.
//
// Supported: `pre_tokenizer` = ByteLevel, or Sequence[Split..., ByteLevel] with ByteLevel last and
// present exactly once. ByteLevel's byte-to-character mapping is left to the BPE model, which
// works on raw bytes, so pieces stay raw bytes throughout. Anything else fails at load with a
// message naming the field, instead of tokenizing differently from HF.
#ifndef HY_TOKENIZER_PRETOK_H
#define HY_TOKENIZER_PRETOK_H

#include <jansson.h>
#include <stddef.h>

typedef struct hy_pretok hy_pretok;

// A list of pieces whose bytes live in one growing buffer.
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off, *plen;  // (n) start and length of each piece in buf
    size_t n, cap_n;
} hy_pieces;

// Parses and compiles the pre_tokenizer object; `path` only names the file in messages.
int hy_pretok_parse(hy_pretok **out, const json_t *pre_tokenizer, const char *path);
void hy_pretok_free(hy_pretok *p);

// Per-call state (match data, piece buffers), so one hy_pretok serves many threads.
typedef struct hy_pretok_ctx hy_pretok_ctx;
hy_pretok_ctx *hy_pretok_ctx_new(void);
void hy_pretok_ctx_free(hy_pretok_ctx *c);

// Cuts text[0..n) (well-formed UTF-8, no added tokens inside) into pieces, non-empty, in order.
// The returned list belongs to ctx and is valid until the next call. Returns NULL with a message
// when the regex engine gives up (a PCRE2 resource limit).
const hy_pieces *hy_pretok_run(const hy_pretok *p, hy_pretok_ctx *ctx, const char *text, size_t n);

#endif
