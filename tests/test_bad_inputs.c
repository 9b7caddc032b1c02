/* test_bad_inputs.c - what a caller gets for bad inputs through the public API (docs/ROBUSTNESS.md
 * has one row per case, with the status and a message example). Every call must return a
 * status (never crash: the sanitizer build runs this too), a message naming the problem, and
 * leave no output half-made. Cases other helpers' tests already assert (damaged model files:
 * tests/test_model.c; tokenizer edge cases: tests/test_tokenizer.c; CLI batches with a bad
 * file: tests/py/test_cli_embed_image.py, test_cli_classify.py) are cited in the table, not
 * repeated here.
 *
 *   models   an image, a text file, an empty file, a directory given as the model
 *   images   empty, wrong type (model file, text, TIFF (corrupt)/WebP/DICOM/PDF magic), truncated at
 *            every length and corrupted at every byte (the fuzz seeds of every format),
 *            absurd declared sizes (PNG, BMP, GIF, PNM, TGA, JPEG headers) refused before any
 *            allocation, a directory, a missing file, bad arguments
 *   views    bad sizes, strides, formats, NULL pixels, a changed loaded image, in crop,
 *            preprocess and encode (also one bad view inside a batch of good ones)
 *   texts    empty, invalid UTF-8, 4 MB, NULL; bad ids to bmc_encode_ids
 *   lists    empty label lists / zero counts in similarity and zero-shot calls
 *   contexts bad parameters */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "biomedclip.h"
#include "crc32.h"
#include "error.h"
#include "image.h"

static char g_tiny[1024], g_shared[1024], g_tmpdir[1024];
static bmc_model *g_model;
static bmc_ctx *g_ctx;

/* status and a message that contains every given piece */
static void expect_(bmc_status got, bmc_status want, const char *what, const char *const *pieces, int n,
                    const char *file, int line) {
    if (got != want)
        fail_msg("%s:%d: %s: status %s, expected %s (message: %s)", file, line, what, bmc_status_str(got),
                 bmc_status_str(want), bmc_last_error());
    if (want == BMC_OK) return;
    const char *msg = bmc_last_error();
    if (!msg[0]) fail_msg("%s:%d: %s: no message", file, line, what);
    for (int i = 0; i < n; i++)
        if (!strstr(msg, pieces[i])) fail_msg("%s:%d: %s: message '%s' lacks '%s'", file, line, what, msg, pieces[i]);
}
#define EXPECT(call, want, what, ...)                                                                  \
    do {                                                                                                \
        const char *pieces_[] = {"", __VA_ARGS__};                                                      \
        expect_((call), (want), (what), pieces_ + 1, (int)(sizeof pieces_ / sizeof *pieces_) - 1,       \
                __FILE__, __LINE__);                                                                    \
    } while (0)

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

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- models ---------------------------------------------------------------------------------- */

static void test_model_wrong_files(void **s) {
    char path[2048];
    bmc_model *m = (bmc_model *)&m; /* must come back NULL */
    snprintf(path, sizeof path, "%s/images/bone_X-ray.jpg", g_shared);
    EXPECT(bmc_model_load(path, NULL, &m), BMC_E_FORMAT, "a JPEG as the model", "bone_X-ray.jpg", "not a .bmc");
    assert_null(m);
    snprintf(path, sizeof path, "%s/biomedbert-vocab.txt", g_shared);
    EXPECT(bmc_model_load(path, NULL, &m), BMC_E_FORMAT, "a text file as the model", "bad magic");
    snprintf(path, sizeof path, "%s/empty.bmc", g_tmpdir);
    write_all(path, "", 0);
    EXPECT(bmc_model_load(path, NULL, &m), BMC_E_FORMAT, "an empty model file", "empty.bmc", "too small");
    EXPECT(bmc_model_load(g_tmpdir, NULL, &m), BMC_E_IO, "a directory as the model", "not a regular file");
    EXPECT(bmc_model_load("/nonexistent/x.bmc", NULL, &m), BMC_E_IO, "a missing model", "/nonexistent/x.bmc",
           "cannot open");
    assert_null(m);
    /* accessors and frees accept NULL */
    bmc_model_free(NULL);
    assert_int_equal(bmc_model_embed_dim(NULL), 0);
    assert_null(bmc_model_token(NULL, 0, NULL));
    assert_null(bmc_model_token(g_model, -1, NULL));
    assert_null(bmc_model_token(g_model, bmc_model_vocab_size(g_model), NULL));
}

