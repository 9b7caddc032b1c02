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

#include "cpu.h"
#include "ops.h"
#include "panels.h"
#include "pool.h"

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
        float wp[((N + 63) / 64) * 64 * K];
        bmc__panel_pack(w, N, K, K, wp);
        bmc__gemm(NULL, bmc__mat_of(y, M, N, LDY), bmc__mat_of(x, M, K, LDX),
                  (bmc__panels){wp, N, K, 0, BMC__W_F32}, bias, 0);
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

/* Naive double attention for one sequence of L rows at q/k/v (row strides ld*), head h of H
 * with D columns each; nq = L (every query) or 1 (the first row only). */
static void ref_attention(const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, int L, int nq, int H, int D, float scale, double *out,
                          int ldo) {
    double p[300];
    for (int h = 0; h < H; h++)
        for (int i = 0; i < nq; i++) {
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < L; j++) {
                double d = 0;
                for (int t = 0; t < D; t++)
                    d += (double)q[i * ldq + h * D + t] * k[j * ldk + h * D + t];
                p[j] = d * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < L; j++) s += (p[j] = exp(p[j] - mx));
            for (int t = 0; t < D; t++) {
                double o = 0;
                for (int j = 0; j < L; j++) o += p[j] / s * v[j * ldv + h * D + t];
                out[i * ldo + h * D + t] = o;
            }
        }
}

/* Several sequences packed one after another (lengths that are not multiples of the tile
 * sizes, one of 1 row), every query or the first row only, odd head widths and padded row
 * strides, on the caller alone and on pools of 2 and 3 threads (identical results). */
static void test_attention(void **state) {
    (void)state;
    static const int heads_dims[][2] = {{3, 5}, {2, 64}, {4, 16}, {1, 40}};
    static const int lens[] = {11, 1, 70, 33, 197};
    enum { NS = 5, ROWS = 11 + 1 + 70 + 33 + 197 };
    for (int hd = 0; hd < 4; hd++) {
        int H = heads_dims[hd][0], D = heads_dims[hd][1], W = H * D;
        int LD = 3 * W + 4, LDO = W + 3;
        float *qkv = malloc(sizeof(float) * ROWS * LD);
        float *out = malloc(sizeof(float) * ROWS * LDO);
        float *first = malloc(sizeof(float) * ROWS * LDO);
        double *ref = malloc(sizeof(double) * ROWS * W);
        /* 64-byte aligned, as the library's arena is */
        size_t sbytes = (sizeof(float) * bmc__attention_scratch(197, D) + 63) & ~(size_t)63;
        float *scratch = aligned_alloc(64, sbytes);
        fill(qkv, (size_t)ROWS * LD, -2, 2);
        const float scale = 1.0f / sqrtf((float)D);
        for (int cls = 0; cls < 2; cls++) {
            size_t off = 0;
            for (int s = 0; s < NS; s++) {
                const float *base = qkv + off * LD;
                size_t orow = cls ? (size_t)s : off;
                ref_attention(base, LD, base + W, LD, base + 2 * W, LD, lens[s], cls ? 1 : lens[s],
                              H, D, scale, ref + orow * W, W);
                off += (size_t)lens[s];
            }
            int nout = cls ? NS : ROWS;
            for (int threads = 1; threads <= 3; threads++) {
                bmc__pool *pool = NULL;
                if (threads > 1)
                    assert_int_equal(
                        bmc__pool_new(threads, bmc__attention_scratch(197, D), &pool), BMC_OK);
                for (int i = 0; i < ROWS * LDO; i++) out[i] = -777.0f;
                bmc__attn a = {0};
                a.pool = pool;
                a.q = bmc__mat_of(qkv, ROWS, W, LD);
                a.k = bmc__mat_of(qkv + W, ROWS, W, LD);
                a.v = bmc__mat_of(qkv + 2 * W, ROWS, W, LD);
                a.out = bmc__mat_of(out, nout, W, LDO);
                a.n_seq = NS, a.lens = lens;
                a.cls_only = cls;
                a.heads = H, a.scale = scale;
                a.scratch = scratch;
                if (cls) { /* the first rows' queries gathered into their own [NS, W] matrix */
                    static float qg[NS * 300];
                    size_t at = 0;
                    for (int s = 0; s < NS; s++) {
                        memcpy(qg + s * W, qkv + at * LD, sizeof(float) * W);
                        at += (size_t)lens[s];
                    }
                    a.q = bmc__mat_of(qg, NS, W, W);
                }
                bmc__attention(&a);
                bmc__pool_free(pool);
                double worst = 0;
                for (int i = 0; i < nout; i++) {
                    for (int t = 0; t < W; t++) {
                        double r = ref[i * W + t], e = fabs(out[i * LDO + t] - r) / (fabs(r) + 1.0);
                        if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
                    }
                    for (int t = W; t < LDO; t++) assert_true(out[i * LDO + t] == -777.0f);
                }
                for (int i = nout * LDO; i < ROWS * LDO; i++) assert_true(out[i] == -777.0f);
                printf("attention H=%d D=%2d %s, %d thread(s): max error %.3g\n", H, D,
                       cls ? "first rows" : "all rows  ", threads, worst);
                assert_true(worst < 1e-5);
                if (threads == 1) memcpy(first, out, sizeof(float) * ROWS * LDO);
                else assert_memory_equal(first, out, sizeof(float) * ROWS * LDO);
            }
        }
        free(qkv), free(out), free(first), free(ref), free(scratch);
    }
}

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* With the library's own tiles (AVX-512, AVX2) the same bits; OpenBLAS (the portable level)
 * may sum in another order for another M or N: then within 1e-6 of `scale`, a bound on the sum
 * of the magnitudes (as in test_gemm). */
