// Tests for model/safetensors.c: reading files made by HF's own writer (BF16, F16, F64, I64, a
// sharded index; tests/fixtures/make_safetensors_fixtures.py), a bit-exact write/read round trip,
// and every kind of malformed input, each of which must fail with a message naming the file and
// the problem. Malformed files are crafted here byte by byte in a temporary folder.
//
// Usage: test_safetensors SOURCE_DIR [KEEP_PATH]  (KEEP_PATH: also leave the round-trip file there,
// for `make_safetensors_fixtures.py --check-written KEEP_PATH` to load in the reference reader).
#include "common/hy_error.h"
#include "model/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_fail, n_pass;
static char g_tmp[256];     // scratch folder for crafted files
static char g_fix[1024];    // tests/fixtures/safetensors

static void report(const char *name, int ok, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        printf("ok   %s\n", name);
        return;
    }
    n_fail++;
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s\n", name, detail);
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void path_in(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// Writes an 8-byte length field, the header text and data_len zero bytes; returns the path.
static const char *craft(const char *name, uint64_t len_field, const char *header, size_t data_len) {
    static char path[512];
    path_in(path, sizeof path, g_tmp, name);
    FILE *f = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(len_field >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
    return path;
}

// st_open must fail, leave the archive empty, and say which file and what went wrong.
static void expect_open_error(const char *name, const char *path, const char *file_part, const char *problem) {
    st_archive a;
    hy_error_clear();
    int rc = st_open(&a, path);
    const char *msg = hy_last_error();
    int ok = rc == -1 && strstr(msg, file_part) && strstr(msg, problem) && a.n_tensors == 0 && !a.tensors;
    if (ok) {  // show the message: reading them is how their wording gets reviewed
        n_pass++;
        printf("ok   %s  [%s]\n", name, msg);
        return;
    }
    report(name, ok, "rc=%d, message \"%s\" should name \"%s\" and \"%s\"", rc, msg, file_part, problem);
    if (rc == 0) st_close(&a);
}

// A header crafted with a correct length field: tests the validation of its content.
static void expect_header_error(const char *name, const char *header, size_t data_len, const char *problem) {
    char file[128];
    snprintf(file, sizeof file, "%s.safetensors", name);
    const char *path = craft(file, strlen(header), header, data_len);
    expect_open_error(name, path, file, problem);
}

// ---- fixtures from the reference writer ----

static void test_bf16(void) {
    char p[1200];
    path_in(p, sizeof p, g_fix, "bf16.safetensors");
    st_archive a;
    if (st_open(&a, p) != 0) {
        report("read_bf16", 0, "%s", hy_last_error());
        return;
    }
    const st_tensor *w = st_find(&a, "w"), *nan = st_find(&a, "nan");
    const float want[8] = {1.0f, -2.5f, 3.140625f, 0.0f, -0.0f, INFINITY, ldexpf(1.0f, -130), 65280.0f};
    float got[8] = {0}, n = 0;
    int ok = w && nan && w->dtype == ST_BF16 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 4 &&
             w->numel == 8 && st_read_f32(&a, w, got) == 0 && st_read_f32(&a, nan, &n) == 0;
    for (int i = 0; ok && i < 8; i++) ok = bits_of(got[i]) == bits_of(want[i]);
    ok = ok && isnan(n);
    report("read_bf16 (exact, -0, inf, f32 subnormal, nan)", ok, "values differ: %g %g %g %g %g %g %g %g nan=%g",
           got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7], n);
    st_close(&a);
}

static void test_f16(void) {
    char p[1200];
    path_in(p, sizeof p, g_fix, "f16.safetensors");
    st_archive a;
    if (st_open(&a, p) != 0) {
        report("read_f16", 0, "%s", hy_last_error());
        return;
    }
    const st_tensor *h = st_find(&a, "h"), *nan = st_find(&a, "nan");
    // 0.1 is not exact in F16; its nearest half is 1638 · 2^-14 = 0.0999755859375.
    const float want[11] = {1.0f,  -2.0f, 65504.0f, ldexpf(1, -14), ldexpf(1, -24), ldexpf(3, -24), ldexpf(1023, -24),
                            -0.0f, INFINITY, -INFINITY, 0.0999755859375f};
    float got[11] = {0}, n = 0;
    int ok = h && nan && h->dtype == ST_F16 && h->numel == 11 && st_read_f32(&a, h, got) == 0 &&
             st_read_f32(&a, nan, &n) == 0;
    int bad = -1;
    for (int i = 0; ok && i < 11; i++)
        if (bits_of(got[i]) != bits_of(want[i])) ok = 0, bad = i;
    ok = ok && isnan(n);
    report("read_f16 (normals, max, subnormals, -0, inf, nan)", ok, "element %d: got %.9g want %.9g (nan=%g)", bad,
           bad >= 0 ? got[bad] : 0, bad >= 0 ? want[bad] : 0, n);
    st_close(&a);
}

static void test_mixed(void) {
    char p[1200];
    path_in(p, sizeof p, g_fix, "mixed.safetensors");
    st_archive a;
    if (st_open(&a, p) != 0) {
        report("read_mixed", 0, "%s", hy_last_error());
        return;
    }
    float f32[6], f64[3], s = 0;
    int32_t i32[4], i64[4], big = 0;
    const st_tensor *t32 = st_find(&a, "f32"), *t64 = st_find(&a, "f64"), *ti32 = st_find(&a, "i32"),
                    *ti64 = st_find(&a, "i64"), *tbig = st_find(&a, "i64_big"), *ts = st_find(&a, "scalar"),
                    *te = st_find(&a, "empty");
    int ok = a.n_tensors == 7 && t32 && t64 && ti32 && ti64 && tbig && ts && te;
    ok = ok && st_read_f32(&a, t32, f32) == 0 && st_read_f32(&a, t64, f64) == 0 && st_read_i32(&a, ti32, i32) == 0 &&
         st_read_i32(&a, ti64, i64) == 0 && st_read_f32(&a, ts, &s) == 0 && st_read_f32(&a, te, NULL) == 0;
    for (int i = 0; ok && i < 6; i++) ok = f32[i] == i * 0.5f - 1.0f;
    ok = ok && f64[0] == (float)0.1 && f64[1] == -INFINITY && f64[2] == 2.5f;
    ok = ok && i32[0] == 1 && i32[1] == -2 && i32[2] == 3 && i32[3] == -4;
    ok = ok && i64[0] == 0 && i64[1] == -1 && i64[2] == INT32_MAX && i64[3] == INT32_MIN;
    ok = ok && ts->ndim == 0 && ts->numel == 1 && s == 7.0f && te->numel == 0 && te->ndim == 2 && te->shape[1] == 3;
    report("read_mixed (F32, F64, I32, I64, 0-d, empty)", ok, "%s", hy_last_error());

    hy_error_clear();
    int rc = st_read_i32(&a, tbig, &big);
    report("i64 outside int32 rejected", rc == -1 && strstr(hy_last_error(), "mixed.safetensors") &&
                                             strstr(hy_last_error(), "does not fit in int32"),
           "rc=%d: %s", rc, hy_last_error());
    hy_error_clear();
    rc = st_read_f32(&a, ti32, f32);
    report("st_read_f32 rejects I32", rc == -1 && strstr(hy_last_error(), "'i32' is I32, not a float dtype"), "rc=%d: %s",
           rc, hy_last_error());
    hy_error_clear();
    rc = st_read_i32(&a, t64, i32);
    report("st_read_i32 rejects F64", rc == -1 && strstr(hy_last_error(), "'f64' is F64, not an integer dtype"),
           "rc=%d: %s", rc, hy_last_error());
    report("st_find of a missing name is NULL", st_find(&a, "nope") == NULL && st_find(&a, "") == NULL, "found");
    st_close(&a);
}

static void check_sharded(const char *name, const char *path) {
    st_archive a;
    if (st_open(&a, path) != 0) {
        report(name, 0, "%s", hy_last_error());
        return;
    }
    const st_tensor *ta = st_find(&a, "a"), *tb = st_find(&a, "b"), *tc = st_find(&a, "c"), *td = st_find(&a, "d");
    float fa[4], fc[2], fd[4];
    int32_t ib[3];
    int ok = a.n_paths == 2 && a.n_tensors == 4 && ta && tb && tc && td && ta->file == tb->file && tc->file == td->file &&
             ta->file != tc->file && strstr(a.paths[ta->file], "model-00001-of-00002.safetensors") &&
             st_read_f32(&a, ta, fa) == 0 && st_read_i32(&a, tb, ib) == 0 && st_read_f32(&a, tc, fc) == 0 &&
             st_read_f32(&a, td, fd) == 0;
    ok = ok && fa[0] == 1 && fa[3] == 4 && ib[0] == 5 && ib[2] == 7 && fc[0] == 0.5f && fc[1] == -8.0f &&
         fd[0] == 0.25f && fd[3] == 1.0f;
    report(name, ok, "wrong tensors or values (%s)", hy_last_error());
    st_close(&a);
}

static void test_sharded(void) {
    char p[1200];
    path_in(p, sizeof p, g_fix, "sharded");
    check_sharded("sharded checkpoint via its directory", p);
    path_in(p, sizeof p, g_fix, "sharded/model.safetensors.index.json");
    check_sharded("sharded checkpoint via its index", p);

    path_in(p, sizeof p, g_fix, "sharded/missing_shard.index.json");
    expect_open_error("index naming a missing shard", p, "model-00003-of-00003.safetensors", "cannot open");
    path_in(p, sizeof p, g_fix, "sharded/missing_tensor.index.json");
    expect_open_error("index naming a tensor absent from its shard", p, "missing_tensor.index.json",
                      "tensor 'zz' in shard 'model-00001-of-00002.safetensors', but that shard has no such tensor");
    path_in(p, sizeof p, g_fix, "sharded/wrong_shard.index.json");
    expect_open_error("index mapping a tensor to the wrong shard", p, "wrong_shard.index.json",
                      "tensor 'a' in shard 'model-00002-of-00002.safetensors', but that shard has no such tensor");
    path_in(p, sizeof p, g_fix, "sharded/duplicate.index.json");
    expect_open_error("tensor name duplicated across shards", p, "extra-dup.safetensors",
                      "'a' also appears in");
    expect_open_error("directory with no checkpoint", g_fix, "fixtures/safetensors",
                      "neither model.safetensors.index.json nor model.safetensors");
}

// ---- round trip ----

static void test_roundtrip(const char *keep_path) {
    float embed[12], bits[6];
    for (int i = 0; i < 12; i++) embed[i] = i * 0.25f - 1.5f;
    // Bit patterns a float round trip could disturb: a NaN payload, -0, a subnormal, inf, FLT_MAX.
    const uint32_t patterns[6] = {0x7fc12345u, 0x80000000u, 0x00000001u, 0x7f800000u, 0x7f7fffffu, 0xbf9d70a4u};
    for (int i = 0; i < 6; i++) bits[i] = float_of(patterns[i]);
    int32_t ids[3] = {-7, 0, INT32_MAX};
    float scalar = 3.5f;
    st_write_tensor w[5] = {
        {"embed", ST_F32, 2, {3, 4}, embed},  {"ids", ST_I32, 2, {1, 3}, ids}, {"bits", ST_F32, 1, {6}, bits},
        {"scalar", ST_F32, 0, {0}, &scalar}, {"empty", ST_F32, 2, {2, 0}, NULL},
    };
    const char *mk[1] = {"format"}, *mv[1] = {"pt"};
    char p[512];
    path_in(p, sizeof p, g_tmp, "roundtrip.safetensors");
    if (st_write(p, w, 5, mk, mv, 1) != 0) {
        report("round trip write", 0, "%s", hy_last_error());
        return;
    }

    FILE *f = fopen(p, "rb");
    unsigned char len8[8] = {0};
    size_t got8 = fread(len8, 1, 8, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    // 12 + 6 + 1 floats and 3 int32s of data after the padded header.
    report("written header padded to 8 bytes, data contiguous", got8 == 8 && hlen % 8 == 0 &&
                                                                    (uint64_t)size == 8 + hlen + (12 + 6 + 1 + 3) * 4,
           "header length %llu, file %ld bytes", (unsigned long long)hlen, size);
    char tmp_left[600];
    snprintf(tmp_left, sizeof tmp_left, "%s.tmp.%ld", p, (long)getpid());
    report("no temporary file left behind", access(tmp_left, F_OK) != 0, "%s exists", tmp_left);

    st_archive a;
    if (st_open(&a, p) != 0) {
        report("round trip read", 0, "%s", hy_last_error());
        return;
    }
    float e2[12], b2[6], s2 = 0;
    int32_t i2[3];
    const st_tensor *te = st_find(&a, "embed"), *tb = st_find(&a, "bits"), *ti = st_find(&a, "ids"),
                    *ts = st_find(&a, "scalar"), *tz = st_find(&a, "empty");
    int ok = a.n_tensors == 5 && te && tb && ti && ts && tz && te->dtype == ST_F32 && ti->dtype == ST_I32 &&
             te->shape[0] == 3 && te->shape[1] == 4 && ts->ndim == 0 && tz->numel == 0 && tz->shape[0] == 2 &&
             st_read_f32(&a, te, e2) == 0 && st_read_f32(&a, tb, b2) == 0 && st_read_i32(&a, ti, i2) == 0 &&
             st_read_f32(&a, ts, &s2) == 0;
    ok = ok && memcmp(e2, embed, sizeof embed) == 0 && memcmp(b2, bits, sizeof bits) == 0 &&
         memcmp(i2, ids, sizeof ids) == 0 && bits_of(s2) == bits_of(scalar);
    report("round trip F32 / I32 bit-exact (NaN payload, -0, subnormal, inf)", ok, "%s", hy_last_error());
    st_close(&a);

    if (keep_path) {
        int rc = st_write(keep_path, w, 5, mk, mv, 1);
        report("round-trip file kept for the Python check", rc == 0, "%s", hy_last_error());
        if (rc == 0) printf("     wrote %s\n", keep_path);
    }

    // Writer input errors.
    st_write_tensor bad_dtype = {"x", ST_BF16, 1, {1}, embed};
    hy_error_clear();
    int rc = st_write(p, &bad_dtype, 1, NULL, NULL, 0);
    report("st_write rejects BF16", rc == -1 && strstr(hy_last_error(), "writing BF16 is not supported"), "rc=%d: %s",
           rc, hy_last_error());
    st_write_tensor dup[2] = {{"x", ST_F32, 1, {1}, embed}, {"x", ST_F32, 1, {1}, embed}};
    rc = st_write(p, dup, 2, NULL, NULL, 0);
    report("st_write rejects a duplicate name", rc == -1 && strstr(hy_last_error(), "'x' is listed twice"), "rc=%d: %s",
           rc, hy_last_error());
    rc = st_write("/nonexistent-dir/x.safetensors", w, 1, NULL, NULL, 0);
    report("st_write into a missing folder fails cleanly",
           rc == -1 && strstr(hy_last_error(), "/nonexistent-dir/x.safetensors") && strstr(hy_last_error(), "cannot create"),
           "rc=%d: %s", rc, hy_last_error());
    // A failed write must not have replaced the good file.
    rc = st_open(&a, p);
    report("failed write leaves the previous file intact", rc == 0 && a.n_tensors == 5, "%s", hy_last_error());
    if (rc == 0) st_close(&a);
}

// ---- malformed input ----

static void test_bad_files(void) {
    char p[512];
    path_in(p, sizeof p, g_tmp, "short.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite("\x05\0\0\0\0", 1, 5, f);
    fclose(f);
    expect_open_error("file shorter than 8 bytes", p, "short.safetensors", "too short for the 8-byte header length");

    expect_open_error("header length beyond the file",
                      craft("longhdr.safetensors", 1000, "{}", 4), "longhdr.safetensors", "larger than the file");
    expect_open_error("absurd header length", craft("absurd.safetensors", (uint64_t)1 << 40, "{}", 0),
                      "absurd.safetensors", "is absurd");
    expect_header_error("garbled_header", "{\"w\": {\"dtype\": \"F32\", \"sha", 0, "header is not valid JSON");
    expect_header_error("header_not_object", "[1, 2, 3]", 0, "header is not a JSON object");
    expect_header_error("duplicate_key",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        8, "duplicate");
    expect_header_error("entry_not_object", "{\"w\": 5}", 0, "tensor 'w': header entry is not a JSON object");
    expect_header_error("missing_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': header entry has no 'dtype'");
    expect_header_error("missing_shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "has no 'shape'");
    expect_header_error("missing_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "has no 'data_offsets'");
    expect_header_error("dtype_wrong_type", "{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "'dtype' is not a string");
    expect_header_error("shape_wrong_type", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"abc\",\"data_offsets\":[0,4]}}", 4,
                        "'shape' is not an array");
    expect_header_error("offsets_wrong_type", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                        "'data_offsets' is not an array of two integers");
    expect_header_error("unknown_dtype", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
                        "unknown dtype 'F8_E4M3'");
    expect_header_error("negative_dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1, 2],\"data_offsets\":[0,4]}}", 4,
                        "shape[0] is negative");
    expect_header_error("offsets_out_of_order", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                        "data_offsets out of order");
    expect_header_error("offsets_beyond_file", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                        "beyond the end of the file");
    expect_header_error("size_lie", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 24,
                        "tensor 'w': header says 12 bytes, shape [2, 3] F32 needs 24");
    expect_header_error("overlap",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                        24, "overlap");
    // 'c' lies inside 'a' with an empty tensor sorted between them: comparing each tensor only with
    // its sorted neighbour would miss this overlap.
    expect_header_error("overlap_nested",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                        "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}",
                        32, "tensors 'a' [0, 32) and 'c' [16, 20) overlap");
    expect_header_error("metadata_not_object", "{\"__metadata__\": [1]}", 0, "'__metadata__' is not a JSON object");
    path_in(p, sizeof p, g_tmp, "does-not-exist.safetensors");
    expect_open_error("missing file", p, "does-not-exist.safetensors", "cannot open");

    // A file that shrinks after st_open validated it: the read must fail, not return garbage.
    float v[4] = {1, 2, 3, 4};
    st_write_tensor w = {"w", ST_F32, 1, {4}, v};
    path_in(p, sizeof p, g_tmp, "shrinks.safetensors");
    st_archive a;
    int ok = st_write(p, &w, 1, NULL, NULL, 0) == 0 && st_open(&a, p) == 0;
    if (!ok) {
        report("file truncated after open", 0, "%s", hy_last_error());
        return;
    }
    const st_tensor *t = st_find(&a, "w");
    ok = truncate(p, (off_t)(a.data_start[0] + 8)) == 0;
    float out[4];
    hy_error_clear();
    int rc = st_read_f32(&a, t, out);
    report("file truncated after open", ok && rc == -1 && strstr(hy_last_error(), "shrinks.safetensors") &&
                                            strstr(hy_last_error(), "short read"),
           "rc=%d: %s", rc, hy_last_error());
    st_close(&a);
}

static void remove_tree(const char *dir) {
    static const char *names[] = {"short", "longhdr", "absurd", "garbled_header", "header_not_object", "duplicate_key",
                                  "entry_not_object", "missing_dtype", "missing_shape", "missing_offsets",
                                  "dtype_wrong_type", "shape_wrong_type", "offsets_wrong_type", "unknown_dtype",
                                  "negative_dim", "offsets_out_of_order", "offsets_beyond_file", "size_lie", "overlap",
                                  "overlap_nested", "metadata_not_object", "shrinks", "roundtrip"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s.safetensors", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOURCE_DIR [KEEP_PATH]\n", argv[0]);
        return 2;
    }
    snprintf(g_fix, sizeof g_fix, "%s/tests/fixtures/safetensors", argv[1]);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hy_test_st_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_bf16();
    test_f16();
    test_mixed();
    test_sharded();
    test_roundtrip(argc > 2 ? argv[2] : NULL);
    test_bad_files();
    remove_tree(g_tmp);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
