/* header_check.c - include/biomedclip.h must compile cleanly as C99 and as C++11 (warnings are
 * errors), and a program using it must link against the library. Compiled both ways by
 * tests/sh/test_header.sh; written in the common subset of C99 and C++11. Runs calls that need
 * no model file and checks their results. */
#include <biomedclip.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "header_check: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

int main(void) {
    /* the compiled library is the one this header describes */
    CHECK(bmc_version_number() == BMC_VERSION_NUMBER);
    CHECK(strcmp(bmc_version_string(), BMC_VERSION_STRING) == 0);
    CHECK(strncmp(bmc_status_str(BMC_E_FORMAT), "BMC_E_FORMAT", 12) == 0);

    /* value-returning defaults */
    bmc_model_params mp = bmc_model_default_params();
    bmc_ctx_params cp = bmc_ctx_default_params();
    CHECK(mp.verify_data == 0);
    CHECK(cp.max_batch > 0);

    /* a failing load reports through the status and bmc_last_error, and leaves *out NULL */
    bmc_model *model = (bmc_model *)&mp; /* any non-NULL value */
    bmc_status st = bmc_model_load("/nonexistent/model.bmc", &mp, &model);
    CHECK(st != BMC_OK);
    CHECK(model == NULL);
    CHECK(bmc_last_error()[0] != '\0');
    bmc_model_free(NULL);
    bmc_ctx_free(NULL);
    bmc_image_free(NULL);

    /* cosine similarity needs no model: a = (3, 4), b = (1, 0), c = (0, 2) */
    const float a[2] = {3.0f, 4.0f};
    const float bc[4] = {1.0f, 0.0f, 0.0f, 2.0f};
    float sim[2];
    CHECK(bmc_similarity(a, 1, bc, 2, 2, sim) == BMC_OK);
    CHECK(sim[0] > 0.5999f && sim[0] < 0.6001f);
    CHECK(sim[1] > 0.7999f && sim[1] < 0.8001f);
    CHECK(bmc_similarity(a, 1, bc, 2, 0, sim) == BMC_E_INVALID_ARG);

    /* every function of the header is referenced, so each one must link */
    void (*fns[])(void) = {
        (void (*)(void))bmc_status_str,          (void (*)(void))bmc_last_error,
        (void (*)(void))bmc_version_number,      (void (*)(void))bmc_version_string,
        (void (*)(void))bmc_system_info,         (void (*)(void))bmc_log_set,
        (void (*)(void))bmc_model_default_params, (void (*)(void))bmc_model_load,
        (void (*)(void))bmc_model_free,          (void (*)(void))bmc_model_embed_dim,
        (void (*)(void))bmc_model_image_size,    (void (*)(void))bmc_model_context_length,
        (void (*)(void))bmc_model_vocab_size,    (void (*)(void))bmc_model_logit_scale,
        (void (*)(void))bmc_model_n_params,      (void (*)(void))bmc_model_n_tensors,
        (void (*)(void))bmc_model_file_size,     (void (*)(void))bmc_model_token,
        (void (*)(void))bmc_model_describe,      (void (*)(void))bmc_ctx_default_params,
        (void (*)(void))bmc_ctx_new,             (void (*)(void))bmc_ctx_free,
        (void (*)(void))bmc_ctx_model,           (void (*)(void))bmc_tokenize,
        (void (*)(void))bmc_encode_text,         (void (*)(void))bmc_encode_ids,
        (void (*)(void))bmc_image_load,          (void (*)(void))bmc_image_load_memory,
        (void (*)(void))bmc_image_free,          (void (*)(void))bmc_image_crop,
        (void (*)(void))bmc_image_preprocess,    (void (*)(void))bmc_encode_image,
        (void (*)(void))bmc_encode_pixels,       (void (*)(void))bmc_similarity,
        (void (*)(void))bmc_zero_shot_probs,     (void (*)(void))bmc_zero_shot_file,
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) CHECK(fns[i] != NULL);

    if (failures) return 1;
    printf("header_check: %d functions linked, all checks passed\n", (int)(sizeof fns / sizeof fns[0]));
    return 0;
}
