/* bench_decode.c - decode + preprocessing time per image file, by stage (bench/decode.py runs it
 * against PIL in alternating rounds).
 *
 *   bench_decode [--reps N] [--size S] FILE...
 *
 * Per file, N timed repetitions (after one warm-up) of:
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
#include <time.h>

#include "biomedclip.h"
#include "format.h"
#include "image.h"

#define MAX_REPS 1000

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int run_file(const char *path, int reps, const bmc__config *cfg) {
    static double t_load[MAX_REPS], t_crop[MAX_REPS], t_input[MAX_REPS];
    size_t S = cfg->image_size;
    unsigned char *rgb = malloc(S * S * 3);
    float *chw = malloc(S * S * 3 * sizeof(float));
    bmc_image img;
    int ok = rgb && chw, w = 0, h = 0, mode = 0;
    for (int r = -1; ok && r < reps; r++) { /* r = -1: warm-up */
        double a = now();
        if (bmc_image_load(path, BMC_DECODE_DEFAULT, &img) != BMC_OK) {
            fprintf(stderr, "bench_decode: %s\n", bmc_last_error());
            ok = 0;
            break;
        }
        double b = now();
        bmc_status st = bmc__image_crop(cfg, &img, rgb);
        double c = now();
        if (st == BMC_OK) st = bmc__image_to_input(cfg, &img, chw);
        double d = now();
        w = img.width, h = img.height, mode = bmc__image_mode(&img);
        bmc_image_free(&img);
        if (st != BMC_OK) {
            fprintf(stderr, "bench_decode: %s\n", bmc_last_error());
            ok = 0;
            break;
        }
        if (r >= 0) t_load[r] = b - a, t_crop[r] = c - b, t_input[r] = d - c;
    }
    if (ok) {
        double l = median(t_load, reps) * 1e3, c = median(t_crop, reps) * 1e3;
        double in = median(t_input, reps) * 1e3;
        printf("{\"file\": \"%s\", \"width\": %d, \"height\": %d, \"mode\": \"%s\", \"load_ms\": %.4f, "
               "\"crop_ms\": %.4f, \"input_ms\": %.4f, \"total_ms\": %.4f}\n",
               path, w, h, bmc__mode_name(mode), l, c, in, l + c);
        fflush(stdout);
    }
    free(rgb);
    free(chw);
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
    if (reps < 1 || reps > MAX_REPS || cfg.image_size < 1 || cfg.image_size > 4096 || i == argc) {
        fprintf(stderr, "usage: bench_decode [--reps 1..%d] [--size 1..4096] FILE...\n", MAX_REPS);
        return 2;
    }
    for (; i < argc; i++) rc |= run_file(argv[i], reps, &cfg);
    return rc;
}
