// Checkpoint directories: model + optimizer + loop state, written atomically (see train_state.h).
#include "train_state.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "state_file.h"

const char *const hy_checkpoint_files[] = {"config.json",    "model.safetensors", "tokenizer.json",
                                           "optimizer.bin",  "optimizer-*-of-*.bin", "trainer_state.bin",
                                           "recipe.yaml",    NULL};

static const char OPT_MAGIC[8] = {'H', 'Y', 'O', 'P', 'T', 'I', 'M', 0};
static const char STATE_MAGIC[8] = {'H', 'Y', 'T', 'R', 'A', 'I', 'N', 0};
enum { OPT_VERSION = 2, STATE_VERSION = 1 };
// optimizer state moves between backend and file in pieces of this many floats (64 MB)
enum { CHUNK_FLOATS = 1 << 24 };

// This rank's exp_avg or exp_avg_sq (own_n floats) as one record.
static void write_shard(hy_state_writer *w, hy_backend *be, const char *name, const float *src, size_t n,
                        float *host) {
    hy_state_write_record(w, name, HY_REC_F32, n);
    for (size_t off = 0; off < n; off += CHUNK_FLOATS) {
        const size_t k = n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS;
        be->f32_to_host(be, host, src + off, k);
        hy_state_write_payload(w, host, k * sizeof(float));
    }
}

// The optimizer file of this rank: the AdamW step, the parameter table, the range of the arena it
// covers and m, v over that range (version 2; version 1 had no range and covered everything).
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
    const uint64_t range[2] = {t->own_lo, t->own_n};
    hy_state_write_u64(&w, "range", range, 2);
    float *host = hy_malloc(sizeof(float) * (t->own_n < CHUNK_FLOATS ? t->own_n + 1 : CHUNK_FLOATS));
    write_shard(&w, m->be, "exp_avg", t->exp_avg, t->own_n, host);
    write_shard(&w, m->be, "exp_avg_sq", t->exp_avg_sq, t->own_n, host);
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

// This rank's optimizer file name: optimizer.bin for one rank, optimizer-RRRRR-of-WWWWW.bin for
// rank R of W.
static void optimizer_name(const hy_trainer *t, char *name, size_t n) {
    if (!t->dp)
        snprintf(name, n, "optimizer.bin");
    else
        snprintf(name, n, "optimizer-%05d-of-%05d.bin", hy_dp_rank(t->dp), hy_dp_world(t->dp));
}

// Rank 0's part: the model directory, the loop state and the recipe.
static int save_root_files(const char *tmp, hy_model *m, const hy_train_state *s, const char *config_yaml,
                           const char *tokenizer_path) {
    char path[4200];
    hy_model_sync_to_host(m);
    int rc = hy_model_save(m, tmp);
    if (!rc && tokenizer_path) {
        snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
        rc = hy_file_copy(tokenizer_path, path);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/trainer_state.bin", tmp);
        rc = save_state(path, s);
    }
    if (!rc && config_yaml) {
        snprintf(path, sizeof path, "%s/recipe.yaml", tmp);
        rc = hy_atomic_write(path, config_yaml, strlen(config_yaml));
    }
    return rc;
}

