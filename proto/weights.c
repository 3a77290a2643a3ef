// Weight images (see weights.h): writing one from a parameter arena, checking one against a model's
// own table, and loading it onto the model's backend.
#include "proto/weights.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

static uint64_t fnv1a(const void *bytes, size_t n) {
    const uint8_t *p = bytes;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t hy_weights_checksum(const float *data, size_t n) { return fnv1a(data, n * sizeof(float)); }

uint64_t hy_weights_table_hash(const hy_model *m) {
    uint64_t h = fnv1a("HYWB1", 5);
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        const uint64_t fields[4] = {(uint64_t)s->ndim, s->offset, s->numel, 0 /* f32 */};
        h ^= fnv1a(s->name, strlen(s->name)) + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        h = (h ^ fnv1a(fields, sizeof fields)) * 1099511628211ull;
        h = (h ^ fnv1a(s->shape, sizeof(int64_t) * (size_t)s->ndim)) * 1099511628211ull;
    }
    return h;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} byte_buf;

static void put(byte_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = hy_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

void hy_weights_image(const hy_model *m, const float *arena, uint64_t version, uint8_t **out, size_t *size) {
    const hy_param_table *t = &m->table;
    byte_buf b = {0};
    const uint32_t format = 1, n_tensors = (uint32_t)t->n;
    const uint64_t checksum = hy_weights_checksum(arena, t->total), total = t->total;
    put(&b, HY_WEIGHTS_MAGIC, 4);
    put(&b, &format, 4);
    put(&b, &version, 8);
    put(&b, &checksum, 8);
    put(&b, &n_tensors, 4);
    put(&b, &total, 8);
    for (int i = 0; i < t->n; i++) {
        const hy_param_spec *s = &t->specs[i];
        const uint16_t len = (uint16_t)strlen(s->name);
        const uint8_t dtype = 0, ndim = (uint8_t)s->ndim;
        const uint64_t offset = s->offset, numel = s->numel;
        put(&b, &len, 2);
        put(&b, s->name, len);
        put(&b, &dtype, 1);
        put(&b, &ndim, 1);
        put(&b, s->shape, sizeof(int64_t) * (size_t)s->ndim);
        put(&b, &offset, 8);
        put(&b, &numel, 8);
    }
    put(&b, arena, sizeof(float) * t->total);
    *out = b.p;
    *size = b.n;
}

typedef struct {
    const uint8_t *p;
    size_t n, at;
} reader;

static int take(reader *r, void *dst, size_t n, const char *what) {
    if (r->n - r->at < n) return hy_fail("weight image: truncated at %s (byte %zu of %zu)", what, r->at, r->n);
    memcpy(dst, r->p + r->at, n);
    r->at += n;
    return 0;
}

int hy_weights_check(const hy_model *m, const uint8_t *image, size_t size, const uint8_t **data, uint64_t *version,
                     uint64_t *checksum) {
    const hy_param_table *t = &m->table;
    reader r = {image, size, 0};
    char magic[4] = {0};
    uint32_t format = 0, n_tensors = 0;
    uint64_t total = 0;
    if (take(&r, magic, 4, "magic") || memcmp(magic, HY_WEIGHTS_MAGIC, 4))
        return hy_fail("weight image: not a weight image (bad magic)");
    if (take(&r, &format, 4, "format")) return -1;
    if (format != 1) return hy_fail("weight image: format %u, this build reads format 1", format);
    if (take(&r, version, 8, "version") || take(&r, checksum, 8, "checksum") ||
        take(&r, &n_tensors, 4, "n_tensors") || take(&r, &total, 8, "total_floats"))
        return -1;
    if (n_tensors != (uint32_t)t->n)
        return hy_fail("weight image: %u tensors, this model has %d (another model or config)", n_tensors, t->n);
    if (total != t->total)
        return hy_fail("weight image: %llu floats, this model has %zu", (unsigned long long)total, t->total);
    for (int i = 0; i < t->n; i++) {
        const hy_param_spec *s = &t->specs[i];
        uint16_t len = 0;
        char name[sizeof s->name];
        uint8_t dtype = 0, ndim = 0;
        int64_t shape[8] = {0};
        uint64_t offset = 0, numel = 0;
        if (take(&r, &len, 2, "a tensor name")) return -1;
        if (len >= sizeof name) return hy_fail("weight image: tensor %d: name of %u bytes is too long", i, len);
        if (take(&r, name, len, "a tensor name")) return -1;
        name[len] = 0;
        if (strcmp(name, s->name))
            return hy_fail("weight image: tensor %d is '%s', this model expects '%s'", i, name, s->name);
        if (take(&r, &dtype, 1, name) || take(&r, &ndim, 1, name)) return -1;
        if (dtype != 0) return hy_fail("weight image: tensor '%s': dtype %u, expected 0 (f32)", name, dtype);
        if (ndim != s->ndim)
            return hy_fail("weight image: tensor '%s': %u dimensions, expected %d", name, ndim, s->ndim);
        if (ndim > 8 || take(&r, shape, sizeof(int64_t) * ndim, name)) return -1;
        for (int d = 0; d < ndim; d++)
            if (shape[d] != s->shape[d])
                return hy_fail("weight image: tensor '%s': dimension %d is %lld, expected %lld", name, d,
                               (long long)shape[d], (long long)s->shape[d]);
        if (take(&r, &offset, 8, name) || take(&r, &numel, 8, name)) return -1;
        if (offset != s->offset || numel != s->numel)
            return hy_fail("weight image: tensor '%s': offset %llu / %llu elements, expected %zu / %zu", name,
                           (unsigned long long)offset, (unsigned long long)numel, s->offset, s->numel);
    }
    if (r.n - r.at != sizeof(float) * t->total)
        return hy_fail("weight image: %zu data bytes, expected %zu", r.n - r.at, sizeof(float) * t->total);
    // The data may be unaligned inside a ZeroMQ message: hash the bytes as they are.
    const uint8_t *d = r.p + r.at;
    const uint64_t h = fnv1a(d, sizeof(float) * t->total);
    if (h != *checksum)
        return hy_fail("weight image: checksum mismatch (data %016llx, header %016llx): corrupted transfer",
                       (unsigned long long)h, (unsigned long long)*checksum);
    *data = d;
    return 0;
}

int hy_weights_load(hy_model *m, const uint8_t *image, size_t size, uint64_t *version, uint64_t *checksum) {
    const uint8_t *data;
    if (hy_weights_check(m, image, size, &data, version, checksum)) return -1;
    const size_t n = m->table.total;
    float *host = hy_malloc(sizeof(float) * n);
    memcpy(host, data, sizeof(float) * n);
    hy_backend *be = m->be;
    if (m->dev != m->arena) memcpy(m->arena, host, sizeof(float) * n);
    be->f32_from_host(be, m->dev, host, n);
    if (m->mm != (void *)m->dev) be->params_to_matmul_view(be, m->mm, m->dev, n);
    be->synchronize(be);
    free(host);
    return 0;
}
