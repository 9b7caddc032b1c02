/* bench_tokenize.c - time bmc_tokenize on a few kinds of text (plain ASCII prompts and captions,
 * ASCII that needs cleaning, non-ASCII captions, mojibake), median of rounds, in microseconds a
 * text. Only the public API: the same source builds against an older library for an A/B.
 *
 *   build/bench/bench_tokenize MODEL.bmc [ROUNDS]      (any .bmc: the vocabulary is what counts) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "biomedclip.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.bmc [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 21;
    if (rounds < 1) rounds = 1;
    bmc_model *model = NULL;
    if (bmc_model_load(argv[1], NULL, &model) != BMC_OK) {
        fprintf(stderr, "%s\n", bmc_last_error());
        return 1;
    }
    static char long_ascii[100001];
    const char *word = "adenocarcinoma of the lung with pleural invasion ";
    for (size_t i = 0; i < sizeof long_ascii - 1; i++) long_ascii[i] = word[i % strlen(word)];
    struct {
        const char *name, *text;
        int reps;
    } cases[] = {
        {"ASCII prompt (48 chars)", "this is a photo of adenocarcinoma histopathology", 20000},
        {"ASCII caption (190 chars)",
         "Figure 3B: Representative images of squamous cell carcinoma showing keratin pearls and "
         "intercellular bridges, magnification x400; scale bar = 50 um (n=12, p<0.05, t-test).", 5000},
        {"ASCII with '&' (cleaned, 60 chars)", "H&E-stained section of glioblastoma, x200 (a&b)", 10000},
        {"ASCII 100 KB (first 256 tokens)", long_ascii, 200},
        {"non-ASCII caption (78 chars)",
         "Figure 2: adenocarcinoma (H&E, \xc3\x97" "400); scale bar 50 \xc2\xb5m at 37 \xc2\xb0" "C \xe2\x80\x94 Ki-67 \xe2\x89\xa5 20%",
         5000},
        {"mojibake caption (100 chars)",
         "Figure 2: adenocarcinoma (H&E, \xc3\x83\xe2\x80\x94" "400); scale bar 50 \xc3\x82\xc2\xb5m at 37 "
         "\xc3\x82\xc2\xb0" "C \xc3\xa2\xe2\x82\xac\xe2\x80\x9d Ki-67 \xc3\xa2\xe2\x80\xb0\xc2\xa5 20%", 5000},
    };
    int ids[BMC_MAX_TOKENS], n;
    printf("bmc_tokenize, median of %d rounds, microseconds a text\n", rounds);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        double *t = malloc(sizeof(double) * (size_t)rounds);
        if (!t) return 1;
        for (int r = 0; r < rounds; r++) {
            double t0 = now();
            for (int i = 0; i < cases[c].reps; i++)
                if (bmc_tokenize(model, cases[c].text, ids, BMC_MAX_TOKENS, &n) != BMC_OK) {
                    fprintf(stderr, "%s\n", bmc_last_error());
                    return 1;
                }
            t[r] = (now() - t0) / cases[c].reps * 1e6;
        }
        qsort(t, (size_t)rounds, sizeof *t, cmp);
        printf("  %-38s %9.3f us  (min %.3f, %d ids)\n", cases[c].name, t[rounds / 2], t[0], n);
        free(t);
    }
    bmc_model_free(model);
    return 0;
}
