/* test_alloc_failure.c - allocation-failure injection: for every n from 1 until the operation
 * succeeds, the n-th library allocation (bmc__alloc_fail_after, lib/error.h) and all later ones
 * fail. Each attempt must return BMC_E_NOMEM with a message (or succeed), crash nothing, and
 * leave nothing allocated: checked here with glibc's allocator statistics (bytes in use before
 * and after each failed attempt must be equal) and, in the sanitizer build (`make sanitize`),
 * by LeakSanitizer at exit. stb_image allocates through the same hook (STBI_MALLOC ->
 * bmc__malloc in lib/image_jpeg.c), so the JPEG decoder's allocations are failed too.
 *
 * Operations: loading a model, creating a context, encoding images and texts (with a context
 * whose scratch must grow, so that the encode call itself allocates), tokenizing a text long
 * enough to need scratch, decoding every supported format from memory and from a file,
 * cropping / preprocessing, and bmc_zero_shot_file. */
#include <malloc.h>
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
#include "error.h"

#define MAX_TRIES 100000

static char g_tiny[1024], g_corpus[1024], g_shared[1024];
static bmc_model *g_model;

/* glibc counts chunks parked in its per-thread cache (tcache) as in use, so a free() would not
 * show; main() re-executes the test with the cache off (GLIBC_TUNABLES) to make the count exact.
 * Under AddressSanitizer these statistics stay constant and LeakSanitizer does the job. */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef bmc_status (*op_fn)(void *arg);  /* one attempt; on success it keeps what it made */
typedef void (*undo_fn)(void *arg);      /* frees what a successful attempt made */

/* Runs op with the n-th allocation failing, n = 1, 2, ... until it succeeds. Prints one line;
 * returns the number of problems (wrong status, no message, bytes left allocated), each printed. */
static int until_ok(const char *name, op_fn op, undo_fn undo, void *arg) {
    /* once without failures first: lazy one-time set-ups (OpenBLAS buffers, stdio, CRC
     * tables) must not be counted as leaks */
    bmc__alloc_fail_after(0);
    bmc_status st0 = op(arg);
    long total = bmc__alloc_fail_after(0);
    if (st0 != BMC_OK) {
        printf("PROBLEM %s: fails without injected failures: %s\n", name, bmc_last_error());
        return 1;
    }
    if (undo) undo(arg);
    long n;
    int problems = 0;
    for (n = 1; n <= MAX_TRIES; n++) {
        size_t before = heap_in_use();
        bmc__alloc_fail_after(n);
        bmc_status st = op(arg);
        bmc__alloc_fail_after(0);
        if (st == BMC_OK) {
            if (undo) undo(arg);
            break;
        }
        if (st != BMC_E_NOMEM && problems++ < 3)
            printf("PROBLEM %s: allocation %ld failing gave %s (%s), not BMC_E_NOMEM\n", name, n,
                   bmc_status_str(st), bmc_last_error());
        if (!bmc_last_error()[0] && problems++ < 3) printf("PROBLEM %s: allocation %ld failing: no message\n", name, n);
        size_t after = heap_in_use();
        if (after != before && problems++ < 3)
            printf("PROBLEM %s: allocation %ld failing left %zd bytes allocated\n", name, n, (ssize_t)(after - before));
    }
    if (n - 1 != total && problems++ < 3) /* it must succeed exactly once every allocation is allowed */
        printf("PROBLEM %s: %ld allocations when all succeed, but it succeeded only with %ld allowed\n", name, total,
               n - 1);
    printf("%-40s %3ld allocation(s) when all succeed; each of the first %ld failed in turn: %s\n", name, total,
           n - 1, problems ? "PROBLEMS above" : "BMC_E_NOMEM, nothing leaked");
    return problems;
}

/* ---- the operations ---------------------------------------------------------------------- */

static bmc_model *g_loaded;
static bmc_status op_load(void *a) { return bmc_model_load(g_tiny, NULL, &g_loaded); }
static void undo_load(void *a) { bmc_model_free(g_loaded); g_loaded = NULL; }

static bmc_ctx *g_ctx;     /* made in setup(), for bmc_zero_shot_file */
static bmc_ctx *g_new_ctx; /* what op_ctx makes */
static bmc_status op_ctx(void *a) {
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = 1;
    return bmc_ctx_new(g_model, &p, &g_new_ctx);
}
static void undo_ctx(void *a) { bmc_ctx_free(g_new_ctx); g_new_ctx = NULL; }

