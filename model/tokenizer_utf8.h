// UTF-8 helpers for the tokenizer: strict validation of input text, HF-compatible lossy repair of
// decoded bytes, and GPT-2's byte-level alphabet.
//
// Decoding token ids can end in the middle of a character (a token may hold one byte of an emoji),
// so decoded bytes are repaired the way Rust's String::from_utf8_lossy does, which is what HF's
// ByteLevel decoder calls: each maximal ill-formed subpart (Unicode 3.9, "best practice" for U+FFFD
// substitution) becomes one U+FFFD. Encoding, on the other hand, rejects ill-formed input instead of
// guessing, because HF can never see such text (Python and Rust strings are always valid).
#ifndef HY_TOKENIZER_UTF8_H
#define HY_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

// Length of the well-formed sequence at s[0..n) (1..4), or 0 when s starts an ill-formed one;
// *bad_len then receives the length of the maximal ill-formed subpart (at least 1).
int hy_utf8_seq_len(const unsigned char *s, size_t n, int *bad_len);

// Offset of the first ill-formed byte, or n when the whole buffer is well-formed.
size_t hy_utf8_first_invalid(const char *s, size_t n);

// Writes s with every maximal ill-formed subpart replaced by U+FFFD into a new NUL-terminated
// buffer (*out, caller frees; *out_len excludes the NUL).
void hy_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len);

// GPT-2 byte-level alphabet: byte b is shown as code point hy_byte_to_cp(b) (printable bytes as
// themselves, the rest as U+0100 + k). hy_cp_to_byte returns -1 for code points outside it.
uint32_t hy_byte_to_cp(unsigned char b);
int hy_cp_to_byte(uint32_t cp);

// Decodes one code point from well-formed UTF-8 (caller guarantees well-formedness); returns its
// length in bytes.
int hy_utf8_decode_cp(const unsigned char *s, uint32_t *cp);
// Encodes cp (< 0x110000, not a surrogate) into out[0..4); returns the length.
int hy_utf8_encode_cp(uint32_t cp, char *out);

#endif