/* ---- images: whole-file problems ----------------------------------------------------------- */

static bmc_status load_mem(const void *d, size_t n, bmc_image *img) {
    memset(img, 0, sizeof *img);
    bmc_status st = bmc_image_load_memory(d, n, BMC_DECODE_DEFAULT, img);
    if (st != BMC_OK && (img->pixels || img->internal_)) fail_msg("a failed load left pixels in the image");
    return st;
}

static void test_image_wrong_type(void **s) {
    bmc_image img;
    unsigned char one = 0;
    EXPECT(load_mem(&one, 0, &img), BMC_E_IMAGE, "empty image data", "empty");
    EXPECT(bmc_image_load_memory(NULL, 10, 0, &img), BMC_E_INVALID_ARG, "NULL data", "NULL");
    EXPECT(bmc_image_load_memory(&one, 1, 0, NULL), BMC_E_INVALID_ARG, "NULL out", "NULL");
    const char text[] = "this is a text file, not an image\n";
    EXPECT(load_mem(text, sizeof text - 1, &img), BMC_E_IMAGE, "a text file", "not a recognised image format");
    size_t n;
    unsigned char *bmc = read_all(g_tiny, &n);
    assert_non_null(bmc);
    /* "BMCLIP" starts like a BMP ("BM"): it is refused as a bad BMP */
    EXPECT(load_mem(bmc, 4096, &img), BMC_E_IMAGE, "a .bmc model as an image", "BMP");
    free(bmc);
    /* a DICOM preamble over zeros: DCMTK's parse fails (DICOM builds), or the format is named
     * as left out (make DICOM=0) */
#ifdef BMC_WITH_DICOM
    const char *dicom_why = "could not be parsed";
#else
    const char *dicom_why = "not built in";
#endif
    struct { const char *magic; size_t len, at; const char *name, *why; } other[] = {
        /* TIFF: decoded (libtiff: "corrupt TIFF", the IFD offset is 0) or, in a TIFF=0 build,
         * "TIFF support not built in" */
        {"II*\0", 4, 0, "TIFF", "TIFF"}, {"MM\0*", 4, 0, "TIFF", "TIFF"},
        {"RIFF\0\0\0\0WEBP", 12, 0, "WebP", "not supported"}, {"DICM", 4, 128, "DICOM", dicom_why},
        {"%PDF-1.4", 8, 0, "PDF", "not supported"}};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        unsigned char buf[512];
        memset(buf, 0, sizeof buf);
        memcpy(buf + other[i].at, other[i].magic, other[i].len);
        EXPECT(load_mem(buf, sizeof buf, &img), BMC_E_IMAGE, other[i].name, other[i].name, other[i].why);
    }
    EXPECT(bmc_image_load(g_tmpdir, 0, &img), BMC_E_IO, "a directory as an image", "is a directory");
    EXPECT(bmc_image_load("/nonexistent/x.png", 0, &img), BMC_E_IO, "a missing image", "/nonexistent/x.png");
    char path[2048];
    snprintf(path, sizeof path, "%s/empty.png", g_tmpdir);
    write_all(path, "", 0);
    EXPECT(bmc_image_load(path, 0, &img), BMC_E_IMAGE, "an empty image file", "empty.png", "empty");
    bmc_image_free(NULL);
}

/* The fuzz seeds (fuzz/gen_seeds.py), first byte (fuzz_image's selector) skipped. */
static const char *k_seeds[] = {"rgb.png", "gray.png", "la.png", "rgba.png", "pal.png", "gray16.png", "bw.png",
                                "rgb.bmp", "gray.bmp", "pal.gif", "rgb.tga", "rle.tga", "rgb.ppm", "gray.pgm",
                                "base.jpg", "prog.jpg", "gray.jpg", "sub.jpg"};

