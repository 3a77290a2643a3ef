// A byte-level tokenizer.json for small demo models: the 256 GPT-2 byte-level characters with
// id = byte value and no merges, so token b is byte b, plus four special tokens after them.
//
// The dolma2 tokenizer's 100k-row embedding and lm_head dominate the cost of a model as small as
// the `demo` preset; 260 tokens do not. The file is generated (by `hybrid init --preset demo`)
// rather than committed, and has the dolma2 file's structure (normalizer null, the same Split +
// ByteLevel pre_tokenizer, ByteLevel decoder, added tokens also listed in model.vocab), so both
// hy_tokenizer_load and HF `tokenizers` read it. Encoding text without special tokens in it gives
// its UTF-8 bytes as ids; decoding is the inverse.
#ifndef HY_TOKENIZER_BYTES_H
#define HY_TOKENIZER_BYTES_H

// Ids of the special tokens (all "special": true in added_tokens). HY_BYTES_N_TOKENS is the
// tokenizer's vocabulary size; a model pads its embedding rows past it.
enum {
    HY_BYTES_ENDOFTEXT = 256,  // <|endoftext|>
    HY_BYTES_PAD = 257,  // <|pad|>
    HY_BYTES_IM_START = 258,  // <|im_start|>
    HY_BYTES_IM_END = 259,  // <|im_end|>
    HY_BYTES_N_TOKENS = 260,
};

// Writes the tokenizer.json to path (through a temporary file renamed into place, so a reader
// never sees half a file). 0, or -1 with a message naming the path.
int hy_tokenizer_bytes_write(const char *path);

#endif
