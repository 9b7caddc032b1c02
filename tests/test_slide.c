/* test_slide.c - the slide functions without a slide (lib/slide_openslide.c, lib/slide_tiles.c):
 * argument checks, files that are not slides, and the tile selection of bmc_slide_tile_coords
 * on masks made here, against a count written here; allocation failures leave nothing behind.
 * The reading of real slides is tests/py/test_slide.py's (against openslide-python). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "biomedclip.h"
#include "error.h"

#ifdef BMC_WITH_OPENSLIDE
static const char *shared(void) {
    const char *s = getenv("SHARED_DATA");
    return s && *s ? s : "../shared/data";
}
#endif

static void test_open_errors(void **state) {
    (void)state;
    bmc_slide *s = (bmc_slide *)&s;
    assert_int_equal(bmc_slide_open(NULL, &s), BMC_E_INVALID_ARG);
    assert_null(s);
    assert_int_equal(bmc_slide_open("x.svs", NULL), BMC_E_INVALID_ARG);
    s = (bmc_slide *)&s;
#ifdef BMC_WITH_OPENSLIDE
    assert_int_equal(bmc_slide_open("/nonexistent/slide.svs", &s), BMC_E_IO);
    assert_null(s);
    assert_non_null(strstr(bmc_last_error(), "/nonexistent/slide.svs"));
    char png[4096];
    snprintf(png, sizeof png, "%s/images/pie_chart.png", shared());
    assert_int_equal(bmc_slide_open(png, &s), BMC_E_IMAGE); /* a PNG is no slide for OpenSlide 3.4 */
    assert_null(s);
    assert_non_null(strstr(bmc_last_error(), "pie_chart.png"));
    assert_non_null(strstr(bmc_system_info(), "SLIDE=OpenSlide"));
#else
    assert_int_equal(bmc_slide_open("/nonexistent/slide.svs", &s), BMC_E_IMAGE);
    assert_non_null(strstr(bmc_last_error(), "without OpenSlide"));
    assert_non_null(strstr(bmc_system_info(), "SLIDE=none"));
#endif
    bmc_slide_close(NULL);
    assert_int_equal(bmc_slide_level_count(NULL), 0);
    assert_true(bmc_slide_level_downsample(NULL, 0) == 0);
    double y = 1;
    assert_true(bmc_slide_mpp(NULL, &y) == 0 && y == 0);
    assert_int_equal(bmc_slide_level_size(NULL, 0, NULL, NULL), BMC_E_INVALID_ARG);
    bmc_image im;
    assert_int_equal(bmc_slide_read_region(NULL, 0, 0, 0, 1, 1, &im), BMC_E_INVALID_ARG);
    bmc_slide_tiling t;
    memset(&t, 0, sizeof t);
    assert_int_equal(bmc_slide_tiling_init(NULL, &t), BMC_E_INVALID_ARG);
    unsigned char rgb[3];
    assert_int_equal(bmc_slide_read_tile(NULL, &t, 0, 0, rgb), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_slide_tissue_mask(NULL, -1, &im, NULL, NULL, NULL, NULL), BMC_E_INVALID_ARG);
}

/* A grid of the shape tiling_init makes, set by hand. */
static bmc_slide_tiling grid(int64_t size0, int64_t step0, int64_t cols, int64_t rows) {
    bmc_slide_tiling t;
    memset(&t, 0, sizeof t);
    t.tile_px = 224, t.mpp = 0.5, t.size0 = size0, t.step0 = step0, t.cols = cols, t.rows = rows;
    t.region_px = 224, t.level0_mpp = 0.5;
    return t;
}

static void test_coords_all(void **state) {
    (void)state;
    bmc_slide_tiling t = grid(100, 80, 5, 3);
    int64_t n = -1, xy[30];
    assert_int_equal(bmc_slide_tile_coords(&t, NULL, 0, 0, 0.5, NULL, 0, &n), BMC_OK);
    assert_int_equal(n, 15);
    assert_int_equal(bmc_slide_tile_coords(&t, NULL, 0, 0, 0.5, xy, 4, &n), BMC_OK); /* cap 4 */
    assert_int_equal(n, 15);
    assert_int_equal(bmc_slide_tile_coords(&t, NULL, 0, 0, 0.5, xy, 15, &n), BMC_OK);
    for (int i = 0; i < 15; i++) { /* row-major: y, then x */
        assert_int_equal(xy[2 * i], (i % 5) * 80);
        assert_int_equal(xy[2 * i + 1], (i / 5) * 80);
    }
    assert_int_equal(bmc_slide_tile_coords(&t, NULL, 0, 0, 0.5, NULL, 1, &n), BMC_E_INVALID_ARG);
    bmc_slide_tiling bad = grid(0, 0, 1, 1);
    assert_int_equal(bmc_slide_tile_coords(&bad, NULL, 0, 0, 0.5, NULL, 0, &n), BMC_E_INVALID_ARG);
}

/* The tissue fraction of each tile counted directly from the mask. */
static int64_t count_kept(const bmc_slide_tiling *t, const unsigned char *m, int mw, int mh, double ds,
                          double min_tissue) {
    int64_t kept = 0;
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) {
            int64_t x = c * t->step0, y = r * t->step0;
            int x0 = (int)floor(x / ds), y0 = (int)floor(y / ds);
            int x1 = (int)ceil((x + t->size0) / ds), y1 = (int)ceil((y + t->size0) / ds);
            x1 = x1 > mw ? mw : x1, y1 = y1 > mh ? mh : y1;
            long tissue = 0, all = 0;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) tissue += m[yy * mw + xx] != 0, all++;
            if (all && (double)tissue / all >= min_tissue) kept++;
        }
    return kept;
}

static void test_coords_mask(void **state) {
    (void)state;
    enum { MW = 97, MH = 61 };
    static unsigned char m[MW * MH];
    unsigned seed = 7;
    for (int i = 0; i < MW * MH; i++) { /* blobs: a disc plus noise */
        int x = i % MW, y = i / MW;
        seed = seed * 1103515245u + 12345u;
        m[i] = ((x - 40) * (x - 40) + (y - 30) * (y - 30) < 500 || (seed >> 16) % 7 == 0) ? 255 : 0;
    }
    bmc_image mask = {MW, MH, BMC_PIXEL_GRAY, MW, m, NULL};
    const double ds = 16.0; /* level-0 pixels per mask pixel */
    bmc_slide_tiling t = grid(224, 200, (MW * 16 - 224) / 200 + 1, (MH * 16 - 224) / 200 + 1);
    for (double f = 0; f <= 1.0; f += 0.25) {
        int64_t n = -1;
        assert_int_equal(bmc_slide_tile_coords(&t, &mask, ds, ds, f, NULL, 0, &n), BMC_OK);
        assert_int_equal(n, count_kept(&t, m, MW, MH, ds, f));
    }
    int64_t n;
    bmc_image rgb = {MW / 3, MH, BMC_PIXEL_RGB, MW, m, NULL};
    assert_int_equal(bmc_slide_tile_coords(&t, &rgb, ds, ds, 0.5, NULL, 0, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_slide_tile_coords(&t, &mask, 0, ds, 0.5, NULL, 0, &n), BMC_E_INVALID_ARG);
    /* the mask's integral is the one allocation: its failure is reported, nothing leaks */
    bmc__alloc_fail_after(1);
    assert_int_equal(bmc_slide_tile_coords(&t, &mask, ds, ds, 0.5, NULL, 0, &n), BMC_E_NOMEM);
    bmc__alloc_fail_after(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_coords_all),
        cmocka_unit_test(test_coords_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
