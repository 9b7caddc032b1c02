/* ops_loops.h - the element-wise hot loops of ops.c (LayerNorm, GELU, softmax), compiled once
 * per kernel level (cpu.h): in ops.c for the portable level, in ops_avx2.c and ops_avx512.c
 * with those levels' -m flags (Makefile), so that the compiler vectorises them at each width.
 * The includer defines BMC__SFX(name) (the level's suffix) and, for AVX-512, BMC__OPS_AVX512.
 *
 * Every level computes the same bits: the loops are element-wise float operations (-std=c11
 * turns FMA contraction off) and sums over fixed lanes, which vectorise without reordering;
 * the AVX-512 GELU does gelu1's operations in its order (tests/test_ops.c compares levels). */
#ifndef BMC__SFX
#error "define BMC__SFX before including ops_loops.h"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

/* GCC vectorizes at -O2 only loops its "very cheap" cost model accepts, which excludes the
 * table lookups (gathers) below; ask for its normal cost model on these few loops. */
#if defined(__GNUC__) && !defined(__clang__)
#define BMC__VECTORIZE __attribute__((optimize("vect-cost-model=dynamic")))
#else
#define BMC__VECTORIZE
#endif

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* sum of r[0..n) in double over 8 fixed lanes (vectorisable, the same order anywhere) */
BMC__VECTORIZE
static double sum_lanes(const float *restrict r, int n) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0.0;
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int t = 0; t < 8; t++) lane[t] += r[j + t];
    for (; j < n; j++) sum += r[j];
    for (int t = 0; t < 8; t++) sum += lane[t];
    return sum;
}

/* One row: mean, then the biased variance around it (two passes, no cancellation), both
 * summed in double over 8 fixed lanes (vectorisable, the same order on every machine). */
BMC__VECTORIZE
void BMC__SFX(bmc__layernorm_row)(const float *xr, float *yr, int N, const float *w,
                                  const float *b, float eps) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double mean = sum_lanes(xr, N) / N, ss = 0.0;
    int j;
    for (j = 0; j + 8 <= N; j += 8)
        for (int t = 0; t < 8; t++) {
            double d = xr[j + t] - mean;
            lane[t] += d * d;
        }
    for (; j < N; j++) {
        double d = xr[j] - mean;
        ss += d * d;
    }
    for (int t = 0; t < 8; t++) ss += lane[t];
    double rstd = 1.0 / sqrt(ss / N + (double)eps);
    for (j = 0; j < N; j++) yr[j] = (float)((xr[j] - mean) * rstd) * w[j] + b[j];
}

/* erf(a) for 0 <= a <= 4 by a 4th-order Taylor step from the nearest grid point r = k/16:
 *   erf(r + d) = erf(r) + (2/sqrt(pi)) e^{-r^2} (d - r d^2 + (2r^2 - 1)/3 d^3 + (3r - 2r^3)/6 d^4)
 * with |d| <= 1/32 (truncation < 3.4e-9). erf(4) = 1 - 1.5e-8 rounds to 1.0f, so |z| >= 4 uses
 * k = 64, d = 0. The tables are erf(k/16) and 2/sqrt(pi) e^{-(k/16)^2} rounded to float (from
 * Python's math.erf/exp in double); 65 entries, so that the AVX-512 version keeps them in
 * registers and looks them up with permutes instead of gathers. */
