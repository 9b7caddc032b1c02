/* test_image_tiff.c - the TIFF decoder (lib/image_tiff.c) on files built here byte by byte.
 *
 * Uncompressed little- and big-endian TIFFs of known pixels: 8-bit gray (MinIsBlack and
 * MinIsWhite), RGB, RGBA, palette, 16-bit gray (scaled by default, PIL's clip with
 * BMC_DECODE_PIL_16BIT, min-max and centre/width windows), float gray (PIL's F -> L), multi-page
 * files (a page chosen by bmc_load_params.frame, the page count in bmc_image_get_info, a page past
 * the last refused), the Orientation tag, CIELab through littleCMS; and the errors: every
 * prefix of each file (exact-size buffers: ASan sees any over-read), absurd declared sizes
 * refused before any allocation of ours, unknown pixel layouts, a failing allocation at every
 * point.
 * A TIFF=0 build must refuse TIFF naming the option. PIL parity on hundreds of files:
 * tests/py/test_tiff_pixels.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "biomedclip.h"
#include "error.h"
#include "image.h"

static int g_have_tiff;

/* ---- a tiny TIFF writer ------------------------------------------------------------------------ */

typedef struct page {
    int w, h, spp, bps, photo, sf; /* sf: SampleFormat (0: not written) */
    int extra;                     /* ExtraSamples value for the last sample, -1: none */
    int orientation;               /* 0: not written */
    const uint8_t *pix;            /* raw samples in the file's byte order, rows packed */
    size_t pix_size;
    const uint16_t *colormap;      /* 3 * 2^bps entries (palette) */
} page;

typedef struct wbuf {
    uint8_t b[65536];
    size_t n;
    int be;
} wbuf;

static void put(wbuf *w, size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        w->b[at + i] = (uint8_t)(w->be ? v >> (8 * (bytes - 1 - i)) : v >> (8 * i));
}

/* Writes the pages (each IFD followed by its data) and returns the file size. */
static size_t make_tiff(wbuf *w, int big_endian, const page *pages, int n_pages) {
    memset(w, 0, sizeof *w);
    w->be = big_endian;
    memcpy(w->b, big_endian ? "MM\0*" : "II*\0", 4);
    w->n = 8;
    size_t link = 4; /* where the offset of the next IFD goes */
    for (int k = 0; k < n_pages; k++) {
        const page *p = &pages[k];
        uint32_t tags[16][4]; /* tag, type, count, value-or-offset marker */
        int nt = 0;
        size_t ifd = (w->n + 1) & ~(size_t)1;
        put(w, link, (uint32_t)ifd, 4);
#define TAG(t, ty, c, v) (tags[nt][0] = (t), tags[nt][1] = (ty), tags[nt][2] = (c), tags[nt][3] = (v), nt++)
        TAG(256, 4, 1, (uint32_t)p->w);
        TAG(257, 4, 1, (uint32_t)p->h);
        TAG(258, 3, (uint32_t)p->spp, (uint32_t)p->bps); /* count > 2: the value goes out of line */
        TAG(259, 3, 1, 1);
        TAG(262, 3, 1, (uint32_t)p->photo);
        TAG(273, 4, 1, 0); /* patched below */
        if (p->orientation) TAG(274, 3, 1, (uint32_t)p->orientation);
        TAG(277, 3, 1, (uint32_t)p->spp);
        TAG(278, 4, 1, (uint32_t)p->h);
        TAG(279, 4, 1, (uint32_t)p->pix_size);
        if (p->colormap) TAG(320, 3, 3u << p->bps, 0);
        if (p->extra >= 0) TAG(338, 3, 1, (uint32_t)p->extra);
        if (p->sf) TAG(339, 3, 1, (uint32_t)p->sf);
#undef TAG
        size_t at = ifd, data = ifd + 2 + 12 * (size_t)nt + 4;
        put(w, at, (uint32_t)nt, 2);
        at += 2;
        for (int i = 0; i < nt; i++, at += 12) {
            put(w, at, tags[i][0], 2);
            put(w, at + 2, tags[i][1], 2);
            put(w, at + 4, tags[i][2], 4);
            if (tags[i][0] == 258 && p->spp > 2) {
                put(w, at + 8, (uint32_t)data, 4);
                for (int s = 0; s < p->spp; s++) put(w, data + 2 * s, (uint32_t)p->bps, 2);
                data += 2 * (size_t)p->spp;
            } else if (tags[i][0] == 320) {
                put(w, at + 8, (uint32_t)data, 4);
                for (uint32_t s = 0; s < tags[i][2]; s++) put(w, data + 2 * s, p->colormap[s], 2);
                data += 2 * (size_t)tags[i][2];
            } else if (tags[i][0] == 273) {
                put(w, at + 8, 0, 4); /* the strip offset, once known */
            } else {
                put(w, at + 8, tags[i][3], tags[i][1] == 3 && tags[i][2] == 1 ? 2 : 4);
            }
        }
        link = at;
        put(w, link, 0, 4);
        for (int i = 0; i < nt; i++)
            if (tags[i][0] == 273) put(w, ifd + 2 + 12 * (size_t)i + 8, (uint32_t)data, 4);
        memcpy(w->b + data, p->pix, p->pix_size);
        w->n = data + p->pix_size;
    }
    return w->n;
}