// Data-parallel: rank 0 makes the temporary directory and tells the others its path; every rank
// writes its optimizer shard there; rank 0 commits only when every rank succeeded (a shared file
// system across hosts is assumed).
int hy_checkpoint_save(const char *dir, hy_model *m, const hy_trainer *t, const hy_train_state *s,
                       const char *config_yaml, const char *tokenizer_path) {
    struct {
        int rc;
        char tmp[4096];
    } begin = {0, ""};
    const int root = hy_dp_rank(t->dp) == 0;
    if (root) begin.rc = hy_atomic_dir_begin(dir, begin.tmp, sizeof begin.tmp);
    if (t->dp && hy_dp_broadcast_host(t->dp, &begin, sizeof begin)) return hy_fail_prefix("saving checkpoint %s", dir);
    if (begin.rc) return root ? -1 : hy_fail("saving checkpoint %s: rank 0 could not create it", dir);
    char name[64], path[4200];
    optimizer_name(t, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", begin.tmp, name);
    int rc = save_optimizer(path, t);
    if (!rc && root) rc = save_root_files(begin.tmp, m, s, config_yaml, tokenizer_path);
    double failed = rc != 0;
    if (t->dp && hy_dp_sum_host(t->dp, &failed, 1)) return hy_fail_prefix("saving checkpoint %s", dir);
    if (failed != 0.0) {
        if (root) hy_atomic_dir_abort(begin.tmp);
        return rc ? hy_fail_prefix("saving checkpoint %s", dir)
                  : hy_fail("saving checkpoint %s: another rank failed to write its part", dir);
    }
    double committed = root ? hy_atomic_dir_commit(begin.tmp, dir, hy_checkpoint_files) == 0 : 0.0;
    if (t->dp && hy_dp_sum_host(t->dp, &committed, 1)) return -1;
    if (committed == 0.0) return root ? -1 : hy_fail("saving checkpoint %s: rank 0 could not put it in place", dir);
    return 0;
}

static int read_one(hy_state_reader *r, const char *name, uint64_t *v) { return hy_state_read_u64(r, name, v, 1); }

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

// One record of n floats of a file covering arena [from, from + n): the part inside this rank's
// range goes to dst (own_n floats from own_lo); the rest is read past.
static int read_overlap(hy_state_reader *r, const hy_trainer *t, const char *name, uint64_t from, uint64_t n,
                        float *dst, float *host) {
    uint64_t count;
    if (hy_state_read_record(r, name, HY_REC_F32, &count)) return -1;
    if (count != n)
        return hy_fail("%s: field '%s' has %llu values, its range %llu", r->path, name, (unsigned long long)count,
                       (unsigned long long)n);
    hy_backend *be = t->model->be;
    const uint64_t lo = t->own_lo, hi = t->own_lo + t->own_n;
    for (uint64_t off = 0; off < n; off += CHUNK_FLOATS) {
        const uint64_t k = n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS;
        if (hy_state_read_payload(r, host, k * sizeof(float))) return -1;
        const uint64_t a = from + off > lo ? from + off : lo, b = from + off + k < hi ? from + off + k : hi;
        if (a < b) be->f32_from_host(be, dst + (a - lo), host + (a - from - off), b - a);
    }
    return 0;
}

// Reads one optimizer file, taking the part of its range this rank owns; *covered += its size,
// *step = its AdamW step (the same in every file of a checkpoint).
static int load_optimizer_file(const char *path, hy_trainer *t, uint64_t *covered, uint64_t *step) {
    const hy_param_table *tab = &t->model->table;
    hy_state_reader r;
    if (hy_state_read_open(&r, path, OPT_MAGIC, OPT_VERSION)) return -1;
    int rc = read_one(&r, "adamw_step", step);
    if (!rc) rc = read_tensor_list(&r, tab);
    uint64_t range[2] = {0, tab->total};  // version 1: the whole arena
    if (!rc && r.version >= 2) rc = hy_state_read_u64(&r, "range", range, 2);
    if (!rc && (range[0] > tab->total || range[1] > tab->total - range[0]))
        rc = hy_fail("%s: field 'range': [%llu, +%llu) lies outside the model's %zu parameters", path,
                     (unsigned long long)range[0], (unsigned long long)range[1], tab->total);
    float *host = hy_malloc(sizeof(float) * CHUNK_FLOATS);
    if (!rc) rc = read_overlap(&r, t, "exp_avg", range[0], range[1], t->exp_avg, host);
    if (!rc) rc = read_overlap(&r, t, "exp_avg_sq", range[0], range[1], t->exp_avg_sq, host);
    free(host);
    if (rc) {
        hy_state_read_abort(&r);
        return -1;
    }
    if (hy_state_read_close(&r)) return -1;
    const uint64_t lo = t->own_lo, hi = t->own_lo + t->own_n;
    const uint64_t a = range[0] > lo ? range[0] : lo, b = range[0] + range[1] < hi ? range[0] + range[1] : hi;
    if (a < b) *covered += b - a;
    return 0;
}

// The optimizer state of this rank from whatever ranks wrote the checkpoint: optimizer.bin (one
// rank) or optimizer-*-of-W.bin (W ranks) — any W, since each file says which range it covers.
static int load_optimizer(const char *dir, hy_trainer *t) {
    char path[4200];
    snprintf(path, sizeof path, "%s/optimizer.bin", dir);
    int n_files = 1, single = access(path, F_OK) == 0;
    if (!single) {
        DIR *d = opendir(dir);
        if (!d) return hy_fail("%s: cannot read: %s", dir, strerror(errno));
        int rank, world;
        char tail;
        n_files = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (sscanf(e->d_name, "optimizer-%5d-of-%5d.bin%c", &rank, &world, &tail) == 2) {
                if (n_files && world != n_files)
                    return closedir(d), hy_fail("%s: optimizer shards of different rank counts (%d and %d)", dir,
                                                 n_files, world);
                n_files = world;
            }
        closedir(d);
        if (!n_files) return hy_fail("%s: no optimizer state (optimizer.bin or optimizer-*-of-*.bin)", dir);
    }
    uint64_t covered = 0, step = 0, first_step = 0;
    for (int i = 0; i < n_files; i++) {
        if (!single) snprintf(path, sizeof path, "%s/optimizer-%05d-of-%05d.bin", dir, i, n_files);
        if (access(path, F_OK)) return hy_fail("%s: missing (the checkpoint has shards of %d ranks)", path, n_files);
        if (load_optimizer_file(path, t, &covered, &step)) return -1;
        if (i && step != first_step)
            return hy_fail("%s: field 'adamw_step' is %llu, the first shard's %llu", path, (unsigned long long)step,
                           (unsigned long long)first_step);
        first_step = step;
    }
    if (covered != t->own_n)
        return hy_fail("%s: the optimizer files cover %llu of this rank's %zu parameters", dir,
                       (unsigned long long)covered, t->own_n);
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
    if (load_optimizer(dir, t)) return -1;
    t->skipped = s->skipped;
    return 0;
}
