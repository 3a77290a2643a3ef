// `hybrid init`: a randomly initialised checkpoint (HF's init scheme) from a config.json or a
// named preset, written as an HF model directory; optionally with a tokenizer.json copied in. The
// `demo` preset's byte-level tokenizer is generated (model/tokenizer_bytes.h) when none is given.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../model/tokenizer_bytes.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"config", ARG_STR, NULL, "HF config.json of the model to create", 0, 0},
    {"preset", ARG_STR, NULL, "named config: tiny, tiny-dolma2, demo, olmo-hybrid-7b", 0, 0},
    {"out", ARG_STR, NULL, "output model directory (required)", 0, 0},
    {"seed", ARG_INT, "0", "random seed", 0, 0},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json to copy into DIR (demo: the byte-level one by default)", 0, 0},
};
static const arg_command command = {
    "init", "init (--config CONFIG.json | --preset NAME) --out DIR [--seed S] [--tokenizer FILE]",
    "Writes config.json and model.safetensors (F32) with HF's random init: linear, embedding and conv\n"
    "weights ~ N(0, initializer_range), norms 1, A_log = log U(a_log_min, a_log_max), dt_bias the\n"
    "inverse softplus of a log-uniform dt. --preset demo (the tiny shapes, V=264) also writes its\n"
    "byte-level tokenizer.json (token b = byte b, then <|endoftext|> <|pad|> <|im_start|> <|im_end|>\n"
    "= 256..259) into DIR unless --tokenizer is given.",
    specs, sizeof specs / sizeof *specs};

int cmd_init(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *config = arg_str(&a, "config"), *preset = arg_str(&a, "preset"), *out = arg_str(&a, "out");
    if (!out || (!config == !preset)) {
        fprintf(stderr, "hybrid init: give --out and exactly one of --config or --preset\n");
        return 2;
    }
    hy_config cfg;
    if (config ? hy_config_load(&cfg, config) : hy_config_preset(&cfg, preset)) return cli_error("init");
    const char *tok_path = arg_str(&a, "tokenizer");
    if (tok_path) {
        hy_tokenizer *tok;
        if (hy_tokenizer_load(&tok, tok_path)) return cli_error("init");
        int tv = hy_tokenizer_vocab_size(tok);
        hy_tokenizer_free(tok);
        if (tv > cfg.vocab_size) {
            hy_fail("%s has ids up to %d but the model's vocab_size is %d", tok_path, tv - 1, cfg.vocab_size);
            return cli_error("init");
        }
    }
    hy_model m;
    hy_model_init(&m, &cfg, (uint64_t)arg_int(&a, "seed"));
    rc = hy_model_save(&m, out);
    const int bytes_tokenizer = !tok_path && preset && strcmp(preset, "demo") == 0;
    if (!rc && (tok_path || bytes_tokenizer)) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s/tokenizer.json", out);
        rc = tok_path ? cli_copy_file(tok_path, dst) : hy_tokenizer_bytes_write(dst);
    }
    if (rc) {
        hy_model_free(&m);
        return cli_error("init");
    }
    fprintf(stderr, "hybrid init: wrote %s: %zu parameters, %d layers (%d GDN), C=%d, V=%d%s\n", out, m.table.n_params,
            cfg.num_hidden_layers, hy_config_n_gdn_layers(&cfg), cfg.hidden_size, cfg.vocab_size,
            bytes_tokenizer ? ", byte-level tokenizer.json" : "");
    hy_model_free(&m);
    return 0;
}
