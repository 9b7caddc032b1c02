/* image_resize_sse2.c - the two passes of PIL's 8-bit bicubic resize (image_resize.c) with SSE2,
 * for CPUs without AVX2 (the portable level), giving the same bytes as the scalar loops.
 *
 * The arithmetic is image_resize_avx2.c's: Pillow's int32 sums do not depend on the order or on
 * how the products are split, so pmaddwd (16 x 16 -> 32 bits, two products per lane) multiplies
 * the pixels by each 22-bit coefficient split as k = hi * 2^15 + lo (lo in 0..32767, hi in
 * -128..128), and the sum is (sum of pixel * hi) * 2^15 + sum of pixel * lo. SSE2 has no byte
 * shuffle (pshufb) and no 32-bit multiply (pmulld): in the horizontal pass unpacks turn 4 colour
 * pixels into two vectors of words, taps 0 and 2 of each channel side by side in one, 1 and 3 in
 * the other (fewer unpacks per tap than a pair of pixels at a time), and the vertical pass puts
 * two rows side by side in each lane.
 *
 * SSE2 is part of x86-64, so this file needs no flags (and image_resize.c uses it at every level
 * below AVX2). Where the compiler has no SSE2 the functions are stubs that never run:
 * bmc__resize_have_sse2() says 0 and image_resize.c keeps the scalar loops. */
#include <stdint.h>
#include <string.h>

#include "image.h"

#if defined(__SSE2__)

#include <emmintrin.h>

#define PRECISION_BITS 22
#define HALF (1 << (PRECISION_BITS - 1))

int bmc__resize_have_sse2(void) { return 1; }

/* Taps per group: 4 pixels of 3 or 4 channels, or 8 gray pixels. */
static int group_taps(int chans) { return chans == 1 ? 8 : 4; }

size_t bmc__resize_h_sse2_coef_bytes(int n, int ksize, int chans) {
    int T = group_taps(chans), groups = (ksize + T - 1) / T;
    return (size_t)n * groups * (chans == 1 ? 2 : 4) * sizeof(__m128i);
}

/* Per output, per group: hi vectors then lo vectors. Gray: one vector each, the group's 8 taps.
 * Colour: two each, X and Y, matching the pixel words h_row makes of pixels 0-3 of the group.
 * 4 channels: X = (k0, k2) four times (r0 r2 g0 g2 b0 b2 a0 a2), Y = (k1, k3) four times
 * (r1 r3 g1 g3 ..). 3 channels: X = (k0, k2) three times then (k1, k3) (r0 r2 g0 g2 b0 b2 r1 r3),
 * Y = (k1, k3) twice then zeros (g1 g3 b1 b3, then words not used). Taps past ksize are 0. */
void bmc__resize_h_sse2_coef(int n, int ksize, const int32_t *fixed, int chans, void *coef) {
    int T = group_taps(chans), groups = (ksize + T - 1) / T, nv = chans == 1 ? 1 : 2;
    int16_t *c = coef;
    for (int j = 0; j < n; j++) {
        const int32_t *k = fixed + (size_t)j * ksize;
        for (int g = 0; g < groups; g++, c += 16 * nv) {
            for (int w = 0; w < 8 * nv; w++) {
                int x; /* the tap of word w, -1 for none */
                if (chans == 1) x = g * 8 + w;
                else if (w < 8) x = g * 4 + (chans == 4 || w < 6 ? 0 : 1) + 2 * (w & 1);
                else x = chans == 4 || w < 12 ? g * 4 + 1 + 2 * (w & 1) : -1;
                int32_t v = x >= 0 && x < ksize ? k[x] : 0;
                int32_t hi = v >> 15; /* arithmetic shift: floor(v / 2^15) */
                c[w] = (int16_t)hi;
                c[8 * nv + w] = (int16_t)(v - hi * 32768);
            }
        }
    }
}

/* (sum hi) * 2^15 + (sum lo) + 2^21, >> 22, as int32 lanes. */
static inline __m128i finish(__m128i hi, __m128i lo) {
    __m128i s = _mm_add_epi32(_mm_slli_epi32(hi, 15), lo);
    return _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(HALF)), PRECISION_BITS);
}

