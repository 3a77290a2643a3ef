// Activation checkpointing (hy_model.recompute_layers) on the CPU reference backend:
//   grads      loss, gradient norm and every gradient element of a trainer step are equal (memcmp)
//              with and without recompute, on a packed batch of 4 ragged documents through GDN and
//              attention layers in both orders (RoPE on, so positions are used by the recompute too)
//   logprobs   the training forward's target logprobs are equal
//   flag       the acts decide: flipping the flag between forward and backward changes nothing
//   memory     what a checkpointed forward holds, and that the backward gives back all it takes
//   inference  an acts-free forward (score, all logits) is unaffected by the flag
//
// Equality is exact because recompute runs the same layer code on the same inputs and the CPU ops
// are deterministic: any difference is a bug (a field not recomputed, a stale buffer), never
// rounding.
//
// Memory is counted in arena blocks, not bytes: the backend table has no byte count, and the CPU
// backend's mark() is the number of live allocations (one calloc each). So mark() after the
// forward minus mark() before is the number of buffers the acts hold. For a checkpointed forward
// that number is exact — 3 index uploads (tokens, cu_seqlens, pos), the embedding output, one
// checkpoint (T, C) per layer, the final norm's rstd and output — and each of the buffers a keeping
// forward holds beyond it is at least T floats.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/rng.h"
#include "../learner/lm_loss.h"
#include "../learner/trainer.h"
#include "../model/acts.h"
#include "../model/model.h"
#include "check.h"

enum { N_DOCS = 4 };
static const int doc_len[N_DOCS] = {70, 3, 45, 29};  // T = 147: not a multiple of the GDN chunk (64)

