/* context.c - a context: the model it runs and one scratch arena shared by both towers.
 *
 * The arena is sized at creation for max_batch images and max_batch full-length texts, and grows
 * only when a call needs more than it has ever had (a larger batch, longer texts): the steady
 * state allocates nothing. */
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "bert.h"
#include "context.h"
#include "error.h"
#include "ops.h"
#include "pool.h"
#include "vit.h"

#define BMC__SCRATCH_ALIGN 64

bmc_ctx_params bmc_ctx_default_params(void) {
    bmc_ctx_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.max_batch = 8;
    return p;
}

/* The arena is over-allocated by one alignment unit plus a pointer; the malloc'd block's
 * address is kept just below the aligned start, where scratch_free finds it. */
static void scratch_free(float *scratch) {
    if (scratch) bmc__free(((void **)scratch)[-1]);
}

static float *scratch_alloc(size_t n_floats) {
    size_t bytes;
    if (!bmc__mul_size(n_floats, sizeof(float), &bytes) ||
        bytes > SIZE_MAX - BMC__SCRATCH_ALIGN - sizeof(void *))
        return NULL;
    void *raw = bmc__malloc(bytes + BMC__SCRATCH_ALIGN + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t start = ((uintptr_t)raw + sizeof(void *) + BMC__SCRATCH_ALIGN - 1) &
                      ~(uintptr_t)(BMC__SCRATCH_ALIGN - 1);
    ((void **)start)[-1] = raw;
    return (float *)start;
}

float *bmc__ctx_scratch(bmc_ctx *ctx, size_t n_floats) {
    if (ctx->scratch && n_floats <= ctx->scratch_floats) return ctx->scratch;
    /* the contents need not survive: callers lay out the arena afresh for each pass */
    float *fresh = scratch_alloc(n_floats ? n_floats : 1);
    if (!fresh) {
        bmc__fail(BMC_E_NOMEM, "context scratch: cannot allocate %zu floats (%.1f MB)", n_floats,
                  (double)n_floats * sizeof(float) / 1e6);
        return NULL;
    }
    scratch_free(ctx->scratch);
    ctx->scratch = fresh;
    ctx->scratch_floats = n_floats ? n_floats : 1;
    return fresh;
}

/* Floats the towers need for a batch of b images (their model inputs included, as
 * bmc_encode_image lays them out) or b texts of the context length. */
static size_t scratch_for_batch(const bmc__config *c, int b, int threads) {
    size_t in_floats = (size_t)b * 3 * c->image_size * c->image_size;
    size_t need = ((in_floats + 15) & ~(size_t)15) + bmc__vit_scratch(c, b, threads);
    int L = (int)c->context_length;
    if (L > 0) {
        size_t text = bmc__bert_scratch(c, b * L, b, L, threads);
        if (text > need) need = text;
    }
    return need;
}

/* Private scratch of each pool thread: attention over the longest sequence of either tower. */
static size_t pool_scratch(const bmc__config *c) {
    size_t need = 16;
    if (c->vision_heads > 0 && c->patch_size > 0) {
        int g = (int)(c->image_size / c->patch_size);
        size_t v = bmc__attention_scratch(1 + g * g, (int)(c->vision_width / c->vision_heads));
        if (v > need) need = v;
    }
    if (c->text_heads > 0) {
        size_t t = bmc__attention_scratch((int)c->context_length,
                                          (int)(c->text_width / c->text_heads));
        if (t > need) need = t;
    }
    return need;
}

bmc_status bmc_ctx_new(const bmc_model *model, const bmc_ctx_params *params, bmc_ctx **out) {
    if (!out) return bmc__fail(BMC_E_INVALID_ARG, "bmc_ctx_new: out is NULL");
    *out = NULL;
    if (!model) return bmc__fail(BMC_E_INVALID_ARG, "bmc_ctx_new: model is NULL");
    bmc_ctx_params p = params ? *params : bmc_ctx_default_params();
    if (p.n_threads < 0)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_ctx_new: n_threads is %d (want >= 0)",
                         p.n_threads);
    if (p.max_batch < 0 || p.max_batch > 4096)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_ctx_new: max_batch is %d (want 0..4096)",
                         p.max_batch);

    bmc_ctx *ctx = bmc__calloc(1, sizeof *ctx);
    if (!ctx) return bmc__fail(BMC_E_NOMEM, "bmc_ctx_new: cannot allocate the context");
    ctx->model = model;
    ctx->params = p;
    /* The context's own threads: n_threads, or as many as OpenBLAS uses (its default is every
     * core; throughput mode sets it to 1 before making one context per worker). */
    int threads = p.n_threads > 0 ? p.n_threads : openblas_get_num_threads();
#if !defined(__AVX512F__)
    threads = 1; /* the products are OpenBLAS's (gemm.c), which runs its own threads */
#endif
    size_t pool_floats = pool_scratch(&model->config);
    bmc_status st = bmc__pool_new(threads, pool_floats, &ctx->pool);
    threads = bmc__pool_threads(ctx->pool);
    if (st == BMC_OK && threads > 1) {
        ctx->solo = bmc__calloc((size_t)threads, sizeof *ctx->solo);
        if (!ctx->solo) st = bmc__fail(BMC_E_NOMEM, "bmc_ctx_new: cannot allocate the context");
        for (int i = 0; i < threads && st == BMC_OK; i++)
            st = bmc__pool_new(1, pool_floats, &ctx->solo[i]);
    }
    if (st != BMC_OK) {
        bmc_ctx_free(ctx);
        return st;
    }
    if (p.max_batch > 0 &&
        !bmc__ctx_scratch(ctx, scratch_for_batch(&model->config, p.max_batch, threads))) {
        bmc_ctx_free(ctx);
        return BMC_E_NOMEM;
    }
    /* OpenBLAS has one process-wide thread count (biomedclip.h, Threads). */
    if (p.n_threads > 0) openblas_set_num_threads(p.n_threads);
    *out = ctx;
    return BMC_OK;
}

void bmc_ctx_free(bmc_ctx *ctx) {
    if (!ctx) return;
    if (ctx->solo)
        for (int i = 0; i < bmc__pool_threads(ctx->pool); i++) bmc__pool_free(ctx->solo[i]);
    bmc__free(ctx->solo);
    bmc__pool_free(ctx->pool);
    scratch_free(ctx->scratch);
    bmc__free(ctx);
}

const bmc_model *bmc_ctx_model(const bmc_ctx *ctx) { return ctx ? ctx->model : NULL; }
