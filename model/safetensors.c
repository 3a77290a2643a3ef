// Safetensors reader / writer (see safetensors.h for the format).
//
// Opening parses and validates every header up front, so later reads can trust offsets: a header
// is untrusted input, and a wrong length or offset would otherwise turn into an out-of-bounds read
// or a silently wrong tensor. Data is never loaded whole (checkpoints are GBs): each read opens the
// file, seeks to the tensor and converts it in bounded chunks into the caller's buffer.
//
// Invariants after st_open: every tensor's [begin, end) lies inside its file's data buffer, has
// exactly numel · dtype-size bytes and overlaps no other tensor of that file; names are unique
// across shards; a.tensors is sorted by name (st_find is a binary search; file order is not kept).
//
// Writing mirrors the reference (Rust) writer: "__metadata__" first, header padded with spaces to a
// multiple of 8 so the data buffer is aligned, data contiguous in the given order. The file goes to
// "<path>.tmp.<pid>" and is renamed into place, so a crash never leaves a half-written checkpoint.
#include "model/safetensors.h"

#include "common/hy_error.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

// No real checkpoint header comes near this; a larger claim means a corrupt or hostile file.
enum { ST_MAX_HEADER = 100 * 1000 * 1000 };
// Conversion buffer for non-F32 reads: bounds extra memory whatever the tensor size.
enum { ST_CHUNK_BYTES = 1 << 20 };

const char *st_dtype_name(st_dtype d) {
    switch (d) {
    case ST_F32: return "F32";
    case ST_BF16: return "BF16";
    case ST_F16: return "F16";
    case ST_I32: return "I32";
    case ST_I64: return "I64";
    case ST_F64: return "F64";
    }
    return "?";
}

static size_t dtype_size(st_dtype d) {
    switch (d) {
    case ST_BF16:
    case ST_F16: return 2;
    case ST_F32:
    case ST_I32: return 4;
    case ST_I64:
    case ST_F64: return 8;
    }
    return 0;
}

static int dtype_parse(const char *s, st_dtype *out) {
    static const st_dtype all[] = {ST_F32, ST_BF16, ST_F16, ST_I32, ST_I64, ST_F64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, st_dtype_name(all[i])) == 0) return *out = all[i], 0;
    return -1;
}

static int dtype_is_float(st_dtype d) { return d == ST_F32 || d == ST_BF16 || d == ST_F16 || d == ST_F64; }

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

// ---- growing the archive while opening ----

static int archive_add_path(st_archive *a, const char *path) {
    a->paths = hy_realloc(a->paths, (size_t)(a->n_paths + 1) * sizeof *a->paths);
    a->data_start = hy_realloc(a->data_start, (size_t)(a->n_paths + 1) * sizeof *a->data_start);
    a->paths[a->n_paths] = hy_strdup(path);
    a->data_start[a->n_paths] = 0;
    return a->n_paths++;
}

void st_close(st_archive *a) {
    for (int i = 0; i < a->n_paths; i++) free(a->paths[i]);
    for (int i = 0; i < a->n_tensors; i++) free(a->tensors[i].name);
    free(a->paths);
    free(a->data_start);
    free(a->tensors);
    memset(a, 0, sizeof *a);
}

// ---- one file's header ----

