/* test_ops.c - the tensor core against naive double-precision versions of the same formulas.
 * Each test prints the worst error it saw. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops.h"

/* deterministic uniform values in [lo, hi) (xorshift) */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(float lo, float hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}
static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = frand(lo, hi);
}

/* |a - b| / (|b| + floor), worst over n values */
static double max_rel(const float *a, const double *b, size_t n, double floor_) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs(b[i]) + floor_);
        if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void test_linear(void **state) {
    (void)state;
    enum { M = 9, K = 77, N = 13, LDX = 80, LDY = 17 };
    float x[M * LDX], w[N * K], b[N], y[M * LDY];
    double ref[M * N];
    fill(x, M * LDX, -1, 1);
    fill(w, N * K, -1, 1);
    fill(b, N, -1, 1);
    for (int pass = 0; pass < 2; pass++) {
        const float *bias = pass ? b : NULL;
        for (int i = 0; i < M * LDY; i++) y[i] = 12345.0f; /* padding must stay untouched */
        bmc__linear(x, M, K, LDX, w, bias, N, y, LDY);
        float got[M * N];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = bias ? b[j] : 0.0;
                for (int k = 0; k < K; k++) s += (double)x[i * LDX + k] * w[j * K + k];
                ref[i * N + j] = s;
                got[i * N + j] = y[i * LDY + j];
            }
        for (int i = 0; i < M; i++)
            for (int j = N; j < LDY; j++) assert_true(y[i * LDY + j] == 12345.0f);
        double e = max_rel(got, ref, M * N, 1.0);
        printf("linear (bias=%d): max error %.3g (relative to max(|y|,1))\n", pass, e);
        assert_true(e < 1e-5);
    }
}

static void test_layernorm(void **state) {
    (void)state;
    enum { M = 6, N = 768 };
    static float x[M * N], y[M * N], w[N], b[N];
    static double ref[M * N];
    fill(x, M * N, -1, 1);
    /* rows with a large common offset: a one-pass float variance would lose everything */
    for (int j = 0; j < N; j++) x[2 * N + j] += 1000.0f, x[3 * N + j] = 3e4f + x[3 * N + j] * 1e-2f;
    for (int j = 0; j < N; j++) x[4 * N + j] = 0.25f; /* constant row: (x - mean) = 0 exactly */
    fill(w, N, 0.5f, 1.5f);
    fill(b, N, -0.5f, 0.5f);
    const double eps = 1e-6;
    for (int i = 0; i < M; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < N; j++) m += x[i * N + j];
        m /= N;
        for (int j = 0; j < N; j++) v += (x[i * N + j] - m) * (x[i * N + j] - m);
        v /= N;
        for (int j = 0; j < N; j++)
            ref[i * N + j] = (x[i * N + j] - m) / sqrt(v + eps) * w[j] + b[j];
    }
    bmc__layernorm(x, y, M, N, w, b, (float)eps);
    double e = max_rel(y, ref, M * N, 1.0);
    printf("layernorm: max error %.3g\n", e);
    assert_true(e < 2e-6);
    for (int j = 0; j < N; j++) assert_true(y[4 * N + j] == b[j]);
    /* in place gives the same bits */
    static float z[M * N];
    memcpy(z, x, sizeof z);
    bmc__layernorm(z, z, M, N, w, b, (float)eps);
    assert_memory_equal(z, y, sizeof z);
}

static void test_gelu(void **state) {
    (void)state;
    /* a dense sweep of [-12, 12] plus a few special values */
    enum { NS = 200001 };
    static float x[NS + 4];
    for (int i = 0; i < NS; i++) x[i] = -12.0f + 24.0f * (float)i / (NS - 1);
    x[NS] = 0.0f, x[NS + 1] = -0.0f, x[NS + 2] = 1e-30f, x[NS + 3] = -40.0f;
    static float y[NS + 4];
    memcpy(y, x, sizeof y);
    bmc__gelu(y, NS + 4);
    /* error measured in units of the float spacing at the argument's magnitude: the formula
     * 0.5 x (1 + erf(x / sqrt 2)) as PyTorch evaluates it in float cannot do better than that
     * for negative x, where 1 + erf cancels. */
    double worst_abs = 0.0, worst_rel_pos = 0.0;
    for (int i = 0; i < NS + 4; i++) {
        double r = 0.5 * (double)x[i] * (1.0 + erf((double)x[i] / sqrt(2.0)));
        double scale = fmax(fabs((double)x[i]), 1e-30);
        double ea = fabs(y[i] - r) / scale;
        if (ea > worst_abs) worst_abs = ea;
        if (x[i] > 0) {
            double er = fabs(y[i] - r) / r;
            if (er > worst_rel_pos) worst_rel_pos = er;
        }
        assert_false(isnan(y[i]));
    }
    printf("gelu: max |err|/|x| %.3g, max relative error for x > 0 %.3g (float eps %.3g)\n",
           worst_abs, worst_rel_pos, (double)FLT_EPSILON);
    assert_true(worst_abs < 2.0 * FLT_EPSILON);
    assert_true(worst_rel_pos < 2.0 * FLT_EPSILON);
    assert_true(y[NS] == 0.0f && y[NS + 3] == 0.0f);

}

