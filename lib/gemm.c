/* gemm.c - Y = X W^T (+ b), the matrix product every Linear layer is (ops.h, bmc__gemm).
 *
 * W is PyTorch's [N, K] row-major weight, so every output Y[m, n] is the dot product of two
 * contiguous rows, X[m, :] and W[n, :]. The AVX-512 kernel computes a tile of MR x NR such dot
 * products at once: each step loads 16 floats of MR rows of X and of NR rows of W and issues
 * MR * NR fused multiply-adds into MR * NR accumulators (24 of the 32 vector registers), which
 * are summed across their 16 lanes at the end. Nothing is packed or copied, so the weights are
 * read straight from the file mapping, and the same kernel serves one short text (M = 10 rows:
 * bandwidth-bound, each weight row is fetched from memory once and used for all M rows) and a
 * batch of images (M = 1576 rows: compute-bound). This machine's OpenBLAS is pinned to its
 * AVX2 (Haswell) kernels, which reach at most half the AVX-512 FMA rate.
 *
 * Blocking: the N outputs are cut into column blocks of NC, one pool task each. Within a block,
 * K is cut into KC-long slices (K <= 1024 is one slice), so that an MR x KC slice of X and an
 * NR x KC slice of W (30 KB at KC = 768) stay in L1 while a tile is computed:
 *   few rows (M <= THIN_M): for each NR rows of W, for every MR rows of X: tile. Each weight
 *     slice comes from memory once (prefetched one tile ahead); X (M x KC) stays in L2.
 *   many rows: for every MR rows of X, for each NR rows of the block: tile. The block of W
 *     (NC x KC, 147 KB) stays in L2; each slice of X is used for NC / NR tiles.
 *
 * Numerics: every Y[m, n] is one sequence of fp32 FMAs over k (16 lanes, then a fixed
 * reduction tree, then the K slices in order) that depends neither on M, nor on the tile an
 * element falls in, nor on the thread count: results are identical for any batch composition
 * and any number of threads. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "ops.h"
#include "pool.h"
#include "profile.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "error.h"
#include "kernels.h"

/* ---- few rows: dot-product tiles straight from X and W ------------------------------------ */

#define MR 4
#define NR 6
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

/* s[i * NR + j] = sum_k x[i * ldx + k] * w[j * ldw + k] for i < mr, j < nr, k < kc. pf: the
 * next W tile (same layout) to prefetch into cache, or NULL. */
