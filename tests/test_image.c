/* test_image.c - image decoding and preprocessing, without a model file.
 *
 * Small images are built here byte by byte (PNG with stored zlib blocks, BMP, GIF, TGA, PNM),
 * so every expected pixel is known. Checked: modes and pixels of decoded files, PIL's gray
 * ramp for palette entries a file leaves unset, the 16-bit choice (scaled by default, PIL's
 * clipping with BMC_DECODE_PIL_16BIT), premultiplied resizing of transparent pixels (black,
 * as in PIL: no compositing), torchvision's size and round-half-even crop rules, and the float
 * input against values computed by torch (to_tensor + Normalize). Errors: truncated and
 * corrupt files (every prefix of each built file and of the shared example images), empty
 * files, text files, directories, missing files, headers declaring absurd sizes (refused before
 * any allocation), NULL arguments, bad views, bad configurations, failing allocations.
 * The pixel-exact comparison with PIL on hundreds of files is tests/py/test_image_pixels.py. */
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
#include "cpu.h"
#include "crc32.h"
#include "error.h"
#include "format.h"
#include "image.h"

static bmc__config g_cfg;
static char g_shared[1024];

static bmc__config make_config(int size) {
    bmc__config c;
    memset(&c, 0, sizeof c);
    c.image_size = (uint32_t)size;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(c.image_mean, mean, sizeof mean);
    memcpy(c.image_std, std, sizeof std);
    return c;
}

/* ---- builders ---------------------------------------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static void le(uint8_t *p, uint32_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t len) {
    be32(p, len);
    memcpy(p + 4, type, 4);
    if (len) memcpy(p + 8, data, len);
    be32(p + 8 + len, bmc__crc32(0, p + 4, len + 4));
    return 12 + len;
}

/* A PNG of unfiltered rows raw[h][rowbytes] (filter byte 0 added here), zlib stored blocks. */
static size_t build_png(uint8_t *out, uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *raw,
                        size_t rowbytes, const uint8_t *plte, uint32_t plte_len) {
    static uint8_t z[1 << 18];
    size_t n = 0, zn = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    n = 8;
    uint8_t ihdr[13];
    be32(ihdr, w), be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)ctype, ihdr[10] = ihdr[11] = ihdr[12] = 0;
    n += chunk(out + n, "IHDR", ihdr, 13);
    if (plte) n += chunk(out + n, "PLTE", plte, plte_len);
    size_t len = h * (rowbytes + 1), done = 0;
    uint32_t a = 1, b = 0;
    z[zn++] = 0x78, z[zn++] = 0x01;
    while (done < len || len == 0) { /* stored blocks of at most 65535 bytes */
        size_t blk = len - done > 65535 ? 65535 : len - done;
        z[zn++] = done + blk == len ? 1 : 0;
        le(z + zn, (uint32_t)blk, 2), le(z + zn + 2, (uint32_t)~blk & 0xffff, 2);
        zn += 4;
        for (size_t i = done; i < done + blk; i++) {
            size_t y = i / (rowbytes + 1), x = i % (rowbytes + 1);
            uint8_t v = x == 0 ? 0 : raw[y * rowbytes + x - 1]; /* filter byte 0, then the row */
            z[zn++] = v;
            a = (a + v) % 65521, b = (b + a) % 65521;
        }
        done += blk;
        if (len == 0) break;
    }
    be32(z + zn, b << 16 | a);
    zn += 4;
    n += chunk(out + n, "IDAT", z, (uint32_t)zn);
    n += chunk(out + n, "IEND", NULL, 0);
    return n;
}

/* GIF 2x2 with a 4-entry global palette: codes clear, i0, i1, clear, i2, i3, end (3 bits). */
static size_t build_gif(uint8_t *out, const uint8_t idx[4], int transparent) {
    size_t n = 0;
    memcpy(out, "GIF89a\x02\x00\x02\x00\x81\x00\x00", 13);
    n = 13;
    const uint8_t pal[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    memcpy(out + n, pal, 12);
    n += 12;
    if (transparent >= 0) {
        memcpy(out + n, "\x21\xf9\x04\x01\x00\x00\x00\x00", 8);
        out[n + 6] = (uint8_t)transparent;
        n += 8;
    }
    memcpy(out + n, ",\0\0\0\0\x02\x00\x02\x00\x00\x02", 11);
    n += 11;
    int codes[7] = {4, idx[0], idx[1], 4, idx[2], idx[3], 5};
    uint32_t acc = 0;
    int bits = 0;
    uint8_t data[8];
    int dn = 0;
    for (int i = 0; i < 7; i++) {
        acc |= (uint32_t)codes[i] << bits;
        bits += 3;
        while (bits >= 8) data[dn++] = (uint8_t)acc, acc >>= 8, bits -= 8;
    }
    if (bits) data[dn++] = (uint8_t)acc;
    out[n++] = (uint8_t)dn;
    memcpy(out + n, data, dn);
    n += dn;
    out[n++] = 0;
    out[n++] = ';';
    return n;
}

static size_t build_bmp24(uint8_t *out, int w, int h, const uint8_t *rgb) {
    int stride = (w * 3 + 3) & ~3;
    memset(out, 0, 54 + (size_t)stride * h);
    out[0] = 'B', out[1] = 'M';
    le(out + 2, 54 + stride * h, 4), le(out + 10, 54, 4), le(out + 14, 40, 4);
    le(out + 18, w, 4), le(out + 22, h, 4), le(out + 26, 1, 2), le(out + 28, 24, 2);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) out[54 + (size_t)(h - 1 - y) * stride + x * 3 + c] = rgb[(y * w + x) * 3 + 2 - c];
    return 54 + (size_t)stride * h;
}

