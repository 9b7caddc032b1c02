/* kernels.h - the AVX-512 building blocks of gemm.c, shared with attention.c. Only compiled
 * where __AVX512F__ is defined (elsewhere gemm.c and attention.c use OpenBLAS). */
#ifndef BMC_KERNELS_H
#define BMC_KERNELS_H

#include <stddef.h>

#if defined(__AVX512F__)

#ifndef BMC__KERN_MR
#define BMC__KERN_MR 12 /* rows of X per outer-product tile (at most 12)            */
#endif
#ifndef BMC__KERN_NR
#define BMC__KERN_NR 32 /* columns per tile and per packed sliver (16, 32, 48 or 64) */
#endif

/* A walk over the cache lines of rows of memory, to prefetch them a line at a time while a tile
 * computes (a burst of prefetches would mostly be dropped). */
typedef struct bmc__prefetch {
    const char *row;   /* the row being fetched */
    size_t stride;     /* bytes between rows */
    int lines;         /* 64-byte lines per row */
    int col;           /* next line in the row */
    int rows;          /* rows left, this one included; 0: done */
} bmc__prefetch;

/* Where and how an outer-product tile is written (see bmc__outer). */
typedef struct bmc__tile_out {
    float *y;          /* [mr, ncols] block, row stride ldy          */
    size_t ldy;
    const float *b;    /* [ncols] bias added by the last slice, or NULL */
    int ncols;         /* 1..32 valid columns                        */
    int first, last;   /* this K slice is the first / the last one   */
    int acc;           /* the first slice adds to y (a residual)     */
    int gelu;          /* the last slice applies GELU                */
    bmc__prefetch *pf; /* lines to prefetch during the tile (one every 4 steps of k), or NULL */
} bmc__tile_out;

/* Y[i, j] (+)= sum_k x[i * ldx + k] * bp[k * ldb + j] for i < mr (1..MR), j < o->ncols (1..NR),
 * k < kc: bp is a packed sliver of weights (ldb = NR) or any row-major [kc, >= ncols] matrix
 * (attention values); columns beyond ncols are not read. Epilogue: the first slice writes (adds with o->acc), later slices add; the last
 * adds the bias then applies GELU; a single slice gives y + (sum + b). */
void bmc__outer(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o);

/* Pack nb rows of w ([nb, kc] with row stride ldw) into slivers of NR:
 * bp[s][k][j] = w[s * NR + j, k], zero for rows beyond nb. bp holds
 * ceil(nb / NR) * NR * kc floats (64-byte aligned is fastest). */
void bmc__pack_w(const float *w, size_t ldw, int nb, int kc, float *bp);

#endif
#endif /* BMC_KERNELS_H */