static int same_or_close(float a, float b, double scale) {
    if (bmc__kern()->outer) return memcmp(&a, &b, sizeof a) == 0;
    return fabs((double)a - b) <= 1e-6 * scale;
}

/* bmc__gemm against a double-precision product for many shapes: rows not multiples of the
 * tile (6), columns not multiples of 16 or of a panel (64), K below, at and above the vector
 * width and the K slice (768), row strides that are not multiples of 16 (unaligned rows), each
 * flag. The error is measured against sum |x w| (+ |b| + |y|), the scale of the rounding.
 * Results must be bit-identical on 1, 2 and 3 threads, and (with AVX-512; OpenBLAS within
 * rounding) for a row on its own and for a range of outputs starting inside a panel; the
 * columns outside the outputs must stay untouched. */
static void test_gemm(void **state) {
    (void)state;
    static const int Ms[] = {1, 2, 3, 4, 5, 11, 12, 13, 24, 25, 47, 63, 64, 65, 100, 197};
    static const int Ns[] = {1, 5, 6, 7, 31, 32, 33, 97, 200};
    static const int Ks[] = {1, 15, 16, 17, 100, 256, 257, 770, 1030};
    enum { MMAX = 197, NMAX = 200, KMAX = 1030 };
    float *x = malloc(sizeof(float) * MMAX * (KMAX + 3));
    float *w = malloc(sizeof(float) * NMAX * (KMAX + 5));
    float *b = malloc(sizeof(float) * NMAX), *y0 = malloc(sizeof(float) * MMAX * (NMAX + 7));
    float *y = malloc(sizeof(float) * MMAX * (NMAX + 7));
    float *y1 = malloc(sizeof(float) * MMAX * (NMAX + 7));
    float *wp = malloc(sizeof(float) * bmc__panel_floats(NMAX, KMAX)), *row = malloc(sizeof(float) * NMAX);
    bmc__pool *pools[3] = {NULL, NULL, NULL};
    assert_int_equal(bmc__pool_new(1, 16, &pools[0]), BMC_OK);
    assert_int_equal(bmc__pool_new(2, 16, &pools[1]), BMC_OK);
    assert_int_equal(bmc__pool_new(3, 16, &pools[2]), BMC_OK);
    double worst = 0;
    int cases = 0;
    unsigned pick = 1;
    for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                pick = pick * 1103515245u + 12345u;
                int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                /* every shape with one flag setting; the large ones only now and then */
                if ((double)M * N * K > 2e6 && (pick >> 16) % 4) continue;
                /* 0 plain, 1 bias, 2 acc + bias, 3 gelu + bias */
                int flags_pick = (int)((pick >> 8) % 4);
                int flags = flags_pick == 2 ? BMC__GEMM_ACC : flags_pick == 3 ? BMC__GEMM_GELU : 0;
                const float *bias = flags_pick ? b : NULL;
                int ldx = K + 3, ldw = K + 5, ldy = N + 7;
                fill(x, (size_t)M * ldx, -1, 1);
                fill(w, (size_t)N * ldw, -1, 1);
                fill(b, N, -1, 1);
                fill(y0, (size_t)M * ldy, -1, 1);
                bmc__panel_pack(w, N, K, (size_t)ldw, wp);
                bmc__panels pw = {wp, N, K, 0, BMC__W_F32};
                bmc__mat X = bmc__mat_of(x, M, K, ldx), Y = bmc__mat_of(y, M, N, ldy);
                for (int pi = -1; pi < 3; pi++) {
                    memcpy(y, y0, sizeof(float) * M * ldy);
                    bmc__gemm(pi < 0 ? NULL : pools[pi], Y, X, pw, bias, flags);
                    if (pi < 0) {
                        memcpy(y1, y, sizeof(float) * M * ldy);
                    } else {
                        assert_memory_equal(y1, y, sizeof(float) * M * ldy);
                        continue;
                    }
                    for (int i = 0; i < M; i++) {
                        for (int j = 0; j < N; j++) {
                            double s = 0, mag = 0;
                            for (int k = 0; k < K; k++) {
                                double t = (double)x[i * ldx + k] * w[j * ldw + k];
                                s += t, mag += fabs(t);
                            }
                            if (bias) s += b[j], mag += fabs(b[j]);
                            if (flags & BMC__GEMM_ACC)
                                s += y0[i * ldy + j], mag += fabs(y0[i * ldy + j]);
                            if (flags & BMC__GEMM_GELU) s = gelu_ref(s), mag += 1.0;
                            double e = fabs(y[i * ldy + j] - s) / (mag + 1e-30);
                            if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
                            if (!(e < 1e-6))
                                printf("gemm M=%d N=%d K=%d flags=%d: y[%d,%d] = %.9g, want %.9g\n",
                                       M, N, K, flags_pick, i, j, y[i * ldy + j], s);
                            assert_true(e < 1e-6);
                        }
                        for (int j = N; j < ldy; j++)
                            assert_true(y[i * ldy + j] == y0[i * ldy + j]);
                    }
                }
                /* the same bits for a row alone (the order of summation depends only on K; not
                 * so for OpenBLAS, the portable level, whose blocking follows M and N) */
                int r = (int)((pick >> 4) % (unsigned)M);
                memcpy(row, y0 + (size_t)r * ldy, sizeof(float) * N);
                bmc__gemm(pools[1], bmc__mat_of(row, 1, N, N), bmc__mat_of(x + (size_t)r * ldx, 1, K, ldx),
                          pw, bias, flags);
                for (int j = 0; j < N; j++)
                    assert_true(same_or_close(row[j], y1[r * ldy + j], K + 2.0));
                /* and for a range of outputs n0 .. n0 + n - 1 that starts inside a panel */
                int n0 = N / 3, n = N - n0 - N / 5;
                memcpy(y, y0, sizeof(float) * M * ldy);
                bmc__gemm(pools[1], bmc__mat_cols(Y, n0, n), X, bmc__panels_rows(pw, n0, n),
                          bias ? bias + n0 : NULL, flags);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < ldy; j++) {
                        float got = y[i * ldy + j];
                        if (j < n0 || j >= n0 + n) assert_true(got == y0[i * ldy + j]);
                        else assert_true(same_or_close(got, y1[i * ldy + j], K + 2.0));
                    }
                cases++;
            }
    printf("gemm: %d shapes, max error %.3g of sum |x w|; identical on 1, 2, 3 threads\n", cases,
           worst);
    for (int i = 0; i < 3; i++) bmc__pool_free(pools[i]);
    free(x), free(w), free(b), free(y0), free(y), free(y1), free(wp), free(row);
}