static bmc_status load(const uint8_t *d, size_t n, int flags, bmc_image *img) {
    bmc_status st = bmc_image_load_memory(d, n, flags, img);
    if (st != BMC_OK) {
        assert_null(img->pixels);
        assert_null(img->internal_);
        assert_true(bmc_last_error()[0] != 0);
    }
    return st;
}

/* ---- decoding ---------------------------------------------------------------------------------- */

static void test_png_modes(void **s) {
    static uint8_t f[1 << 17];
    bmc_image im;
    /* RGB 8-bit 2x1 */
    const uint8_t rgb[6] = {1, 2, 3, 250, 251, 252};
    assert_int_equal(load(f, build_png(f, 2, 1, 8, 2, rgb, 6, NULL, 0), 0, &im), BMC_OK);
    assert_int_equal(im.format, BMC_PIXEL_RGB);
    assert_memory_equal(im.pixels, rgb, 6);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "RGB");
    bmc_image_free(&im);
    assert_null(im.internal_);
    /* palette, 2-bit, PLTE with 1 entry: indices 1..3 keep PIL's gray ramp */
    const uint8_t p2[1] = {0x1B}; /* 0,1,2,3 */
    const uint8_t plte[3] = {200, 100, 50};
    assert_int_equal(load(f, build_png(f, 4, 1, 2, 3, p2, 1, plte, 3), 0, &im), BMC_OK);
    const uint8_t want_p[12] = {200, 100, 50, 1, 1, 1, 2, 2, 2, 3, 3, 3};
    assert_memory_equal(im.pixels, want_p, 12);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "P");
    bmc_image_free(&im);
    /* gray 1-bit -> '1' (0/255), gray 4-bit -> 'L' scaled by 17 */
    const uint8_t g1[1] = {0xA0}; /* 1,0,1,0 */
    assert_int_equal(load(f, build_png(f, 4, 1, 1, 0, g1, 1, NULL, 0), 0, &im), BMC_OK);
    const uint8_t want_1[4] = {255, 0, 255, 0};
    assert_memory_equal(im.pixels, want_1, 4);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "1");
    bmc_image_free(&im);
    const uint8_t g4[1] = {0x3F};
    assert_int_equal(load(f, build_png(f, 2, 1, 4, 0, g4, 1, NULL, 0), 0, &im), BMC_OK);
    assert_int_equal(im.pixels[0], 3 * 17);
    assert_int_equal(im.pixels[1], 255);
    bmc_image_free(&im);
    /* gray+alpha -> 'LA', seen as RGBA with R = G = B */
    const uint8_t ga[4] = {7, 9, 200, 255};
    assert_int_equal(load(f, build_png(f, 2, 1, 8, 4, ga, 4, NULL, 0), 0, &im), BMC_OK);
    const uint8_t want_la[8] = {7, 7, 7, 9, 200, 200, 200, 255};
    assert_int_equal(im.format, BMC_PIXEL_RGBA);
    assert_memory_equal(im.pixels, want_la, 8);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "LA");
    bmc_image_free(&im);
    /* 16-bit RGB keeps the high bytes (PIL's RGB;16B) */
    const uint8_t rgb16[6] = {0x12, 0xff, 0x34, 0x00, 0xfe, 0x80};
    assert_int_equal(load(f, build_png(f, 1, 1, 16, 2, rgb16, 6, NULL, 0), 0, &im), BMC_OK);
    const uint8_t want16[3] = {0x12, 0x34, 0xfe};
    assert_memory_equal(im.pixels, want16, 3);
    bmc_image_free(&im);
}

static void test_16bit_gray(void **s) {
    static uint8_t f[1 << 16];
    static uint8_t raw[8 * 8 * 2];
    bmc_image im;
    unsigned char rgb[3];
    bmc__config c1 = make_config(1);
    /* value 300 everywhere: scaled to (300 * 255 + 32767) / 65535 = 1; PIL clips it to 255 */
    for (int i = 0; i < 64; i++) raw[2 * i] = 300 >> 8, raw[2 * i + 1] = 300 & 255;
    size_t n = build_png(f, 8, 8, 16, 0, raw, 16, NULL, 0);
    assert_int_equal(load(f, n, BMC_DECODE_DEFAULT, &im), BMC_OK);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "I");
    assert_int_equal(im.pixels[0], 1);
    assert_int_equal(bmc__image_crop(&c1, &im, rgb), BMC_OK);
    assert_int_equal(rgb[0], 1);
    bmc_image_free(&im);
    assert_int_equal(load(f, n, BMC_DECODE_PIL_16BIT, &im), BMC_OK);
    assert_int_equal(im.pixels[0], 255);
    assert_int_equal(bmc__image_crop(&c1, &im, rgb), BMC_OK);
    assert_int_equal(rgb[0], 255);
    bmc_image_free(&im);
    /* value 100: both agree with PIL's 'I' values below 255 only under the PIL flag */
    for (int i = 0; i < 64; i++) raw[2 * i] = 0, raw[2 * i + 1] = 100;
    n = build_png(f, 8, 8, 16, 0, raw, 16, NULL, 0);
    assert_int_equal(load(f, n, BMC_DECODE_PIL_16BIT, &im), BMC_OK);
    assert_int_equal(bmc__image_crop(&c1, &im, rgb), BMC_OK);
    assert_int_equal(rgb[2], 100);
    bmc_image_free(&im);
    assert_int_equal(bmc_image_load_memory(f, n, 4, &im), BMC_E_INVALID_ARG); /* unknown flag */
}

