/* ops.h - the tensor core: the few operations the two towers are made of. Activations are
 * row-major [rows, cols] float matrices; a Linear weight is PyTorch's [out, in]. */
#ifndef BMC_OPS_H
#define BMC_OPS_H

#include <stddef.h>

#include "pool.h"

/* A Linear layer's weight W [N, K] as the file stores it (format.h, BMC__LAYOUT_PANEL64):
 * ceil(N / 64) panels [K][64], panel p holding outputs 64p .. 64p + 63 (zeros past N). Used in
 * place from the mapping. */
typedef struct bmc__panels {
    const float *p; /* [ceil(N / 64)][K][64] */
    int N, K;
} bmc__panels;

/* Floats that the panels of an [N, K] weight take. */
size_t bmc__panel_floats(int N, int K);
/* Lay out a row-major [N, K] weight (row stride ldw) as panels (tests, benchmarks; the
 * converter does the same for the model file). */
void bmc__panel_pack(const float *w, int N, int K, size_t ldw, float *panels);

/* Y[M, N] = X[M, K] W[n0 .. n0+N-1, :]^T (+ b[N] if b): outputs n0 .. n0 + N - 1 of w, with
 * b and y pointing at output n0's bias and column. The tasks are spread over `pool` (NULL:
 * the caller alone). Every Linear layer goes through here (gemm.c: an AVX-512 kernel, else
 * OpenBLAS). With AVX-512 the summation order depends on nothing but K, so a row's result is
 * the same whatever M, the rows around it and the number of threads. ldx, ldy are row
 * strides. flags: */
#define BMC__GEMM_ACC 1  /* y = y + (X W^T + b): add into what y holds (a residual)        */
#define BMC__GEMM_GELU 2 /* y = GELU(X W^T + b) (not with BMC__GEMM_ACC)                    */
void bmc__gemm(bmc__pool *pool, const float *x, int M, int ldx, bmc__panels w, int n0, int N,
               const float *b, float *y, int ldy, int flags);

/* bmc__gemm of all of w's outputs, without a pool or flags. */
void bmc__linear(const float *x, int M, int ldx, bmc__panels w, const float *b, float *y, int ldy);

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
 * sequences whose rows lie one after another: sequence s has lens[s] rows (or len rows each
 * when lens is NULL). Row r of the keys is k + r * ldk, likewise v; each head h uses columns
 * h*D .. h*D+D-1 of q, k, v and out (D = W / heads). out = softmax(scale * q k^T) v per head.
 * cls_only: only the first row of each sequence is a query; its query row is q + s * ldq and
 * its output row out + s * ldo (the last layer of a tower, whose output is the class token).
 * Per-thread scratch: the pool's, or `scratch` (bmc__attention_scratch floats) without one. */
typedef struct bmc__attn {
    bmc__pool *pool;
    const float *q, *k, *v;
    int ldq, ldk, ldv;
    float *out;
    int ldo;
    int n_seq;
    const int *lens; /* [n_seq] or NULL */
    int len;         /* rows per sequence when lens is NULL */
    int cls_only;
    int W, heads;
    float scale;
    float *scratch;  /* used when pool is NULL */
} bmc__attn;
void bmc__attention(const bmc__attn *a);

/* Floats of scratch one thread needs for sequences of up to max_len rows. */
size_t bmc__attention_scratch(int max_len, int head_dim);

/* Y = LayerNorm(X) (as bmc__layernorm) with the rows spread over the pool; row strides ldx, ldy. */
void bmc__layernorm_rows(bmc__pool *pool, const float *x, int ldx, float *y, int ldy, int M,
                         int N, const float *w, const float *b, float eps);

/* x[i] += y[i] */
void bmc__add(float *x, const float *y, size_t n);

/* Scale each of M rows of length N to unit L2 norm (max(norm, 1e-12), as F.normalize). */
void bmc__l2_normalize_rows(float *x, int M, int N);

#endif /* BMC_OPS_H */
