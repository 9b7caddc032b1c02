/* fuzz_image.c - libFuzzer target: image decoding and preprocessing.
 *
 * Input byte 0 selects the path:
 *   bit 0  decode with BMC_DECODE_PIL_16BIT (else BMC_DECODE_DEFAULT)
 *   bit 1  instead of decoding, build a caller view from the next 7 bytes
 *          (width u16, height u16, format u8, stride i16) with the rest as pixels
 * A decoded image must have a consistent view (every pixel readable: ASan checks), and crop /
 * preprocess must either fail with a message or produce finite model inputs. A view the
 * contract calls invalid (size <= 0, unknown format, stride < width * format) must be refused;
 * a valid one is given exactly stride * (height - 1) + width * format bytes, so any read past
 * them is caught. The model is the tiny test model (fuzz_common.h): its image size is 224. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static bmc_model *g_model;

/* The one finding so far, a heap overflow inside stb_image 2.27 on a DHT segment declaring more
 * than 256 codes, is refused by lib/image_jpeg.c since; the regression input is
 * tests/data/bad_images (docs/ROBUSTNESS.md, "fuzzing"). No input is skipped here. */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_model = fuzz_load_tiny();
    return 0;
}

static void run_pipeline(const bmc_image *img, int must_fail) {
    if (!must_fail && fuzz_too_large(img)) return;
    if (fuzz_crop_preprocess(g_model, img) && must_fail) {
        fprintf(stderr, "invalid view %dx%d format %d stride %d accepted\n", img->width, img->height,
                (int)img->format, img->stride);
        abort();
    }
}

static void fuzz_view(const uint8_t *d, size_t n) {
    if (n < 7) return;
    int w = d[0] | d[1] << 8, h = d[2] | d[3] << 8, fmt = d[4];
    int stride = (int16_t)(d[5] | d[6] << 8);
    d += 7, n -= 7;
    int valid = w > 0 && h > 0 && (fmt == 1 || fmt == 3 || fmt == 4) && stride >= w * fmt;
    if (!valid) {
        static const unsigned char one[1];
        bmc_image img = {w, h, (bmc_pixel_format)fmt, stride, one, NULL};
        run_pipeline(&img, 1);
        bmc_image none = {1, 1, BMC_PIXEL_RGB, 3, NULL, NULL};
        run_pipeline(&none, 1);
        return;
    }
    if (w > 2048 || h > 2048) return; /* valid, but too slow to be worth it */
    size_t need = (size_t)stride * (size_t)(h - 1) + (size_t)w * (size_t)fmt;
    unsigned char *px = malloc(need);
    if (!px) return;
    for (size_t i = 0; i < need; i++) px[i] = n ? d[i % n] : (unsigned char)i;
    bmc_image img = {w, h, (bmc_pixel_format)fmt, stride, px, NULL};
    run_pipeline(&img, 0);
    bmc_image_free(&img); /* a no-op on caller views */
    free(px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int sel = data[0];
    if (sel & 2) {
        fuzz_view(data + 1, size - 1);
        return 0;
    }
    int flags = (sel & 1) ? BMC_DECODE_PIL_16BIT : BMC_DECODE_DEFAULT;
    bmc_image img;
    memset(&img, 0xA5, sizeof img);
    bmc_status st = bmc_image_load_memory(data + 1, size - 1, flags, &img);
    if (st != BMC_OK) {
        if (!bmc_last_error()[0]) abort();
        return 0;
    }
    fuzz_check_view(&img);
    run_pipeline(&img, 0);
    bmc_image_free(&img);
    return 0;
}