/* bmc_load_params and bmc_image_get_info: the _ex calls equal the plain ones with default params,
 * every decoder reports what it saw, a frame past a single-image file and bad params are refused,
 * a caller's view has no info. */
static void test_load_params_and_info(void **s) {
    static uint8_t f[1 << 16];
    static uint8_t raw[4 * 2 * 2];
    bmc_image im, im2;
    bmc_image_info info;
    const uint8_t rgb[6] = {1, 2, 3, 250, 251, 252};
    size_t n = build_png(f, 2, 1, 8, 2, rgb, 6, NULL, 0);
    bmc_load_params p = bmc_load_default_params();
    assert_int_equal(p.flags, BMC_DECODE_DEFAULT);
    assert_int_equal(p.frame, 0);
    assert_int_equal(p.window, BMC_WINDOW_AUTO);
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_OK);
    assert_int_equal(bmc_image_load_memory_ex(f, n, NULL, &im2), BMC_OK);
    assert_memory_equal(im.pixels, im2.pixels, 6);
    assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
    assert_string_equal(info.format, "PNG");
    assert_string_equal(info.mode, "RGB");
    assert_int_equal(info.width, 2);
    assert_int_equal(info.height, 1);
    assert_int_equal(info.bits_stored, 8);
    assert_int_equal(info.n_frames, 1);
    assert_int_equal(info.frame, 0);
    assert_string_equal(info.photometric, "");
    assert_string_equal(info.transfer_syntax, "");
    assert_string_equal(info.window, "");
    bmc_image_free(&im);
    bmc_image_free(&im2);
    /* frame 1 of a PNG: refused, naming the frame */
    p.frame = 1;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_IMAGE);
    assert_non_null(strstr(bmc_last_error(), "frame 1"));
    assert_null(im.pixels);
    /* bad params */
    p = bmc_load_default_params();
    p.frame = -1;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_INVALID_ARG);
    p = bmc_load_default_params();
    p.window = BMC_WINDOW_CENTER_WIDTH, p.window_center = 40, p.window_width = 0;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_INVALID_ARG);
    p.window = (bmc_window_mode)9;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_INVALID_ARG);
    p = bmc_load_default_params();
    p.window = BMC_WINDOW_FILE, p.window_index = -2;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_INVALID_ARG);
    p = bmc_load_default_params();
    p.flags = 8;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_INVALID_ARG);
    /* 16-bit gray PNG: bits 16, mode I, the scaling named */
    for (int i = 0; i < 4; i++) raw[2 * i] = 0x12, raw[2 * i + 1] = 0x34;
    n = build_png(f, 2, 2, 16, 0, raw, 4, NULL, 0);
    assert_int_equal(load(f, n, 0, &im), BMC_OK);
    assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
    assert_int_equal(info.bits_stored, 16);
    assert_string_equal(info.mode, "I");
    assert_non_null(strstr(info.window, "scale 16->8"));
    bmc_image_free(&im);
    /* other decoders: GIF, BMP, PNM (a 12-bit PGM says 12 bits) */
    const uint8_t idx[4] = {0, 3, 2, 1};
    assert_int_equal(load(f, build_gif(f, idx, -1), 0, &im), BMC_OK);
    assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
    assert_string_equal(info.format, "GIF");
    assert_string_equal(info.mode, "P");
    bmc_image_free(&im);
    assert_int_equal(load(f, build_bmp24(f, 1, 2, rgb), 0, &im), BMC_OK);
    assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
    assert_string_equal(info.format, "BMP");
    assert_int_equal(info.height, 2);
    bmc_image_free(&im);
    const char p5[] = "P5 1 1 4095 \x0f\xff";
    assert_int_equal(load((const uint8_t *)p5, sizeof p5 - 1, 0, &im), BMC_OK);
    assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
    assert_string_equal(info.format, "PNM");
    assert_int_equal(info.bits_stored, 12);
    bmc_image_free(&im);
    /* a caller's view, NULLs */
    const uint8_t px[1] = {7};
    bmc_image view = {1, 1, BMC_PIXEL_GRAY, 1, px, NULL};
    assert_int_equal(bmc_image_get_info(&view, &info), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_image_get_info(NULL, &info), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_image_get_info(&view, NULL), BMC_E_INVALID_ARG);
}

