/* fuzz_tiff.c - libFuzzer target: the TIFF decoder (lib/image_tiff.c, libtiff) and what follows.
 *
 * Input byte 0 chooses the load: bits 0-1 the page (0..3), bit 2 BMC_WINDOW_MINMAX, bit 3
 * BMC_DECODE_PIL_16BIT; the remaining bytes are the file (the seeds in fuzz/corpus/tiff are TIFFs
 * of every layout behind a 0 byte). A load must succeed with a consistent image (every pixel of
 * the view readable: ASan checks; info names TIFF and the page asked for) or fail with a
 * message; the crop and model input of a decoded image must then succeed with finite values.
 * Nothing may be printed by libtiff (its handlers are per handle) and nothing may abort. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static bmc_model *g_model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_model = fuzz_load_tiny();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    bmc_load_params p = bmc_load_default_params();
    p.frame = d[0] & 3;
    if (d[0] & 4) p.window = BMC_WINDOW_MINMAX;
    if (d[0] & 8) p.flags = BMC_DECODE_PIL_16BIT;
    /* an exact-size copy, so that ASan sees any read past the file */
    size_t len = n - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 0;
    memcpy(buf, d + 1, len);
    bmc_image img;
    bmc_status st = bmc_image_load_memory_ex(buf, len, &p, &img);
    free(buf); /* the image must not keep pointers into the file */
    if (st != BMC_OK) {
        if (!bmc_last_error()[0]) abort();
        return 0;
    }
    bmc_image_info info;
    if (bmc_image_get_info(&img, &info) != BMC_OK) abort();
    if (!strcmp(info.format, "TIFF") && (info.frame != p.frame || info.n_frames <= p.frame)) abort();
    if (info.width != img.width || info.height != img.height) abort();
    fuzz_check_view(&img);
    if (!fuzz_too_large(&img) && !fuzz_crop_preprocess(g_model, &img)) abort();
    bmc_image_free(&img);
    return 0;
}