/* Encoding with a context created with max_batch 0 (no scratch yet): the call allocates. */
typedef struct encode_arg {
    int images; /* 1: images, 0: texts */
    bmc_ctx *ctx;
    float out[3 * BMC_EMBED_DIM];
} encode_arg;
static unsigned char g_pix[3][97 * 61 * 4];
static bmc_status op_encode_images(void *a) {
    encode_arg *e = a;
    bmc_image im[3] = {{97, 61, BMC_PIXEL_RGB, 97 * 3, g_pix[0], NULL},
                       {61, 97, BMC_PIXEL_GRAY, 61, g_pix[1], NULL},
                       {50, 50, BMC_PIXEL_RGBA, 200, g_pix[2], NULL}};
    return bmc_encode_image(e->ctx, im, 3, e->out, 1);
}
static char g_long_text[8192];
static bmc_status op_encode_texts(void *a) {
    encode_arg *e = a;
    const char *t[3] = {"this is a photo of chest X-ray", g_long_text, ""};
    return bmc_encode_text(e->ctx, t, 3, e->out, 1);
}
static void fresh_ctx(encode_arg *e) { /* each attempt starts from an empty context */
    bmc_ctx_free(e->ctx);
    e->ctx = NULL;
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = 1;
    p.max_batch = 0;
    assert_int_equal(bmc_ctx_new(g_model, &p, &e->ctx), BMC_OK);
}

static int g_ids[BMC_MAX_TOKENS];
static bmc_status op_tokenize(void *a) {
    int n = 0;
    return bmc_tokenize(g_model, g_long_text, g_ids, BMC_MAX_TOKENS, &n);
}

typedef struct image_arg {
    const unsigned char *data;
    size_t size;
    const char *path; /* instead of data when set */
    int flags;
    bmc_image img;
} image_arg;
static bmc_status op_decode(void *a) {
    image_arg *i = a;
    if (i->path) return bmc_image_load(i->path, i->flags, &i->img);
    return bmc_image_load_memory(i->data, i->size, i->flags, &i->img);
}
static void undo_decode(void *a) { bmc_image_free(&((image_arg *)a)->img); }

static unsigned char g_rgb[BMC_IMAGE_SIZE * BMC_IMAGE_SIZE * 3];
static float g_chw[3 * BMC_IMAGE_SIZE * BMC_IMAGE_SIZE];
static bmc_status op_preprocess(void *a) {
    image_arg *i = a;
    bmc_status st = bmc_image_crop(g_model, &i->img, g_rgb);
    return st == BMC_OK ? bmc_image_preprocess(g_model, &i->img, g_chw) : st;
}

static bmc_status op_zero_shot(void *a) {
    static const char *labels[3] = {"chest X-ray", "brain MRI", "histopathology"};
    float probs[3];
    return bmc_zero_shot_file(g_ctx, (const char *)a, labels, 3, probs);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_load(void **s) { assert_int_equal(until_ok("bmc_model_load (tiny)", op_load, undo_load, NULL), 0); }
static void test_ctx(void **s) { assert_int_equal(until_ok("bmc_ctx_new", op_ctx, undo_ctx, NULL), 0); }

static void test_encode(void **s) {
    encode_arg e;
    memset(&e, 0, sizeof e);
    for (size_t i = 0; i < sizeof g_pix; i++) ((unsigned char *)g_pix)[i] = (unsigned char)(i * 7 + i / 331);
    /* until_ok's protocol with a fresh scratch-less context before every attempt */
    const char *names[2] = {"bmc_encode_text (context grows)", "bmc_encode_image (context grows)"};
    op_fn ops[2] = {op_encode_texts, op_encode_images};
    for (int k = 0; k < 2; k++) {
        fresh_ctx(&e);
        bmc__alloc_fail_after(0);
        assert_int_equal(ops[k](&e), BMC_OK);
        long total = bmc__alloc_fail_after(0);
        assert_true(total >= 1); /* the scratch had to be allocated */
        long n;
        for (n = 1; n <= MAX_TRIES; n++) {
            /* a context may keep scratch it grew before a later allocation failed (it is
             * freed with the context), so the heap is compared with the context gone */
            bmc_ctx_free(e.ctx);
            e.ctx = NULL;
            size_t before = heap_in_use();
            fresh_ctx(&e);
            bmc__alloc_fail_after(n);
            bmc_status st = ops[k](&e);
            bmc__alloc_fail_after(0);
            if (st == BMC_OK) break;
            if (st != BMC_E_NOMEM)
                fail_msg("%s: allocation %ld failing gave %s (%s)", names[k], n, bmc_status_str(st), bmc_last_error());
            assert_true(bmc_last_error()[0] != 0);
            bmc_ctx_free(e.ctx);
            e.ctx = NULL;
            size_t after = heap_in_use();
            if (after != before)
                fail_msg("%s: allocation %ld failing left %zd bytes allocated", names[k], n, (ssize_t)(after - before));
        }
        printf("%-40s %3ld allocation(s) when all succeed; each of the first %ld failed in turn: BMC_E_NOMEM, "
               "nothing leaked\n", names[k], total, n - 1);
        assert_int_equal(n - 1, total);
    }
    bmc_ctx_free(e.ctx);
}

static void test_tokenize(void **s) {
    assert_int_equal(until_ok("bmc_tokenize (long text)", op_tokenize, NULL, NULL), 0);
}

static unsigned char *g_file; /* freed in teardown if a failed assertion skipped its free */

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static void test_decode(void **s) {
    /* the fuzz seeds (fuzz/gen_seeds.py): one small file per format and mode; their first
     * byte is fuzz_image's selector, skipped here */
    static const char *files[] = {"rgb.png", "gray.png", "la.png", "rgba.png", "pal.png", "gray16.png",
                                  "bw.png", "rgb.bmp", "gray.bmp", "pal.gif", "rgb.tga", "rle.tga",
                                  "rgb.ppm", "gray.pgm", "base.jpg", "prog.jpg", "gray.jpg", "sub.jpg"};
    int decoded = 0, problems = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[2048], name[128];
        snprintf(path, sizeof path, "%s/%s", g_corpus, files[f]);
        size_t size = 0;
        free(g_file);
        unsigned char *b = g_file = read_all(path, &size);
        if (!b) fail_msg("cannot read %s", path);
        for (int flags = 0; flags <= (strstr(files[f], "16") ? BMC_DECODE_PIL_16BIT : 0); flags++) {
            image_arg ia = {b + 1, size - 1, NULL, flags, {0}};
            snprintf(name, sizeof name, "decode %s%s", files[f], flags ? " (PIL 16-bit)" : "");
            problems += until_ok(name, op_decode, undo_decode, &ia);
            /* and the pipeline on the decoded image */
            assert_int_equal(op_decode(&ia), BMC_OK);
            snprintf(name, sizeof name, "crop+preprocess %s", files[f]);
            problems += until_ok(name, op_preprocess, NULL, &ia);
            bmc_image_free(&ia.img);
            decoded++;
        }
        free(b);
        g_file = NULL;
    }
    /* from files: the reading path, on two of the shared example images */
    static const char *shared[] = {"bone_X-ray.jpg", "covid_line_chart.png"};
    for (int k = 0; k < 2; k++) {
        char path[2048], name[128];
        snprintf(path, sizeof path, "%s/images/%s", g_shared, shared[k]);
        image_arg ia = {NULL, 0, path, 0, {0}};
        snprintf(name, sizeof name, "bmc_image_load %s", shared[k]);
        problems += until_ok(name, op_decode, undo_decode, &ia);
        decoded++;
    }
    assert_int_equal(decoded, 21);
    assert_int_equal(problems, 0);
}

