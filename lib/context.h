/* context.h - a context: scratch memory for one forward pass at a time. */
#ifndef BMC_CONTEXT_H
#define BMC_CONTEXT_H

#include <stddef.h>

#include "biomedclip.h"
#include "model.h"
#include "pool.h"

struct bmc_ctx {
    const bmc_model *model;
    bmc_ctx_params params;
    float *scratch;          /* one arena shared by both towers (they never run at once) */
    size_t scratch_floats;   /* its capacity */
    bmc__pool *pool;         /* the threads a forward pass runs on (pool.h) */
    bmc__pool **solo;        /* [threads of pool] or NULL: a 1-thread pool per thread, the
                              * scratch of work that runs whole on one thread (vit.c) */
};

/* A scratch area of at least n floats (64-byte aligned), grown if needed: growth happens only
 * when a larger batch than ever before arrives. NULL (with the error recorded) when out of memory. */
float *bmc__ctx_scratch(bmc_ctx *ctx, size_t n_floats);

/* Towers (vit.c, bert.c): write n raw (unnormalised) embeddings into out[n * embed_dim]. */
bmc_status bmc__vit_encode(bmc_ctx *ctx, const float *chw, int n, float *out);
bmc_status bmc__bert_encode(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out);

#endif /* BMC_CONTEXT_H */
