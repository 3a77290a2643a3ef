// Named-record state files with magic, version and checksum (see state_file.h).
#include "state_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/hy_error.h"

// ---- checksum: 8-byte words, multiply-xorshift mixing; the tail (< 8 bytes) is folded in last ----

static const uint64_t SUM_SEED = 0x9e3779b97f4a7c15ull, SUM_MUL = 0xff51afd7ed558ccdull;

static void sum_init(hy_checksum *c) {
    c->state = SUM_SEED;
    c->n_tail = 0;
}

static void sum_word(hy_checksum *c, uint64_t w) {
    c->state = (c->state ^ w) * SUM_MUL;
    c->state ^= c->state >> 32;
}

static void sum_update(hy_checksum *c, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n && c->n_tail) {  // finish a partial word first
        c->tail[c->n_tail++] = *p++;
        n--;
        if (c->n_tail == 8) {
            uint64_t w;
            memcpy(&w, c->tail, 8);
            sum_word(c, w);
            c->n_tail = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        sum_word(c, w);
    }
    memcpy(c->tail, p, n);
    c->n_tail = (int)n;
}

static uint64_t sum_final(const hy_checksum *c) {
    hy_checksum f = *c;
    uint64_t w = 0;
    memcpy(&w, f.tail, (size_t)f.n_tail);
    sum_word(&f, w ^ ((uint64_t)f.n_tail << 56));
    return f.state;
}

static const char TRAILER[4] = {'E', 'N', 'D', 0};

// ---- writing ----

static void put(hy_state_writer *w, const void *data, size_t n) {
    hy_atomic_file_write(&w->f, data, n);
    sum_update(&w->sum, data, n);
}

int hy_state_write_open(hy_state_writer *w, const char *path, const char magic[8], uint32_t version) {
    if (hy_atomic_file_open(&w->f, path)) return -1;
    sum_init(&w->sum);
    const uint32_t zero = 0;
    put(w, magic, 8);
    put(w, &version, 4);
    put(w, &zero, 4);
    return 0;
}

void hy_state_write_record(hy_state_writer *w, const char *name, int type, uint64_t count) {
    const uint16_t len = (uint16_t)strlen(name);
    const uint8_t t = (uint8_t)type;
    put(w, &len, 2);
    put(w, name, len);
    put(w, &t, 1);
    put(w, &count, 8);
}

void hy_state_write_payload(hy_state_writer *w, const void *data, size_t bytes) { put(w, data, bytes); }

void hy_state_write_u64(hy_state_writer *w, const char *name, const uint64_t *values, uint64_t count) {
    hy_state_write_record(w, name, HY_REC_U64, count);
    put(w, values, count * 8);
}

void hy_state_write_bytes(hy_state_writer *w, const char *name, const void *data, uint64_t n) {
    hy_state_write_record(w, name, HY_REC_BYTES, n);
    put(w, data, n);
}

int hy_state_write_close(hy_state_writer *w) {
    const uint64_t sum = sum_final(&w->sum);
    hy_atomic_file_write(&w->f, TRAILER, 4);
    hy_atomic_file_write(&w->f, &sum, 8);
    return hy_atomic_file_commit(&w->f);
}

// ---- reading ----

static int get(hy_state_reader *r, void *data, size_t n, const char *what) {
    if (r->offset + n > r->size)
        return hy_fail("%s: truncated: %s needs %zu bytes at offset %llu but the file ends at %llu", r->path, what, n,
                       (unsigned long long)r->offset, (unsigned long long)r->size);
    if (fread(data, 1, n, r->f) != n) return hy_fail("%s: read error in %s: %s", r->path, what, strerror(errno));
    r->offset += n;
    sum_update(&r->sum, data, n);
    return 0;
}

