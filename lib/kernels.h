/* kernels.h - the AVX-512 building blocks of the products (gemm.c, gemm_packed.c), shared with
 * attention.c. Only compiled where __AVX512F__ is defined (elsewhere gemm.c and attention.c use
 * OpenBLAS). */
#ifndef BMC_KERNELS_H
#define BMC_KERNELS_H

#include <stddef.h>

#include "pool.h"

#if defined(__AVX512F__)

#define BMC__GEMM_NC 64  /* outputs (rows of W) per task of the packed kernel */
#define BMC__GEMM_KC 768 /* K slice of the packed kernel */

/* One bmc__gemm call, shared by its tasks. */
typedef struct bmc__gemm_job {
    const float *x;  /* [M, K], row stride ldx */
    const float *w;  /* [N, K], row stride ldw */
    const float *b;  /* [N] or NULL */
    float *y;        /* [M, N], row stride ldy */
    int M, N, K, ldx, ldw, ldy, flags;
    int nc;          /* outputs per task */
    int packed;      /* 1: gemm_packed.c's kernel, else the dot tiles */
    bmc__pool *pool;
    int threads;     /* the pool's */
    float *scratch;  /* pack buffer when there is no pool */
} bmc__gemm_job;

/* Task `task` of a packed job: outputs task*nc .. task*nc+nc-1 for every row, packing through
 * bp (BMC__GEMM_NC * BMC__GEMM_KC floats, the thread's scratch). */
void bmc__gemm_packed_task(const bmc__gemm_job *g, int task, float *bp);

#define BMC__KERN_MR 6  /* rows of X per outer-product tile (at most 12)            */
#define BMC__KERN_NR 64 /* columns per tile and per packed sliver (16, 32, 48 or 64) */

/* Where and how an outer-product tile is written (see bmc__outer). */
typedef struct bmc__tile_out {
    float *y;          /* [mr, ncols] block, row stride ldy          */
    size_t ldy;
    const float *b;    /* [ncols] bias added by the last slice, or NULL */
    int ncols;         /* 1..BMC__KERN_NR valid columns              */
    int first, last;   /* this K slice is the first / the last one   */
    int acc;           /* the first slice adds to y (a residual)     */
    const char *pf, *pf_end; /* memory to prefetch into L2 meanwhile (pf_end <= pf: none) */
} bmc__tile_out;

/* Y[i, j] (+)= sum_k x[i * ldx + k] * bp[k * ldb + j] for i < mr (1..MR), j < o->ncols (1..NR),
 * k < kc: bp is a packed sliver of weights (ldb = NR) or any row-major [kc, >= ncols] matrix
 * (attention values); columns beyond ncols are not read. Epilogue: the first K slice writes
 * (with o->acc it adds to what y holds), later slices add, the last adds the bias; a single
 * slice gives y + (sum + b), PyTorch's order for a residual. */
void bmc__outer(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                const bmc__tile_out *o);

/* Pack nb rows of w ([nb, kc] with row stride ldw) into slivers of NR:
 * bp[s][k][j] = w[s * NR + j, k], zero for rows beyond nb. bp holds
 * ceil(nb / NR) * NR * kc floats (64-byte aligned is fastest). */
void bmc__pack_w(const float *w, size_t ldw, int nb, int kc, float *bp);

#endif
#endif /* BMC_KERNELS_H */
