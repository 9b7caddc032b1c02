/* gemm_packed.c - the compute-bound half of bmc__gemm (gemm.c): many rows of X against a block
 * of W packed into slivers, with outer-product tiles (kernels.h). AVX-512 only.
 *
 * A pool task owns a block of PNC = 64 outputs (rows of W). For each K slice of up to 768 it
 * packs the block's weights into a sliver [k][64] (16 x 16 transposes), then runs 6 x 64 tiles
 * over every 6 rows of X: per step of k, 4 vector loads of the sliver, 6 broadcasts of X and 24
 * FMAs into 24 accumulators, ~85-88% of the FMA peak here on one thread (12 x 32 tiles, with
 * twice the broadcasts per FMA, measured 5-8% slower). The sliver (192 KB) stays in L2 while
 * X streams through. A tile of fewer columns (a last, partial sliver) runs only the vectors
 * it needs.
 *
 * The weights come from the file mapping, so packing reads them from memory: to hide that,
 * the last tiles of a block prefetch the next slice or the block this thread takes next (a
 * line every 4 steps of k; a burst would be dropped, and an earlier prefetch pushed out of L2
 * again by X). */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "ops.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define PMR BMC__KERN_MR /* rows of X per tile */
#define PNR BMC__KERN_NR /* columns per tile */
#define PNV (PNR / 16)   /* vectors per tile row */
#define PNC BMC__GEMM_NC /* columns per task (a packed block) */
#define PKC BMC__GEMM_KC /* K slice */
_Static_assert(PNC % PNR == 0, "a block is whole slivers");
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
                    for (int c = 0; c < 16; c++)
                        _mm512_storeu_ps(dst + (size_t)(k + c) * PNR, r[c]);
                } else {
                    /* constant indices only, so that r stays in registers */
#pragma GCC unroll 16
                    for (int c = 0; c < 16; c++)
                        if (c < cols) _mm512_storeu_ps(dst + (size_t)(k + c) * PNR, r[c]);
                }
            }
        }
}

/* acc[i][v] = sum_k x[i * ldx + k] * bp[k * ldb + 16v ..] for v < nv, then written to the
 * mr x o->ncols block at o->y (ncols <= 16 nv) with the epilogue described in kernels.h. Only
 * the first ncols columns of bp are read. */
static inline __attribute__((always_inline)) void outer_tile(const int mr, const int nv,
                                                            const float *x, size_t ldx,
                                                            const float *bp, size_t ldb, int kc,
                                                            const bmc__tile_out *o) {
    int ncols = o->ncols;
    __mmask16 m[PNV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        int c = ncols - 16 * v;
        m[v] = (__mmask16)(c >= 16 ? 0xffffu : c <= 0 ? 0u : (1u << c) - 1u);
    }
    __m512 acc[PMR][PNV];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
#define OUTER_STEP(k)                                                                      \
    do {                                                                                   \
        __m512 bv[PNV];                                                                    \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] =                       \
            _mm512_maskz_loadu_ps(m[v], bp + (size_t)(k) * ldb + 16 * v);                  \
        _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++) {                            \
            __m512 a = _mm512_set1_ps(x[i * ldx + (k)]);                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) acc[i][v] =               \
                _mm512_fmadd_ps(a, bv[v], acc[i][v]);                                      \
        }                                                                                  \
    } while (0)
    /* one line of o->pf every 4 steps: spread out, so that the prefetches are not dropped */
    const char *pf = o->pf, *pf_end = o->pf_end;
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        if (pf < pf_end) {
            _mm_prefetch(pf, _MM_HINT_T1);
            pf += 64;
        }
        OUTER_STEP(k);
        OUTER_STEP(k + 1);
        OUTER_STEP(k + 2);
        OUTER_STEP(k + 3);
    }
    for (; k < kc; k++) OUTER_STEP(k);
#undef OUTER_STEP
    int first = o->first, last = o->last, accflag = o->acc;
    __m512 bias[PNV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
        bias[v] = last && o->b ? _mm512_maskz_loadu_ps(m[v], o->b + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *yr = o->y + i * o->ldy;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __m512 t = acc[i][v];
            if (first && last) {
                t = _mm512_add_ps(t, bias[v]);
                if (accflag) t = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], yr + 16 * v), t);
            } else {
                if (!first || accflag)
                    t = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], yr + 16 * v), t);
                if (last) t = _mm512_add_ps(t, bias[v]);
            }
            _mm512_mask_storeu_ps(yr + 16 * v, m[v], t);
        }
    }
}

typedef void (*outer_fn)(const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                         const bmc__tile_out *o);
#define OUTER(a, v)                                                                        \
    static void outer_##a##_##v(const float *x, size_t ldx, const float *bp, size_t ldb,   \
                                int kc, const bmc__tile_out *o) {                          \
        outer_tile(a, v, x, ldx, bp, ldb, kc, o);                                          \
    }
