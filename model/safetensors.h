// Safetensors reading and writing (the HF checkpoint format), with sharded-index support.
//
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {...}}, then the data buffer. Every header is validated before any
// data is trusted: offsets inside the file, end − begin = numel·dtype size, no overlaps, shapes
// non-negative, known dtypes. Reading converts F32 / BF16 / F16 (and I32 / I64 for integer data)
// into the caller's buffer. Writing is F32 (or I32) with tensors laid out in the given order,
// headers padded to 8 bytes as HF writes them, so files round-trip bit-exactly.
#ifndef HY_SAFETENSORS_H
#define HY_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_BF16, ST_F16, ST_I32, ST_I64, ST_F64 } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    uint64_t begin, end;  // byte offsets into the data buffer
    int file;             // index into st_archive.paths
} st_tensor;

// One checkpoint: a single .safetensors file, a sharded set listed by model.safetensors.index.json,
// or a directory holding either. Tensor data is read on demand from the files.
typedef struct {
    char **paths;  // the files (one unless sharded)
    int n_paths;
    uint64_t *data_start;  // per file: byte offset of the data buffer (8 + N)
    st_tensor *tensors;
    int n_tensors;
} st_archive;

// Opens a .safetensors file, an index .json, or a directory (model.safetensors.index.json
// preferred, else model.safetensors). Validates every header. Returns 0 / -1 (hy_fail message).
int st_open(st_archive *a, const char *path);
void st_close(st_archive *a);
const st_tensor *st_find(const st_archive *a, const char *name);
// Reads tensor t converted to float32 into out (t->numel floats).
int st_read_f32(const st_archive *a, const st_tensor *t, float *out);
// Reads an integer tensor (I32 or I64) into int32 out; values outside int32 are an error.
int st_read_i32(const st_archive *a, const st_tensor *t, int32_t *out);

typedef struct {
    const char *name;
    st_dtype dtype;  // ST_F32 or ST_I32
    int ndim;
    int64_t shape[8];
    const void *data;
} st_write_tensor;

// Writes tensors (in this order) to path atomically (temp file + rename). metadata: optional
// {"format": "pt"}-style string pairs (n_meta pairs, keys[i] / values[i]).
int st_write(const char *path, const st_write_tensor *tensors, int n, const char *const *meta_keys,
             const char *const *meta_values, int n_meta);

const char *st_dtype_name(st_dtype d);

#endif
