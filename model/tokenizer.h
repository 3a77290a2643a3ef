// Tokenizer for OLMo (dolma2): a reader of HF tokenizer.json for byte-level BPE that encodes and
// decodes exactly as HF `tokenizers` does.
//
// Encoding runs HF's pipeline: (1) added tokens (<|endoftext|>, <|im_start|>, ...) are cut out of
// the text first, leftmost-longest, honouring their lstrip/rstrip/single_word/normalized flags;
// (2) each remaining segment goes through the pre-tokenizer (the Split regex, then ByteLevel);
// (3) each piece is merged by BPE rank. Special tokens written inside the text are recognised, as
// HF's encode(text, add_special_tokens=False) does; nothing is added around the text (the dolma2
// tokenizer has no BOS; the caller appends EOS where it wants one).
//
// Decoding maps ids back to token strings (an added token to its content), drops special tokens
// when asked, undoes the byte-level alphabet and repairs partial UTF-8 with U+FFFD per maximal
// ill-formed subpart, as HF's ByteLevel decoder (String::from_utf8_lossy) does.
//
// Supported tokenizer.json: model BPE (merges as "a b" strings or [a, b] pairs; no dropout, no
// byte fallback, no subword prefix/suffix), normalizer null, pre_tokenizer per tokenizer_pretok.h,
// decoder ByteLevel, post_processor null/ByteLevel/TemplateProcessing (these add nothing when no
// special tokens are requested), truncation and padding null. Anything else fails at load.
//
// A loaded tokenizer is immutable: encode and decode may run from many threads at once.
#ifndef HY_TOKENIZER_H
#define HY_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct hy_tokenizer hy_tokenizer;

// Loads and validates tokenizer.json. Errors (0/-1, hy_last_error) name the file and the field,
// e.g. "<path>: model.merges[12]: ...".
int hy_tokenizer_load(hy_tokenizer **out, const char *path);
void hy_tokenizer_free(hy_tokenizer *t);

// Encodes text[0..len) (UTF-8; may contain NUL bytes). On success *ids is a new array of *n_ids
// ids (caller frees; NULL when the text yields no tokens). Ill-formed UTF-8 is rejected with a
// message giving the byte offset.
int hy_tokenizer_encode(const hy_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids);

// Decodes n ids into a new NUL-terminated UTF-8 string (*text, caller frees; *len excludes the
// NUL). skip_special drops tokens marked "special" in added_tokens (e.g. <|im_end|>, not the
// non-special <|extra_id_1|>). An id outside [0, vocab size) or without a token fails, naming it.
int hy_tokenizer_decode(const hy_tokenizer *t, const int32_t *ids, int n, int skip_special, char **text, size_t *len);

// Id of a token given by its tokenizer.json spelling (added-token content such as "<|im_end|>",
// or a vocabulary entry in byte-level form such as "Ġthe"); -1 if absent.
int hy_tokenizer_token_id(const hy_tokenizer *t, const char *token);

// Highest id in the vocabulary or added tokens, plus one (100278 for dolma2; the model's embedding
// has more rows, 100352, padded for speed).
int hy_tokenizer_vocab_size(const hy_tokenizer *t);

// Whether id is an added token marked special (0 for other and out-of-range ids).
int hy_tokenizer_is_special(const hy_tokenizer *t, int32_t id);

#endif
