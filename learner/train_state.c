// Checkpoint directories: model + optimizer + loop state, written atomically (see train_state.h).
#include "train_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "state_file.h"

const char *const hy_checkpoint_files[] = {"config.json",       "model.safetensors", "tokenizer.json", "optimizer.bin",
                                           "trainer_state.bin", "recipe.yaml",       NULL};

static const char OPT_MAGIC[8] = {'H', 'Y', 'O', 'P', 'T', 'I', 'M', 0};
static const char STATE_MAGIC[8] = {'H', 'Y', 'T', 'R', 'A', 'I', 'N', 0};
enum { OPT_VERSION = 1, STATE_VERSION = 1 };
// optimizer state moves between backend and file in pieces of this many floats (64 MB)
enum { CHUNK_FLOATS = 1 << 24 };

static void write_arena(hy_state_writer *w, hy_backend *be, const char *name, const float *src, size_t n,
                        float *host) {
    hy_state_write_record(w, name, HY_REC_F32, n);
    for (size_t off = 0; off < n; off += CHUNK_FLOATS) {
        const size_t k = n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS;
        be->f32_to_host(be, host, src + off, k);
        hy_state_write_payload(w, host, k * sizeof(float));
    }
}

static int save_optimizer(const char *path, const hy_trainer *t) {
    const hy_model *m = t->model;
    const hy_param_table *tab = &m->table;
    hy_state_writer w;
    if (hy_state_write_open(&w, path, OPT_MAGIC, OPT_VERSION)) return -1;
    const uint64_t head[3] = {(uint64_t)t->step, (uint64_t)tab->n, tab->total};
    hy_state_write_u64(&w, "adamw_step", &head[0], 1);
    hy_state_write_u64(&w, "n_tensors", &head[1], 1);
    hy_state_write_u64(&w, "n_floats", &head[2], 1);
    for (int i = 0; i < tab->n; i++) {
        const uint64_t numel = tab->specs[i].numel;
        hy_state_write_bytes(&w, "tensor_name", tab->specs[i].name, strlen(tab->specs[i].name));
        hy_state_write_u64(&w, "tensor_numel", &numel, 1);
    }
    float *host = hy_malloc(sizeof(float) * (tab->total < CHUNK_FLOATS ? tab->total : CHUNK_FLOATS));
    write_arena(&w, m->be, "exp_avg", t->exp_avg, tab->total, host);
    write_arena(&w, m->be, "exp_avg_sq", t->exp_avg_sq, tab->total, host);
    free(host);
    return hy_state_write_close(&w);
}

static int save_state(const char *path, const hy_train_state *s) {
    hy_state_writer w;
    if (hy_state_write_open(&w, path, STATE_MAGIC, STATE_VERSION)) return -1;
    const uint64_t v[] = {(uint64_t)s->step,  (uint64_t)s->skipped,     (uint64_t)s->tokens_seen, s->seed,
                          (uint64_t)s->epoch, (uint64_t)s->position,    (uint64_t)s->n_sequences, s->data_hash};
    hy_state_write_u64(&w, "step", &v[0], 1);
    hy_state_write_u64(&w, "skipped", &v[1], 1);
    hy_state_write_u64(&w, "tokens_seen", &v[2], 1);
    hy_state_write_u64(&w, "seed", &v[3], 1);
    hy_state_write_u64(&w, "rng_state", s->epoch_rng.s, 4);
    hy_state_write_u64(&w, "epoch", &v[4], 1);
    hy_state_write_u64(&w, "position", &v[5], 1);
    hy_state_write_u64(&w, "n_sequences", &v[6], 1);
    hy_state_write_u64(&w, "data_hash", &v[7], 1);
    return hy_state_write_close(&w);
}

int hy_checkpoint_save(const char *dir, hy_model *m, const hy_trainer *t, const hy_train_state *s,
                       const char *config_yaml, const char *tokenizer_path) {
    char tmp[4096], path[4200];
    if (hy_atomic_dir_begin(dir, tmp, sizeof tmp)) return -1;
    hy_model_sync_to_host(m);
    int rc = hy_model_save(m, tmp);
    if (!rc && tokenizer_path) {
        snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
        rc = hy_file_copy(tokenizer_path, path);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/optimizer.bin", tmp);
        rc = save_optimizer(path, t);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/trainer_state.bin", tmp);
        rc = save_state(path, s);
    }
    if (!rc && config_yaml) {
        snprintf(path, sizeof path, "%s/recipe.yaml", tmp);
        rc = hy_atomic_write(path, config_yaml, strlen(config_yaml));
    }
    if (rc) {
        hy_atomic_dir_abort(tmp);
        return hy_fail_prefix("saving checkpoint %s", dir);
    }
    return hy_atomic_dir_commit(tmp, dir, hy_checkpoint_files);
}

