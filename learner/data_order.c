// Per-epoch shuffled data order with a resumable position (see data_order.h).
#include "data_order.h"

#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"

// Draws this epoch's permutation from o->rng (unbiased bounded draws by rejection).
static void draw_permutation(hy_data_order *o) {
    o->epoch_rng = o->rng;
    for (int i = 0; i < o->n; i++) o->perm[i] = i;
    if (!o->shuffle) return;
    for (int i = o->n - 1; i > 0; i--) {
        const uint64_t bound = (uint64_t)i + 1, limit = UINT64_MAX - UINT64_MAX % bound;
        uint64_t r;
        do r = hy_rng_next(&o->rng);
        while (r >= limit);
        const int j = (int)(r % bound), t = o->perm[i];
        o->perm[i] = o->perm[j];
        o->perm[j] = t;
    }
}

void hy_data_order_init(hy_data_order *o, int n, uint64_t seed, int shuffle) {
    memset(o, 0, sizeof *o);
    o->n = n;
    o->shuffle = shuffle;
    o->perm = hy_malloc(sizeof *o->perm * (size_t)(n ? n : 1));
    hy_rng_init(&o->rng, seed);
    o->epoch_rng = o->rng;
    o->epoch = -1;
    o->pos = n;  // the first call starts epoch 0
}

int hy_data_order_restore(hy_data_order *o, int n, int shuffle, const hy_rng *epoch_rng, long epoch, int pos) {
    if (pos < 0 || pos > n) return hy_fail("data position %d is outside [0, %d]", pos, n);
    hy_data_order_init(o, n, 0, shuffle);
    o->rng = *epoch_rng;
    o->epoch_rng = *epoch_rng;
    o->epoch = epoch;
    if (epoch < 0) return 0;  // saved before the first batch: the first call draws epoch 0
    draw_permutation(o);
    o->pos = pos;
    return 0;
}

void hy_data_order_free(hy_data_order *o) {
    free(o->perm);
    memset(o, 0, sizeof *o);
}

int hy_data_order_next(hy_data_order *o, int batch_size, int *out) {
    if (o->pos >= o->n) {
        o->epoch++;
        draw_permutation(o);
        o->pos = 0;
    }
    int count = o->n - o->pos;
    if (batch_size > 0 && batch_size < count) count = batch_size;
    memcpy(out, o->perm + o->pos, sizeof *out * (size_t)count);
    o->pos += count;
    return count;
}
