/* attention.c - multi-head self-attention over a batch of sequences (ops.h, bmc__attention).
 *
 * One pool task per (sequence, head). A task packs the head's keys once (K^T in slivers of
 * BMC__KERN_NR keys, kernels.h), then goes through the queries BMC__KERN_MR rows at a time:
 * scores S = Q K^T (outer-product tiles), scale and softmax each row, and O = S V, where the
 * value rows are read in place as the second operand of the same tiles. Only one block of
 * score rows exists at a time, so the scratch is small and private to the thread: a ViT
 * image's 197 x 197 scores per head never leave L1/L2.
 *
 * The tiles and the packing are the kernel level's (cpu.h: AVX-512 or AVX2 + FMA, the same
 * layout and order of summation). At the portable level the products go to OpenBLAS, block by
 * block the same way (blocks of QB queries, scratch sized for NR-padded keys at every level). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <cblas.h>

#include "cpu.h"
#include "kernels.h"
#include "ops.h"
#include "pool.h"
#include "profile.h"

#define QB BMC__KERN_MR /* queries per block (the tile height) */
#define NR BMC__KERN_NR /* keys per packed sliver */

static size_t padnr(size_t n) { return (n + NR - 1) / NR * NR; }

size_t bmc__attention_scratch(int max_len, int head_dim) {
    size_t L = padnr((size_t)(max_len > 0 ? max_len : 1));
    return L * (size_t)head_dim + QB * L;
}

/* first row of sequence s (O(s); a chunk has at most a few thousand sequences) */
static size_t seq_start(const bmc__attn *a, int s) {
    if (!a->lens) return (size_t)s * a->len;
    size_t off = 0;
    for (int i = 0; i < s; i++) off += (size_t)a->lens[i];
    return off;
}

static void attention_task(void *arg, int task, int thread) {
    const bmc__attn *a = arg;
    int s = task / a->heads, h = task % a->heads, D = a->k.cols / a->heads;
    size_t off = seq_start(a, s);
    int L = a->lens ? a->lens[s] : a->len;
    size_t Lp = padnr((size_t)L);
    size_t ldq = (size_t)a->q.ld, ldk = (size_t)a->k.ld, ldv = (size_t)a->v.ld;
    size_t ldo = (size_t)a->out.ld;
    const float *k = a->k.p + off * ldk + (size_t)h * D;
    const float *v = a->v.p + off * ldv + (size_t)h * D;
    /* queries: every row, or the first row only (its query and output are row s) */
    int nq = a->cls_only ? 1 : L;
    size_t qrow = a->cls_only ? (size_t)s : off;
    const float *q = a->q.p + qrow * ldq + (size_t)h * D;
    float *out = a->out.p + qrow * ldo + (size_t)h * D;
    float *scratch = a->pool ? bmc__pool_scratch(a->pool, thread) : a->scratch;
    float *S = scratch + Lp * (size_t)D; /* [QB, Lp] scores of a block of queries */

    const bmc__kernels *kern = bmc__kern();
    if (kern->outer) {
        float *kp = scratch; /* [Lp / NR][D][NR] packed keys */
        kern->pack_w(k, ldk, L, D, kp);
        bmc__tile_out o = {0}; /* plain stores, no bias */
        o.first = o.last = 1;
        for (int i0 = 0; i0 < nq; i0 += QB) {
            int mr = nq - i0 < QB ? nq - i0 : QB;
            const float *qi = q + (size_t)i0 * ldq;
            o.ldy = Lp;
            for (int j = 0; j < L; j += NR) {
                o.y = S + j;
                o.ncols = L - j < NR ? L - j : NR;
                kern->outer(mr, qi, ldq, kp + (size_t)j * D, NR, D, &o);
            }
            for (int r = 0; r < mr; r++) bmc__softmax_scaled(S + (size_t)r * Lp, L, a->scale);
            o.ldy = ldo;
            for (int d = 0; d < D; d += NR) {
                o.y = out + (size_t)i0 * ldo + d;
                o.ncols = D - d < NR ? D - d : NR;
                kern->outer(mr, S, Lp, v + d, ldv, L, &o);
            }
        }
    } else {
        for (int i0 = 0; i0 < nq; i0 += QB) {
            int mr = nq - i0 < QB ? nq - i0 : QB;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mr, L, D, a->scale,
                        q + (size_t)i0 * ldq, (int)ldq, k, (int)ldk, 0.0f, S, (int)Lp);
            for (int r = 0; r < mr; r++) bmc__softmax_rows(S + (size_t)r * Lp, 1, L);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mr, D, L, 1.0f, S, (int)Lp, v,
                        (int)ldv, 0.0f, out + (size_t)i0 * ldo, (int)ldo);
        }
    }
}

void bmc__attention(const bmc__attn *a) {
    if (a->n_seq <= 0) return;
    BMC__PROF_BEGIN(t0);
    bmc__pool_run(a->pool, attention_task, (void *)a, a->n_seq * a->heads);
    BMC__PROF_END(BMC__PROF_ATTENTION, t0);
}