static int file_size_of(FILE *f, const char *path, uint64_t *size) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return hy_fail("%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return hy_fail("%s: not a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

// Reads an integer JSON value that must be >= 0 (shape dims, offsets).
static int json_nonneg(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

// Validates one header entry and appends it to a->tensors. data_size: bytes after the header.
static int parse_entry(st_archive *a, int file, const char *name, json_t *e, uint64_t data_size) {
    const char *path = a->paths[file];
    if (!json_is_object(e)) return hy_fail("%s: tensor '%s': header entry is not a JSON object", path, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!jd) return hy_fail("%s: tensor '%s': header entry has no 'dtype'", path, name);
    if (!js) return hy_fail("%s: tensor '%s': header entry has no 'shape'", path, name);
    if (!jo) return hy_fail("%s: tensor '%s': header entry has no 'data_offsets'", path, name);
    if (!json_is_string(jd)) return hy_fail("%s: tensor '%s': 'dtype' is not a string", path, name);
    if (!json_is_array(js)) return hy_fail("%s: tensor '%s': 'shape' is not an array", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return hy_fail("%s: tensor '%s': 'data_offsets' is not an array of two integers", path, name);

    st_tensor t = {0};
    t.file = file;
    if (dtype_parse(json_string_value(jd), &t.dtype) != 0)
        return hy_fail("%s: tensor '%s': unknown dtype '%s' (supported: F32, BF16, F16, F64, I32, I64)", path, name,
                       json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > 8) return hy_fail("%s: tensor '%s': shape has %zu dimensions, at most 8 supported", path, name, nd);
    t.ndim = (int)nd;
    t.numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        uint64_t dim;
        if (!json_is_integer(d)) return hy_fail("%s: tensor '%s': shape[%zu] is not an integer", path, name, i);
        if (json_nonneg(d, &dim) != 0)
            return hy_fail("%s: tensor '%s': shape[%zu] is negative (%lld)", path, name, i,
                           (long long)json_integer_value(d));
        t.shape[i] = (int64_t)dim;
        // Any honest tensor fits in the file, so a product past 2^62 is corruption, not a big model.
        if (dim != 0 && (uint64_t)t.numel > ((uint64_t)1 << 62) / dim)
            return hy_fail("%s: tensor '%s': shape overflows the element count", path, name);
        t.numel *= (int64_t)dim;
    }
    if (json_nonneg(json_array_get(jo, 0), &t.begin) != 0 || json_nonneg(json_array_get(jo, 1), &t.end) != 0)
        return hy_fail("%s: tensor '%s': 'data_offsets' must be two non-negative integers", path, name);
    char sh[160];
    shape_str(t.shape, t.ndim, sh, sizeof sh);
    if (t.end < t.begin)
        return hy_fail("%s: tensor '%s': data_offsets out of order (begin %llu > end %llu)", path, name,
                       (unsigned long long)t.begin, (unsigned long long)t.end);
    if (t.end > data_size)
        return hy_fail("%s: tensor '%s': data_offsets end %llu is beyond the end of the file (data buffer is %llu bytes)",
                       path, name, (unsigned long long)t.end, (unsigned long long)data_size);
    uint64_t need = (uint64_t)t.numel * dtype_size(t.dtype);
    if (t.end - t.begin != need)
        return hy_fail("%s: tensor '%s': header says %llu bytes, shape %s %s needs %llu", path, name,
                       (unsigned long long)(t.end - t.begin), sh, st_dtype_name(t.dtype), (unsigned long long)need);
    t.name = hy_strdup(name);
    a->tensors = hy_realloc(a->tensors, (size_t)(a->n_tensors + 1) * sizeof *a->tensors);
    a->tensors[a->n_tensors++] = t;
    return 0;
}

static int cmp_by_begin(const void *x, const void *y) {
    const st_tensor *a = *(const st_tensor *const *)x, *b = *(const st_tensor *const *)y;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    return a->end < b->end ? -1 : a->end > b->end;
}

// Tensors [first, a->n_tensors) all come from one file; no two may share bytes. Sorted by begin,
// each non-empty tensor must start at or after the furthest end seen so far.
static int check_overlaps(const st_archive *a, int first) {
    int n = a->n_tensors - first;
    if (n < 2) return 0;
    const st_tensor **v = hy_malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = &a->tensors[first + i];
    qsort(v, (size_t)n, sizeof *v, cmp_by_begin);
    int rc = 0;
    const st_tensor *furthest = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        if (v[i]->begin == v[i]->end) continue;  // empty tensors own no bytes
        if (furthest && v[i]->begin < furthest->end)
            rc = hy_fail("%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", a->paths[v[i]->file],
                         furthest->name, (unsigned long long)furthest->begin, (unsigned long long)furthest->end,
                         v[i]->name, (unsigned long long)v[i]->begin, (unsigned long long)v[i]->end);
        if (!furthest || v[i]->end > furthest->end) furthest = v[i];
    }
    free(v);
    return rc;
}

// Parses the header of file a->paths[file] and appends its tensors.
static int open_file(st_archive *a, int file) {
    const char *path = a->paths[file];
    FILE *f = fopen(path, "rb");
    if (!f) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    uint64_t size = 0, hlen = 0;
    unsigned char len8[8];
    char *text = NULL;
    json_t *root = NULL;
    int rc = -1;
    if (file_size_of(f, path, &size) != 0) goto done;
    if (size < 8) {
        hy_fail("%s: file is %llu bytes, too short for the 8-byte header length", path, (unsigned long long)size);
        goto done;
    }
    if (fread(len8, 1, 8, f) != 8) {
        hy_fail("%s: cannot read the header length", path);
        goto done;
    }
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > ST_MAX_HEADER) {
        hy_fail("%s: header length %llu is absurd (limit %d bytes): not a safetensors file?", path,
                (unsigned long long)hlen, ST_MAX_HEADER);
        goto done;
    }
    if (hlen > size - 8) {
        hy_fail("%s: header length %llu is larger than the file (%llu bytes): file truncated?", path,
                (unsigned long long)hlen, (unsigned long long)size);
        goto done;
    }
    text = hy_malloc((size_t)hlen + 1);
    if (fread(text, 1, (size_t)hlen, f) != hlen) {
        hy_fail("%s: cannot read the %llu-byte header", path, (unsigned long long)hlen);
        goto done;
    }
    json_error_t err;
    root = json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        hy_fail("%s: header is not valid JSON (line %d column %d: %s)", path, err.line, err.column, err.text);
        goto done;
    }
    if (!json_is_object(root)) {
        hy_fail("%s: header is not a JSON object", path);
        goto done;
    }
    a->data_start[file] = 8 + hlen;
    int first = a->n_tensors;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                hy_fail("%s: '__metadata__' is not a JSON object", path);
                goto done;
            }
            continue;
        }
        if (parse_entry(a, file, key, val, size - 8 - hlen) != 0) goto done;
    }
    rc = check_overlaps(a, first);
