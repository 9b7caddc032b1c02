/* ops.h - the tensor core: the few operations the two towers are made of. Activations are
 * row-major [rows, cols] float matrices; a Linear weight is PyTorch's [out, in]. */
#ifndef BMC_OPS_H
#define BMC_OPS_H

#include <stddef.h>

/* Y[M, N] = X[M, K] W[N, K]^T (+ b[N] if b) — every matrix product goes through here (OpenBLAS,
 * or a hand-written kernel for thin M where that measures faster). ldx/ldy are row strides. */
void bmc__linear(const float *x, int M, int K, int ldx, const float *w, const float *b, int N,
                 float *y, int ldy);

/* y = LayerNorm(x) * w + b over each of M rows of length N (biased variance; in place allowed). */
void bmc__layernorm(const float *x, float *y, int M, int N, const float *w, const float *b, float eps);

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place over n values. */
void bmc__gelu(float *x, size_t n);

/* In-place softmax over each of M rows of length N. */
void bmc__softmax_rows(float *x, int M, int N);

/* Multi-head self-attention for one sequence of L tokens.
 * qkv: [L, ld] with Q at column 0, K at column W, V at column 2W, where W = heads * 64-ish
 * (head_dim = W / heads). out: [L, W] (row stride ldo). scratch: at least L * L floats.
 * scale multiplies q.k. No masking (the text tower runs only real tokens). */
void bmc__attention(const float *qkv, int L, int ld, int W, int heads, float scale, float *out,
                    int ldo, float *scratch);

/* x[i] += y[i] */
void bmc__add(float *x, const float *y, size_t n);

/* Scale each of M rows of length N to unit L2 norm (max(norm, 1e-12), as F.normalize). */
void bmc__l2_normalize_rows(float *x, int M, int N);

#endif /* BMC_OPS_H */
