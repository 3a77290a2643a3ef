// Rotary position embedding, rotate-half convention (HF apply_rotary_pos_emb), in place.
//
// Element i < D/2 of a head pairs with element i + D/2; the pair is rotated by the angle
// pos·inv_freq[i]:  (a, b) ← (a·cos − b·sin, b·cos + a·sin), which is x·cos + rotate_half(x)·sin.
// The angle is formed exactly where HF forms it, in fp32: inv_freq = 1 / theta^((2i)/D) with the
// exponent divided in fp32, then the fp32 product (float)pos · inv_freq. At positions in the
// thousands the fp32 angle is off by ~1e-4 rad from the exact one; matching HF's rounding keeps
// parity with HF instead of with the exact rotation.
// The rotation is orthogonal, so backward applies its transpose: the same rotation by −angle.
// cos/sin are computed once per (token, frequency) and applied to every head of the token.
#include "../ops_cpu.h"

#include <math.h>

static void rope_rotate(float *x, const int32_t *pos, int T, int H, int D, float theta, float direction) {
    int half = D / 2;
    for (int t = 0; t < T; t++) {
        float p = (float)pos[t];
        float *row = x + (size_t)t * H * D;
        for (int i = 0; i < half; i++) {
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)D);
            float angle = p * inv_freq;
            float c = cosf(angle), s = direction * sinf(angle);
            for (int h = 0; h < H; h++) {
                float *a = row + (size_t)h * D + i, *b = a + half;
                float a0 = *a, b0 = *b;
                *a = a0 * c - b0 * s;
                *b = b0 * c + a0 * s;
            }
        }
    }
}

void rope_forward(float *x, const int32_t *pos, int T, int H, int D, float theta) {
    rope_rotate(x, pos, T, H, D, theta, 1.0f);
}

void rope_backward(float *dx, const int32_t *pos, int T, int H, int D, float theta) {
    rope_rotate(dx, pos, T, H, D, theta, -1.0f);
}
