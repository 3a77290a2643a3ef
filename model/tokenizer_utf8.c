// UTF-8 validation, lossy repair and the GPT-2 byte-level alphabet (see tokenizer_utf8.h).
//
// The well-formedness rules are Unicode's Table 3-7: the lead byte fixes the length and the range
// of the second byte (E0 needs A0..BF so that no overlong form passes, ED stops at 9F so that no
// surrogate passes, F0 needs 90..BF, F4 stops at 8F to stay below U+110000); later bytes are
// 80..BF. The "maximal subpart" of an ill-formed sequence is its longest prefix that could still
// have begun a well-formed one, which is exactly what Rust's from_utf8_lossy replaces by one
// U+FFFD; a byte that can never start or continue a sequence is a subpart of length one.
#include "model/tokenizer_utf8.h"

#include "common/hy_error.h"

#include <string.h>

int hy_utf8_seq_len(const unsigned char *s, size_t n, int *bad_len) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    int len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *bad_len = 1;
        return 0;
    }
    for (int k = 1; k < len; k++) {
        unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
        if ((size_t)k >= n || s[k] < lo_k || s[k] > hi_k) {
            *bad_len = k;
            return 0;
        }
    }
    return len;
}

size_t hy_utf8_first_invalid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int bad;
        int len = hy_utf8_seq_len(u + i, n - i, &bad);
        if (!len) return i;
        i += (size_t)len;
    }
    return n;
}

void hy_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len) {
    // Each ill-formed byte grows to at most three (U+FFFD is EF BF BD).
    char *o = hy_malloc(3 * n + 1);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, w = 0;
    while (i < n) {
        int bad = 0;
        int len = hy_utf8_seq_len(u + i, n - i, &bad);
        if (len) {
            memcpy(o + w, s + i, (size_t)len);
            w += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(o + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i += (size_t)bad;
        }
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
}

// GPT-2 keeps the printable bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF as themselves and moves
// the 68 others, in byte order, to U+0100..U+0143, so every byte becomes a visible character.
uint32_t hy_byte_to_cp(unsigned char b) {
    if (b <= 0x20) return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0) return 0x100u + 0x21u + (uint32_t)(b - 0x7F);
    if (b == 0xAD) return 0x100u + 0x21u + 0x22u;
    return b;
}

int hy_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

int hy_utf8_decode_cp(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

int hy_utf8_encode_cp(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