/* The value of an IEEE half, and of a bfloat16 (independent of the library's conversions). */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 0x3ff;
    double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    return h & 0x8000 ? -v : v;
}
static double bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* x rounded to bfloat16 (nearest even), as vdpbf16ps's operand */
static double bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* bmc__gemm with 16-bit weights (F16 panels, BF16 pair panels) at the level this process runs
 * (test_cpu_levels.sh runs every level): against a double-precision product of the weights'
 * exact values (and X rounded to bfloat16 where the level runs bfloat16 products), for K below
 * and above the K slice, partial panels, each flag, views that start at a multiple of 16 inside
 * a panel (the 16-bit tiles) and at another column (the widening path); bit-identical on 1 and
 * 2 threads. Halves include subnormals. A pool with the scratch of bmc__gemm_widen_floats (a
 * context's at the portable level: several panels widened per OpenBLAS call) is checked against
 * the reference too. */
static void test_gemm16(void **state) {
    (void)state;
    static const int Ms[] = {1, 6, 13, 197};
    static const int Ns[] = {64, 200, 520}; /* 1, 4 and 9 panels: grouped differently at 1 and 2 threads */
    static const int Ks[] = {16, 770, 1540};
    enum { MMAX = 197, NMAX = 520, KMAX = 1540 };
    float *x = malloc(sizeof(float) * MMAX * KMAX), *b = malloc(sizeof(float) * NMAX);
    uint16_t *w = malloc(sizeof(uint16_t) * NMAX * KMAX);
    uint16_t *wp = malloc(sizeof(uint16_t) * bmc__panel_floats(NMAX, KMAX));
    float *y0 = malloc(sizeof(float) * MMAX * NMAX), *y = malloc(sizeof(float) * MMAX * NMAX);
    float *y1 = malloc(sizeof(float) * MMAX * NMAX), *yw = malloc(sizeof(float) * MMAX * NMAX);
    double *wv = malloc(sizeof(double) * NMAX * KMAX);
    assert_true(x && b && w && wp && y0 && y && y1 && yw && wv);
    bmc__pool *pool2 = NULL, *poolw = NULL;
    assert_int_equal(bmc__pool_new(2, 16, &pool2), BMC_OK);
    assert_int_equal(bmc__pool_new(1, bmc__gemm_widen_floats(), &poolw), BMC_OK);
    const bmc__kernels *kern = bmc__kern();
    double worst[2] = {0, 0};
    int cases = 0;
    unsigned pick = 7;
    for (int wt = BMC__W_F16; wt <= BMC__W_BF16; wt++)
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                    int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                    pick = pick * 1103515245u + 12345u;
                    int flags_pick = (int)((pick >> 8) % 4);
                    int flags = flags_pick == 2 ? BMC__GEMM_ACC : flags_pick == 3 ? BMC__GEMM_GELU : 0;
                    const float *bias = flags_pick ? b : NULL;
                    fill(x, (size_t)M * K, -1, 1);
                    fill(b, N, -1, 1);
                    fill(y0, (size_t)M * N, -1, 1);
                    for (int i = 0; i < N * K; i++) {
                        pick = pick * 1103515245u + 12345u;
                        unsigned r = pick >> 8, sign = (r & 1) << 15;
                        if (wt == BMC__W_F16) /* exponents 9..15 (2^-6 .. 1), 1 in 64 subnormal */
                            w[i] = (uint16_t)(sign | ((r >> 1) % 64 ? (9 + (r >> 7) % 7) << 10 : 0) |
                                              ((r >> 10) & 0x3ff));
                        else /* exponents 121..127 */
                            w[i] = (uint16_t)(sign | (121 + (r >> 1) % 7) << 7 | ((r >> 4) & 0x7f));
                        wv[i] = wt == BMC__W_F16 ? half_value(w[i]) : bf16_value(w[i]);
                    }
                    bmc__panel_pack16(w, N, K, (size_t)K, wt == BMC__W_BF16, wp);
                    bmc__panels pw = {wp, N, K, 0, (bmc__wtype)wt};
                    bmc__mat X = bmc__mat_of(x, M, K, K);
                    /* the whole weight, then views at column 16 (tiles) and 8 (widening) */
                    for (int view = 0; view < 3; view++) {
                        int n0 = view == 0 ? 0 : view == 1 ? 16 : 8, n = N - n0 - (view ? 5 : 0);
                        int dp = kern->level == BMC__LEVEL_AVX512_BF16 && wt == BMC__W_BF16 && n0 % 16 == 0;
                        bmc__mat Y = bmc__mat_cols(bmc__mat_of(y, M, N, N), n0, n);
                        for (int pi = 0; pi < 3; pi++) {
                            memcpy(y, y0, sizeof(float) * M * N);
                            bmc__gemm(pi == 2 ? poolw : pi ? pool2 : NULL, Y, X,
                                      bmc__panels_rows(pw, n0, n), bias ? bias + n0 : NULL, flags);
                            if (pi == 0) memcpy(y1, y, sizeof(float) * M * N);
                            if (pi == 1) assert_memory_equal(y1, y, sizeof(float) * M * N); /* 1 vs 2 threads */
                            if (pi == 2) memcpy(yw, y, sizeof(float) * M * N);
                        }
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                if (j < n0 || j >= n0 + n) {
                                    assert_true(y1[i * N + j] == y0[i * N + j]);
                                    assert_true(yw[i * N + j] == y0[i * N + j]);
                                    continue;
                                }
                                double s = 0, mag = 0;
                                for (int k = 0; k < K; k++) {
                                    double xv = dp ? bf16_round(x[i * K + k]) : x[i * K + k];
                                    double t = xv * wv[(size_t)j * K + k];
                                    s += t, mag += fabs(t);
                                }
                                if (bias) s += b[j], mag += fabs(b[j]);
                                if (flags & BMC__GEMM_ACC) s += y0[i * N + j], mag += fabs(y0[i * N + j]);
                                if (flags & BMC__GEMM_GELU) s = gelu_ref(s), mag += 1.0;
                                for (int pi = 0; pi < 2; pi++) {
                                    float got = (pi ? yw : y1)[i * N + j];
                                    double e = fabs(got - s) / (mag + 1e-30);
                                    if (e > worst[dp] || isnan(e)) worst[dp] = isnan(e) ? INFINITY : e;
                                    if (!(e < 1e-6))
                                        printf("gemm16 wt=%d M=%d N=%d K=%d n0=%d flags=%d%s: y[%d,%d] = "
                                               "%.9g, want %.9g\n", wt, M, N, K, n0, flags_pick,
                                               pi ? " (widening scratch)" : "", i, j, got, s);
                                    assert_true(e < 1e-6);
                                }
                            }
                        cases++;
                    }
                }
    printf("gemm16 (%s): %d cases, max error %.3g of sum |x w| (%.3g with bfloat16 products); "
           "identical on 1 and 2 threads\n", bmc__level_name(kern->level), cases, worst[0], worst[1]);
    bmc__pool_free(pool2);
    bmc__pool_free(poolw);
    free(x), free(b), free(w), free(wp), free(y0), free(y), free(y1), free(yw), free(wv);
}

