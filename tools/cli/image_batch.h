/* image_batch.h - encode a list of image files in batches, reporting each file in order
 * (shared by classify, index and search). */
#ifndef BMC_CLI_IMAGE_BATCH_H
#define BMC_CLI_IMAGE_BATCH_H

#include "biomedclip.h"
#include "image_items.h"

/* Called once per file, in file order: emb is its embedding (normalised unless asked not to) (bmc_model_embed_dim
 * floats, valid during the call) or NULL, and then error says why (naming the file). A non-zero return stops the
 * run (cli_encode_image_files then returns -1). */
typedef int (*cli_image_fn)(void *user, int index, const float *emb, const char *error);

/* Decode (with the image options) and encode items[0..n) `batch` at a time, the embeddings
 * L2-normalised when `normalize` (open_clip's encode_image(normalize=True)). An image that
 * fails is reported through fn and the others still go through. Returns the number of items
 * that failed, or -1 when fn asked to stop or memory ran out (a message is printed then). */
int cli_encode_image_files(bmc_ctx *ctx, const cli_image_opts *o, const cli_item *items, int n, int batch,
                           int normalize, cli_image_fn fn, void *user);

#endif /* BMC_CLI_IMAGE_BATCH_H */