static unsigned char *seed(const char *name, size_t *n) {
    char path[1024];
    snprintf(path, sizeof path, "fuzz/corpus/image/%s", name);
    size_t size;
    unsigned char *b = read_all(path, &size);
    if (!b || size < 2) fail_msg("cannot read %s", path);
    memmove(b, b + 1, size - 1);
    *n = size - 1;
    return b;
}

/* Every prefix of every seed: exact-size copies, so that ASan sees any read past the end.
 * A cut inside the pixel data must fail; cuts near the end may still decode (PNG without IEND). */
static void test_image_truncated(void **s) {
    long tried = 0, refused = 0;
    for (size_t f = 0; f < sizeof k_seeds / sizeof *k_seeds; f++) {
        size_t n;
        unsigned char *full = seed(k_seeds[f], &n);
        for (size_t cut = 0; cut < n; cut++) {
            unsigned char *b = malloc(cut ? cut : 1);
            memcpy(b, full, cut);
            bmc_image img;
            bmc_status st = load_mem(b, cut, &img);
            tried++;
            if (st == BMC_OK) {
                bmc_image_free(&img);
                if (cut < n / 2) fail_msg("%s cut to %zu of %zu bytes decoded", k_seeds[f], cut, n);
            } else {
                refused++;
                if (st != BMC_E_IMAGE)
                    fail_msg("%s cut to %zu bytes: %s (%s)", k_seeds[f], cut, bmc_status_str(st), bmc_last_error());
                if (!bmc_last_error()[0]) fail_msg("%s cut to %zu bytes: no message", k_seeds[f], cut);
            }
            free(b);
        }
        free(full);
    }
    printf("truncated images: %ld prefixes of %zu files, %ld refused with BMC_E_IMAGE, the rest decoded\n", tried,
           sizeof k_seeds / sizeof *k_seeds, refused);
}

/* Every byte of every seed flipped in turn (and then set to 0x00 and 0xFF): a status, a message. */
static void test_image_corrupt(void **s) {
    long tried = 0, refused = 0;
    unsigned char rgb[BMC_IMAGE_SIZE * BMC_IMAGE_SIZE * 3];
    for (size_t f = 0; f < sizeof k_seeds / sizeof *k_seeds; f++) {
        size_t n;
        unsigned char *b = seed(k_seeds[f], &n);
        for (size_t i = 0; i < n; i++) {
            unsigned char keep = b[i];
            for (int k = 0; k < 3; k++) {
                b[i] = k == 0 ? keep ^ 0xFF : k == 1 ? 0x00 : 0xFF;
                bmc_image img;
                bmc_status st = load_mem(b, n, &img);
                tried++;
                if (st == BMC_OK) {
                    /* whatever decoded must be usable */
                    if (bmc_image_crop(g_model, &img, rgb) != BMC_OK)
                        fail_msg("%s byte %zu: decoded but crop failed: %s", k_seeds[f], i, bmc_last_error());
                    bmc_image_free(&img);
                } else {
                    refused++;
                    if (st != BMC_E_IMAGE || !bmc_last_error()[0])
                        fail_msg("%s byte %zu: %s (%s)", k_seeds[f], i, bmc_status_str(st), bmc_last_error());
                }
            }
            b[i] = keep;
        }
        free(b);
    }
    printf("corrupt images: %ld single-byte corruptions, %ld refused with BMC_E_IMAGE, the rest decoded and "
           "cropped\n", tried, refused);
    assert_true(refused > 0);
}

/* A scan (SOS) that decodes with a Huffman table no DHT defined: stb_image 2.27 would use its
 * uninitialised table memory and index past its arrays (found by fuzz_image, F8 in
 * docs/ROBUSTNESS.md). In the seeds (a baseline and a progressive JPEG), each scan that decodes
 * with Huffman tables in turn gets its components pointed at table 3 (DC and AC), which no seed
 * defines: refused with BMC_E_IMAGE (libjpeg-turbo, the default decoder, refuses it too). */