done:
    json_decref(root);
    free(text);
    fclose(f);
    return rc;
}

static int cmp_by_name(const void *x, const void *y) {
    return strcmp(((const st_tensor *)x)->name, ((const st_tensor *)y)->name);
}

// Sorts by name (for st_find) and rejects a name present in two shards.
static int sort_and_check_unique(st_archive *a) {
    qsort(a->tensors, (size_t)a->n_tensors, sizeof *a->tensors, cmp_by_name);
    for (int i = 1; i < a->n_tensors; i++)
        if (strcmp(a->tensors[i - 1].name, a->tensors[i].name) == 0)
            return hy_fail("%s: tensor '%s' also appears in %s (duplicate name across shards)",
                           a->paths[a->tensors[i].file], a->tensors[i].name, a->paths[a->tensors[i - 1].file]);
    return 0;
}

// ---- sharded checkpoints ----

// Shard names are relative to the index's folder (dir ends in '/' or is empty).
static char *shard_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 1;
    char *full = hy_malloc(n);
    snprintf(full, n, "%s%s", rel[0] == '/' ? "" : dir, rel);
    return full;
}

static int open_index(st_archive *a, const char *index_path) {
    json_error_t err;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (access(index_path, R_OK) != 0) return hy_fail("%s: cannot open: %s", index_path, strerror(errno));
        return hy_fail("%s: not valid JSON (line %d column %d: %s)", index_path, err.line, err.column, err.text);
    }
    int rc = -1;
    char *dir = hy_strdup(index_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0';
    else dir[0] = '\0';
    json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    const char *name;
    json_t *shard;
    if (!map || !json_is_object(map)) {
        hy_fail("%s: field 'weight_map' is missing or not an object", index_path);
        goto done;
    }
    if (json_object_size(map) == 0) {
        hy_fail("%s: field 'weight_map' is empty", index_path);
        goto done;
    }
    // Each distinct shard is opened once, in order of first mention.
    json_object_foreach(map, name, shard) {
        if (!json_is_string(shard) || json_string_length(shard) == 0) {
            hy_fail("%s: weight_map['%s'] is not a shard file name", index_path, name);
            goto done;
        }
        const char *rel = json_string_value(shard);
        char *full = shard_path(dir, rel);
        int seen = 0;
        for (int i = 0; i < a->n_paths && !seen; i++) seen = strcmp(a->paths[i], full) == 0;
        if (!seen) {
            int file = archive_add_path(a, full);
            if (open_file(a, file) != 0) {
                free(full);
                hy_fail_prefix("%s: shard '%s'", index_path, rel);
                goto done;
            }
        }
        free(full);
    }
    if (sort_and_check_unique(a) != 0) goto done;
    json_object_foreach(map, name, shard) {
        st_tensor key = {.name = (char *)name};
        const st_tensor *t = bsearch(&key, a->tensors, (size_t)a->n_tensors, sizeof key, cmp_by_name);
        const char *rel = json_string_value(shard);
        char *full = shard_path(dir, rel);
        int in_shard = t && strcmp(a->paths[t->file], full) == 0;
        free(full);
        if (!in_shard) {
            hy_fail("%s: index lists tensor '%s' in shard '%s', but that shard has no such tensor", index_path, name,
                    rel);
            goto done;
        }
    }
    rc = 0;
done:
    free(dir);
    json_decref(root);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int st_open(st_archive *a, const char *path) {
    memset(a, 0, sizeof *a);
    struct stat st;
    if (stat(path, &st) != 0) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 64;
        char *index = hy_malloc(n), *single = hy_malloc(n);
        snprintf(index, n, "%s/model.safetensors.index.json", path);
        snprintf(single, n, "%s/model.safetensors", path);
        if (is_file(index)) rc = open_index(a, index);
        else if (is_file(single)) rc = open_file(a, archive_add_path(a, single));
        else rc = hy_fail("%s: directory has neither model.safetensors.index.json nor model.safetensors", path);
        free(index);
        free(single);
    } else if (ends_with(path, ".json")) {
        rc = open_index(a, path);
    } else {
        rc = open_file(a, archive_add_path(a, path));
    }
    // An index was already sorted and checked while matching its weight_map; this pass serves
    // single files, and is a cheap no-op after an index.
    if (rc == 0) rc = sort_and_check_unique(a);
    if (rc != 0) st_close(a);
    return rc;
}

