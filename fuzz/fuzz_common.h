/* fuzz_common.h - shared by the fuzz targets: finding the test model, the checks every decoded
 * image must pass. */
#ifndef BMC_FUZZ_COMMON_H
#define BMC_FUZZ_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "biomedclip.h"

/* The tiny test model (tests/prep/10_models.sh): $BMC_FUZZ_MODEL, else $BMC_TESTDATA/tiny.bmc,
 * else build/testdata/tiny.bmc. Aborts with a message when none loads: a fuzz target without
 * its model would test nothing. */
static bmc_model *fuzz_load_tiny(void) {
    char buf[4096];
    const char *p = getenv("BMC_FUZZ_MODEL");
    if (!p || !*p) {
        const char *td = getenv("BMC_TESTDATA");
        snprintf(buf, sizeof buf, "%s/tiny.bmc", td && *td ? td : "build/testdata");
        p = buf;
    }
    bmc_model *m = NULL;
    if (bmc_model_load(p, NULL, &m) != BMC_OK) {
        fprintf(stderr, "fuzz: cannot load the tiny model (set BMC_FUZZ_MODEL): %s\n", bmc_last_error());
        abort();
    }
    return m;
}

/* A decoded image's view: a positive size, pixels, a known format, a stride that holds a row,
 * and every byte of it readable (ASan checks the reads). Aborts otherwise. */
static void fuzz_check_view(const bmc_image *img) {
    if (img->width <= 0 || img->height <= 0 || !img->pixels ||
        img->stride < img->width * (int)img->format ||
        (img->format != 1 && img->format != 3 && img->format != 4))
        abort();
    volatile unsigned sum = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width * (int)img->format; x++)
            sum += img->pixels[(size_t)y * img->stride + x];
    (void)sum;
}

/* A decoded image too large to resize here: the resize reads every pixel, and instrumented a
 * 52-byte GIF of 119 M pixels took over 60 s (a libFuzzer timeout; 0.6 s in the plain build), so
 * images above 16 M pixels are decoded and checked but not resized (tests/py/test_image_pixels.py
 * resizes large images). */
static int fuzz_too_large(const bmc_image *img) {
    return (long long)img->width * img->height > 16LL * 1024 * 1024;
}

/* bmc_image_crop and bmc_image_preprocess of img on model (image size 224): both succeed, the
 * model input finite, or both fail with a message; aborts otherwise. 1 when they succeeded. */
static int fuzz_crop_preprocess(const bmc_model *model, const bmc_image *img) {
    static unsigned char rgb[BMC_IMAGE_SIZE * BMC_IMAGE_SIZE * 3];
    static float chw[3 * BMC_IMAGE_SIZE * BMC_IMAGE_SIZE];
    bmc_status a = bmc_image_crop(model, img, rgb);
    bmc_status b = bmc_image_preprocess(model, img, chw);
    if ((a != BMC_OK || b != BMC_OK) && !bmc_last_error()[0]) abort();
    if ((a == BMC_OK) != (b == BMC_OK)) abort(); /* same checks, same outcome */
    if (b != BMC_OK) return 0;
    int S = bmc_model_image_size(model);
    for (int i = 0; i < 3 * S * S; i++)
        if (!isfinite(chw[i])) abort();
    return 1;
}

#endif
