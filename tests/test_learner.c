// Tests of the learner's training machinery on the tiny model (CPU reference backend):
//   schedule      warmup / constant / linear / cosine values by hand
//   groups        weight-decay exclusions by parameter kind and name; AdamW per group matches the
//                 op applied tensor by tensor with the same decay flags, bit for bit
//   order         per-epoch permutations, batches within epochs, resume mid-epoch and at a boundary
//   data          masks from {"tokens","mask"}, {"text"}, {"messages"} (assistant content and its
//                 <|im_end|> only), dropping, cutting, and bad lines named by file:line and field
//   packing       first-fit placement, cu_seqlens, masked next-token targets
//   accumulation  k micro-batches == one batch (token and sequence normalisation), one micro-batch
//                 == the plain full-batch path bit for bit
//   nan           a non-finite loss skips the step: weights, m, v and the AdamW step untouched
//   resume        N steps straight == resume from a checkpoint at k, bit for bit (files and arena)
//   checkpoints   truncated / damaged / mismatched state files refused naming file and field
//   files         atomic directory replacement; recipe YAML loading, errors and quoting
//
// Tolerance (accumulation): splitting a step changes fp32 rounding only — weight gradients summed
// over other token sets, one fp32 rescale per micro-batch, and in token mode a per-token dlogp of
// fp32(−1/n_i)·(n_i/N) instead of fp32(−1/N), a difference of an ulp that the backward carries
// through the layers. Measured on this case: relative L2 error 4e-7 (token), 7e-8 (sequence, whose
// per-document dlogp is the same number either way). 1e-6 is the bound; a wrongly weighted
// micro-batch is off by tens of percent.
//
// Usage: test_learner SOURCE_DIR
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "../common/rng.h"
#include "../common/yaml_recipe.h"
#include "../learner/data_order.h"
#include "../learner/lr_schedule.h"
#include "../learner/packing.h"
#include "../learner/param_groups.h"
#include "../learner/sft_data.h"
#include "../learner/sft_loop.h"
#include "../learner/state_file.h"
#include "../learner/train_log.h"
#include "../learner/train_state.h"
#include "../learner/trainer.h"
#include "../model/chat_template.h"
#include "../model/model.h"
#include "../model/tokenizer.h"

static int failures, checks;
static char tmp_root[256];
static const char *src_dir;