const st_tensor *st_find(const st_archive *a, const char *name) {
    st_tensor key = {.name = (char *)name};
    return a->tensors ? bsearch(&key, a->tensors, (size_t)a->n_tensors, sizeof key, cmp_by_name) : NULL;
}

// ---- reading ----

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Exact for every half value: normals rebias the exponent, subnormals are renormalised, inf and
// NaN keep their payload (so a quiet NaN stays quiet).
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | mant << 13;
    } else if (exp != 0) {
        u = sign | (exp + 112) << 23 | mant << 13;
    } else if (mant == 0) {
        u = sign;
    } else {
        // value = mant · 2^-24; shift the leading 1 up to the implicit-bit position (bit 10).
        int e = 113;  // exponent of 2^-14 (the subnormal scale) in f32 bias
        while (!(mant & 0x400)) mant <<= 1, e--;
        u = sign | (uint32_t)e << 23 | (mant & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Opens the tensor's file and positions it at the tensor's first byte.
static FILE *open_at(const st_archive *a, const st_tensor *t) {
    const char *path = a->paths[t->file];
    FILE *f = fopen(path, "rb");
    if (!f) {
        hy_fail("%s: tensor '%s': cannot open: %s", path, t->name, strerror(errno));
        return NULL;
    }
    if (fseeko(f, (off_t)(a->data_start[t->file] + t->begin), SEEK_SET) != 0) {
        hy_fail("%s: tensor '%s': cannot seek: %s", path, t->name, strerror(errno));
        fclose(f);
        return NULL;
    }
    return f;
}

static int short_read(const st_archive *a, const st_tensor *t) {
    return hy_fail("%s: tensor '%s': short read (file changed or truncated since it was opened)", a->paths[t->file],
                   t->name);
}

// Reads t's raw bytes chunk by chunk, handing each chunk (n elements) to convert(dst + done).
typedef void (*convert_fn)(const void *src, size_t n, void *dst, size_t done);

static int read_chunked(const st_archive *a, const st_tensor *t, convert_fn convert, void *dst) {
    FILE *f = open_at(a, t);
    if (!f) return -1;
    size_t esz = dtype_size(t->dtype), per = ST_CHUNK_BYTES / esz, total = (size_t)t->numel;
    unsigned char *buf = hy_malloc(per * esz);
    int rc = 0;
    for (size_t done = 0; done < total && rc == 0; done += per) {
        size_t n = total - done < per ? total - done : per;
        if (fread(buf, esz, n, f) != n) rc = short_read(a, t);
        else convert(buf, n, dst, done);
    }
    free(buf);
    fclose(f);
    return rc;
}

static void conv_bf16(const void *src, size_t n, void *dst, size_t done) {
    const unsigned char *s = src;
    float *o = (float *)dst + done;
    for (size_t i = 0; i < n; i++) o[i] = bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
}

static void conv_f16(const void *src, size_t n, void *dst, size_t done) {
    const unsigned char *s = src;
    float *o = (float *)dst + done;
    for (size_t i = 0; i < n; i++) o[i] = f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
}

// Narrowing follows IEEE round-to-nearest (C Annex F); out-of-range values become ±inf.
static void conv_f64(const void *src, size_t n, void *dst, size_t done) {
    float *o = (float *)dst + done;
    for (size_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, (const char *)src + 8 * i, 8);
        o[i] = (float)d;
    }
}

int st_read_f32(const st_archive *a, const st_tensor *t, float *out) {
    if (!dtype_is_float(t->dtype))
        return hy_fail("%s: tensor '%s' is %s, not a float dtype (read it as integers)", a->paths[t->file], t->name,
                       st_dtype_name(t->dtype));
    if (t->numel == 0) return 0;
    if (t->dtype == ST_F32) {
        FILE *f = open_at(a, t);
        if (!f) return -1;
        int rc = fread(out, 4, (size_t)t->numel, f) == (size_t)t->numel ? 0 : short_read(a, t);
        fclose(f);
        return rc;
    }
    return read_chunked(a, t, t->dtype == ST_BF16 ? conv_bf16 : t->dtype == ST_F16 ? conv_f16 : conv_f64, out);
}

int st_read_i32(const st_archive *a, const st_tensor *t, int32_t *out) {
    if (t->dtype != ST_I32 && t->dtype != ST_I64)
        return hy_fail("%s: tensor '%s' is %s, not an integer dtype (I32 or I64)", a->paths[t->file], t->name,
                       st_dtype_name(t->dtype));
    if (t->numel == 0) return 0;
    FILE *f = open_at(a, t);
    if (!f) return -1;
    int rc = 0;
    if (t->dtype == ST_I32) {
        rc = fread(out, 4, (size_t)t->numel, f) == (size_t)t->numel ? 0 : short_read(a, t);
    } else {
        int64_t buf[4096];
        for (size_t done = 0, total = (size_t)t->numel; done < total && rc == 0;) {
            size_t n = total - done < 4096 ? total - done : 4096;
            if (fread(buf, 8, n, f) != n) {
                rc = short_read(a, t);
                break;
            }
            for (size_t i = 0; i < n && rc == 0; i++) {
                if (buf[i] < INT32_MIN || buf[i] > INT32_MAX)
                    rc = hy_fail("%s: tensor '%s': element %zu = %lld does not fit in int32", a->paths[t->file],
                                 t->name, done + i, (long long)buf[i]);
                out[done + i] = (int32_t)buf[i];
            }
            done += n;
        }
    }
    fclose(f);
    return rc;
}

// ---- writing ----

static int write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1; }