static inline __attribute__((always_inline)) void dot_tile(const int mr, const int nr,
                                                          const float *x, size_t ldx,
                                                          const float *w, size_t ldw, int kc,
                                                          const float *pf, float *s) {
    __m512 acc[MR][NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 xv[MR];
        if (pf) {
#pragma GCC unroll 6
            for (int j = 0; j < nr; j++) _mm_prefetch((const char *)(pf + j * ldw + k), _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) xv[i] = _mm512_loadu_ps(x + i * ldx + k);
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) {
            __m512 wv = _mm512_loadu_ps(w + j * ldw + k);
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
                        const float *pf, float *s);
#define TILE(a, b)                                                                              \
    static void tile_##a##x##b(const float *x, size_t ldx, const float *w, size_t ldw, int kc, \
                               const float *pf, float *s) {                                    \
        dot_tile(a, b, x, ldx, w, ldw, kc, pf, s);                                             \
    }
#define TILE_ROW(a) TILE(a, 1) TILE(a, 2) TILE(a, 3) TILE(a, 4) TILE(a, 5) TILE(a, 6)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
#define TILE_REF(a) {tile_##a##x1, tile_##a##x2, tile_##a##x3, tile_##a##x4, tile_##a##x5, tile_##a##x6}
static const tile_fn tiles[MR][NR] = {TILE_REF(1), TILE_REF(2), TILE_REF(3), TILE_REF(4)};

typedef struct gemm_job {
    const float *x;  /* [M, K], row stride ldx */
    const float *w;  /* [N, K], row stride ldw */
    const float *b;  /* [N] or NULL */
    float *y;        /* [M, N], row stride ldy */
    int M, N, K, ldx, ldw, ldy, flags;
    int nc;          /* columns per task */
    bmc__pool *pool;
    float *scratch;  /* pack buffer when there is no pool */
} gemm_job;

/* One output value from the sum s over the K slice [k0, k0 + kc) and what y holds: the first
 * slice writes (BMC__GEMM_ACC: adds to the residual), later ones add; the last adds the bias.
 * A single slice is y + (s + b), PyTorch's order for a residual. GELU is applied afterwards. */
static inline float finish(float s, float y, float b, int first, int last, int acc) {
    if (first && last) {
        s += b;
        return acc ? y + s : s;
    }
    float v = first && !acc ? s : y + s;
    return last ? v + b : v;
}

#ifndef PF_TILES
#define PF_TILES 1 /* the weight tile this many tiles ahead is fetched while one is used */
#endif

static void dot_task(const gemm_job *g, int n0, int n1) {
    int M = g->M, K = g->K, acc = g->flags & BMC__GEMM_ACC;
    size_t ldx = (size_t)g->ldx, ldw = (size_t)g->ldw, ldy = (size_t)g->ldy;
    int kc_step = K <= KC_DOT_MAX ? K : KC_DOT;
    float s[MR * NR];
    for (int k0 = 0; k0 < K; k0 += kc_step) {
        int kc = K - k0 < kc_step ? K - k0 : kc_step, first = k0 == 0, last = k0 + kc == K;
        for (int n = n0; n < n1; n += NR) {
            int nr = n1 - n < NR ? n1 - n : NR;
            const float *wt = g->w + (size_t)n * ldw + k0;
            /* a later tile of weights, fetched from memory while this one is used (with the
             * first rows of X, which take them from memory) */
            const float *pf = n + (PF_TILES + 1) * NR <= n1 ? wt + PF_TILES * NR * ldw : NULL;
            for (int m = 0; m < M; m += MR) {
                int mr = M - m < MR ? M - m : MR;
                tiles[mr - 1][nr - 1](g->x + (size_t)m * ldx + k0, ldx, wt, ldw, kc,
                                      m == 0 ? pf : NULL, s);
                for (int i = 0; i < mr; i++) {
                    float *yr = g->y + (size_t)(m + i) * ldy + n;
                    for (int j = 0; j < nr; j++)
                        yr[j] = finish(s[i * NR + j], yr[j], g->b ? g->b[n + j] : 0.0f, first,
                                       last, acc);
                }
            }
        }
    }
    if (g->flags & BMC__GEMM_GELU)
        for (int m = 0; m < M; m++) bmc__gelu(g->y + (size_t)m * ldy + n0, (size_t)(n1 - n0));
}

/* ---- many rows: outer-product tiles on a packed block of W -------------------------------- */

#define PMR BMC__KERN_MR /* rows of X per tile */
#define PNR BMC__KERN_NR /* columns per tile */
#define PNV (PNR / 16)   /* vectors per tile row */
#define PNC (2 * PNR)    /* columns per task (a packed block) */
#ifndef PKC
#define PKC 768     /* K slice */
#endif
#define KUNROLL 2
#define DO_PRAGMA(x) _Pragma(#x)
#define UNROLL(n) DO_PRAGMA(GCC unroll n)
_Static_assert(PNC * PKC <= BMC__GEMM_SCRATCH, "pack buffer larger than the pool's scratch");

/* 16 rows of 16 floats -> 16 columns (r[c] = column c), in place. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4i + c]: rows 4i..4i+3; its 128-bit lane L holds column 4L + c */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xDD);
    }
}