#define CHECK(cond, ...)                             \
    do {                                             \
        checks++;                                    \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

// The last error must contain every needle.
static void check_error(const char *what, int rc, ...) {
    CHECK(rc != 0, "%s: accepted", what);
    va_list ap;
    va_start(ap, rc);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
        CHECK(strstr(hy_last_error(), n), "%s: message lacks '%s': %s", what, n, hy_last_error());
    va_end(ap);
    if (rc) printf("  ok   %s: %s\n", what, hy_last_error());
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmp_root, name); }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = hy_malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    const int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static void tiny_model(hy_model *m, uint64_t seed) {
    hy_config c;
    if (hy_config_preset(&c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
    hy_model_init(m, &c, seed);
}

// n sequences of 3..max_len random tokens in [1, 256), every third one with a partial mask.
static void random_dataset(hy_dataset *ds, int n, int max_len, uint64_t seed) {
    hy_dataset_init(ds);
    hy_rng r;
    hy_rng_init(&r, seed);
    int32_t ids[256];
    uint8_t mask[256];
    for (int s = 0; s < n; s++) {
        const int len = 3 + (int)(hy_rng_next(&r) % (uint64_t)(max_len - 2));
        for (int i = 0; i < len; i++) {
            ids[i] = 1 + (int32_t)(hy_rng_next(&r) % 255);
            mask[i] = s % 3 != 2 || i >= len / 2;
        }
        hy_dataset_add(ds, ids, mask, len);
    }
}

// ---------------------------------------------------------------------------------------------

static void test_schedule(void) {
    printf("schedule\n");
    hy_lr_schedule s = {1.0, 2, 6, HY_LR_CONSTANT, 0.1};
    const double constant[] = {0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
    for (int i = 0; i < 7; i++) CHECK(fabs(hy_lr_at(&s, i + 1) - constant[i]) < 1e-15, "constant step %d", i + 1);
    s.decay = HY_LR_LINEAR;  // p = (s − 2)/4: 0.25, 0.5, 0.75, 1 → 0.1 + 0.9·(1 − p)
    const double linear[] = {0.5, 1.0, 0.775, 0.55, 0.325, 0.1, 0.1};
    for (int i = 0; i < 7; i++)
        CHECK(fabs(hy_lr_at(&s, i + 1) - linear[i]) < 1e-12, "linear step %d: %.17g", i + 1, hy_lr_at(&s, i + 1));
    s.decay = HY_LR_COSINE;
    s.min_ratio = 0.0;
    const double cosine[] = {0.5, 1.0, 0.5 * (1 + cos(M_PI / 4)), 0.5, 0.5 * (1 + cos(3 * M_PI / 4)), 0.0, 0.0};
    for (int i = 0; i < 7; i++)
        CHECK(fabs(hy_lr_at(&s, i + 1) - cosine[i]) < 1e-12, "cosine step %d: %.17g", i + 1, hy_lr_at(&s, i + 1));
    hy_lr_schedule nw = {2e-3, 0, 4, HY_LR_LINEAR, 0.0};  // no warmup: first step already decays
    CHECK(fabs(hy_lr_at(&nw, 1) - 1.5e-3) < 1e-15 && hy_lr_at(&nw, 4) == 0.0, "linear without warmup");
    hy_lr_decay d;
    check_error("unknown schedule", hy_lr_decay_parse("exponential", &d), "exponential", NULL);
}

static void test_groups(void) {
    printf("parameter groups\n");
    hy_model m;
    tiny_model(&m, 1);
    hy_param_groups g;
    CHECK(hy_param_groups_build(&g, &m.table, HY_NO_DECAY_DEFAULT) == 0, "default rules: %s", hy_last_error());
    size_t covered = 0;
    for (int i = 0; i < g.n_ranges; i++) {
        CHECK(g.ranges[i].offset == covered, "ranges are contiguous");
        covered += g.ranges[i].n;
    }
    CHECK(covered == m.table.total && g.n_decay + g.n_no_decay == m.table.n_params, "ranges cover the arena");
    int wrong = 0, n_excluded = 0;
    for (int i = 0; i < m.table.n; i++) {
        const hy_param_spec *s = &m.table.specs[i];
        const int want = s->role == HY_ROLE_NORM || s->role == HY_ROLE_A_LOG || s->role == HY_ROLE_DT_BIAS ||
                         s->role == HY_ROLE_EMBED;
        n_excluded += want;
        if (hy_param_groups_excludes(s, HY_NO_DECAY_DEFAULT) != want) {
            fprintf(stderr, "    %s\n", s->name);
            wrong++;
        }
    }
    CHECK(wrong == 0 && n_excluded > 0, "default exclusions: norms, A_log, dt_bias, embedding (%d wrong)", wrong);
    hy_param_groups_free(&g);
    CHECK(hy_param_groups_build(&g, &m.table, "none") == 0 && g.n_ranges == 1 && g.ranges[0].decay, "none decays all");
    hy_param_groups_free(&g);
    CHECK(hy_param_groups_build(&g, &m.table, " layers.0. , norm") == 0, "substring rule");
    for (int i = 0; i < m.table.n; i++) {
        const hy_param_spec *s = &m.table.specs[i];
        const int want = s->layer == 0 || s->role == HY_ROLE_NORM;
        CHECK(hy_param_groups_excludes(s, " layers.0. , norm") == want, "substring rule on %s", s->name);
    }
    hy_param_groups_free(&g);
    check_error("rule matching nothing", hy_param_groups_build(&g, &m.table, "norm,layer_norms"), "layer_norms", NULL);
    hy_model_free(&m);
}

// One AdamW step through the trainer's groups == adamw_step per tensor with its decay flag.
static void test_adamw_groups(void) {
    printf("AdamW over decay groups\n");
    hy_model m;
    tiny_model(&m, 2);
    hy_dataset ds;
    random_dataset(&ds, 4, 12, 5);
    int idx[4] = {0, 1, 2, 3};
    hy_step_batch sb = {0};
    hy_pack_step(&ds, idx, 4, 0, &sb);
    const adamw_params hp = {1e-2, 0.9, 0.95, 1e-8, 0.5};
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 0.0f);
    hy_param_groups g;
    hy_param_groups_build(&g, &m.table, HY_NO_DECAY_DEFAULT);
    hy_trainer_set_groups(&t, &g);
    float *p0 = hy_malloc(sizeof(float) * m.table.total);
    memcpy(p0, m.arena, sizeof(float) * m.table.total);
    hy_step_stats st;
    CHECK(hy_trainer_step_batch(&t, &sb, HY_LOSS_NORM_TOKEN, 3e-3, &st) == 0 && !st.skipped, "step");
    float *mv = hy_calloc(2 * m.table.total, sizeof(float));
    adamw_params ref = hp;
    ref.lr = 3e-3;
    for (int i = 0; i < m.table.n; i++) {
        const hy_param_spec *s = &m.table.specs[i];
        adamw_step(p0 + s->offset, mv + s->offset, mv + m.table.total + s->offset, t.grads + s->offset, s->numel, &ref,
                   1, !hy_param_groups_excludes(s, HY_NO_DECAY_DEFAULT));
    }
    CHECK(!memcmp(p0, m.arena, sizeof(float) * m.table.total), "weights equal the per-tensor reference bit for bit");
    CHECK(!memcmp(mv, t.exp_avg, sizeof(float) * m.table.total), "exp_avg equal");
    free(p0);
    free(mv);
    hy_param_groups_free(&g);
    hy_trainer_free(&t);
    hy_step_batch_free(&sb);
    hy_dataset_free(&ds);
    hy_model_free(&m);
}

static void test_order(void) {
    printf("data order\n");
    enum { N = 7, B = 3, CALLS = 12 };
    hy_data_order o;
    hy_data_order_init(&o, N, 5, 1);
    int got[CALLS][B], counts[CALLS];
    hy_rng saved_rng[CALLS];
    long saved_epoch[CALLS];
    int saved_pos[CALLS];
    for (int c = 0; c < CALLS; c++) {
        saved_rng[c] = o.epoch_rng;
        saved_epoch[c] = o.epoch;
        saved_pos[c] = o.pos;
        counts[c] = hy_data_order_next(&o, B, got[c]);
    }
    CHECK(counts[0] == 3 && counts[1] == 3 && counts[2] == 1 && counts[3] == 3, "batches stop at the epoch end");
    int seen[N] = {0};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < counts[c]; i++) seen[got[c][i]]++;
    int perm = 1, same = 1;
    for (int i = 0; i < N; i++) perm &= seen[i] == 1;
    CHECK(perm, "an epoch visits every sequence once");
    for (int c = 3; c < 6; c++)
        for (int i = 0; i < counts[c]; i++) same &= got[c][i] == got[c - 3][i];
    CHECK(!same, "the next epoch has another order");
    hy_data_order_free(&o);
    for (int start = 0; start < CALLS; start++) {  // restore at every point, incl. epoch boundaries
        hy_data_order r;
        CHECK(hy_data_order_restore(&r, N, 1, &saved_rng[start], saved_epoch[start], saved_pos[start]) == 0, "restore");
        int ok = 1;
        for (int c = start; c < CALLS; c++) {
            int out[B];
            const int k = hy_data_order_next(&r, B, out);
            ok &= k == counts[c] && !memcmp(out, got[c], sizeof(int) * (size_t)k);
        }
        CHECK(ok, "restored at call %d, the order continues exactly", start);
        hy_data_order_free(&r);
    }
    hy_data_order_init(&o, N, 5, 0);
    int out[N];
    CHECK(hy_data_order_next(&o, 0, out) == N, "batch 0 = whole epoch");
    int identity = 1;
    for (int i = 0; i < N; i++) identity &= out[i] == i;
    CHECK(identity, "shuffle off keeps file order");
    hy_data_order_free(&o);
}

// Decodes the masked tokens of sequence 0 of ds, run by run, joined with '|'.
static char *masked_text(const hy_tokenizer *tok, const hy_dataset *ds) {
    char *out = hy_calloc(1, 1);
    size_t len = 0;
    const int64_t n = ds->start[1];
    for (int64_t i = 0; i < n;) {
        if (!ds->mask[i]) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j < n && ds->mask[j]) j++;
        char *text;
        size_t tl;
        if (hy_tokenizer_decode(tok, ds->tokens + i, (int)(j - i), 0, &text, &tl)) return out;
        out = hy_realloc(out, len + tl + 2);
        memcpy(out + len, text, tl);
        len += tl;
        out[len++] = '|';
        out[len] = '\0';
        free(text);
        i = j;
    }
    return out;
}

