/* image_resize_avx2.c - the two passes of PIL's 8-bit bicubic resize (image_resize.c) with AVX2,
 * giving the same bytes as the scalar loops.
 *
 * Pillow's sums are integers: 2^21 + sum of pixel * 22-bit coefficient, in int32, then >> 22 and
 * clamped. Integer addition does not depend on the order, and int32 lanes that wrap give the
 * exact sum modulo 2^32, which is the sum itself since Pillow's fits in int32: any order and
 * any split of the products gives Pillow's result. The horizontal pass multiplies with
 * vpmaddwd (16 x 16 -> 32 bits, two products per lane), so each coefficient is split as
 * k = hi * 2^15 + lo with lo in 0..32767 and hi in -128..128, and the sum is
 * (sum of pixel * hi) * 2^15 + sum of pixel * lo. The vertical pass multiplies 32-bit lanes
 * (vpmulld) by the whole coefficient.
 *
 * Only image_resize.c calls these, and only when cpu.c reports AVX2 (this file is compiled
 * with -mavx2). */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "image.h"

#define PRECISION_BITS 22
#define HALF (1 << (PRECISION_BITS - 1))

/* Taps per group: 4 pixels of 3 or 4 channels (two per 128-bit lane), or 16 gray pixels. */
static int group_taps(int chans) { return chans == 1 ? 16 : 4; }

size_t bmc__resize_h_avx2_coef_bytes(int n, int ksize, int chans) {
    int T = group_taps(chans), groups = (ksize + T - 1) / T;
    return (size_t)n * groups * 2 * sizeof(__m256i);
}

/* Per output, per group: the hi vector then the lo vector. For 3 and 4 channels each 128-bit
 * lane holds one pair of taps as 16-bit words (k[x], k[x+1]) four times over, lane 0 taps
 * 4g, 4g+1 and lane 1 taps 4g+2, 4g+3: the pixel words are laid out to match (r0 r1 g0 g1 b0 b1
 * a0 a1). For gray the 16 words are the group's 16 taps. Taps past ksize are 0. */
void bmc__resize_h_avx2_coef(int n, int ksize, const int32_t *fixed, int chans, void *coef) {
    int T = group_taps(chans), groups = (ksize + T - 1) / T;
    int16_t *c = coef;
    for (int j = 0; j < n; j++) {
        const int32_t *k = fixed + (size_t)j * ksize;
        for (int g = 0; g < groups; g++, c += 32) {
            for (int w = 0; w < 16; w++) {
                int x = chans == 1 ? g * 16 + w : g * 4 + (w >= 8 ? 2 : 0) + (w & 1);
                int32_t v = x < ksize ? k[x] : 0;
                int32_t hi = v >> 15; /* arithmetic shift: floor(v / 2^15) */
                c[w] = (int16_t)hi;
                c[16 + w] = (int16_t)(v - hi * 32768);
            }
        }
    }
}

/* (sum hi) * 2^15 + (sum lo) + 2^21, >> 22, clamped to 0..255 in the low 4 bytes. */
static inline __m128i finish4(__m128i hi, __m128i lo) {
    __m128i s = _mm_add_epi32(_mm_slli_epi32(hi, 15), lo);
    s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(HALF)), PRECISION_BITS);
    s = _mm_packs_epi32(s, s); /* |s| < 2^10: no saturation here */
    return _mm_packus_epi16(s, s); /* the clamp to 0..255 */
}

