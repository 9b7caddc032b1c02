/* ops.h - the tensor core: the few operations the two towers are made of (products: gemm.c,
 * attention: attention.c, the element-wise rest: ops.c). Activations are row-major
 * [rows, cols] float matrices (bmc__mat); a Linear weight is PyTorch's [out, in]. */
#ifndef BMC_OPS_H
#define BMC_OPS_H

#include <stddef.h>

#include "pool.h"

/* n rounded up to a multiple of 16 floats (64 bytes): every part of a scratch plan is aligned. */
static inline size_t bmc__align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* A matrix view: rows x cols floats, element (r, c) at p[r * ld + c]. Views name the operands
 * of the products and of attention, so that a call reads as the maths does. */
typedef struct bmc__mat {
    float *p;
    int rows, cols, ld;
} bmc__mat;

/* The view of p as [rows, cols] with row stride ld (const data is viewed, never written). */
static inline bmc__mat bmc__mat_of(const float *p, int rows, int cols, int ld) {
    bmc__mat m = {(float *)p, rows, cols, ld};
    return m;
}

/* Columns c0 .. c0 + cols - 1 of every row of m. */
static inline bmc__mat bmc__mat_cols(bmc__mat m, int c0, int cols) {
    return bmc__mat_of(m.p + c0, m.rows, cols, m.ld);
}

/* Element types of a weight's panels (the file's dtype: format.h). */
typedef enum bmc__wtype {
    BMC__W_F32 = 0,  /* float32: panels [K][64]                                       */
    BMC__W_F16 = 1,  /* IEEE half: panels [K][64], widened to float in registers       */
    BMC__W_BF16 = 2  /* bfloat16: panels [K / 2][64][2], the two values of k and k + 1
                        side by side (the operand order of vdpbf16ps), K even         */
} bmc__wtype;

/* A Linear layer's weight [N, K] as the file stores it (format.h, BMC__LAYOUT_PANEL64 and
 * BMC__LAYOUT_PANEL64X2): ceil(N / 64) panels of K x 64 elements, panel p holding outputs
 * 64p .. 64p + 63 (zeros past N), used in place from the mapping. A view may cover only outputs
 * n0 .. n0 + N - 1 of the panels at p. In every type the elements of k = k0 .. K - 1 of a panel
 * start at element k0 * 64 of it (k0 even for bf16). */
typedef struct bmc__panels {
    const void *p; /* [ceil((n0 + N) / 64)][K * 64] elements of type wt */
    int N, K;
    int n0;
    bmc__wtype wt;
} bmc__panels;

/* Bytes of one element of a weight of type wt. */
static inline size_t bmc__wsize(bmc__wtype wt) { return wt == BMC__W_F32 ? 4 : 2; }

/* Outputs n0 .. n0 + N - 1 of w. */
static inline bmc__panels bmc__panels_rows(bmc__panels w, int n0, int N) {
    bmc__panels v = {w.p, N, w.K, w.n0 + n0, w.wt};
    return v;
}

/* y[M, N] = x[M, K] w^T (+ b[N] if b), M = x.rows, N = w.N, K = w.K; b is the bias of w's first
 * output. Spread over `pool` (NULL: the caller alone). Every Linear layer goes through here
 * (gemm.c: the tiles of the kernel level, else OpenBLAS). At the tiled levels the summation order
 * depends on nothing but K and the weight type, so a row's result is the same whatever M, the rows around it and the number of
 * threads. flags: */
#define BMC__GEMM_ACC 1  /* y = y + (x w^T + b): add into what y holds (a residual)        */
#define BMC__GEMM_GELU 2 /* y = GELU(x w^T + b) (not with BMC__GEMM_ACC)                    */
void bmc__gemm(bmc__pool *pool, bmc__mat y, bmc__mat x, bmc__panels w, const float *b, int flags);
/* Per-thread scratch (pool.h) with which bmc__gemm widens 16-bit weights several panels at a time
 * where the level has no tiles for them (the portable level); with less (a NULL pool: the unit
 * tests), a panel at a time on the stack, with the same results. */
size_t bmc__gemm_widen_floats(void);

/* y = LayerNorm(x) * w + b over each of M rows of length N (biased variance; in place allowed). */
void bmc__layernorm(const float *x, float *y, int M, int N, const float *w, const float *b, float eps);

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place over n values. */
void bmc__gelu(float *x, size_t n);

/* bmc__gelu over the first n values of each of M rows of y (row stride ldy): a block of a
 * product's outputs, once final. */
void bmc__gelu_rows(float *y, size_t ldy, int M, size_t n);

/* In-place softmax over each of M rows of length N. */
void bmc__softmax_rows(float *x, int M, int N);

/* In-place softmax(scale * r) of one row of N values (the scaled values are rounded to float
 * first, as a product of scaled scores is). */
void bmc__softmax_scaled(float *r, int N, float scale);

/* Multi-head self-attention (no masking: texts run only their real tokens) over n_seq
 * sequences whose rows lie one after another in k and v: sequence s has lens[s] rows (or len
 * rows each when lens is NULL). Head h uses columns h*D .. h*D+D-1 of q, k, v and out
 * (D = W / heads): out = softmax(scale * q k^T) v per head. q and out have the rows of k, or
 * with cls_only one row per sequence: only its first row is a query (the last layer of a tower,
 * whose output is the class token). Per-thread scratch: the pool's, or `scratch`
 * (bmc__attention_scratch floats) without one. */
typedef struct bmc__attn {
    bmc__pool *pool;
    bmc__mat q, k, v, out; /* [rows or n_seq, W] */
    int n_seq;
    const int *lens; /* [n_seq] or NULL */
    int len;         /* rows per sequence when lens is NULL */
    int cls_only;
    int heads;
    float scale;
    float *scratch;  /* used when pool is NULL */
} bmc__attn;
void bmc__attention(const bmc__attn *a);

/* Attention with q, k and v side by side in the rows of qkv [rows, 3W], into out (the sequences
 * are still to be set: n_seq and len or lens). */
static inline bmc__attn bmc__attn_qkv(bmc__pool *pool, bmc__mat qkv, bmc__mat out, int heads,
                                      float scale, float *scratch) {
    int W = qkv.cols / 3;
    bmc__attn a = {pool,  bmc__mat_cols(qkv, 0, W), bmc__mat_cols(qkv, W, W),
                   bmc__mat_cols(qkv, 2 * W, W), out, 0, NULL, 0, 0, heads, scale, scratch};
    return a;
}

/* Floats of scratch one thread needs for sequences of up to max_len rows. */
size_t bmc__attention_scratch(int max_len, int head_dim);

/* y = LayerNorm(x) (as bmc__layernorm) row by row, x.rows rows of x.cols values, the rows
 * spread over the pool. */
void bmc__layernorm_rows(bmc__pool *pool, bmc__mat y, bmc__mat x, const float *w, const float *b,
                         float eps);

/* Scale each of M rows of length N to unit L2 norm (max(norm, 1e-12), as F.normalize). */
void bmc__l2_normalize_rows(float *x, int M, int N);

#endif /* BMC_OPS_H */