int hy_state_read_open(hy_state_reader *r, const char *path, const char magic[8], uint32_t version) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    fstat(fileno(r->f), &st);
    r->size = (uint64_t)st.st_size;
    sum_init(&r->sum);
    char got[8];
    uint32_t v, zero;
    int rc = get(r, got, 8, "the magic");
    if (!rc && memcmp(got, magic, 8))
        rc = hy_fail("%s: not a %.8s file (wrong magic bytes)", path, magic);
    if (!rc) rc = get(r, &v, 4, "the version");
    if (!rc && (v < 1 || v > version))
        rc = hy_fail("%s: format version %u, but this build reads versions 1 to %u", path, v, version);
    r->version = v;
    if (!rc) rc = get(r, &zero, 4, "the header");
    if (rc) hy_state_read_abort(r);
    return rc;
}

static const char *type_name(int type) {
    return type == HY_REC_U64 ? "u64" : type == HY_REC_F32 ? "f32" : type == HY_REC_BYTES ? "bytes" : "unknown";
}

static size_t elem_bytes(int type) { return type == HY_REC_U64 ? 8 : type == HY_REC_F32 ? 4 : 1; }

int hy_state_read_record(hy_state_reader *r, const char *name, int type, uint64_t *count) {
    snprintf(r->field, sizeof r->field, "field '%s'", name);
    uint16_t len;
    char got[1024];
    uint8_t t;
    if (get(r, &len, 2, r->field)) return -1;
    if (len >= sizeof got) return hy_fail("%s: %s expected, found a record name of %u bytes", r->path, r->field, len);
    if (get(r, got, len, r->field)) return -1;
    got[len] = '\0';
    if (strcmp(got, name))
        return hy_fail("%s: field '%s' expected at offset %llu, found '%s' (file from another version?)", r->path,
                       name, (unsigned long long)(r->offset - len - 2), got);
    if (get(r, &t, 1, r->field) || get(r, count, 8, r->field)) return -1;
    if (t != type)
        return hy_fail("%s: field '%s' holds %s values, expected %s", r->path, name, type_name(t), type_name(type));
    const uint64_t bytes = *count * elem_bytes(type);
    if (*count > r->size || r->offset + bytes > r->size)
        return hy_fail("%s: truncated: field '%s' claims %llu values (%llu bytes) at offset %llu but the file ends at "
                       "%llu",
                       r->path, name, (unsigned long long)*count, (unsigned long long)bytes,
                       (unsigned long long)r->offset, (unsigned long long)r->size);
    r->count = *count;
    return 0;
}

int hy_state_read_payload(hy_state_reader *r, void *data, size_t bytes) { return get(r, data, bytes, r->field); }

int hy_state_read_u64(hy_state_reader *r, const char *name, uint64_t *values, uint64_t count) {
    uint64_t n;
    if (hy_state_read_record(r, name, HY_REC_U64, &n)) return -1;
    if (n != count) return hy_fail("%s: field '%s' has %llu values, expected %llu", r->path, name,
                                   (unsigned long long)n, (unsigned long long)count);
    return get(r, values, count * 8, r->field);
}

int hy_state_read_bytes(hy_state_reader *r, const char *name, char **data, uint64_t *n) {
    *data = NULL;
    if (hy_state_read_record(r, name, HY_REC_BYTES, n)) return -1;
    char *buf = hy_malloc(*n + 1);
    if (get(r, buf, *n, r->field)) {
        free(buf);
        return -1;
    }
    buf[*n] = '\0';
    *data = buf;
    return 0;
}

int hy_state_read_close(hy_state_reader *r) {
    const uint64_t expect = sum_final(&r->sum);
    char trailer[4];
    uint64_t sum;
    int rc = get(r, trailer, 4, "the end marker");
    if (!rc && memcmp(trailer, TRAILER, 4))
        rc = hy_fail("%s: no end marker after the last field (file from another version, or damaged)", r->path);
    if (!rc) rc = get(r, &sum, 8, "the checksum");
    if (!rc && sum != expect) rc = hy_fail("%s: checksum mismatch: the file is damaged", r->path);
    if (!rc && r->offset != r->size)
        rc = hy_fail("%s: %llu unexpected bytes after the checksum", r->path,
                     (unsigned long long)(r->size - r->offset));
    hy_state_read_abort(r);
    return rc;
}

void hy_state_read_abort(hy_state_reader *r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
}
