/* test_vit_parity.c - the image tower against the PyTorch reference (tests/reference/vision.py),
 * stage by stage, for the tiny and the full-size random test checkpoints:
 *   $BMC_TESTDATA/{tiny,full}.bmc  and  $BMC_TESTDATA/vision_golden/{tiny,full}/ (prep 30).
 * Prints max |diff| and relative L2 error of every stage; requires the final embedding within
 * 1e-5 relative L2 (each image, batch of 3), single-image runs agreeing with the batch, and
 * bit-identical repeats. */
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
#include "context.h"
#include "error.h"
#include "ops.h"
#include "run.h"
#include "vit.h"

#define STAGE_TOL 1e-5 /* relative L2, every stage */
#define FINAL_TOL 1e-5 /* relative L2, the embedding of each image */
#define BATCH_TOL 3e-6 /* relative L2, one image alone vs inside the batch */

static const char *testdata(void) {
    const char *d = getenv("BMC_TESTDATA");
    return d && *d ? d : "build/testdata";
}

/* The whole file as floats; fails the test unless it holds exactly n floats. */
static float *read_f32(const char *model, const char *name, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/vision_golden/%s/%s", testdata(), model, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run tests/prep/30_vision_golden.sh)", path);
    float *buf = malloc(n * sizeof(float) + 1);
    assert_non_null(buf);
    size_t got = fread(buf, sizeof(float), n + 1, f);
    fclose(f);
    if (got != n) fail_msg("%s: %zu floats, expected %zu", path, got, n);
    return buf;
}

static long golden_cfg(const char *model, const char *key) {
    char path[1024], k[64];
    double v;
    snprintf(path, sizeof path, "%s/vision_golden/%s/config.txt", testdata(), model);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s (run tests/prep/30_vision_golden.sh)", path);
    while (fscanf(f, "%63s %lf", k, &v) == 2)
        if (!strcmp(k, key)) {
            fclose(f);
            return (long)v;
        }
    fclose(f);
    fail_msg("%s has no %s", path, key);
    return -1;
}

typedef struct { double max_abs, rel_l2; } errs;

static errs compare(const float *got, const float *want, size_t n) {
    errs e = {0, 0};
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e.max_abs)) e.max_abs = d; /* NaN propagates */
        num += d * d;
        den += (double)want[i] * want[i];
    }
    e.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}

static void check(const char *model, const char *stage, const float *got, const float *want,
                  size_t n, double tol) {
    errs e = compare(got, want, n);
    printf("  %-5s %-16s max|diff| %.3e  rel L2 %.3e  (tol %.0e)\n", model, stage, e.max_abs,
           e.rel_l2, tol);
    if (!(e.rel_l2 <= tol))
        fail_msg("%s %s: relative L2 error %.3e > %.0e", model, stage, e.rel_l2, tol);
}

static bmc_model *load(const char *model) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bmc", testdata(), model);
    bmc_model *m = NULL;
    if (bmc_model_load(path, NULL, &m) != BMC_OK) fail_msg("%s: %s", path, bmc_last_error());
    const bmc__config *c = &m->config;
    /* the golden must come from the same configuration */
    assert_int_equal(c->image_size, golden_cfg(model, "image_size"));
    assert_int_equal(c->patch_size, golden_cfg(model, "patch_size"));
    assert_int_equal(c->vision_width, golden_cfg(model, "vision_width"));
    assert_int_equal(c->vision_layers, golden_cfg(model, "vision_layers"));
    assert_int_equal(c->vision_heads, golden_cfg(model, "vision_heads"));
    assert_int_equal(c->vision_mlp, golden_cfg(model, "vision_mlp"));
    assert_int_equal(c->embed_dim, golden_cfg(model, "embed_dim"));
    return m;
}

