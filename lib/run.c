/* run.c - the scheduler (run.h): chunks, groups, threads and scratch for both towers.
 *
 * A chunk of items runs in one of two ways. Shared: one forward pass whose every product and
 * attention is spread over all the threads of the pool. Grouped: the chunk is cut into one group
 * per thread and each group runs its whole forward pass on its own thread, so that no thread
 * waits for another between the steps of a pass (on a busy machine a descheduled thread would
 * hold up every step), at the price of each thread reading every weight. Grouping pays only when
 * every thread gets enough work; the thresholds are below and their measurements in
 * docs/PERF.md. Either way the results are the same: with AVX-512 a row's products, an item's
 * attention and a row's LayerNorm do not depend on the other rows or on the thread count. */
#include "run.h"

#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "bert.h"
#include "context.h"
#include "cpu.h"
#include "error.h"
#include "ops.h"
#include "pool.h"
#include "vit.h"

#define SCRATCH_ALIGN 64

/* ---- the arena ------------------------------------------------------------------------------ */

/* The arena is over-allocated by one alignment unit plus a pointer; the malloc'd block's address
 * is kept just below the aligned start, where arena_free finds it. */
static void arena_free(float *scratch) {
    if (scratch) bmc__free(((void **)scratch)[-1]);
}

static float *arena_alloc(size_t n_floats) {
    size_t bytes;
    if (!bmc__mul_size(n_floats, sizeof(float), &bytes) ||
        bytes > SIZE_MAX - SCRATCH_ALIGN - sizeof(void *))
        return NULL;
    void *raw = bmc__malloc(bytes + SCRATCH_ALIGN + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t start = ((uintptr_t)raw + sizeof(void *) + SCRATCH_ALIGN - 1) &
                      ~(uintptr_t)(SCRATCH_ALIGN - 1);
    ((void **)start)[-1] = raw;
    return (float *)start;
}

/* At least n floats of the context's arena (64-byte aligned), grown when a call needs more than
 * any before: the steady state allocates nothing. The contents need not survive a call. NULL
 * (the error recorded) when out of memory. */
static float *arena(bmc_ctx *ctx, size_t n_floats) {
    if (n_floats == 0) n_floats = 1;
    if (ctx->scratch && n_floats <= ctx->scratch_floats) return ctx->scratch;
    float *fresh = arena_alloc(n_floats);
    if (!fresh) {
        bmc__fail(BMC_E_NOMEM, "context scratch: cannot allocate %zu floats (%.1f MB)", n_floats,
                  (double)n_floats * sizeof(float) / 1e6);
        return NULL;
    }
    arena_free(ctx->scratch);
    ctx->scratch = fresh;
    ctx->scratch_floats = n_floats;
    return fresh;
}

static size_t image_input_floats(const bmc__config *c) {
    return 3 * (size_t)c->image_size * c->image_size;
}

/* ---- images --------------------------------------------------------------------------------- */

/* Images per call of the tower at least: it bounds the model inputs the arena holds (0.6 MB a
 * full-size image) while giving every thread a group of images. */
#define IMAGE_MIN_CHUNK 16

int bmc__run_image_chunk(const bmc_ctx *ctx) {
    int chunk = ctx->params.max_batch;
    return chunk > IMAGE_MIN_CHUNK ? chunk : IMAGE_MIN_CHUNK;
}

/* Groups for a chunk of n images: one per thread when the images split evenly and each thread
 * gets at least two; otherwise, and for a single image, one pass shared by the threads. */
static int image_groups(int n, int threads) {
    return threads <= 1 || n < 2 * threads || n % threads ? 1 : threads;
}

size_t bmc__run_image_scratch(const bmc__config *cfg, int n, int threads) {
    return (size_t)image_groups(n, threads) * bmc__vit_plan_for(cfg, 1).total;
}

typedef struct image_job {
    const bmc_model *model;
    const float *chw; /* [n, 3, S, S] */
    float *scratch;   /* a plan of one image per group */
    float *out;       /* [n, E] */
    int per;          /* images per group */
    size_t stride;    /* scratch floats per group */
} image_job;

/* A group on the thread that took it, alone: the tower's attention uses the group's own scratch. */
static void image_group_task(void *arg, int g, int thread) {
    (void)thread;
    const image_job *j = arg;
    const bmc__config *c = &j->model->config;
    bmc__vit_forward(j->model, j->chw + (size_t)g * j->per * image_input_floats(c), j->per,
                     j->scratch + (size_t)g * j->stride,
                     j->out + (size_t)g * j->per * c->embed_dim, NULL);
}

/* One chunk of n images whose tower scratch is at `scratch`. */
static void run_image_chunk(bmc_ctx *ctx, const float *chw, int n, float *scratch, float *out) {
    int g = image_groups(n, bmc__pool_threads(ctx->pool));
    if (g == 1) {
        bmc__vit_forward(ctx->model, chw, n, scratch, out, ctx->pool);
        return;
    }
    image_job j = {ctx->model, chw, scratch, out, n / g,
                   bmc__vit_plan_for(&ctx->model->config, 1).total};
    bmc__pool_run(ctx->pool, image_group_task, &j, g);
}

bmc_status bmc__run_images(bmc_ctx *ctx, const float *chw, bmc__image_input_fn input,
                           const void *user, int n, float *out) {
    const bmc__config *c = &ctx->model->config;
    size_t in_floats = image_input_floats(c);
    int chunk = bmc__run_image_chunk(ctx), threads = bmc__pool_threads(ctx->pool);
    for (int i = 0; i < n; i += chunk) {
        int m = n - i < chunk ? n - i : chunk;
        /* the arena holds the chunk's model inputs when they are made here, then the tower's
         * scratch */
        size_t in_part = chw ? 0 : bmc__align16((size_t)m * in_floats);
        float *buf = arena(ctx, in_part + bmc__run_image_scratch(c, m, threads));
        if (!buf) return BMC_E_NOMEM;
        const float *in = chw ? chw + (size_t)i * in_floats : buf;
        for (int j = 0; !chw && j < m; j++) {
            bmc_status st = input(user, i + j, buf + (size_t)j * in_floats);
            if (st != BMC_OK) return st;
        }
        run_image_chunk(ctx, in, m, buf + in_part, out + (size_t)i * c->embed_dim);
    }
    return BMC_OK;
}

/* ---- texts ---------------------------------------------------------------------------------- */

/* Rows a group needs before a chunk of texts is split into groups: below it, each thread reading
 * every weight for its own few rows costs more than the threads sharing each product. */
#define TEXT_GROUP_MIN_ROWS 96

/* How a chunk of texts runs: g groups of consecutive texts, each planned for itself and lying
 * after the previous one in the arena. */
typedef struct text_groups {
    int g;
    int first[BMC__POOL_MAX + 1]; /* group h: texts first[h] .. first[h+1]-1 */
    int rows[BMC__POOL_MAX];      /* ... their rows */
    size_t at[BMC__POOL_MAX];     /* ... the offset of their first id */
    size_t off[BMC__POOL_MAX];    /* ... the offset of their scratch */
    size_t total;                 /* scratch floats of all the groups */
} text_groups;

/* ids of text t: lens[t], or `len` for every text when lens is NULL (the arena's sizing) */
static int text_len(const int *lens, int len, int t) { return lens ? lens[t] : len; }

/* Plan a chunk of n texts (rows ids in all, the longest max_len) on `threads` threads: one group
 * per thread when every group gets at least two texts and TEXT_GROUP_MIN_ROWS rows, each group
 * about rows / g rows and at least one text; else one group shared by the threads. */
static void plan_text_groups(const bmc__config *cfg, const int *lens, int len, int n, int rows,
                             int max_len, int threads, text_groups *tg) {
    int g = threads <= 1 || n < 2 * threads || rows < TEXT_GROUP_MIN_ROWS * threads ? 1 : threads;
    int t = 0, acc = 0;
    for (int h = 0; h < g; h++) {
        tg->first[h] = t;
        long target = (long)rows * (h + 1) / g;
        do acc += text_len(lens, len, t++);
        while (t < n - (g - 1 - h) && acc + text_len(lens, len, t) / 2 <= target);
    }
    tg->first[g] = n;
    tg->g = g;
    size_t at = 0, off = 0;
    for (int h = 0; h < g; h++) {
        int group_rows = 0;
        for (int i = tg->first[h]; i < tg->first[h + 1]; i++) group_rows += text_len(lens, len, i);
        tg->rows[h] = group_rows, tg->at[h] = at, tg->off[h] = off;
        at += (size_t)group_rows;
        off += bmc__bert_plan_for(cfg, group_rows, tg->first[h + 1] - tg->first[h], max_len).total;
    }
    tg->total = off;
}

typedef struct text_job {
    const bmc_model *model;
    const int *ids, *lens; /* the chunk's */
    const text_groups *tg;
    int max_len;
    float *scratch;
    float *out;            /* [n, E] */
} text_job;

static void text_group_task(void *arg, int h, int thread) {
    (void)thread;
    const text_job *j = arg;
    const text_groups *tg = j->tg;
    bmc__bert_forward(j->model, j->ids + tg->at[h], j->lens + tg->first[h],
                      tg->first[h + 1] - tg->first[h], j->max_len, j->scratch + tg->off[h],
                      j->out + (size_t)tg->first[h] * j->model->config.embed_dim, NULL);
}

/* Rows of a chunk: at most max_batch full-length texts, so that the arena stays at the size the
 * context was made for whatever the batch (capped so that a huge max_batch cannot overflow). */
static int text_chunk_rows(const bmc_ctx *ctx) {
    size_t L = ctx->model->config.context_length;
    size_t max_batch = ctx->params.max_batch > 0 ? (size_t)ctx->params.max_batch : 1;
    size_t cap = max_batch * L;
    if (cap > ((size_t)1 << 24)) cap = (size_t)1 << 24;
    return (int)(cap < L ? L : cap);
}

bmc_status bmc__run_texts(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out) {
    const bmc_model *model = ctx->model;
    size_t total = 0;
    bmc_status st = bmc__bert_check(model, ids, lens, n, &total);
    if (st != BMC_OK) return st;
    int cap_rows = text_chunk_rows(ctx), threads = bmc__pool_threads(ctx->pool);
    int E = (int)model->config.embed_dim;
    size_t at = 0;
    for (int i = 0; i < n;) {
        /* texts are packed greedily: as many as fit cap_rows rows */
        int k = 0, rows = 0, max_len = 0;
        while (i + k < n && rows + lens[i + k] <= cap_rows) {
            rows += lens[i + k];
            if (lens[i + k] > max_len) max_len = lens[i + k];
            k++;
        }
        text_groups tg;
        plan_text_groups(&model->config, lens + i, 0, k, rows, max_len, threads, &tg);
        float *scratch = arena(ctx, tg.total);
        if (!scratch) return BMC_E_NOMEM;
        text_job j = {model, ids + at, lens + i, &tg, max_len, scratch, out + (size_t)i * E};
        if (tg.g == 1)
            bmc__bert_forward(model, ids + at, lens + i, k, max_len, scratch, j.out, ctx->pool);
        else
            bmc__pool_run(ctx->pool, text_group_task, &j, tg.g);
        at += (size_t)rows;
        i += k;
    }
    return BMC_OK;
}

/* ---- the context's threads and arena -------------------------------------------------------- */

bmc_status bmc__run_init(bmc_ctx *ctx) {
    const bmc__config *c = &ctx->model->config;
    /* n_threads, or as many as OpenBLAS uses (its default is every core; throughput mode sets it
     * to 1 before making one context per worker) */
    int threads = ctx->params.n_threads > 0 ? ctx->params.n_threads : openblas_get_num_threads();
    if (!bmc__kern()->outer)
        threads = 1; /* the products are OpenBLAS's (gemm.c), which runs its own threads */
    int b = ctx->params.max_batch, L = (int)c->context_length;
    bmc__vit_plan vp = bmc__vit_plan_for(c, 1);
    bmc__bert_plan tp = bmc__bert_plan_for(c, L, 1, L);
    /* each thread's private scratch: the attention of either tower's longest sequence */
    size_t per_thread = vp.thread_floats > tp.thread_floats ? vp.thread_floats : tp.thread_floats;
    /* ... or the 16-bit weights that the portable level widens for OpenBLAS (gemm.c) */
    const unsigned char *wd = ctx->model->weight_dtype;
    if (!bmc__kern()->outer && (wd[BMC__W_F16] || wd[BMC__W_BF16]) &&
        bmc__gemm_widen_floats() > per_thread)
        per_thread = bmc__gemm_widen_floats();
    bmc_status st = bmc__pool_new(threads, per_thread, &ctx->pool);
    if (st != BMC_OK) return st;
    if (b == 0) return BMC_OK;
    threads = bmc__pool_threads(ctx->pool);
    /* b images with their model inputs (as bmc_encode_image lays them out), or b texts of the
     * context length */
    size_t need = bmc__align16((size_t)b * image_input_floats(c)) +
                  bmc__run_image_scratch(c, b, threads);
    text_groups tg;
    plan_text_groups(c, NULL, L, b, b * L, L, threads, &tg);
    if (tg.total > need) need = tg.total;
    return arena(ctx, need) ? BMC_OK : BMC_E_NOMEM;
}

void bmc__run_free(bmc_ctx *ctx) {
    bmc__pool_free(ctx->pool);
    ctx->pool = NULL;
    arena_free(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_floats = 0;
}
