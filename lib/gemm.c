/* gemm.c - Y = X W^T (+ b), the product every Linear layer is (ops.h, bmc__gemm).
 *
 * W comes from the file mapping as the converter laid it out (format.h): panels of 64 outputs,
 * each a contiguous [K][64] block, which is exactly the sliver the outer-product tiles of
 * tiles.c read. So nothing is packed or copied at run time, and a panel streams from memory as
 * one sequential run (row-major weights gave 6 or 64 interleaved short streams, and left the
 * thin products of a short text waiting on memory: docs/PERF.md).
 *
 * One pool task per panel (for bfloat16 weights at avx512_bf16, up to 4 panels: their tiles
 * share one rounding of X): for each K slice of up to 768, 6 x 64 tiles go down the rows of X
 * (a slice is 192 KB, kept in L2 while X streams through). Every product, whatever M, runs the
 * same tiles with the same order of summation, so a row's result does not depend on the batch
 * it is in or on the number of threads. While a slice is in use, its tiles prefetch what this
 * thread reads next (the next slice, or the first slice of the panel it is likely to take
 * next): with few rows, where the product is a stream of weights, all of it into L1, spread
 * evenly over the slice's tiles; with many, into L2 and only by the last tiles, since lines
 * fetched earlier would be pushed out of L2 again by the rows of X.
 * BMC__GEMM_ACC folds the residual add in (y + (X W^T + b), PyTorch's order when K is one
 * slice), BMC__GEMM_GELU the activation (applied to each panel's block once it is final).
 *
 * The tiles are those of the kernel level in use (cpu.h): AVX-512 (tiles.c) or AVX2 + FMA
 * (tiles_avx2.c), the same layout and order of summation. At the portable level each panel is
 * an OpenBLAS product (its own threads), then the same epilogue; 16-bit weights are widened
 * there 256 rows of k at a time (SSE2), several panels side by side for one OpenBLAS call when
 * X has many rows (gemm_task_widen_blas). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "cpu.h"
#include "format.h"
#include "kernels.h"
#include "ops.h"
#include "pool.h"
#include "profile.h"

#define PANEL BMC__PANEL /* outputs per panel */

/* One bmc__gemm call, shared by its tasks (one per panel it touches). */
typedef struct gemm_job {
    const float *x;  /* [M, K], row stride ldx */
    bmc__panels w;
    int n0, N;       /* outputs n0 .. n0 + N - 1 of w */
    int p0;          /* the first panel: n0 / 64 */
    const float *b;  /* [N] (output n0 first) or NULL */
    float *y;        /* [M, N] (output n0 first), row stride ldy */
    int M, ldx, ldy, flags;
    int threads;     /* the pool's */
    const bmc__kernels *kern; /* the level's tiles */
    bmc__outer16_fn outer16;  /* the level's tiles for w's 16-bit type, or NULL */
    int group;       /* panels per task (gemm_task_tiles, gemm_task_widen_blas) */
    size_t esize;    /* bytes of a weight element */
    bmc__pool *pool; /* for its threads' scratch (gemm_task_widen_blas) */
} gemm_job;

/* The first element of panel p of w. */
static const char *panel_at(const gemm_job *g, int p) {
    return (const char *)g->w.p + (size_t)p * g->w.K * PANEL * g->esize;
}

/* Columns c0 .. c1 - 1 of panel p that belong to the job's outputs. */
static void panel_cols(const gemm_job *g, int p, int *c0, int *c1) {
    int lo = g->n0 - p * PANEL, hi = g->n0 + g->N - p * PANEL;
    *c0 = lo > 0 ? lo : 0;
    *c1 = hi < PANEL ? hi : PANEL;
}

/* The block of y that panel p writes: its columns c0 .. c0 + nc - 1 in the panel, at y and
 * with the bias b of its first output. */
typedef struct out_block {
    int c0, nc, acc;
    float *y;
    const float *b;
} out_block;

static out_block out_block_of(const gemm_job *g, int p) {
    int c0, c1;
    panel_cols(g, p, &c0, &c1);
    int j0 = p * PANEL + c0 - g->n0;
    out_block ob = {c0, c1 - c0, (g->flags & BMC__GEMM_ACC) != 0, g->y + j0, g->b ? g->b + j0 : NULL};
    return ob;
}

#define MR BMC__KERN_MR /* rows of X per tile */
#define KC BMC__KERN_KC  /* K slice */
_Static_assert(BMC__KERN_NR == PANEL, "a tile is one panel wide");