static void test_data(void) {
    printf("training data\n");
    char path[512];
    hy_dataset ds;
    hy_sft_data_options o = {HY_TRAIN_ON_ASSISTANT, 0, 0, 256};
    path_in(path, sizeof path, "d.jsonl");
    write_text(path, "{\"tokens\":[1,2,3,4],\"mask\":[0,0,1,true]}\n\n{\"tokens\":[5,6]}\n{\"tokens\":[7]}\n"
                     "{\"tokens\":[1,2,3],\"mask\":[1,0,false]}\n{\"tokens\":[9,8,7,6,5,4,3]}\n");
    CHECK(hy_dataset_load_jsonl(&ds, path, NULL, &o) == 0, "tokens and masks: %s", hy_last_error());
    CHECK(ds.n == 3 && ds.n_dropped == 2, "two lines without targets dropped (n %d, dropped %d)", ds.n, ds.n_dropped);
    CHECK(ds.n_targets[0] == 2 && ds.n_targets[1] == 1 && ds.n_targets[2] == 6, "target counts");
    CHECK(ds.mask[0] == 0 && ds.mask[1] == 0 && ds.mask[2] == 1 && ds.mask[3] == 1, "explicit mask kept");
    const uint64_t h = ds.hash;
    hy_dataset_free(&ds);
    o.max_seq_len = 4;
    CHECK(hy_dataset_load_jsonl(&ds, path, NULL, &o) == 0 && ds.n_truncated == 1 && ds.start[3] - ds.start[2] == 4 &&
              ds.hash != h,
          "max_seq_len cuts (and changes the hash)");
    hy_dataset_free(&ds);
    o.max_seq_len = 0;
    o.max_tokens = 6;
    check_error("sequence over the micro-batch budget", hy_dataset_load_jsonl(&ds, path, NULL, &o), "d.jsonl:6",
                "7 tokens", "micro-batch", NULL);
    o.max_tokens = 0;
    static const struct {
        const char *line, *needle;
    } bad[] = {
        {"{\"tokens\":[1,2,3],\"mask\":[1,1]}", "'mask'"},
        {"{\"tokens\":[1,2,3],\"mask\":[1,2,1]}", "'mask'[1]"},
        {"{\"text\":\"hi\",\"mask\":[1]}", "only allowed with 'tokens'"},
        {"{\"tokens\":[1,300]}", "outside the vocabulary"},
        {"{\"tokens\":[]}", "empty sequence"},
        {"{\"text\":\"needs a tokenizer\"}", "tokenizer"},
        {"{\"tokens\":[1],\"text\":\"x\"}", "exactly one of"},
        {"{\"tokens\":[1,2]", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"tokens\":[1,2]}\n%s\n", bad[i].line);
        write_text(path, text);
        check_error(bad[i].line, hy_dataset_load_jsonl(&ds, path, NULL, &o), "d.jsonl:2", bad[i].needle, NULL);
    }
    write_text(path, "{\"tokens\":[4]}\n");
    check_error("nothing to train on", hy_dataset_load_jsonl(&ds, path, NULL, &o), "no sequence", NULL);

    char tok_path[1200];
    snprintf(tok_path, sizeof tok_path, "%s/model/tokenizers/dolma2-tokenizer.json", src_dir);
    hy_tokenizer *tok;
    if (hy_tokenizer_load(&tok, tok_path)) {
        CHECK(0, "tokenizer: %s", hy_last_error());
        return;
    }
    const char *conv = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"Say hello.\"},{\"role\":\"assistant\",\"content\":\"Hello there!\"},"
                       "{\"role\":\"user\",\"content\":\"Again, in French.\"},"
                       "{\"role\":\"assistant\",\"content\":\"Bonjour à tous.\"}]}\n";
    write_text(path, conv);
    o.vocab = 100352;
    CHECK(hy_dataset_load_jsonl(&ds, path, tok, &o) == 0, "messages: %s", hy_last_error());
    char *masked = masked_text(tok, &ds);
    CHECK(!strcmp(masked, "Hello there!<|im_end|>|Bonjour à tous.<|im_end|>|"),
          "only assistant content and its <|im_end|> are trained, got '%s'", masked);
    free(masked);
    // the pieces encode to the same ids as the whole rendered conversation (content without leading
    // whitespace), i.e. what `score` and inference see
    hy_chat_message msgs[5] = {{"system", "Be brief.", 9}, {"user", "Say hello.", 10}, {"assistant", "Hello there!", 12},
                               {"user", "Again, in French.", 17}, {"assistant", "Bonjour à tous.", 16}};
    int32_t *whole;
    int n_whole;
    CHECK(hy_chat_encode(tok, msgs, 5, 0, &whole, &n_whole) == 0, "encode whole");
    CHECK(n_whole == ds.start[1] && !memcmp(whole, ds.tokens, sizeof(int32_t) * (size_t)n_whole),
          "piecewise ids equal the whole encoding (%d vs %lld)", n_whole, (long long)ds.start[1]);
    hy_dataset_free(&ds);
    o.train_on = HY_TRAIN_ON_ALL;
    CHECK(hy_dataset_load_jsonl(&ds, path, tok, &o) == 0 && ds.n_targets[0] == n_whole - 1 &&
              !memcmp(whole, ds.tokens, sizeof(int32_t) * (size_t)n_whole),
          "train_on all: every token, whole encoding");
    hy_dataset_free(&ds);
    free(whole);
    write_text(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n{\"text\":\"Hello world\"}\n");
    o.train_on = HY_TRAIN_ON_ASSISTANT;
    CHECK(hy_dataset_load_jsonl(&ds, path, tok, &o) == 0 && ds.n == 1 && ds.n_dropped == 1 &&
              ds.n_targets[0] == (int)(ds.start[1] - 1),
          "a conversation without an assistant turn is dropped; text trains on every token");
    hy_dataset_free(&ds);
    write_text(path, "{\"messages\":[{\"role\":\"user\"}]}\n");
    check_error("message without content", hy_dataset_load_jsonl(&ds, path, tok, &o), "d.jsonl:1", "messages[0].content",
                NULL);
    hy_tokenizer_free(tok);
}

static void test_packing(void) {
    printf("packing\n");
    hy_dataset ds;
    hy_dataset_init(&ds);
    const int lens[5] = {5, 3, 4, 2, 6};
    int32_t ids[6];
    uint8_t mask[6] = {1, 1, 0, 1, 1, 1};
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < lens[s]; i++) ids[i] = 10 * s + i;
        hy_dataset_add(&ds, ids, s == 0 ? mask : NULL, lens[s]);
    }
    const int order[5] = {0, 1, 2, 3, 4};
    hy_step_batch sb = {0};
    hy_pack_step(&ds, order, 5, 8, &sb);
    CHECK(sb.n == 3, "three micro-batches, got %d", sb.n);
    CHECK(sb.mb[0].T == 8 && sb.mb[0].n_docs == 2 && sb.mb[1].T == 6 && sb.mb[1].n_docs == 2 && sb.mb[2].T == 6,
          "first fit: [5 3] [4 2] [6]");
    const int32_t cu0[3] = {0, 5, 8};
    CHECK(!memcmp(sb.mb[0].cu_seqlens, cu0, sizeof cu0), "cu_seqlens");
    // sequence 0 = 0 1 2 3 4 with token 2 masked out: targets 1 −1 3 4 −1
    const int32_t t0[8] = {1, -1, 3, 4, -1, 11, 12, -1};
    CHECK(!memcmp(sb.mb[0].targets, t0, sizeof t0), "masked next-token targets");
    CHECK(sb.mb[0].doc_targets[0] == 3 && sb.mb[0].doc_targets[1] == 2 && sb.mb[0].n_targets == 5, "target counts");
    CHECK(sb.tokens == 20 && sb.targets == 3 + 2 + 3 + 1 + 5, "step totals");
    hy_pack_step(&ds, order + 1, 3, 0, &sb);
    CHECK(sb.n == 1 && sb.mb[0].T == 9 && sb.mb[0].n_docs == 3 && sb.mb[0].tokens[0] == 10, "budget 0: one batch");
    hy_step_batch_free(&sb);
    hy_dataset_free(&ds);
}

