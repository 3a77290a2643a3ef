// SFT demonstrations from a verifiable task: each sample's prompt followed by its reference answer
// written out by a format ("{answer}" is replaced), then the end-of-turn token — so a model can be
// taught the task's answer format before RL sharpens it (the demo's first stage).
#ifndef HY_LEARNER_TASK_SFT_H
#define HY_LEARNER_TASK_SFT_H

#include "evals/task.h"
#include "learner/sft_data.h"
#include "model/tokenizer.h"

// Adds samples first .. first + n − 1 of task to ds: prompt (as hy_eval_prompt_tokens renders it,
// mask 0), then format with the answer, then end_id (mask 1). 0 / −1 (message names the sample).
int hy_task_sft_dataset(const hy_task *task, const hy_tokenizer *tok, int chat, const char *format, int32_t end_id,
                        long first, long n, hy_dataset *ds);

#endif
