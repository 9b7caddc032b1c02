/* vit.h - the ViT image tower: its scratch plan, its stages (patch embedding, one block, the last
 * block for the class tokens only, pooling + projection; tests call them one by one) and the
 * forward pass over a batch of images on the threads it is given. How a batch is cut into
 * chunks and spread over threads is the scheduler's (run.h).
 *
 * The stages take n images as one activation matrix of n*T rows (T = 1 + (S/P)^2 tokens per
 * image, image i owning rows i*T .. i*T+T-1), each weight one product for all of them; only
 * attention runs image by image. */
#ifndef BMC_VIT_H
#define BMC_VIT_H

#include <stddef.h>

#include "model.h"
#include "pool.h"

/* Where each part of the scratch arena lies for n images. Offsets are in floats, 16-float
 * (64-byte) aligned. T = tokens per image, W = width, F = MLP width, E = embed dim. */
typedef struct bmc__vit_plan {
    int n;          /* images                                                     */
    int T;          /* tokens per image (197)                                     */
    size_t x;       /* [n*T, W]  residual stream, updated in place block by block  */
    size_t xn;      /* [n*T, W]  LayerNorm output; projection outputs             */
    size_t att;     /* [n*T, W]  attention context; patch GEMM output; pooled cls  */
    size_t big;     /* [n*T, max(3W, F, 3P^2)]  QKV, MLP hidden or im2col patches  */
    size_t scores;  /* attention scratch of one thread (used when pool is NULL)    */
    size_t thread_floats; /* ... its size: what each thread of a pool needs        */
    size_t total;   /* floats in all                                              */
    bmc__pool *pool; /* the threads the stages run on; NULL: the caller alone     */
} bmc__vit_plan;

/* The plan for n images on the caller's thread alone (set .pool to spread the work). */
bmc__vit_plan bmc__vit_plan_for(const bmc__config *cfg, int n);

/* scratch+x[n*T, W] = [cls; patches(chw[i]) W_patch^T + b] + pos_embed, for chw[n, 3, S, S]. */
void bmc__vit_embed(const bmc_model *model, const float *chw, int n, float *scratch,
                    const bmc__vit_plan *plan);

/* Block `layer` (pre-norm attention + MLP, both residual) on scratch+x, in place. */
void bmc__vit_run_block(const bmc_model *model, int layer, float *scratch,
                        const bmc__vit_plan *plan);

/* The same block computed only for each image's class-token row (keys and values of every row,
 * the query, projection and MLP of the cls rows): exact for the last block, whose other rows
 * nothing reads. The other rows of scratch+x are left as they were. */
void bmc__vit_run_block_cls(const bmc_model *model, int layer, float *scratch,
                            const bmc__vit_plan *plan);

/* Final LayerNorm of each image's cls row into scratch+att [n, W] (the pooled features), then
 * out[n, E] = pooled head_w^T (no bias). */
void bmc__vit_pool_project(const bmc_model *model, float *scratch, const bmc__vit_plan *plan,
                           float *out);

/* The whole tower on n images, one image a pass: out[n, E] raw (unnormalised) embeddings.
 * scratch holds bmc__vit_plan_for(cfg, 1).total floats. The work runs on pool (NULL: the caller
 * alone). */
void bmc__vit_forward(const bmc_model *model, const float *chw, int n, float *scratch, float *out,
                      bmc__pool *pool);

#endif /* BMC_VIT_H */
