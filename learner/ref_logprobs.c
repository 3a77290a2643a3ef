// Reference logprobs and their cache (see ref_logprobs.h).
#include "ref_logprobs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "state_file.h"
#include "trainer.h"

static const char REF_MAGIC[8] = {'H', 'Y', 'R', 'E', 'F', 'L', 'P', '\0'};
enum { REF_VERSION = 1, REF_DEFAULT_BUDGET = 4096 };

// FNV-1a over 8-byte words (bytes for the tail): weight arenas of many GB hash at memory speed.
uint64_t hy_hash_bytes(uint64_t h, const void *data, size_t n) {
    const uint64_t prime = 0x100000001b3ull;
    if (h == 0) h = 0xcbf29ce484222325ull;
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * prime;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * prime;
    return h;
}

static int hash_file(uint64_t *h, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = hy_hash_bytes(*h, buf, n);
    const int bad = ferror(f);
    fclose(f);
    return bad ? hy_fail("%s: read error", path) : 0;
}

int hy_ref_key(const char *data_path, const hy_dataset *ds, const char *settings, const char *tokenizer_path,
               const hy_model *ref, uint64_t *key) {
    uint64_t h = hy_hash_bytes(0, "hybrid ref-logprobs v1", 22);
    if (hash_file(&h, data_path)) return -1;
    h = hy_hash_bytes(h, &ds->hash, sizeof ds->hash);
    h = hy_hash_bytes(h, settings, strlen(settings));
    if (tokenizer_path && hash_file(&h, tokenizer_path)) return -1;
    const uint64_t shape[3] = {ref->table.total, (uint64_t)ref->cfg.vocab_size, (uint64_t)ref->cfg.hidden_size};
    h = hy_hash_bytes(h, shape, sizeof shape);
    h = hy_hash_bytes(h, ref->arena, ref->table.total * sizeof(float));
    *key = h;
    return 0;
}

int hy_ref_logprobs_compute(const hy_model *m, const hy_dataset *ds, int budget, float *out) {
    if (budget <= 0) budget = REF_DEFAULT_BUDGET;
    int32_t *targets = NULL, *cu = hy_malloc(sizeof *cu * (size_t)(ds->n + 1));
    float *logp = NULL;
    int cap = 0, rc = 0;
    for (int s0 = 0; s0 < ds->n && !rc;) {
        // consecutive sequences while they fit the budget (at least one)
        int s1 = s0 + 1;
        while (s1 < ds->n && ds->start[s1 + 1] - ds->start[s0] <= budget) s1++;
        const int T = (int)(ds->start[s1] - ds->start[s0]);
        if (T > cap) {
            cap = T;
            targets = hy_realloc(targets, sizeof *targets * (size_t)cap);
            logp = hy_realloc(logp, sizeof *logp * (size_t)cap);
        }
        const int32_t *tokens = ds->tokens + ds->start[s0];
        for (int s = s0; s <= s1; s++) cu[s - s0] = (int32_t)(ds->start[s] - ds->start[s0]);
        for (int s = s0; s < s1; s++)
            for (int i = cu[s - s0]; i < cu[s - s0 + 1]; i++) targets[i] = i + 1 < cu[s - s0 + 1] ? tokens[i + 1] : -1;
        const hy_batch b = {tokens, cu, T, s1 - s0};
        rc = hy_model_target_logprobs(m, &b, targets, logp);
        // position i predicts token i + 1: shift onto the token
        for (int s = s0; s < s1 && !rc; s++) {
            float *o = out + ds->start[s];
            const int a = cu[s - s0], n = cu[s - s0 + 1] - a;
            o[0] = 0.0f;
            for (int i = 1; i < n; i++) o[i] = logp[a + i - 1];
        }
        s0 = s1;
    }
    free(targets);
    free(logp);
    free(cu);
    return rc;
}

// 0 when path holds key's values (read into out); −1 with a message saying why not.
static int cache_read(const char *path, uint64_t key, const hy_dataset *ds, float *out) {
    hy_state_reader r;
    if (hy_state_read_open(&r, path, REF_MAGIC, REF_VERSION)) return -1;
    uint64_t stored = 0, total = 0, count = 0;
    if (hy_state_read_u64(&r, "key", &stored, 1)) goto fail;
    if (stored != key) {
        hy_state_read_abort(&r);
        return hy_fail("%s: made for key %016llx, now %016llx (data, tokenizer settings or reference model changed)",
                       path, (unsigned long long)stored, (unsigned long long)key);
    }
    if (hy_state_read_u64(&r, "total", &total, 1)) goto fail;
    if (total != (uint64_t)ds->total) {
        hy_state_read_abort(&r);
        return hy_fail("%s: field 'total' = %llu, the data has %lld tokens", path, (unsigned long long)total,
                       (long long)ds->total);
    }
    if (hy_state_read_record(&r, "logp", HY_REC_F32, &count)) goto fail;
    if (count != total) {
        hy_state_read_abort(&r);
        return hy_fail("%s: field 'logp' has %llu values, expected %llu", path, (unsigned long long)count,
                       (unsigned long long)total);
    }
    if (hy_state_read_payload(&r, out, sizeof *out * (size_t)total)) goto fail;
    return hy_state_read_close(&r);
fail:
    hy_state_read_abort(&r);
    return -1;
}

static int cache_write(const char *path, uint64_t key, const hy_dataset *ds, const float *values) {
    hy_state_writer w;
    if (hy_state_write_open(&w, path, REF_MAGIC, REF_VERSION)) return -1;
    const uint64_t total = (uint64_t)ds->total;
    hy_state_write_u64(&w, "key", &key, 1);
    hy_state_write_u64(&w, "total", &total, 1);
    hy_state_write_record(&w, "logp", HY_REC_F32, total);
    hy_state_write_payload(&w, values, sizeof *values * (size_t)total);
    return hy_state_write_close(&w);
}

int hy_ref_logprobs_cached(const char *cache_dir, uint64_t key, const hy_model *m, const hy_dataset *ds, int budget,
                           float *out, int *reused, FILE *log) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ref-logprobs.bin", cache_dir);
    *reused = 0;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (cache_read(path, key, ds, out) == 0) {
            *reused = 1;
            fprintf(log, "hybrid: reference logprobs: reusing %s (key %016llx)\n", path, (unsigned long long)key);
            return 0;
        }
        fprintf(log, "hybrid: reference logprobs: not reusing the cache: %s; recomputing\n", hy_last_error());
    } else {
        fprintf(log, "hybrid: reference logprobs: no cache at %s; computing (key %016llx)\n", path,
                (unsigned long long)key);
    }
    if (hy_mkdir_p(cache_dir)) return -1;
    if (hy_ref_logprobs_compute(m, ds, budget, out)) return -1;
    if (cache_write(path, key, ds, out)) return -1;
    fprintf(log, "hybrid: reference logprobs: wrote %s (%lld tokens)\n", path, (long long)ds->total);
    return 0;
}
