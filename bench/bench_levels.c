/* bench_levels.c - CPU time of the image and text passes at the kernel level in use (lib/cpu.h;
 * BMC_CPU chooses it), for bench/levels.sh, which alternates levels round by round.
 *
 * usage: bench_levels [MODEL] [--reps N]
 * One context of 1 thread (and OpenBLAS's count as it is: set OPENBLAS_NUM_THREADS=1 for the
 * portable level to be compared per core). CPU time (CLOCK_PROCESS_CPUTIME_ID), not wall time:
 * on a machine shared with other work the wall time says more about the others than about us.
 * Prints one line per workload: the best and the median CPU ms of N calls after one warm-up,
 * GFLOP/s from the best, and the FMA peak of the level measured the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "biomedclip.h"
#pragma GCC diagnostic ignored "-Wunused-function" /* the helpers this program does not use */
#include "bench_util.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *path = getenv("BIOMEDCLIP_MODEL");
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else path = argv[i];
    }
    char def[1024];
    if (!path) {
        snprintf(def, sizeof def, "%s/full.bmc", getenv("BMC_TESTDATA") ? getenv("BMC_TESTDATA") : "build/testdata");
        path = def;
    }
    if (reps < 1 || reps > 100) reps = 5;
    bmc_model *m = NULL;
    if (bmc_model_load(path, NULL, &m) != BMC_OK) {
        fprintf(stderr, "bench_levels: %s\n", bmc_last_error());
        return 1;
    }
    bmc_ctx_params p = bmc_ctx_default_params();
    p.n_threads = 1;
    p.max_batch = 8;
    bmc_ctx *ctx = NULL;
    if (bmc_ctx_new(m, &p, &ctx) != BMC_OK) return 1;
    int S = bmc_model_image_size(m), E = bmc_model_embed_dim(m);
    size_t in = (size_t)3 * S * S;
    float *chw = malloc(sizeof(float) * in * 8), *out = malloc(sizeof(float) * (size_t)E * 8);
    if (!chw || !out) return 1;
    for (size_t i = 0; i < in * 8; i++) chw[i] = bu_pixel((unsigned)i);
    int ids[8 * 24], lens[8];
    for (int t = 0; t < 8; t++) {
        lens[t] = 24;
        for (int j = 0; j < 24; j++) ids[t * 24 + j] = j == 0 ? 2 : j == 23 ? 3 : 1000 + (t * 131 + j * 17) % 20000;
    }
    /* FLOPs: 2 per multiply-add of the products (the ViT-B/16 and BERT-base shapes) */
    double img_gflop = 35.13, txt_gflop = 24 * 2.0 * (12 * (4 * 768.0 * 768 + 2 * 768 * 3072) + 768 * 512) / 1e9;
    struct { const char *name; int kind, n; double gflop; } w[] = {
        {"image, batch 1", 0, 1, img_gflop}, {"images, batch 8", 0, 8, 8 * img_gflop},
        {"text 24 tokens, batch 1", 1, 1, txt_gflop}, {"texts 24 tokens, batch 8", 1, 8, 8 * txt_gflop}};
    printf("library: %s\n", bmc_system_info());
    double flops;
    const char *kind;
    void *(*fma)(void *) = bu_fma_kind(&flops, &kind);
    bu_fma_arg fa = {20000000, 0, 0};
    double t0 = cpu_now();
    fma(&fa);
    double peak = 20000000.0 * flops / (cpu_now() - t0) / 1e9;
    printf("%-26s %8.1f GFLOP/s per core (%s)\n", "FMA peak", peak, kind);
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        double t[100];
        int n = w[k].n >= 8 && w[k].kind == 0 ? (reps + 1) / 2 : reps;
        for (int r = -1; r < n; r++) {
            double a = cpu_now();
            bmc_status st = w[k].kind == 0 ? bmc_encode_pixels(ctx, chw, w[k].n, out, 0)
                                           : bmc_encode_ids(ctx, ids, lens, w[k].n, out, 0);
            if (st != BMC_OK) {
                fprintf(stderr, "bench_levels: %s\n", bmc_last_error());
                return 1;
            }
            if (r >= 0) t[r] = cpu_now() - a;
        }
        qsort(t, (size_t)n, sizeof t[0], cmp);
        printf("%-26s best %9.2f  median %9.2f CPU ms/call  %6.1f GFLOP/s = %3.0f%% of the peak\n", w[k].name,
               t[0] * 1e3, t[n / 2] * 1e3, w[k].gflop / t[0], 100 * w[k].gflop / t[0] / peak);
    }
    free(chw), free(out);
    bmc_ctx_free(ctx);
    bmc_model_free(m);
    return 0;
}