#if PNV == 4
#define OUTER_ROW(a) OUTER(a, 1) OUTER(a, 2) OUTER(a, 3) OUTER(a, 4)
#define OUTER_REF(a) {outer_##a##_1, outer_##a##_2, outer_##a##_3, outer_##a##_4}
#elif PNV == 2
#define OUTER_ROW(a) OUTER(a, 1) OUTER(a, 2)
#define OUTER_REF(a) {outer_##a##_1, outer_##a##_2}
#else
#error "BMC__KERN_NR: 32 or 64"
#endif
OUTER_ROW(1) OUTER_ROW(2) OUTER_ROW(3) OUTER_ROW(4) OUTER_ROW(5) OUTER_ROW(6)
#if PMR > 6
OUTER_ROW(7) OUTER_ROW(8)
#endif
#if PMR > 8
OUTER_ROW(9) OUTER_ROW(10) OUTER_ROW(11) OUTER_ROW(12)
#endif
_Static_assert(PMR == 6 || PMR == 8 || PMR == 12, "BMC__KERN_MR: 6, 8 or 12");
/* outers[mr - 1][nv - 1]: mr rows, nv vectors of 16 columns */
static const outer_fn outers[PMR][PNV] = {OUTER_REF(1), OUTER_REF(2), OUTER_REF(3),
                                          OUTER_REF(4), OUTER_REF(5), OUTER_REF(6),
#if PMR > 6
                                          OUTER_REF(7), OUTER_REF(8),
#endif
#if PMR > 8
                                          OUTER_REF(9), OUTER_REF(10), OUTER_REF(11),
                                          OUTER_REF(12)
#endif
};

static outer_fn outer_for(int mr, int ncols) { return outers[mr - 1][(ncols + 15) / 16 - 1]; }

void bmc__outer(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o) {
    outer_for(mr, o->ncols)(x, ldx, bp, ldb, kc, o);
}

/* The weights the next pack will read, handed out to the tiles of the current block as
 * contiguous pieces to prefetch (a tile takes one line every 4 steps of k). */
typedef struct prefetch_walk {
    const char *base; /* start of the current row */
    size_t stride;    /* bytes between rows */
    int lines;        /* 64-byte lines per row (the whole block when it is contiguous) */
    int col;          /* lines of this row already handed out */
    int rows;         /* rows left, this one included */
} prefetch_walk;

/* The next piece of at most `cap` lines, within one row, into o->pf / o->pf_end. */
static void prefetch_piece(prefetch_walk *w, int cap, bmc__tile_out *o) {
    o->pf = o->pf_end = NULL;
    if (w->rows <= 0) return;
    int n = w->lines - w->col < cap ? w->lines - w->col : cap;
    o->pf = w->base + (size_t)w->col * 64;
    o->pf_end = o->pf + (size_t)n * 64;
    if ((w->col += n) == w->lines) w->col = 0, w->base += w->stride, w->rows--;
}

void bmc__gemm_packed_task(const bmc__gemm_job *g, int task, float *bp) {
    int M = g->M, K = g->K;
    int n0 = task * g->nc, n1 = n0 + g->nc < g->N ? n0 + g->nc : g->N, nb = n1 - n0;
    size_t ldx = (size_t)g->ldx, ldw = (size_t)g->ldw, ldy = (size_t)g->ldy;
    /* the block this thread is likely to take next (tasks are claimed in order) */
    int nn0 = n0 + g->threads * g->nc;
    bmc__tile_out o;
    o.ldy = ldy;
    o.acc = (g->flags & BMC__GEMM_ACC) != 0;
    for (int k0 = 0; k0 < K; k0 += PKC) {
        int kc = K - k0 < PKC ? K - k0 : PKC;
        o.first = k0 == 0;
        o.last = k0 + kc == K;
        bmc__pack_w(g->w + (size_t)n0 * ldw + k0, ldw, nb, kc, bp);
        /* What to fetch meanwhile: the next slice, or the next block's first slice, by the last
         * tiles of this block (fetched earlier, the lines would be pushed out of L2 again by the
         * rows of X streaming through it). */
        prefetch_walk pf = {NULL, ldw * sizeof(float), 0, 0, 0};
        int pn0 = o.last ? nn0 : n0, pk0 = o.last ? 0 : k0 + kc;
        if (pn0 < g->N) {
            int pkc = K - pk0 < PKC ? K - pk0 : PKC, pnb = g->N - pn0 < g->nc ? g->N - pn0 : g->nc;
            pf.base = (const char *)(g->w + (size_t)pn0 * ldw + pk0);
            if ((size_t)pkc == ldw) { /* whole rows, one after another: one piece */
                pf.rows = 1;
                pf.lines = (int)(((size_t)pnb * ldw * sizeof(float) + 63) / 64);
            } else {
                pf.rows = pnb;
                pf.lines = (int)(((size_t)pkc * sizeof(float) + 63) / 64);
            }
        }
        int cap = kc / 4 > 0 ? kc / 4 : 1, calls = ((M + PMR - 1) / PMR) * ((nb + PNR - 1) / PNR);
        int per_call = pf.lines < cap ? pf.lines : cap;
        int need = (pf.rows * pf.lines + per_call - 1) / (per_call > 0 ? per_call : 1);
        int start = calls - need > 0 ? calls - need : 0, call = 0;
        for (int m = 0; m < M; m += PMR) {
            int mr = M - m < PMR ? M - m : PMR;
            for (int j = 0; j < nb; j += PNR, call++) {
                if (call >= start) prefetch_piece(&pf, cap, &o);
                else o.pf = o.pf_end = NULL;
                o.ncols = nb - j < PNR ? nb - j : PNR;
                o.y = g->y + (size_t)m * ldy + n0 + j;
                o.b = g->b ? g->b + n0 + j : NULL;
                outer_for(mr, o.ncols)(g->x + (size_t)m * ldx + k0, ldx,
                                       bp + (size_t)(j / PNR) * kc * PNR, PNR, kc, &o);
            }
        }
    }
    /* GELU once the block is final, a row at a time: in each tile's epilogue instead it cost
     * 7% of the MLP's first product at 197 rows on 2 threads (28 Nov, microbenchmark) */
    if (g->flags & BMC__GEMM_GELU)
        bmc__gelu_rows(g->y + n0, ldy, M, (size_t)nb);
}

#endif