#define ERF_N 65
static const float erf_at[ERF_N] = {
    0.0f, 0.07043197751045227f, 0.1403162032365799f, 0.20911768078804016f, 0.27632638812065125f,
    0.3414686322212219f, 0.4041168987751007f, 0.4638981223106384f, 0.5204998850822449f,
    0.5736744403839111f, 0.6232408881187439f, 0.6690846681594849f, 0.7111556529998779f,
    0.7494640350341797f, 0.7840750813484192f, 0.8151023983955383f, 0.8427007794380188f,
    0.867058277130127f, 0.8883882164955139f, 0.9069217443466187f, 0.9229001402854919f,
    0.936568558216095f, 0.9481700658798218f, 0.9579405784606934f, 0.9661051630973816f,
    0.972874641418457f, 0.9784437417984009f, 0.9829897284507751f, 0.9866716861724854f,
    0.9896306395530701f, 0.9919900298118591f, 0.9938567876815796f, 0.9953222870826721f,
    0.9964637756347656f, 0.9973459839820862f, 0.9980224967002869f, 0.9985373020172119f,
    0.9989259243011475f, 0.9992170333862305f, 0.9994334578514099f, 0.9995930194854736f,
    0.9997098445892334f, 0.999794602394104f, 0.9998556971549988f, 0.9998993873596191f,
    0.9999303221702576f, 0.9999521374702454f, 0.9999673366546631f, 0.9999778866767883f,
    0.9999851584434509f, 0.9999901056289673f, 0.9999934434890747f, 0.9999957084655762f,
    0.9999971985816956f, 0.9999982118606567f, 0.9999988079071045f, 0.9999992847442627f,
    0.9999995231628418f, 0.9999997019767761f, 0.9999998211860657f, 0.9999998807907104f,
    0.9999999403953552f, 0.9999999403953552f, 1.0f, 1.0f,
};
static const float erf_slope[ERF_N] = {
    1.128379225730896f, 1.1239800453186035f, 1.1108852624893188f, 1.0893988609313965f,
    1.0600141286849976f, 1.0233954191207886f, 0.9803528189659119f, 0.9318121671676636f,
    0.8787825703620911f, 0.822321355342865f, 0.7634995579719543f, 0.7033687233924866f,
    0.6429310441017151f, 0.5831131339073181f, 0.5247450470924377f, 0.4685445725917816f,
    0.41510748863220215f, 0.36490288376808167f, 0.31827396154403687f, 0.2754431664943695f,
    0.23652112483978271f, 0.20151852071285248f, 0.1703597754240036f, 0.14289802312850952f,
    0.11893028765916824f, 0.09821227937936783f, 0.08047226071357727f, 0.06542348116636276f,
    0.05277499556541443f, 0.04224057495594025f, 0.033545829355716705f, 0.02643347717821598f,
    0.02066698484122753f, 0.016032714396715164f, 0.012340820394456387f, 0.009425146505236626f,
    0.00714231887832284f, 0.005370286758989096f, 0.004006478004157543f, 0.002965753898024559f,
    0.002178284339606762f, 0.0015874536475166678f, 0.0011478750966489315f, 0.0008235601126216352f,
    0.0005862772231921554f, 0.00041411202982999384f, 0.0002902282867580652f,
    0.00020182208390906453f, 0.00013925305393058807f, 9.533400589134544e-05f,
    6.475868576671928e-05f, 4.364708729553968e-05f, 2.9189024644438177e-05f,
    1.9368277207831852e-05f, 1.2751740541716572e-05f, 8.330192031280603e-06f,
    5.399426754593151e-06f, 3.4725408113445155e-06f, 2.2159201762406155e-06f,
    1.4030333659320604e-06f, 8.814321859063057e-07f, 5.494357537827455e-07f,
    3.398223782369314e-07f, 2.0854228921507456e-07f, 1.2698234286290244e-07f,
};

#if defined(BMC__OPS_AVX512)
#include <immintrin.h>

/* GELU on 16 lanes: the float operations of gelu1 (the portable version below), in the same
 * order and without fused multiply-adds; the table entries are picked from registers by two
 * 32-entry permutes, the last entry by a compare. */