// The tiny shapes with 5 layers — GDN, attention, GDN, GDN, attention — so each kind both follows
// and precedes the other, and RoPE on.
static void ckpt_model(hy_model *m) {
    hy_config c;
    if (hy_config_preset(&c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
    c.num_hidden_layers = 5;
    const hy_layer_kind kinds[5] = {HY_LAYER_GDN, HY_LAYER_ATTN, HY_LAYER_GDN, HY_LAYER_GDN, HY_LAYER_ATTN};
    memcpy(c.layer_types, kinds, sizeof kinds);
    c.rope = true;
    c.rope_theta = 10000.0f;
    hy_model_init(m, &c, 7);
}

typedef struct {
    int32_t tokens[256], cu[N_DOCS + 1], targets[256];
    hy_batch b;
} packed;

static void packed_batch(packed *p) {
    hy_rng r;
    hy_rng_init(&r, 11);
    p->cu[0] = 0;
    for (int d = 0; d < N_DOCS; d++) p->cu[d + 1] = p->cu[d] + doc_len[d];
    for (int t = 0; t < p->cu[N_DOCS]; t++) p->tokens[t] = 1 + (int32_t)(hy_rng_next(&r) % 250);
    p->b = (hy_batch){p->tokens, p->cu, p->cu[N_DOCS], N_DOCS};
    hy_next_token_targets(&p->b, p->targets);
}

// Loss and gradients (host copy) through the trainer, with the flag as given.
static double trainer_grads(hy_trainer *t, const packed *p, int recompute, float *grads, double *norm) {
    hy_model *m = t->model;
    m->recompute_layers = recompute;
    double loss;
    CHECK(hy_trainer_loss_and_grads(t, &p->b, p->targets, &loss, norm) == 0, "step: %s", hy_last_error());
    m->be->f32_to_host(m->be, grads, t->grads, m->table.total);
    return loss;
}

// The same through the model API, with the flag set to fwd for the forward and bwd for the
// backward. held: arena blocks the acts hold after the forward.
static double direct_grads(hy_model *m, const packed *p, int fwd, int bwd, float *grads, size_t *held) {
    hy_backend *be = m->be;
    float *g = be->alloc_persistent(be, m->table.total * sizeof(float));
    hy_params gp;
    hy_params_bind(&gp, &m->table, &m->cfg, g);
    const size_t start = be->mark(be);
    m->recompute_layers = fwd;
    hy_acts *acts = NULL;
    CHECK(hy_model_forward(m, &p->b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL) == 0, "forward: %s", hy_last_error());
    *held = be->mark(be) - start;
    m->recompute_layers = bwd;
    const size_t before_bwd = be->mark(be);
    hy_act *dxf = be->act_alloc(be, (size_t)p->b.T * m->cfg.hidden_size);
    const double loss = lm_loss_mean_ce(m, hy_acts_final_hidden(acts), p->targets, p->b.T, dxf, gp.lm_head);
    hy_model_backward_hidden(m, acts, dxf, g);
    CHECK(be->mark(be) == before_bwd + 1, "backward (flags %d/%d) leaves %zu blocks, not just dxf", fwd, bwd,
          be->mark(be) - before_bwd);
    be->release(be, before_bwd);
    hy_acts_free(acts);
    CHECK(be->mark(be) == start, "acts free (flags %d/%d) leaves %zu blocks", fwd, bwd, be->mark(be) - start);
    be->f32_to_host(be, grads, g, m->table.total);
    be->free_persistent(be, g);
    return loss;
}

static int all_zero(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

static void test_grads(hy_model *m, const packed *p) {
    printf("grads\n");
    const size_t n = m->table.total;
    float *ref = hy_malloc(n * sizeof(float)), *ckpt = hy_malloc(n * sizeof(float));
    adamw_params hp = {1e-3, 0.9, 0.95, 1e-8, 0.1};
    hy_trainer t;
    hy_trainer_init(&t, m, &hp, 1.0f);
    double norm_ref, norm_ckpt;
    const double loss_ref = trainer_grads(&t, p, 0, ref, &norm_ref);
    const double loss_ckpt = trainer_grads(&t, p, 1, ckpt, &norm_ckpt);
    printf("  loss %.9g / %.9g, grad norm %.9g / %.9g (keep / recompute)\n", loss_ref, loss_ckpt, norm_ref,
           norm_ckpt);
    CHECK(loss_ref == loss_ckpt, "loss %.17g != %.17g", loss_ref, loss_ckpt);
    CHECK(norm_ref == norm_ckpt, "grad norm %.17g != %.17g", norm_ref, norm_ckpt);
    // every tensor, each layer's included, receives a gradient: a layer the recompute skipped
    // would otherwise compare equal as zeros only if the reference were zero too
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        CHECK(!all_zero(ref + s->offset, s->numel), "reference gradient of %s is all zero", s->name);
        CHECK(!memcmp(ref + s->offset, ckpt + s->offset, s->numel * sizeof(float)),
              "gradient of %s differs with recompute", s->name);
    }
    CHECK(!memcmp(ref, ckpt, n * sizeof(float)), "gradient arenas differ");
    hy_trainer_free(&t);
    free(ref);
    free(ckpt);
}

static void test_logprobs(hy_model *m, const packed *p) {
    printf("logprobs\n");
    float ref[256], ckpt[256];
    m->recompute_layers = 0;
    CHECK(hy_model_target_logprobs(m, &p->b, p->targets, ref) == 0, "logprobs: %s", hy_last_error());
    m->recompute_layers = 1;
    CHECK(hy_model_target_logprobs(m, &p->b, p->targets, ckpt) == 0, "logprobs: %s", hy_last_error());
    CHECK(!all_zero(ref, (size_t)p->b.T), "logprobs all zero");
    CHECK(!memcmp(ref, ckpt, sizeof(float) * (size_t)p->b.T), "target logprobs differ with recompute");
    m->recompute_layers = 0;
}

// The flag read by the backward is the one the forward saw, whatever the model says by then; the
// block counts of the same forwards give the memory section its numbers.
static void test_flag_and_memory(hy_model *m, const packed *p) {
    printf("flag, memory\n");
    const size_t n = m->table.total;
    const int L = m->cfg.num_hidden_layers;
    float *ref = hy_malloc(n * sizeof(float)), *g = hy_malloc(n * sizeof(float));
    size_t held_keep, held_ckpt = 0, held;
    const double loss = direct_grads(m, p, 0, 0, ref, &held_keep);
    const int flags[3][2] = {{1, 1}, {1, 0}, {0, 1}};
    for (int i = 0; i < 3; i++) {
        const double l = direct_grads(m, p, flags[i][0], flags[i][1], g, &held);
        CHECK(l == loss && !memcmp(g, ref, n * sizeof(float)), "forward flag %d, backward flag %d: gradients differ",
              flags[i][0], flags[i][1]);
        if (flags[i][0]) held_ckpt = held;
    }
    printf("  arena blocks held after the forward: keep %zu, recompute %zu (L = %d)\n", held_keep, held_ckpt, L);
    CHECK(held_ckpt == (size_t)L + 6, "a checkpointed forward holds %zu blocks, expected L + 6 = %d", held_ckpt, L + 6);
    // beyond its input a keeping forward holds a GDN layer's 25 intermediates and an attention
    // layer's 17 (acts.h), each at least T floats
    CHECK(held_keep >= held_ckpt + 17 * (size_t)L, "a keeping forward holds only %zu blocks", held_keep);

    // what the checkpointed acts hold per layer: the input, nothing else (gdn_saved included)
    m->recompute_layers = 1;
    hy_acts *acts = NULL;
    CHECK(hy_model_forward(m, &p->b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL) == 0, "forward: %s", hy_last_error());
    CHECK(acts->recompute == 1, "acts not marked as checkpointed");
    for (int l = 0; l < L; l++) {
        hy_layer_acts only_x = {0};
        only_x.x = acts->layer[l].x;
        CHECK(only_x.x && (l == 0 || only_x.x != acts->layer[l - 1].x), "layer %d: no checkpoint of its own", l);
        CHECK(!memcmp(&only_x, &acts->layer[l], sizeof only_x), "layer %d keeps more than its input", l);
    }
    hy_acts_free(acts);
    m->recompute_layers = 0;
    free(ref);
    free(g);
}

// hy_model_score and logits-only forwards (acts NULL) never checkpoint: same numbers, nothing held.
static void test_inference(hy_model *m, const packed *p) {
    printf("inference\n");
    hy_backend *be = m->be;
    const int T = p->b.T, V = m->cfg.vocab_size;
    float score[2][256];
    float *logits[2] = {hy_malloc(sizeof(float) * (size_t)T * V), hy_malloc(sizeof(float) * (size_t)T * V)};
    for (int f = 0; f < 2; f++) {
        m->recompute_layers = f;
        const size_t start = be->mark(be);
        CHECK(hy_model_score(m, &p->b, score[f]) == 0, "score: %s", hy_last_error());
        CHECK(hy_model_forward(m, &p->b, HY_LOGITS_ALL, logits[f], NULL, NULL, NULL) == 0, "forward: %s",
              hy_last_error());
        CHECK(be->mark(be) == start, "flag %d: an inference forward leaves %zu blocks", f, be->mark(be) - start);
    }
    const size_t n_lp = (size_t)(T - p->b.n_docs);
    CHECK(!all_zero(score[0], n_lp) && !all_zero(logits[0], (size_t)T * V), "inference outputs all zero");
    CHECK(!memcmp(score[0], score[1], sizeof(float) * n_lp), "score differs with the flag set");
    CHECK(!memcmp(logits[0], logits[1], sizeof(float) * (size_t)T * V), "logits differ with the flag set");
    m->recompute_layers = 0;
    free(logits[0]);
    free(logits[1]);
}

int main(void) {
    hy_model m;
    ckpt_model(&m);
    CHECK(m.recompute_layers == 0, "hy_model_init must leave checkpointing off");
    packed p;
    packed_batch(&p);
    test_grads(&m, &p);
    test_logprobs(&m, &p);
    test_flag_and_memory(&m, &p);
    test_inference(&m, &p);
    hy_model_free(&m);
    return check_summary("test_act_ckpt");
}
