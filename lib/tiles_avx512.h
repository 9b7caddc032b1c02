/* tiles_avx512.h - what the AVX-512 tiles of every weight type share (tiles.c, tiles_bf16.c):
 * the column masks and the epilogue of kernels.h. Included only by files compiled with AVX-512
 * flags. */
#ifndef BMC_TILES_AVX512_H
#define BMC_TILES_AVX512_H

#include <immintrin.h>

#include "kernels.h"

#define PMR BMC__KERN_MR /* rows of X per tile */
#define PNR BMC__KERN_NR /* columns per tile */
#define PNV (PNR / 16)   /* vectors per tile row */
_Static_assert(PNR == 64, "BMC__KERN_NR: 64");
_Static_assert(PMR == 6 || PMR == 8 || PMR == 12, "BMC__KERN_MR: 6, 8 or 12");

/* m[v]: the columns of vector v (of nv) that are under ncols. */
static inline __attribute__((always_inline)) void tile_masks(const int nv, int ncols,
                                                            __mmask16 m[PNV]) {
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        int c = ncols - 16 * v;
        m[v] = (__mmask16)(c >= 16 ? 0xffffu : c <= 0 ? 0u : (1u << c) - 1u);
    }
}

/* The epilogue of kernels.h: acc (mr x nv vectors) written to the mr x o->ncols block at o->y. */
static inline __attribute__((always_inline)) void tile_store(const int mr, const int nv,
                                                            __m512 acc[PMR][PNV],
                                                            const __mmask16 m[PNV],
                                                            const bmc__tile_out *o) {
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

/* One 64-byte line of the prefetch run [*pf, pf_end), into L1 or L2. */
static inline __attribute__((always_inline)) void tile_prefetch(const char **pf,
                                                               const char *pf_end, int l1) {
    if (*pf < pf_end) {
        if (l1) _mm_prefetch(*pf, _MM_HINT_T0);
        else _mm_prefetch(*pf, _MM_HINT_T1);
        *pf += 64;
    }
}

#endif /* BMC_TILES_AVX512_H */
