/* encode_image.c - the public image encoders: preprocessed pixels or images in, embeddings out. */
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "image.h"
#include "ops.h"
#include "vit.h"

static bmc_status check_args(const char *fn, bmc_ctx *ctx, const void *in, int n, float *out) {
    if (!ctx) return bmc__fail(BMC_E_INVALID_ARG, "%s: ctx is NULL", fn);
    if (n < 0) return bmc__fail(BMC_E_INVALID_ARG, "%s: n is %d (want >= 0)", fn, n);
    if (n > 0 && !in) return bmc__fail(BMC_E_INVALID_ARG, "%s: input is NULL", fn);
    if (n > 0 && !out) return bmc__fail(BMC_E_INVALID_ARG, "%s: out is NULL", fn);
    return BMC_OK;
}

bmc_status bmc_encode_pixels(bmc_ctx *ctx, const float *chw, int n, float *out, int normalize) {
    bmc_status st = check_args("bmc_encode_pixels", ctx, chw, n, out);
    if (st != BMC_OK || n == 0) return st;
    st = bmc__vit_encode(ctx, chw, n, out);
    if (st != BMC_OK) return st;
    if (normalize) bmc__l2_normalize_rows(out, n, (int)ctx->model->config.embed_dim);
    return BMC_OK;
}

bmc_status bmc_encode_image(bmc_ctx *ctx, const bmc_image *images, int n, float *out,
                            int normalize) {
    bmc_status st = check_args("bmc_encode_image", ctx, images, n, out);
    if (st != BMC_OK || n == 0) return st;
    const bmc_model *model = ctx->model;
    const bmc__config *c = &model->config;
    if ((st = bmc__vit_check_config(c)) != BMC_OK) return st;
    size_t in_floats = 3 * (size_t)c->image_size * c->image_size;
    int chunk = bmc__vit_chunk(ctx), threads = bmc__pool_threads(ctx->pool);
    for (int i = 0; i < n; i += chunk) {
        int m = n - i < chunk ? n - i : chunk;
        /* the arena holds this chunk's model inputs, then the tower's own scratch */
        size_t in_part = ((size_t)m * in_floats + 15) & ~(size_t)15;
        float *buf = bmc__ctx_scratch(ctx, in_part + bmc__vit_scratch(c, m, threads));
        if (!buf) return BMC_E_NOMEM;
        for (int j = 0; j < m; j++) {
            st = bmc__image_to_input(c, &images[i + j], buf + (size_t)j * in_floats);
            if (st != BMC_OK) {
                char why[512];
                snprintf(why, sizeof why, "%s", bmc_last_error());
                return bmc__fail(st, "bmc_encode_image: image %d: %s", i + j, why);
            }
        }
        bmc__vit_run(ctx, buf, m, buf + in_part, out + (size_t)i * c->embed_dim);
    }
    if (normalize) bmc__l2_normalize_rows(out, n, (int)c->embed_dim);
    return BMC_OK;
}
