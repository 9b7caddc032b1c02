/* test_reduced_precision.c - models with 16-bit Linear weights (tools/convert.py --dtype f16 and
 * --dtype bf16, made by tests/prep/10_models.sh) against the float32 PyTorch reference of the
 * same random checkpoint (tests/prep/30 and 40: vision_golden/, text_golden/).
 *
 * For the tiny and the full-size model, each image of the vision golden and each text case of
 * the text golden is encoded with the 16-bit file; the relative L2 error of every embedding must
 * stay within 1e-3 for f16 weights and 1e-2 for bf16 (bfloat16 products where the CPU has
 * AVX512_BF16, else widened weights), and each image's top-1 text among the golden prompts (the
 * zero-shot decision) must be the reference's. Results are bit-identical across thread counts.
 * The kernel level is the one the process runs (BMC_CPU; tests/sh/test_cpu_levels.sh runs this
 * at every level the CPU has). Prints the figures (docs/PERF.md quotes them). The full-size
 * models are skipped with BMC_THREADS_FULL=0 (make sanitize; the portable level), as in
 * test_threads. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "biomedclip.h"

#define F16_TOL 1e-3
#define BF16_TOL 1e-2
#define MAX_CASES 64

static const char *testdata(void) {
    const char *d = getenv("BMC_TESTDATA");
    return d && *d ? d : "build/testdata";
}

/* The whole file as n floats (fails the test otherwise). */
static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run tests/prep/*.sh)", path);
    float *buf = malloc(n * sizeof(float) + 1);
    assert_non_null(buf);
    size_t got = fread(buf, sizeof(float), n + 1, f);
    fclose(f);
    if (got != n) fail_msg("%s: %zu floats, expected %zu", path, got, n);
    return buf;
}

static double rel_l2(const float *a, const float *ref, int n) {
    double d = 0, r = 0;
    for (int i = 0; i < n; i++) {
        d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return sqrt(d / (r > 0 ? r : 1));
}

typedef struct tcase {
    char name[32];
    int n, *ids;
} tcase;

/* The text golden's cases (name, token count, ids). */
static int read_cases(const char *size, tcase *cases) {
    char path[1024];
    snprintf(path, sizeof path, "%s/text_golden/%s/cases.txt", testdata(), size);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s (run tests/prep/40_text_golden.sh)", path);
    int n = 0;
    tcase tc;
    while (n < MAX_CASES && fscanf(f, "%31s %d", tc.name, &tc.n) == 2) {
        assert_true(tc.n >= 1 && tc.n <= 4096);
        tc.ids = malloc(sizeof(int) * (size_t)tc.n);
        assert_non_null(tc.ids);
        for (int j = 0; j < tc.n; j++) assert_int_equal(fscanf(f, "%d", &tc.ids[j]), 1);
        cases[n++] = tc;
    }
    fclose(f);
    assert_true(n >= 7);
    return n;
}

static int argmax_dot(const float *img, const float *txt, const int *rows, int n_rows, int E) {
    int best = -1;
    double best_v = -INFINITY;
    for (int r = 0; r < n_rows; r++) {
        double v = 0;
        for (int e = 0; e < E; e++) v += (double)img[e] * txt[(size_t)rows[r] * E + e];
        if (v > best_v) best_v = v, best = r;
    }
    return best;
}

