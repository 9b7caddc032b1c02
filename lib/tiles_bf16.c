/* tiles_bf16.c - the tiles for bfloat16 weights on CPUs with AVX512_BF16 (kernels.h): X is
 * rounded to bfloat16 as well and each vdpbf16ps adds the products of two steps of k into float
 * accumulators, twice the multiply-adds of an FMA per instruction. Compiled with AVX-512 and
 * AVX512_BF16 flags (Makefile); runs only where cpu.c finds AVX512_BF16.
 *
 * A 6 x 64 tile as in tiles.c: per pair of k, 4 loads of the panel (16 columns x 2 values of k
 * each), 6 broadcasts of a pair of X and 24 vdpbf16ps. The tile's rows of X are rounded to
 * bfloat16 pairs first, into the caller's buffer (o->xb, 6 x 384 pairs), which the tiles of the
 * caller's next panels over the same rows reuse (gemm.c groups panels for this): rounding in
 * every tile took about a tenth of the products' time (docs/PERF.md). */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#if defined(__AVX512BF16__)
#include "tiles_avx512.h"

/* The mr rows of X (kc values each, kc even) as bfloat16 pairs: xb[i][kk] = (x[i][2kk],
 * x[i][2kk + 1]), rounded to nearest even. */
static void round_rows(int mr, const float *x, size_t ldx, int kc, uint32_t xb[][BMC__KERN_KC / 2]) {
    for (int i = 0; i < mr; i++) {
        const float *xr = x + i * ldx;
        for (int k = 0; k < kc; k += 32) {
            int n = kc - k;
            __mmask16 lo = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
            __mmask16 hi = (__mmask16)(n >= 32 ? 0xffffu : n <= 16 ? 0u : (1u << (n - 16)) - 1u);
            __m512bh p = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, xr + k + 16),
                                             _mm512_maskz_loadu_ps(lo, xr + k));
            __mmask16 pairs = (__mmask16)(n >= 32 ? 0xffffu : (1u << (n / 2)) - 1u);
            _mm512_mask_storeu_epi32(&xb[i][k / 2], pairs, (__m512i)p);
        }
    }
}

static inline __attribute__((always_inline)) void outer_dp(const int mr, const int nv,
                                                          const float *x, size_t ldx,
                                                          const uint16_t *bp, int kc,
                                                          const bmc__tile_out *o) {
    uint32_t own[PMR][BMC__KERN_KC / 2] __attribute__((aligned(64)));
    uint32_t(*xb)[BMC__KERN_KC / 2] = o->xb ? (uint32_t(*)[BMC__KERN_KC / 2])o->xb : own;
    if (!o->xb || !o->xb_ready) round_rows(mr, x, ldx, kc, xb);
    __mmask16 m[PNV];
    __m512 acc[PMR][PNV];
    tile_start(mr, nv, o->ncols, m, acc);
#define DP_STEP(kk)                                                                        \
    do {                                                                                   \
        __m512i bv[PNV];                                                                   \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) bv[v] =                       \
            _mm512_loadu_si512(bp + (size_t)(kk) * 2 * PNR + 32 * v);                      \
        _Pragma("GCC unroll 12") for (int i = 0; i < mr; i++) {                            \
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)xb[i][kk]);                     \
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) acc[i][v] =               \
                _mm512_dpbf16_ps(acc[i][v], a, (__m512bh)bv[v]);                           \
        }                                                                                  \
    } while (0)
    const char *pf = o->pf, *pf_end = o->pf_end;
    const int per4 = o->pf_per4 > 1 ? o->pf_per4 : 1, l1 = o->pf_l1;
    int kk = 0, pairs = kc / 2;
    for (; kk + 2 <= pairs; kk += 2) { /* 4 steps of k */
        for (int q = 0; q < per4; q++) tile_prefetch(&pf, pf_end, l1);
        DP_STEP(kk);
        DP_STEP(kk + 1);
    }
    for (; kk < pairs; kk++) DP_STEP(kk);
#undef DP_STEP
    tile_store(mr, nv, acc, m, o);
}

typedef void (*outer_fn)(const float *x, size_t ldx, const uint16_t *bp, int kc,
                         const bmc__tile_out *o);
#define OUTER(a, v)                                                                        \
    static void outer_##a##_##v(const float *x, size_t ldx, const uint16_t *bp, int kc,    \
                                const bmc__tile_out *o) {                                  \
        outer_dp(a, v, x, ldx, bp, kc, o);                                                 \
    }
#define OUTER_ROW(a) OUTER(a, 1) OUTER(a, 2) OUTER(a, 3) OUTER(a, 4)
#define OUTER_REF(a) {outer_##a##_1, outer_##a##_2, outer_##a##_3, outer_##a##_4}
OUTER_ROW(1) OUTER_ROW(2) OUTER_ROW(3) OUTER_ROW(4) OUTER_ROW(5) OUTER_ROW(6)
_Static_assert(PMR == 6, "BMC__KERN_MR: only 6 is instantiated");
static const outer_fn outers[PMR][PNV] = {OUTER_REF(1), OUTER_REF(2), OUTER_REF(3),
                                          OUTER_REF(4), OUTER_REF(5), OUTER_REF(6)};

void bmc__outer_bf16dp_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                              const bmc__tile_out *o) {
    outers[mr - 1][(o->ncols + 15) / 16 - 1](x, ldx, bp, kc, o);
}

#else
/* A compiler without AVX512_BF16 support: the widening tiles, the same results as BMC_CPU=avx512. */
void bmc__outer_bf16dp_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                              const bmc__tile_out *o) {
    bmc__outer_bf16w_avx512(mr, x, ldx, bp, kc, o);
}
#endif
