/* tool_image_crop.c - test helper (not a test itself): decode images and write the library's
 * crop and model input so that tests/py/test_image_pixels.py can compare them with PIL/torch.
 *
 *   tool_image_crop [--pil16] [--size S] [--frame N] [--window minmax] IN OUT [IN OUT ...]
 *       writes OUT.ppm (the S x S RGB crop) and OUT.f32 (3*S*S little-endian floats, CHW);
 *       --frame: the page / frame to load (bmc_load_params.frame), --window minmax:
 *       BMC_WINDOW_MINMAX
 *   tool_image_crop --raw gray|rgb|rgba W H STRIDE RAWFILE OUT
 *       the same for a caller view over RAWFILE's H * STRIDE bytes
 *   tool_image_crop --info
 *       prints the JPEG decoder of this build ("jpeg=stb" or "jpeg=turbo") and whether TIFF is
 *       built in ("tiff=1" or "tiff=0")
 * For each input one line: "OK IN MODE WxH" or "ERR IN STATUS MESSAGE". Exit 1 if any failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "biomedclip.h"
#include "format.h"
#include "image.h"

static bmc__config config(int size) {
    bmc__config c;
    memset(&c, 0, sizeof c);
    c.image_size = (uint32_t)size;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(c.image_mean, mean, sizeof mean);
    memcpy(c.image_std, std, sizeof std);
    return c;
}

static int write_outputs(const bmc__config *c, const bmc_image *im, const char *out) {
    size_t S = c->image_size;
    unsigned char *rgb = malloc(S * S * 3);
    float *chw = malloc(S * S * 3 * sizeof(float));
    char path[4096];
    int ok = rgb && chw && bmc__image_crop(c, im, rgb) == BMC_OK && bmc__image_to_input(c, im, chw) == BMC_OK;
    if (ok) {
        snprintf(path, sizeof path, "%s.ppm", out);
        FILE *f = fopen(path, "wb");
        ok = f && fprintf(f, "P6\n%zu %zu\n255\n", S, S) > 0 && fwrite(rgb, 1, S * S * 3, f) == S * S * 3;
        if (f) fclose(f);
        snprintf(path, sizeof path, "%s.f32", out);
        f = fopen(path, "wb");
        ok = ok && f && fwrite(chw, sizeof(float), S * S * 3, f) == S * S * 3;
        if (f) fclose(f);
    }
    free(rgb);
    free(chw);
    return ok;
}

static int run_raw(const bmc__config *c, char **a) {
    bmc_image im = {0};
    im.format = !strcmp(a[0], "gray") ? BMC_PIXEL_GRAY : !strcmp(a[0], "rgb") ? BMC_PIXEL_RGB : BMC_PIXEL_RGBA;
    im.width = atoi(a[1]);
    im.height = atoi(a[2]);
    im.stride = atoi(a[3]);
    FILE *f = fopen(a[4], "rb");
    size_t n = (size_t)im.stride * im.height;
    unsigned char *buf = malloc(n ? n : 1);
    if (!f || !buf || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "cannot read %s\n", a[4]);
        return 1;
    }
    fclose(f);
    im.pixels = buf;
    int ok = write_outputs(c, &im, a[5]);
    if (ok) printf("OK %s %s %dx%d\n", a[4], a[0], im.width, im.height);
    else printf("ERR %s %s\n", a[4], bmc_last_error());
    free(buf);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    int flags = BMC_DECODE_DEFAULT, size = 224, i = 1, failed = 0;
    bmc_load_params lp = bmc_load_default_params();
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--pil16")) flags |= BMC_DECODE_PIL_16BIT;
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--frame") && i + 1 < argc) lp.frame = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--window") && i + 1 < argc && !strcmp(argv[i + 1], "minmax")) {
            lp.window = BMC_WINDOW_MINMAX;
            i++;
        }
        else if (!strcmp(argv[i], "--info")) {
            printf("jpeg=%s\n", bmc__jpeg_backend() ? "turbo" : "stb");
            printf("tiff=%d\n", strstr(bmc_system_info(), "TIFF=libtiff") != NULL);
            return 0;
        } else if (!strcmp(argv[i], "--raw") && argc - i >= 7) {
            bmc__config c = config(size);
            return run_raw(&c, argv + i + 1);
        } else {
            fprintf(stderr, "usage: see tests/tool_image_crop.c\n");
            return 2;
        }
    }
    bmc__config c = config(size);
    for (; i + 1 < argc; i += 2) {
        bmc_image im;
        lp.flags = flags;
        bmc_status st = bmc_image_load_ex(argv[i], &lp, &im);
        if (st == BMC_OK && write_outputs(&c, &im, argv[i + 1])) {
            printf("OK %s %s %dx%d\n", argv[i], bmc__mode_name(bmc__image_mode(&im)), im.width, im.height);
        } else {
            printf("ERR %s %d %s\n", argv[i], (int)st, bmc_last_error());
            failed = 1;
        }
        bmc_image_free(&im);
    }
    return failed;
}
