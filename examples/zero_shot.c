/* zero_shot.c - zero-shot classification of one image with libbiomedclip.
 *
 *   cc zero_shot.c $(pkg-config --cflags --libs --static biomedclip) -o zero_shot
 *   ./zero_shot weights/biomedclip.bmc chest_X-ray.jpg "chest X-ray" "brain MRI" "pie chart"
 *
 * Prints "probability<TAB>label" per label, in the order given, using the BiomedCLIP notebook's
 * template "this is a photo of <label>". */
#include <biomedclip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL IMAGE LABEL LABEL...\n", argv[0]);
        return 2;
    }
    int n = argc - 3;
    char **texts = calloc((size_t)n, sizeof *texts);
    float *probs = calloc((size_t)n, sizeof *probs);
    for (int i = 0; i < n; i++) {
        texts[i] = malloc(strlen(argv[3 + i]) + 32);
        sprintf(texts[i], "this is a photo of %s", argv[3 + i]);
    }

    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    int rc = 1;
    if (bmc_model_load(argv[1], NULL, &model) != BMC_OK || bmc_ctx_new(model, NULL, &ctx) != BMC_OK ||
        bmc_zero_shot_file(ctx, argv[2], (const char *const *)texts, n, probs) != BMC_OK) {
        fprintf(stderr, "zero_shot: %s\n", bmc_last_error());
    } else {
        for (int i = 0; i < n; i++) printf("%.9g\t%s\n", probs[i], argv[3 + i]);
        rc = 0;
    }
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(probs);
    return rc;
}
