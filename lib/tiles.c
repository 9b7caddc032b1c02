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
#include "tiles_avx512.h"

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

/* The weight types of a tile (bmc__wtype): float32, or 16-bit widened to float in registers. */
enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2 };

/* acc[i][v] = sum_k x[i * ldx + k] * B[k][16v ..] for v < nv, then written to the mr x o->ncols
 * block at o->y (ncols <= 16 nv) with the epilogue of kernels.h. B is bp (float, row stride
 * ldb) or, for 16-bit weights, a panel slice (kernels.h). Float slivers are read only in their
 * first ncols columns, with only the last vector masked, since masked loads of full vectors slow
 * the thin products of short texts down (docs/PERF.md); 16-bit panels are read whole. */
static inline __attribute__((always_inline)) void outer_tile(const int wt, const int mr,
                                                            const int nv, const float *x,
                                                            size_t ldx, const void *bpv,
                                                            size_t ldb, int kc,
                                                            const bmc__tile_out *o) {
    const float *bp = bpv;
    const uint16_t *bh = bpv;
    __mmask16 m[PNV];
    tile_masks(nv, o->ncols, m);
    __m512 acc[PMR][PNV];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    /* acc[i][v] += x[i, k] * bv[v] for every row */
#define OUTER_FMA(k, bv)                                                                   \
    _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++) {                                \
        __m512 a = _mm512_set1_ps(x[i * ldx + (k)]);                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) acc[i][v] =                   \
            _mm512_fmadd_ps(a, bv[v], acc[i][v]);                                          \
    }
    /* one step of k (float and half weights), or two (bfloat16 pairs: k even) */
#define OUTER_STEP(k)                                                                      \
    do {                                                                                   \
        __m512 bv[PNV];                                                                    \
        if (wt == WT_F32) {                                                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] =                   \
                v < nv - 1 ? _mm512_loadu_ps(bp + (size_t)(k) * ldb + 16 * v)              \
                           : _mm512_maskz_loadu_ps(m[v], bp + (size_t)(k) * ldb + 16 * v); \
            OUTER_FMA(k, bv)                                                               \
        } else if (wt == WT_F16) {                                                         \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] = _mm512_cvtph_ps(  \
                _mm256_loadu_si256((const __m256i *)(bh + (size_t)(k) * PNR + 16 * v)));   \
            OUTER_FMA(k, bv)                                                               \
        } else {                                                                           \
            const uint16_t *bk = bh + (size_t)(k) * PNR;                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] =                   \
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(bk + 32 * v), 16)); \
            OUTER_FMA(k, bv)                                                               \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] =                   \
                _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(bk + 32 * v),      \
                                                     _mm512_set1_epi32(-65536)));          \
            OUTER_FMA((k) + 1, bv)                                                         \
        }                                                                                  \
    } while (0)
    /* o->pf_per4 lines of o->pf every 4 steps, one per step as far as they go: spread out, so
     * that the prefetches are not dropped */
    const char *pf = o->pf, *pf_end = o->pf_end;
    const int per4 = o->pf_per4 > 1 ? o->pf_per4 : 1, l1 = o->pf_l1;
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        tile_prefetch(&pf, pf_end, l1);
        if (wt == WT_BF16) {
            OUTER_STEP(k);
            if (per4 > 1) tile_prefetch(&pf, pf_end, l1);
            if (per4 > 2) tile_prefetch(&pf, pf_end, l1);
            OUTER_STEP(k + 2);
            if (per4 > 3) tile_prefetch(&pf, pf_end, l1);
        } else {
            OUTER_STEP(k);
            if (per4 > 1) tile_prefetch(&pf, pf_end, l1);
            OUTER_STEP(k + 1);
            if (per4 > 2) tile_prefetch(&pf, pf_end, l1);
            OUTER_STEP(k + 2);
            if (per4 > 3) tile_prefetch(&pf, pf_end, l1);
            OUTER_STEP(k + 3);
        }
        for (int q = 4; q < per4; q++) tile_prefetch(&pf, pf_end, l1);
    }
    for (; k < kc; k += wt == WT_BF16 ? 2 : 1) OUTER_STEP(k);
#undef OUTER_STEP
#undef OUTER_FMA
    tile_store(mr, nv, acc, m, o);
}

typedef void (*outer_fn)(const float *x, size_t ldx, const void *bp, size_t ldb, int kc,
                         const bmc__tile_out *o);
#define OUTER(w, a, v)                                                                     \
    static void outer_##w##_##a##_##v(const float *x, size_t ldx, const void *bp,          \
                                      size_t ldb, int kc, const bmc__tile_out *o) {        \
        outer_tile(w, a, v, x, ldx, bp, ldb, kc, o);                                       \
    }
#define OUTER_ROW(w, a) OUTER(w, a, 1) OUTER(w, a, 2) OUTER(w, a, 3) OUTER(w, a, 4)
#define OUTER_REF(w, a) {outer_##w##_##a##_1, outer_##w##_##a##_2, outer_##w##_##a##_3, outer_##w##_##a##_4}
#if PMR == 6
#define OUTER_TYPE(w)                                                                      \
    OUTER_ROW(w, 1) OUTER_ROW(w, 2) OUTER_ROW(w, 3) OUTER_ROW(w, 4) OUTER_ROW(w, 5)        \
    OUTER_ROW(w, 6)                                                                        \
    static const outer_fn outers_##w[PMR][PNV] = {OUTER_REF(w, 1), OUTER_REF(w, 2),        \
                                                  OUTER_REF(w, 3), OUTER_REF(w, 4),        \
                                                  OUTER_REF(w, 5), OUTER_REF(w, 6)};
#else
#error "BMC__KERN_MR: only 6 is instantiated"
#endif
/* outers_W[mr - 1][nv - 1]: mr rows, nv vectors of 16 columns, weight type W */
OUTER_TYPE(0) OUTER_TYPE(1) OUTER_TYPE(2)

void bmc__outer_avx512(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                       const bmc__tile_out *o) {
    outers_0[mr - 1][(o->ncols + 15) / 16 - 1](x, ldx, bp, ldb, kc, o);
}

void bmc__outer_f16_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                           const bmc__tile_out *o) {
    outers_1[mr - 1][(o->ncols + 15) / 16 - 1](x, ldx, bp, PNR, kc, o);
}

void bmc__outer_bf16w_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                             const bmc__tile_out *o) {
    outers_2[mr - 1][(o->ncols + 15) / 16 - 1](x, ldx, bp, PNR, kc, o);
}

#endif