static void test_other_formats(void **s) {
    static uint8_t f[1 << 16];
    bmc_image im;
    /* GIF: palette mode, transparency index fills nothing on frame 0 (all pixels written) */
    const uint8_t idx[4] = {0, 3, 2, 1};
    assert_int_equal(load(f, build_gif(f, idx, 3), 0, &im), BMC_OK);
    const uint8_t want_gif[12] = {10, 20, 30, 100, 110, 120, 70, 80, 90, 40, 50, 60};
    assert_memory_equal(im.pixels, want_gif, 12);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "P");
    bmc_image_free(&im);
    /* BMP 24-bit 3x2 (row padding, bottom-up) */
    const uint8_t rgb[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    assert_int_equal(load(f, build_bmp24(f, 3, 2, rgb), 0, &im), BMC_OK);
    assert_memory_equal(im.pixels, rgb, 18);
    bmc_image_free(&im);
    /* TGA: 16-bit 5-5-5 true colour, top-down, right-to-left (PIL mirrors it) */
    uint8_t t[18 + 4] = {0, 0, 2};
    le(t + 12, 2, 2), le(t + 14, 1, 2);
    t[16] = 16, t[17] = 0x30;
    le(t + 18, 31u << 10, 2); /* red, stored first = rightmost */
    le(t + 20, 1u, 2);        /* blue 1 -> 1 * 255 / 31 = 8 */
    assert_int_equal(load(t, sizeof t, 0, &im), BMC_OK);
    const uint8_t want_tga[6] = {0, 0, 8, 255, 0, 0};
    assert_memory_equal(im.pixels, want_tga, 6);
    bmc_image_free(&im);
    /* PNM: maxval 15 scaled with round(v / 15 * 255); plain P2; P4 bits (1 = black) */
    const char p5[] = "P5\n# c\n2 1\n15\n\x01\x0f";
    assert_int_equal(load((const uint8_t *)p5, sizeof p5 - 1, 0, &im), BMC_OK);
    assert_int_equal(im.pixels[0], 17);
    assert_int_equal(im.pixels[1], 255);
    bmc_image_free(&im);
    const char p2[] = "P2 3 1 100 0 50 100";
    assert_int_equal(load((const uint8_t *)p2, sizeof p2 - 1, 0, &im), BMC_OK);
    assert_int_equal(im.pixels[1], 128); /* round(127.5) = 128 (half to even) */
    bmc_image_free(&im);
    const char p4[] = "P4\n3 1\n\xa0";
    assert_int_equal(load((const uint8_t *)p4, sizeof p4 - 1, 0, &im), BMC_OK);
    const uint8_t want_p4[3] = {0, 255, 0};
    assert_memory_equal(im.pixels, want_p4, 3);
    assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), "1");
    bmc_image_free(&im);
}

static void test_example_images(void **s) {
    const char *names[] = {"H_and_E_histopathology.jpg", "brain_MRI.jpg", "covid_line_chart.png", "pie_chart.png"};
    const int w[] = {1200, 1200, 298, 2817}, h[] = {800, 1285, 169, 2556};
    const char *modes[] = {"RGB", "L", "P", "RGB"};
    for (int i = 0; i < 4; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/images/%s", g_shared, names[i]);
        bmc_image im;
        bmc_status st = bmc_image_load(path, 0, &im);
        if (st != BMC_OK) fail_msg("%s: %s", path, bmc_last_error());
        assert_int_equal(im.width, w[i]);
        assert_int_equal(im.height, h[i]);
        assert_string_equal(bmc__mode_name(bmc__image_mode(&im)), modes[i]);
        bmc_image_free(&im);
        bmc_image_free(&im); /* freeing twice is harmless */
    }
}

/* ---- preprocessing ----------------------------------------------------------------------------- */

static void test_sizes_and_offsets(void **s) {
    int W, H;
    struct { int w, h, nw, nh; } r[] = {{1200, 800, 336, 224}, {640, 427, 335, 224}, {220, 166, 296, 224},
                                         {170, 228, 224, 300}, {1200, 1285, 224, 239}, {298, 169, 394, 224},
                                         {1, 1, 224, 224}, {3, 500, 224, 37333}, {224, 224, 224, 224}};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        bmc__resize_dims(r[i].w, r[i].h, 224, &W, &H);
        assert_int_equal(W, r[i].nw);
        assert_int_equal(H, r[i].nh);
    }
    /* round half to even: 55.5 -> 56, 7.5 -> 8, 34.5 -> 34, 36.5 -> 36, 0.5 -> 0 */
    assert_int_equal(bmc__crop_offset(335, 224), 56);
    assert_int_equal(bmc__crop_offset(239, 224), 8);
    assert_int_equal(bmc__crop_offset(293, 224), 34);
    assert_int_equal(bmc__crop_offset(297, 224), 36);
    assert_int_equal(bmc__crop_offset(225, 224), 0);
    assert_int_equal(bmc__crop_offset(224, 224), 0);
}

