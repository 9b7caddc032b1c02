/* tool_image_info.c - test helper (not a test itself): load images with bmc_load_params and write
 * what the library made of them, so that tests/py/test_dicom.py can compare it with pydicom.
 *
 *   tool_image_info [--frame N] [--window auto|minmax|file:K|C,W] [--size S] IN OUT [IN OUT ...]
 *       writes OUT.raw (the 8-bit view: height * width * channels bytes) and OUT.crop (the
 *       S x S RGB crop, S = 224 by default)
 * For each input one line: "OK IN<TAB>format<TAB>mode<TAB>WxH<TAB>bits<TAB>frame/n_frames<TAB>
 * photometric<TAB>transfer syntax<TAB>window" or "ERR IN<TAB>STATUS<TAB>MESSAGE". Exit 1 if any
 * failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "biomedclip.h"
#include "format.h"
#include "image.h"

static int write_file(const char *path, const char *ext, const void *p, size_t n) {
    char name[4096];
    snprintf(name, sizeof name, "%s%s", path, ext);
    FILE *f = fopen(name, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        if (f) fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

int main(int argc, char **argv) {
    bmc_load_params p = bmc_load_default_params();
    int size = 224, i = 1, failed = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
        if (i + 1 >= argc) return 2;
        const char *v = argv[i + 1];
        if (!strcmp(argv[i], "--frame")) p.frame = atoi(v);
        else if (!strcmp(argv[i], "--size")) size = atoi(v);
        else if (!strcmp(argv[i], "--window")) {
            if (!strcmp(v, "auto")) p.window = BMC_WINDOW_AUTO;
            else if (!strcmp(v, "minmax")) p.window = BMC_WINDOW_MINMAX;
            else if (!strncmp(v, "file:", 5)) p.window = BMC_WINDOW_FILE, p.window_index = atoi(v + 5);
            else if (sscanf(v, "%lf,%lf", &p.window_center, &p.window_width) == 2) p.window = BMC_WINDOW_CENTER_WIDTH;
            else return 2;
        } else return 2;
    }
    bmc__config c;
    memset(&c, 0, sizeof c);
    c.image_size = (uint32_t)size;
    for (int k = 0; k < 3; k++) c.image_std[k] = 1;
    unsigned char *crop = malloc((size_t)size * size * 3);
    for (; i + 1 < argc; i += 2) {
        bmc_image im;
        bmc_image_info info;
        bmc_status st = bmc_image_load_ex(argv[i], &p, &im);
        if (st == BMC_OK) st = bmc_image_get_info(&im, &info);
        if (st == BMC_OK) st = bmc__image_crop(&c, &im, crop);
        if (st != BMC_OK) {
            printf("ERR %s\t%d\t%s\n", argv[i], (int)st, bmc_last_error());
            bmc_image_free(&im);
            failed = 1;
            continue;
        }
        size_t row = (size_t)im.width * im.format;
        unsigned char *raw = malloc(row * im.height);
        for (int y = 0; y < im.height; y++) memcpy(raw + y * row, im.pixels + (size_t)y * im.stride, row);
        if (!write_file(argv[i + 1], ".raw", raw, row * im.height) ||
            !write_file(argv[i + 1], ".crop", crop, (size_t)size * size * 3)) {
            printf("ERR %s\t0\tcannot write %s\n", argv[i], argv[i + 1]);
            failed = 1;
        } else {
            printf("OK %s\t%s\t%s\t%dx%d\t%d\t%d/%d\t%s\t%s\t%s\n", argv[i], info.format, info.mode, info.width,
                   info.height, info.bits_stored, info.frame, info.n_frames, info.photometric, info.transfer_syntax,
                   info.window);
        }
        free(raw);
        bmc_image_free(&im);
    }
    free(crop);
    return failed;
}
