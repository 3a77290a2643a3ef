// Learning-rate schedule: linear warmup, then constant, linear or cosine decay to a floor.
//
// For optimizer step s (1-based, the step whose update uses the rate), peak rate P, W warmup steps,
// S total steps and floor ratio r:
//   s ≤ W:  P·s/W                                   (the first step already moves; step W is at P)
//   s > W:  p = (s − W)/(S − W) ∈ (0, 1]
//           constant  P
//           linear    P·(r + (1 − r)(1 − p))
//           cosine    P·(r + (1 − r)·½(1 + cos πp))
// so the last step runs at exactly r·P. Steps past S stay at the floor. The rate is a pure function
// of the step, so a resumed run needs nothing but the step counter to continue the schedule.
#ifndef HY_LR_SCHEDULE_H
#define HY_LR_SCHEDULE_H

typedef enum { HY_LR_CONSTANT, HY_LR_LINEAR, HY_LR_COSINE } hy_lr_decay;

typedef struct {
    double peak;
    long warmup_steps, total_steps;
    hy_lr_decay decay;
    double min_ratio;  // floor as a fraction of peak, in [0, 1]
} hy_lr_schedule;

// "constant", "linear" or "cosine"; −1 (hy_fail message) otherwise.
int hy_lr_decay_parse(const char *name, hy_lr_decay *out);
double hy_lr_at(const hy_lr_schedule *s, long step);

#endif