/* bp[s][k][PNR] = w[s*PNR + j, k] for the nb rows j of w and k < kc (zero beyond nb rows). */
void bmc__pack_w(const float *w, size_t ldw, int nb, int kc, float *bp) {
    int slivers = (nb + PNR - 1) / PNR;
    for (int sv = 0; sv < slivers; sv++)
        for (int half = 0; half < PNR; half += 16) { /* 16 rows at a time */
            int j0 = sv * PNR + half;
            int rows = nb - j0 < 16 ? nb - j0 : 16; /* may be <= 0: zeros */
            float *dst = bp + (size_t)sv * kc * PNR + half;
            for (int k = 0; k < kc; k += 16) {
                int cols = kc - k < 16 ? kc - k : 16;
                __mmask16 m = (__mmask16)(cols == 16 ? 0xffffu : (1u << cols) - 1u);
                __m512 r[16];
                if (rows == 16) {
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++)
                        r[i] = _mm512_maskz_loadu_ps(m, w + (size_t)(j0 + i) * ldw + k);
                } else {
#pragma GCC unroll 16
                    for (int i = 0; i < 16; i++)
                        r[i] = i < rows ? _mm512_maskz_loadu_ps(m, w + (size_t)(j0 + i) * ldw + k)
                                        : _mm512_setzero_ps();
                }
                transpose16(r);
                if (cols == 16) {
#pragma GCC unroll 16
                    for (int c = 0; c < 16; c++) _mm512_storeu_ps(dst + (size_t)(k + c) * PNR, r[c]);
                } else {
                    /* constant indices only, so that r stays in registers */
#pragma GCC unroll 16
                    for (int c = 0; c < 16; c++)
                        if (c < cols) _mm512_storeu_ps(dst + (size_t)(k + c) * PNR, r[c]);
                }
            }
        }
}

/* acc[i][0..1] = sum_k x[i * ldx + k] * bp[k * ldb + 0..31] for i < mr, then written to the
 * mr x o->ncols block at o->y with the epilogue of `finish` (vectorised). Only the first
 * ncols columns of bp are read. */
static inline __attribute__((always_inline)) void outer_tile(const int mr, const float *x,
                                                            size_t ldx, const float *bp,
                                                            size_t ldb, int kc,
                                                            const bmc__tile_out *o) {
    int ncols = o->ncols;
    __mmask16 m[PNV];
#pragma GCC unroll 4
    for (int v = 0; v < PNV; v++) {
        int c = ncols - 16 * v;
        m[v] = (__mmask16)(c >= 16 ? 0xffffu : c <= 0 ? 0u : (1u << c) - 1u);
    }
    __m512 acc[PMR][PNV];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < PNV; v++) acc[i][v] = _mm512_setzero_ps();
    bmc__prefetch *pf = o->pf;
    UNROLL(KUNROLL)
    for (int k = 0; k < kc; k++) {
        if (pf && (k & 3) == 0 && pf->rows > 0) {
            _mm_prefetch(pf->row + (size_t)pf->col * 64, _MM_HINT_T1);
            if (++pf->col == pf->lines) pf->col = 0, pf->row += pf->stride, pf->rows--;
        }
        __m512 bv[PNV];
#pragma GCC unroll 4
        for (int v = 0; v < PNV; v++)
#ifdef NOMASK
            bv[v] = _mm512_loadu_ps(bp + (size_t)k * ldb + 16 * v);
#else
            bv[v] = _mm512_maskz_loadu_ps(m[v], bp + (size_t)k * ldb + 16 * v);
#endif
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(x[i * ldx + k]);
#pragma GCC unroll 4
            for (int v = 0; v < PNV; v++) acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
        }
    }
    int first = o->first, last = o->last, accflag = o->acc;
    __m512 bias[PNV];
#pragma GCC unroll 4
    for (int v = 0; v < PNV; v++)
        bias[v] = last && o->b ? _mm512_maskz_loadu_ps(m[v], o->b + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *yr = o->y + i * o->ldy;
#pragma GCC unroll 4
        for (int v = 0; v < PNV; v++) {
            __m512 t = acc[i][v];
            if (first && last) {
                t = _mm512_add_ps(t, bias[v]);
                if (accflag) t = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], yr + 16 * v), t);
            } else {
                if (!first || accflag) t = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], yr + 16 * v), t);
                if (last) t = _mm512_add_ps(t, bias[v]);
            }
            _mm512_mask_storeu_ps(yr + 16 * v, m[v], t);
        }
        if (last && o->gelu) bmc__gelu(yr, (size_t)ncols);
    }
}

