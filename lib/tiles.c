/* tiles.c - the outer-product tiles every product runs on (kernels.h), and the packing of a
 * row-major matrix into slivers (attention's keys), at the AVX-512 level: this file is compiled
 * with AVX-512 flags (Makefile) and runs only where cpu.c finds AVX-512 (tiles_avx2.c: AVX2).
 *
 * A 6 x 64 tile: per step of k, 4 vector loads of the sliver, 6 broadcasts of X and 24 FMAs
 * into 24 accumulators, which keeps the FMA units nearly busy with the fewest broadcasts per FMA
 * (the measurements against 12 x 32 tiles are in docs/PERF.md). A tile of fewer columns (a last, partial
 * sliver) runs only the vectors it needs. While it runs, a tile prefetches memory it is given
 * (gemm.c hands out the weights that come next), spread over its steps: a burst would be
 * dropped. */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define PMR BMC__KERN_MR /* rows of X per tile */
#define PNR BMC__KERN_NR /* columns per tile */
#define PNV (PNR / 16)   /* vectors per tile row */

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

void bmc__pack_w_avx512(const float *w, size_t ldw, int nb, int kc, float *bp) {
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
 * the first ncols columns of bp are read: only the last vector is masked, since masked loads of
 * full vectors slow the thin products of short texts down (docs/PERF.md). */
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
            v < nv - 1 ? _mm512_loadu_ps(bp + (size_t)(k) * ldb + 16 * v)                  \
                       : _mm512_maskz_loadu_ps(m[v], bp + (size_t)(k) * ldb + 16 * v);     \
        _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++) {                            \
            __m512 a = _mm512_set1_ps(x[i * ldx + (k)]);                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) acc[i][v] =               \
                _mm512_fmadd_ps(a, bv[v], acc[i][v]);                                      \
        }                                                                                  \
    } while (0)
    /* o->pf_per4 lines of o->pf every 4 steps, one per step as far as they go: spread out, so
     * that the prefetches are not dropped */
    const char *pf = o->pf, *pf_end = o->pf_end;
    const int per4 = o->pf_per4 > 1 ? o->pf_per4 : 1, l1 = o->pf_l1;
#define PREFETCH_ONE()                                                                     \
    do {                                                                                   \
        if (pf < pf_end) {                                                                 \
            if (l1) _mm_prefetch(pf, _MM_HINT_T0);                                         \
            else _mm_prefetch(pf, _MM_HINT_T1);                                            \
            pf += 64;                                                                      \
        }                                                                                  \
    } while (0)
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        PREFETCH_ONE();
        OUTER_STEP(k);
        if (per4 > 1) PREFETCH_ONE();
        OUTER_STEP(k + 1);
        if (per4 > 2) PREFETCH_ONE();
        OUTER_STEP(k + 2);
        if (per4 > 3) PREFETCH_ONE();
        OUTER_STEP(k + 3);
        for (int q = 4; q < per4; q++) PREFETCH_ONE();
    }
#undef PREFETCH_ONE
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

void bmc__outer_avx512(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o) {
    outer_for(mr, o->ncols)(x, ldx, bp, ldb, kc, o);
}

#endif