/* One row for a constant number of channels (the compiler specialises each). */
static inline __attribute__((always_inline)) void h_row(const uint8_t *in, int w, const int chans, int n,
                                                        int ksize, const int *bounds, const __m128i *cv,
                                                        uint8_t *out, uint8_t *pad) {
    const int T = chans == 1 ? 8 : 4, groups = (ksize + T - 1) / T, nv = chans == 1 ? 1 : 2;
    const int rd = chans == 1 ? 8 : 16; /* bytes a group reads from its first pixel */
    const __m128i zero = _mm_setzero_si128();
    size_t row_bytes = (size_t)w * chans;
    for (int j = 0; j < n; j++, cv += 2 * nv * groups, out += chans) {
        int xmin = bounds[2 * j], cnt = bounds[2 * j + 1];
        int g_used = (cnt + T - 1) / T;
        const uint8_t *p = in + (size_t)xmin * chans;
        /* a group reads rd bytes from its first pixel (3 channels: 4 past its 4 pixels); near the
         * end of the row they are read from a copy with zeros after the row (the caller's pad
         * holds ksize + 16 pixels + 16 bytes) */
        if (g_used > 0 && (size_t)xmin * chans + (size_t)(g_used - 1) * T * chans + rd > row_bytes) {
            size_t have = row_bytes - (size_t)xmin * chans;
            memcpy(pad, p, have);
            memset(pad + have, 0, (size_t)g_used * T * chans + rd - have);
            p = pad;
        }
        __m128i xh = zero, xl = zero, yh = zero, yl = zero;
        if (chans == 1) {
            for (int g = 0; g < g_used; g++) {
                __m128i px = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p + (size_t)g * 8)), zero);
                xh = _mm_add_epi32(xh, _mm_madd_epi16(px, _mm_loadu_si128(cv + 2 * g)));
                xl = _mm_add_epi32(xl, _mm_madd_epi16(px, _mm_loadu_si128(cv + 2 * g + 1)));
            }
            /* the 4 partial sums into each lane */
            xh = _mm_add_epi32(xh, _mm_shuffle_epi32(xh, _MM_SHUFFLE(1, 0, 3, 2)));
            xl = _mm_add_epi32(xl, _mm_shuffle_epi32(xl, _MM_SHUFFLE(1, 0, 3, 2)));
            xh = _mm_add_epi32(xh, _mm_shuffle_epi32(xh, _MM_SHUFFLE(2, 3, 0, 1)));
            xl = _mm_add_epi32(xl, _mm_shuffle_epi32(xl, _MM_SHUFFLE(2, 3, 0, 1)));
        } else {
            for (int g = 0; g < g_used; g++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(p + (size_t)g * 4 * chans));
                /* words of pixels 0, 1 (lo) and 2, 3 (hi); for 3 channels each starts at its
                 * first pixel and goes on into the next (shifts take constants) */
                __m128i lo = _mm_unpacklo_epi8(v, zero);
                __m128i hi = chans == 4 ? _mm_unpackhi_epi8(v, zero) : _mm_unpacklo_epi8(_mm_srli_si128(v, 6), zero);
                __m128i x = _mm_unpacklo_epi16(lo, hi), y = _mm_unpackhi_epi16(lo, hi);
                const __m128i *c = cv + 4 * g;
                xh = _mm_add_epi32(xh, _mm_madd_epi16(x, _mm_loadu_si128(c)));
                yh = _mm_add_epi32(yh, _mm_madd_epi16(y, _mm_loadu_si128(c + 1)));
                xl = _mm_add_epi32(xl, _mm_madd_epi16(x, _mm_loadu_si128(c + 2)));
                yl = _mm_add_epi32(yl, _mm_madd_epi16(y, _mm_loadu_si128(c + 3)));
            }
            if (chans == 4) { /* X and Y hold the same channels in the same lanes */
                xh = _mm_add_epi32(xh, yh);
                xl = _mm_add_epi32(xl, yl);
            } else { /* R = X0 + X3, G = X1 + Y0, B = X2 + Y1 */
                xh = _mm_add_epi32(xh, _mm_add_epi32(_mm_srli_si128(xh, 12), _mm_slli_si128(yh, 4)));
                xl = _mm_add_epi32(xl, _mm_add_epi32(_mm_srli_si128(xl, 12), _mm_slli_si128(yl, 4)));
            }
        }
        __m128i s = finish(xh, xl);
        s = _mm_packs_epi32(s, s); /* |s| < 2^10: no saturation here */
        uint32_t v = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(s, s)); /* the clamp to 0..255 */
        out[0] = (uint8_t)v;
        if (chans > 1) out[1] = (uint8_t)(v >> 8), out[2] = (uint8_t)(v >> 16);
        if (chans > 3) out[3] = (uint8_t)(v >> 24);
    }
}

void bmc__resize_h_sse2_row(const uint8_t *in, int w, int chans, int n, int ksize, const int *bounds,
                            const void *coef, uint8_t *out, uint8_t *pad) {
    if (chans == 1) h_row(in, w, 1, n, ksize, bounds, coef, out, pad);
    else if (chans == 3) h_row(in, w, 3, n, ksize, bounds, coef, out, pad);
    else h_row(in, w, 4, n, ksize, bounds, coef, out, pad);
}

