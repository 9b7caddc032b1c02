/* test_similarity.c - bmc_similarity, bmc_zero_shot_probs and bmc_zero_shot_file (lib/similarity.c):
 * values against a direct computation written here, argument checks, numerical stability, and
 * the convenience call against the same steps done by hand on the tiny test model. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "model.h"

/* A model struct with only what similarity.c reads (bmc_model_embed_dim, bmc_model_logit_scale). */
static bmc_model fake_model(int dim, float logit_scale) {
    bmc_model m;
    memset(&m, 0, sizeof m);
    m.config.embed_dim = (uint32_t)dim;
    m.logit_scale = logit_scale;
    return m;
}

static void fill(float *v, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((int)(seed >> 8 & 0xffff) - 32768) / 16384.0f;
    }
}

static double ref_cos(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < d; k++) ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
    return ab / (fmax(sqrt(aa), 1e-12) * fmax(sqrt(bb), 1e-12));
}

static void test_similarity_values(void **state) {
    (void)state;
    enum { NA = 3, NB = 5, D = 7 };
    float a[NA * D], b[NB * D], out[NA * NB];
    fill(a, NA * D, 1);
    fill(b, NB * D, 2);
    memset(b + 2 * D, 0, D * sizeof(float)); /* a zero row: cosine 0, not NaN (eps clamp) */
    assert_int_equal(bmc_similarity(a, NA, b, NB, D, out), BMC_OK);
    for (int i = 0; i < NA; i++)
        for (int j = 0; j < NB; j++) {
            double want = ref_cos(a + i * D, b + j * D, D);
            assert_true(fabs(out[i * NB + j] - want) <= 1e-7);
            assert_true(out[i * NB + j] >= -1.0f && out[i * NB + j] <= 1.0f);
        }
    assert_true(out[2] == 0.0f);
    /* cosine ignores scale: (3, 4) vs (1, 0) and (0, 2) */
    const float p[2] = {3, 4}, q[4] = {1, 0, 0, 2};
    assert_int_equal(bmc_similarity(p, 1, q, 2, 2, out), BMC_OK);
    assert_true(fabsf(out[0] - 0.6f) < 1e-7f && fabsf(out[1] - 0.8f) < 1e-7f);
    /* the same embeddings as both sets: a unit diagonal */
    assert_int_equal(bmc_similarity(a, NA, a, NA, D, out), BMC_OK);
    for (int i = 0; i < NA; i++) assert_true(fabsf(out[i * NA + i] - 1.0f) < 1e-6f);
}

static void test_similarity_args(void **state) {
    (void)state;
    float a[4] = {1, 2, 3, 4}, out[4];
    assert_int_equal(bmc_similarity(NULL, 1, a, 1, 4, out), BMC_E_INVALID_ARG);
    assert_non_null(strstr(bmc_last_error(), "bmc_similarity"));
    assert_int_equal(bmc_similarity(a, 1, NULL, 1, 4, out), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_similarity(a, 1, a, 1, 4, NULL), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_similarity(a, 0, a, 1, 4, out), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_similarity(a, 1, a, -1, 4, out), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_similarity(a, 1, a, 1, 0, out), BMC_E_INVALID_ARG);
    assert_non_null(strstr(bmc_last_error(), "dim 0"));
}

static void test_zero_shot_probs_values(void **state) {
    (void)state;
    enum { NI = 4, NT = 6, D = 32 };
    float img[NI * D], txt[NT * D], probs[NI * NT], probs2[NI * NT];
    fill(img, NI * D, 3);
    fill(txt, NT * D, 4);
    bmc_model m = fake_model(D, 100.0f);
    assert_int_equal(bmc_zero_shot_probs(&m, img, NI, txt, NT, probs), BMC_OK);
    for (int i = 0; i < NI; i++) {
        double z[NT], max = -INFINITY, sum = 0, total = 0;
        for (int j = 0; j < NT; j++) z[j] = 100.0 * ref_cos(img + i * D, txt + j * D, D), max = fmax(max, z[j]);
        for (int j = 0; j < NT; j++) sum += exp(z[j] - max);
        for (int j = 0; j < NT; j++) {
            double want = exp(z[j] - max) / sum;
            assert_true(fabs(probs[i * NT + j] - want) <= 1e-7 + 1e-6 * want);
            total += probs[i * NT + j];
        }
        assert_true(fabs(total - 1.0) < 1e-6);
    }
    /* scaling the inputs changes nothing (cosine) */
    for (int k = 0; k < NI * D; k++) img[k] *= 37.0f;
    assert_int_equal(bmc_zero_shot_probs(&m, img, NI, txt, NT, probs2), BMC_OK);
    for (int k = 0; k < NI * NT; k++) assert_true(fabsf(probs[k] - probs2[k]) <= 1e-6f);
}

