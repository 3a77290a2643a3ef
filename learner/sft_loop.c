// The SFT training loop (see sft_loop.h).
#include "sft_loop.h"

#include <stdlib.h>

#include "../common/hy_error.h"
#include "data_order.h"
#include "packing.h"
#include "train_log.h"
#include "train_state.h"

// Continues the trainer, data order and counters from the checkpoint, after checking that it was
// made on the same data.
static int resume_from(const hy_sft_loop *c, const hy_dataset *ds, hy_trainer *t, hy_train_state *st,
                       hy_data_order *order) {
    if (hy_checkpoint_load_state(c->resume, t, st)) return -1;
    if (st->n_sequences != ds->n || st->data_hash != ds->hash)
        return hy_fail("%s/trainer_state.bin: fields 'n_sequences', 'data_hash': the checkpoint was trained on %ld "
                       "sequences (hash %016llx), the data now gives %d (hash %016llx): not the same data (or other "
                       "max-seq-len / train-on settings)",
                       c->resume, st->n_sequences, (unsigned long long)st->data_hash, ds->n,
                       (unsigned long long)ds->hash);
    if (hy_data_order_restore(order, ds->n, c->shuffle, &st->epoch_rng, st->epoch, st->position))
        return hy_fail_prefix("%s/trainer_state.bin", c->resume);
    fprintf(c->progress, "hybrid: resuming %s at step %ld (epoch %ld, sequence %d of %d, %d AdamW steps)\n", c->resume,
            st->step, st->epoch, st->position, ds->n, t->step);
    return 0;
}

static void record_order(hy_train_state *st, const hy_data_order *order) {
    st->epoch_rng = order->epoch_rng;
    st->epoch = order->epoch;
    st->position = order->pos;
}

int hy_sft_loop_run(const hy_sft_loop *c, hy_trainer *t, const hy_dataset *ds) {
    if (c->save_every > 0 && !c->save_dir) return hy_fail("periodic checkpoints (save-every) need a save-dir");
    hy_train_state st = {0};
    hy_data_order order;
    if (c->resume) {
        if (resume_from(c, ds, t, &st, &order)) return -1;
    } else {
        hy_data_order_init(&order, ds->n, c->seed, c->shuffle);
        st.seed = c->seed;
        st.n_sequences = ds->n;
        st.data_hash = ds->hash;
        record_order(&st, &order);
    }
    hy_model *m = t->model;
    int *idx = hy_malloc(sizeof *idx * (size_t)ds->n);
    hy_step_batch sb = {0};
    hy_train_log log;
    hy_train_log_init(&log, c->steps, st.step + 1, m->table.total, c->peak_tflops);
    int rc = 0;
    for (long s = st.step + 1; s <= c->steps && !rc; s++) {
        const int k = hy_data_order_next(&order, c->batch_size, idx);
        hy_pack_step(ds, idx, k, c->micro_tokens, &sb);
        const double lr = hy_lr_at(&c->schedule, s);
        hy_step_stats stats;
        if ((rc = hy_trainer_step_batch(t, &sb, c->norm, lr, &stats))) break;
        st.step = s;
        st.skipped = t->skipped;
        st.tokens_seen += stats.tokens;
        record_order(&st, &order);
        hy_train_log_step(&log, c->metrics, c->progress, s, lr, &stats, t->skipped);
        if (c->save_every > 0 && s % c->save_every == 0 && s < c->steps) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/step-%06ld", c->save_dir, s);
            rc = hy_checkpoint_save(dir, m, t, &st, c->config_yaml, c->tokenizer_path);
            if (!rc) fprintf(c->progress, "hybrid: checkpoint %s\n", dir);
        }
    }
    if (!rc) rc = hy_checkpoint_save(c->out, m, t, &st, c->config_yaml, c->tokenizer_path);
    if (!rc)
        fprintf(c->progress, "hybrid: wrote %s (step %ld, %ld skipped, %ld tokens)\n", c->out, st.step, st.skipped,
                st.tokens_seen);
    hy_step_batch_free(&sb);
    hy_data_order_free(&order);
    free(idx);
    return rc;
}
