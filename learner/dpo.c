// DPO data, step and loop task (see dpo.h).
#include "dpo.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/jsonl.h"
#include "../model/chat_template.h"
#include "json_fields.h"

void hy_dpo_data_init(hy_dpo_data *d) {
    memset(d, 0, sizeof *d);
    hy_dataset_init(&d->ds);
}

void hy_dpo_data_free(hy_dpo_data *d) {
    hy_dataset_free(&d->ds);
    memset(d, 0, sizeof *d);
}

void hy_dpo_data_add(hy_dpo_data *d, const int32_t *prompt, int n_prompt, const int32_t *chosen, int n_chosen,
                     const int32_t *rejected, int n_rejected) {
    hy_token_buf b = {0};
    for (int r = 0; r < 2; r++) {
        b.n = 0;
        hy_token_buf_append(&b, prompt, n_prompt, 0);
        hy_token_buf_append(&b, r ? rejected : chosen, r ? n_rejected : n_chosen, 1);
        hy_dataset_add(&d->ds, b.ids, b.mask, b.n);
    }
    d->n_pairs++;
    hy_token_buf_free(&b);
}

static int encode(hy_token_buf *b, const hy_tokenizer *tok, const char *text, size_t len, uint8_t mask) {
    int32_t *ids = NULL;
    int n = 0;
    if (hy_tokenizer_encode(tok, text, len, &ids, &n)) return -1;
    hy_token_buf_append(b, ids, n, mask);
    free(ids);
    return 0;
}

// One ChatML turn in pieces (header, content, <|im_end|>, "\n"), content and <|im_end|> with mask
// `trained`: the same pieces as sft's train-on assistant, so masks are exact.
static int encode_turn(hy_token_buf *b, const hy_tokenizer *tok, const char *role, const char *content, size_t len,
                       uint8_t trained) {
    char header[300];
    const int n = snprintf(header, sizeof header, "<|im_start|>%.280s\n", role);
    return encode(b, tok, header, (size_t)n, 0) || encode(b, tok, content, len, trained) ||
                   encode(b, tok, "<|im_end|>", 10, trained) || encode(b, tok, "\n", 1, 0)
               ? -1
               : 0;
}

// A conversation: assistant turns trained when `train_assistant`, nothing else.
static int encode_messages(hy_token_buf *b, const hy_tokenizer *tok, const json_t *v, const char *where,
                           const char *field, int train_assistant) {
    char at[4400];
    snprintf(at, sizeof at, "%s: field '%s'", where, field);
    hy_chat_message *msgs = NULL;
    int n = 0;
    if (hy_chat_messages_from_json(v, at, &msgs, &n)) return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = encode_turn(b, tok, msgs[i].role, msgs[i].content, msgs[i].content_len,
                         train_assistant && !strcmp(msgs[i].role, "assistant"));
    hy_chat_messages_free(msgs, n);
    return rc ? hy_fail_prefix("%s", at) : 0;
}

static int need_tokenizer(const hy_tokenizer *tok, const char *where, const char *field) {
    if (tok) return 0;
    return hy_fail("%s: field '%s' needs a tokenizer: put tokenizer.json in the model directory or pass --tokenizer "
                   "FILE (or give prompt_tokens, chosen_tokens, rejected_tokens)",
                   where, field);
}

// The response `field` after a prompt (chat when the prompt was a conversation).
static int encode_response(hy_token_buf *b, const hy_tokenizer *tok, const json_t *v, int chat, const char *where,
                           const char *field) {
    if (need_tokenizer(tok, where, field)) return -1;
    if (json_is_array(v)) return encode_messages(b, tok, v, where, field, 1);
    if (!json_is_string(v)) return hy_fail("%s: field '%s' must be a string or an array of messages", where, field);
    if (chat)
        return encode_turn(b, tok, "assistant", json_string_value(v), json_string_length(v), 1)
                   ? hy_fail_prefix("%s: field '%s'", where, field)
                   : 0;
    return encode(b, tok, json_string_value(v), json_string_length(v), 1) ? hy_fail_prefix("%s: field '%s'", where, field)
                                                                          : 0;
}

