// The OLMo Hybrid model on the CPU reference backend: load / save / init, forward over packed
// documents, backward to every parameter, and a cached forward for prefill and recurrent decode.
//
// The model is composed only from the ops in kernels/ops_cpu.h; the math is model.md's. A forward
// over a packed batch treats each document independently (GDN state, conv window and attention
// restart at every cu_seqlens boundary). With an hy_cache the same forward continues sequences:
// document d of the batch appends to cache slot slots[d], reading and writing its conv windows,
// fp32 GDN states and KV cache — prefill, multi-token continuation and one-token decode are one
// code path, and decode (one token per sequence) runs the token-by-token GDN recurrence.
#ifndef HY_MODEL_H
#define HY_MODEL_H

#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "params.h"

typedef struct {
    hy_config cfg;
    hy_param_table table;
    float *arena;     // (table.total) fp32 parameters on the host: what load / save / init touch
    hy_backend *be;   // where the model runs (the CPU backend until hy_model_attach)
    float *dev;       // the backend's fp32 master parameters (== arena on the CPU)
    void *mm;         // the backend's matmul view (== dev on the CPU, a bf16 copy on CUDA)
    hy_params p;      // fp32 views into dev
    hy_params pmm;    // matmul views into mm (addresses only handed to backend linear ops)
} hy_model;

// Loads config.json and the safetensors (single file or sharded index) of a model directory.
// Accepts every name variant of model.md; any missing, unexpected or misshaped tensor is an error.
int hy_model_load(hy_model *m, const char *dir);
// Writes config.json + model.safetensors (F32, HF names) into dir (created if missing) from the
// host arena: after running on a device, call hy_model_sync_to_host first.
int hy_model_save(const hy_model *m, const char *dir);
// A model with HF's random init.
void hy_model_init(hy_model *m, const hy_config *cfg, uint64_t seed);
void hy_model_free(hy_model *m);
// Moves the model onto a backend (uploading the parameters and building the matmul view). Load
// and init attach the process-wide CPU backend; the model does not own the backend.
void hy_model_attach(hy_model *m, hy_backend *be);
// Copies the backend's fp32 master parameters back to the host arena (before saving).
void hy_model_sync_to_host(hy_model *m);
// The process-wide CPU backend (created on first use).
hy_backend *hy_cpu_backend(void);
// 0 when every id is in [0, vocab); otherwise −1 naming the first bad position and id.
int hy_model_check_tokens(const hy_model *m, const int32_t *tokens, int n);

// A packed batch: T tokens of n_docs documents (cu_seqlens has n_docs + 1 entries).
typedef struct {
    const int32_t *tokens;
    const int32_t *cu_seqlens;
    int T, n_docs;
} hy_batch;

// Decode state of n_slots sequences of up to max_len tokens each, in the model's backend memory.
typedef struct {
    hy_backend *be;
    int n_slots, max_len, n_layers;
    int *len;                    // (n_slots) tokens held per slot (host)
    float **conv_window;         // per layer (GDN only): (n_slots, conv_dim, K−1) pre-conv inputs, fp32
    float **gdn_state;           // per layer (GDN only): (n_slots, H_v, Dk, Dv) fp32
    hy_act **k_cache, **v_cache; // per layer (attention only): (n_slots, max_len, H_kv, D), activation type
} hy_cache;

void hy_cache_init(hy_cache *c, const hy_model *m, int n_slots, int max_len);
void hy_cache_free(hy_cache *c);
void hy_cache_reset_slot(hy_cache *c, const hy_config *cfg, int slot);

// Activations kept by a training forward for the backward (opaque; see forward.c).
typedef struct hy_acts hy_acts;

typedef enum {
    HY_LOGITS_NONE,      // no logits (training losses read the final hidden state from the acts)
    HY_LOGITS_ALL,       // logits (T, V)
    HY_LOGITS_LAST_DOC,  // logits (n_docs, V): each document's last token only
} hy_logits_mode;

// Forward. logits (host memory) as per mode. When acts is non-NULL the activations for hy_model_backward are
// kept (*acts must be freed with hy_acts_free). When cache is non-NULL, document d continues
// slot slots[d] (acts must then be NULL: training never starts from a cache). Returns 0 / −1.
int hy_model_forward(const hy_model *m, const hy_batch *b, hy_logits_mode mode, float *logits, hy_acts **acts,
                     hy_cache *cache, const int *slots);
// The final hidden state xf (T, C) (after the final norm, backend memory, activation type) of a
// training forward, and the backward from its gradient dxf (T, C): what chunked lm_head + loss
// code uses so (T, V) logits never exist. grads are in backend memory (table layout, fp32).
const hy_act *hy_acts_final_hidden(const hy_acts *acts);
void hy_model_backward_hidden(const hy_model *m, hy_acts *acts, const hy_act *dxf, float *grads);
void hy_acts_free(hy_acts *acts);

// Next-token logprobs of a packed batch: out (T − n_docs) holds, document by document,
// log p(tokens[i+1] | tokens[..i]) for each of its first n_d − 1 positions. Returns 0 / −1.
int hy_model_score(const hy_model *m, const hy_batch *b, float *out);

#endif
