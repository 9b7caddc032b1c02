/* similarity.c - cosine similarity, zero-shot probabilities (open_clip's
 * softmax(exp(logit_scale) * img_n @ txt_n^T) over the texts) and the one-file convenience call.
 * Everything is accumulated in double: these are tiny next to the towers, and double keeps the
 * probabilities within float rounding of a float32 PyTorch run. */
#include <math.h>
#include <string.h>

#include "error.h"

/* F.normalize divides by max(|v|, 1e-12). */
#define BMC__NORM_EPS 1e-12

static double bmc__norm(const float *v, int dim) {
    double s = 0.0;
    for (int k = 0; k < dim; k++) s += (double)v[k] * (double)v[k];
    s = sqrt(s);
    return s > BMC__NORM_EPS ? s : BMC__NORM_EPS;
}

/* cosine(a, b) when |a| (clamped) is already known. */
static double bmc__cos(const float *a, double norm_a, const float *b, int dim) {
    double dot = 0.0, bb = 0.0;
    for (int k = 0; k < dim; k++) {
        dot += (double)a[k] * (double)b[k];
        bb += (double)b[k] * (double)b[k];
    }
    double norm_b = sqrt(bb);
    if (norm_b < BMC__NORM_EPS) norm_b = BMC__NORM_EPS;
    return dot / (norm_a * norm_b);
}

static bmc_status bmc__check_sets(const char *fn, const float *img, int n_img, const float *txt,
                                  int n_txt, int dim, const void *out) {
    if (!img || !txt || !out)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: %s is NULL", fn,
                         !img ? "the first embedding set" : !txt ? "the second embedding set"
                                                               : "the output");
    if (n_img <= 0 || n_txt <= 0 || dim <= 0)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: counts and dimension must be > 0 (got %d x %d, dim %d)",
                         fn, n_img, n_txt, dim);
    size_t cells;
    if (!bmc__mul_size((size_t)n_img, (size_t)n_txt, &cells))
        return bmc__fail(BMC_E_INVALID_ARG, "%s: %d x %d outputs overflow", fn, n_img, n_txt);
    return BMC_OK;
}

bmc_status bmc_similarity(const float *img, int n_img, const float *txt, int n_txt, int dim,
                          float *out) {
    bmc_status st = bmc__check_sets("bmc_similarity", img, n_img, txt, n_txt, dim, out);
    if (st != BMC_OK) return st;
    for (int i = 0; i < n_img; i++) {
        const float *a = img + (size_t)i * dim;
        double na = bmc__norm(a, dim);
        for (int j = 0; j < n_txt; j++)
            out[(size_t)i * n_txt + j] = (float)bmc__cos(a, na, txt + (size_t)j * dim, dim);
    }
    return BMC_OK;
}

bmc_status bmc_zero_shot_probs(const bmc_model *model, const float *img, int n_img,
                               const float *txt, int n_txt, float *probs) {
    if (!model) return bmc__fail(BMC_E_INVALID_ARG, "bmc_zero_shot_probs: model is NULL");
    int dim = bmc_model_embed_dim(model);
    bmc_status st = bmc__check_sets("bmc_zero_shot_probs", img, n_img, txt, n_txt, dim, probs);
    if (st != BMC_OK) return st;
    double scale = (double)bmc_model_logit_scale(model);
    if (!isfinite(scale))
        return bmc__fail(BMC_E_FORMAT, "bmc_zero_shot_probs: the model's logit scale is %g", scale);
    /* Stable softmax without scratch: the logits are recomputed rather than stored, so that no
     * rounding to float happens before the exponentials. */
    for (int i = 0; i < n_img; i++) {
        const float *a = img + (size_t)i * dim;
        double na = bmc__norm(a, dim);
        float *p = probs + (size_t)i * n_txt;
        double max = -INFINITY;
        for (int j = 0; j < n_txt; j++) {
            double z = scale * bmc__cos(a, na, txt + (size_t)j * dim, dim);
            if (z > max) max = z;
        }
        double sum = 0.0;
        for (int j = 0; j < n_txt; j++) {
            double e = exp(scale * bmc__cos(a, na, txt + (size_t)j * dim, dim) - max);
            sum += e;
            p[j] = (float)e; /* in [0, 1]: float keeps its relative precision */
        }
        for (int j = 0; j < n_txt; j++) p[j] = (float)((double)p[j] / sum);
    }
    return BMC_OK;
}

bmc_status bmc_zero_shot_file(bmc_ctx *ctx, const char *path, const char *const *texts, int n,
                              float *probs) {
    if (!ctx || !path || !texts || !probs)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_zero_shot_file: %s is NULL",
                         !ctx ? "ctx" : !path ? "path" : !texts ? "texts" : "probs");
    if (n <= 0) return bmc__fail(BMC_E_INVALID_ARG, "bmc_zero_shot_file: n = %d texts (want > 0)", n);
    for (int j = 0; j < n; j++)
        if (!texts[j]) return bmc__fail(BMC_E_INVALID_ARG, "bmc_zero_shot_file: texts[%d] is NULL", j);
    const bmc_model *model = bmc_ctx_model(ctx);
    int dim = bmc_model_embed_dim(model);
    size_t floats;
    if (dim <= 0 || !bmc__mul_size((size_t)n + 1, (size_t)dim, &floats) ||
        !bmc__mul_size(floats, sizeof(float), &floats))
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_zero_shot_file: %d texts of dimension %d overflow",
                         n, dim);
    float *emb = bmc__malloc(floats); /* [1 + n, dim]: the image row, then the text rows */
    if (!emb) return bmc__fail(BMC_E_NOMEM, "bmc_zero_shot_file: %zu bytes for embeddings", floats);

    bmc_image image;
    memset(&image, 0, sizeof image);
    bmc_status st = bmc_image_load(path, BMC_DECODE_DEFAULT, &image);
    if (st == BMC_OK) st = bmc_encode_image(ctx, &image, 1, emb, 1);
    bmc_image_free(&image);
    if (st == BMC_OK) st = bmc_encode_text(ctx, texts, n, emb + dim, 1);
    if (st == BMC_OK) st = bmc_zero_shot_probs(model, emb, 1, emb + dim, n, probs);
    bmc__free(emb);
    return st;
}