typedef void (*outer_fn)(const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                         const bmc__tile_out *o);
#define OUTER(a)                                                                        \
    static void outer_##a(const float *x, size_t ldx, const float *bp, size_t ldb, int kc, \
                          const bmc__tile_out *o) {                                     \
        outer_tile(a, x, ldx, bp, ldb, kc, o);                                          \
    }
OUTER(1) OUTER(2) OUTER(3) OUTER(4) OUTER(5) OUTER(6)
#if PMR > 6
OUTER(7) OUTER(8)
#endif
#if PMR > 8
OUTER(9) OUTER(10) OUTER(11) OUTER(12)
#endif
static const outer_fn outers[PMR] = {outer_1, outer_2, outer_3, outer_4, outer_5, outer_6,
#if PMR > 6
                                     outer_7, outer_8,
#endif
#if PMR > 8
                                     outer_9, outer_10, outer_11, outer_12
#endif
};

void bmc__outer(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o) {
    outers[mr - 1](x, ldx, bp, ldb, kc, o);
}

/* Prefetch part `part` of `parts` of the rows [nb, kc] of W at w into L2: the next slice is
 * fetched from memory while this one is computed, so packing reads it from cache. */
static void prefetch_rows(const float *w, size_t ldw, int nb, int kc, int part, int parts) {
    int lines = (kc + 15) / 16, total = nb * lines;
    int l0 = (int)((long)total * part / parts), l1 = (int)((long)total * (part + 1) / parts);
    int r = l0 / lines, c = l0 % lines;
    for (int l = l0; l < l1; l++) {
        _mm_prefetch((const char *)(w + (size_t)r * ldw + (size_t)c * 16), _MM_HINT_T1);
        if (++c == lines) c = 0, r++;
    }
}

static void packed_task(const gemm_job *g, int task, float *bp) {
    int M = g->M, K = g->K;
    int n0 = task * g->nc, n1 = n0 + g->nc < g->N ? n0 + g->nc : g->N, nb = n1 - n0;
    size_t ldx = (size_t)g->ldx, ldw = (size_t)g->ldw, ldy = (size_t)g->ldy;
    /* the block this thread is likely to take next (tasks are claimed in order) */
    int nn0 = n0 + bmc__pool_threads(g->pool) * g->nc;
    bmc__tile_out o;
    o.ldy = ldy;
    o.acc = (g->flags & BMC__GEMM_ACC) != 0;
    o.gelu = (g->flags & BMC__GEMM_GELU) != 0;
    for (int k0 = 0; k0 < K; k0 += PKC) {
        int kc = K - k0 < PKC ? K - k0 : PKC;
        o.first = k0 == 0;
        o.last = k0 + kc == K;
        bmc__pack_w(g->w + (size_t)n0 * ldw + k0, ldw, nb, kc, bp);
        /* what to fetch meanwhile: the next slice, or the next block's first one */
        bmc__prefetch pf = {NULL, ldw * sizeof(float), 0, 0, 0};
        if (!o.last) {
            int pkc = K - (k0 + kc) < PKC ? K - (k0 + kc) : PKC;
            pf.row = (const char *)(g->w + (size_t)n0 * ldw + k0 + kc);
            pf.rows = nb, pf.lines = (pkc + 15) / 16;
        } else if (nn0 < g->N) {
            int pkc = K < PKC ? K : PKC;
            pf.row = (const char *)(g->w + (size_t)nn0 * ldw);
            pf.rows = g->N - nn0 < g->nc ? g->N - nn0 : g->nc, pf.lines = (pkc + 15) / 16;
        }
#ifdef NOPF
        o.pf = NULL;
#else
        o.pf = pf.rows > 0 ? &pf : NULL;
#endif
        for (int m = 0; m < M; m += PMR) {
            int mr = M - m < PMR ? M - m : PMR;
            for (int j = 0; j < nb; j += PNR) {
                o.ncols = nb - j < PNR ? nb - j : PNR;
                o.y = g->y + (size_t)m * ldy + n0 + j;
                o.b = g->b ? g->b + n0 + j : NULL;
                outers[mr - 1](g->x + (size_t)m * ldx + k0, ldx, bp + (size_t)(j / PNR) * kc * PNR,
                               PNR, kc, &o);
            }
        }
    }
}

