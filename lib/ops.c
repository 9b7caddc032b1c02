/* ops.c - the tensor core's element-wise parts: LayerNorm, exact GELU, softmax, L2 norm
 * (the products are in gemm.c, attention in attention.c).
 *
 * Numerics (spec section 10, pitfall 7): PyTorch's CPU reference runs blocked fp32 GEMMs, so
 * the products stay in fp32 here too (sgemm); the reductions that are sensitive to
 * cancellation (LayerNorm statistics, softmax denominators, L2 norms) accumulate in double.
 *
 * Speed: erf and exp are the only transcendentals, evaluated ~7M and ~6M times per image.
 * libm's erff/expf are scalar calls (GELU alone was ~15% of a ViT-B pass), so both are written
 * here as branch-free element loops that the compiler vectorizes; tests/test_ops.c holds them
 * to about 1 ulp of double-precision erf/exp. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "profile.h"

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

void bmc__linear(const float *x, int M, int K, int ldx, const float *w, const float *b, int N,
                 float *y, int ldy) {
    bmc__gemm(NULL, x, M, K, ldx, w, K, b, N, y, ldy, 0);
}

/* One row: mean, then the biased variance around it (two passes, no cancellation), both
 * summed in double over 8 fixed lanes (vectorisable, the same order on every machine). */
BMC__VECTORIZE
static void layernorm_row(const float *xr, float *yr, int N, const float *w, const float *b,
                          float eps) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0.0;
    int j = 0;
    for (; j + 8 <= N; j += 8)
        for (int t = 0; t < 8; t++) lane[t] += xr[j + t];
    for (; j < N; j++) sum += xr[j];
    for (int t = 0; t < 8; t++) sum += lane[t];
    double mean = sum / N, ss = 0.0;
    for (int t = 0; t < 8; t++) lane[t] = 0.0;
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

void bmc__layernorm(const float *x, float *y, int M, int N, const float *w, const float *b,
                    float eps) {
    BMC__PROF_BEGIN(t0);
    for (int i = 0; i < M; i++)
        layernorm_row(x + (size_t)i * N, y + (size_t)i * N, N, w, b, eps);
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

typedef struct ln_job {
    const float *x, *w, *b;
    float *y;
    int ldx, ldy, M, N, rows;
    float eps;
} ln_job;

static void ln_task(void *arg, int task, int thread) {
    (void)thread;
    const ln_job *j = arg;
    int i1 = (task + 1) * j->rows < j->M ? (task + 1) * j->rows : j->M;
    for (int i = task * j->rows; i < i1; i++)
        layernorm_row(j->x + (size_t)i * j->ldx, j->y + (size_t)i * j->ldy, j->N, j->w, j->b,
                      j->eps);
}

void bmc__layernorm_rows(bmc__pool *pool, const float *x, int ldx, float *y, int ldy, int M,
                         int N, const float *w, const float *b, float eps) {
    BMC__PROF_BEGIN(t0);
    ln_job j = {x, w, b, y, ldx, ldy, M, N, 16, eps};
    bmc__pool_run(M > 16 ? pool : NULL, ln_task, &j, (M + j.rows - 1) / j.rows);
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

/* erf(a) for 0 <= a <= 4 by a 4th-order Taylor step from the nearest grid point r = k/64:
 *   erf(r + d) = erf(r) + (2/sqrt(pi)) e^{-r^2} (d - r d^2 + (2r^2 - 1)/3 d^3 + (3r - 2r^3)/6 d^4)
 * with |d| <= 1/128 (truncation < 1e-10). erf(4) = 1 - 1.5e-8 rounds to 1.0f, so |z| >= 4 uses
 * k = 256, d = 0. The table comes from double erf/exp once per process. */
#define ERF_STEPS 64
#define ERF_N (4 * ERF_STEPS + 1)
static float erf_at[ERF_N];    /* erf(k / 64)                   */
static float erf_slope[ERF_N]; /* 2/sqrt(pi) * exp(-(k / 64)^2) */
static pthread_once_t erf_once = PTHREAD_ONCE_INIT;

static void erf_table_init(void) {
    for (int k = 0; k < ERF_N; k++) {
        double r = (double)k / ERF_STEPS;
        erf_at[k] = (float)erf(r);
        erf_slope[k] = (float)(1.12837916709551257390 * exp(-r * r));
    }
}

BMC__VECTORIZE
void bmc__gelu(float *x, size_t n) {
    BMC__PROF_BEGIN(t0);
    pthread_once(&erf_once, erf_table_init);
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float z = v * 0.70710678118654752440f; /* x / sqrt(2), in float as PyTorch does */
        /* |z| clamped to 4 on the bit pattern: integer min keeps the loop branch-free */
        uint32_t zb = f2u(z), sign = zb & 0x80000000u, ab = zb & 0x7fffffffu;
        ab = ab < 0x40800000u ? ab : 0x40800000u;
        float a = u2f(ab);
        int k = (int)(a * (float)ERF_STEPS + 0.5f);
        float r = (float)k * (1.0f / ERF_STEPS);
        float d = a - r; /* exact */
        float p = (3.0f * r - 2.0f * r * r * r) * (1.0f / 6.0f);
        p = p * d + (2.0f * r * r - 1.0f) * (1.0f / 3.0f);
        p = p * d - r;
        p = p * d + 1.0f;
        float e = erf_at[k] + erf_slope[k] * (p * d);
        e = u2f(f2u(e) | sign); /* erf is odd */
        x[i] = 0.5f * v * (1.0f + e);
    }
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

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

BMC__VECTORIZE
static void exp_shifted(float *restrict r, int n, float shift) {
    for (int j = 0; j < n; j++) r[j] = exp_nonpositive(r[j] - shift);
}

void bmc__softmax_rows(float *x, int M, int N) {
    BMC__PROF_BEGIN(t0);
    for (int i = 0; i < M; i++) {
        float *r = x + (size_t)i * N;
        float mx = r[0];
        for (int j = 1; j < N; j++)
            if (r[j] > mx) mx = r[j];
        exp_shifted(r, N, mx);
        /* the denominator in double, over 8 fixed lanes (vectorizable, same order anywhere) */
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0.0;
        int j = 0;
        for (; j + 8 <= N; j += 8)
            for (int t = 0; t < 8; t++) lane[t] += r[j + t];
        for (; j < N; j++) sum += r[j];
        for (int t = 0; t < 8; t++) sum += lane[t];
        float inv = (float)(1.0 / sum); /* PyTorch also scales by the reciprocal */
        for (j = 0; j < N; j++) r[j] *= inv;
    }
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

void bmc__add(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void bmc__l2_normalize_rows(float *x, int M, int N) {
    for (int i = 0; i < M; i++) {
        float *r = x + (size_t)i * N;
        double ss = 0.0;
        for (int j = 0; j < N; j++) ss += (double)r[j] * r[j];
        double norm = sqrt(ss);
        if (norm < 1e-12) norm = 1e-12;
        for (int j = 0; j < N; j++) r[j] = (float)(r[j] / norm); /* F.normalize divides */
    }
}
