/* gemm.c - Y = X W^T (+ b), the product every Linear layer is (ops.h, bmc__gemm).
 *
 * W is PyTorch's [N, K] row-major weight, read in place from the file mapping: nothing is
 * packed ahead of time or copied for good. Two AVX-512 kernels, by the number of rows M (the
 * system OpenBLAS may be pinned to its AVX2 kernels, as on the machine this was tuned on, a
 * Zen 5 whose OPENBLAS_CORETYPE is Haswell: half the FMA width):
 *
 *   M < 64 (texts one at a time, the heads): the product is a stream of weights, each used for
 *     only M rows. Every Y[m, n] is the dot product of two contiguous rows, X[m, :] and W[n, :],
 *     and a 4 x 6 tile computes 24 of them at once (each step of 16 k: 4 + 6 loads, 24 FMAs, then
 *     the lanes summed by a fixed tree; K above 1024 in slices of 768). For each 6 rows of W,
 *     every 4 rows of X: the weights come from memory once and stay in L1 for the other rows
 *     of X, while the next tile is prefetched, its rows shared out among the row blocks of X.
 *   M >= 64 (images, batches of texts): compute-bound; gemm_packed.c packs a block of W and
 *     runs outer-product tiles over it.
 *
 * The N outputs are cut into column blocks, one pool task each (pool.h); a block's outputs
 * depend only on its own work, so the results are the same for any number of threads. They do
 * depend on the kernel (M below or above 64: a different summation order, ~1e-7 apart).
 * BMC__GEMM_ACC folds the residual add in (y + (X W^T + b), PyTorch's order when K is one
 * slice), BMC__GEMM_GELU the activation (applied to each block once it is final).
 *
 * Without AVX-512 the product is OpenBLAS's (its own threads), then the same epilogue. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "error.h"
#include "kernels.h"
#include "ops.h"
#include "pool.h"
#include "profile.h"

#if defined(__AVX512F__)
#include <immintrin.h>

/* ---- few rows: dot-product tiles straight from X and W ------------------------------------ */

#define MR 4
#define NR 6
#define PF_TILES 1 /* the tile of weights this many tiles ahead is prefetched (into L1) */
#define KC_DOT_MAX 1024 /* K up to this is one slice ... */
#define KC_DOT 768      /* ... else slices of this */

/* The sums of the 16 lanes of a, b, c, d: [sum a, sum b, sum c, sum d] (a fixed tree). */
static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3], the same for c, d */
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    /* per 128-bit lane: [a, b, c, d] partial sums */
    __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* s[i * NR + j] = sum_k x[i * ldx + k] * w[j * ldw + k] for i < mr, j < nr, k < kc. Meanwhile
 * the pf_rows rows at pf (row stride ldw, kc long) are prefetched, a line of each per step. */
static inline __attribute__((always_inline)) void dot_tile(const int mr, const int nr,
                                                          const float *x, size_t ldx,
                                                          const float *w, size_t ldw, int kc,
                                                          const float *pf, int pf_rows,
                                                          float *s) {
    __m512 acc[MR][NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    /* Rows addressed from two bases each plus a stride (base, base + stride, base + 2 stride):
     * 4 registers for the 10 rows, which leaves the loop free of spills. */
    const size_t lx = ldx * sizeof(float), lw = ldw * sizeof(float);
    const char *xa = (const char *)x, *xb = mr > 2 ? (const char *)(x + 2 * ldx) : xa;
    const char *wa = (const char *)w, *wb = nr > 3 ? (const char *)(w + 3 * ldw) : wa;
    const char *pp = (const char *)pf;
    for (; k + 16 <= kc; k += 16, xa += 64, xb += 64, wa += 64, wb += 64, pp += 64) {
        __m512 xv[MR];
        for (int j = 0; j < pf_rows; j++) _mm_prefetch(pp + j * lw, _MM_HINT_T0);
        xv[0] = _mm512_loadu_ps(xa);
        if (mr > 1) xv[1] = _mm512_loadu_ps(xa + lx);
        if (mr > 2) xv[2] = _mm512_loadu_ps(xb);
        if (mr > 3) xv[3] = _mm512_loadu_ps(xb + lx);
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) {
            const char *wr = j < 3 ? wa + j * lw : wb + (j - 3) * lw;
            __m512 wv = _mm512_loadu_ps((const float *)wr);
            __asm__("" : "+v"(wv)); /* one load, kept in a register, not folded into each FMA */
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    if (k < kc) { /* the last kc % 16 columns, masked (masked-off lanes are not read) */
        __mmask16 m = (__mmask16)((1u << (kc - k)) - 1u);
        __m512 xv[MR];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) xv[i] = _mm512_maskz_loadu_ps(m, x + i * ldx + k);
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) {
            __m512 wv = _mm512_maskz_loadu_ps(m, w + j * ldw + k);
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    /* the 16 lanes of the (up to) 4 accumulators of a column, summed together */
#pragma GCC unroll 6
    for (int j = 0; j < nr; j++) {
        __m512 a0 = acc[0][j];
        __m512 a1 = mr > 1 ? acc[1][j] : _mm512_setzero_ps();
        __m512 a2 = mr > 2 ? acc[2][j] : _mm512_setzero_ps();
        __m512 a3 = mr > 3 ? acc[3][j] : _mm512_setzero_ps();
        float t[4];
        _mm_storeu_ps(t, reduce4(a0, a1, a2, a3));
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) s[i * NR + j] = t[i];
    }
}

typedef void (*tile_fn)(const float *x, size_t ldx, const float *w, size_t ldw, int kc,
                        const float *pf, int pf_rows, float *s);
#define TILE(a, b)                                                                              \
    static void tile_##a##x##b(const float *x, size_t ldx, const float *w, size_t ldw, int kc, \
                               const float *pf, int pf_rows, float *s) {                       \
        dot_tile(a, b, x, ldx, w, ldw, kc, pf, pf_rows, s);                                    \
    }