/* LayerNorm over rows with strides, spread over a pool: equal to the contiguous version. */
static void test_layernorm_rows(void **state) {
    (void)state;
    enum { M = 70, N = 100, LDX = 113, LDY = 105 };
    static float x[M * LDX], y[M * LDY], z[M * N], xc[M * N], w[N], b[N];
    fill(x, M * LDX, -3, 3);
    fill(w, N, 0.5f, 1.5f);
    fill(b, N, -0.5f, 0.5f);
    for (int i = 0; i < M; i++) memcpy(xc + i * N, x + i * LDX, sizeof(float) * N);
    bmc__layernorm(xc, z, M, N, w, b, 1e-5f);
    bmc__pool *pool = NULL;
    assert_int_equal(bmc__pool_new(2, 16, &pool), BMC_OK);
    for (int i = 0; i < M * LDY; i++) y[i] = 55.0f;
    bmc__layernorm_rows(pool, bmc__mat_of(y, M, N, LDY), bmc__mat_of(x, M, N, LDX), w, b, 1e-5f);
    bmc__pool_free(pool);
    for (int i = 0; i < M; i++) {
        assert_memory_equal(y + i * LDY, z + i * N, sizeof(float) * N);
        for (int j = N; j < LDY; j++) assert_true(y[i * LDY + j] == 55.0f);
    }
}

