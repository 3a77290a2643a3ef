// Helpers shared by the subcommands: loading a model directory with its optional tokenizer,
// turning one JSONL input object into token ids, and reporting errors the same way everywhere.
#ifndef HY_CLI_COMMON_H
#define HY_CLI_COMMON_H

#include <jansson.h>
#include <stdint.h>

#include "../model/model.h"
#include "../model/tokenizer.h"

// Prints "hybrid <cmd>: error: <last error>" to stderr; returns 1 (the exit code).
int cli_error(const char *cmd);
// Loads DIR (config.json + safetensors; or "preset:NAME", the preset's shape with zero weights, for
// processes that receive their weights: rollout workers, benchmarks) onto the backend named by device ("cpu", "cuda", "auto"
// or NULL = auto) and a tokenizer: tokenizer_path if given, else DIR/tokenizer.json if it exists,
// else none (*tok = NULL). cli_unload_model releases all three.
int cli_load_model(const char *dir, const char *tokenizer_path, const char *device, hy_model *m, hy_tokenizer **tok);
void cli_unload_model(hy_model *m, hy_tokenizer *tok);
// One input object: {"tokens":[...]}, {"text":"..."} or {"messages":[...]} (ChatML, no generation
// prompt) → ids. where ("file:line") prefixes every message.
int cli_input_tokens(const json_t *obj, const hy_tokenizer *tok, const char *where, int32_t **ids, int *n);
// Copies a file (used to keep model directories self-contained with their tokenizer.json).
int cli_copy_file(const char *from, const char *to);
// The path of the running hybrid binary (to start workers and ranks). 0 / −1.
int cli_self_exe(char *path, size_t n);
// The tokenizer a command used: the --tokenizer path, else DIR/tokenizer.json when it exists.
const char *cli_tokenizer_path(const char *dir, const char *tokenizer_arg, char *buf, size_t n);
// Renders a JSON array of {role, content} as ChatML (with the assistant generation prompt when
// asked). where prefixes error messages.
int cli_render_messages(const json_t *messages, const char *where, int add_generation_prompt, char **text,
                        size_t *len);
// Reads every line of a JSONL input file in order, turns it into ids (cli_input_tokens), refuses
// empty sequences and ids outside the model's vocabulary, and hands each sequence to on_sequence
// (with its "file:line"). Stops at the first bad line or callback failure; returns the number of
// sequences handed over, or −1 (message names file:line). An input with no lines is an error.
typedef int (*cli_sequence_fn)(void *ctx, const int32_t *ids, int n, const char *where);
long cli_for_each_sequence(const char *path, const hy_model *m, const hy_tokenizer *tok, cli_sequence_fn on_sequence,
                           void *ctx);
// Parses "1,2,3" into ids.
int cli_parse_id_list(const char *text, int32_t **ids, int *n);

// An engine memory budget: "2GiB", "512MiB", "1e9" (bytes) or "0.5" (≤ 1: a fraction of free
// memory); exactly one of *bytes, *fraction is non-zero. 0 / −1 (message names --memory).
int cli_parse_memory(const char *text, size_t *bytes, double *fraction);

// A task: a registered name (evals/task.h) with "key=value,..." params (NULL or "" = defaults) and
// seed, else a JSONL file (a name ending in .jsonl, or any existing file; params then add to
// path=...). label (n bytes): what summaries and the run store call it — the name with its
// parameters, or the file's base name. 0 / −1.
typedef struct hy_task hy_task;
int cli_open_task(const char *name, const char *params, uint64_t seed, hy_task **t, char *label, size_t n);

#endif
