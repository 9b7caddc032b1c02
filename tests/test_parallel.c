/* test_parallel.c - a context's threads (lib/pool.c, bmc_ctx_params.n_threads) change nothing
 * in the results: images and texts encoded by contexts of 1, 2 and 3 threads must be
 * bit-identical (every product, attention head and LayerNorm row is computed by one thread in
 * a fixed order, whichever thread that is) at the AVX-512 and AVX2 kernel levels. At the
 * portable level (BMC_CPU=portable, or a CPU without AVX2 + FMA) the products are OpenBLAS's,
 * whose blocking follows its thread count: there they must agree to 1e-6 (relative L2).
 * tests/sh/test_cpu_levels.sh reruns this test at each level the CPU has.
 * Covers both ways a context uses its threads: a batch split into one group per thread (4
 * images on 2 threads, 6 on 3; 8 texts of 832 ids in all, more than the 96 rows a group of
 * lib/bert.c on 3 threads) and every product spread over the threads (1 or 5 images; 5 short
 * texts), on the tiny model and, when $BMC_TESTDATA has it, the full-size one (unless
 * BMC_THREADS_FULL=0, which `make sanitize` sets: the plain build runs it; the sanitized
 * parity tests cover the same kernels on the full-size model). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "biomedclip.h"

static const char *testdata(void) {
    const char *d = getenv("BMC_TESTDATA");
    return d ? d : "build/testdata";
}

#define N_IDS 8 /* texts given as ids: 832 rows, enough to be split over 2 or 3 threads */
static const int k_lens[N_IDS] = {140, 7, 256, 133, 1, 150, 29, 116};
#define N_ID_ROWS 832 /* the sum of k_lens */

/* Encode n deterministic images, 5 texts and N_IDS id sequences with an n_threads context into
 * img[n], txt[5 + N_IDS]. */
static void encode_all(const bmc_model *m, int n_threads, int n_img, float *img, float *txt) {
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = n_threads;
    p.max_batch = 2; /* smaller than the batches: the arena grows inside the calls */
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_OK);
    int S = bmc_model_image_size(m);
    size_t in = (size_t)3 * S * S;
    float *chw = malloc(sizeof(float) * in * (size_t)n_img);
    assert_non_null(chw);
    uint32_t x = 12345u;
    for (size_t i = 0; i < in * (size_t)n_img; i++) {
        x = x * 1664525u + 1013904223u;
        chw[i] = (float)(x >> 8) / 16777216.0f * 4.0f - 2.0f;
    }
    assert_int_equal(bmc_encode_pixels(ctx, chw, n_img, img, 0), BMC_OK);
    static const char *const texts[5] = {
        "chest x-ray", "a photo of a brain MRI showing a large tumour in the left hemisphere",
        "h&e", "immunohistochemistry of squamous cell carcinoma, well differentiated", "x"};
    assert_int_equal(bmc_encode_text(ctx, texts, 5, txt, 0), BMC_OK);
    int ids[N_ID_ROWS], at = 0, vocab = bmc_model_vocab_size(m);
    for (int t = 0; t < N_IDS; t++)
        for (int j = 0; j < k_lens[t]; j++) ids[at++] = 5 + (t * 7919 + j * 104729) % (vocab - 5);
    assert_int_equal(at, N_ID_ROWS);
    /* the ids in one chunk (a context for 4 x 256 rows), so that it can be split into groups */
    bmc_ctx_free(ctx);
    p.max_batch = 4;
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_OK);
    assert_int_equal(bmc_encode_ids(ctx, ids, k_lens, N_IDS, txt + 5 * bmc_model_embed_dim(m), 0),
                     BMC_OK);
    free(chw);
    bmc_ctx_free(ctx);
}

/* 1 when the library runs its own kernels (AVX-512 or AVX2), not OpenBLAS's (portable) */
static int own_kernels(void) { return strstr(bmc_system_info(), "KERNELS=portable") == NULL; }

/* worst relative L2 distance between the rows of a and b ([n, E]) */
static double rel_l2(const float *a, const float *b, int E, int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double d = 0, r = 0;
        for (int e = 0; e < E; e++) {
            double x = (double)a[i * E + e] - b[i * E + e];
            d += x * x, r += (double)b[i * E + e] * b[i * E + e];
        }
        double v = sqrt(d / (r > 0 ? r : 1e-30));
        if (v > worst || v != v) worst = v != v ? 1e30 : v;
    }
    return worst;
}

static void check_model(const char *file, const int *batches, int n_batches) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", testdata(), file);
    bmc_model *m = NULL;
    if (bmc_model_load(path, NULL, &m) != BMC_OK) {
        printf("%s: not there (%s), skipped\n", path, bmc_last_error());
        assert_true(strcmp(file, "tiny.bmc") != 0); /* the tiny model must be there */
        return;
    }
    int E = bmc_model_embed_dim(m);
    for (int b = 0; b < n_batches; b++) {
        int n = batches[b];
        float *img[3], *txt[3];
        for (int t = 0; t < 3; t++) {
            img[t] = malloc(sizeof(float) * (size_t)E * n);
            txt[t] = malloc(sizeof(float) * (size_t)E * (5 + N_IDS));
            assert_true(img[t] && txt[t]);
            encode_all(m, t + 1, n, img[t], txt[t]);
        }
        for (int t = 1; t < 3; t++) {
            if (own_kernels()) {
                assert_memory_equal(img[0], img[t], sizeof(float) * (size_t)E * n);
                assert_memory_equal(txt[0], txt[t], sizeof(float) * (size_t)E * (5 + N_IDS));
            } else {
                assert_true(rel_l2(img[0], img[t], E, n) < 1e-6);
                assert_true(rel_l2(txt[0], txt[t], E, 5 + N_IDS) < 1e-6);
            }
        }
        printf("%s: %d image(s), 5 + %d texts: %s on 1, 2 and 3 threads (%.15s)\n", file, n,
               N_IDS, own_kernels() ? "identical" : "within 1e-6", bmc_system_info());
        for (int t = 0; t < 3; t++) free(img[t]), free(txt[t]);
    }
    bmc_model_free(m);
}

static void test_tiny(void **state) {
    (void)state;
    static const int batches[] = {1, 4, 5, 6};
    check_model("tiny.bmc", batches, 4);
}

static void test_full(void **state) {
    (void)state;
    const char *f = getenv("BMC_THREADS_FULL");
    if (f && !strcmp(f, "0")) { /* `make sanitize` and the TSan build: instrumented ViT-B is slow */
        printf("full model: not run (BMC_THREADS_FULL=0)\n");
        return;
    }
    static const int batches[] = {4, 6};
    check_model("full.bmc", batches, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tiny), cmocka_unit_test(test_full)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