/* Every stage on the batch of 3, through the functions of vit.h. */
static void stages(const char *name) {
    bmc_model *m = load(name);
    const bmc__config *c = &m->config;
    int N = (int)golden_cfg(name, "n"), W = (int)c->vision_width, E = (int)c->embed_dim;
    size_t S = c->image_size;
    bmc__vit_plan plan = bmc__vit_plan_for(c, N);
    size_t act = (size_t)N * plan.T * W;
    assert_int_equal(plan.T, golden_cfg(name, "tokens"));
    float *px = read_f32(name, "pixels.f32", (size_t)N * 3 * S * S);
    float *scratch = aligned_alloc(64, (plan.total * sizeof(float) + 63) / 64 * 64);
    float *y = malloc(act * sizeof(float)), *out = malloc((size_t)N * E * sizeof(float));
    assert_true(scratch && y && out);
    printf("%s: %d images, %d blocks, width %d\n", name, N, (int)c->vision_layers, W);

    bmc__vit_embed(m, px, N, scratch, &plan);
    float *want = read_f32(name, "embed.f32", act);
    check(name, "patch+cls+pos", scratch + plan.x, want, act, STAGE_TOL);
    free(want);
    for (int l = 0; l < (int)c->vision_layers; l++) {
        char file[64], stage[64];
        snprintf(file, sizeof file, "block%d.f32", l);
        snprintf(stage, sizeof stage, "block %d", l);
        bmc__vit_run_block(m, l, scratch, &plan);
        want = read_f32(name, file, act);
        check(name, stage, scratch + plan.x, want, act, STAGE_TOL);
        free(want);
    }
    bmc__layernorm(scratch + plan.x, y, N * plan.T, W, m->vit.norm_w, m->vit.norm_b,
                   (float)c->vision_ln_eps);
    want = read_f32(name, "final_norm.f32", act);
    check(name, "final LayerNorm", y, want, act, STAGE_TOL);
    free(want);
    bmc__vit_pool_project(m, scratch, &plan, out);
    want = read_f32(name, "pooled.f32", (size_t)N * W);
    check(name, "pooled cls", scratch + plan.att, want, (size_t)N * W, STAGE_TOL);
    /* the encoder normalises only the cls rows: they must equal the full-sequence norm's */
    for (int i = 0; i < N; i++)
        assert_memory_equal(scratch + plan.att + (size_t)i * W, y + (size_t)i * plan.T * W,
                            W * sizeof(float));
    free(want);
    want = read_f32(name, "proj.f32", (size_t)N * E);
    check(name, "embedding (raw)", out, want, (size_t)N * E, FINAL_TOL);
    for (int i = 0; i < N; i++) {
        char stage[64];
        snprintf(stage, sizeof stage, "embedding img %d", i);
        check(name, stage, out + (size_t)i * E, want + (size_t)i * E, E, FINAL_TOL);
    }
    free(want);
    free(px), free(scratch), free(y), free(out);
    bmc_model_free(m);
}

/* The public encoder: batch of 3 against the golden, each image alone against the batch,
 * repeats bit-identical, the arena grown once and then reused. */
static void api(const char *name) {
    bmc_model *m = load(name);
    const bmc__config *c = &m->config;
    int N = (int)golden_cfg(name, "n"), E = (int)c->embed_dim;
    size_t in = 3 * (size_t)c->image_size * c->image_size;
    float *px = read_f32(name, "pixels.f32", (size_t)N * in);
    float *raw = read_f32(name, "proj.f32", (size_t)N * E);
    float *norm = read_f32(name, "norm.f32", (size_t)N * E);
    float *out = malloc((size_t)N * E * sizeof(float));
    float *again = malloc((size_t)N * E * sizeof(float));
    float one[BMC_EMBED_DIM];
    assert_true(out && again && E <= BMC_EMBED_DIM);

    bmc_ctx_params p = bmc_ctx_default_params();
    p.max_batch = 1; /* a batch of 3 on a context made for 1 */
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_OK);
    assert_ptr_equal(bmc_ctx_model(ctx), m);
    size_t before = ctx->scratch_floats;

    assert_int_equal(bmc_encode_pixels(ctx, px, N, out, 0), BMC_OK);
    check(name, "api batch raw", out, raw, (size_t)N * E, FINAL_TOL);
    /* the arena holds what the tower needs for the batch (grown if the context's was smaller) */
    assert_true(ctx->scratch_floats >= before);
    assert_true(ctx->scratch_floats >= bmc__run_image_scratch(c, N, bmc__pool_threads(ctx->pool)));
    const float *arena = ctx->scratch;
    size_t grown = ctx->scratch_floats;

    assert_int_equal(bmc_encode_pixels(ctx, px, N, again, 1), BMC_OK);
    check(name, "api batch norm", again, norm, (size_t)N * E, FINAL_TOL);
    for (int i = 0; i < N; i++) {
        char stage[64];
        snprintf(stage, sizeof stage, "api norm img %d", i);
        check(name, stage, again + (size_t)i * E, norm + (size_t)i * E, E, FINAL_TOL);
        double ss = 0;
        for (int j = 0; j < E; j++) ss += (double)again[i * E + j] * again[i * E + j];
        assert_true(fabs(sqrt(ss) - 1.0) < 1e-6);
    }
    assert_int_equal(bmc_encode_pixels(ctx, px, N, again, 0), BMC_OK);
    assert_memory_equal(again, out, (size_t)N * E * sizeof(float)); /* deterministic */
    assert_ptr_equal(ctx->scratch, arena);                          /* no growth the 2nd time */
    assert_int_equal(ctx->scratch_floats, grown);

    for (int i = 0; i < N; i++) {
        char stage[64];
        assert_int_equal(bmc_encode_pixels(ctx, px + (size_t)i * in, 1, one, 0), BMC_OK);
        snprintf(stage, sizeof stage, "single vs batch %d", i);
        check(name, stage, one, out + (size_t)i * E, E, BATCH_TOL);
        check(name, "single vs torch", one, raw + (size_t)i * E, E, FINAL_TOL);
    }
    assert_ptr_equal(ctx->scratch, arena); /* a smaller batch reuses the arena */
    bmc_ctx_free(ctx);
    free(px), free(raw), free(norm), free(out), free(again);
    bmc_model_free(m);
}

