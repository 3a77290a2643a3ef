// Chat template: renders a conversation as the ChatML text docs/model.md specifies, and reads
// conversations from JSON.
//
// Each message becomes "<|im_start|>{role}\n{content}<|im_end|>\n"; add_generation_prompt appends
// "<|im_start|>assistant\n". Nothing else is added: no default system message, no BOS, and the last
// message ends with <|im_end|>\n like every other one. (OLMo 3's released templates, as reproduced
// in public code, differ: they insert a default system prompt when there is none, end a final
// assistant turn with <|endoftext|> and, for Think, open the generation prompt with "<think>".
// model.md is the spec here; a caller that wants those conventions writes them into the messages.)
#ifndef HY_CHAT_TEMPLATE_H
#define HY_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "model/tokenizer.h"

typedef struct {
    char *role;  // non-empty, without NUL or newline ("system", "user", "assistant", "tool", ...)
    char *content;  // UTF-8, content_len bytes (may contain NUL), NUL-terminated as well
    size_t content_len;
} hy_chat_message;

// Renders n messages (n may be 0) into a new NUL-terminated string (*text, caller frees; *len
// excludes the NUL). Fails on a message with a missing or malformed role or missing content.
int hy_chat_render(const hy_chat_message *msgs, int n, int add_generation_prompt, char **text, size_t *len);

// Renders, then encodes the text (special tokens in it are recognised, no BOS): the ids a model
// is prompted or trained with. *ids: caller frees.
int hy_chat_encode(const hy_tokenizer *t, const hy_chat_message *msgs, int n, int add_generation_prompt, int32_t **ids,
                   int *n_ids);

// Reads [{"role": "...", "content": "..."}, ...]. `where` names the source in messages (e.g.
// "prompts.jsonl line 12"); errors name the index and field, e.g. "<where>: messages[2].content:
// expected a string". Copies the strings: *msgs does not refer to arr afterwards.
int hy_chat_messages_from_json(const json_t *arr, const char *where, hy_chat_message **msgs, int *n);
void hy_chat_messages_free(hy_chat_message *msgs, int n);

#endif