static void test_jpeg_undefined_huffman_table(void **s) {
    static const char *jpegs[] = {"base.jpg", "prog.jpg"};
    int cases = 0;
    for (int f = 0; f < 2; f++) {
        size_t n;
        unsigned char *b = seed(jpegs[f], &n);
        int progressive = 0;
        for (size_t i = 0; i + 4 < n; i++) {
            if (b[i] != 0xFF) continue;
            if (b[i + 1] == 0xC2) progressive = 1;
            if (b[i + 1] != 0xDA) continue;
            size_t ns = b[i + 4], ss = b[i + 5 + 2 * ns], ah = b[i + 7 + 2 * ns] >> 4;
            if (progressive && ss == 0 && ah != 0) continue; /* a DC refinement reads raw bits */
            unsigned char *c = malloc(n);
            memcpy(c, b, n);
            for (size_t k = 0; k < ns; k++) c[i + 6 + 2 * k] = 0x33;
            char what[80];
            snprintf(what, sizeof what, "%s, scan at byte %zu using Huffman table 3", jpegs[f], i);
            bmc_image img;
            if (bmc__jpeg_backend() == 0)
                EXPECT(load_mem(c, n, &img), BMC_E_IMAGE, what, "no DHT defined");
            else
                EXPECT(load_mem(c, n, &img), BMC_E_IMAGE, what, "");
            free(c);
            cases++;
        }
        free(b);
    }
    printf("undefined Huffman tables: %d scans, each refused\n", cases);
    assert_true(cases >= 3); /* the baseline scan and at least two progressive ones */
}

/* Headers declaring absurd sizes: refused (BMC_E_IMAGE, "too large" / "empty") before any
 * allocation, which the allocation hook proves: with every allocation failing, the status is
 * still BMC_E_IMAGE and not BMC_E_NOMEM. */
static size_t png_chunk(unsigned char *p, const char *type, const unsigned char *data, uint32_t len) {
    p[0] = (unsigned char)(len >> 24), p[1] = (unsigned char)(len >> 16), p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
    memcpy(p + 4, type, 4);
    if (len) memcpy(p + 8, data, len);
    uint32_t crc = bmc__crc32(0, p + 4, len + 4);
    p[8 + len] = (unsigned char)(crc >> 24), p[9 + len] = (unsigned char)(crc >> 16);
    p[10 + len] = (unsigned char)(crc >> 8), p[11 + len] = (unsigned char)crc;
    return 12 + len;
}

static size_t make_png(unsigned char *p, uint32_t w, uint32_t h) {
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13] = {(unsigned char)(w >> 24), (unsigned char)(w >> 16), (unsigned char)(w >> 8),
                              (unsigned char)w, (unsigned char)(h >> 24), (unsigned char)(h >> 16),
                              (unsigned char)(h >> 8), (unsigned char)h, 8, 2, 0, 0, 0};
    size_t n = 8 + png_chunk(p + 8, "IHDR", ihdr, 13);
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    n += png_chunk(p + n, "IDAT", idat, sizeof idat);
    n += png_chunk(p + n, "IEND", NULL, 0);
    return n;
}