size_t bmc__resize_v_sse2_scratch_bytes(int ksize) { return (size_t)((ksize + 1) / 2) * 2 * sizeof(__m128i); }

/* Rows are taken in pairs a, b: their bytes of a column side by side as words (a, b), times the
 * words (ka, kb) of each lane; an odd last row pairs with zeros and a zero coefficient. */
void bmc__resize_v_sse2_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out,
                            void *scratch) {
    __m128i *kv = scratch; /* per pair of rows: (ka_hi, kb_hi) x 4, then (ka_lo, kb_lo) x 4 */
    const __m128i zero = _mm_setzero_si128();
    int pairs = (cnt + 1) / 2, full = cnt / 2;
    for (int y = 0; y < pairs; y++) {
        int32_t ka = k[2 * y], kb = 2 * y + 1 < cnt ? k[2 * y + 1] : 0;
        int32_t ha = ka >> 15, hb = kb >> 15; /* arithmetic shifts, as in the horizontal pass */
        _mm_storeu_si128(kv + 2 * y, _mm_unpacklo_epi16(_mm_set1_epi16((int16_t)ha), _mm_set1_epi16((int16_t)hb)));
        _mm_storeu_si128(kv + 2 * y + 1, _mm_unpacklo_epi16(_mm_set1_epi16((int16_t)(ka - ha * 32768)),
                                                            _mm_set1_epi16((int16_t)(kb - hb * 32768))));
    }
    size_t j = 0;
    for (; j + 16 <= row_bytes; j += 16) {
        __m128i h0 = zero, h1 = zero, h2 = zero, h3 = zero, l0 = zero, l1 = zero, l2 = zero, l3 = zero;
        for (int y = 0; y < pairs; y++) {
            const uint8_t *p = src + (size_t)(2 * y) * row_bytes + j;
            __m128i a = _mm_loadu_si128((const __m128i *)p);
            __m128i b = y < full ? _mm_loadu_si128((const __m128i *)(p + row_bytes)) : zero;
            __m128i kh = _mm_loadu_si128(kv + 2 * y), kl = _mm_loadu_si128(kv + 2 * y + 1);
            __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b); /* a0 b0 a1 b1 .. */
            __m128i w0 = _mm_unpacklo_epi8(ab0, zero), w1 = _mm_unpackhi_epi8(ab0, zero);
            __m128i w2 = _mm_unpacklo_epi8(ab1, zero), w3 = _mm_unpackhi_epi8(ab1, zero);
            h0 = _mm_add_epi32(h0, _mm_madd_epi16(w0, kh));
            l0 = _mm_add_epi32(l0, _mm_madd_epi16(w0, kl));
            h1 = _mm_add_epi32(h1, _mm_madd_epi16(w1, kh));
            l1 = _mm_add_epi32(l1, _mm_madd_epi16(w1, kl));
            h2 = _mm_add_epi32(h2, _mm_madd_epi16(w2, kh));
            l2 = _mm_add_epi32(l2, _mm_madd_epi16(w2, kl));
            h3 = _mm_add_epi32(h3, _mm_madd_epi16(w3, kh));
            l3 = _mm_add_epi32(l3, _mm_madd_epi16(w3, kl));
        }
        /* columns 0-3, 4-7, 8-11, 12-15: packs saturates nothing (|s| < 2^10), packus clamps */
        __m128i s01 = _mm_packs_epi32(finish(h0, l0), finish(h1, l1));
        __m128i s23 = _mm_packs_epi32(finish(h2, l2), finish(h3, l3));
        _mm_storeu_si128((__m128i *)(out + j), _mm_packus_epi16(s01, s23));
    }
    for (; j < row_bytes; j++) { /* the last columns one by one */
        int32_t ss = HALF;
        for (int y = 0; y < cnt; y++) ss += src[(size_t)y * row_bytes + j] * k[y];
        int32_t v = ss >> PRECISION_BITS;
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

#else /* no SSE2: never called (bmc__resize_have_sse2() is 0), here only so that image_resize.c links */

int bmc__resize_have_sse2(void) { return 0; }
size_t bmc__resize_h_sse2_coef_bytes(int n, int ksize, int chans) { return 0; }
void bmc__resize_h_sse2_coef(int n, int ksize, const int32_t *fixed, int chans, void *coef) {}
void bmc__resize_h_sse2_row(const uint8_t *in, int w, int chans, int n, int ksize, const int *bounds,
                            const void *coef, uint8_t *out, uint8_t *pad) {}
size_t bmc__resize_v_sse2_scratch_bytes(int ksize) { return 0; }
void bmc__resize_v_sse2_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out,
                            void *scratch) {}

#endif