#define TILE_ROW(a) TILE(a, 1) TILE(a, 2) TILE(a, 3) TILE(a, 4) TILE(a, 5) TILE(a, 6)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
#define TILE_REF(a) \
    {tile_##a##x1, tile_##a##x2, tile_##a##x3, tile_##a##x4, tile_##a##x5, tile_##a##x6}
static const tile_fn tiles[MR][NR] = {TILE_REF(1), TILE_REF(2), TILE_REF(3), TILE_REF(4)};

/* Write an mr x nr block of sums s (row stride NR) to y with the epilogue of bmc__outer
 * (kernels.h): the first K slice writes (with BMC__GEMM_ACC: adds to the residual, y + (s + b),
 * PyTorch's order, when it is the only slice), later slices add, the last adds the bias; the
 * mode decided once per block. */
static void store_sums(const float *s, int mr, int nr, float *y, size_t ldy, const float *b,
                       int first, int last, int acc) {
    float bb[NR] = {0, 0, 0, 0, 0, 0};
    if (b && last)
        for (int j = 0; j < nr; j++) bb[j] = b[j];
    for (int i = 0; i < mr; i++) {
        const float *si = s + i * NR;
        float *yr = y + (size_t)i * ldy;
        if (first && last && !acc) {
            for (int j = 0; j < nr; j++) yr[j] = si[j] + bb[j];
        } else if (first && last) {
            for (int j = 0; j < nr; j++) yr[j] = yr[j] + (si[j] + bb[j]);
        } else if (first && !acc) {
            for (int j = 0; j < nr; j++) yr[j] = si[j];
        } else {
            for (int j = 0; j < nr; j++) yr[j] = (yr[j] + si[j]) + bb[j];
        }
    }
}

static void dot_task(const bmc__gemm_job *g, int n0, int n1) {
    int M = g->M, K = g->K, acc = g->flags & BMC__GEMM_ACC;
    size_t ldx = (size_t)g->ldx, ldw = (size_t)g->ldw, ldy = (size_t)g->ldy;
    int kc_step = K <= KC_DOT_MAX ? K : KC_DOT;
    float s[MR * NR];
    for (int k0 = 0; k0 < K; k0 += kc_step) {
        int kc = K - k0 < kc_step ? K - k0 : kc_step, first = k0 == 0, last = k0 + kc == K;
        for (int n = n0; n < n1; n += NR) {
            int nr = n1 - n < NR ? n1 - n : NR;
            const float *wt = g->w + (size_t)n * ldw + k0;
            /* a later tile of weights, fetched from memory meanwhile: its rows are shared out
             * among the row blocks of X, so that the requests are spread over the tile */
            int pn = n + PF_TILES * NR, prows = n1 - pn < NR ? n1 - pn : NR;
            const float *pf = prows > 0 ? g->w + (size_t)pn * ldw + k0 : wt;
            int blocks = (M + MR - 1) / MR;
            for (int m = 0, blk = 0; m < M; m += MR, blk++) {
                int mr = M - m < MR ? M - m : MR;
                int r0 = prows > 0 ? prows * blk / blocks : 0;
                int r1 = prows > 0 ? prows * (blk + 1) / blocks : 0;
                tiles[mr - 1][nr - 1](g->x + (size_t)m * ldx + k0, ldx, wt, ldw, kc,
                                      pf + (size_t)r0 * ldw, r1 - r0, s);
                store_sums(s, mr, nr, g->y + (size_t)m * ldy + n, ldy, g->b ? g->b + n : NULL,
                           first, last, acc);
            }
        }
    }
    if (g->flags & BMC__GEMM_GELU)
        bmc__gelu_rows(g->y + n0, ldy, M, (size_t)(n1 - n0));
}

static void gemm_task(void *arg, int task, int thread) {
    const bmc__gemm_job *g = arg;
    if (g->packed) {
        bmc__gemm_packed_task(g, task, g->pool ? bmc__pool_scratch(g->pool, thread) : g->scratch);
    } else {
        int n0 = task * g->nc, n1 = n0 + g->nc < g->N ? n0 + g->nc : g->N;
        dot_task(g, n0, n1);
    }
}

void bmc__gemm(bmc__pool *pool, const float *x, int M, int K, int ldx, const float *w, int ldw,
               const float *b, int N, float *y, int ldy, int flags) {
    if (M <= 0 || N <= 0) return;
    BMC__PROF_BEGIN(t0);
    bmc__gemm_job g;
    memset(&g, 0, sizeof g);
    g.x = x, g.w = w, g.b = b, g.y = y;
    g.M = M, g.N = N, g.K = K, g.ldx = ldx, g.ldw = ldw, g.ldy = ldy, g.flags = flags;
    g.pool = pool;
    g.threads = bmc__pool_threads(pool);
    void *tmp = NULL;
    if (M >= BMC__GEMM_PACKED_MIN_M) {
        g.packed = 1;
        g.nc = BMC__GEMM_NC;
        if (!pool) { /* no pool to lend a pack buffer (unit tests): one of its own */
            tmp = bmc__malloc(BMC__GEMM_NC * BMC__GEMM_KC * sizeof(float) + 64);
            if (tmp) g.scratch = (float *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
            else g.packed = 0; /* out of memory: the dot tiles need no buffer */
        }
    }
    if (!g.packed) {
        /* weights streamed once: blocks of 48, or smaller so that every thread gets ~4 */
        int nc = 8 * NR;
        if (g.threads > 1) {
            int per = (N + 4 * g.threads - 1) / (4 * g.threads);
            per = (per + NR - 1) / NR * NR;
            if (per < nc) nc = per;
        }
        g.nc = nc;
    }
    bmc__pool_run(pool, gemm_task, &g, (N + g.nc - 1) / g.nc);
    bmc__free(tmp);
    BMC__PROF_END(BMC__PROF_GEMM, t0);
}

#else /* portable: OpenBLAS (its own threads), then the bias/residual/GELU epilogue */

static void add_bias(float *y, int ldy, int M, int N, const float *b) {
    if (!b) return;
    for (int i = 0; i < M; i++) {
        float *row = y + (size_t)i * ldy;
        for (int j = 0; j < N; j++) row[j] += b[j];
    }
}

void bmc__gemm(bmc__pool *pool, const float *x, int M, int K, int ldx, const float *w, int ldw,
               const float *b, int N, float *y, int ldy, int flags) {
    (void)pool;
    if (M <= 0 || N <= 0) return;
    BMC__PROF_BEGIN(t0);
    /* With BMC__GEMM_ACC: y + b + X W^T, the residual and bias first, then the product added by
     * the GEMM (beta = 1), since there is no room for the product alone; ~1 ulp from PyTorch's
     * y + (X W^T + b). Otherwise X W^T, then + b. */
    int acc = (flags & BMC__GEMM_ACC) != 0;
    if (acc) add_bias(y, ldy, M, N, b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, w, ldw,
                acc ? 1.0f : 0.0f, y, ldy);
    if (!acc) add_bias(y, ldy, M, N, b);
    if (flags & BMC__GEMM_GELU)
        bmc__gelu_rows(y, (size_t)ldy, M, (size_t)N);
    BMC__PROF_END(BMC__PROF_GEMM, t0);
}

#endif
