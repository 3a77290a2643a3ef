// The byte-level demo tokenizer.json (see tokenizer_bytes.h), built with jansson.
//
// Layout, key for key in the dolma2 file's order: version, truncation and padding null,
// added_tokens, normalizer null, pre_tokenizer, post_processor null, decoder, model. The
// pre_tokenizer and decoder are dolma2's (its cl100k-style Split regex, then ByteLevel without its
// own regex): with no merges the split cannot change the ids, but keeping it means merges learned
// later for this file behave as they would in the dolma2 one. Special tokens are also entries of
// model.vocab with the same ids, as in dolma2; HF then gives each added token the model's id, and
// our loader checks that the two agree. Added tokens are listed in id order, which is the order HF
// would assign fresh ids in, so the ids hold even for a reader that ignores the "id" field.
#include "model/tokenizer_bytes.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hy_error.h"
#include "model/tokenizer_utf8.h"

// The dolma2 tokenizer.json's Split pattern, verbatim.
static const char split_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const struct {
    const char *content;
    int id;
} specials[] = {
    {"<|endoftext|>", HY_BYTES_ENDOFTEXT},
    {"<|pad|>", HY_BYTES_PAD},
    {"<|im_start|>", HY_BYTES_IM_START},
    {"<|im_end|>", HY_BYTES_IM_END},
};
enum { N_SPECIALS = sizeof specials / sizeof *specials };
_Static_assert(HY_BYTES_N_TOKENS == 256 + N_SPECIALS, "special ids must follow the 256 byte tokens");

static json_t *added_tokens_json(void) {
    json_t *a = json_array();
    for (int k = 0; k < N_SPECIALS; k++)
        json_array_append_new(a, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", specials[k].id, "content",
                                           specials[k].content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                           "normalized", 0, "special", 1));
    return a;
}

static json_t *pre_tokenizer_json(void) {
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", split_pattern,
                              "behavior", "Removed", "invert", 1);
    json_t *byte_level = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                                   "trim_offsets", 1, "use_regex", 0);
    return json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split, byte_level);
}

static json_t *model_json(void) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char spelled[5];
        int n = hy_utf8_encode_cp(hy_byte_to_cp((unsigned char)b), spelled);
        spelled[n] = '\0';
        json_object_set_new(vocab, spelled, json_integer(b));
    }
    for (int k = 0; k < N_SPECIALS; k++) json_object_set_new(vocab, specials[k].content, json_integer(specials[k].id));
    return json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:o, s:[]}", "type", "BPE", "dropout", "unk_token",
                     "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                     "vocab", vocab, "merges");
}

static json_t *tokenizer_json(void) {
    json_t *decoder = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets",
                                1, "use_regex", 1);
    return json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:n, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added_tokens_json(), "normalizer", "pre_tokenizer", pre_tokenizer_json(),
                     "post_processor", "decoder", decoder, "model", model_json());
}

int hy_tokenizer_bytes_write(const char *path) {
    json_t *doc = tokenizer_json();
    if (!doc) {  // json_pack fails only on a format/argument mismatch above
        fprintf(stderr, "hybrid: tokenizer_bytes.c: json_pack format does not match its arguments\n");
        abort();
    }
    size_t tn = strlen(path) + 32;
    char *tmp = hy_malloc(tn);
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    if (json_dump_file(doc, tmp, JSON_INDENT(2)) != 0)
        rc = hy_fail("%s: cannot write the byte-level tokenizer: %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0)
        rc = hy_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc != 0) remove(tmp);
    free(tmp);
    json_decref(doc);
    return rc;
}
