// Stop rules (see stop.h).
#include "stop.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

const char *hy_finish_name(hy_finish f) {
    switch (f) {
    case HY_FINISH_EOS: return "eos";
    case HY_FINISH_STOP_STRING: return "stop";
    case HY_FINISH_LENGTH: return "length";
    case HY_FINISH_MAX_LEN: return "max_len";
    default: return "none";
    }
}

int hy_stop_rules_init(hy_stop_rules *r, const hy_config *cfg, const hy_tokenizer *tok, int ignore_eos,
                       const char *const *stop, int n_stop, int max_tokens, const char *where) {
    memset(r, 0, sizeof *r);
    if (max_tokens <= 0) return hy_fail("%s: max_tokens must be at least 1 (got %d)", where, max_tokens);
    if (n_stop < 0 || n_stop > HY_MAX_STOP_STRINGS)
        return hy_fail("%s: at most %d stop strings (got %d)", where, HY_MAX_STOP_STRINGS, n_stop);
    if (n_stop && !tok) return hy_fail("%s: stop strings need a tokenizer (the engine has none)", where);
    for (int i = 0; i < n_stop; i++) {
        const size_t len = stop[i] ? strlen(stop[i]) : 0;
        if (len == 0 || len > HY_MAX_STOP_BYTES)
            return hy_fail("%s: stop[%d] must be 1 to %d bytes long (got %zu)", where, i, HY_MAX_STOP_BYTES, len);
    }
    if (!ignore_eos) {
        r->n_eos = cfg->n_eos;
        memcpy(r->eos_ids, cfg->eos_token_ids, sizeof(int) * (size_t)cfg->n_eos);
    }
    for (int i = 0; i < n_stop; i++) {
        r->stop[i] = hy_strdup(stop[i]);
        const int len = (int)strlen(stop[i]);
        if (len > r->max_stop_bytes) r->max_stop_bytes = len;
    }
    r->n_stop = n_stop;
    r->max_tokens = max_tokens;
    r->tok = tok;
    return 0;
}

void hy_stop_rules_free(hy_stop_rules *r) {
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

static int matches_stop_string(const hy_stop_rules *r, const int32_t *gen, int n, int *which) {
    int w = r->max_stop_bytes + STOP_WINDOW_SLACK;
    if (w > n) w = n;
    // ids the tokenizer does not know (embedding padding rows) have no text
    const int known = hy_tokenizer_vocab_size(r->tok);
    int32_t *ids = hy_malloc(sizeof(int32_t) * (size_t)w);
    int k = 0;
    for (int i = n - w; i < n; i++)
        if (gen[i] < known) ids[k++] = gen[i];
    char *text = NULL;
    size_t len = 0;
    int found = 0;
    if (k && !hy_tokenizer_decode(r->tok, ids, k, 0, &text, &len)) {
        for (int s = 0; s < r->n_stop && !found; s++)
            if (memmem(text, len, r->stop[s], strlen(r->stop[s]))) {
                *which = s;
                found = 1;
            }
    }
    free(text);
    free(ids);
    return found;
}

hy_finish hy_stop_check(const hy_stop_rules *r, const int32_t *gen, int n, int *which) {
    *which = -1;
    for (int i = 0; i < r->n_eos; i++)
        if (gen[n - 1] == r->eos_ids[i]) return HY_FINISH_EOS;
    if (r->n_stop && matches_stop_string(r, gen, n, which)) return HY_FINISH_STOP_STRING;
    if (n >= r->max_tokens) return HY_FINISH_LENGTH;
    return HY_FINISH_NONE;
}