static void put_le(unsigned char *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void expect_refused_early(const unsigned char *b, size_t n, const char *what, const char *piece) {
    bmc_image img;
    bmc__alloc_fail_after(1); /* any allocation would fail */
    bmc_status st = load_mem(b, n, &img);
    long made = bmc__alloc_fail_after(0);
    if (st != BMC_E_IMAGE || !strstr(bmc_last_error(), piece))
        fail_msg("%s: %s (%s), expected BMC_E_IMAGE naming '%s'%s", what, bmc_status_str(st), bmc_last_error(),
                 piece, st == BMC_E_NOMEM ? " -- it allocated before checking the size" : "");
    printf("  %-44s BMC_E_IMAGE after %ld allocation attempt(s): %s\n", what, made, bmc_last_error());
}

static void test_image_absurd_sizes(void **s) {
    unsigned char b[1024];
    uint32_t sizes[][2] = {{100000, 100000}, {0x7FFFFFFF, 1}, {1, 0xFFFFFFFF}, {30000, 30000}};
    for (int i = 0; i < 4; i++) {
        char what[80];
        snprintf(what, sizeof what, "PNG %u x %u", sizes[i][0], sizes[i][1]);
        expect_refused_early(b, make_png(b, sizes[i][0], sizes[i][1]), what, "too large");
    }
    expect_refused_early(b, make_png(b, 0, 5), "PNG 0 x 5", "");
    /* BMP: BITMAPINFOHEADER with 2^31-1 x 2^31-1 (and a negative, top-down, height) */
    memset(b, 0, sizeof b);
    b[0] = 'B', b[1] = 'M';
    put_le(b + 2, 200, 4), put_le(b + 10, 54, 4), put_le(b + 14, 40, 4);
    put_le(b + 18, 0x7FFFFFFF, 4), put_le(b + 22, 0x7FFFFFFF, 4), put_le(b + 26, 1, 2), put_le(b + 28, 24, 2);
    expect_refused_early(b, 200, "BMP 2147483647 x 2147483647", "");
    put_le(b + 18, 40000, 4), put_le(b + 22, (uint32_t)-40000, 4);
    expect_refused_early(b, 200, "BMP 40000 x -40000 (top-down)", "too large");
    put_le(b + 22, 0x80000000u, 4);
    expect_refused_early(b, 200, "BMP height INT_MIN", "");
    /* GIF: 65535 x 65535 screen and image */
    memset(b, 0, sizeof b);
    memcpy(b, "GIF89a\xff\xff\xff\xff\x00\x00\x00" ",\0\0\0\0\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00;", 13 + 10 + 6);
    expect_refused_early(b, 13 + 10 + 6, "GIF 65535 x 65535", "too large");
    /* PNM */
    const char *pnm[] = {"P6\n99999999 99999999\n255\n", "P5\n40000 40000\n255\n", "P6\n4294967297 1\n255\n",
                         "P6\n-5 5\n255\n"};
    for (int i = 0; i < 4; i++) {
        memset(b, 0, sizeof b);
        memcpy(b, pnm[i], strlen(pnm[i]));
        char what[80];
        snprintf(what, sizeof what, "PNM '%.*s'", (int)strcspn(pnm[i] + 3, "\n"), pnm[i] + 3);
        expect_refused_early(b, 300, what, "");
    }
    /* TGA: uncompressed true colour 65535 x 65535 */
    memset(b, 0, sizeof b);
    b[2] = 2, put_le(b + 12, 65535, 2), put_le(b + 14, 65535, 2), b[16] = 24;
    expect_refused_early(b, 300, "TGA 65535 x 65535", "too large");
    /* JPEG: the seed with its SOF dimensions patched to 65535 x 65535 */
    size_t n;
    unsigned char *j = seed("base.jpg", &n);
    int patched = 0;
    for (size_t i = 0; i + 9 < n; i++)
        if (j[i] == 0xFF && j[i + 1] == 0xC0) {
            j[i + 5] = j[i + 6] = j[i + 7] = j[i + 8] = 0xFF;
            patched = 1;
            break;
        }
    assert_true(patched);
    expect_refused_early(j, n, "JPEG 65535 x 65535", "too large");
    free(j);
}

/* ---- views ------------------------------------------------------------------------------------ */

static void test_bad_views(void **s) {
    static unsigned char px[64 * 64 * 4];
    unsigned char rgb[BMC_IMAGE_SIZE * BMC_IMAGE_SIZE * 3];
    static float chw[3 * BMC_IMAGE_SIZE * BMC_IMAGE_SIZE];
    float out[3 * BMC_EMBED_DIM];
    struct { bmc_image v; const char *piece; bmc_status st; } bad[] = {
        {{0, 8, BMC_PIXEL_RGB, 24, px, NULL}, "size 0 x 8", BMC_E_INVALID_ARG},
        {{8, -1, BMC_PIXEL_RGB, 24, px, NULL}, "size 8 x -1", BMC_E_INVALID_ARG},
        {{-8, 8, BMC_PIXEL_RGB, 24, px, NULL}, "size -8 x 8", BMC_E_INVALID_ARG},
        {{8, 8, BMC_PIXEL_RGB, 23, px, NULL}, "stride 23", BMC_E_INVALID_ARG},
        {{8, 8, BMC_PIXEL_RGBA, -32, px, NULL}, "stride -32", BMC_E_INVALID_ARG},
        {{8, 8, (bmc_pixel_format)2, 16, px, NULL}, "format 2", BMC_E_INVALID_ARG},
        {{8, 8, (bmc_pixel_format)0, 16, px, NULL}, "format 0", BMC_E_INVALID_ARG},
        {{8, 8, BMC_PIXEL_RGB, 24, NULL, NULL}, "pixels is NULL", BMC_E_INVALID_ARG},
        {{0x7FFFFFFF, 1, BMC_PIXEL_GRAY, 0x7FFFFFFF, px, NULL}, "too large", BMC_E_IMAGE},
        {{1 << 20, 1 << 20, BMC_PIXEL_RGBA, 0x7FFFFFFF, px, NULL}, "too large", BMC_E_IMAGE},
        {{1 << 29, 1, BMC_PIXEL_RGBA, 1 << 30, px, NULL}, "stride 1073741824 < width 536870912", BMC_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char what[64];
        snprintf(what, sizeof what, "bad view %zu (%s)", i, bad[i].piece);
        EXPECT(bmc_image_crop(g_model, &bad[i].v, rgb), bad[i].st, what, bad[i].piece);
        EXPECT(bmc_image_preprocess(g_model, &bad[i].v, chw), bad[i].st, what, bad[i].piece);
        EXPECT(bmc_encode_image(g_ctx, &bad[i].v, 1, out, 1), bad[i].st, what, bad[i].piece);
        bmc_image_free(&bad[i].v); /* a no-op on views */
    }
    /* one bad view inside a batch of good ones: the call fails naming it */
    bmc_image batch[3] = {{64, 64, BMC_PIXEL_RGB, 192, px, NULL}, {64, 64, BMC_PIXEL_RGB, 100, px, NULL},
                          {64, 64, BMC_PIXEL_GRAY, 64, px, NULL}};
    EXPECT(bmc_encode_image(g_ctx, batch, 3, out, 1), BMC_E_INVALID_ARG, "a bad view in a batch", "image 1",
           "stride 100");
    /* a loaded image whose fields were changed */
    size_t n;
    unsigned char *b = seed("rgb.png", &n);
    bmc_image img;
    assert_int_equal(load_mem(b, n, &img), BMC_OK);
    img.width += 1;
    EXPECT(bmc_image_crop(g_model, &img, rgb), BMC_E_INVALID_ARG, "a changed loaded image", "fields were changed");
    img.width -= 1;
    assert_int_equal(bmc_image_crop(g_model, &img, rgb), BMC_OK);
    bmc_image_free(&img);
    assert_null(img.internal_); /* freed images are reset: freeing again is harmless */
    bmc_image_free(&img);
    free(b);
    /* NULL arguments */
    EXPECT(bmc_image_crop(g_model, NULL, rgb), BMC_E_INVALID_ARG, "NULL image", "NULL");
    EXPECT(bmc_image_crop(NULL, &batch[0], rgb), BMC_E_INVALID_ARG, "NULL model", "NULL");
    EXPECT(bmc_image_crop(g_model, &batch[0], NULL), BMC_E_INVALID_ARG, "NULL output", "NULL");
    EXPECT(bmc_encode_image(g_ctx, NULL, 1, out, 1), BMC_E_INVALID_ARG, "NULL images", "NULL");
    EXPECT(bmc_encode_image(g_ctx, batch, -1, out, 1), BMC_E_INVALID_ARG, "n = -1", "-1");
    EXPECT(bmc_encode_image(NULL, batch, 1, out, 1), BMC_E_INVALID_ARG, "NULL ctx", "NULL");
    EXPECT(bmc_encode_pixels(g_ctx, NULL, 1, out, 1), BMC_E_INVALID_ARG, "NULL pixels", "NULL");
}

/* ---- texts ------------------------------------------------------------------------------------ */

static void check_unit_rows(const float *v, int n, int dim, const char *what) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < dim; k++) {
            if (!isfinite(v[(size_t)i * dim + k])) fail_msg("%s: row %d has a non-finite value", what, i);
            s += (double)v[(size_t)i * dim + k] * v[(size_t)i * dim + k];
        }
        if (fabs(s - 1) > 1e-4) fail_msg("%s: row %d has norm^2 %g", what, i, s);
    }
}