static void test_crop_uniform_and_alpha(void **s) {
    static uint8_t px[600 * 700 * 4];
    static unsigned char rgb[224 * 224 * 3];
    int sizes[][2] = {{1, 1}, {3, 500}, {224, 224}, {700, 30}, {225, 600}};
    for (int k = 0; k < 5; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        for (int i = 0; i < w * h; i++) px[4 * i] = 200, px[4 * i + 1] = 100, px[4 * i + 2] = 50, px[4 * i + 3] = 0;
        bmc_image v = {w, h, BMC_PIXEL_RGBA, w * 4, px, NULL};
        assert_int_equal(bmc__image_crop(&g_cfg, &v, rgb), BMC_OK);
        /* transparent pixels: resized premultiplied they become black, as in PIL; at the model
         * size no resize happens and the colour stays */
        int resized = !(w == 224 && h == 224);
        for (int i = 0; i < 224 * 224; i++)
            if (rgb[3 * i] != (resized ? 0 : 200) || rgb[3 * i + 2] != (resized ? 0 : 50))
                fail_msg("%dx%d RGBA alpha 0: pixel %d is %d,%d,%d", w, h, i, rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
        /* the same as RGB: a constant image stays constant */
        v.format = BMC_PIXEL_RGB;
        v.stride = w * 3 + 1;
        for (int i = 0; i < h * v.stride; i++) px[i] = (uint8_t)(i % v.stride < w * 3 ? 77 + (i % v.stride) % 3 : 0);
        assert_int_equal(bmc__image_crop(&g_cfg, &v, rgb), BMC_OK);
        for (int i = 0; i < 224 * 224 * 3; i++)
            if (rgb[i] != 77 + i % 3) fail_msg("%dx%d RGB: byte %d is %d", w, h, i, rgb[i]);
    }
    /* another model size */
    bmc__config c32 = make_config(32);
    bmc_image g = {5, 9, BMC_PIXEL_GRAY, 5, px, NULL};
    memset(px, 9, 45);
    assert_int_equal(bmc__image_crop(&c32, &g, rgb), BMC_OK);
    assert_int_equal(rgb[32 * 32 * 3 - 1], 9);
}

static void test_normalize_matches_torch(void **s) {
    /* torch: x.float().div(255).sub_(mean).div_(std) for x = 0, 1, 128, 254, 255, float32 bits */
    static const uint32_t want[3][5] = {{0xbfe568dc, 0xbfe38a7f, 0x3d9c5620, 0x3ff536e5, 0x3ff71541},
                                        {0xbfe044b8, 0xbfde58f1, 0x3e2cf36b, 0x4003d502, 0x4004cae5},
                                        {0xbfbd77d8, 0xbfbba5e1, 0x3eae0dc4, 0x40086d66, 0x40095660}};
    const uint8_t vals[5] = {0, 1, 128, 254, 255};
    static float chw[3 * 224 * 224];
    uint8_t px[224 * 224];
    for (int k = 0; k < 5; k++) {
        memset(px, vals[k], sizeof px);
        bmc_image v = {224, 224, BMC_PIXEL_GRAY, 224, px, NULL};
        assert_int_equal(bmc__image_to_input(&g_cfg, &v, chw), BMC_OK);
        for (int c = 0; c < 3; c++) {
            uint32_t got;
            memcpy(&got, &chw[c * 224 * 224 + 1000], 4);
            if (got != want[c][k]) fail_msg("value %d channel %d: 0x%08x, torch 0x%08x", vals[k], c, got, want[c][k]);
        }
    }
}

/* ---- errors ------------------------------------------------------------------------------------ */

static void expect_err(bmc_status got, bmc_status want, const char *piece) {
    if (got != want) fail_msg("status %d, want %d (%s)", got, want, bmc_last_error());
    if (piece && !strstr(bmc_last_error(), piece)) fail_msg("message '%s' lacks '%s'", bmc_last_error(), piece);
}

static void test_file_errors(void **s) {
    bmc_image im;
    char dir[] = "/tmp/bmc_test_image_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    expect_err(bmc_image_load(dir, 0, &im), BMC_E_IO, "is a directory");
    snprintf(path, sizeof path, "%s/missing.png", dir);
    expect_err(bmc_image_load(path, 0, &im), BMC_E_IO, "missing.png");
    snprintf(path, sizeof path, "%s/empty.jpg", dir);
    FILE *f = fopen(path, "wb");
    fclose(f);
    expect_err(bmc_image_load(path, 0, &im), BMC_E_IMAGE, "empty");
    unlink(path);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    f = fopen(path, "wb");
    fputs("Patient notes: chest X-ray, no findings.\n", f);
    fclose(f);
    expect_err(bmc_image_load(path, 0, &im), BMC_E_IMAGE, "not a recognised image format");
    assert_non_null(strstr(bmc_last_error(), "notes.txt"));
    unlink(path);
    rmdir(dir);
    expect_err(bmc_image_load(NULL, 0, &im), BMC_E_INVALID_ARG, "NULL");
    expect_err(bmc_image_load("x.png", 0, NULL), BMC_E_INVALID_ARG, "NULL");
    expect_err(bmc_image_load_memory(NULL, 3, 0, &im), BMC_E_INVALID_ARG, "NULL");
    expect_err(bmc_image_load_memory("x", 0, 0, &im), BMC_E_IMAGE, "empty");
    bmc_image_free(NULL);
}

static void check_prefixes(const uint8_t *d, size_t n, const char *what, size_t must_fail_below) {
    bmc_image im;
    uint8_t *b = malloc(n);
    size_t step = n > 4000 ? n / 997 : 1;
    for (size_t cut = 0; cut < n; cut += step) {
        memcpy(b, d, cut);
        bmc_status st = bmc_image_load_memory(b, cut, 0, &im);
        if (st == BMC_OK) {
            if (cut < must_fail_below) fail_msg("%s cut to %zu of %zu bytes decoded", what, cut, n);
            bmc_image_free(&im);
        } else if (st != BMC_E_IMAGE) {
            fail_msg("%s cut to %zu bytes: status %d (%s)", what, cut, st, bmc_last_error());
        }
    }
    free(b);
}

static void test_truncated(void **s) {
    static uint8_t f[1 << 16], raw[64 * 64 * 3];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 7);
    size_t n = build_png(f, 64, 64, 8, 2, raw, 192, NULL, 0);
    check_prefixes(f, n, "PNG", n - 12); /* only IEND may go */
    n = build_bmp24(f, 64, 64, raw);
    check_prefixes(f, n, "BMP", n - 2);
    const uint8_t idx[4] = {1, 2, 3, 0};
    n = build_gif(f, idx, -1);
    check_prefixes(f, n, "GIF", n - 2);
    bmc_image im;
    expect_err(bmc_image_load_memory(f, n - 4, 0, &im), BMC_E_IMAGE, "truncated");
    const char *names[] = {"bone_X-ray.jpg", "covid_line_chart.png", "squamous_cell_carcinoma_histopathology.jpeg"};
    for (int i = 0; i < 3; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/images/%s", g_shared, names[i]);
        FILE *fp = fopen(path, "rb");
        if (!fp) fail_msg("cannot open %s", path);
        uint8_t *d = malloc(1 << 20);
        size_t m = fread(d, 1, 1 << 20, fp);
        fclose(fp);
        check_prefixes(d, m, names[i], m * 9 / 10);
        expect_err(bmc_image_load_memory(d, m / 2, 0, &im), BMC_E_IMAGE, "truncated");
        free(d);
    }
}