static void test_softmax(void **state) {
    (void)state;
    enum { M = 5, N = 197 };
    static float x[M * N];
    static double ref[M * N];
    fill(x, M * N, -8, 8);
    for (int j = 0; j < N; j++) x[N + j] += 1000.0f;  /* overflows expf without max subtraction */
    for (int j = 0; j < N; j++) x[2 * N + j] -= 1000.0f;
    x[3 * N + 7] = 80.0f;                              /* one dominant value */
    for (int i = 0; i < M; i++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < N; j++) mx = fmax(mx, x[i * N + j]);
        for (int j = 0; j < N; j++) s += exp((double)x[i * N + j] - mx);
        for (int j = 0; j < N; j++) ref[i * N + j] = exp((double)x[i * N + j] - mx) / s;
    }
    bmc__softmax_rows(x, M, N);
    double e = max_rel(x, ref, M * N, 1e-30);
    printf("softmax: max relative error %.3g\n", e);
    assert_true(e < 5e-7);
    for (int i = 0; i < M; i++) {
        double s = 0;
        for (int j = 0; j < N; j++) s += x[i * N + j];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
}

/* One long row whose values span the whole range where e^x is a normal float: each output's
 * relative error is the exp kernel's (plus the scaling), so this measures it point by point. */
static void test_softmax_exp_range(void **state) {
    (void)state;
    enum { N = 100001 };
    static float x[N];
    static double ref[N];
    for (int j = 0; j < N; j++) x[j] = -87.0f * (float)j / (N - 1); /* 0 .. -87 */
    double s = 0;
    for (int j = 0; j < N; j++) s += exp((double)x[j]);
    for (int j = 0; j < N; j++) ref[j] = exp((double)x[j]) / s;
    bmc__softmax_rows(x, 1, N);
    double worst = 0;
    for (int j = 0; j < N; j++) {
        double e = fabs(x[j] - ref[j]) / ref[j];
        if (ref[j] > 1e-37 && e > worst) worst = e; /* below, the float result is subnormal */
    }
    printf("softmax over [-87, 0]: max relative error %.3g (%.2f float eps)\n", worst,
           worst / FLT_EPSILON);
    assert_true(worst < 3.0 * FLT_EPSILON);
}

static void test_attention(void **state) {
    (void)state;
    enum { L = 11, H = 3, HD = 5, W = H * HD, LD = 3 * W + 4, LDO = W + 3 };
    static float qkv[L * LD], out[L * LDO], scratch[L * L];
    static double ref[L * W];
    fill(qkv, L * LD, -2, 2);
    const float scale = 1.0f / sqrtf((float)HD);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < L; i++) {
            double p[L], mx = -INFINITY, s = 0;
            for (int j = 0; j < L; j++) {
                double d = 0;
                for (int t = 0; t < HD; t++)
                    d += (double)qkv[i * LD + h * HD + t] * qkv[j * LD + W + h * HD + t];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < L; j++) s += (p[j] = exp(p[j] - mx));
            for (int t = 0; t < HD; t++) {
                double o = 0;
                for (int j = 0; j < L; j++) o += p[j] / s * qkv[j * LD + 2 * W + h * HD + t];
                ref[i * W + h * HD + t] = o;
            }
        }
    for (int i = 0; i < L * LDO; i++) out[i] = -777.0f;
    bmc__attention(qkv, L, LD, W, H, scale, out, LDO, scratch);
    float got[L * W];
    for (int i = 0; i < L; i++) {
        memcpy(got + i * W, out + i * LDO, W * sizeof(float));
        for (int j = W; j < LDO; j++) assert_true(out[i * LDO + j] == -777.0f);
    }
    double e = max_rel(got, ref, L * W, 1.0);
    printf("attention: max error %.3g\n", e);
    assert_true(e < 1e-5);
}

static void test_add_and_normalize(void **state) {
    (void)state;
    float a[12], b[12], c[12];
    fill(a, 12, -3, 3);
    fill(b, 12, -3, 3);
    memcpy(c, a, sizeof c);
    bmc__add(c, b, 12);
    for (int i = 0; i < 12; i++) assert_true(c[i] == a[i] + b[i]);

    float x[3 * 4] = {3, 4, 0, 0, 0, 0, 0, 0, 1e-20f, 0, 0, 0};
    fill(x + 4, 4, -5, 5);
    float row1[4];
    memcpy(row1, x + 4, sizeof row1);
    bmc__l2_normalize_rows(x, 3, 4);
    assert_true(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f);
    double n = 0, r = 0;
    for (int j = 0; j < 4; j++) n += (double)x[4 + j] * x[4 + j], r += (double)row1[j] * row1[j];
    assert_true(fabs(n - 1.0) < 1e-6);
    for (int j = 0; j < 4; j++) assert_true(fabs(x[4 + j] - row1[j] / sqrt(r)) < 1e-7);
    /* F.normalize divides by max(norm, 1e-12): a tiny row becomes tiny / 1e-12, not NaN */
    assert_true(fabsf(x[8] - 1e-8f) < 1e-14f);
    assert_true(x[9] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),    cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),      cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_exp_range),
        cmocka_unit_test(test_attention), cmocka_unit_test(test_add_and_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