// ||a − b|| / ||a|| over the whole gradient vector (∞ for a zero or non-finite a).
static double rel_norm_diff(const float *a, const float *b, size_t n) {
    double d = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        scale += (double)a[i] * a[i];
    }
    return isfinite(d) && scale > 0 ? sqrt(d / scale) : INFINITY;
}

static void test_accumulation(void) {
    printf("gradient accumulation\n");
    hy_model m;
    tiny_model(&m, 3);
    hy_dataset ds;
    random_dataset(&ds, 7, 18, 9);
    int idx[7] = {3, 0, 6, 1, 5, 2, 4};
    const size_t n = m.table.total;
    const adamw_params hp = {0.0, 0.9, 0.999, 1e-8, 0.0};  // lr 0: the weights stay put between runs
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 0.0f);
    float *full = hy_malloc(sizeof(float) * n);
    hy_step_batch one = {0}, many = {0};
    hy_pack_step(&ds, idx, 7, 0, &one);
    hy_pack_step(&ds, idx, 7, 20, &many);
    CHECK(many.n >= 3, "the budget splits the step (%d micro-batches)", many.n);
    for (int mode = 0; mode < 2; mode++) {
        const hy_loss_norm norm = mode ? HY_LOSS_NORM_SEQUENCE : HY_LOSS_NORM_TOKEN;
        const char *name = mode ? "sequence" : "token";
        hy_step_stats a, b;
        hy_trainer_step_batch(&t, &one, norm, 0.0, &a);
        memcpy(full, t.grads, sizeof(float) * n);
        hy_trainer_step_batch(&t, &many, norm, 0.0, &b);
        const double d = rel_norm_diff(full, t.grads, n);
        printf("  %-8s 1 vs %d micro-batches: loss %.9g vs %.9g, gradient relative error %.3g\n", name, many.n, a.loss,
               b.loss, d);
        CHECK(d <= 1e-6, "%s: gradients differ by %.3g", name, d);
        CHECK(fabs(a.loss - b.loss) <= 1e-6 * fabs(a.loss) && a.loss > 0, "%s: losses differ", name);
        CHECK(fabs(a.grad_norm - b.grad_norm) <= 1e-6 * a.grad_norm, "%s: grad norms differ", name);
    }
    // token mode, one micro-batch: exactly the plain full-batch path
    double loss, gnorm;
    hy_step_stats st;
    hy_trainer_step_batch(&t, &one, HY_LOSS_NORM_TOKEN, 0.0, &st);
    memcpy(full, t.grads, sizeof(float) * n);
    const hy_batch view = hy_micro_batch_view(&one.mb[0]);
    hy_trainer_loss_and_grads(&t, &view, one.mb[0].targets, &loss, &gnorm);
    CHECK(!memcmp(full, t.grads, sizeof(float) * n) && loss == st.loss, "one micro-batch == full-batch path exactly");
    // sequence mode == mean over sequences of each one's own mean-CE gradient
    float *mean = hy_calloc(n, sizeof(float));
    double mean_loss = 0;
    for (int s = 0; s < 7; s++) {
        hy_step_batch single = {0};
        hy_pack_step(&ds, &s, 1, 0, &single);
        const hy_batch b = hy_micro_batch_view(&single.mb[0]);
        hy_trainer_loss_and_grads(&t, &b, single.mb[0].targets, &loss, &gnorm);
        for (size_t i = 0; i < n; i++) mean[i] += t.grads[i] / 7.0f;
        mean_loss += loss / 7.0;
        hy_step_batch_free(&single);
    }
    hy_trainer_step_batch(&t, &many, HY_LOSS_NORM_SEQUENCE, 0.0, &st);
    const double d = rel_norm_diff(mean, t.grads, n);
    CHECK(d <= 1e-6 && fabs(st.loss - mean_loss) <= 1e-6 * mean_loss,
          "sequence mode = mean of per-sequence gradients (diff %.3g, loss %.9g vs %.9g)", d, st.loss, mean_loss);
    free(mean);
    free(full);
    hy_step_batch_free(&one);
    hy_step_batch_free(&many);
    hy_trainer_free(&t);
    hy_dataset_free(&ds);
    hy_model_free(&m);
}

