// Reference-model logprobs of a training set (DPO's reference, RL's KL anchor), computed once
// before training and cached on disk.
//
// Values are per dataset token: out[start[s] + i] = log π_ref(token i | tokens 0..i−1) of sequence
// s for i ≥ 1, and 0 at i = 0 — every position, not only trained ones, so the numbers do not depend
// on the masks. They come from hy_model_target_logprobs, the very forward and lm-head pass a
// training step runs, so a policy equal to the reference reproduces them exactly (DPO's first loss
// is then log 2 to rounding).
//
// Cache: one file, DIR/ref-logprobs.bin, in state_file.h's format (magic "HYREFLP\0", version 1,
// checksum) holding a 64-bit key and the values. The key hashes everything the values depend on:
// the data file's bytes, the tokenized data (tokens and masks, so tokenizer, template and max-seq-len
// settings are in it), a settings string from the caller, the tokenizer file's bytes when there is
// one, and the reference model's fp32 weights and shape. A file whose key matches is reused; any
// other file (other key, damaged, missing) is recomputed and replaced, and a log line says which.
#ifndef HY_REF_LOGPROBS_H
#define HY_REF_LOGPROBS_H

#include <stdint.h>
#include <stdio.h>

#include "../model/model.h"
#include "sft_data.h"

// 64-bit hash of bytes, continuing from h (0 to start).
uint64_t hy_hash_bytes(uint64_t h, const void *data, size_t n);
// The cache key (see above). tokenizer_path may be NULL. −1 when a file cannot be read.
int hy_ref_key(const char *data_path, const hy_dataset *ds, const char *settings, const char *tokenizer_path,
               const hy_model *ref, uint64_t *key);
// out (ds->total) = the reference logprobs under m, in packed batches of at most budget tokens
// (0 = 4096; a longer sequence runs alone). Returns 0 / −1.
int hy_ref_logprobs_compute(const hy_model *m, const hy_dataset *ds, int budget, float *out);
// Reuses cache_dir/ref-logprobs.bin when its key is key, else computes (with m) and writes it
// (cache_dir created if missing). *reused = 1 when the file was used. log gets one line saying which.
int hy_ref_logprobs_cached(const char *cache_dir, uint64_t key, const hy_model *m, const hy_dataset *ds, int budget,
                           float *out, int *reused, FILE *log);

#endif
