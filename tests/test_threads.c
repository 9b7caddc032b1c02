/* test_threads.c - one model shared by 8 threads, each with its own context (biomedclip.h,
 * Threads): every thread encodes 2 images and 2 texts (2 rounds on the tiny model, 1 on the full one), and must get results
 * bit-identical to the same work done on one thread before the threads start.
 *
 * OpenBLAS and the contexts' own pools are set to 1 thread (OPENBLAS_NUM_THREADS=1, and one
 * bmc_ctx_new with n_threads = 1 before the workers start; the workers' contexts leave the
 * count alone, n_threads = 0, since it is process-wide): that is the documented throughput
 * mode (one context per worker, 1 thread each), it makes every product run in the calling
 * thread, so that results cannot depend on how work is split among helper threads, and it
 * keeps OpenBLAS's own (uninstrumented) worker threads out of ThreadSanitizer runs
 * (tests/sh/test_tsan.sh builds this test with -fsanitize=thread).
 *
 * test_pool then checks a context's own thread pool (latency mode, n_threads = 4): two runs give
 * the same bits, the result is within 1e-5 of the 1-thread one, and two such contexts used at
 * once from two threads give the bits of the sequential 2-thread run. The tiny model always runs; the full-size one too unless
 * BMC_THREADS_FULL=0 (tests/sh/test_tsan.sh sets it: instrumented code on ViT-B is slow). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "biomedclip.h"

#define N_THREADS 8
#define N_ROUNDS 2 /* the most rounds a run does (full: 1, tiny: 2) */
#define N_ITEMS 2

static const char *const k_texts[N_THREADS][N_ITEMS] = {
    {"this is a photo of chest X-ray", "adenocarcinoma histopathology"},
    {"brain MRI", "bone X-ray"},
    {"H&E stained tissue", "immunohistochemistry of a tumour"},
    {"a pie chart", "a line chart of COVID cases"},
    {"Café naïve résumé", "腫瘍 の 画像"},
    {"", "x"},
    {"squamous cell carcinoma, well differentiated", "normal lung parenchyma"},
    {"CT scan of the abdomen", "ultrasound of the liver"},
};

typedef struct work {
    const bmc_model *model;
    int id, dim, rounds, n_threads;
    bmc_image images[N_ITEMS];
    float *img_out, *txt_out;  /* [N_ROUNDS][N_ITEMS * dim] */
    bmc_status st;
    char err[512];
} work;

/* Deterministic caller-made pixel views of different sizes and formats per thread. */
static unsigned char *make_pixels(int seed, int w, int h, int fmt) {
    unsigned char *p = malloc((size_t)w * h * fmt);
    uint32_t x = 2463534242u + (uint32_t)seed * 7919u;
    for (size_t i = 0; i < (size_t)w * h * fmt; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (unsigned char)((i / fmt % w) * 3 + (x & 63));
    }
    return p;
}

static void encode_all(work *w) {
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = w->n_threads;
    p.max_batch = N_ITEMS;
    bmc_ctx *ctx = NULL;
    w->st = bmc_ctx_new(w->model, &p, &ctx);
    for (int r = 0; r < w->rounds && w->st == BMC_OK; r++) {
        float *io = w->img_out + (size_t)r * N_ITEMS * w->dim, *to = w->txt_out + (size_t)r * N_ITEMS * w->dim;
        w->st = bmc_encode_image(ctx, w->images, N_ITEMS, io, 1);
        if (w->st == BMC_OK) w->st = bmc_encode_text(ctx, k_texts[w->id], N_ITEMS, to, 1);
        /* a second context: the model must stay untouched while others use it */
        if (w->st == BMC_OK && r == 0) {
            int ids[BMC_MAX_TOKENS], n = 0;
            w->st = bmc_tokenize(w->model, k_texts[w->id][0], ids, BMC_MAX_TOKENS, &n);
        }
    }
    if (w->st != BMC_OK) snprintf(w->err, sizeof w->err, "%s", bmc_last_error());
    bmc_ctx_free(ctx);
}

static void *thread_main(void *arg) {
    encode_all(arg);
    return NULL;
}