static inline __m512 gelu16(__m512 v, const __m512 tab[8]) {
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), four = _mm512_set1_epi32(0x40800000);
    __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752440f));
    __m512i zb = _mm512_castps_si512(z);
    __m512i sign = _mm512_andnot_si512(absmask, zb);
    __m512 a = _mm512_castsi512_ps(_mm512_min_epu32(_mm512_and_si512(zb, absmask), four));
    __m512i k = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(a, _mm512_set1_ps(16.0f)),
                                                  _mm512_set1_ps(0.5f)));
    __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(k), _mm512_set1_ps(0.0625f));
    __m512 d = _mm512_sub_ps(a, r);
    __m512 r2 = _mm512_mul_ps(r, r), r3 = _mm512_mul_ps(r2, r);
    __m512 p = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(3.0f), r),
                                           _mm512_mul_ps(_mm512_set1_ps(2.0f), r3)),
                             _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, d),
                      _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), r2),
                                                  _mm512_set1_ps(1.0f)),
                                    _mm512_set1_ps(1.0f / 3.0f)));
    p = _mm512_sub_ps(_mm512_mul_ps(p, d), r);
    p = _mm512_add_ps(_mm512_mul_ps(p, d), _mm512_set1_ps(1.0f));
    __mmask16 hi = _mm512_cmpge_epi32_mask(k, _mm512_set1_epi32(32));
    __mmask16 top = _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(64));
    __m512 at = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(tab[0], k, tab[1]),
                                     _mm512_permutex2var_ps(tab[2], k, tab[3]));
    __m512 sl = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(tab[4], k, tab[5]),
                                     _mm512_permutex2var_ps(tab[6], k, tab[7]));
    at = _mm512_mask_blend_ps(top, at, _mm512_set1_ps(erf_at[64]));
    sl = _mm512_mask_blend_ps(top, sl, _mm512_set1_ps(erf_slope[64]));
    __m512 e = _mm512_add_ps(at, _mm512_mul_ps(sl, _mm512_mul_ps(p, d)));
    e = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(e), sign));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

void BMC__SFX(bmc__gelu)(float *x, size_t n) {
    __m512 tab[8];
    for (int i = 0; i < 4; i++) {
        tab[i] = _mm512_loadu_ps(erf_at + 16 * i);
        tab[4 + i] = _mm512_loadu_ps(erf_slope + 16 * i);
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i), tab));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i), tab));
    }
}

#else
/* GELU of one value, the operations in the order the vector version does them. */
static inline float gelu1(float v) {
    float z = v * 0.70710678118654752440f; /* x / sqrt(2), in float as PyTorch does */
    /* |z| clamped to 4 on the bit pattern: integer min keeps the loop branch-free */
    uint32_t zb = f2u(z), sign = zb & 0x80000000u, ab = zb & 0x7fffffffu;
    ab = ab < 0x40800000u ? ab : 0x40800000u;
    float a = u2f(ab);
    int k = (int)(a * 16.0f + 0.5f);
    float r = (float)k * 0.0625f;
    float d = a - r; /* exact */
    float p = (3.0f * r - 2.0f * r * r * r) * (1.0f / 6.0f);
    p = p * d + (2.0f * r * r - 1.0f) * (1.0f / 3.0f);
    p = p * d - r;
    p = p * d + 1.0f;
    float e = erf_at[k] + erf_slope[k] * (p * d);
    e = u2f(f2u(e) | sign); /* erf is odd */
    return 0.5f * v * (1.0f + e);
}

BMC__VECTORIZE
void BMC__SFX(bmc__gelu)(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gelu1(x[i]);
}
#endif

/* e^x for x <= 0 (softmax arguments after the max is subtracted): x = n ln2 + r with
 * |r| <= ln2/2 (Cody-Waite, ln2 split so that n * ln2_hi is exact), e^r by its degree-7 Taylor
 * polynomial (truncation 5e-9 relative), times 2^n built in the exponent bits. Below
 * ln(FLT_MIN) = -87.34 the result would be subnormal: 0 is returned instead (< 1.2e-38 off). */