// One line → the two sequences in b[0] (chosen) and b[1] (rejected).
static int read_pair(const json_t *obj, const hy_tokenizer *tok, const hy_dpo_data_options *o, const char *where,
                     hy_token_buf *b) {
    static const char *const resp[2] = {"chosen", "rejected"};
    const json_t *pt = json_object_get(obj, "prompt_tokens");
    if (pt) {
        static const char *const resp_tok[2] = {"chosen_tokens", "rejected_tokens"};
        for (int r = 0; r < 2; r++) {
            if (hy_json_token_ids(pt, where, "prompt_tokens", o->vocab, &b[r], 0)) return -1;
            const json_t *v = json_object_get(obj, resp_tok[r]);
            if (!v) return hy_fail("%s: field '%s' is missing (with prompt_tokens)", where, resp_tok[r]);
            if (hy_json_token_ids(v, where, resp_tok[r], o->vocab, &b[r], 1)) return -1;
        }
        return 0;
    }
    const json_t *prompt = json_object_get(obj, "prompt");
    if (!prompt) prompt = json_object_get(obj, "messages");
    for (int r = 0; r < 2; r++) {
        const json_t *v = json_object_get(obj, resp[r]);
        if (!v) return hy_fail("%s: field '%s' is missing", where, resp[r]);
        int chat = 0;
        if (prompt) {
            if (need_tokenizer(tok, where, "prompt")) return -1;
            if (json_is_array(prompt)) {
                chat = 1;
                if (encode_messages(&b[r], tok, prompt, where, "prompt", 0)) return -1;
            } else if (json_is_string(prompt)) {
                if (encode(&b[r], tok, json_string_value(prompt), json_string_length(prompt), 0))
                    return hy_fail_prefix("%s: field 'prompt'", where);
            } else {
                return hy_fail("%s: field 'prompt' must be a string or an array of messages", where);
            }
        } else if (!json_is_array(v)) {
            return hy_fail("%s: field 'prompt' is missing (a text response needs a prompt)", where);
        }
        if (encode_response(&b[r], tok, v, chat, where, resp[r])) return -1;
        for (int i = 0; i < b[r].n; i++)
            if (b[r].ids[i] >= o->vocab)
                return hy_fail("%s: field '%s': token id %d is outside the vocabulary [0, %d)", where, resp[r],
                               b[r].ids[i], o->vocab);
    }
    return 0;
}

static int targets_of(const hy_token_buf *b) {
    int n = 0;
    for (int i = 1; i < b->n; i++) n += b->mask[i];
    return n;
}

typedef struct {
    hy_dpo_data *d;
    const hy_tokenizer *tok;
    const hy_dpo_data_options *o;
    hy_token_buf b[2];
} dpo_load_ctx;

static int dpo_load_line(json_t *obj, const char *where, void *ctx) {
    dpo_load_ctx *c = ctx;
    const hy_dpo_data_options *o = c->o;
    hy_token_buf *b = c->b;
    b[0].n = b[1].n = 0;
    if (read_pair(obj, c->tok, o, where, b)) return -1;
    for (int k = 0; k < 2; k++)
        if (o->max_seq_len > 0 && b[k].n > o->max_seq_len) {
            b[k].n = o->max_seq_len;
            c->d->n_truncated++;
        }
    if (o->max_tokens > 0 && b[0].n + b[1].n > o->max_tokens)
        return hy_fail("%s: the pair has %d tokens (chosen %d + rejected %d), more than a micro-batch of %d tokens "
                       "(raise micro-batch-tokens or set max-seq-len)",
                       where, b[0].n + b[1].n, b[0].n, b[1].n, o->max_tokens);
    if (targets_of(&b[0]) == 0 || targets_of(&b[1]) == 0) {
        c->d->n_dropped++;
        return 0;
    }
    for (int k = 0; k < 2; k++) hy_dataset_add(&c->d->ds, b[k].ids, b[k].mask, b[k].n);
    c->d->n_pairs++;
    return 0;
}

int hy_dpo_data_load(hy_dpo_data *d, const char *path, const hy_tokenizer *tok, const hy_dpo_data_options *o) {
    hy_dpo_data_init(d);
    dpo_load_ctx c = {d, tok, o, {{0}, {0}}};
    long lines;
    int rc = hy_jsonl_each(path, dpo_load_line, &c, &lines);
    hy_token_buf_free(&c.b[0]);
    hy_token_buf_free(&c.b[1]);
    if (!rc && lines == 0) rc = hy_fail("%s: empty input (no JSON lines)", path);
    if (!rc && d->n_pairs == 0)
        rc = hy_fail("%s: no pair has a response token left to train on (%d dropped)", path, d->n_dropped);
    if (rc) hy_dpo_data_free(d);
    return rc;
}

void hy_dpo_stepper_init(hy_dpo_stepper *x, hy_trainer *t, const hy_dpo_data *d, const loss_dpo_opts *loss,
                         int micro_tokens) {
    memset(x, 0, sizeof *x);
    x->t = t;
    x->d = d;
    x->loss = *loss;
    x->micro_tokens = micro_tokens;
    x->ref_seq = hy_calloc((size_t)d->ds.n + 1, sizeof *x->ref_seq);
}

void hy_dpo_stepper_free(hy_dpo_stepper *x) {
    free(x->ref_seq);
    hy_unit_batch_free(&x->ub);
    memset(x, 0, sizeof *x);
}

void hy_dpo_set_reference(hy_dpo_stepper *x, const float *ref_tok) {
    const hy_dataset *ds = &x->d->ds;
    for (int s = 0; s < ds->n; s++) {
        double sum = 0.0;
        for (int64_t i = ds->start[s] + 1; i < ds->start[s + 1]; i++)
            if (ds->mask[i]) sum += ref_tok[i];
        x->ref_seq[s] = sum;
    }
}