static void test_nan_skip(void) {
    printf("non-finite steps\n");
    hy_model m;
    tiny_model(&m, 4);
    hy_dataset ds;
    random_dataset(&ds, 3, 10, 2);
    int idx[3] = {0, 1, 2};
    hy_step_batch sb = {0};
    hy_pack_step(&ds, idx, 3, 0, &sb);
    const adamw_params hp = {1e-2, 0.9, 0.999, 1e-8, 0.1};
    hy_trainer t;
    hy_trainer_init(&t, &m, &hp, 1.0f);
    hy_step_stats st;
    hy_trainer_step_batch(&t, &sb, HY_LOSS_NORM_TOKEN, 1e-2, &st);  // m, v non-zero
    const size_t n = m.table.total, bytes = sizeof(float) * n;
    const int32_t tok = ds.tokens[0];
    const int C = m.cfg.hidden_size;
    float saved_row[512];
    memcpy(saved_row, m.p.embed + (size_t)tok * C, sizeof(float) * (size_t)C);
    m.p.embed[(size_t)tok * C] = INFINITY;
    float *p = hy_malloc(bytes), *ma = hy_malloc(bytes), *va = hy_malloc(bytes);
    memcpy(p, m.arena, bytes);
    memcpy(ma, t.exp_avg, bytes);
    memcpy(va, t.exp_avg_sq, bytes);
    CHECK(hy_trainer_step_batch(&t, &sb, HY_LOSS_NORM_TOKEN, 1e-2, &st) == 0, "step runs");
    CHECK(st.skipped == 1 && t.skipped == 1 && t.step == 1, "skipped and counted (AdamW step stays 1)");
    CHECK(!isfinite(st.loss), "the loss is not finite (%g)", st.loss);
    CHECK(!memcmp(p, m.arena, bytes) && !memcmp(ma, t.exp_avg, bytes) && !memcmp(va, t.exp_avg_sq, bytes),
          "weights, exp_avg, exp_avg_sq untouched");
    char path[512];
    path_in(path, sizeof path, "metrics.jsonl");
    FILE *f = fopen(path, "w+"), *null = fopen("/dev/null", "w");
    hy_train_log log;
    hy_train_log_init(&log, 5, 2, n, 0.0);
    hy_train_log_step(&log, f, null, 2, 1e-2, &st, t.skipped);
    fclose(f);
    fclose(null);
    size_t len;
    char *line = (char *)slurp(path, &len);
    line[len] = '\0';
    CHECK(strstr(line, "\"step\": 2, \"loss\": null") && strstr(line, "\"skipped\": 1}"),
          "metrics line shows null loss and the skip count: %s", line);
    free(line);
    memcpy(m.p.embed + (size_t)tok * C, saved_row, sizeof(float) * (size_t)C);
    hy_trainer_step_batch(&t, &sb, HY_LOSS_NORM_TOKEN, 1e-2, &st);
    CHECK(!st.skipped && t.step == 2 && isfinite(st.loss), "training goes on once the data is finite again");
    free(p);
    free(ma);
    free(va);
    hy_step_batch_free(&sb);
    hy_trainer_free(&t);
    hy_dataset_free(&ds);
    hy_model_free(&m);
}