static void test_normalize(void **state) {
    (void)state;
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

/* Every kernel level this CPU has computes the same bits: the element-wise loops (compiled per
 * level, ops_loops.h) on values across their ranges, and the AVX2 tiles against the AVX-512
 * ones (the same chain of FMAs per output) for every tile height, partial column blocks, K not a
 * multiple of 4, each epilogue (first/last slice, residual, bias). A level the CPU lacks is
 * skipped with a line saying so. */
static void test_levels_agree(void **state) {
    (void)state;
    bmc__level best = bmc__cpu_best();
    printf("levels: this CPU runs up to %s (in use: %s)\n", bmc__level_name(best),
           bmc__level_name(bmc__kern()->level));
    const bmc__kernels *lv[BMC__N_LEVELS] = {&bmc__kernels_portable, &bmc__kernels_avx2,
                                             &bmc__kernels_avx512, &bmc__kernels_avx512_bf16};
    enum { N = 1000 };
    static float x[N], a[BMC__N_LEVELS][N], wv[N], bv[N];
    uint32_t r = 7u;
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * (i < N / 2 ? 12.0f : 200.0f);
        wv[i] = 1.0f + x[i] * 0.01f, bv[i] = x[i] * 0.1f;
    }
    for (int op = 0; op < 4; op++) {
        for (int l = 0; l <= (int)best; l++) {
            memcpy(a[l], x, sizeof x);
            if (op == 0) lv[l]->gelu(a[l], N - 3);
            if (op == 1) lv[l]->softmax_scaled(a[l], N - 5, 0.125f);
            if (op == 2) lv[l]->layernorm_row(x, a[l], N - 7, wv, bv, 1e-12f);
            if (op == 3) lv[l]->softmax_scaled(a[l], N - 1, 8.0f); /* e^x underflows to 0 */
            if (l) assert_memory_equal(a[0], a[l], sizeof x);
        }
    }
    if (best < BMC__LEVEL_AVX512) {
        printf("levels: skipped the AVX2 vs AVX-512 tiles (this CPU has no AVX-512)\n");
        return;
    }
    enum { K = 203, LDX = 211, LDB = 64, LDY = 70 };
    static float xs[6 * LDX], bp[K * LDB], bias[64], y[2][6 * LDY];
    for (int i = 0; i < 6 * LDX; i++) r = r * 1664525u + 1013904223u, xs[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < K * LDB; i++) r = r * 1664525u + 1013904223u, bp[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < 64; i++) bias[i] = (float)i * 0.01f - 0.3f;
    int cases = 0;
    for (int mr = 1; mr <= 6; mr++)
        for (int nc = 1; nc <= 64; nc += (nc < 20 ? 1 : 7))
            for (int e = 0; e < 8; e++) {
                bmc__tile_out o = {0};
                o.ldy = LDY, o.ncols = nc, o.first = e & 1, o.last = (e >> 1) & 1;
                o.acc = (e >> 2) & 1, o.b = (e & 2) ? bias : NULL;
                for (int l = 0; l < 2; l++) {
                    for (int i = 0; i < 6 * LDY; i++) y[l][i] = (float)(i % 13) * 0.25f;
                    o.y = y[l];
                    (l ? bmc__outer_avx512 : bmc__outer_avx2)(mr, xs, LDX, bp, LDB, K - (e & 3), &o);
                }
                assert_memory_equal(y[0], y[1], sizeof y[0]);
                cases++;
            }
    /* 16-bit weights: the widening tiles of both levels, the same bits (F16 and BF16 pairs) */
    static uint16_t hp[768 * 64];
    for (int i = 0; i < 768 * 64; i++)
        r = r * 1664525u + 1013904223u, hp[i] = (uint16_t)((r >> 16 & 0x83ff) | (0x3000 + (r >> 4 & 0x0c00)));
    for (int wt = 1; wt <= 2; wt++)
        for (int mr = 1; mr <= 6; mr++)
            for (int nc = 1; nc <= 64; nc += (nc < 20 ? 1 : 7))
                for (int e = 0; e < 8; e++) {
                    bmc__tile_out o = {0};
                    o.ldy = LDY, o.ncols = nc, o.first = e & 1, o.last = (e >> 1) & 1;
                    o.acc = (e >> 2) & 1, o.b = (e & 2) ? bias : NULL;
                    int kc = 768 - 2 * (e & 3);
                    for (int l = 0; l < 2; l++) {
                        for (int i = 0; i < 6 * LDY; i++) y[l][i] = (float)(i % 13) * 0.25f;
                        o.y = y[l];
                        bmc__outer16_fn f = wt == 1 ? (l ? bmc__outer_f16_avx512 : bmc__outer_f16_avx2)
                                                    : (l ? bmc__outer_bf16w_avx512 : bmc__outer_bf16w_avx2);
                        f(mr, xs, LDX, hp, kc > K ? K - K % 2 : kc, &o);
                    }
                    assert_memory_equal(y[0], y[1], sizeof y[0]);
                    cases++;
                }
    /* the packing of keys */
    enum { NB = 77, KC = 64, LDW = 70 };
    static float w[NB * LDW], p[2][2 * 64 * KC];
    for (int i = 0; i < NB * LDW; i++) w[i] = (float)i;
    memset(p, 0xff, sizeof p);
    bmc__pack_w_avx2(w, LDW, NB, KC, p[0]);
    bmc__pack_w_avx512(w, LDW, NB, KC, p[1]);
    assert_memory_equal(p[0], p[1], sizeof p[0]);
    printf("levels: element-wise ops identical at every level; AVX2 tiles identical to AVX-512 "
           "in %d cases\n", cases);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),    cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),      cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_exp_range),
        cmocka_unit_test(test_attention), cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_gemm),      cmocka_unit_test(test_gemm16),
        cmocka_unit_test(test_layernorm_rows),
        cmocka_unit_test(test_levels_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
