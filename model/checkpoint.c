// HF checkpoint directories <-> hy_model: config.json plus safetensors (single or sharded).
//
// Loading walks the parameter table (params.h) and looks each tensor up under its HF name or one
// of the variants writers use (model.md): GDN pre-mixer / pre-MLP norms named
// attention_layer_norm / feedforward_layer_norm, and the conv split into q_conv1d / k_conv1d /
// v_conv1d instead of the fused conv1d. Each archive tensor must be consumed exactly once, so
// extras are reported as well as gaps. Saving writes the canonical names in table order as F32.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/hy_error.h"
#include "model.h"
#include "safetensors.h"

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

// A stored tensor fits a table row when the element counts agree and the dims agree after
// dropping size-1 dims (conv weights appear as (ch, 1, K) or (ch, K)).
static int shape_matches(const st_tensor *t, int ndim, const int64_t *shape) {
    int64_t a[8], b[8];
    int na = 0, nb = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1) a[na++] = t->shape[i];
    for (int i = 0; i < ndim; i++)
        if (shape[i] != 1) b[nb++] = shape[i];
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int read_checked(const st_archive *a, const st_tensor *t, int ndim, const int64_t *shape, float *out,
                        char *used) {
    if (!shape_matches(t, ndim, shape)) {
        char got[96], want[96];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, ndim, shape);
        return hy_fail("%s: tensor '%s' has shape %s but config.json implies %s", a->paths[t->file], t->name, got,
                       want);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F64)
        return hy_fail("%s: tensor '%s' has dtype %s; model weights must be F32, BF16 or F16", a->paths[t->file],
                       t->name, st_dtype_name(t->dtype));
    used[t - a->tensors] = 1;
    return st_read_f32(a, t, out);
}

static const char *layer_kind_name(hy_layer_kind k) { return k == HY_LAYER_GDN ? "linear_attention" : "full_attention"; }

// Replaces `from` by `to` in name (first occurrence) into buf; 0 when `from` is absent.
static int name_variant(char *buf, size_t n, const char *name, const char *from, const char *to) {
    const char *at = strstr(name, from);
    if (!at) return 0;
    snprintf(buf, n, "%.*s%s%s", (int)(at - name), name, to, at + strlen(from));
    return 1;
}

// The fused conv stored as three tensors q_conv1d | k_conv1d | v_conv1d. They are concatenated in
// that order along the channel dim; only their total is checked, because transformers 5.17's
// save_pretrained splits the fused weight into three equal thirds rather than at the q/k/v sizes
// (and its loader just concatenates), so both splits exist in the wild.
static int load_split_conv(const st_archive *a, const hy_model *m, const hy_param_spec *s, char *used) {
    const int64_t K = m->cfg.linear_conv_kernel_dim, conv_dim = s->shape[0];
    const char *parts[3] = {"q_conv1d", "k_conv1d", "v_conv1d"};
    const st_tensor *t[3];
    int64_t rows = 0;
    for (int i = 0; i < 3; i++) {
        char name[160];
        name_variant(name, sizeof name, s->name, "conv1d", parts[i]);
        t[i] = st_find(a, name);
        if (!t[i]) return -2;  // neither form present: the caller reports the canonical name
        const int64_t last = t[i]->ndim ? t[i]->shape[t[i]->ndim - 1] : 0;
        if (t[i]->ndim < 2 || last != K || t[i]->numel != t[i]->shape[0] * K) {
            char got[96];
            shape_str(got, sizeof got, t[i]->ndim, t[i]->shape);
            return hy_fail("%s: tensor '%s' has shape %s; a depthwise conv weight is [channels, 1, %lld]",
                           a->paths[t[i]->file], name, got, (long long)K);
        }
        rows += t[i]->shape[0];
    }
    if (rows != conv_dim)
        return hy_fail("%s: tensors '%s', '%s', '%s' hold %lld conv channels together but config.json implies %lld "
                       "(2·H_k·Dk + H_v·Dv)",
                       a->paths[t[0]->file], t[0]->name, t[1]->name, t[2]->name, (long long)rows,
                       (long long)conv_dim);
    float *dst = m->arena + s->offset;
    for (int i = 0; i < 3; i++) {
        int64_t shape[3] = {t[i]->shape[0], 1, K};
        if (read_checked(a, t[i], 3, shape, dst, used)) return -1;
        dst += t[i]->shape[0] * K;
    }
    return 0;
}

static int tensor_is_ignorable(const hy_model *m, const char *name) {
    // HF itself ignores these on load: multi-token-prediction heads, rotary caches, and a tied head.
    if (!strncmp(name, "mtp.", 4) || strstr(name, "rotary_emb.inv_freq")) return 1;
    return m->cfg.tie_word_embeddings && !strcmp(name, "lm_head.weight");
}