static void test_corrupt(void **s) {
    static uint8_t f[1 << 16], raw[16 * 16 * 3];
    bmc_image im;
    unsigned char rgb[224 * 224 * 3];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 13);
    size_t n = build_png(f, 16, 16, 8, 2, raw, 48, NULL, 0);
    f[20] ^= 1; /* inside IHDR: CRC mismatch */
    expect_err(bmc_image_load_memory(f, n, 0, &im), BMC_E_IMAGE, "CRC mismatch in chunk 'IHDR'");
    f[20] ^= 1;
    /* every byte of the PNG, the GIF and a BMP set to 0x00, 0xFF and flipped: a status, never a crash */
    const uint8_t idx[4] = {1, 2, 3, 0};
    static uint8_t g[256], bm[1024];
    size_t gn = build_gif(g, idx, 2), bn = build_bmp24(bm, 5, 3, raw);
    struct { uint8_t *d; size_t n; } files[] = {{f, n}, {g, gn}, {bm, bn}};
    long refused = 0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < files[k].n; i++) {
            uint8_t keep = files[k].d[i];
            for (int v = 0; v < 3; v++) {
                files[k].d[i] = v == 0 ? 0 : v == 1 ? 0xFF : keep ^ 0x55;
                bmc_status st = bmc_image_load_memory(files[k].d, files[k].n, 0, &im);
                if (st == BMC_OK) {
                    assert_int_equal(bmc__image_crop(&g_cfg, &im, rgb), BMC_OK);
                    bmc_image_free(&im);
                } else {
                    if (st != BMC_E_IMAGE) fail_msg("file %d byte %zu: status %d (%s)", k, i, st, bmc_last_error());
                    refused++;
                }
            }
            files[k].d[i] = keep;
        }
    assert_true(refused > 0);
    /* GIF with an LZW code beyond the table right after a clear */
    n = build_gif(f, idx, -1);
    f[n - 5] = 0x3C; /* first data byte: codes clear (4), then 7 */
    expect_err(bmc_image_load_memory(f, n, 0, &im), BMC_E_IMAGE, "LZW");
}

static void expect_refused_before_alloc(const uint8_t *d, size_t n, const char *piece) {
    bmc_image im;
    bmc__alloc_fail_after(1);
    bmc_status st = bmc_image_load_memory(d, n, 0, &im);
    bmc__alloc_fail_after(0);
    if (st != BMC_E_IMAGE || !strstr(bmc_last_error(), piece))
        fail_msg("status %d (%s), want BMC_E_IMAGE with '%s' and no allocation", st, bmc_last_error(), piece);
}

static void test_absurd_sizes(void **s) {
    static uint8_t f[4096];
    uint8_t raw[12] = {0};
    size_t n = build_png(f, 1, 1, 8, 2, raw, 3, NULL, 0);
    uint8_t ihdr[13] = {0, 0x01, 0x86, 0xa0, 0, 0x01, 0x86, 0xa0, 8, 2, 0, 0, 0}; /* 100000 x 100000 */
    chunk(f + 8, "IHDR", ihdr, 13);
    expect_refused_before_alloc(f, n, "refused before decoding");
    assert_non_null(strstr(bmc_last_error(), "32768"));
    be32(ihdr, 30000), be32(ihdr + 4, 30000); /* each side allowed, too many pixels */
    chunk(f + 8, "IHDR", ihdr, 13);
    expect_refused_before_alloc(f, n, "900000000 pixels");
    /* BMP 100000 x 100000 */
    n = build_bmp24(f, 2, 2, raw);
    le(f + 18, 100000, 4), le(f + 22, 100000, 4);
    expect_refused_before_alloc(f, n, "too large");
    /* TGA 40000 x 1 */
    uint8_t t[64] = {0, 0, 2};
    le(t + 12, 40000, 2), le(t + 14, 1, 2), t[16] = 24;
    expect_refused_before_alloc(t, sizeof t, "too large");
    const char pnm[] = "P6\n100000 100000\n255\n";
    expect_refused_before_alloc((const uint8_t *)pnm, sizeof pnm - 1, "too large");
}

