// The SFT training loop, and the same loop for other losses (see sft_loop.h).
#include "sft_loop.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "data_order.h"
#include "json_fields.h"
#include "packing.h"
#include "train_log.h"
#include "train_state.h"

// Continues the trainer, data order and counters from the checkpoint, after checking that it was
// made on the same data.
static int resume_from(const hy_sft_loop *c, const hy_loop_task *task, hy_trainer *t, hy_train_state *st,
                       hy_data_order *order) {
    if (hy_checkpoint_load_state(c->resume, t, st)) return -1;
    if (st->n_sequences != task->n_units || st->data_hash != task->hash)
        return hy_fail("%s/trainer_state.bin: fields 'n_sequences', 'data_hash': the checkpoint was trained on %ld "
                       "%ss (hash %016llx), the data now gives %d (hash %016llx): not the same data (or other "
                       "max-seq-len / train-on settings)",
                       c->resume, st->n_sequences, task->unit_name, (unsigned long long)st->data_hash, task->n_units,
                       (unsigned long long)task->hash);
    if (hy_data_order_restore(order, task->n_units, c->shuffle, &st->epoch_rng, st->epoch, st->position))
        return hy_fail_prefix("%s/trainer_state.bin", c->resume);
    fprintf(c->progress, "hybrid: resuming %s at step %ld (epoch %ld, %s %d of %d, %d AdamW steps)\n", c->resume,
            st->step, st->epoch, task->unit_name, st->position, task->n_units, t->step);
    return 0;
}

static void record_order(hy_train_state *st, const hy_data_order *order) {
    st->epoch_rng = order->epoch_rng;
    st->epoch = order->epoch;
    st->position = order->pos;
}

static void checkpoint_saved(const hy_sft_loop *c, long s, const char *dir) {
    if (c->sink && c->sink->checkpoint) c->sink->checkpoint(c->sink->ctx, s, dir);
}

int hy_train_loop_run(const hy_sft_loop *c, hy_trainer *t, const hy_loop_task *task) {
    if (c->save_every > 0 && !c->save_dir) return hy_fail("periodic checkpoints (save-every) need a save-dir");
    hy_train_state st = {0};
    hy_data_order order;
    if (c->resume) {
        if (resume_from(c, task, t, &st, &order)) return -1;
    } else {
        hy_data_order_init(&order, task->n_units, c->seed, c->shuffle);
        st.seed = c->seed;
        st.n_sequences = task->n_units;
        st.data_hash = task->hash;
        record_order(&st, &order);
    }
    hy_model *m = t->model;
    int *idx = hy_malloc(sizeof *idx * (size_t)(task->n_units > 0 ? task->n_units : 1));
    hy_train_log log;
    hy_step_metrics metrics;
    hy_train_log_init(&log, c->steps, st.step + 1, m->table.n_params, c->peak_tflops);
    int rc = 0;
    for (long s = st.step + 1; s <= c->steps && !rc; s++) {
        const int k = hy_data_order_next(&order, c->batch_size, idx);
        const double lr = hy_lr_at(&c->schedule, s);
        hy_step_stats stats;
        char extra[1024] = "";
        if ((rc = task->step(task->ctx, s, idx, k, lr, &stats, extra, sizeof extra))) break;
        if (m->be->device == HY_DEVICE_CUDA) {  // what the GPU holds after the step (nvidia-smi's number)
            size_t free_b, total_b;
            m->be->memory_info(m->be, &free_b, &total_b);
            hy_json_member_append(extra, sizeof extra, "gpu_mem_gb", (double)(total_b - free_b) / 1e9);
        }
        st.step = s;
        st.skipped = t->skipped;
        st.tokens_seen += stats.tokens;
        record_order(&st, &order);
        rc = hy_train_log_task_step(&log, c->metrics, c->progress, s, lr, &stats, t->skipped, extra, &metrics);
        if (rc) break;
        if (c->sink && c->sink->step) c->sink->step(c->sink->ctx, s, &metrics);
        if (c->save_every > 0 && s % c->save_every == 0 && s < c->steps) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/step-%06ld", c->save_dir, s);
            rc = hy_checkpoint_save(dir, m, t, &st, c->config_yaml, c->tokenizer_path);
            if (!rc) {
                fprintf(c->progress, "hybrid: checkpoint %s\n", dir);
                checkpoint_saved(c, s, dir);
            }
        }
    }
    if (!rc && c->no_final_save) {
        fprintf(c->progress, "hybrid: done (step %ld, %ld skipped, %ld tokens); no final checkpoint (save-final 0)\n",
                st.step, st.skipped, st.tokens_seen);
    } else {
        if (!rc) rc = hy_checkpoint_save(c->out, m, t, &st, c->config_yaml, c->tokenizer_path);
        if (!rc) checkpoint_saved(c, st.step, c->out);
        if (!rc)
            fprintf(c->progress, "hybrid: wrote %s (step %ld, %ld skipped, %ld tokens)\n", c->out, st.step, st.skipped,
                    st.tokens_seen);
    }
    hy_data_order_free(&order);
    free(idx);
    return rc;
}

typedef struct {
    const hy_sft_loop *c;
    hy_trainer *t;
    const hy_dataset *ds;
    hy_step_batch sb;
} sft_task;

static int sft_step(void *ctx, long s, const int *idx, int k, double lr, hy_step_stats *st, char *extra, size_t n) {
    (void)s, (void)extra, (void)n;
    sft_task *x = ctx;
    hy_pack_step(x->ds, idx, k, x->c->micro_tokens, &x->sb);
    return hy_trainer_step_batch(x->t, &x->sb, x->c->norm, lr, st);
}

int hy_sft_loop_run(const hy_sft_loop *c, hy_trainer *t, const hy_dataset *ds) {
    sft_task x = {c, t, ds, {0}};
    const hy_loop_task task = {ds->n, ds->hash, "sequence", sft_step, &x};
    const int rc = hy_train_loop_run(c, t, &task);
    hy_step_batch_free(&x.sb);
    return rc;
}
