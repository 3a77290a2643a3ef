// OLMo Hybrid model configuration: every field of HF `OlmoHybridConfig` with HF's defaults.
//
// Parsed from a checkpoint's config.json (jansson). Derived defaults follow the HF class exactly:
// kv heads = heads; GDN key/value heads = heads; Dk = int(0.75·C / H_k); Dv = 2·Dk; head_dim =
// C / heads unless config.json sets it; layer_types: attention at i % 4 == 3, and the last layer
// forced to attention when that rule gives none; legacy names ("mamba", "attention") remapped.
// RoPE: `rope_parameters.rope_theta` (or legacy top-level `rope_theta`); an explicit null means
// NoPE; when neither key is present HF falls back to theta = 10000 (RoPE on).
#ifndef HY_CONFIG_H
#define HY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

enum { HY_MAX_LAYERS = 256, HY_MAX_EOS = 8 };

typedef enum { HY_LAYER_GDN = 0, HY_LAYER_ATTN = 1 } hy_layer_kind;

typedef struct {
    int vocab_size;               // V
    int hidden_size;              // C
    int intermediate_size;        // F (MLP)
    int num_hidden_layers;        // L
    int num_attention_heads;      // H
    int num_key_value_heads;      // H_kv
    int head_dim;                 // D (attention)
    int max_position_embeddings;
    float initializer_range;
    float rms_norm_eps;
    bool use_cache;
    int pad_token_id;             // -1 when null
    int bos_token_id;             // -1 when null
    int eos_token_ids[HY_MAX_EOS];  // eos_token_id: an int or a list
    int n_eos;
    bool tie_word_embeddings;
    bool rope;                    // false: NoPE
    float rope_theta;
    bool attention_bias;          // must be false (no checkpoint of the family has biases)
    float attention_dropout;
    char hidden_act[16];          // must be "silu"
    hy_layer_kind layer_types[HY_MAX_LAYERS];
    int linear_num_key_heads;     // H_k
    int linear_num_value_heads;   // H_v
    int linear_key_head_dim;      // Dk
    int linear_value_head_dim;    // Dv
    float linear_a_log_min, linear_a_log_max;
    float linear_dt_min, linear_dt_max, linear_dt_init_floor;
    int linear_conv_kernel_dim;   // K
    bool linear_allow_neg_eigval;
} hy_config;

// Parses and validates config.json text / file. Errors name the file and the field.
int hy_config_parse(hy_config *cfg, const char *json_text, const char *source_name);
int hy_config_load(hy_config *cfg, const char *path);
// Writes config.json that transformers' from_pretrained reads back to the same config.
int hy_config_save(const hy_config *cfg, const char *path);
// A named preset ("tiny", "olmo-hybrid-7b", ...); -1 with a message listing the names otherwise.
int hy_config_preset(hy_config *cfg, const char *name);
// Fills defaults for a config built in code after the caller set the base fields (the same
// derivation as parsing): call with layer_types unset (n = 0) to get the default pattern.
void hy_config_derive_defaults(hy_config *cfg, int layer_types_given);

// Derived sizes.
static inline int hy_config_conv_dim(const hy_config *c) {
    return 2 * c->linear_num_key_heads * c->linear_key_head_dim + c->linear_num_value_heads * c->linear_value_head_dim;
}
static inline int hy_config_n_gdn_layers(const hy_config *c) {
    int n = 0;
    for (int i = 0; i < c->num_hidden_layers; i++) n += c->layer_types[i] == HY_LAYER_GDN;
    return n;
}

#endif