/* One context with n_threads = 1: sets OpenBLAS's process-wide count before the workers start. */
static void one_blas_thread(const bmc_model *model) {
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = 1;
    p.max_batch = 0;
    bmc_ctx *c = NULL;
    assert_int_equal(bmc_ctx_new(model, &p, &c), BMC_OK);
    bmc_ctx_free(c);
}

static void run_model(const char *path, int rounds) {
    bmc_model *model = NULL;
    assert_int_equal(bmc_model_load(path, NULL, &model), BMC_OK);
    one_blas_thread(model);
    int dim = bmc_model_embed_dim(model);
    work ref[N_THREADS], par[N_THREADS];
    unsigned char *pix[N_THREADS][N_ITEMS];
    for (int t = 0; t < N_THREADS; t++) {
        for (int i = 0; i < N_ITEMS; i++) {
            int w = 40 + 37 * t + 11 * i, h = 300 - 23 * t + 5 * i, fmt = (t + i) % 3 == 0 ? 1 : (t + i) % 3 == 1 ? 3 : 4;
            pix[t][i] = make_pixels(t * N_ITEMS + i, w, h, fmt);
            assert_non_null(pix[t][i]);
            bmc_image im = {w, h, (bmc_pixel_format)fmt, w * fmt, pix[t][i], NULL};
            ref[t].images[i] = par[t].images[i] = im;
        }
        for (int k = 0; k < 2; k++) {
            work *w = k ? &par[t] : &ref[t];
            w->model = model, w->id = t, w->dim = dim, w->rounds = rounds, w->n_threads = 0, w->st = BMC_E_INTERNAL, w->err[0] = 0;
            w->img_out = calloc((size_t)N_ROUNDS * N_ITEMS * dim, sizeof(float));
            w->txt_out = calloc((size_t)N_ROUNDS * N_ITEMS * dim, sizeof(float));
            assert_true(w->img_out && w->txt_out);
        }
    }
    /* the reference: everything on this thread, one after the other */
    for (int t = 0; t < N_THREADS; t++) {
        encode_all(&ref[t]);
        if (ref[t].st != BMC_OK) fail_msg("reference thread %d: %s", t, ref[t].err);
    }
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) assert_int_equal(pthread_create(&th[t], NULL, thread_main, &par[t]), 0);
    for (int t = 0; t < N_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);

    size_t n = (size_t)rounds * N_ITEMS * dim, differ = 0;
    for (int t = 0; t < N_THREADS; t++) {
        if (par[t].st != BMC_OK) fail_msg("thread %d: %s", t, par[t].err);
        for (size_t i = 0; i < n; i++) {
            differ += memcmp(&par[t].img_out[i], &ref[t].img_out[i], sizeof(float)) != 0;
            differ += memcmp(&par[t].txt_out[i], &ref[t].txt_out[i], sizeof(float)) != 0;
        }
        /* round 2 equals round 1 (a reused context gives the same bits) */
        size_t half = (size_t)N_ITEMS * dim;
        for (int r = 1; r < rounds; r++) {
            assert_memory_equal(ref[t].img_out, ref[t].img_out + r * half, half * sizeof(float));
            assert_memory_equal(ref[t].txt_out, ref[t].txt_out + r * half, half * sizeof(float));
        }
    }
    /* different inputs give different embeddings (the comparison above is not vacuous) */
    assert_true(memcmp(ref[0].img_out, ref[1].img_out, (size_t)dim * sizeof(float)) != 0);
    assert_true(memcmp(ref[0].txt_out, ref[1].txt_out, (size_t)dim * sizeof(float)) != 0);
    printf("%s: %d threads x %d rounds x (%d images + %d texts), dim %d: %zu of %zu floats differ "
           "from the single-thread run\n", path, N_THREADS, rounds, N_ITEMS, N_ITEMS, dim, differ,
           2 * n * N_THREADS);
    assert_int_equal(differ, 0);
    for (int t = 0; t < N_THREADS; t++) {
        for (int i = 0; i < N_ITEMS; i++) free(pix[t][i]);
        free(ref[t].img_out), free(ref[t].txt_out), free(par[t].img_out), free(par[t].txt_out);
    }
    bmc_model_free(model);
}