static void test_bad_views_and_config(void **s) {
    static uint8_t px[16 * 16 * 4];
    unsigned char rgb[224 * 224 * 3];
    static float chw[3 * 224 * 224];
    bmc_image bad[] = {{16, 16, BMC_PIXEL_RGB, 16, px, NULL},  {0, 16, BMC_PIXEL_RGB, 48, px, NULL},
                       {16, -2, BMC_PIXEL_RGB, 48, px, NULL},  {16, 16, BMC_PIXEL_RGB, 48, NULL, NULL},
                       {16, 16, (bmc_pixel_format)2, 48, px, NULL}};
    const char *pieces[] = {"stride 16", "size 0 x 16", "size 16 x -2", "pixels is NULL", "format 2"};
    for (int i = 0; i < 5; i++) {
        expect_err(bmc__image_crop(&g_cfg, &bad[i], rgb), BMC_E_INVALID_ARG, pieces[i]);
        expect_err(bmc__image_to_input(&g_cfg, &bad[i], chw), BMC_E_INVALID_ARG, pieces[i]);
    }
    bmc_image big = {40000, 1, BMC_PIXEL_GRAY, 40000, px, NULL};
    expect_err(bmc__image_crop(&g_cfg, &big, rgb), BMC_E_IMAGE, "too large");
    bmc_image ok = {16, 16, BMC_PIXEL_RGBA, 64, px, NULL};
    expect_err(bmc__image_crop(&g_cfg, NULL, rgb), BMC_E_INVALID_ARG, "NULL");
    expect_err(bmc__image_crop(&g_cfg, &ok, NULL), BMC_E_INVALID_ARG, "NULL");
    expect_err(bmc_image_crop(NULL, &ok, rgb), BMC_E_INVALID_ARG, "model is NULL");
    expect_err(bmc_image_preprocess(NULL, &ok, chw), BMC_E_INVALID_ARG, "model is NULL");
    bmc__config c0 = make_config(0);
    expect_err(bmc__image_crop(&c0, &ok, rgb), BMC_E_FORMAT, "image_size 0");
    bmc__config cs = make_config(224);
    cs.image_std[1] = 0;
    expect_err(bmc__image_to_input(&cs, &ok, chw), BMC_E_FORMAT, "std[1]");
    /* freeing a caller's view does nothing */
    bmc_image_free(&ok);
    assert_ptr_equal(ok.pixels, px);
    /* a loaded image whose fields were changed, or a foreign internal_ */
    static uint8_t f[4096];
    uint8_t raw[12] = {0};
    bmc_image im;
    assert_int_equal(bmc_image_load_memory(f, build_png(f, 2, 2, 8, 0, raw, 2, NULL, 0), 0, &im), BMC_OK);
    im.stride = 3;
    expect_err(bmc__image_crop(&g_cfg, &im, rgb), BMC_E_INVALID_ARG, "fields were changed");
    im.stride = 2;
    assert_int_equal(bmc__image_crop(&g_cfg, &im, rgb), BMC_OK);
    bmc_image_free(&im);
    uint32_t junk[16] = {0};
    bmc_image foreign = {16, 16, BMC_PIXEL_RGBA, 64, px, junk};
    expect_err(bmc__image_crop(&g_cfg, &foreign, rgb), BMC_E_INVALID_ARG, "internal_");
}

static void test_alloc_failures(void **s) {
    static uint8_t f[1 << 16], raw[40 * 30 * 4];
    static float chw[3 * 224 * 224];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 31);
    size_t n = build_png(f, 40, 30, 8, 6, raw, 160, NULL, 0);
    int saw_nomem = 0, saw_ok = 0;
    for (long k = 1; k < 40 && !saw_ok; k++) {
        bmc_image im;
        bmc__alloc_fail_after(k);
        bmc_status st = bmc_image_load_memory(f, n, 0, &im);
        if (st == BMC_OK) {
            st = bmc__image_to_input(&g_cfg, &im, chw);
            bmc_image_free(&im);
        }
        bmc__alloc_fail_after(0);
        if (st == BMC_E_NOMEM) saw_nomem = 1;
        else if (st == BMC_OK) saw_ok = 1;
        else fail_msg("allocation %ld failing: status %d (%s)", k, st, bmc_last_error());
    }
    assert_true(saw_nomem && saw_ok);
}

/* DICOM (DCMTK builds): every library allocation of a DICOM load failing in turn gives
 * BMC_E_NOMEM and leaks nothing (DCMTK's own memory is C++'s and is freed when the decoder's
 * objects go; LeakSanitizer checks in the sanitizer build), then the load succeeds; params and
 * info as for the other formats. The pixels themselves: tests/py/test_dicom.py. */
static void test_dicom_alloc_failures(void **s) {
#ifdef BMC_WITH_DICOM
    const char *path = "/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small_RLE.dcm";
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("%s missing: install python3-pydicom (tools/deps-debian.txt)", path);
    static uint8_t f[1 << 16];
    size_t n = fread(f, 1, sizeof f, fp);
    fclose(fp);
    int saw_nomem = 0, saw_ok = 0;
    for (long k = 1; k < 20 && !saw_ok; k++) {
        bmc_image im;
        bmc__alloc_fail_after(k);
        bmc_status st = bmc_image_load_memory(f, n, 0, &im);
        bmc__alloc_fail_after(0);
        if (st == BMC_OK) {
            bmc_image_info info;
            assert_int_equal(bmc_image_get_info(&im, &info), BMC_OK);
            assert_string_equal(info.format, "DICOM");
            assert_string_equal(info.mode, "L");
            assert_int_equal(info.width, 64);
            assert_int_equal(info.n_frames, 1);
            assert_non_null(strstr(info.transfer_syntax, "1.2.840.10008.1.2.5 ("));
            bmc_image_free(&im);
            saw_ok = 1;
        } else if (st == BMC_E_NOMEM) {
            saw_nomem = 1;
            assert_null(im.pixels);
        } else {
            fail_msg("allocation %ld failing: status %d (%s)", k, st, bmc_last_error());
        }
    }
    assert_true(saw_nomem && saw_ok);
    bmc_load_params p = bmc_load_default_params();
    p.frame = 1;
    bmc_image im;
    assert_int_equal(bmc_image_load_memory_ex(f, n, &p, &im), BMC_E_IMAGE);
    assert_non_null(strstr(bmc_last_error(), "frame 1 requested, the file has 1 frame"));
#else
    (void)s; /* make DICOM=0: tests/sh/test_dicom_off.sh checks the refusal */
#endif
}