/* One row for a constant number of channels (the compiler specialises each). */
static inline __attribute__((always_inline)) void h_row(const uint8_t *in, int w, const int chans, int n,
                                                        int ksize, const int *bounds, const __m256i *cv,
                                                        uint8_t *out, uint8_t *pad) {
    const int T = chans == 1 ? 16 : 4, groups = (ksize + T - 1) / T;
    size_t row_bytes = (size_t)w * chans;
    /* which source byte goes to which 16-bit word (0x80: zero) in each lane */
    const __m256i shuf = chans == 3 ? _mm256_setr_epi8(0, -128, 3, -128, 1, -128, 4, -128, 2, -128, 5, -128, -128,
                                                       -128, -128, -128, 6, -128, 9, -128, 7, -128, 10, -128, 8,
                                                       -128, 11, -128, -128, -128, -128, -128)
                                    : _mm256_setr_epi8(0, -128, 4, -128, 1, -128, 5, -128, 2, -128, 6, -128, 3,
                                                       -128, 7, -128, 8, -128, 12, -128, 9, -128, 13, -128, 10,
                                                       -128, 14, -128, 11, -128, 15, -128);
    for (int j = 0; j < n; j++, cv += 2 * groups, out += chans) {
        int xmin = bounds[2 * j], cnt = bounds[2 * j + 1];
        int g_used = (cnt + T - 1) / T;
        const uint8_t *p = in + (size_t)xmin * chans;
        /* a group reads 16 bytes from its first pixel; near the end of the row they are read from
         * a copy with zeros after the row (the caller's pad holds ksize + 16 pixels + 16 bytes) */
        if (g_used > 0 && (size_t)xmin * chans + (size_t)(g_used - 1) * T * chans + 16 > row_bytes) {
            size_t have = row_bytes - (size_t)xmin * chans;
            memcpy(pad, p, have);
            memset(pad + have, 0, (size_t)g_used * T * chans + 16 - have);
            p = pad;
        }
        __m256i acc_hi = _mm256_setzero_si256(), acc_lo = _mm256_setzero_si256();
        for (int g = 0; g < g_used; g++) {
            __m256i px;
            if (chans == 1) {
                px = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + g * 16)));
            } else {
                px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + (size_t)g * 4 * chans)));
                px = _mm256_shuffle_epi8(px, shuf);
            }
            acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(px, _mm256_loadu_si256(cv + 2 * g)));
            acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(px, _mm256_loadu_si256(cv + 2 * g + 1)));
        }
        /* gray: 8 partial sums; colour: lane 0 has taps 4g, 4g+1 and lane 1 taps 4g+2, 4g+3 */
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc_hi), _mm256_extracti128_si256(acc_hi, 1));
        __m128i l = _mm_add_epi32(_mm256_castsi256_si128(acc_lo), _mm256_extracti128_si256(acc_lo, 1));
        if (chans == 1) {
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
            l = _mm_add_epi32(l, _mm_shuffle_epi32(l, _MM_SHUFFLE(1, 0, 3, 2)));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
            l = _mm_add_epi32(l, _mm_shuffle_epi32(l, _MM_SHUFFLE(2, 3, 0, 1)));
        }
        uint32_t v = (uint32_t)_mm_cvtsi128_si32(finish4(h, l));
        out[0] = (uint8_t)v;
        if (chans > 1) out[1] = (uint8_t)(v >> 8), out[2] = (uint8_t)(v >> 16);
        if (chans > 3) out[3] = (uint8_t)(v >> 24);
    }
}

void bmc__resize_h_avx2_row(const uint8_t *in, int w, int chans, int n, int ksize, const int *bounds,
                            const void *coef, uint8_t *out, uint8_t *pad) {
    if (chans == 1) h_row(in, w, 1, n, ksize, bounds, coef, out, pad);
    else if (chans == 3) h_row(in, w, 3, n, ksize, bounds, coef, out, pad);
    else h_row(in, w, 4, n, ksize, bounds, coef, out, pad);
}

/* 32 int32 sums (four vectors of 8 columns) to 32 bytes in column order: >> 22 and clamped. */
static inline __m256i finish32(__m256i a, __m256i b, __m256i c, __m256i d) {
    a = _mm256_srai_epi32(a, PRECISION_BITS);
    b = _mm256_srai_epi32(b, PRECISION_BITS);
    c = _mm256_srai_epi32(c, PRECISION_BITS);
    d = _mm256_srai_epi32(d, PRECISION_BITS);
    /* packs / packus work per 128-bit lane: dwords come out as a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 .. */
    __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void bmc__resize_v_avx2_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out) {
    size_t j = 0;
    for (; j + 32 <= row_bytes; j += 32) {
        __m256i a0 = _mm256_set1_epi32(HALF), a1 = a0, a2 = a0, a3 = a0;
        for (int y = 0; y < cnt; y++) {
            const uint8_t *p = src + (size_t)y * row_bytes + j;
            __m256i kk = _mm256_set1_epi32(k[y]);
            __m256i px = _mm256_loadu_si256((const __m256i *)p);
            __m128i lo = _mm256_castsi256_si128(px), hi = _mm256_extracti128_si256(px, 1);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(lo), kk));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), kk));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(hi), kk));
            a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), kk));
        }
        _mm256_storeu_si256((__m256i *)(out + j), finish32(a0, a1, a2, a3));
    }
    for (; j < row_bytes; j++) { /* the last columns one by one */
        int32_t ss = HALF;
        for (int y = 0; y < cnt; y++) ss += src[(size_t)y * row_bytes + j] * k[y];
        int32_t v = ss >> PRECISION_BITS;
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}
