/* kernels.h - the building blocks of the products, used by gemm.c and attention.c through the
 * table of the level in use (cpu.h): AVX-512 (tiles.c) and AVX2 + FMA (tiles_avx2.c), the same
 * interface, panel layout and order of summation at both (at the portable level gemm.c and
 * attention.c use OpenBLAS instead). */
#ifndef BMC_KERNELS_H
#define BMC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

#define BMC__KERN_MR 6  /* rows of X per outer-product tile (6, 8 or 12: tiles.c; 6 at AVX2) */
#define BMC__KERN_NR 64 /* columns per tile and per sliver (tiles.c); a weight panel's width
                           (format.h, BMC__PANEL) */
#define BMC__KERN_KC 768 /* the longest K slice a tile is given (gemm.c) */

/* Where and how an outer-product tile is written (see bmc__outer_avx512). */
typedef struct bmc__tile_out {
    float *y;          /* [mr, ncols] block, row stride ldy          */
    size_t ldy;
    const float *b;    /* [ncols] bias added by the last slice, or NULL */
    int ncols;         /* 1..BMC__KERN_NR valid columns              */
    int first, last;   /* this K slice is the first / the last one   */
    int acc;           /* the first slice adds to y (a residual)     */
    const char *pf, *pf_end; /* memory to prefetch meanwhile (pf_end <= pf: none) ...      */
    int pf_per4;       /* ... this many 64-byte lines every 4 steps of k (0 counts as 1) ... */
    int pf_l1;         /* ... into L1 (1) or L2 (0)                                          */
    /* The tiles that round X to bfloat16 (tiles_bf16.c) keep the rounded rows here, so that the
     * tiles of the next panels of the same rows and K slice reuse them: [mr][BMC__KERN_KC / 2]
     * pairs, or NULL (a buffer of the tile's own). xb_ready: xb already holds them. */
    uint32_t *xb;
    int xb_ready;
} bmc__tile_out;

/* Y[i, j] (+)= sum_k x[i * ldx + k] * bp[k * ldb + j] for i < mr (1..MR), j < o->ncols (1..NR),
 * k < kc, summed in the order of k: bp is a sliver of weights (a slice of a panel, packed
 * keys; ldb = NR) or any row-major [kc, >= ncols] matrix (attention values); columns beyond
 * ncols are not read. Epilogue: the first K slice writes (with o->acc it adds to what y holds),
 * later slices add, the last adds the bias; a single slice gives y + (sum + b), PyTorch's order
 * for a residual. */
void bmc__outer_avx512(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o);

/* Pack nb rows of w ([nb, kc] with row stride ldw) into slivers of NR:
 * bp[s][k][j] = w[s * NR + j, k], zero for rows beyond nb. bp holds
 * ceil(nb / NR) * NR * kc floats (64-byte aligned is fastest). */
void bmc__pack_w_avx512(const float *w, size_t ldw, int nb, int kc, float *bp);

/* The same at the AVX2 + FMA level (tiles_avx2.c): a 6 x 16 tile (12 ymm accumulators) walked
 * over the column blocks of the sliver, every block over all of kc, so each output is the same
 * chain of fused multiply-adds in the order of k as at the AVX-512 level. */
void bmc__outer_avx2(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                     const bmc__tile_out *o);
void bmc__pack_w_avx2(const float *w, size_t ldw, int nb, int kc, float *bp);

/* The product with 16-bit weights (bmc__wtype, ops.h): bp points into a weight panel at the
 * first element of slice row k0 and column c0 (c0 a multiple of 16), in the panel's layout:
 * F16 [kc][64] halves, BF16 [kc / 2][64][2] (kc even). Whole vectors of 16 columns are read,
 * which stay inside the panel; only the o->ncols columns are written, with the epilogue above.
 * F16 and BF16 ("w": widened) convert the weights to float in registers and run the chain of
 * FMAs of the float tiles in the order of k (so the result is that of the float kernel on the
 * widened weights); BF16 "dp" rounds X to bfloat16 too (into o->xb unless o->xb_ready) and sums
 * pairs with vdpbf16ps. */
typedef void (*bmc__outer16_fn)(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                                const bmc__tile_out *o);
void bmc__outer_f16_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                           const bmc__tile_out *o);
void bmc__outer_bf16w_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                             const bmc__tile_out *o);
void bmc__outer_bf16dp_avx512(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                              const bmc__tile_out *o);
void bmc__outer_f16_avx2(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                         const bmc__tile_out *o);
void bmc__outer_bf16w_avx2(int mr, const float *x, size_t ldx, const uint16_t *bp, int kc,
                           const bmc__tile_out *o);

#endif /* BMC_KERNELS_H */