// ---------------------------------------------------------------------------------------------

static const adamw_params resume_hp = {5e-3, 0.9, 0.95, 1e-8, 0.1};

static hy_sft_loop loop_config(const char *out, const char *save_dir, const char *resume, FILE *null) {
    hy_sft_loop c = {0};
    c.steps = 7;
    c.batch_size = 4;
    c.micro_tokens = 24;
    c.norm = HY_LOSS_NORM_TOKEN;
    c.schedule = (hy_lr_schedule){resume_hp.lr, 2, 7, HY_LR_COSINE, 0.1};
    c.seed = 11;
    c.shuffle = 1;
    c.save_every = 3;
    c.save_dir = save_dir;
    c.out = out;
    c.resume = resume;
    c.config_yaml = "steps: 7\n";
    c.metrics = c.progress = null;
    return c;
}

static int run_loop(hy_model *m, const hy_dataset *ds, const hy_sft_loop *c) {
    hy_trainer t;
    hy_trainer_init(&t, m, &resume_hp, 1.0f);
    hy_param_groups g;
    hy_param_groups_build(&g, &m->table, HY_NO_DECAY_DEFAULT);
    hy_trainer_set_groups(&t, &g);
    const int rc = hy_sft_loop_run(c, &t, ds);
    hy_param_groups_free(&g);
    hy_trainer_free(&t);
    return rc;
}

static void compare_checkpoints(const char *a, const char *b, const char *what) {
    static const char *const files[] = {"model.safetensors", "optimizer.bin", "trainer_state.bin", "config.json"};
    for (int i = 0; i < 4; i++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        CHECK(files_equal(pa, pb), "%s: %s differs", what, files[i]);
    }
}

static void test_resume(void) {
    printf("resume\n");
    hy_dataset ds;
    random_dataset(&ds, 9, 16, 21);
    FILE *null = fopen("/dev/null", "w");
    char straight[512], ck[512], resumed[512], from[600];
    path_in(straight, sizeof straight, "straight");
    path_in(ck, sizeof ck, "ck");
    path_in(resumed, sizeof resumed, "resumed");
    mkdir(ck, 0755);
    hy_model m;
    tiny_model(&m, 6);
    hy_sft_loop c = loop_config(straight, ck, NULL, null);
    CHECK(run_loop(&m, &ds, &c) == 0, "straight run: %s", hy_last_error());
    float *final = hy_malloc(sizeof(float) * m.table.total);
    memcpy(final, m.arena, sizeof(float) * m.table.total);
    hy_model_free(&m);
    // step 3 is mid-epoch (9 sequences in batches of 4), step 6 just after an epoch's end
    for (int k = 3; k <= 6; k += 3) {
        snprintf(from, sizeof from, "%s/step-%06d", ck, k);
        hy_model r;
        CHECK(hy_model_load(&r, from) == 0, "load %s: %s", from, hy_last_error());
        c = loop_config(resumed, NULL, from, null);
        c.save_every = 0;
        CHECK(run_loop(&r, &ds, &c) == 0, "resumed run: %s", hy_last_error());
        CHECK(!memcmp(final, r.arena, sizeof(float) * r.table.total), "resumed at %d: weights bit-identical", k);
        char what[64];
        snprintf(what, sizeof what, "resumed at %d", k);
        compare_checkpoints(straight, resumed, what);
        hy_model_free(&r);
    }
    // a checkpoint refuses other data
    hy_dataset other;
    random_dataset(&other, 9, 16, 22);
    hy_model r;
    hy_model_load(&r, from);
    c = loop_config(resumed, NULL, from, null);
    c.save_every = 0;
    check_error("resume on other data", run_loop(&r, &other, &c), "trainer_state.bin", "data_hash", NULL);
    hy_model_free(&r);
    hy_dataset_free(&other);
    free(final);
    fclose(null);
    hy_dataset_free(&ds);
}

