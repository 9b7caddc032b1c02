/* context.c - a context: the model it runs, with threads and a scratch arena that the scheduler
 * (run.c) sizes at creation for max_batch images and max_batch full-length texts, and grows only
 * when a call needs more than it has ever had: the steady state allocates nothing. */
#include <string.h>

#include <cblas.h>

#include "context.h"
#include "error.h"
#include "run.h"

bmc_ctx_params bmc_ctx_default_params(void) {
    bmc_ctx_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.max_batch = 8;
    return p;
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
    bmc_status st = bmc__run_init(ctx);
    if (st != BMC_OK) {
        bmc_ctx_free(ctx);
        return st;
    }
    /* OpenBLAS has one process-wide thread count (biomedclip.h, Threads). */
    if (p.n_threads > 0) openblas_set_num_threads(p.n_threads);
    *out = ctx;
    return BMC_OK;
}

void bmc_ctx_free(bmc_ctx *ctx) {
    if (!ctx) return;
    bmc__run_free(ctx);
    bmc__free(ctx);
}

const bmc_model *bmc_ctx_model(const bmc_ctx *ctx) { return ctx ? ctx->model : NULL; }