void hy_dpo_prepare(hy_dpo_stepper *x, const int *pairs, int k) {
    int *seqs = hy_malloc(sizeof *seqs * (size_t)(2 * k + 1)), *start = hy_malloc(sizeof *start * (size_t)(k + 1));
    for (int p = 0; p < k; p++) {
        seqs[2 * p] = 2 * pairs[p];
        seqs[2 * p + 1] = 2 * pairs[p] + 1;
        start[p] = 2 * p;
    }
    start[k] = 2 * k;
    hy_pack_units(&x->d->ds, seqs, start, k, x->micro_tokens, &x->ub);
    x->loss.n_global = k;
    memset(&x->stats, 0, sizeof x->stats);
    free(seqs);
    free(start);
}

int hy_dpo_loss_fn(void *ctx, int i, const hy_micro_batch *mb, const float *logp, float *dlogp, double *loss) {
    hy_dpo_stepper *x = ctx;
    const int n_pairs = mb->n_docs / 2;
    uint8_t *mask = hy_malloc((size_t)mb->T + 1);
    int32_t *chosen = hy_malloc(sizeof *chosen * (size_t)(n_pairs + 1)),
            *rejected = hy_malloc(sizeof *rejected * (size_t)(n_pairs + 1));
    double *ref = hy_malloc(sizeof *ref * (size_t)(mb->n_docs + 1));
    for (int t = 0; t < mb->T; t++) mask[t] = mb->targets[t] >= 0;
    // units are appended whole, chosen first: documents 2j, 2j + 1 are pair j
    for (int j = 0; j < n_pairs; j++) {
        chosen[j] = 2 * j;
        rejected[j] = 2 * j + 1;
    }
    for (int doc = 0; doc < mb->n_docs; doc++) ref[doc] = x->ref_seq[x->ub.doc_seq[i][doc]];
    const loss_tokens tok = {mb->T, mb->n_docs, mb->cu_seqlens, logp, mask};
    const loss_dpo_pairs pairs = {n_pairs, chosen, rejected, ref};
    loss_dpo_stats st;
    const int rc = loss_dpo(&tok, &pairs, &x->loss, loss, dlogp, &st);
    if (!rc) {
        // stats are means over this call's pairs: combine as sums, divided in hy_dpo_step
        loss_dpo_stats *a = &x->stats;
        a->n_pairs += st.n_pairs;
        a->reward_accuracy += st.reward_accuracy * st.n_pairs;
        a->margin_mean += st.margin_mean * st.n_pairs;
        a->chosen_reward_mean += st.chosen_reward_mean * st.n_pairs;
        a->rejected_reward_mean += st.rejected_reward_mean * st.n_pairs;
    }
    free(mask);
    free(chosen);
    free(rejected);
    free(ref);
    return rc ? hy_fail_prefix("DPO loss, micro-batch %d", i) : 0;
}

int hy_dpo_step(hy_dpo_stepper *x, double lr, hy_step_stats *st) {
    memset(&x->stats, 0, sizeof x->stats);
    if (hy_trainer_step_custom(x->t, &x->ub.sb, hy_dpo_loss_fn, x, lr, st)) return -1;
    loss_dpo_stats *a = &x->stats;
    // data-parallel: each rank saw only its micro-batches' pairs
    double sums[5] = {a->n_pairs, a->reward_accuracy, a->margin_mean, a->chosen_reward_mean, a->rejected_reward_mean};
    if (hy_trainer_sum_over_ranks(x->t, sums, 5)) return -1;
    a->n_pairs = (int)sums[0];
    a->reward_accuracy = sums[1];
    a->margin_mean = sums[2];
    a->chosen_reward_mean = sums[3];
    a->rejected_reward_mean = sums[4];
    if (a->n_pairs > 0) {
        a->reward_accuracy /= a->n_pairs;
        a->margin_mean /= a->n_pairs;
        a->chosen_reward_mean /= a->n_pairs;
        a->rejected_reward_mean /= a->n_pairs;
    }
    return 0;
}

static int dpo_task_step(void *ctx, long s, const int *idx, int k, double lr, hy_step_stats *st, char *extra,
                         size_t n) {
    (void)s;
    hy_dpo_stepper *x = ctx;
    hy_dpo_prepare(x, idx, k);
    if (hy_dpo_step(x, lr, st)) return -1;
    const loss_dpo_stats *a = &x->stats;
    snprintf(extra, n, ", \"pairs\": %d", a->n_pairs);
    hy_json_member_append(extra, n, "reward_accuracy", a->reward_accuracy);
    hy_json_member_append(extra, n, "margin", a->margin_mean);
    hy_json_member_append(extra, n, "chosen_reward", a->chosen_reward_mean);
    hy_json_member_append(extra, n, "rejected_reward", a->rejected_reward_mean);
    return 0;
}

hy_loop_task hy_dpo_loop_task(hy_dpo_stepper *x) {
    return (hy_loop_task){x->d->n_pairs, x->d->ds.hash, "pair", dpo_task_step, x};
}
