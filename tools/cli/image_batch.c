/* image_batch.c - decode + encode image files a batch at a time: one GEMM per layer for the
 * whole batch is faster than one per image, and a file that fails to decode must not sink the
 * others, so a batch whose encode fails is retried one image at a time.
 *
 * A reader thread (prefetch.h) decodes and preprocesses batch b + 1 into model inputs while the
 * towers encode batch b: from files the towers then wait for decoding only on the first batch.
 * Files are reported in order, with the same embeddings (bmc_encode_pixels on the inputs that
 * bmc_encode_image would make) and the same messages as one thread doing both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_batch.h"
#include "prefetch.h"

#define ERR_LEN 1024

typedef struct batch_slot {
    float *chw;              /* [batch, in] the model inputs of the files that decoded */
    int *row;                /* file k of the batch -> row in chw, or -1 */
    char (*errors)[ERR_LEN]; /* [batch] why file k failed */
    int loaded;              /* rows in chw */
} batch_slot;

typedef struct batches {
    const bmc_model *model;
    const cli_image_opts *o;
    const cli_item *items;
    int n, batch;
    size_t in; /* floats of one model input */
    batch_slot slot[2];
} batches;

/* The message for an item, naming it once whether or not the library's message does. */
static void set_error(char *dst, const cli_item *it) {
    const char *why = bmc_last_error();
    if (strstr(why, it->file)) snprintf(dst, ERR_LEN, "%s", why);
    else snprintf(dst, ERR_LEN, "%s: %s", it->name, why);
}

/* Batch b's files, decoded and preprocessed into slot s (cli_prefetch_fill, reader thread). A
 * decoded image is freed as soon as its input is made: only the inputs stay, not the pixels. */
static int fill_batch(void *user, long long b, int s) {
    batches *bs = user;
    batch_slot *sl = &bs->slot[s];
    int start = (int)(b * bs->batch), count = bs->n - start < bs->batch ? bs->n - start : bs->batch;
    sl->loaded = 0;
    for (int k = 0; k < count; k++) {
        const cli_item *it = &bs->items[start + k];
        bmc_image im;
        sl->row[k] = -1;
        sl->errors[k][0] = '\0';
        if (cli_image_load(bs->o, it, &im) != BMC_OK) {
            set_error(sl->errors[k], it);
            continue;
        }
        if (bmc_image_preprocess(bs->model, &im, sl->chw + (size_t)sl->loaded * bs->in) == BMC_OK)
            sl->row[k] = sl->loaded++;
        else
            set_error(sl->errors[k], it);
        bmc_image_free(&im);
    }
    return 0;
}

int cli_encode_image_files(bmc_ctx *ctx, const cli_image_opts *o, const cli_item *items, int n, int batch,
                           int normalize, cli_image_fn fn, void *user) {
    const bmc_model *model = bmc_ctx_model(ctx);
    int dim = bmc_model_embed_dim(model), side = bmc_model_image_size(model);
    if (batch < 1) batch = 1;
    batches bs = {model, o, items, n, batch, 3 * (size_t)side * side, {{0}}};
    float *emb = malloc((size_t)batch * dim * sizeof *emb); /* [batch, dim] */
    int ok = emb != NULL;
    for (int s = 0; s < 2; s++) {
        batch_slot *sl = &bs.slot[s];
        sl->chw = malloc((size_t)batch * bs.in * sizeof *sl->chw);
        sl->row = calloc((size_t)batch, sizeof *sl->row);
        sl->errors = calloc((size_t)batch, ERR_LEN);
        ok = ok && sl->chw && sl->row && sl->errors;
    }
    int failed = 0, stop = 0;
    long long n_batches = ((long long)n + batch - 1) / batch;
    cli_prefetch pf;
    memset(&pf, 0, sizeof pf);
    if (!ok) {
        fprintf(stderr, "biomedclip: out of memory\n");
        stop = 1;
    } else if (cli_prefetch_start(&pf, 0, n_batches, fill_batch, &bs) != 0) {
        fprintf(stderr, "biomedclip %s: cannot start the reader thread\n", o->cmd);
        stop = 1;
    }
    for (long long b = 0; b < n_batches && !stop; b++) {
        batch_slot *sl = &bs.slot[b & 1];
        cli_prefetch_wait(&pf, b); /* fill_batch does not fail: a file's failure is in its slot */
        int start = (int)(b * batch), count = n - start < batch ? n - start : batch;
        if (sl->loaded > 0 && bmc_encode_pixels(ctx, sl->chw, sl->loaded, emb, normalize) != BMC_OK) {
            /* find which ones fail: encode one at a time */
            for (int k = 0; k < count; k++) {
                int r = sl->row[k];
                if (r < 0) continue;
                float *row = sl->chw + (size_t)r * bs.in;
                if (bmc_encode_pixels(ctx, row, 1, emb + (size_t)r * dim, normalize) != BMC_OK) {
                    set_error(sl->errors[k], &items[start + k]);
                    sl->row[k] = -1;
                }
            }
        }
        for (int k = 0; k < count && !stop; k++) {
            if (sl->row[k] < 0) failed++;
            const float *e = sl->row[k] < 0 ? NULL : emb + (size_t)sl->row[k] * dim;
            if (fn(user, start + k, e, sl->errors[k])) stop = 1;
        }
        cli_prefetch_release(&pf, b);
    }
    cli_prefetch_stop(&pf);
    for (int s = 0; s < 2; s++) free(bs.slot[s].chw), free(bs.slot[s].row), free(bs.slot[s].errors);
    free(emb);
    return stop ? -1 : failed;
}
