// Optimizer parameter groups: which parts of the parameter arena get AdamW's weight decay.
//
// Decay is decided per parameter-table row (params.h) from a comma-separated rule list. A rule is a
// kind — norm (RMSNorm weights), bias (names ending in "bias"), a_log, dt_bias, embed (the
// embedding, and lm_head with it when tied), conv, lm_head — or otherwise a substring of the HF
// name ("layers.0." excludes a layer). "none" or an empty list decays everything, as
// torch.optim.AdamW(model.parameters()) does. A substring that matches no parameter is an error
// (a typo would otherwise silently decay what it meant to exclude); kinds may match nothing (this
// model has no biases). Rows follow each other in the arena (the zero gaps that align them go to
// the next range), so a group list is a few ranges of (offset, count, decay) tiling the arena, and
// one AdamW call per range updates everything.
#ifndef HY_PARAM_GROUPS_H
#define HY_PARAM_GROUPS_H

#include <stddef.h>

#include "../model/params.h"

typedef struct {
    size_t offset, n;  // floats into the parameter arena
    int decay;
} hy_param_range;

typedef struct {
    hy_param_range *ranges;
    int n_ranges;
    size_t n_decay, n_no_decay;  // floats in each group
} hy_param_groups;

// Default exclusions of `hybrid sft`.
#define HY_NO_DECAY_DEFAULT "norm,bias,a_log,dt_bias,embed"

// Builds the ranges of table t under the rule list no_decay. 0 / −1 (message names the rule).
int hy_param_groups_build(hy_param_groups *g, const hy_param_table *t, const char *no_decay);
// Whether row s is excluded from decay by no_decay (an already-validated rule list).
int hy_param_groups_excludes(const hy_param_spec *s, const char *no_decay);
void hy_param_groups_free(hy_param_groups *g);

#endif