/* A binary PPM (P6, maxval 255) as a caller-made RGB view; pixels malloc'd into *buf. */
static bmc_image read_ppm(const char *path, unsigned char **buf) {
    bmc_image im;
    memset(&im, 0, sizeof im);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    int w = 0, h = 0, mx = 0;
    if (fscanf(f, "P6 %d %d %d", &w, &h, &mx) != 3 || mx != 255 || fgetc(f) == EOF)
        fail_msg("%s: not a binary PPM", path);
    *buf = malloc((size_t)w * h * 3);
    assert_non_null(*buf);
    if (fread(*buf, 1, (size_t)w * h * 3, f) != (size_t)w * h * 3) fail_msg("%s: short", path);
    fclose(f);
    im.width = w, im.height = h, im.format = BMC_PIXEL_RGB, im.stride = 3 * w, im.pixels = *buf;
    return im;
}

/* bmc_encode_image on views of the reference's two example crops (already 224x224, so
 * preprocessing is only /255 and Normalize): the same embeddings as the reference. */
static void encode_image(const char *name) {
    bmc_model *m = load(name);
    int N = (int)golden_cfg(name, "n"), E = (int)m->config.embed_dim;
    float *norm = read_f32(name, "norm.f32", (size_t)N * E);
    const char *shared = getenv("SHARED_DATA");
    char path[1024], names[1024], line[256];
    snprintf(names, sizeof names, "%s/vision_golden/%s/names.txt", testdata(), name);
    FILE *f = fopen(names, "r");
    assert_non_null(f);
    bmc_image im[2];
    unsigned char *buf[2];
    for (int i = 0; i < 2; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        line[strcspn(line, "\n")] = 0;
        snprintf(path, sizeof path, "%s/images/preprocessed_224/%s.ppm",
                 shared && *shared ? shared : "../shared/data", line);
        im[i] = read_ppm(path, &buf[i]);
    }
    fclose(f);
    if ((int)m->config.image_size != im[0].width) fail_msg("%s: image size differs", name);
    bmc_ctx *ctx = NULL;
    float out[2 * BMC_EMBED_DIM];
    assert_int_equal(bmc_ctx_new(m, NULL, &ctx), BMC_OK);
    if (bmc_encode_image(ctx, im, 2, out, 1) != BMC_OK) fail_msg("%s", bmc_last_error());
    check(name, "encode_image 0", out, norm, E, FINAL_TOL);
    check(name, "encode_image 1", out + E, norm + E, E, FINAL_TOL);
    /* a bad view fails the call, naming the image */
    bmc_image bad = im[1];
    bad.stride = 1;
    bmc_image two[2] = {im[0], bad};
    assert_int_not_equal(bmc_encode_image(ctx, two, 2, out, 1), BMC_OK);
    assert_non_null(strstr(bmc_last_error(), "image 1"));
    bmc_ctx_free(ctx);
    free(buf[0]), free(buf[1]), free(norm);
    bmc_model_free(m);
}

static void test_tiny_stages(void **s) { (void)s; stages("tiny"); }
static void test_tiny_encode_image(void **s) { (void)s; encode_image("tiny"); }
static void test_full_encode_image(void **s) { (void)s; encode_image("full"); }
static void test_tiny_api(void **s) { (void)s; api("tiny"); }
static void test_full_stages(void **s) { (void)s; stages("full"); }
static void test_full_api(void **s) { (void)s; api("full"); }