static void test_zero_shot(void **s) {
    char path[2048];
    snprintf(path, sizeof path, "%s/images/bone_X-ray.jpg", g_shared);
    assert_int_equal(until_ok("bmc_zero_shot_file", op_zero_shot, NULL, path), 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static int setup(void **s) {
#ifndef UNDER_ASAN
    /* the leak check can fail: an allocation that is not freed shows in heap_in_use() */
    size_t h0 = heap_in_use();
    void *probe = bmc__malloc(40);
    size_t h1 = heap_in_use();
    bmc__free(probe);
    if (h1 <= h0 || heap_in_use() != h0) {
        fprintf(stderr, "heap statistics do not see a 40-byte allocation (%zu %zu %zu)\n", h0, h1, heap_in_use());
        return -1;
    }
#endif
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = 1;
    if (bmc_model_load(g_tiny, NULL, &g_model) != BMC_OK) {
        fprintf(stderr, "cannot load %s: %s\n", g_tiny, bmc_last_error());
        return -1;
    }
    return bmc_ctx_new(g_model, &p, &g_ctx) == BMC_OK ? 0 : -1;
}

static int teardown(void **s) {
    free(g_file);
    bmc_ctx_free(g_ctx);
    bmc_model_free(g_model);
    return 0;
}

int main(int argc, char **argv) {
    const char *tun = getenv("GLIBC_TUNABLES");
    if (!tun || !strstr(tun, "glibc.malloc.tcache_count=0")) {
        char v[1024];
        snprintf(v, sizeof v, "%s%sglibc.malloc.tcache_count=0", tun ? tun : "", tun && *tun ? ":" : "");
        setenv("GLIBC_TUNABLES", v, 1);
        execv("/proc/self/exe", argv);
        perror("re-executing with glibc.malloc.tcache_count=0"); /* then run anyway: checks are stricter */
    }
    const char *td = getenv("BMC_TESTDATA"), *sd = getenv("SHARED_DATA");
    snprintf(g_tiny, sizeof g_tiny, "%s/tiny.bmc", td && *td ? td : "build/testdata");
    snprintf(g_shared, sizeof g_shared, "%s", sd && *sd ? sd : "../shared/data");
    snprintf(g_corpus, sizeof g_corpus, "fuzz/corpus/image");
    /* one line of 600 words: past the tokenizer's inline buffers and the context length */
    size_t n = 0;
    for (int i = 0; n + 16 < sizeof g_long_text && i < 600; i++)
        n += (size_t)snprintf(g_long_text + n, sizeof g_long_text - n, "%s ", i % 3 ? "carcinoma" : "Café-naïve");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),     cmocka_unit_test(test_ctx),      cmocka_unit_test(test_encode),
        cmocka_unit_test(test_tokenize), cmocka_unit_test(test_decode),   cmocka_unit_test(test_zero_shot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
