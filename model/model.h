// The OLMo Hybrid model on the CPU reference backend: load / save / init, forward over packed
// documents, backward to every parameter, and a cached forward for prefill and recurrent decode.
//
// The model is composed only from the ops in kernels/ops_cpu.h; the math is model.md's. A forward
// over a packed batch treats each document independently (GDN state, conv window and attention
// restart at every cu_seqlens boundary). With an hy_cache the same forward continues sequences:
// document d of the batch appends to cache slot slots[d], reading and writing its conv windows,
// fp32 GDN states and paged KV blocks — prefill, multi-token continuation and one-token decode are
// one code path. A document of one token runs the token-by-token GDN recurrence (decode), a longer
// one the chunked form, chosen per document so a batch mixing both computes each as it would alone.
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
    int recompute_layers;  // activation checkpointing: a training forward keeps only each layer's
                           // input and the backward re-runs the layer's forward (one extra forward,
                           // same numbers; 0 = keep everything, what load / init set)
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

// Decode state of n_slots sequences, in the model's backend memory (design: docs/rollout.md).
// Per slot: fp32 GDN states and conv windows, one fixed-size record per GDN layer. Attention keys
// and values live in one pool of fixed-size blocks shared by all slots (paged): a slot reads its
// own through its block table, and takes blocks only as it grows, so short sequences do not
// reserve max_len rows. Blocks are reference-counted: a forked slot shares its source's blocks
// and copies a shared block only when it writes into it (copy-on-write). Metadata is host memory.
enum { HY_CACHE_BLOCK_DEFAULT = 16 };

typedef struct {
    int n_slots;     // sequences held at once
    int max_len;     // tokens per sequence at most
    int n_blocks;    // KV blocks in the pool; 0 = enough for every slot at max_len
    int block_size;  // tokens per KV block; 0 = HY_CACHE_BLOCK_DEFAULT
} hy_cache_spec;

typedef struct {
    hy_backend *be;
    int n_slots, max_len, n_layers;
    int block_size, n_blocks, max_blocks;  // max_blocks = ceil(max_len / block_size): table width
    size_t window_floats, state_floats;    // per slot and GDN layer: conv_dim·(K−1), H_v·Dk·Dv
    int kv_width;                          // H_kv·D: elements of one pool row
    int *len;                    // (n_slots) tokens held per slot
    int32_t *block_table;        // (n_slots, max_blocks) pool block of each logical block; −1 = none
    int *ref;                    // (n_blocks) block tables holding each block; 0 = free
    int *free_list, n_free;      // (n_blocks) stack of free block ids, n_free of them
    float **conv_window;         // per layer (GDN only): (n_slots, conv_dim, K−1) pre-conv inputs, fp32
    float **gdn_state;           // per layer (GDN only): (n_slots, H_v, Dk, Dv) fp32
    hy_act **k_pool, **v_pool;   // per layer (attention only): (n_blocks, block_size, H_kv, D), activation type
} hy_cache;

// A cache of n_slots slots of up to max_len tokens, with blocks for all of them (the simple form
// for one-off generation and tests).
void hy_cache_init(hy_cache *c, const hy_model *m, int n_slots, int max_len);
// A cache as spec says; −1 (naming the field) on a bad spec.
int hy_cache_init_spec(hy_cache *c, const hy_model *m, const hy_cache_spec *spec);
void hy_cache_free(hy_cache *c);
// Backend bytes of one slot's GDN states + conv windows, and of one KV block (all attention layers).
size_t hy_cache_slot_bytes(const hy_config *cfg);
size_t hy_cache_block_bytes(const hy_config *cfg, size_t act_bytes, int block_size);
// Empties a slot: zero states, length 0, its blocks released (freed when no other slot holds them).
void hy_cache_reset_slot(hy_cache *c, int slot);
// Free blocks that appending n_new tokens to slot takes (new blocks, plus one copy when the slot's
// last block is shared with another slot and gets written).
int hy_cache_blocks_needed(const hy_cache *c, int slot, int n_new);
// Makes the blocks for positions [len, len + n_new) of slot present and owned by it alone (copying
// a shared partial block). −1 when the pool lacks blocks or max_len would be passed; then nothing
// changed. hy_model_forward calls it for every document of a cached batch.
int hy_cache_reserve(hy_cache *c, int slot, int n_new);
// dst (empty) becomes a copy of src: states and windows copied, blocks shared (refcounts + 1).
int hy_cache_fork_slot(hy_cache *c, int src, int dst);

// A slot's whole state in host memory: what preemption swaps out and the prefix cache keeps.
typedef struct {
    int len;
    float *states;  // per GDN layer: GDN state, then conv window (state_floats + window_floats), fp32
    void *kv;       // per attention layer: K rows [0, len), then V rows, activation type
    size_t bytes;   // host bytes held
} hy_slot_image;
size_t hy_slot_image_bytes(const hy_cache *c, int len);
void hy_cache_slot_save(const hy_cache *c, int slot, hy_slot_image *img);
// Into an empty slot. −1 when the pool lacks blocks (nothing changed).
int hy_cache_slot_load(hy_cache *c, int slot, const hy_slot_image *img);
void hy_slot_image_free(hy_slot_image *img);

// Activations kept by a training forward for the backward (opaque; see forward.c).
typedef struct hy_acts hy_acts;

typedef enum {
    HY_LOGITS_NONE,      // no logits (training losses read the final hidden state from the acts)
    HY_LOGITS_ALL,       // logits (T, V)
    HY_LOGITS_LAST_DOC,  // logits (n_docs, V): each document's last token only
    HY_LOGITS_LAST_DOC_BACKEND,  // the same rows, left in backend memory (logits is a backend
                                 // pointer): for sampling on the backend (rollout engine)
} hy_logits_mode;

// Forward. logits (host memory) as per mode. When acts is non-NULL the activations for hy_model_backward are
// kept (*acts must be freed with hy_acts_free): all of them, or with m->recompute_layers set only
// each layer's input (the acts remember which, whatever the flag says by the backward). When
// cache is non-NULL, document d continues slot slots[d] (distinct slots; acts must then be NULL:
// training never starts from a cache); the KV blocks all documents need are reserved first, and
// when the pool lacks them the call fails with the cache unchanged. Returns 0 / −1.
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
