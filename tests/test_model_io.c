// Checkpoint IO of the model: save → load round-trips bit-exactly (arena and file bytes), every
// checkpoint name variant of model.md loads to the same parameters, BF16 weights load as their
// exact upcast, and every bad checkpoint (missing, unexpected or misshaped tensor, unknown dtype,
// config disagreeing with the weights, truncated file) is refused with a message naming the file
// and the tensor or field.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../model/model.h"
#include "../model/safetensors.h"

static int failures;

#define CHECK(cond, ...)                             \
    do {                                             \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

static char tmp_root[256];

static void tmp_dir(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmp_root, name);
    mkdir(out, 0755);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = hy_malloc((size_t)len);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static void tiny_config(hy_config *c) {
    if (hy_config_preset(c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
}

// Writes the model's tensors under names produced by rename(), optionally dropping/adding some.
typedef const char *(*rename_fn)(const char *name, char *buf, size_t n);

static void write_variant(const hy_model *m, const char *dir, rename_fn rename, const char *drop, const char *extra,
                          const char *reshape) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (hy_config_save(&m->cfg, path)) {
        fprintf(stderr, "%s\n", hy_last_error());
        exit(1);
    }
    st_write_tensor ts[512];
    char names[512][160];
    int n = 0;
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        if (drop && !strcmp(s->name, drop)) continue;
        const char *name = rename ? rename(s->name, names[n], sizeof names[n]) : s->name;
        if (name != names[n]) snprintf(names[n], sizeof names[n], "%s", name);
        ts[n] = (st_write_tensor){names[n], ST_F32, s->ndim, {0}, m->arena + s->offset};
        for (int d = 0; d < s->ndim; d++) ts[n].shape[d] = s->shape[d];
        if (reshape && !strcmp(s->name, reshape)) ts[n].shape[0] = 1, ts[n].shape[1] = (int64_t)s->numel, ts[n].ndim = 2;
        n++;
    }
    if (extra) {
        snprintf(names[n], sizeof names[n], "%s", extra);
        ts[n] = (st_write_tensor){names[n], ST_F32, 1, {4}, m->arena};
        n++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st_write(path, ts, n, NULL, NULL, 0)) {
        fprintf(stderr, "%s\n", hy_last_error());
        exit(1);
    }
}

static const char *alt_norm_names(const char *name, char *buf, size_t n) {
    // GDN layers of the tiny preset are 0..2: their norms take the alternative names
    if (!strncmp(name, "model.layers.3.", 15)) return name;
    const char *at;
    if ((at = strstr(name, "input_layernorm")))
        snprintf(buf, n, "%.*sattention_layer_norm%s", (int)(at - name), name, at + strlen("input_layernorm"));
    else if ((at = strstr(name, "post_attention_layernorm")))
        snprintf(buf, n, "%.*sfeedforward_layer_norm%s", (int)(at - name), name,
                 at + strlen("post_attention_layernorm"));
    else
        return name;
    return buf;
}

static void test_round_trip(const hy_model *m) {
    char a[300], b[300], fa[400], fb[400];
    tmp_dir(a, sizeof a, "rt_a");
    tmp_dir(b, sizeof b, "rt_b");
    CHECK(hy_model_save(m, a) == 0, "save: %s", hy_last_error());
    hy_model l;
    CHECK(hy_model_load(&l, a) == 0, "load: %s", hy_last_error());
    CHECK(l.table.total == m->table.total && !memcmp(l.arena, m->arena, sizeof(float) * m->table.total),
          "loaded parameters differ from saved ones");
    CHECK(hy_model_save(&l, b) == 0, "re-save: %s", hy_last_error());
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    size_t na, nb;
    unsigned char *ba = slurp(fa, &na), *bb = slurp(fb, &nb);
    CHECK(ba && bb && na == nb && !memcmp(ba, bb, na), "re-saved safetensors differ byte-wise");
    free(ba);
    free(bb);
    hy_model_free(&l);
    printf("  round trip: ok\n");
}

static void test_variants(const hy_model *m) {
    char dir[300];
    tmp_dir(dir, sizeof dir, "alt_norms");
    write_variant(m, dir, alt_norm_names, NULL, NULL, NULL);
    hy_model l;
    int rc = hy_model_load(&l, dir);
    CHECK(rc == 0, "alternative norm names: %s", hy_last_error());
    if (!rc) {
        CHECK(!memcmp(l.arena, m->arena, sizeof(float) * m->table.total), "alternative names load different values");
        hy_model_free(&l);
    }

    // the fused conv split into q/k/v_conv1d tensors
    tmp_dir(dir, sizeof dir, "split_conv");
    const hy_config *c = &m->cfg;
    const int64_t kdim = (int64_t)c->linear_num_key_heads * c->linear_key_head_dim;
    const int64_t vdim = (int64_t)c->linear_num_value_heads * c->linear_value_head_dim, K = c->linear_conv_kernel_dim;
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    hy_config_save(c, path);
    st_write_tensor ts[600];
    char names[600][160];
    int n = 0;
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        if (strstr(s->name, "linear_attn.conv1d")) {
            const float *w = m->arena + s->offset;
            const char *parts[3] = {"q_conv1d", "k_conv1d", "v_conv1d"};
            const int64_t rows[3] = {kdim, kdim, vdim};
            for (int p = 0; p < 3; p++) {
                snprintf(names[n], sizeof names[n], "model.layers.%d.linear_attn.%s.weight", s->layer, parts[p]);
                ts[n] = (st_write_tensor){names[n], ST_F32, 3, {rows[p], 1, K}, w};
                w += rows[p] * K;
                n++;
            }
            continue;
        }
        snprintf(names[n], sizeof names[n], "%s", s->name);
        ts[n] = (st_write_tensor){names[n], ST_F32, s->ndim, {0}, m->arena + s->offset};
        for (int d = 0; d < s->ndim; d++) ts[n].shape[d] = s->shape[d];
        n++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_write(path, ts, n, NULL, NULL, 0);
    rc = hy_model_load(&l, dir);
    CHECK(rc == 0, "split conv names: %s", hy_last_error());
    if (!rc) {
        CHECK(!memcmp(l.arena, m->arena, sizeof(float) * m->table.total), "split conv loads different values");
        hy_model_free(&l);
    }
    printf("  name variants: ok\n");
}

// The same model written as two shards plus model.safetensors.index.json, as large checkpoints are.
static void test_sharded(const hy_model *m) {
    char dir[300], path[400];
    tmp_dir(dir, sizeof dir, "sharded");
    snprintf(path, sizeof path, "%s/config.json", dir);
    hy_config_save(&m->cfg, path);
    st_write_tensor ts[512];
    json_t *map = json_object();
    const int half = m->table.n / 2;
    for (int shard = 0; shard < 2; shard++) {
        const int lo = shard ? half : 0, hi = shard ? m->table.n : half;
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-00002.safetensors", shard + 1);
        for (int i = lo; i < hi; i++) {
            const hy_param_spec *s = &m->table.specs[i];
            ts[i - lo] = (st_write_tensor){s->name, ST_F32, s->ndim, {0}, m->arena + s->offset};
            for (int d = 0; d < s->ndim; d++) ts[i - lo].shape[d] = s->shape[d];
            json_object_set_new(map, s->name, json_string(file));
        }
        snprintf(path, sizeof path, "%s/%s", dir, file);
        CHECK(st_write(path, ts, hi - lo, NULL, NULL, 0) == 0, "shard write: %s", hy_last_error());
    }
    json_t *index = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", map);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_dump_file(index, path, 0);
    json_decref(index);
    hy_model l;
    int rc = hy_model_load(&l, dir);
    CHECK(rc == 0, "sharded load: %s", hy_last_error());
    if (!rc) {
        CHECK(!memcmp(l.arena, m->arena, sizeof(float) * m->table.total), "sharded checkpoint loads different values");
        hy_model_free(&l);
    }
    printf("  sharded index: ok\n");
}

static void expect_load_error(const char *dir, const char *what, const char *needle1, const char *needle2) {
    hy_model l;
    int rc = hy_model_load(&l, dir);
    const char *msg = hy_last_error();
    CHECK(rc != 0, "%s: loaded without error", what);
    if (rc == 0) {
        hy_model_free(&l);
        return;
    }
    CHECK(strstr(msg, needle1) && (!needle2 || strstr(msg, needle2)), "%s: message lacks '%s'/'%s': %s", what,
          needle1, needle2 ? needle2 : "", msg);
    printf("  %-22s -> %s\n", what, msg);
}

static void test_bad_checkpoints(const hy_model *m) {
    char dir[300];
    tmp_dir(dir, sizeof dir, "missing");
    write_variant(m, dir, NULL, "model.layers.1.linear_attn.A_log", NULL, NULL);
    expect_load_error(dir, "missing tensor", "model.layers.1.linear_attn.A_log", "missing");

    tmp_dir(dir, sizeof dir, "extra");
    write_variant(m, dir, NULL, NULL, "model.layers.0.linear_attn.bogus.weight", NULL);
    expect_load_error(dir, "unexpected tensor", "bogus", "unexpected");

    tmp_dir(dir, sizeof dir, "misshaped");
    write_variant(m, dir, NULL, NULL, NULL, "model.layers.0.mlp.up_proj.weight");
    expect_load_error(dir, "misshaped tensor", "model.layers.0.mlp.up_proj.weight", "shape");

    // config that disagrees with the weights: a wider MLP in config.json than in the file
    tmp_dir(dir, sizeof dir, "config_mismatch");
    hy_model wide = *m;
    write_variant(m, dir, NULL, NULL, NULL, NULL);
    wide.cfg.intermediate_size *= 2;
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    hy_config_save(&wide.cfg, path);
    expect_load_error(dir, "config/weights mismatch", "mlp", "shape");

    // truncated safetensors
    tmp_dir(dir, sizeof dir, "truncated");
    write_variant(m, dir, NULL, NULL, NULL, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    stat(path, &st);
    CHECK(truncate(path, st.st_size / 2) == 0, "truncate failed");
    expect_load_error(dir, "truncated file", "model.safetensors", NULL);

    // no config.json
    tmp_dir(dir, sizeof dir, "no_config");
    expect_load_error(dir, "missing config.json", "config.json", NULL);
}

int main(int argc, char **argv) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/hy_test_model_io.%d", (int)getpid());
    mkdir(tmp_root, 0755);
    hy_config c;
    tiny_config(&c);
    hy_model m;
    hy_model_init(&m, &c, 7);
    printf("model io (tiny preset, %zu parameters)\n", m.table.total);
    test_round_trip(&m);
    test_variants(&m);
    test_sharded(&m);
    test_bad_checkpoints(&m);
    hy_model_free(&m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    printf("%d failure(s)\n", failures);
    return failures != 0;
}