/* The SSE2 and AVX2 resize passes against the scalar loops (test_image_pixels.py checks the
 * SSE2 ones against PIL at BMC_CPU=portable, the AVX2 ones at the best level): random pixels
 * (clamping both ways), 1, 3 and 4 channels, RGBa premultiplied, up- and downscaling from 1 to
 * 3000 pixels a side, any output window; the images are allocated to their last byte so that
 * ASan sees a read past a row's end. */
static void test_resize_simd_matches_scalar(void **state) {
    (void)state;
    int sse2 = bmc__resize_have_sse2(), avx2 = bmc__cpu_best() >= BMC__LEVEL_AVX2;
    if (!sse2) printf("SKIP: this build has no SSE2 resize (not x86-64): only the scalar loops run\n");
    if (!avx2) printf("SKIP: this CPU has no AVX2: the AVX2 resize is not compared\n");
    uint32_t rng = 12345;
#define RND() (rng = rng * 1103515245u + 12345u, (rng >> 8) & 0xffffff)
    for (int it = 0; it < 300; it++) {
        int chans = (int[]){1, 3, 4}[RND() % 3], premul = chans == 4 && (RND() & 1);
        int w = 1 + (int)(RND() % (it % 10 == 0 ? 3000 : 300)), h = 1 + (int)(RND() % (it % 10 == 5 ? 3000 : 300));
        int S = 1 + (int)(RND() % 300), nw, nh;
        bmc__resize_dims(w, h, S, &nw, &nh);
        if (it % 3 == 0) nw = 1 + (int)(RND() % 400), nh = 1 + (int)(RND() % 400); /* any size */
        int cw = 1 + (int)(RND() % nw), ch = 1 + (int)(RND() % nh);
        int x0 = (int)(RND() % (nw - cw + 1)), y0 = (int)(RND() % (nh - ch + 1));
        size_t stride = (size_t)w * chans + (RND() % 3) * chans, n = stride * (h - 1) + (size_t)w * chans;
        size_t out_n = (size_t)cw * ch * chans;
        uint8_t *src = malloc(n), *a = malloc(out_n), *b = malloc(out_n);
        assert_non_null(src);
        assert_non_null(a);
        assert_non_null(b);
        int flat = RND() % 4 == 0; /* blocks of 0 and 255: the overshoot the clamp cuts */
        for (size_t i = 0; i < n; i++) src[i] = flat ? (uint8_t)((i / 7) % 2 ? 255 : 0) : (uint8_t)RND();
        assert_int_equal(bmc__resize_bicubic_u8_at(BMC__RESIZE_SCALAR, src, w, h, stride, chans, premul, nw, nh, x0,
                                                   y0, cw, ch, a),
                         BMC_OK);
        for (int path = BMC__RESIZE_SSE2; path <= BMC__RESIZE_AVX2; path++) {
            if ((path == BMC__RESIZE_SSE2 && !sse2) || (path == BMC__RESIZE_AVX2 && !avx2)) continue;
            memset(b, 0xa5, out_n);
            assert_int_equal(bmc__resize_bicubic_u8_at(path, src, w, h, stride, chans, premul, nw, nh, x0, y0, cw, ch,
                                                       b),
                             BMC_OK);
            if (memcmp(a, b, out_n) != 0)
                fail_msg("%s resize differs from the scalar loops: %dx%d x%d%s -> %dx%d window %d,%d %dx%d",
                         path == BMC__RESIZE_SSE2 ? "SSE2" : "AVX2", w, h, chans, premul ? " premultiplied" : "", nw,
                         nh, x0, y0, cw, ch);
        }
        free(src);
        free(a);
        free(b);
    }
#undef RND
}

int main(void) {
    const char *sd = getenv("SHARED_DATA");
    snprintf(g_shared, sizeof g_shared, "%s", sd && *sd ? sd : "../shared/data");
    g_cfg = make_config(224);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_modes),         cmocka_unit_test(test_16bit_gray),
        cmocka_unit_test(test_other_formats),     cmocka_unit_test(test_example_images),
        cmocka_unit_test(test_sizes_and_offsets), cmocka_unit_test(test_crop_uniform_and_alpha),
        cmocka_unit_test(test_resize_simd_matches_scalar),
        cmocka_unit_test(test_normalize_matches_torch), cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_truncated),         cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_absurd_sizes),      cmocka_unit_test(test_bad_views_and_config),
        cmocka_unit_test(test_alloc_failures),    cmocka_unit_test(test_load_params_and_info), cmocka_unit_test(test_dicom_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