static void check_model(const char *size, const char *dtype, double tol) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s-%s.bmc", testdata(), size, dtype);
    bmc_model *m = NULL;
    if (bmc_model_load(path, NULL, &m) != BMC_OK)
        fail_msg("%s (run tests/prep/10_models.sh): %s", path, bmc_last_error());
    char desc[4096];
    bmc_model_describe(m, desc, sizeof desc);
    const char *want = strcmp(dtype, "f16") ? "linear weights  bfloat16" : "linear weights  float16";
    if (!strstr(desc, want)) fail_msg("%s: describe does not say \"%s\":\n%s", path, want, desc);
    int E = bmc_model_embed_dim(m), S = bmc_model_image_size(m);

    /* images: the vision golden's model inputs */
    char cfg[1024], key[64];
    snprintf(cfg, sizeof cfg, "%s/vision_golden/%s/config.txt", testdata(), size);
    FILE *f = fopen(cfg, "r");
    if (!f) fail_msg("cannot open %s", cfg);
    double v;
    int N = 0;
    while (fscanf(f, "%63s %lf", key, &v) == 2)
        if (!strcmp(key, "n")) N = (int)v;
    fclose(f);
    assert_true(N >= 1);
    size_t in = 3 * (size_t)S * S;
    snprintf(path, sizeof path, "%s/vision_golden/%s/pixels.f32", testdata(), size);
    float *px = read_f32(path, (size_t)N * in);
    snprintf(path, sizeof path, "%s/vision_golden/%s/norm.f32", testdata(), size);
    float *ref = read_f32(path, (size_t)N * E);
    float *out = malloc(sizeof(float) * (size_t)N * E), *out2 = malloc(sizeof(float) * (size_t)N * E);
    assert_true(out && out2);
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.n_threads = 1;
    bmc_ctx *c1 = NULL, *c2 = NULL;
    assert_int_equal(bmc_ctx_new(m, &cp, &c1), BMC_OK);
    cp.n_threads = 2;
    assert_int_equal(bmc_ctx_new(m, &cp, &c2), BMC_OK);
    if (bmc_encode_pixels(c1, px, N, out, 1) != BMC_OK) fail_msg("%s", bmc_last_error());
    assert_int_equal(bmc_encode_pixels(c2, px, N, out2, 1), BMC_OK);
    assert_memory_equal(out, out2, sizeof(float) * (size_t)N * E); /* 1 vs 2 threads */
    double worst_img = 0;
    for (int i = 0; i < N; i++) {
        double e = rel_l2(out + (size_t)i * E, ref + (size_t)i * E, E);
        if (e > worst_img) worst_img = e;
    }

    /* texts: every case of the text golden */
    tcase cases[MAX_CASES];
    int nc = read_cases(size, cases);
    float *temb = malloc(sizeof(float) * (size_t)nc * E), *tref = malloc(sizeof(float) * (size_t)nc * E);
    assert_true(temb && tref);
    double worst_txt = 0;
    const char *worst_name = "";
    int prompts[MAX_CASES], np = 0;
    for (int t = 0; t < nc; t++) {
        if (bmc_encode_ids(c1, cases[t].ids, &cases[t].n, 1, temb + (size_t)t * E, 1) != BMC_OK)
            fail_msg("%s: %s", cases[t].name, bmc_last_error());
        float two[BMC_EMBED_DIM];
        if (E <= BMC_EMBED_DIM) {
            assert_int_equal(bmc_encode_ids(c2, cases[t].ids, &cases[t].n, 1, two, 1), BMC_OK);
            assert_memory_equal(two, temb + (size_t)t * E, sizeof(float) * (size_t)E);
        }
        snprintf(path, sizeof path, "%s/text_golden/%s/%s.norm.f32", testdata(), size, cases[t].name);
        float *r = read_f32(path, (size_t)E);
        memcpy(tref + (size_t)t * E, r, sizeof(float) * (size_t)E);
        free(r);
        double e = rel_l2(temb + (size_t)t * E, tref + (size_t)t * E, E);
        if (e > worst_txt) worst_txt = e, worst_name = cases[t].name;
        if (!strncmp(cases[t].name, "prompt", 6)) prompts[np++] = t;
    }

    /* zero-shot: each image's best prompt, ours against the reference's */
    int same = 0;
    for (int i = 0; i < N && np > 1; i++) {
        int a = argmax_dot(out + (size_t)i * E, temb, prompts, np, E);
        int b = argmax_dot(ref + (size_t)i * E, tref, prompts, np, E);
        same += a == b;
    }
    char sys[64];
    snprintf(sys, sizeof sys, "%s", bmc_system_info());
    sys[strcspn(sys, " ")] = 0;
    printf("%s-%s (%s): images rel L2 <= %.2e, texts rel L2 <= %.2e (%s), zero-shot top-1 "
           "%d/%d as the reference (tolerance %.0e)\n", size, dtype, sys, worst_img, worst_txt,
           worst_name, same, np > 1 ? N : 0, tol);
    assert_true(worst_img <= tol);
    assert_true(worst_txt <= tol);
    if (np > 1) assert_int_equal(same, N);

    for (int t = 0; t < nc; t++) free(cases[t].ids);
    free(temb), free(tref), free(px), free(ref), free(out), free(out2);
    bmc_ctx_free(c1), bmc_ctx_free(c2);
    bmc_model_free(m);
}

static void test_tiny_f16(void **s) { (void)s; check_model("tiny", "f16", F16_TOL); }
static void test_tiny_bf16(void **s) { (void)s; check_model("tiny", "bf16", BF16_TOL); }
/* BMC_THREADS_FULL=0 (make sanitize, the portable level in test_cpu_levels.sh) leaves the
 * full-size model to the plain run, as test_threads does. */
static int skip_full(const char *what) {
    const char *e = getenv("BMC_THREADS_FULL");
    if (e && !strcmp(e, "0")) {
        printf("full-%s: skipped (BMC_THREADS_FULL=0: the plain suite runs it)\n", what);
        return 1;
    }
    return 0;
}
static void test_full_f16(void **s) { (void)s; if (!skip_full("f16")) check_model("full", "f16", F16_TOL); }
static void test_full_bf16(void **s) { (void)s; if (!skip_full("bf16")) check_model("full", "bf16", BF16_TOL); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_f16), cmocka_unit_test(test_tiny_bf16),
        cmocka_unit_test(test_full_f16), cmocka_unit_test(test_full_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
