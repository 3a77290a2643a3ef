// Checkpoint directories of a training run: everything needed to continue bit-exactly.
//
// A checkpoint is an HF model directory that transformers loads as it is — config.json,
// model.safetensors (fp32 master weights, HF names), tokenizer.json when the run has one — plus
// three files of ours:
//   optimizer.bin      AdamW's step count, the parameter table's names and sizes (to refuse a state
//                      of another model), the range of the parameter arena it covers, and
//                      exp_avg and exp_avg_sq over that range (fp32, arena order)
//   optimizer-RRRRR-of-WWWWW.bin  instead of optimizer.bin in a data-parallel run: each rank's
//                      shard (its range). A resume reads whichever set is there and takes the
//                      part each of its ranks owns, so a checkpoint of W ranks continues on any
//                      number of ranks (one included).
//   trainer_state.bin  loop step, skipped steps, tokens seen, the data order (seed, stream state at
//                      the epoch's start, epoch, position) and the data's size and hash
//   recipe.yaml        the resolved configuration (a recipe that reproduces the run)
// The binaries use state_file.h (magic, version, named fields, checksum). The directory is filled
// under a temporary name and renamed into place last (common/atomic_file.h), so a crash while
// saving leaves the previous checkpoint intact; with several ranks, rank 0 puts it in place only
// after every rank has written its shard. Weights are loaded by hy_model_load from the same
// directory; the bf16 working copy on CUDA is rebuilt from the fp32 master by hy_model_attach,
// exactly as the AdamW kernel produces it.
#ifndef HY_TRAIN_STATE_H
#define HY_TRAIN_STATE_H

#include <stdint.h>

#include "../common/rng.h"
#include "trainer.h"

typedef struct {
    long step;          // loop steps done, skipped ones included
    long skipped;       // of those, refused for a non-finite loss or gradient
    long tokens_seen;   // tokens run through the model
    uint64_t seed;      // the data-order seed the run started with
    hy_rng epoch_rng;   // data order (data_order.h): the stream before this epoch's draw
    long epoch;
    int position;
    long n_sequences;   // the training data: size and hash (sft_data.h)
    uint64_t data_hash;
} hy_train_state;

// The files a checkpoint directory holds (NULL-terminated): an existing directory with only these
// may be replaced by a newer checkpoint.
extern const char *const hy_checkpoint_files[];

// Writes checkpoint dir (see above); with data-parallel ranks every rank calls it. m's weights are
// copied from the backend first. config_yaml
// (may be NULL) becomes recipe.yaml; tokenizer_path (may be NULL) is copied to tokenizer.json.
int hy_checkpoint_save(const char *dir, hy_model *m, const hy_trainer *t, const hy_train_state *s,
                       const char *config_yaml, const char *tokenizer_path);
// Reads dir's optimizer state (the part of it t's rank owns: m, v, AdamW step; t->skipped from the state) and
// trainer_state.bin into s. Errors name the file and the field.
int hy_checkpoint_load_state(const char *dir, hy_trainer *t, hy_train_state *s);

#endif