/* Rows from which the packed kernel is used (below: dot tiles, weights streamed once). */
#ifndef PACKED_MIN_M
#define PACKED_MIN_M 64
#endif

static void gemm_task(void *arg, int task, int thread) {
    const gemm_job *g = arg;
    int n0 = task * g->nc, n1 = n0 + g->nc < g->N ? n0 + g->nc : g->N;
    if (g->M >= PACKED_MIN_M) {
        float *bp = g->pool ? bmc__pool_scratch(g->pool, thread) : g->scratch;
        packed_task(g, task, bp);
    } else {
        dot_task(g, n0, n1);
    }
}

void bmc__gemm(bmc__pool *pool, const float *x, int M, int K, int ldx, const float *w, int ldw,
               const float *b, int N, float *y, int ldy, int flags) {
    if (M <= 0 || N <= 0) return;
    BMC__PROF_BEGIN(t0);
    gemm_job g = {x, w, b, y, M, N, K, ldx, ldw, ldy, flags, 0, pool, NULL};
    int threads = bmc__pool_threads(pool);
    void *tmp = NULL;
    if (M >= PACKED_MIN_M) {
        g.nc = PNC;
        if (!pool) { /* the unit tests' path: a pack buffer of its own */
            tmp = bmc__malloc(PNC * PKC * sizeof(float) + 64);
            if (tmp) g.scratch = (float *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
            else g.M = M; /* no memory: fall through to the dot tiles below */
        }
    }
    if (M < PACKED_MIN_M || (!pool && !tmp)) {
        /* weights streamed once: enough column blocks that every thread gets several */
        int nc = 8 * NR;
        if (threads > 1) {
            int per = (N + 4 * threads - 1) / (4 * threads);
            per = (per + NR - 1) / NR * NR;
            if (per < nc) nc = per < NR ? NR : per;
        }
        g.nc = nc;
        if (M >= PACKED_MIN_M) { /* out of memory for the pack buffer */
            for (int n0 = 0; n0 < N; n0 += nc) dot_task(&g, n0, n0 + nc < N ? n0 + nc : N);
            BMC__PROF_END(BMC__PROF_GEMM, t0);
            return;
        }
    }
    bmc__pool_run(pool, gemm_task, &g, (N + g.nc - 1) / g.nc);
    bmc__free(tmp);
    BMC__PROF_END(BMC__PROF_GEMM, t0);
}

#else /* portable: OpenBLAS (its own threads), then the bias/residual/GELU epilogue */

void bmc__gemm(bmc__pool *pool, const float *x, int M, int K, int ldx, const float *w, int ldw,
               const float *b, int N, float *y, int ldy, int flags) {
    (void)pool;
    if (M <= 0 || N <= 0) return;
    BMC__PROF_BEGIN(t0);
    if (flags & BMC__GEMM_ACC) {
        /* y + (x W^T + b): the product goes to y's rows after... keep PyTorch's order by
         * computing into y with beta = 1 only when there is no bias */
        if (!b) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, w, ldw,
                        1.0f, y, ldy);
        } else {
            for (int i = 0; i < M; i++) {
                float *row = y + (size_t)i * ldy;
                for (int j = 0; j < N; j++) row[j] += b[j]; /* (y + b) + xW: rounding differs from
                                                               y + (xW + b) by ~1 ulp */
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, w, ldw,
                        1.0f, y, ldy);
        }
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, w, ldw, 0.0f,
                    y, ldy);
        if (b)
            for (int i = 0; i < M; i++) {
                float *row = y + (size_t)i * ldy;
                for (int j = 0; j < N; j++) row[j] += b[j];
            }
    }
    if (flags & BMC__GEMM_GELU)
        for (int i = 0; i < M; i++) bmc__gelu(y + (size_t)i * ldy, (size_t)N);
    BMC__PROF_END(BMC__PROF_GEMM, t0);
}

#endif