/* Where the tiles of one panel over one K slice prefetch what this thread reads next (the
 * panel's next slice, or the first slice of the panel it is likely to take next), and how that
 * run of lines is spread over the slice's tiles. */
typedef struct pf_plan {
    const char *pf; /* the next line to prefetch */
    int lines;      /* lines still to prefetch */
    int start;      /* the first tile that prefetches */
    int per_tile;   /* lines per tile */
    int per4, l1;   /* bmc__tile_out.pf_per4, pf_l1 */
} pf_plan;

static pf_plan pf_plan_for(const gemm_job *g, const char *panel, int next_p, int k0, int kc,
                           int tiles) {
    int K = g->w.K, last_p = (g->n0 + g->N - 1) / PANEL;
    size_t es = g->esize, line_per_k = PANEL * es / 64; /* 64-byte lines per step of k */
    pf_plan pl = {NULL, 0, 0, 0, 1, 0};
    if (k0 + kc < K) {
        pl.pf = panel + (size_t)(k0 + kc) * PANEL * es;
        pl.lines = (int)((K - k0 - kc < KC ? K - k0 - kc : KC) * line_per_k);
    } else if (next_p <= last_p) {
        pl.pf = panel_at(g, next_p);
        pl.lines = (int)((K < KC ? K : KC) * line_per_k);
    }
    /* a line every 4 steps fits it into the last `need` tiles; if even all the tiles are too
     * few at that rate, all of them share it at the rate it takes, into L1 */
    int groups = kc / 4 > 0 ? kc / 4 : 1;
    int need = (pl.lines + groups - 1) / groups;
    pl.start = tiles - need, pl.per_tile = groups;
    if (pl.start < 0) {
        pl.start = 0;
        pl.per_tile = (pl.lines + tiles - 1) / tiles;
        pl.per4 = (pl.per_tile + groups - 1) / groups;
        pl.l1 = 1;
    }
    return pl;
}

/* Tile t's share of the plan, into o. */
static void pf_take(pf_plan *pl, int t, bmc__tile_out *o) {
    o->pf = o->pf_end = NULL;
    o->pf_per4 = pl->per4, o->pf_l1 = pl->l1;
    if (t >= pl->start && pl->lines > 0) {
        int n = pl->lines < pl->per_tile ? pl->lines : pl->per_tile;
        o->pf = pl->pf, o->pf_end = pl->pf + (size_t)n * 64;
        pl->pf += (size_t)n * 64, pl->lines -= n;
    }
}

#define GMAX 4 /* the most panels a task takes (bmc__kernels.group16) */

/* Task `task`: panels p0 + task * group .. (up to `group` of them). For each K slice the 6 x 64
 * tiles go down the rows of X, each row tile through every panel of the task (a bfloat16 tile
 * rounds the rows once, into xb, for all of them); each output is one tile's, so the result does
 * not depend on the grouping. */
static void gemm_task_tiles(void *arg, int task, int thread) {
    (void)thread;
    const gemm_job *g = arg;
    int M = g->M, K = g->w.K, last_p = (g->n0 + g->N - 1) / PANEL;
    int pa = g->p0 + task * g->group, np = last_p - pa + 1 < g->group ? last_p - pa + 1 : g->group;
    size_t es = g->esize, ldx = (size_t)g->ldx, ldy = (size_t)g->ldy;
    int tiles = (M + MR - 1) / MR;
    uint32_t xb[MR * (KC / 2)] __attribute__((aligned(64)));
    bmc__tile_out o[GMAX];
    const char *panel[GMAX];
    int c0[GMAX];
    for (int q = 0; q < np; q++) {
        int c1, p = pa + q;
        panel_cols(g, p, &c0[q], &c1);
        panel[q] = panel_at(g, p);
        int j0 = p * PANEL + c0[q] - g->n0; /* the first output column of this panel in y */
        memset(&o[q], 0, sizeof o[q]);
        o[q].ldy = ldy;
        o[q].acc = (g->flags & BMC__GEMM_ACC) != 0;
        o[q].ncols = c1 - c0[q];
        o[q].b = g->b ? g->b + j0 : NULL;
        o[q].y = g->y + j0;
        o[q].xb = xb;
    }
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        pf_plan pl[GMAX];
        const char *slice[GMAX];
        for (int q = 0; q < np; q++) {
            /* tasks go in order: this thread's next task is likely `threads` tasks on */
            pl[q] = pf_plan_for(g, panel[q], pa + q + g->group * g->threads, k0, kc, tiles);
            slice[q] = panel[q] + ((size_t)k0 * PANEL + (size_t)c0[q] * (g->w.wt == BMC__W_BF16 ? 2 : 1)) * es;
            o[q].first = k0 == 0;
            o[q].last = k0 + kc == K;
        }
        for (int t = 0, m = 0; t < tiles; t++, m += MR) {
            int mr = M - m < MR ? M - m : MR;
            const float *xs = g->x + (size_t)m * ldx + k0;
            for (int q = 0; q < np; q++) {
                bmc__tile_out ot = o[q];
                pf_take(&pl[q], t, &ot);
                ot.y += (size_t)m * ldy;
                ot.xb_ready = q > 0;
                if (g->outer16) g->outer16(mr, xs, ldx, (const uint16_t *)slice[q], kc, &ot);
                else g->kern->outer(mr, xs, ldx, (const float *)slice[q], PANEL, kc, &ot);
            }
        }
    }
    /* GELU once the block is final, a row at a time: fused into the tiles' epilogue it was
     * slower (docs/PERF.md) */
    if (g->flags & BMC__GEMM_GELU)
        for (int q = 0; q < np; q++) bmc__gelu_rows(o[q].y, ldy, M, (size_t)o[q].ncols);
}

