// Warmup + decay learning-rate schedule (see lr_schedule.h).
#include "lr_schedule.h"

#include <math.h>
#include <string.h>

#include "../common/hy_error.h"

int hy_lr_decay_parse(const char *name, hy_lr_decay *out) {
    static const char *const names[] = {"constant", "linear", "cosine"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (hy_lr_decay)i;
            return 0;
        }
    return hy_fail("unknown learning-rate schedule '%s' (constant, linear or cosine)", name);
}

double hy_lr_at(const hy_lr_schedule *s, long step) {
    if (s->warmup_steps > 0 && step <= s->warmup_steps) return s->peak * (double)step / (double)s->warmup_steps;
    if (s->decay == HY_LR_CONSTANT) return s->peak;
    const long span = s->total_steps - s->warmup_steps;
    const double p = span > 0 && step < s->total_steps ? (double)(step - s->warmup_steps) / (double)span : 1.0;
    const double r = s->min_ratio;
    const double shape = s->decay == HY_LR_LINEAR ? 1.0 - p : 0.5 * (1.0 + cos(M_PI * p));
    return s->peak * (r + (1.0 - r) * shape);
}