static void test_zero_shot_probs_stable(void **state) {
    (void)state;
    /* logits of +-1e4: a naive exp overflows; the stable softmax gives a one-hot row */
    float img[2] = {1, 0}, txt[6] = {1, 0, -1, 0, 0.99f, 0.141f};
    bmc_model m = fake_model(2, 1e4f);
    float probs[3];
    assert_int_equal(bmc_zero_shot_probs(&m, img, 1, txt, 3, probs), BMC_OK);
    assert_true(probs[0] > 0.999999f && probs[1] == 0.0f && probs[2] >= 0.0f && probs[2] < 1e-6f);
    /* one text: probability 1 */
    assert_int_equal(bmc_zero_shot_probs(&m, img, 1, txt, 1, probs), BMC_OK);
    assert_true(probs[0] == 1.0f);
}

static void test_zero_shot_probs_args(void **state) {
    (void)state;
    float v[4] = {1, 2, 3, 4}, p[4];
    bmc_model m = fake_model(4, 100.0f);
    assert_int_equal(bmc_zero_shot_probs(NULL, v, 1, v, 1, p), BMC_E_INVALID_ARG);
    assert_non_null(strstr(bmc_last_error(), "model"));
    assert_int_equal(bmc_zero_shot_probs(&m, NULL, 1, v, 1, p), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_probs(&m, v, 1, NULL, 1, p), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_probs(&m, v, 1, v, 1, NULL), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_probs(&m, v, 0, v, 1, p), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_probs(&m, v, 1, v, 0, p), BMC_E_INVALID_ARG);
    bmc_model z = fake_model(0, 100.0f);
    assert_int_equal(bmc_zero_shot_probs(&z, v, 1, v, 1, p), BMC_E_INVALID_ARG);
    bmc_model nan_scale = fake_model(4, NAN);
    assert_int_equal(bmc_zero_shot_probs(&nan_scale, v, 1, v, 1, p), BMC_E_FORMAT);
}

/* ---- bmc_zero_shot_file on the tiny model ---------------------------------------------------- */

static char model_path[1024], image_path[1024];

static void test_zero_shot_file(void **state) {
    (void)state;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_model_load(model_path, NULL, &model), BMC_OK);
    assert_int_equal(bmc_ctx_new(model, NULL, &ctx), BMC_OK);
    const char *texts[3] = {"this is a photo of chest X-ray", "this is a photo of brain MRI",
                            "this is a photo of pie chart"};
    float probs[3], want[3];
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, texts, 3, probs), BMC_OK);

    /* the same steps by hand */
    int dim = bmc_model_embed_dim(model);
    float *img = malloc(dim * sizeof(float)), *txt = malloc(3 * dim * sizeof(float));
    bmc_image image;
    assert_int_equal(bmc_image_load(image_path, BMC_DECODE_DEFAULT, &image), BMC_OK);
    assert_int_equal(bmc_encode_image(ctx, &image, 1, img, 1), BMC_OK);
    bmc_image_free(&image);
    assert_int_equal(bmc_encode_text(ctx, texts, 3, txt, 1), BMC_OK);
    assert_int_equal(bmc_zero_shot_probs(model, img, 1, txt, 3, want), BMC_OK);
    for (int j = 0; j < 3; j++) assert_true(probs[j] == want[j]);
    assert_true(fabsf(probs[0] + probs[1] + probs[2] - 1.0f) < 1e-6f);
    free(img);
    free(txt);

    /* failures: a missing file, bad arguments, out of memory */
    assert_int_not_equal(bmc_zero_shot_file(ctx, "/nonexistent/x.png", texts, 3, probs), BMC_OK);
    assert_non_null(strstr(bmc_last_error(), "/nonexistent/x.png"));
    assert_int_equal(bmc_zero_shot_file(NULL, image_path, texts, 3, probs), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_file(ctx, NULL, texts, 3, probs), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, NULL, 3, probs), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, texts, 3, NULL), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, texts, 0, probs), BMC_E_INVALID_ARG);
    const char *with_null[2] = {"a", NULL};
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, with_null, 2, probs), BMC_E_INVALID_ARG);
    bmc__alloc_fail_after(1);
    assert_int_equal(bmc_zero_shot_file(ctx, image_path, texts, 3, probs), BMC_E_NOMEM);
    bmc__alloc_fail_after(0);

    bmc_ctx_free(ctx);
    bmc_model_free(model);
}

int main(void) {
    const char *td = getenv("BMC_TESTDATA"), *shared = getenv("SHARED_DATA");
    snprintf(model_path, sizeof model_path, "%s/tiny.bmc", td ? td : "build/testdata");
    snprintf(image_path, sizeof image_path, "%s/images/bone_X-ray.jpg", shared ? shared : "../shared/data");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_similarity_values),  cmocka_unit_test(test_similarity_args),
        cmocka_unit_test(test_zero_shot_probs_values), cmocka_unit_test(test_zero_shot_probs_stable),
        cmocka_unit_test(test_zero_shot_probs_args), cmocka_unit_test(test_zero_shot_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