static inline float exp_nonpositive(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: (y + shifter) - shifter rounds y */
    int tiny = f2u(x) > 0xc2aeac50u;   /* x < -87.3365 (negative floats order by their bits) */
    float xc = tiny ? -87.0f : x;
    float t = xc * log2e + shifter;
    float n = t - shifter;
    int32_t ni = (int32_t)(f2u(t) - f2u(shifter)); /* n as an integer, no float->int conversion */
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float y = p * u2f((uint32_t)(ni + 127) << 23);
    return tiny ? 0.0f : y;
}

#if defined(BMC__OPS_AVX2)
#include <immintrin.h>
/* GCC leaves the loop below scalar for AVX2 (no unsigned compare of 32-bit lanes there), 5x
 * slower than the vectorised softmax (3 Dec, microbenchmark): the same operations in the same
 * order, 8 lanes at a time, the unsigned compare as a signed one of the bits with the sign
 * flipped, no fused multiply-adds. */
static void exp_shifted(float *restrict r, int n, float shift) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693145751953125f);
    const __m256 ln2_lo = _mm256_set1_ps(1.42860682030941723e-6f);
    const __m256 shifter = _mm256_set1_ps(12582912.0f), sh = _mm256_set1_ps(shift);
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    const __m256i limit = _mm256_set1_epi32((int)(0xc2aeac50u ^ 0x80000000u));
    static const float c[8] = {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f,
                               1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_sub_ps(_mm256_loadu_ps(r + j), sh);
        __m256 tiny = _mm256_castsi256_ps(
            _mm256_cmpgt_epi32(_mm256_xor_si256(_mm256_castps_si256(x), flip), limit));
        __m256 xc = _mm256_blendv_ps(x, _mm256_set1_ps(-87.0f), tiny);
        __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, log2e), shifter);
        __m256 nf = _mm256_sub_ps(t, shifter);
        __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(shifter));
        __m256 rr = _mm256_sub_ps(_mm256_sub_ps(xc, _mm256_mul_ps(nf, ln2_hi)),
                                  _mm256_mul_ps(nf, ln2_lo));
        __m256 p = _mm256_set1_ps(c[0]);
        for (int q = 1; q < 8; q++) p = _mm256_add_ps(_mm256_mul_ps(p, rr), _mm256_set1_ps(c[q]));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
        __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        _mm256_storeu_ps(r + j, _mm256_andnot_ps(tiny, y));
    }
    for (; j < n; j++) r[j] = exp_nonpositive(r[j] - shift);
}
#else
BMC__VECTORIZE
static void exp_shifted(float *restrict r, int n, float shift) {
    for (int j = 0; j < n; j++) r[j] = exp_nonpositive(r[j] - shift);
}
#endif

/* r[j] *= scale; returns the largest (16 fixed lanes, so that it vectorises). */
BMC__VECTORIZE
static float scale_max(float *restrict r, int n, float scale) {
    float lane[16];
    for (int t = 0; t < 16; t++) lane[t] = -INFINITY;
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++) {
            float v = r[j + t] * scale;
            r[j + t] = v;
            lane[t] = v > lane[t] ? v : lane[t];
        }
    float mx = -INFINITY;
    for (; j < n; j++) {
        r[j] *= scale;
        if (r[j] > mx) mx = r[j];
    }
    for (int t = 0; t < 16; t++)
        if (lane[t] > mx) mx = lane[t];
    return mx;
}

BMC__VECTORIZE
static void scale_row(float *restrict r, int n, float s) {
    for (int j = 0; j < n; j++) r[j] *= s;
}

void BMC__SFX(bmc__softmax_scaled)(float *r, int N, float scale) {
    float mx = scale_max(r, N, scale);
    exp_shifted(r, N, mx);
    float inv = (float)(1.0 / sum_lanes(r, N)); /* PyTorch also scales by the reciprocal */
    scale_row(r, N, inv);
}