/* More images than one chunk (max(max_batch, 16)): every image still matches its lone run. */
static void test_tiny_chunks(void **s) {
    (void)s;
    bmc_model *m = load("tiny");
    const bmc__config *c = &m->config;
    int N0 = (int)golden_cfg("tiny", "n"), E = (int)c->embed_dim;
    size_t in = 3 * (size_t)c->image_size * c->image_size;
    float *px = read_f32("tiny", "pixels.f32", (size_t)N0 * in);
    float *raw = read_f32("tiny", "proj.f32", (size_t)N0 * E);
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_ctx_new(m, NULL, &ctx), BMC_OK);
    int chunk = bmc__run_image_chunk(ctx), N = chunk + 3;
    float *many = malloc((size_t)N * in * sizeof(float));
    float *out = malloc((size_t)N * E * sizeof(float));
    assert_true(many && out);
    for (int i = 0; i < N; i++)
        memcpy(many + (size_t)i * in, px + (size_t)(i % N0) * in, in * sizeof(float));
    assert_int_equal(bmc_encode_pixels(ctx, many, N, out, 0), BMC_OK);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        errs e = compare(out + (size_t)i * E, raw + (size_t)(i % N0) * E, E);
        if (e.rel_l2 > worst) worst = e.rel_l2;
    }
    printf("  tiny  %d images in chunks of %d: worst rel L2 vs torch %.3e\n", N, chunk, worst);
    assert_true(worst <= FINAL_TOL);
    bmc_ctx_free(ctx);
    free(px), free(raw), free(many), free(out);
    bmc_model_free(m);
}

static void test_bad_args(void **s) {
    (void)s;
    bmc_model *m = load("tiny");
    bmc_ctx *ctx = NULL;
    float px[1], out[1];
    bmc_ctx_params p = bmc_ctx_default_params();
    assert_int_equal(p.max_batch, 8);
    assert_int_equal(p.n_threads, 0);
    assert_int_equal(bmc_ctx_new(m, NULL, NULL), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_ctx_new(NULL, NULL, &ctx), BMC_E_INVALID_ARG);
    assert_null(ctx);
    p.max_batch = -1;
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_E_INVALID_ARG);
    assert_null(ctx);
    p = bmc_ctx_default_params();
    p.n_threads = -2;
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_E_INVALID_ARG);
    assert_non_null(strstr(bmc_last_error(), "n_threads"));

    /* out of memory at creation: nothing leaks, *out stays NULL */
    bmc__alloc_fail_after(1);
    assert_int_equal(bmc_ctx_new(m, NULL, &ctx), BMC_E_NOMEM);
    bmc__alloc_fail_after(2);
    assert_int_equal(bmc_ctx_new(m, NULL, &ctx), BMC_E_NOMEM);
    bmc__alloc_fail_after(0);
    assert_null(ctx);

    p = bmc_ctx_default_params();
    p.max_batch = 0; /* nothing up front: the first call allocates */
    assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_OK);
    assert_null(ctx->scratch);
    assert_int_equal(bmc_encode_pixels(NULL, px, 1, out, 0), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_pixels(ctx, px, -1, out, 0), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_pixels(ctx, NULL, 1, out, 0), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_pixels(ctx, px, 1, NULL, 0), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_pixels(ctx, NULL, 0, NULL, 0), BMC_OK);
    assert_int_equal(bmc_encode_image(ctx, NULL, 1, out, 0), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_image(ctx, NULL, 0, NULL, 0), BMC_OK);
    /* growth that fails reports BMC_E_NOMEM and leaves the context usable */
    size_t in = 3 * (size_t)m->config.image_size * m->config.image_size;
    float *zero = calloc(in, sizeof(float));
    float emb[BMC_EMBED_DIM];
    bmc__alloc_fail_after(1);
    assert_int_equal(bmc_encode_pixels(ctx, zero, 1, emb, 1), BMC_E_NOMEM);
    bmc__alloc_fail_after(0);
    assert_non_null(strstr(bmc_last_error(), "scratch"));
    assert_int_equal(bmc_encode_pixels(ctx, zero, 1, emb, 1), BMC_OK);
    for (int j = 0; j < (int)m->config.embed_dim; j++) assert_false(isnan(emb[j]));
    free(zero);
    bmc_ctx_free(ctx);
    bmc_ctx_free(NULL);
    assert_null(bmc_ctx_model(NULL));
    bmc_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_stages), cmocka_unit_test(test_tiny_api),
        cmocka_unit_test(test_tiny_chunks), cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_tiny_encode_image), cmocka_unit_test(test_full_stages),
        cmocka_unit_test(test_full_api), cmocka_unit_test(test_full_encode_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