static page gray_page(int w, int h, const uint8_t *pix) {
    page p = {w, h, 1, 8, 1, 0, -1, 0, pix, (size_t)w * h, NULL};
    return p;
}

static bmc_status load(const uint8_t *d, size_t n, const bmc_load_params *lp, bmc_image *img) {
    /* an exact-size copy, so that ASan sees any read past the file */
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, d, n);
    memset(img, 0, sizeof *img);
    bmc_status st = bmc_image_load_memory_ex(copy, n, lp, img);
    free(copy);
    if (st != BMC_OK && (img->pixels || img->internal_)) fail_msg("a failed load left pixels in the image");
    return st;
}

#define EXPECT_FAIL(expr, status, piece)                                                                     \
    do {                                                                                                     \
        bmc_status st_ = (expr);                                                                             \
        if (st_ != (status) || !strstr(bmc_last_error(), (piece)))                                           \
            fail_msg("%s: got %s (%s), want %s naming '%s'", #expr, bmc_status_str(st_), bmc_last_error(),   \
                     bmc_status_str(status), (piece));                                                       \
    } while (0)

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_gray_rgb_palette(void **s) {
    (void)s;
    if (!g_have_tiff) skip();
    uint8_t gray[6 * 4], rgb[5 * 3 * 3], rgba[2 * 2 * 4], idx[4 * 2];
    for (int i = 0; i < 24; i++) gray[i] = (uint8_t)(i * 11);
    for (int i = 0; i < 45; i++) rgb[i] = (uint8_t)(i * 5 + 1);
    for (int i = 0; i < 16; i++) rgba[i] = (uint8_t)(i * 16 + 3);
    for (int i = 0; i < 8; i++) idx[i] = (uint8_t)(i % 4);
    uint16_t cmap[3 * 4];
    for (int i = 0; i < 12; i++) cmap[i] = (uint16_t)(i * 5000 + 255); /* high byte is PIL's palette */
    for (int be = 0; be < 2; be++) {
        wbuf w;
        bmc_image img;
        bmc_image_info info;
        page p = gray_page(6, 4, gray);
        size_t n = make_tiff(&w, be, &p, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        assert_int_equal(img.format, BMC_PIXEL_GRAY);
        assert_int_equal(img.width, 6);
        assert_memory_equal(img.pixels, gray, 24);
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_string_equal(info.format, "TIFF");
        assert_string_equal(info.mode, "L");
        assert_string_equal(info.photometric, "MinIsBlack");
        assert_string_equal(info.transfer_syntax, "none");
        assert_int_equal(info.n_frames, 1);
        assert_int_equal(info.bits_stored, 8);
        bmc_image_free(&img);

        p.photo = 0; /* MinIsWhite: inverted, as PIL's L;I */
        n = make_tiff(&w, be, &p, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        for (int i = 0; i < 24; i++) assert_int_equal(img.pixels[i], 255 - gray[i]);
        bmc_image_free(&img);

        page q = {5, 3, 3, 8, 2, 0, -1, 0, rgb, sizeof rgb, NULL};
        n = make_tiff(&w, be, &q, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        assert_int_equal(img.format, BMC_PIXEL_RGB);
        assert_memory_equal(img.pixels, rgb, sizeof rgb);
        bmc_image_free(&img);

        page r = {2, 2, 4, 8, 2, 0, 2, 0, rgba, sizeof rgba, NULL}; /* unassociated alpha */
        n = make_tiff(&w, be, &r, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        assert_int_equal(img.format, BMC_PIXEL_RGBA);
        assert_memory_equal(img.pixels, rgba, sizeof rgba);
        bmc_image_free(&img);
        r.extra = 1; /* associated: un-premultiplied as PIL's RGBa unpacker */
        n = make_tiff(&w, be, &r, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        for (int i = 0; i < 4; i++) {
            unsigned a = rgba[4 * i + 3];
            for (int c = 0; c < 3; c++) {
                unsigned v = rgba[4 * i + c] * 255u / a;
                assert_int_equal(img.pixels[4 * i + c], v > 255 ? 255 : v);
            }
        }
        bmc_image_free(&img);

        page pal = {4, 2, 1, 8, 3, 0, -1, 0, idx, sizeof idx, cmap};
        uint16_t cmap8[3 * 256] = {0};
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 4; i++) cmap8[c * 256 + i] = cmap[c * 4 + i];
        pal.colormap = cmap8;
        n = make_tiff(&w, be, &pal, 1);
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_string_equal(info.mode, "P");
        for (int i = 0; i < 8; i++)
            for (int c = 0; c < 3; c++) assert_int_equal(img.pixels[3 * i + c], cmap[c * 4 + idx[i]] >> 8);
        bmc_image_free(&img);
    }
}

static void test_wide_gray_and_windows(void **s) {
    (void)s;
    if (!g_have_tiff) skip();
    enum { W = 5, H = 2 };
    uint16_t v[W * H] = {1000, 1500, 2000, 3000, 4000, 1000, 1200, 0x1234, 2500, 3999};
    for (int be = 0; be < 2; be++) {
        uint8_t raw[W * H * 2];
        for (int i = 0; i < W * H; i++) {
            raw[2 * i + (be ? 1 : 0)] = (uint8_t)v[i];
            raw[2 * i + (be ? 0 : 1)] = (uint8_t)(v[i] >> 8);
        }
        page p = {W, H, 1, 16, 1, 0, -1, 0, raw, sizeof raw, NULL};
        wbuf w;
        size_t n = make_tiff(&w, be, &p, 1);
        bmc_image img;
        bmc_image_info info;
        bmc_load_params lp = bmc_load_default_params();
        assert_int_equal(load(w.b, n, &lp, &img), BMC_OK); /* default: v * 255 / 65535, rounded */
        for (int i = 0; i < W * H; i++) assert_int_equal(img.pixels[i], (v[i] * 255u + 32767u) / 65535u);
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_int_equal(info.bits_stored, 16);
        assert_non_null(strstr(info.window, "scale"));
        bmc_image_free(&img);
        lp.flags = BMC_DECODE_PIL_16BIT;
        assert_int_equal(load(w.b, n, &lp, &img), BMC_OK);
        for (int i = 0; i < W * H; i++) assert_int_equal(img.pixels[i], 255);
        bmc_image_free(&img);
        lp = bmc_load_default_params();
        lp.window = BMC_WINDOW_MINMAX; /* 1000..0x1234 */
        assert_int_equal(load(w.b, n, &lp, &img), BMC_OK);
        for (int i = 0; i < W * H; i++) {
            double y = (v[i] - 1000.0) / (0x1234 - 1000.0);
            assert_int_equal(img.pixels[i], (int)(255 * y + 0.5));
        }
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_string_equal(info.window, "min-max 1000..4660");
        bmc_image_free(&img);
        lp.window = BMC_WINDOW_CENTER_WIDTH;
        lp.window_center = 2000.5, lp.window_width = 1001; /* 1500 -> 0, 2000.5 -> 0.5, 2500 -> 1 */
        assert_int_equal(load(w.b, n, &lp, &img), BMC_OK);
        assert_int_equal(img.pixels[1], 0);
        assert_int_equal(img.pixels[2], 128); /* (2000 - 2000) / 1000 + 0.5 = 0.5 -> floor(127.5 + 0.5) */
        assert_int_equal(img.pixels[8], 255);
        bmc_image_free(&img);
        lp.window = BMC_WINDOW_FILE;
        EXPECT_FAIL(load(w.b, n, &lp, &img), BMC_E_IMAGE, "only DICOM");
    }
    /* float gray: PIL 'F' -> 'L' clips and truncates */
    float f[4] = {-3.5f, 12.9f, 254.99f, 1e30f};
    page p = {4, 1, 1, 32, 1, 3, -1, 0, (const uint8_t *)f, sizeof f, NULL};
    wbuf w;
    size_t n = make_tiff(&w, 0, &p, 1);
    bmc_image img;
    assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
    assert_int_equal(img.pixels[0], 0);
    assert_int_equal(img.pixels[1], 12);
    assert_int_equal(img.pixels[2], 254);
    assert_int_equal(img.pixels[3], 255);
    bmc_image_free(&img);
}

static void test_pages_and_orientation(void **s) {
    (void)s;
    if (!g_have_tiff) skip();
    uint8_t a[3 * 2] = {1, 2, 3, 4, 5, 6}, b[2 * 5], c[4] = {9, 8, 7, 6};
    for (int i = 0; i < 10; i++) b[i] = (uint8_t)(100 + i);
    page pages[3] = {gray_page(3, 2, a), gray_page(2, 5, b), gray_page(2, 2, c)};
    pages[2].orientation = 3; /* ROTATE_180 */
    wbuf w;
    size_t n = make_tiff(&w, 1, pages, 3);
    bmc_load_params lp = bmc_load_default_params();
    bmc_image img;
    bmc_image_info info;
    for (int k = 0; k < 3; k++) {
        lp.frame = k;
        assert_int_equal(load(w.b, n, &lp, &img), BMC_OK);
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_int_equal(info.n_frames, 3);
        assert_int_equal(info.frame, k);
        assert_int_equal(img.width, pages[k].w);
        assert_int_equal(img.height, pages[k].h);
        if (k < 2) assert_memory_equal(img.pixels, pages[k].pix, pages[k].pix_size);
        else for (int i = 0; i < 4; i++) assert_int_equal(img.pixels[i], c[3 - i]);
        bmc_image_free(&img);
    }
    lp.frame = 3;
    EXPECT_FAIL(load(w.b, n, &lp, &img), BMC_E_IMAGE, "page 3 requested, but the TIFF file holds 3 pages");
}

static void test_truncated_and_corrupt(void **s) {
    (void)s;
    uint8_t gray[7 * 5], rgb[4 * 4 * 3];
    for (size_t i = 0; i < sizeof gray; i++) gray[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 3);
    page pages[2] = {gray_page(7, 5, gray), {4, 4, 3, 8, 2, 0, -1, 0, rgb, sizeof rgb, NULL}};
    wbuf w;
    bmc_load_params lp = bmc_load_default_params();
    for (int be = 0; be < 2; be++) {
        size_t n = make_tiff(&w, be, pages, 2);
        int refused = 0;
        for (size_t cut = 0; cut < n; cut++)
            for (int k = 0; k < 2; k++) {
                bmc_image img;
                lp.frame = k;
                bmc_status st = load(w.b, cut, &lp, &img);
                if (st == BMC_OK) {
                    bmc_image_free(&img);
                    continue;
                }
                if (st != BMC_E_IMAGE || !bmc_last_error()[0])
                    fail_msg("prefix %zu page %d: %s (%s)", cut, k, bmc_status_str(st), bmc_last_error());
                refused++;
            }
        /* every cut inside the second page's pixels must be refused for that page */
        assert_true(refused > (int)sizeof rgb);
        if (!g_have_tiff) break;
    }
    if (!g_have_tiff) {
        bmc_image img;
        size_t n = make_tiff(&w, 0, pages, 1);
        EXPECT_FAIL(load(w.b, n, NULL, &img), BMC_E_IMAGE, "rebuild without TIFF=0");
        return;
    }
    /* an unknown layout: 3 samples of MinIsBlack without ExtraSamples (PIL: unknown pixel mode) */
    page odd = {4, 4, 3, 8, 1, 0, -1, 0, rgb, sizeof rgb, NULL};
    bmc_image img;
    size_t n = make_tiff(&w, 0, &odd, 1);
    EXPECT_FAIL(load(w.b, n, NULL, &img), BMC_E_IMAGE, "not supported");
    /* CIELab: converted by littleCMS as Pillow does (a neutral gray stays gray), or refused
     * naming LCMS=0 in a build without it */
    uint8_t lab[4 * 4 * 3];
    for (int i = 0; i < 16; i++) lab[3 * i] = (uint8_t)(i * 16), lab[3 * i + 1] = lab[3 * i + 2] = 0;
    page labp = {4, 4, 3, 8, 8, 0, -1, 0, lab, sizeof lab, NULL};
    n = make_tiff(&w, 0, &labp, 1);
    if (strstr(bmc_system_info(), "lcms2")) {
        bmc_image_info info;
        assert_int_equal(load(w.b, n, NULL, &img), BMC_OK);
        assert_int_equal(bmc_image_get_info(&img, &info), BMC_OK);
        assert_string_equal(info.mode, "LAB");
        for (int i = 1; i < 16; i++) {
            const uint8_t *p = img.pixels + 3 * i;
            assert_true(abs(p[0] - p[1]) <= 2 && abs(p[1] - p[2]) <= 2);
            assert_true(p[0] >= img.pixels[3 * (i - 1)]); /* lightness grows */
        }
        bmc_image_free(&img);
    } else {
        EXPECT_FAIL(load(w.b, n, NULL, &img), BMC_E_IMAGE, "LCMS=0");
    }
    /* random garbage after a TIFF magic */
    uint8_t junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
    memcpy(junk, "II*\0", 4);
    EXPECT_FAIL(load(junk, sizeof junk, NULL, &img), BMC_E_IMAGE, "TIFF");
}

static void test_absurd_sizes(void **s) {
    (void)s;
    if (!g_have_tiff) skip();
    uint8_t px[16] = {0};
    const uint32_t sizes[][2] = {{100000, 100000}, {30000, 30000}, {4294967295u, 1}, {1, 4000000}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        page p = gray_page(1, 1, px);
        p.w = (int)sizes[i][0], p.h = (int)sizes[i][1];
        p.pix_size = sizeof px;
        wbuf w;
        size_t n = make_tiff(&w, 0, &p, 1);
        bmc_image img;
        bmc__alloc_fail_after(1); /* any allocation of ours would fail */
        bmc_status st = load(w.b, n, NULL, &img);
        long made = bmc__alloc_fail_after(0);
        if (st != BMC_E_IMAGE)
            fail_msg("TIFF %u x %u: %s (%s) after %ld allocations", sizes[i][0], sizes[i][1], bmc_status_str(st),
                     bmc_last_error(), made);
        printf("  TIFF %u x %u: %s\n", sizes[i][0], sizes[i][1], bmc_last_error());
    }
}

static void test_alloc_failures(void **s) {
    (void)s;
    if (!g_have_tiff) skip();
    uint8_t rgb[6 * 5 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 13);
    page p = {6, 5, 3, 8, 2, 0, -1, 6, rgb, sizeof rgb, NULL}; /* with a rotation: one more buffer */
    wbuf w;
    size_t n = make_tiff(&w, 0, &p, 1);
    int ok = 0;
    for (long k = 1; k < 40 && !ok; k++) {
        bmc_image img;
        bmc__alloc_fail_after(k);
        bmc_status st = load(w.b, n, NULL, &img);
        bmc__alloc_fail_after(0);
        if (st == BMC_OK) {
            ok = 1;
            bmc_image_free(&img);
        } else if (st != BMC_E_NOMEM) {
            fail_msg("allocation %ld failing: %s (%s), want BMC_E_NOMEM", k, bmc_status_str(st), bmc_last_error());
        }
    }
    assert_true(ok);
}

int main(void) {
    g_have_tiff = strstr(bmc_system_info(), "TIFF=libtiff") != NULL;
    printf("TIFF decoder: %s\n", g_have_tiff ? "libtiff" : "not built in (TIFF=0)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_rgb_palette),     cmocka_unit_test(test_wide_gray_and_windows),
        cmocka_unit_test(test_pages_and_orientation), cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_absurd_sizes),         cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