static int read_one(hy_state_reader *r, const char *name, uint64_t *v) { return hy_state_read_u64(r, name, v, 1); }

static int read_arena(hy_state_reader *r, hy_backend *be, const char *name, float *dst, size_t n, float *host) {
    uint64_t count;
    if (hy_state_read_record(r, name, HY_REC_F32, &count)) return -1;
    if (count != n)
        return hy_fail("%s: field '%s' has %llu values, the model has %zu parameters", r->path, name,
                       (unsigned long long)count, n);
    for (size_t off = 0; off < n; off += CHUNK_FLOATS) {
        const size_t k = n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS;
        if (hy_state_read_payload(r, host, k * sizeof(float))) return -1;
        be->f32_from_host(be, dst + off, host, k);
    }
    return 0;
}

// Walks the tensor list and checks it against the model's table.
static int read_tensor_list(hy_state_reader *r, const hy_param_table *tab) {
    uint64_t n_tensors, n_floats;
    if (read_one(r, "n_tensors", &n_tensors) || read_one(r, "n_floats", &n_floats)) return -1;
    if (n_tensors != (uint64_t)tab->n || n_floats != tab->total)
        return hy_fail("%s: fields 'n_tensors', 'n_floats': state of %llu tensors / %llu floats, but the model has "
                       "%d / %zu (a checkpoint of another model?)",
                       r->path, (unsigned long long)n_tensors, (unsigned long long)n_floats, tab->n, tab->total);
    for (int i = 0; i < tab->n; i++) {
        char *name;
        uint64_t len, numel;
        if (hy_state_read_bytes(r, "tensor_name", &name, &len)) return -1;
        int rc = read_one(r, "tensor_numel", &numel);
        if (!rc && (strcmp(name, tab->specs[i].name) || numel != tab->specs[i].numel))
            rc = hy_fail("%s: field 'tensor_name' %d: state for '%s' (%llu values), but the model's tensor %d is "
                         "'%s' (%zu values)",
                         r->path, i, name, (unsigned long long)numel, i, tab->specs[i].name, tab->specs[i].numel);
        free(name);
        if (rc) return -1;
    }
    return 0;
}

static int load_optimizer(const char *path, hy_trainer *t) {
    const hy_param_table *tab = &t->model->table;
    hy_state_reader r;
    if (hy_state_read_open(&r, path, OPT_MAGIC, OPT_VERSION)) return -1;
    uint64_t step;
    int rc = read_one(&r, "adamw_step", &step);
    if (!rc) rc = read_tensor_list(&r, tab);
    float *host = hy_malloc(sizeof(float) * (tab->total < CHUNK_FLOATS ? tab->total : CHUNK_FLOATS));
    if (!rc) rc = read_arena(&r, t->model->be, "exp_avg", t->exp_avg, tab->total, host);
    if (!rc) rc = read_arena(&r, t->model->be, "exp_avg_sq", t->exp_avg_sq, tab->total, host);
    free(host);
    if (rc) {
        hy_state_read_abort(&r);
        return -1;
    }
    if (hy_state_read_close(&r)) return -1;
    t->step = (int)step;
    return 0;
}

static int load_state(const char *path, hy_train_state *s) {
    hy_state_reader r;
    if (hy_state_read_open(&r, path, STATE_MAGIC, STATE_VERSION)) return -1;
    uint64_t v[8];
    int rc = read_one(&r, "step", &v[0]) || read_one(&r, "skipped", &v[1]) || read_one(&r, "tokens_seen", &v[2]) ||
             read_one(&r, "seed", &v[3]) || hy_state_read_u64(&r, "rng_state", s->epoch_rng.s, 4) ||
             read_one(&r, "epoch", &v[4]) || read_one(&r, "position", &v[5]) ||
             read_one(&r, "n_sequences", &v[6]) || read_one(&r, "data_hash", &v[7]);
    if (rc) {
        hy_state_read_abort(&r);
        return -1;
    }
    if (hy_state_read_close(&r)) return -1;
    s->step = (long)v[0];
    s->skipped = (long)v[1];
    s->tokens_seen = (long)v[2];
    s->seed = v[3];
    s->epoch = (long)v[4];
    s->position = (int)v[5];
    s->n_sequences = (long)v[6];
    s->data_hash = v[7];
    if (v[1] > v[0] || v[5] > v[6])
        return hy_fail("%s: fields 'skipped' / 'position' are inconsistent with 'step' / 'n_sequences'", path);
    return 0;
}

int hy_checkpoint_load_state(const char *dir, hy_trainer *t, hy_train_state *s) {
    char path[4200];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/trainer_state.bin", dir);
    if (load_state(path, s)) return -1;
    snprintf(path, sizeof path, "%s/optimizer.bin", dir);
    if (load_optimizer(path, t)) return -1;
    t->skipped = s->skipped;
    return 0;
}