static void test_texts(void **s) {
    int dim = bmc_model_embed_dim(g_model);
    float out[4 * BMC_EMBED_DIM];
    size_t big = 4u << 20;
    char *mb = malloc(big + 1);
    assert_non_null(mb);
    for (size_t i = 0; i < big; i++) mb[i] = "carcinoma \xff\xfe\xc3(x"[i % 15];
    mb[big] = 0;
    const char *texts[4] = {"", "\xff\xfe\xc0\xaf\xed\xa0\x80 invalid \xf0\x9f\x98", mb, " \t\n "};
    EXPECT(bmc_encode_text(g_ctx, texts, 4, out, 1), BMC_OK, "empty, invalid UTF-8, 4 MB, blank texts");
    check_unit_rows(out, 4, dim, "odd texts");
    /* the empty and the blank text are both [CLS] [SEP] (rows of one batch agree to ~1e-6,
     * not bit for bit: biomedclip.h, Determinism) */
    int ids[BMC_MAX_TOKENS], n = 0;
    assert_int_equal(bmc_tokenize(g_model, texts[3], ids, BMC_MAX_TOKENS, &n), BMC_OK);
    assert_int_equal(n, 2);
    for (int k = 0; k < dim; k++) assert_true(fabsf(out[k] - out[3 * dim + k]) < 1e-5f);
    EXPECT(bmc_tokenize(g_model, mb, ids, BMC_MAX_TOKENS, &n), BMC_OK, "4 MB text");
    assert_int_equal(n, bmc_model_context_length(g_model));
    EXPECT(bmc_tokenize(g_model, mb, ids, 10, &n), BMC_E_TOO_LONG, "4 MB text into 10 ids", "room for 10");
    free(mb);
    const char *with_null[2] = {"a", NULL};
    EXPECT(bmc_encode_text(g_ctx, with_null, 2, out, 1), BMC_E_INVALID_ARG, "a NULL text", "texts[1] is NULL");
    EXPECT(bmc_encode_text(g_ctx, texts, -1, out, 1), BMC_E_INVALID_ARG, "n = -1", "-1");
    EXPECT(bmc_encode_text(g_ctx, texts, 0, out, 1), BMC_OK, "n = 0");
    EXPECT(bmc_tokenize(g_model, NULL, ids, BMC_MAX_TOKENS, &n), BMC_E_INVALID_ARG, "NULL text", "NULL");
    /* bad ids: out of the vocabulary, negative, bad lengths */
    int vocab_rows = 0;
    {
        char d[4096];
        bmc_model_describe(g_model, d, sizeof d);
        const char *p = strstr(d, "vocabulary rows ");
        assert_non_null(p);
        vocab_rows = atoi(p + 16);
    }
    int bad_ids[][3] = {{2, vocab_rows, 3}, {2, -1, 3}, {2, 0x7FFFFFFF, 3}};
    for (int i = 0; i < 3; i++) {
        int lens[1] = {3};
        char what[64];
        snprintf(what, sizeof what, "id %d", bad_ids[i][1]);
        EXPECT(bmc_encode_ids(g_ctx, bad_ids[i], lens, 1, out, 1), BMC_E_INVALID_ARG, what, "id");
    }
    int good[3] = {2, 100, 3}, lens0[1] = {0}, lens_long[1] = {bmc_model_context_length(g_model) + 1};
    EXPECT(bmc_encode_ids(g_ctx, good, lens0, 1, out, 1), BMC_E_INVALID_ARG, "length 0", "0");
    int *many = calloc((size_t)lens_long[0], sizeof(int));
    EXPECT(bmc_encode_ids(g_ctx, many, lens_long, 1, out, 1), BMC_E_INVALID_ARG, "length context + 1", "");
    free(many);
}

