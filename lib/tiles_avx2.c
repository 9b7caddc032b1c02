/* tiles_avx2.c - the outer-product tiles at the AVX2 + FMA level (kernels.h): the interface,
 * the panel layout and the order of summation of tiles.c, with half the vector width.
 *
 * 16 ymm registers hold a 6 x 16 tile: 12 accumulators, 2 vectors of the sliver and a
 * broadcast of X. A tile of up to 64 columns (a panel's sliver) is walked as up to 4 such
 * blocks of 16 columns, each over all of kc, so every output is the same chain of fused
 * multiply-adds in the order of k as at the AVX-512 level: the results do not depend on the
 * rows around a row, on the number of threads, nor (with the same element-wise code) on which
 * of the two levels ran. The X rows of a tile (6 x kc floats, <= 18 KB) stay in L1 while the 4
 * blocks go over them. A last, partial block reads its columns with masked loads, so that
 * nothing past ncols is read (attention reads its values in place). */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#include <immintrin.h>

#define PMR BMC__KERN_MR /* rows of X per tile */
#define PNR BMC__KERN_NR /* columns per tile */
_Static_assert(PMR == 6, "the AVX2 tile is 6 rows high (12 accumulators)");

void bmc__pack_w_avx2(const float *w, size_t ldw, int nb, int kc, float *bp) {
    int slivers = (nb + PNR - 1) / PNR;
    for (int sv = 0; sv < slivers; sv++) {
        float *dst = bp + (size_t)sv * kc * PNR;
        for (int j = 0; j < PNR; j++) {
            int r = sv * PNR + j;
            const float *src = w + (size_t)r * ldw;
            if (r < nb)
                for (int k = 0; k < kc; k++) dst[(size_t)k * PNR + j] = src[k];
            else
                for (int k = 0; k < kc; k++) dst[(size_t)k * PNR + j] = 0.0f;
        }
    }
}

/* A block's share of the tile's prefetch run: up to `end`, per4 lines every 4 steps of k. */
typedef struct pf_share {
    const char *end;
    int per4;
} pf_share;

/* The weight types of a tile (bmc__wtype): float32, or 16-bit widened to float in registers. */
enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2 };

/* The block of columns c0 .. c0 + 15 (masked: only those under ncols) of an mr-row tile, with
 * the epilogue of kernels.h in the operations and order of tiles.c. B is bp (float, row stride
 * ldb; masked blocks read only their columns under ncols) or a 16-bit panel slice (kernels.h:
 * read whole, only the stores masked). *pf: the shared prefetch cursor, advanced by per4 lines
 * every 4 steps of k while it lasts. */
static inline __attribute__((always_inline)) void block16(const int wt, const int mr,
                                                         const int masked, const float *x,
                                                         size_t ldx, const void *bpv,
                                                         size_t ldb, int kc,
                                                         const bmc__tile_out *o, int c0,
                                                         const char **pfp, const pf_share *pfs) {
    __m256i m0 = _mm256_setzero_si256(), m1 = m0;
    if (masked) {
        __m256i n = _mm256_set1_epi32(o->ncols - c0);
        m0 = _mm256_cmpgt_epi32(n, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        m1 = _mm256_cmpgt_epi32(n, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15));
    }
    const float *b = (const float *)bpv + c0;
    const uint16_t *bh = (const uint16_t *)bpv + (wt == WT_BF16 ? 2 * c0 : c0);
    __m256 acc[PMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#define FMA2(k, b0, b1)                                                                    \
    _Pragma("GCC unroll 6") for (int i = 0; i < mr; i++) {                                 \
        __m256 a = _mm256_broadcast_ss(x + i * ldx + (k));                                 \
        acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);                                     \
        acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);                                     \
    }
    /* one step of k (float and half weights), or two (bfloat16 pairs: k even) */
#define STEP(k)                                                                            \
    do {                                                                                   \
        if (wt == WT_F32) {                                                                \
            const float *bk = b + (size_t)(k) * ldb;                                       \
            __m256 b0 = masked ? _mm256_maskload_ps(bk, m0) : _mm256_loadu_ps(bk);         \
            __m256 b1 = masked ? _mm256_maskload_ps(bk + 8, m1) : _mm256_loadu_ps(bk + 8); \
            FMA2(k, b0, b1)                                                                \
        } else if (wt == WT_F16) {                                                         \
            const uint16_t *bk = bh + (size_t)(k) * PNR;                                   \
            __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)bk));             \
            __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(bk + 8)));       \
            FMA2(k, b0, b1)                                                                \
        } else {                                                                           \
            const uint16_t *bk = bh + (size_t)(k) * PNR;                                   \
            __m256 b0 = _mm256_castsi256_ps(                                               \
                _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)bk), 16));           \
            __m256 b1 = _mm256_castsi256_ps(                                               \
                _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(bk + 16)), 16));    \
            FMA2(k, b0, b1)                                                                \
            __m256i hi = _mm256_set1_epi32(-65536);                                        \
            b0 = _mm256_castsi256_ps(                                                      \
                _mm256_and_si256(_mm256_loadu_si256((const __m256i *)bk), hi));            \
            b1 = _mm256_castsi256_ps(                                                      \
                _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(bk + 16)), hi));     \
            FMA2((k) + 1, b0, b1)                                                          \
        }                                                                                  \
    } while (0)
    const char *pf = *pfp, *pf_end = pfs->end;
    const int per4 = pfs->per4, l1 = o->pf_l1;
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        for (int q = 0; q < per4 && pf < pf_end; q++, pf += 64) {
            if (l1) _mm_prefetch(pf, _MM_HINT_T0);
            else _mm_prefetch(pf, _MM_HINT_T1);
        }
        if (wt == WT_BF16) {
            STEP(k);
            STEP(k + 2);
        } else {
            STEP(k);
            STEP(k + 1);
            STEP(k + 2);
            STEP(k + 3);
        }
    }
    for (; k < kc; k += wt == WT_BF16 ? 2 : 1) STEP(k);
