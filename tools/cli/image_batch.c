/* image_batch.c - decode + encode image files a batch at a time: one GEMM per layer for the
 * whole batch is faster than one per image, and a file that fails to decode must not sink the
 * others, so a batch whose encode fails is retried one image at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_batch.h"

#define ERR_LEN 1024

/* The message for an item, naming it once whether or not the library's message does. */
static void set_error(char *dst, const cli_item *it) {
    const char *why = bmc_last_error();
    if (strstr(why, it->file)) snprintf(dst, ERR_LEN, "%s", why);
    else snprintf(dst, ERR_LEN, "%s: %s", it->name, why);
}

int cli_encode_image_files(bmc_ctx *ctx, const cli_image_opts *o, const cli_item *items, int n, int batch,
                           cli_image_fn fn, void *user) {
    int dim = bmc_model_embed_dim(bmc_ctx_model(ctx));
    if (batch < 1) batch = 1;
    bmc_image *images = calloc((size_t)batch, sizeof *images);  /* [batch] loaded images */
    int *slot = calloc((size_t)batch, sizeof *slot);           /* file k -> row in images, or -1 */
    char (*errors)[ERR_LEN] = calloc((size_t)batch, ERR_LEN);  /* [batch] messages */
    float *emb = malloc((size_t)batch * dim * sizeof *emb);    /* [batch, dim] */
    if (!images || !slot || !errors || !emb) {
        fprintf(stderr, "biomedclip: out of memory\n");
        free(images), free(slot), free(errors), free(emb);
        return -1;
    }
    int failed = 0, stop = 0;
    for (int start = 0; start < n && !stop; start += batch) {
        int count = n - start < batch ? n - start : batch, loaded = 0;
        for (int k = 0; k < count; k++) {
            slot[k] = -1;
            errors[k][0] = '\0';
            bmc_image *im = &images[loaded];
            memset(im, 0, sizeof *im);
            if (cli_image_load(o, &items[start + k], im) == BMC_OK)
                slot[k] = loaded++;
            else
                set_error(errors[k], &items[start + k]);
        }
        if (loaded > 0 && bmc_encode_image(ctx, images, loaded, emb, 1) != BMC_OK) {
            /* find which ones fail: encode one at a time */
            for (int k = 0; k < count; k++) {
                if (slot[k] < 0) continue;
                int r = slot[k];
                if (bmc_encode_image(ctx, &images[r], 1, emb + (size_t)r * dim, 1) != BMC_OK) {
                    set_error(errors[k], &items[start + k]);
                    slot[k] = -1;
                }
            }
        }
        for (int r = 0; r < loaded; r++) bmc_image_free(&images[r]);
        for (int k = 0; k < count && !stop; k++) {
            if (slot[k] < 0) failed++;
            const float *e = slot[k] < 0 ? NULL : emb + (size_t)slot[k] * dim;
            if (fn(user, start + k, e, errors[k])) stop = 1;
        }
    }
    free(images), free(slot), free(errors), free(emb);
    return stop ? -1 : failed;
}