/* ---- empty lists ------------------------------------------------------------------------------ */

static void test_empty_lists(void **s) {
    int dim = bmc_model_embed_dim(g_model);
    float a[BMC_EMBED_DIM] = {1}, b[BMC_EMBED_DIM] = {1}, out[4] = {0};
    EXPECT(bmc_similarity(a, 1, b, 0, dim, out), BMC_E_INVALID_ARG, "similarity with no texts", "");
    EXPECT(bmc_similarity(a, 0, b, 1, dim, out), BMC_E_INVALID_ARG, "similarity with no images", "");
    EXPECT(bmc_similarity(a, 1, b, 1, 0, out), BMC_E_INVALID_ARG, "similarity of dimension 0", "");
    EXPECT(bmc_zero_shot_probs(g_model, a, 1, b, 0, out), BMC_E_INVALID_ARG, "zero-shot with no labels", "");
    char path[2048];
    snprintf(path, sizeof path, "%s/images/bone_X-ray.jpg", g_shared);
    const char *labels[1] = {"x"};
    EXPECT(bmc_zero_shot_file(g_ctx, path, labels, 0, out), BMC_E_INVALID_ARG, "zero-shot file with no labels",
           "n = 0");
    EXPECT(bmc_zero_shot_file(g_ctx, path, NULL, 1, out), BMC_E_INVALID_ARG, "NULL labels", "NULL");
    EXPECT(bmc_zero_shot_file(g_ctx, g_tmpdir, labels, 1, out), BMC_E_IO, "zero-shot on a directory",
           "is a directory");
}

