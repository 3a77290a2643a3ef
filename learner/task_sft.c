// SFT demonstrations from a task (see task_sft.h).
#include "learner/task_sft.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/eval_run.h"

// format with every "{answer}" replaced by answer.
static char *render(const char *format, const char *answer) {
    const size_t fl = strlen(format), al = strlen(answer);
    char *out = hy_malloc(fl * (al + 1) + 1), *o = out;
    for (const char *p = format; *p;) {
        if (!strncmp(p, "{answer}", 8)) {
            memcpy(o, answer, al);
            o += al;
            p += 8;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

int hy_task_sft_dataset(const hy_task *task, const hy_tokenizer *tok, int chat, const char *format, int32_t end_id,
                        long first, long n, hy_dataset *ds) {
    for (long i = first; i < first + n; i++) {
        hy_task_sample s;
        if (hy_task_sample_get(task, i, &s)) return -1;
        int32_t *prompt = NULL, *answer = NULL;
        int np = 0, na = 0;
        char *text = render(format, s.answer);
        int rc = hy_eval_prompt_tokens(tok, &s, chat, &prompt, &np);
        if (!rc) rc = hy_tokenizer_encode(tok, text, strlen(text), &answer, &na);
        if (!rc) {
            const int len = np + na + 1;
            int32_t *ids = hy_malloc(sizeof *ids * (size_t)len);
            uint8_t *mask = hy_calloc((size_t)len, 1);
            memcpy(ids, prompt, sizeof *ids * (size_t)np);
            memcpy(ids + np, answer, sizeof *ids * (size_t)na);
            ids[len - 1] = end_id;
            memset(mask + np, 1, (size_t)na + 1);
            hy_dataset_add(ds, ids, mask, len);
            free(ids);
            free(mask);
        } else {
            hy_fail_prefix("SFT demonstration of %s", s.id);
        }
        free(text);
        free(prompt);
        free(answer);
        hy_task_sample_free(&s);
        if (rc) return -1;
    }
    return 0;
}
