/* bench_decode.c - decode + preprocessing time per image file, by stage (bench/decode.py runs it
 * against PIL in alternating rounds).
 *
 *   bench_decode [--reps N] [--size S] FILE...
 *
 * Per file, N timed repetitions (after one warm-up, bench_util.h bu_time) of each stage by itself:
 *   load   bmc_image_load: read the file, decode, build the view (what `index` / `classify` do)
 *   crop   the open_clip val transform's Resize(S, bicubic) + CenterCrop(S) + convert('RGB')
 *          to S x S x 3 bytes (bmc_image_crop)
 *   input  the same plus to_tensor and Normalize to CHW floats (bmc_image_preprocess), timed
 *          by itself
 * and prints one JSON object per line: {"file", "width", "height", "mode", "load_ms", "crop_ms",
 * "input_ms", "total_ms"} with medians in milliseconds (total = load + crop, the figure compared
 * with PIL's Image.open().resize().crop().convert()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* the helpers this program does not use */
#include "bench_util.h"
#pragma GCC diagnostic pop
#include "biomedclip.h"
#include "format.h"
#include "image.h"

typedef struct stage {
    const char *path;
    const bmc__config *cfg;
    bmc_image img;       /* loaded once for the crop and input stages */
    unsigned char *rgb;  /* [S * S * 3] */
    float *chw;          /* [3 * S * S] */
} stage;

static int do_load(void *arg) {
    stage *s = arg;
    bmc_image img;
    if (bmc_image_load(s->path, BMC_DECODE_DEFAULT, &img) != BMC_OK) return 1;
    bmc_image_free(&img);
    return 0;
}

static int do_crop(void *arg) {
    stage *s = arg;
    return bmc__image_crop(s->cfg, &s->img, s->rgb) != BMC_OK;
}

static int do_input(void *arg) {
    stage *s = arg;
    return bmc__image_to_input(s->cfg, &s->img, s->chw) != BMC_OK;
}

static int run_file(const char *path, int reps, const bmc__config *cfg) {
    size_t S = cfg->image_size;
    stage s = {path, cfg, {0}, malloc(S * S * 3), malloc(S * S * 3 * sizeof(float))};
    int ok = s.rgb && s.chw && bmc_image_load(path, BMC_DECODE_DEFAULT, &s.img) == BMC_OK;
    bu_timing t[3];
    int (*const fn[3])(void *) = {do_load, do_crop, do_input};
    for (int k = 0; ok && k < 3; k++) {
        t[k] = bu_time(fn[k], &s, reps, 0.0, 1e9);
        ok = t[k].n > 0;
    }
    if (ok) {
        double l = t[0].median * 1e3, c = t[1].median * 1e3, in = t[2].median * 1e3;
        printf("{\"file\": \"%s\", \"width\": %d, \"height\": %d, \"mode\": \"%s\", \"load_ms\": %.4f, "
               "\"crop_ms\": %.4f, \"input_ms\": %.4f, \"total_ms\": %.4f}\n",
               path, s.img.width, s.img.height, bmc__mode_name(bmc__image_mode(&s.img)), l, c, in, l + c);
        fflush(stdout);
    } else {
        fprintf(stderr, "bench_decode: %s\n", bmc_last_error());
    }
    bmc_image_free(&s.img);
    free(s.rgb);
    free(s.chw);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    int reps = 10, rc = 0;
    bmc__config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = 224;
    /* open_clip's OPENAI_DATASET_MEAN / STD, BiomedCLIP's */
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(cfg.image_mean, mean, sizeof mean);
    memcpy(cfg.image_std, std, sizeof std);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) cfg.image_size = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_decode [--reps N] [--size S] FILE...\n");
            return 2;
        }
    }
    if (reps < 1 || reps > BU_MAX_REPS || cfg.image_size < 1 || cfg.image_size > 4096 || i == argc) {
        fprintf(stderr, "usage: bench_decode [--reps 1..%d] [--size 1..4096] FILE...\n", BU_MAX_REPS);
        return 2;
    }
    for (; i < argc; i++) rc |= run_file(argv[i], reps, &cfg);
    return rc;
}
