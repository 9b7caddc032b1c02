/* ops.c - the tensor core's element-wise parts: LayerNorm, exact GELU, softmax, L2 norm
 * (the products are in gemm.c, attention in attention.c).
 *
 * Numerics (spec section 10, pitfall 7): PyTorch's CPU reference runs blocked fp32 GEMMs, so
 * the products stay in fp32 here too (sgemm); the reductions that are sensitive to
 * cancellation (LayerNorm statistics, softmax denominators, L2 norms) accumulate in double.
 *
 * Speed: erf and exp are the only transcendentals, evaluated ~7M and ~6M times per image.
 * libm's erff/expf are scalar calls (GELU alone was ~15% of a ViT-B pass), so both are written
 * as branch-free element loops that the compiler vectorizes (ops_loops.h, compiled once per
 * kernel level: cpu.h); tests/test_ops.c holds them to about 1 ulp of double-precision
 * erf/exp. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "profile.h"

#define BMC__SFX(name) name##_portable
#include "ops_loops.h"

/* the element-wise loops of the level in use (ops_loops.h) */

void bmc__layernorm(const float *x, float *y, int M, int N, const float *w, const float *b,
                    float eps) {
    BMC__PROF_BEGIN(t0);
    const bmc__kernels *k = bmc__kern();
    for (int i = 0; i < M; i++)
        k->layernorm_row(x + (size_t)i * N, y + (size_t)i * N, N, w, b, eps);
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
    const bmc__kernels *k = bmc__kern();
    for (int i = task * j->rows; i < i1; i++)
        k->layernorm_row(j->x + (size_t)i * j->ldx, j->y + (size_t)i * j->ldy, j->N, j->w, j->b,
                      j->eps);
}

void bmc__layernorm_rows(bmc__pool *pool, bmc__mat y, bmc__mat x, const float *w, const float *b,
                         float eps) {
    BMC__PROF_BEGIN(t0);
    int M = x.rows;
    ln_job j = {x.p, w, b, y.p, x.ld, y.ld, M, x.cols, 16, eps};
    bmc__pool_run(M > 16 ? pool : NULL, ln_task, &j, (M + j.rows - 1) / j.rows);
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

void bmc__gelu(float *x, size_t n) {
    BMC__PROF_BEGIN(t0);
    bmc__kern()->gelu(x, n);
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

void bmc__gelu_rows(float *y, size_t ldy, int M, size_t n) {
    for (int i = 0; i < M; i++) bmc__gelu(y + (size_t)i * ldy, n);
}

void bmc__softmax_scaled(float *r, int N, float scale) {
    BMC__PROF_BEGIN(t0);
    bmc__kern()->softmax_scaled(r, N, scale);
    BMC__PROF_END(BMC__PROF_NORM_ACT, t0);
}

void bmc__softmax_rows(float *x, int M, int N) {
    for (int i = 0; i < M; i++) bmc__softmax_scaled(x + (size_t)i * N, N, 1.0f);
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
