// SFT training data: JSONL lines → token sequences with loss masks, held in memory.
//
// Lines (one JSON object each; blank lines skipped):
//   {"tokens": [ids], "mask": [0/1, ...]}  "mask" optional (default: all ones), same length as tokens
//   {"text": "..."}                        every token trained
//   {"messages": [{"role", "content"}]}    ChatML (model/chat_template.h); with train_on assistant only
//                                          assistant turns' content tokens and their closing <|im_end|>
//                                          are trained — not role headers, not the "\n" after
//                                          <|im_end|>, not other turns
// mask[i] = 1 means token i is a training target: the loss includes the prediction of token i from
// tokens 0..i−1 (mask[0] is therefore never used).
//
// With train_on assistant each message is encoded in pieces — "<|im_start|>role\n", the content,
// "<|im_end|>", "\n" — so every token belongs to exactly one piece and the mask is exact. Special
// tokens are cut out before pre-tokenization, so this equals encoding the rendered conversation
// whole except where content starts with whitespace that BPE would merge with the header's "\n";
// there the pieces are what the model sees at inference, where the prompt ends at that "\n" and the
// content is generated on its own. train_on all encodes the rendered text whole, like `score`.
//
// Every line is validated before anything trains (errors name file:line and field). Sequences are
// cut to max_seq_len; a sequence with no target left is dropped and counted (a conversation without
// an assistant turn, a one-token line). The hash covers every kept token and mask bit in file
// order, so a resumed run can refuse data that changed.
#ifndef HY_SFT_DATA_H
#define HY_SFT_DATA_H

#include <stdint.h>

#include "../model/tokenizer.h"

typedef enum { HY_TRAIN_ON_ASSISTANT, HY_TRAIN_ON_ALL } hy_train_on;

typedef struct {
    hy_train_on train_on;  // for {"messages"} lines
    int max_seq_len;       // 0 = no limit; longer sequences keep their first max_seq_len tokens
    int max_tokens;        // 0 = no limit; a (cut) sequence longer than this is an error
    int vocab;             // ids must lie in [0, vocab)
} hy_sft_data_options;

typedef struct {
    int32_t *tokens;   // (total) every sequence, concatenated
    uint8_t *mask;     // (total) 1 = training target
    int64_t *start;    // (n + 1) sequence i is [start[i], start[i + 1])
    int32_t *n_targets;  // (n) targets of sequence i (its mask over positions 1..)
    int n, cap;
    int64_t total, cap_tokens;
    int n_dropped, n_truncated;
    uint64_t hash;
} hy_dataset;

void hy_dataset_init(hy_dataset *ds);
void hy_dataset_free(hy_dataset *ds);
// Appends a sequence (mask NULL = all ones). Used by the loader and by tests.
void hy_dataset_add(hy_dataset *ds, const int32_t *tokens, const uint8_t *mask, int n);
// Reads every line of path into ds (initialised here). 0 / −1 (message names file:line and field;
// ds is empty then). An input without lines, or with no sequence left to train on, is an error.
int hy_dataset_load_jsonl(hy_dataset *ds, const char *path, const hy_tokenizer *tok, const hy_sft_data_options *o);

#endif