// Copies src/name to dst/name (dst created) and returns dst/name's path in out.
static void copy_checkpoint(const char *src, const char *dst) {
    mkdir(dst, 0755);
    for (int i = 0; hy_checkpoint_files[i]; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", src, hy_checkpoint_files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, hy_checkpoint_files[i]);
        if (access(a, R_OK) == 0) hy_file_copy(a, b);
    }
}

static void patch_file(const char *path, long offset, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    if (offset < 0) {
        fseek(f, 0, SEEK_END);
        offset += ftell(f);
    }
    fseek(f, offset, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

static long find_bytes(const char *path, const char *needle) {
    size_t n;
    unsigned char *buf = slurp(path, &n);
    const size_t k = strlen(needle);
    long at = -1;
    for (size_t i = 0; buf && i + k <= n && at < 0; i++)
        if (!memcmp(buf + i, needle, k)) at = (long)i;
    free(buf);
    return at;
}

static void test_checkpoint_errors(void) {
    printf("damaged checkpoints\n");
    char good[512], bad[512], opt[700], state[700];
    path_in(good, sizeof good, "straight");
    path_in(bad, sizeof bad, "bad");
    snprintf(opt, sizeof opt, "%s/optimizer.bin", bad);
    snprintf(state, sizeof state, "%s/trainer_state.bin", bad);
    hy_model m;
    tiny_model(&m, 6);
    hy_trainer t;
    hy_trainer_init(&t, &m, &resume_hp, 1.0f);
    hy_train_state s;
    copy_checkpoint(good, bad);
    CHECK(hy_checkpoint_load_state(bad, &t, &s) == 0 && s.step == 7 && t.step == 7, "intact copy loads: %s",
          hy_last_error());

    CHECK(truncate(opt, file_size(opt) - 20) == 0, "truncate");
    check_error("truncated optimizer.bin", hy_checkpoint_load_state(bad, &t, &s), "optimizer.bin", "truncated",
                "exp_avg_sq", NULL);
    copy_checkpoint(good, bad);
    const unsigned char flip = 0x5a;
    patch_file(opt, file_size(opt) / 2, &flip, 1);
    check_error("damaged optimizer.bin", hy_checkpoint_load_state(bad, &t, &s), "optimizer.bin", "checksum", NULL);
    copy_checkpoint(good, bad);
    patch_file(opt, 0, "NOTOURS!", 8);
    check_error("wrong magic", hy_checkpoint_load_state(bad, &t, &s), "optimizer.bin", "magic", NULL);
    copy_checkpoint(good, bad);
    const uint32_t v9 = 9;
    patch_file(state, 8, &v9, 4);
    check_error("unknown version", hy_checkpoint_load_state(bad, &t, &s), "trainer_state.bin", "version 9", NULL);
    copy_checkpoint(good, bad);
    patch_file(state, find_bytes(state, "tokens_seen"), "tokens_SEEN", 11);
    check_error("renamed field", hy_checkpoint_load_state(bad, &t, &s), "trainer_state.bin", "'tokens_seen' expected",
                "tokens_SEEN", NULL);
    copy_checkpoint(good, bad);
    CHECK(truncate(state, 40) == 0, "truncate");
    check_error("truncated trainer_state.bin", hy_checkpoint_load_state(bad, &t, &s), "trainer_state.bin", "truncated",
                "field", NULL);
    copy_checkpoint(good, bad);
    unlink(opt);
    check_error("missing optimizer.bin", hy_checkpoint_load_state(bad, &t, &s), "optimizer.bin", "no optimizer state", NULL);
    hy_trainer_free(&t);
    hy_model_free(&m);

    hy_config cfg;  // the state of another model shape
    hy_config_preset(&cfg, "tiny");
    cfg.intermediate_size *= 2;
    hy_model other;
    hy_model_init(&other, &cfg, 1);
    hy_trainer_init(&t, &other, &resume_hp, 1.0f);
    copy_checkpoint(good, bad);
    check_error("optimizer state of another model", hy_checkpoint_load_state(bad, &t, &s), "optimizer.bin",
                "n_floats", NULL);
    hy_trainer_free(&t);
    hy_model_free(&other);
}

// ---------------------------------------------------------------------------------------------

static void test_state_file_pieces(void) {
    printf("state files\n");
    char a[512], b[512];
    path_in(a, sizeof a, "one.bin");
    path_in(b, sizeof b, "pieces.bin");
    float data[37];
    for (int i = 0; i < 37; i++) data[i] = (float)i * 0.25f;
    static const char magic[8] = {'T', 'E', 'S', 'T', 0, 0, 0, 0};
    hy_state_writer w;
    hy_state_write_open(&w, a, magic, 1);
    hy_state_write_record(&w, "x", HY_REC_F32, 37);
    hy_state_write_payload(&w, data, sizeof data);
    CHECK(hy_state_write_close(&w) == 0, "write");
    hy_state_write_open(&w, b, magic, 1);
    hy_state_write_record(&w, "x", HY_REC_F32, 37);
    hy_state_write_payload(&w, data, 5 * sizeof(float));  // 20 bytes: pieces need not be whole words
    hy_state_write_payload(&w, data + 5, 32 * sizeof(float));
    CHECK(hy_state_write_close(&w) == 0 && files_equal(a, b), "a payload written in pieces gives the same file");
    hy_state_reader r;
    uint64_t count;
    float back[37];
    CHECK(hy_state_read_open(&r, b, magic, 1) == 0 && hy_state_read_record(&r, "x", HY_REC_F32, &count) == 0 &&
              count == 37 && hy_state_read_payload(&r, back, 8 * sizeof(float)) == 0 &&
              hy_state_read_payload(&r, back + 8, 29 * sizeof(float)) == 0 && hy_state_read_close(&r) == 0 &&
              !memcmp(back, data, sizeof data),
          "read back in pieces, checksum verified");
    char tmp[700];
    CHECK(hy_state_read_open(&r, b, magic, 1) == 0, "reopen");
    check_error("wrong type", hy_state_read_record(&r, "x", HY_REC_U64, &count), "pieces.bin", "'x'", "f32", NULL);
    hy_state_read_abort(&r);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", b, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "no temporary file left behind");
}

static void test_atomic_dir(void) {
    printf("atomic directories\n");
    char dir[512], tmp[700], file[800];
    path_in(dir, sizeof dir, "ckpt");
    static const char *const allowed[] = {"a.txt", NULL};
    CHECK(hy_atomic_dir_check_replaceable(dir, allowed) == 0, "absent directory is fine");
    for (int round = 0; round < 2; round++) {  // create, then replace
        CHECK(hy_atomic_dir_begin(dir, tmp, sizeof tmp) == 0, "begin");
        snprintf(file, sizeof file, "%s/a.txt", tmp);
        write_text(file, round ? "second" : "first");
        CHECK(hy_atomic_dir_commit(tmp, dir, allowed) == 0, "commit %d: %s", round, hy_last_error());
    }
    snprintf(file, sizeof file, "%s/a.txt", dir);
    size_t n;
    char *text = (char *)slurp(file, &n);
    CHECK(text && n == 6 && !memcmp(text, "second", 6), "the new version is in place");
    free(text);
    CHECK(access(tmp, F_OK) != 0, "temporary directory gone");
    snprintf(file, sizeof file, "%s/precious.txt", dir);
    write_text(file, "user data");
    check_error("foreign file in the way", hy_atomic_dir_check_replaceable(dir, allowed), "precious.txt", NULL);
    CHECK(hy_atomic_dir_begin(dir, tmp, sizeof tmp) == 0, "begin");
    check_error("commit refuses to replace", hy_atomic_dir_commit(tmp, dir, allowed), "precious.txt", "kept in", NULL);
    CHECK(access(file, F_OK) == 0, "the user's file is still there");
    hy_atomic_dir_abort(tmp);
}

static void test_recipe_yaml(void) {
    printf("recipe YAML\n");
    char path[512];
    path_in(path, sizeof path, "r.yaml");
    static const char *const keys[] = {"lr", "steps", "model", "no-decay"};
    char *values[4];
    static const char *const odd[] = {"plain", "with \"quotes\" and \\ backslash", "colon: and # hash", "line\nbreak",
                                      "naïve — ünïcode", "", "true", "  spaced  "};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        char *q = hy_yaml_quote(odd[i]), text[512];
        snprintf(text, sizeof text, "# a comment\nlr: 1e-3\nmodel: %s\n", q);
        free(q);
        write_text(path, text);
        CHECK(hy_yaml_recipe_load(path, keys, 4, values) == 0, "load: %s", hy_last_error());
        CHECK(values[2] && !strcmp(values[2], odd[i]), "quoted string round-trips: '%s' -> '%s'", odd[i],
              values[2] ? values[2] : "(null)");
        CHECK(values[0] && !strcmp(values[0], "1e-3") && !values[1] && !values[3], "plain values, absent keys");
        hy_yaml_recipe_free(values, 4);
    }
    write_text(path, "lr: 1e-3\n\nstep: 4\n");
    check_error("unknown key", hy_yaml_recipe_load(path, keys, 4, values), "r.yaml:3", "unknown key 'step'", NULL);
    write_text(path, "lr: 1e-3\nsteps: [1, 2]\n");
    check_error("list value", hy_yaml_recipe_load(path, keys, 4, values), "r.yaml:2", "'steps'", "list", NULL);
    write_text(path, "lr: 1\nlr: 2\n");
    check_error("repeated key", hy_yaml_recipe_load(path, keys, 4, values), "r.yaml:2", "'lr'", "second time", NULL);
    write_text(path, "lr: \"open\n");
    check_error("syntax error", hy_yaml_recipe_load(path, keys, 4, values), "r.yaml", "syntax", NULL);
    write_text(path, "");
    CHECK(hy_yaml_recipe_load(path, keys, 4, values) == 0 && !values[0], "an empty file is an empty recipe");
    path_in(path, sizeof path, "absent.yaml");
    check_error("missing file", hy_yaml_recipe_load(path, keys, 4, values), "absent.yaml", NULL);
}

int main(int argc, char **argv) {
    src_dir = argc > 1 ? argv[1] : ".";
    snprintf(tmp_root, sizeof tmp_root, "/tmp/hy_test_learner.%d", (int)getpid());
    mkdir(tmp_root, 0755);
    test_schedule();
    test_groups();
    test_adamw_groups();
    test_order();
    test_data();
    test_packing();
    test_accumulation();
    test_nan_skip();
    test_resume();
    test_checkpoint_errors();
    test_state_file_pieces();
    test_atomic_dir();
    test_recipe_yaml();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    printf("%d check(s), %d failure(s)\n", checks, failures);
    return failures != 0;
}