static void test_ctx_params(void **s) {
    bmc_ctx *c = (bmc_ctx *)&c;
    bmc_ctx_params p = bmc_ctx_default_params();
    p.max_batch = -1;
    EXPECT(bmc_ctx_new(g_model, &p, &c), BMC_E_INVALID_ARG, "max_batch -1", "max_batch");
    assert_null(c);
    p.max_batch = 1 << 20;
    EXPECT(bmc_ctx_new(g_model, &p, &c), BMC_E_INVALID_ARG, "max_batch 2^20", "max_batch");
    p = bmc_ctx_default_params();
    p.n_threads = -3;
    EXPECT(bmc_ctx_new(g_model, &p, &c), BMC_E_INVALID_ARG, "n_threads -3", "n_threads");
    EXPECT(bmc_ctx_new(NULL, NULL, &c), BMC_E_INVALID_ARG, "NULL model", "NULL");
    EXPECT(bmc_ctx_new(g_model, NULL, NULL), BMC_E_INVALID_ARG, "NULL out", "NULL");
    bmc_ctx_free(NULL);
    assert_null(bmc_ctx_model(NULL));
}

static int setup(void **s) {
    bmc_ctx_params p = bmc_ctx_default_params();
    p.max_batch = 2;
    if (bmc_model_load(g_tiny, NULL, &g_model) != BMC_OK || bmc_ctx_new(g_model, &p, &g_ctx) != BMC_OK) {
        fprintf(stderr, "cannot load %s: %s\n", g_tiny, bmc_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **s) {
    bmc_ctx_free(g_ctx);
    bmc_model_free(g_model);
    char path[2048];
    snprintf(path, sizeof path, "%s/empty.bmc", g_tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.png", g_tmpdir);
    unlink(path);
    rmdir(g_tmpdir);
    return 0;
}

int main(void) {
    const char *td = getenv("BMC_TESTDATA"), *sd = getenv("SHARED_DATA"), *tmp = getenv("TMPDIR");
    snprintf(g_tiny, sizeof g_tiny, "%s/tiny.bmc", td && *td ? td : "build/testdata");
    snprintf(g_shared, sizeof g_shared, "%s", sd && *sd ? sd : "../shared/data");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/bmc_bad_inputs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror(g_tmpdir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_wrong_files), cmocka_unit_test(test_image_wrong_type),
        cmocka_unit_test(test_image_truncated),   cmocka_unit_test(test_image_corrupt),
        cmocka_unit_test(test_jpeg_undefined_huffman_table),
        cmocka_unit_test(test_image_absurd_sizes), cmocka_unit_test(test_bad_views),
        cmocka_unit_test(test_texts),             cmocka_unit_test(test_empty_lists),
        cmocka_unit_test(test_ctx_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