int st_write(const char *path, const st_write_tensor *tensors, int n, const char *const *meta_keys,
             const char *const *meta_values, int n_meta) {
    json_t *hdr = json_object();
    uint64_t offset = 0;
    int rc = -1;
    char *text = NULL, *tmp = NULL;
    FILE *f = NULL;
    if (n_meta > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < n_meta; i++) json_object_set_new(meta, meta_keys[i], json_string(meta_values[i]));
        json_object_set_new(hdr, "__metadata__", meta);
    }
    for (int i = 0; i < n; i++) {
        const st_write_tensor *w = &tensors[i];
        if (!w->name || !w->name[0] || strcmp(w->name, "__metadata__") == 0) {
            hy_fail("%s: tensor %d has an empty or reserved name", path, i);
            goto done;
        }
        if (json_object_get(hdr, w->name)) {
            hy_fail("%s: tensor '%s' is listed twice", path, w->name);
            goto done;
        }
        if (w->dtype != ST_F32 && w->dtype != ST_I32) {
            hy_fail("%s: tensor '%s': writing %s is not supported (F32 or I32)", path, w->name, st_dtype_name(w->dtype));
            goto done;
        }
        if (w->ndim < 0 || w->ndim > 8) {
            hy_fail("%s: tensor '%s': ndim %d outside 0..8", path, w->name, w->ndim);
            goto done;
        }
        json_t *shape = json_array();
        uint64_t numel = 1;
        for (int d = 0; d < w->ndim; d++) {
            if (w->shape[d] < 0) {
                json_decref(shape);
                hy_fail("%s: tensor '%s': shape[%d] is negative", path, w->name, d);
                goto done;
            }
            numel *= (uint64_t)w->shape[d];
            json_array_append_new(shape, json_integer(w->shape[d]));
        }
        if (numel > 0 && !w->data) {
            json_decref(shape);
            hy_fail("%s: tensor '%s': data is NULL", path, w->name);
            goto done;
        }
        uint64_t bytes = numel * dtype_size(w->dtype);
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(st_dtype_name(w->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + bytes)));
        json_object_set_new(hdr, w->name, e);
        offset += bytes;
    }
    text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(padded >> (8 * i));

    size_t tn = strlen(path) + 32;
    tmp = hy_malloc(tn);
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        hy_fail("%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    int werr = write_all(f, len8, 8) || write_all(f, text, hlen) || write_all(f, "       ", padded - hlen);
    for (int i = 0; i < n && !werr; i++) {
        const st_write_tensor *w = &tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < w->ndim; d++) numel *= (uint64_t)w->shape[d];
        werr = write_all(f, w->data, numel * dtype_size(w->dtype));
    }
    // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
    if (werr || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        hy_fail("%s: write failed: %s", tmp, strerror(errno));
        goto done;
    }
    int cerr = fclose(f);
    f = NULL;
    if (cerr != 0) {
        hy_fail("%s: write failed: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        hy_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f) fclose(f);
    if (rc != 0 && tmp) remove(tmp);
    free(tmp);
    free(text);
    json_decref(hdr);
    return rc;
}
