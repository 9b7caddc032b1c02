/* encode_image.c - the public image encoders: preprocessed pixels or images in, embeddings out
 * (the tower runs through the scheduler, run.h). */
#include <stdio.h>

#include "error.h"
#include "image.h"
#include "ops.h"
#include "run.h"

static bmc_status check_args(const char *fn, bmc_ctx *ctx, const void *in, int n, float *out) {
    if (!ctx) return bmc__fail(BMC_E_INVALID_ARG, "%s: ctx is NULL", fn);
    if (n < 0) return bmc__fail(BMC_E_INVALID_ARG, "%s: n is %d (want >= 0)", fn, n);
    if (n > 0 && !in) return bmc__fail(BMC_E_INVALID_ARG, "%s: input is NULL", fn);
    if (n > 0 && !out) return bmc__fail(BMC_E_INVALID_ARG, "%s: out is NULL", fn);
    return BMC_OK;
}

static bmc_status encode(bmc_ctx *ctx, const float *chw, bmc__image_input_fn input,
                         const void *user, int n, float *out, int normalize) {
    bmc_status st = bmc__run_images(ctx, chw, input, user, n, out);
    if (st != BMC_OK) return st;
    if (normalize) bmc__l2_normalize_rows(out, n, bmc_model_embed_dim(bmc_ctx_model(ctx)));
    return BMC_OK;
}

bmc_status bmc_encode_pixels(bmc_ctx *ctx, const float *chw, int n, float *out, int normalize) {
    bmc_status st = check_args("bmc_encode_pixels", ctx, chw, n, out);
    if (st != BMC_OK || n == 0) return st;
    return encode(ctx, chw, NULL, NULL, n, out, normalize);
}

typedef struct image_inputs {
    const bmc_model *model;
    const bmc_image *images;
} image_inputs;

/* The model input of image i: decoded pixels resized, cropped and normalised (image.c). */
static bmc_status image_input(const void *user, int i, float *dst) {
    const image_inputs *in = user;
    bmc_status st = bmc__image_to_input(&in->model->config, &in->images[i], dst);
    if (st != BMC_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", bmc_last_error());
        return bmc__fail(st, "bmc_encode_image: image %d: %s", i, why);
    }
    return BMC_OK;
}

bmc_status bmc_encode_image(bmc_ctx *ctx, const bmc_image *images, int n, float *out,
                            int normalize) {
    bmc_status st = check_args("bmc_encode_image", ctx, images, n, out);
    if (st != BMC_OK || n == 0) return st;
    image_inputs in = {bmc_ctx_model(ctx), images};
    return encode(ctx, NULL, image_input, &in, n, out, normalize);
}