/* 16-bit weights without tiles for them (the portable level, or a view whose first column is
 * not a multiple of 16 within its panel): rows k0 .. k0 + kb - 1 of a panel widened to float,
 * then the float product of the level, block after block of KB rows of k. */

/* IEEE half -> float, exactly: the exponent and mantissa bits moved into a float and rebiased
 * by a multiply by 2^112 (exact, subnormal halves included); infinities and NaNs set apart. */
static float half_to_float(uint16_t h) {
    uint32_t u = (uint32_t)(h & 0x7fff) << 13;
    float f;
    memcpy(&f, &u, 4);
    f *= 0x1p112f;
    memcpy(&u, &f, 4);
    if ((h & 0x7c00) == 0x7c00) u = 0x7f800000u | (uint32_t)(h & 0x3ff) << 13;
    u |= (uint32_t)(h & 0x8000) << 16;
    memcpy(&f, &u, 4);
    return f;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* half_to_float on 4 halves, each in the high 16 bits of its 32-bit lane, the same operations
 * without a branch: SSE2 is all the portable level may assume (no F16C), and the scalar loop
 * made the widening cost more than the product it feeds (docs/PERF.md). An infinity or NaN
 * (exponent 31) comes out of the multiply with exponent 143 and the same mantissa bits, so
 * or-ing in 0x7f800000 gives what half_to_float sets apart. */
static inline __m128 half4_to_float(__m128i v) {
    __m128i sign = _mm_and_si128(v, _mm_set1_epi32((int)0x80000000u));
    __m128i u = _mm_srli_epi32(_mm_slli_epi32(v, 1), 4); /* (h & 0x7fff) << 13 */
    __m128i f = _mm_castps_si128(_mm_mul_ps(_mm_castsi128_ps(u), _mm_set1_ps(0x1p112f)));
    __m128i special = _mm_cmpgt_epi32(u, _mm_set1_epi32(0x0f7fffff));
    f = _mm_or_si128(f, _mm_and_si128(special, _mm_set1_epi32(0x7f800000)));
    return _mm_castsi128_ps(_mm_or_si128(f, sign));
}
#endif

/* Rows k0 .. k0 + kb - 1 of a panel (all 64 columns) widened into dst, row stride ldd floats. */
static void widen_rows(bmc__wtype wt, const uint16_t *panel, int k0, int kb, float *dst, size_t ldd) {
    for (int k = 0; k < kb;) {
        int kk = k0 + k;
        float *d = dst + (size_t)k * ldd;
#if defined(__SSE2__)
        if (wt == BMC__W_F16) {
            const uint16_t *s = panel + (size_t)kk * PANEL;
            __m128i zero = _mm_setzero_si128();
            for (int j = 0; j < PANEL; j += 8) {
                __m128i h = _mm_loadu_si128((const __m128i *)(s + j));
                _mm_storeu_ps(d + j, half4_to_float(_mm_unpacklo_epi16(zero, h)));
                _mm_storeu_ps(d + j + 4, half4_to_float(_mm_unpackhi_epi16(zero, h)));
            }
            k++;
            continue;
        }
        if (kk % 2 == 0 && k + 1 < kb) {
            /* a row of pairs: k in the low half of each 32-bit pair, k + 1 in the high half */
            const uint16_t *s = panel + (size_t)kk * PANEL;
            __m128i hi = _mm_set1_epi32((int)0xffff0000u);
            for (int j = 0; j < PANEL; j += 4) {
                __m128i v = _mm_loadu_si128((const __m128i *)(s + 2 * j));
                _mm_storeu_ps(d + j, _mm_castsi128_ps(_mm_slli_epi32(v, 16)));
                _mm_storeu_ps(d + ldd + j, _mm_castsi128_ps(_mm_and_si128(v, hi)));
            }
            k += 2;
            continue;
        }
#endif
        for (int j = 0; j < PANEL; j++) {
            if (wt == BMC__W_F16) {
                d[j] = half_to_float(panel[(size_t)kk * PANEL + j]);
            } else {
                uint32_t u = (uint32_t)panel[(size_t)(kk / 2) * 2 * PANEL + 2 * j + kk % 2] << 16;
                memcpy(&d[j], &u, 4);
            }
        }
        k++;
    }
}

static void add_bias(float *y, size_t ldy, int M, int N, const float *b);

#define KB 256 /* rows of k widened at a time: 64 KB of stack for a panel */

/* At a tiled level: one panel, KB rows of k at a time on the stack, the level's float tiles. */
static void gemm_task_widen(void *arg, int task, int thread) {
    (void)thread;
    const gemm_job *g = arg;
    int M = g->M, K = g->w.K, p = g->p0 + task;
    out_block ob = out_block_of(g, p);
    float wbuf[KB * PANEL] __attribute__((aligned(64)));
    bmc__tile_out o;
    memset(&o, 0, sizeof o);
    o.ldy = (size_t)g->ldy, o.acc = ob.acc, o.ncols = ob.nc, o.b = ob.b;
    for (int k0 = 0; k0 < K; k0 += KB) {
        int kb = K - k0 < KB ? K - k0 : KB;
        widen_rows(g->w.wt, (const uint16_t *)panel_at(g, p), k0, kb, wbuf, PANEL);
        o.first = k0 == 0, o.last = k0 + kb == K;
        for (int m = 0; m < M; m += MR) {
            o.y = ob.y + (size_t)m * g->ldy;
            g->kern->outer(M - m < MR ? M - m : MR, g->x + (size_t)m * g->ldx + k0,
                           (size_t)g->ldx, wbuf + ob.c0, PANEL, kb, &o);
        }
    }
    if (g->flags & BMC__GEMM_GELU) bmc__gelu_rows(ob.y, (size_t)g->ldy, M, (size_t)ob.nc);
}

/* Panels widened side by side for one OpenBLAS call at the portable level, when X has at least
 * WIDEN_GROUP_MIN_ROWS rows: each call packs X again, which fewer, wider calls save (5-8% of a
 * product with 197 rows and more). With fewer rows a 256 x 64 block alone was faster (up to
 * 1.5x; OpenBLAS's path for small products, presumably: docs/PERF.md). */
#define WIDEN_GROUP 12
#define WIDEN_GROUP_MIN_ROWS 64

size_t bmc__gemm_widen_floats(void) { return (size_t)KB * PANEL * WIDEN_GROUP; }

/* At the portable level: a group of g->group panels (one if the thread has no scratch for
 * more), KB rows of k of each widened side by side, then one OpenBLAS product per KB rows: the
 * blocks of k of one panel at a time, added into y in the same order (the same bits with most of
 * OpenBLAS's kernels, within 1e-6 with the others: docs/PERF.md). */
static void gemm_task_widen_blas(void *arg, int task, int thread) {
    const gemm_job *g = arg;
    int M = g->M, K = g->w.K, last_p = (g->n0 + g->N - 1) / PANEL;
    int pa = g->p0 + task * g->group, pb = pa + g->group - 1;
    if (pb > last_p) pb = last_p;
    out_block ob = out_block_of(g, pa), oe = out_block_of(g, pb);
    int nc = (pb - pa) * PANEL + oe.c0 + oe.nc - ob.c0, acc = ob.acc;
    size_t ldw = (size_t)(pb - pa + 1) * PANEL, ldy = (size_t)g->ldy;
    float stack[KB * PANEL] __attribute__((aligned(64)));
    float *wbuf = pb > pa ? bmc__pool_scratch(g->pool, thread) : stack;
    /* With BMC__GEMM_ACC the bias goes in first, as gemm_task_blas */
    if (acc) add_bias(ob.y, ldy, M, nc, ob.b);
    for (int k0 = 0; k0 < K; k0 += KB) {
        int kb = K - k0 < KB ? K - k0 : KB;
        for (int p = pa; p <= pb; p++)
            widen_rows(g->w.wt, (const uint16_t *)panel_at(g, p), k0, kb,
                       wbuf + (size_t)(p - pa) * PANEL, ldw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, nc, kb, 1.0f, g->x + k0,
                    g->ldx, wbuf + ob.c0, (int)ldw, k0 == 0 && !acc ? 0.0f : 1.0f, ob.y, g->ldy);
    }
    if (!acc) add_bias(ob.y, ldy, M, nc, ob.b);
    if (g->flags & BMC__GEMM_GELU) bmc__gelu_rows(ob.y, ldy, M, (size_t)nc);
}

/* portable: each panel an OpenBLAS product (its own threads), then the epilogue */

static void add_bias(float *y, size_t ldy, int M, int N, const float *b) {
    if (!b) return;
    for (int i = 0; i < M; i++) {
        float *row = y + (size_t)i * ldy;
        for (int j = 0; j < N; j++) row[j] += b[j];
    }
}

static void gemm_task_blas(void *arg, int task, int thread) {
    (void)thread;
    const gemm_job *g = arg;
    int M = g->M, K = g->w.K, p = g->p0 + task;
    out_block ob = out_block_of(g, p);
    int c0 = ob.c0, nc = ob.nc, acc = ob.acc;
    float *y = ob.y;
    const float *b = ob.b;
    /* With BMC__GEMM_ACC: y + b + X W^T, the residual and bias first, then the product added
     * by the GEMM (beta = 1), since there is no room for the product alone; ~1 ulp from
     * PyTorch's y + (X W^T + b). Otherwise X W^T, then + b. */
    if (acc) add_bias(y, (size_t)g->ldy, M, nc, b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, nc, K, 1.0f, g->x, g->ldx,
                (const float *)panel_at(g, p) + c0, PANEL, acc ? 1.0f : 0.0f, y, g->ldy);
    if (!acc) add_bias(y, (size_t)g->ldy, M, nc, b);
    if (g->flags & BMC__GEMM_GELU) bmc__gelu_rows(y, (size_t)g->ldy, M, (size_t)nc);
}

/* Panels per task, up to gmax: the most that gives every thread the same number of tasks, else
 * the most that gives each at least 8 (where one task more weighs little), else 1. */
static int task_group(int panels, int threads, int gmax) {
    if (gmax > GMAX) gmax = GMAX;
    for (int pass = 0; pass < 2; pass++)
        for (int gr = gmax; gr > 1; gr--) {
            int tasks = (panels + gr - 1) / gr;
            if (pass == 0 ? tasks % threads == 0 : tasks >= 8 * threads) return gr;
        }
    return 1;
}

void bmc__gemm(bmc__pool *pool, bmc__mat y, bmc__mat x, bmc__panels w, const float *b, int flags) {
    if (x.rows <= 0 || w.N <= 0) return;
    BMC__PROF_BEGIN(t0);
    gemm_job g;
    memset(&g, 0, sizeof g);
    g.x = x.p, g.w = w, g.n0 = w.n0, g.N = w.N, g.p0 = w.n0 / PANEL, g.b = b, g.y = y.p;
    g.M = x.rows, g.ldx = x.ld, g.ldy = y.ld, g.flags = flags;
    g.threads = bmc__pool_threads(pool);
    g.kern = bmc__kern();
    g.esize = bmc__wsize(w.wt);
    bmc__task_fn task = g.kern->outer ? gemm_task_tiles : gemm_task_blas;
    int panels = (w.n0 + w.N - 1) / PANEL - g.p0 + 1;
    g.group = 1;
    if (w.wt != BMC__W_F32 && !g.kern->outer) {
        /* as many panels per task as the threads' scratch holds (up to WIDEN_GROUP), spread
         * evenly */
        size_t fit = bmc__pool_scratch_floats(pool) / ((size_t)KB * PANEL);
        int most = fit < WIDEN_GROUP ? (int)fit : WIDEN_GROUP;
        if (most < 1 || g.M < WIDEN_GROUP_MIN_ROWS) most = 1;
        int n = (panels + most - 1) / most;
        g.group = (panels + n - 1) / n, g.pool = pool, task = gemm_task_widen_blas;
    } else if (w.wt != BMC__W_F32) {
        g.outer16 = g.kern->outer16[w.wt];
        if (!g.outer16 || w.n0 % 16) task = gemm_task_widen, g.outer16 = NULL;
        else g.group = task_group(panels, g.threads, g.kern->group16[w.wt]);
    }
    bmc__pool_run(pool, task, &g, (panels + g.group - 1) / g.group);
    BMC__PROF_END(BMC__PROF_GEMM, t0);
}
