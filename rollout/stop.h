// Stop rules of one generation: eos ids, stop strings and the token limit, checked after every
// generated token, and the finish reasons the engine reports.
//
// Stop strings are matched on text, not tokens (a string may be split across tokens any way the
// tokenizer likes): after each token the last few generated tokens are decoded and searched. Each
// token decodes to at least one byte, so a stop string of n bytes that ends in the newest token
// lies within its last n tokens; STOP_WINDOW_SLACK more tokens cover a multi-byte character cut
// at the window's start (its stray bytes decode to U+FFFD before the match, not inside it).
#ifndef HY_STOP_H
#define HY_STOP_H

#include <stdint.h>

#include "../model/config.h"
#include "../model/tokenizer.h"

typedef enum {
    HY_FINISH_NONE = 0,
    HY_FINISH_EOS,          // "eos": an eos id of the config was generated
    HY_FINISH_STOP_STRING,  // "stop": the text of the generated tokens contains a stop string
    HY_FINISH_LENGTH,       // "length": max_tokens generated
    HY_FINISH_MAX_LEN,      // "max_len": the sequence reached the engine's max_len
} hy_finish;

const char *hy_finish_name(hy_finish f);

enum { HY_MAX_STOP_STRINGS = 8, HY_MAX_STOP_BYTES = 256, STOP_WINDOW_SLACK = 4 };

typedef struct {
    int eos_ids[HY_MAX_EOS], n_eos;  // none when ignore_eos
    char *stop[HY_MAX_STOP_STRINGS];
    int n_stop, max_stop_bytes;
    int max_tokens;
    const hy_tokenizer *tok;  // needed when n_stop > 0
} hy_stop_rules;

// Validates and copies the rules; −1 with a message naming where and the field.
int hy_stop_rules_init(hy_stop_rules *r, const hy_config *cfg, const hy_tokenizer *tok, int ignore_eos,
                       const char *const *stop, int n_stop, int max_tokens, const char *where);
void hy_stop_rules_free(hy_stop_rules *r);
// After generated token gen[n − 1] (n tokens generated this turn): the reason to stop, or NONE;
// *which is the index of the matched stop string (−1 otherwise).
hy_finish hy_stop_check(const hy_stop_rules *r, const int32_t *gen, int n, int *which);

#endif