#undef STEP
#undef FMA2
    *pfp = pf;
    int first = o->first, last = o->last, accflag = o->acc;
    __m256 bias0 = _mm256_setzero_ps(), bias1 = bias0;
    if (last && o->b) {
        if (masked) {
            bias0 = _mm256_maskload_ps(o->b + c0, m0);
            bias1 = _mm256_maskload_ps(o->b + c0 + 8, m1);
        } else {
            bias0 = _mm256_loadu_ps(o->b + c0);
            bias1 = _mm256_loadu_ps(o->b + c0 + 8);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *yr = o->y + i * o->ldy + c0;
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) {
            __m256i m = v ? m1 : m0;
            __m256 bias = v ? bias1 : bias0, t = acc[i][v];
#define LOADY() (masked ? _mm256_maskload_ps(yr + 8 * v, m) : _mm256_loadu_ps(yr + 8 * v))
            if (first && last) {
                t = _mm256_add_ps(t, bias);
                if (accflag) t = _mm256_add_ps(LOADY(), t);
            } else {
                if (!first || accflag) t = _mm256_add_ps(LOADY(), t);
                if (last) t = _mm256_add_ps(t, bias);
            }
#undef LOADY
            if (masked) _mm256_maskstore_ps(yr + 8 * v, m, t);
            else _mm256_storeu_ps(yr + 8 * v, t);
        }
    }
}

typedef void (*outer_fn)(const float *x, size_t ldx, const void *bp, size_t ldb, int kc,
                         const bmc__tile_out *o);

/* Block blk of nb's share of the tile's prefetch run: the run cut into nb equal parts, each at
 * an nb-th of the tile's rate (at least a line every 4 steps), so that the lines go out over
 * the whole tile as at the AVX-512 level and not in a burst during its first block, which
 * pushed the tile's rows of X and the block's weights out of L1 (docs/PERF.md). */
static inline pf_share pf_share_of(const bmc__tile_out *o, int nb, int blk) {
    pf_share s = {o->pf_end, 1};
    if (o->pf_end > o->pf) {
        size_t lines = (size_t)(o->pf_end - o->pf) / 64;
        s.end = o->pf + (lines * (size_t)(blk + 1) + nb - 1) / nb * 64;
        if (s.end > o->pf_end) s.end = o->pf_end;
        int per4 = o->pf_per4 > 1 ? o->pf_per4 : 1;
        s.per4 = (per4 + nb - 1) / nb;
    }
    return s;
}

/* an mr-row tile: full blocks of 16 columns, then a masked one for a remainder */
#define OUTER(w, a)                                                                        \
    static void outer_##w##_##a(const float *x, size_t ldx, const void *bp, size_t ldb,    \
                                int kc, const bmc__tile_out *o) {                          \
        const char *pf = o->pf;                                                            \
        int full = o->ncols / 16, c0 = 0, nb = (o->ncols + 15) / 16, blk = 0;              \
        for (; blk < full; blk++, c0 += 16) {                                              \
            pf_share s = pf_share_of(o, nb, blk);                                          \
            block16(w, a, 0, x, ldx, bp, ldb, kc, o, c0, &pf, &s);                         \
        }                                                                                  \
        if (c0 < o->ncols) {                                                               \
            pf_share s = pf_share_of(o, nb, blk);                                          \
            block16(w, a, 1, x, ldx, bp, ldb, kc, o, c0, &pf, &s);                         \
        }                                                                                  \
    }
#define OUTER_TYPE(w)                                                                      \
    OUTER(w, 1) OUTER(w, 2) OUTER(w, 3) OUTER(w, 4) OUTER(w, 5) OUTER(w, 6)                \
    static const outer_fn outers_##w[PMR] = {outer_##w##_1, outer_##w##_2, outer_##w##_3,  \
                                             outer_##w##_4, outer_##w##_5, outer_##w##_6};
OUTER_TYPE(0) OUTER_TYPE(1) OUTER_TYPE(2)
#undef OUTER
#undef OUTER_TYPE

void bmc__outer_f16_avx2(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                         const bmc__tile_out *o) {
    outers_1[mr - 1](x, ldx, bp, PNR, kc, o);
}

void bmc__outer_bf16w_avx2(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                           const bmc__tile_out *o) {
    outers_2[mr - 1](x, ldx, bp, PNR, kc, o);
}

void bmc__outer_avx2(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                     const bmc__tile_out *o) {
    outers_0[mr - 1](x, ldx, bp, ldb, kc, o);
}