static int load_tensors(hy_model *m, const st_archive *a) {
    char *used = hy_calloc((size_t)a->n_tensors, 1);
    int rc = 0;
    for (int i = 0; i < m->table.n && !rc; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        const st_tensor *t = st_find(a, s->name);
        char alt[160];
        if (!t && s->layer >= 0) {
            // OLMo-core names, which transformers' save_pretrained also writes back (for both kinds
            // of layer: in an attention layer feedforward_layer_norm is the post-attention norm)
            if (name_variant(alt, sizeof alt, s->name, "input_layernorm", "attention_layer_norm") ||
                name_variant(alt, sizeof alt, s->name, "post_attention_layernorm", "feedforward_layer_norm"))
                t = st_find(a, alt);
            if (!t && strstr(s->name, "linear_attn.conv1d")) {
                int r = load_split_conv(a, m, s, used);
                if (r == 0) continue;
                if (r == -1) {
                    rc = -1;
                    break;
                }
            }
        }
        if (!t) {
            if (s->layer >= 0)
                rc = hy_fail("%s: missing tensor '%s' (config.json makes layer %d a %s layer)", a->paths[0],
                             s->name, s->layer, layer_kind_name(m->cfg.layer_types[s->layer]));
            else
                rc = hy_fail("%s: missing tensor '%s'", a->paths[0], s->name);
            break;
        }
        rc = read_checked(a, t, s->ndim, s->shape, m->arena + s->offset, used);
    }
    for (int i = 0; i < a->n_tensors && !rc; i++)
        if (!used[i] && !tensor_is_ignorable(m, a->tensors[i].name))
            rc = hy_fail("%s: unexpected tensor '%s' (not part of the model config.json describes)",
                         a->paths[a->tensors[i].file], a->tensors[i].name);
    free(used);
    return rc;
}

hy_backend *hy_cpu_backend(void) {
    static hy_backend *cpu;  // shared by every model on the CPU; lives as long as the process
    if (!cpu) cpu = hy_backend_cpu_new();
    return cpu;
}

// Binds the views for the backend the model is on (dev / mm already set).
static void bind_views(hy_model *m) {
    hy_params_bind(&m->p, &m->table, &m->cfg, m->dev);
    hy_params_bind_elems(&m->pmm, &m->table, &m->cfg, m->mm, m->be->act_bytes);
}

static void detach(hy_model *m) {
    if (m->be && m->dev && m->dev != m->arena) m->be->free_persistent(m->be, m->dev);
    if (m->be && m->mm && m->mm != (void *)m->dev && m->mm != (void *)m->arena) m->be->free_persistent(m->be, m->mm);
    m->dev = NULL;
    m->mm = NULL;
}

void hy_model_attach(hy_model *m, hy_backend *be) {
    detach(m);
    m->be = be;
    if (be->device == HY_DEVICE_CPU) {
        m->dev = m->arena;
        m->mm = m->arena;
    } else {
        m->dev = be->alloc_persistent(be, m->table.total * sizeof(float));
        be->f32_from_host(be, m->dev, m->arena, m->table.total);
        m->mm = be->alloc_persistent(be, m->table.total * be->act_bytes);
        be->params_to_matmul_view(be, m->mm, m->dev, m->table.total);
    }
    bind_views(m);
}

void hy_model_sync_to_host(hy_model *m) {
    if (m->dev != m->arena) m->be->f32_to_host(m->be, m->arena, m->dev, m->table.total);
}

int hy_model_load(hy_model *m, const char *dir) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (hy_config_load(&m->cfg, path)) return -1;
    st_archive a;
    if (st_open(&a, dir)) return -1;
    hy_param_table_build(&m->table, &m->cfg);
    m->arena = hy_calloc(m->table.total, sizeof(float));
    int rc = load_tensors(m, &a);
    st_close(&a);
    if (rc)
        hy_model_free(m);
    else
        hy_model_attach(m, hy_cpu_backend());
    return rc;
}

int hy_model_save(const hy_model *m, const char *dir) {
    if (mkdir(dir, 0755) && errno != EEXIST) return hy_fail("%s: cannot create directory: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (hy_config_save(&m->cfg, path)) return -1;
    st_write_tensor *ts = hy_calloc((size_t)m->table.n, sizeof *ts);
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        ts[i].name = s->name;
        ts[i].dtype = ST_F32;
        ts[i].ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) ts[i].shape[d] = s->shape[d];
        ts[i].data = m->arena + s->offset;
    }
    const char *keys[] = {"format"}, *values[] = {"pt"};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_write(path, ts, m->table.n, keys, values, 1);
    free(ts);
    return rc;
}

void hy_model_init(hy_model *m, const hy_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    hy_param_table_build(&m->table, cfg);
    m->arena = hy_calloc(m->table.total, sizeof(float));
    hy_params_init_random(m->arena, &m->table, cfg, seed);
    hy_model_attach(m, hy_cpu_backend());
}

void hy_model_free(hy_model *m) {
    detach(m);
    free(m->arena);
    hy_param_table_free(&m->table);
    memset(m, 0, sizeof *m);
}

int hy_model_check_tokens(const hy_model *m, const int32_t *tokens, int n) {
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return hy_fail("token id %d at position %d is outside the vocabulary [0, %d)", tokens[i], i,
                           m->cfg.vocab_size);
    return 0;
}
