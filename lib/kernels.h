/* kernels.h - the AVX-512 building blocks of gemm.c, shared with attention.c. Only compiled
 * where __AVX512F__ is defined (elsewhere gemm.c and attention.c use OpenBLAS). */
#ifndef BMC_KERNELS_H
#define BMC_KERNELS_H

#include <stddef.h>

#if defined(__AVX512F__)

#define BMC__KERN_MR 12 /* rows of X per outer-product tile      */
#define BMC__KERN_NR 32 /* columns per tile (and per packed sliver) */

/* Where and how an outer-product tile is written (see bmc__outer). */
typedef struct bmc__tile_out {
    float *y;          /* [mr, ncols] block, row stride ldy          */
    size_t ldy;
    const float *b;    /* [ncols] bias added by the last slice, or NULL */
    int ncols;         /* 1..32 valid columns                        */
    int first, last;   /* this K slice is the first / the last one   */
    int acc;           /* the first slice adds to y (a residual)     */
    int gelu;          /* the last slice applies GELU                */
} bmc__tile_out;

/* Y[i, j] (+)= sum_k x[i * ldx + k] * bp[k * ldb + j] for i < mr (1..12), j < o->ncols, k < kc:
 * bp is a packed sliver of weights (ldb = 32) or any row-major [kc, >= ncols] matrix (attention
 * values). Epilogue: the first slice writes (adds with o->acc), later slices add; the last
 * adds the bias then applies GELU; a single slice gives y + (sum + b). */
void bmc__outer(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o);

/* Pack nb rows of w ([nb, kc] with row stride ldw) into slivers of 32:
 * bp[s][k][j] = w[s * 32 + j, k], zero for rows beyond nb. bp holds
 * ceil(nb / 32) * 32 * kc floats (64-byte aligned is fastest). */
void bmc__pack_w(const float *w, size_t ldw, int nb, int kc, float *bp);

#endif
#endif /* BMC_KERNELS_H */
