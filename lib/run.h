/* run.h - the scheduler: how the towers' work is spread over a context's threads and memory.
 *
 * Every decision about where work runs is taken here: a batch cut into chunks that the arena
 * holds, a chunk run as one group of items per thread or as one pass whose products all the
 * threads share, texts split into groups of about equal rows, and the size of the context's
 * scratch arena and of each thread's private scratch. The towers (vit.h, bert.h) compute a
 * forward pass over what they are given, on the pool they are given. */
#ifndef BMC_RUN_H
#define BMC_RUN_H

#include <stddef.h>

#include "biomedclip.h"
#include "model.h"

/* Start the context's threads (ctx->params.n_threads, or OpenBLAS's count) and size its arena for
 * ctx->params.max_batch images and as many full-length texts (bmc_ctx_new). On failure what was
 * made is released by bmc__run_free. */
bmc_status bmc__run_init(bmc_ctx *ctx);
/* Join the threads and free the arena (bmc_ctx_free); NULL-safe parts. */
void bmc__run_free(bmc_ctx *ctx);

/* Images per call of the image tower: max(max_batch, 16); larger batches run in chunks. */
int bmc__run_image_chunk(const bmc_ctx *ctx);
/* Scratch floats the image tower needs for a chunk of n images on `threads` threads (the model
 * inputs not included). */
size_t bmc__run_image_scratch(const bmc__config *cfg, int n, int threads);

/* Writes the model input of image i (3 x S x S floats) into dst: BMC_OK, or the error recorded. */
typedef bmc_status (*bmc__image_input_fn)(const void *user, int i, float *dst);

/* The image tower on n images on the context's threads: out[n, E] raw embeddings. The inputs are
 * chw[n, 3, S, S]; or, when chw is NULL, each is made by input(user, i, dst) in the arena, a
 * chunk at a time. */
bmc_status bmc__run_images(bmc_ctx *ctx, const float *chw, bmc__image_input_fn input,
                           const void *user, int n, float *out);

/* The text tower on n texts of lens[i] packed ids (checked: bmc__bert_check) on the context's
 * threads: out[n, E] raw embeddings. */
bmc_status bmc__run_texts(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out);

#endif /* BMC_RUN_H */
