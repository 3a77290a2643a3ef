// Full-batch training steps on the model's backend: forward, mean token cross-entropy, backward,
// global grad-norm clipping, AdamW over every parameter (PyTorch AdamW semantics, decay applied
// to all parameters as torch.optim.AdamW(model.parameters()) does).
//
// Gradients and the optimizer state (m, v) are fp32 arenas in backend memory laid out like the
// parameter arena (params.h), so one call per step updates everything; on CUDA the AdamW kernel
// also refreshes the bf16 matmul copy.
#ifndef HY_TRAINER_H
#define HY_TRAINER_H

#include "../kernels/ops_cpu.h"
#include "../model/model.h"

typedef struct {
    hy_model *model;
    adamw_params hp;
    float grad_clip;                       // 0 = no clipping
    float *grads, *exp_avg, *exp_avg_sq;   // (table.total) backend memory
    int step;                              // AdamW steps taken
} hy_trainer;

void hy_trainer_init(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip);
void hy_trainer_free(hy_trainer *t);

// Loss and gradients of batch b (targets (T), host: next token within the document, −1 at a
// document's end), without updating: *loss and *grad_norm (before clipping). Returns 0 / −1.
int hy_trainer_loss_and_grads(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss,
                              double *grad_norm);
// One full-batch step: loss/gradients as above, then clip and AdamW.
int hy_trainer_step(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss, double *grad_norm);
// Next-token targets of a packed batch (−1 at each document's last token).
void hy_next_token_targets(const hy_batch *b, int32_t *targets);

#endif