static char g_tiny[1024], g_full[1024];

/* A context's own thread pool: deterministic for a given thread count, close to 1 thread, and
 * two pooled contexts at once do not disturb each other. */
static void test_pool(void **state) {
    bmc_model *model = NULL;
    assert_int_equal(bmc_model_load(g_tiny, NULL, &model), BMC_OK);
    int dim = bmc_model_embed_dim(model);
    unsigned char *pix[N_ITEMS];
    work w[5];
    memset(w, 0, sizeof w);
    int threads[5] = {1, 4, 4, 2, 2}; /* 1 alone, 4 twice, then 2 (sequential) */
    for (int i = 0; i < N_ITEMS; i++) {
        pix[i] = make_pixels(100 + i, 150 + 30 * i, 120, 3);
        bmc_image im = {150 + 30 * i, 120, BMC_PIXEL_RGB, (150 + 30 * i) * 3, pix[i], NULL};
        for (int k = 0; k < 5; k++) w[k].images[i] = im;
    }
    for (int k = 0; k < 5; k++) {
        w[k].model = model, w[k].id = 2, w[k].dim = dim, w[k].rounds = 1, w[k].n_threads = threads[k];
        w[k].img_out = calloc((size_t)N_ITEMS * dim, sizeof(float));
        w[k].txt_out = calloc((size_t)N_ITEMS * dim, sizeof(float));
        encode_all(&w[k]);
        if (w[k].st != BMC_OK) fail_msg("pool of %d: %s", threads[k], w[k].err);
    }
    size_t n = (size_t)N_ITEMS * dim;
    assert_memory_equal(w[1].img_out, w[2].img_out, n * sizeof(float));
    assert_memory_equal(w[1].txt_out, w[2].txt_out, n * sizeof(float));
    float worst = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[1].img_out[i] - w[0].img_out[i]), b = fabsf(w[1].txt_out[i] - w[0].txt_out[i]);
        worst = fmaxf(worst, fmaxf(a, b));
    }
    /* two 2-thread contexts at once, from two threads: the sequential 2-thread bits */
    work par[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        par[k] = w[3];
        par[k].img_out = calloc(n, sizeof(float));
        par[k].txt_out = calloc(n, sizeof(float));
        assert_int_equal(pthread_create(&th[k], NULL, thread_main, &par[k]), 0);
    }
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        if (par[k].st != BMC_OK) fail_msg("concurrent pool %d: %s", k, par[k].err);
        assert_memory_equal(par[k].img_out, w[3].img_out, n * sizeof(float));
        assert_memory_equal(par[k].txt_out, w[3].txt_out, n * sizeof(float));
        free(par[k].img_out), free(par[k].txt_out);
    }
    printf("context pools: 4 threads twice: same bits; 4 vs 1 thread: max |diff| %.3g; two 2-thread contexts "
           "at once: the sequential bits\n", (double)worst);
    assert_true(worst < 1e-5f);
    one_blas_thread(model); /* back to 1 for whatever runs next */
    for (int k = 0; k < 5; k++) free(w[k].img_out), free(w[k].txt_out);
    for (int i = 0; i < N_ITEMS; i++) free(pix[i]);
    bmc_model_free(model);
}

static void test_tiny(void **state) { run_model(g_tiny, 2); }

static void test_full(void **state) {
    const char *f = getenv("BMC_THREADS_FULL");
    if (f && !strcmp(f, "0")) {
        printf("full model: not run (BMC_THREADS_FULL=0)\n");
        return;
    }
    run_model(g_full, 1);
}

int main(void) {
    setenv("OPENBLAS_NUM_THREADS", "1", 0); /* for OpenBLAS versions that read it late */
    const char *d = getenv("BMC_TESTDATA");
    if (!d || !*d) d = "build/testdata";
    snprintf(g_tiny, sizeof g_tiny, "%s/tiny.bmc", d);
    snprintf(g_full, sizeof g_full, "%s/full.bmc", d);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
