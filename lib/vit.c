/* vit.c - the image tower: timm vit_base_patch16_224 as open_clip's TimmModel wraps it
 * (spec section 2), with open_clip's linear head.
 *
 *   chw[n,3,224,224] -> conv16x16/s16 (+bias) as one GEMM -> prepend cls, + pos_embed
 *     -> L x { x += proj(attn(LN1(x)));  x += fc2(GELU(fc1(LN2(x)))) }
 *     -> LN(cls row) -> Linear W->E (no bias)
 *
 * Everything is sized from model->config, so the tiny test model runs the same code. */
#include <math.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "ops.h"
#include "vit.h"

/* Images per call of the tower: larger batches are run in chunks of this many (or max_batch if
 * that is larger), which bounds the model inputs the arena holds (0.6 MB a full-size image)
 * while giving every thread a group of images to run (bmc__vit_run). */
#define BMC__VIT_MIN_CHUNK 16

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

bmc__vit_plan bmc__vit_plan_for(const bmc__config *cfg, int n) {
    size_t W = cfg->vision_width, F = cfg->vision_mlp, P = cfg->patch_size;
    size_t G = cfg->image_size / P;
    bmc__vit_plan p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.T = (int)(1 + G * G);
    size_t rows = (size_t)n * p.T;
    size_t wide = 3 * W;
    if (F > wide) wide = F;
    if (3 * P * P > wide) wide = 3 * P * P;
    size_t off = 0;
    p.x = off, off += align16(rows * W);
    p.xn = off, off += align16(rows * W);
    p.att = off, off += align16(rows * W);
    p.big = off, off += align16(rows * wide);
    p.scores = off, off += align16(bmc__attention_scratch(p.T, (int)(W / cfg->vision_heads)));
    p.total = off;
    p.pool = NULL;
    return p;
}

bmc_status bmc__vit_check_config(const bmc__config *c) {
    if (c->patch_size == 0 || c->image_size == 0 || c->image_size % c->patch_size)
        return bmc__fail(BMC_E_FORMAT,
                         "vision config: image_size %u is not a multiple of patch_size %u",
                         c->image_size, c->patch_size);
    if (c->vision_heads == 0 || c->vision_width == 0 || c->vision_width % c->vision_heads)
        return bmc__fail(BMC_E_FORMAT, "vision config: width %u is not a multiple of heads %u",
                         c->vision_width, c->vision_heads);
    if (c->vision_layers > BMC__MAX_LAYERS || c->vision_mlp == 0 || c->embed_dim == 0)
        return bmc__fail(BMC_E_FORMAT, "vision config: layers %u (max %d), mlp %u, embed_dim %u",
                         c->vision_layers, BMC__MAX_LAYERS, c->vision_mlp, c->embed_dim);
    return BMC_OK;
}

void bmc__vit_embed(const bmc_model *model, const float *chw, int n, float *scratch,
                    const bmc__vit_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__vit_weights *w = &model->vit;
    int S = (int)c->image_size, P = (int)c->patch_size, G = S / P, W = (int)c->vision_width;
    int K = 3 * P * P, T = plan->T;
    float *cols = scratch + plan->big;  /* [n*G*G, K] im2col patches */
    float *tok = scratch + plan->att;   /* [n*G*G, W] conv output    */
    float *x = scratch + plan->x;

    /* im2col: patch p = (r, q) in row-major grid order, column (k, u, v) as the conv weight
     * [W, 3, P, P] flattens, so the convolution is cols * patch_w^T. */
    for (int i = 0; i < n; i++) {
        const float *img = chw + (size_t)i * 3 * S * S;
        for (int r = 0; r < G; r++)
            for (int q = 0; q < G; q++) {
                float *dst = cols + ((size_t)i * G * G + (size_t)r * G + q) * K;
                for (int k = 0; k < 3; k++)
                    for (int u = 0; u < P; u++) {
                        const float *src =
                            img + ((size_t)k * S + (size_t)r * P + u) * S + (size_t)q * P;
                        memcpy(dst + (k * P + u) * P, src, (size_t)P * sizeof(float));
                    }
            }
    }
    bmc__gemm(plan->pool, cols, n * G * G, K, w->patch_w, 0, W, w->patch_b, tok, W, 0);

    /* tokens: cls first, then the patches; + pos_embed (row 0 belongs to cls) */
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * T * W;
        for (int j = 0; j < W; j++) xi[j] = w->cls_token[j] + w->pos_embed[j];
        for (int t = 1; t < T; t++) {
            const float *src = tok + ((size_t)i * G * G + t - 1) * W;
            const float *pos = w->pos_embed + (size_t)t * W;
            float *dst = xi + (size_t)t * W;
            for (int j = 0; j < W; j++) dst[j] = src[j] + pos[j];
        }
    }
}

static bmc__attn vit_attn(const bmc__config *c, float *scratch, const bmc__vit_plan *plan) {
    int W = (int)c->vision_width, H = (int)c->vision_heads;
    float *big = scratch + plan->big;
    bmc__attn a;
    memset(&a, 0, sizeof a);
    a.pool = plan->pool;
    a.q = big, a.k = big + W, a.v = big + 2 * W;
    a.ldq = a.ldk = a.ldv = 3 * W;
    a.out = scratch + plan->att, a.ldo = W;
    a.n_seq = plan->n, a.len = plan->T;
    a.W = W, a.heads = H;
    a.scale = (float)(1.0 / sqrt((double)(W / H))); /* head_dim^-0.5, 0.125 at 64 */
    a.scratch = scratch + plan->scores;
    return a;
}

void bmc__vit_run_block(const bmc_model *model, int layer, float *scratch,
                        const bmc__vit_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__vit_block *b = &model->vit.blocks[layer];
    int W = (int)c->vision_width, F = (int)c->vision_mlp;
    int rows = plan->n * plan->T;
    float eps = (float)c->vision_ln_eps;
    float *x = scratch + plan->x, *xn = scratch + plan->xn, *att = scratch + plan->att;
    float *big = scratch + plan->big;
    bmc__pool *pool = plan->pool;

    /* x = x + proj(attention(LN1(x))) */
    bmc__layernorm_rows(pool, x, W, xn, W, rows, W, b->norm1_w, b->norm1_b, eps);
    bmc__gemm(pool, xn, rows, W, b->qkv_w, 0, 3 * W, b->qkv_b, big, 3 * W, 0); /* Q|K|V */
    bmc__attn a = vit_attn(c, scratch, plan);
    bmc__attention(&a);
    bmc__gemm(pool, att, rows, W, b->proj_w, 0, W, b->proj_b, x, W, BMC__GEMM_ACC);

    /* x = x + fc2(GELU(fc1(LN2(x)))) */
    bmc__layernorm_rows(pool, x, W, xn, W, rows, W, b->norm2_w, b->norm2_b, eps);
    bmc__gemm(pool, xn, rows, W, b->fc1_w, 0, F, b->fc1_b, big, F, BMC__GEMM_GELU);
    bmc__gemm(pool, big, rows, F, b->fc2_w, 0, W, b->fc2_b, x, W, BMC__GEMM_ACC);
}

void bmc__vit_run_block_cls(const bmc_model *model, int layer, float *scratch,
                            const bmc__vit_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__vit_block *b = &model->vit.blocks[layer];
    int W = (int)c->vision_width, F = (int)c->vision_mlp, T = plan->T, n = plan->n;
    int rows = n * T;
    float eps = (float)c->vision_ln_eps;
    float *x = scratch + plan->x, *xn = scratch + plan->xn, *att = scratch + plan->att;
    float *big = scratch + plan->big;
    bmc__pool *pool = plan->pool;

    /* keys and values of every row; the query of each cls row (row i*T, into its Q columns) */
    bmc__layernorm_rows(pool, x, W, xn, W, rows, W, b->norm1_w, b->norm1_b, eps);
    bmc__gemm(pool, xn, rows, W, b->qkv_w, W, 2 * W, b->qkv_b + W, big + W, 3 * W, 0);
    bmc__gemm(pool, xn, n, T * W, b->qkv_w, 0, W, b->qkv_b, big, T * 3 * W, 0);
    bmc__attn a = vit_attn(c, scratch, plan);
    a.cls_only = 1;
    a.ldq = T * 3 * W; /* query s is row s*T of big; its output row s of att [n, W] */
    bmc__attention(&a);
    /* the cls rows of x (stride T*W): + proj, then + MLP */
    bmc__gemm(pool, att, n, W, b->proj_w, 0, W, b->proj_b, x, T * W, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, x, T * W, xn, W, n, W, b->norm2_w, b->norm2_b, eps);
    bmc__gemm(pool, xn, n, W, b->fc1_w, 0, F, b->fc1_b, big, F, BMC__GEMM_GELU);
    bmc__gemm(pool, big, n, F, b->fc2_w, 0, W, b->fc2_b, x, T * W, BMC__GEMM_ACC);
}

void bmc__vit_final_norm(const bmc_model *model, const float *scratch, const bmc__vit_plan *plan,
                         float *y) {
    const bmc__config *c = &model->config;
    bmc__layernorm(scratch + plan->x, y, plan->n * plan->T, (int)c->vision_width,
                   model->vit.norm_w, model->vit.norm_b, (float)c->vision_ln_eps);
}

void bmc__vit_pool_project(const bmc_model *model, float *scratch, const bmc__vit_plan *plan,
                           float *out) {
    const bmc__config *c = &model->config;
    int W = (int)c->vision_width;
    float *pooled = scratch + plan->att; /* [n, W] */
    /* LayerNorm is per row, so normalising only the cls rows equals taking them after the
     * full-sequence norm (timm: norm(x) then x[:, 0]). */
    bmc__layernorm_rows(NULL, scratch + plan->x, plan->T * W, pooled, W, plan->n, W,
                        model->vit.norm_w, model->vit.norm_b, (float)c->vision_ln_eps);
    bmc__gemm(plan->pool, pooled, plan->n, W, model->vit.head_w, 0, (int)c->embed_dim, NULL, out,
              (int)c->embed_dim, 0);
}

/* One image a pass: its activations (197 rows; the MLP hidden layer 2.4 MB) stay in cache, where 8
 * images' 1,576 rows (19 MB) would stream from memory at every product, and the weights are read
 * once per 35 GFLOP either way. Medians of alternating runs, ms per image (28 Nov): 8 images at 1
 * thread 182 one a pass against 192 all in one pass (5 rounds) and 191 / 219 (3 rounds), 4 images
 * 202 / 211; at 2 threads (a group of 4 per thread) 99.0 / 99.6 (7 rounds) and 91.2 / 89.8 (5),
 * the same within the noise. The results are identical either way: a row's products and an image's
 * attention do not depend on the other rows. */
void bmc__vit_forward(const bmc_model *model, const float *chw, int n, float *scratch, float *out,
                      bmc__pool *pool) {
    const bmc__config *c = &model->config;
    bmc__vit_plan plan = bmc__vit_plan_for(c, 1);
    plan.pool = pool;
    int L = (int)c->vision_layers;
    size_t in_floats = 3 * (size_t)c->image_size * c->image_size;
    for (int i = 0; i < n; i++) {
        bmc__vit_embed(model, chw + (size_t)i * in_floats, 1, scratch, &plan);
        for (int l = 0; l + 1 < L; l++) bmc__vit_run_block(model, l, scratch, &plan);
        if (L > 0) bmc__vit_run_block_cls(model, L - 1, scratch, &plan);
        bmc__vit_pool_project(model, scratch, &plan, out + (size_t)i * c->embed_dim);
    }
}

int bmc__vit_chunk(const bmc_ctx *ctx) {
    int chunk = ctx->params.max_batch;
    return chunk > BMC__VIT_MIN_CHUNK ? chunk : BMC__VIT_MIN_CHUNK;
}

/* A chunk of n images runs as one sub-batch per thread, each on its own thread from start to end,
 * when the images split evenly and each thread gets at least two: no thread then waits for another
 * between the ~60 steps of a pass, which on a busy machine, where a thread is often descheduled,
 * costs more than what sharing each product saves (the weights are read once per thread instead of
 * once; 8 images on 2 threads: 93.4 against 98.5 ms an image, medians of alternating runs, 28
 * Nov). Otherwise, and for a single image, every product and attention is spread over the
 * threads. */
static int vit_groups(int n, int threads) {
    return threads <= 1 || n < 2 * threads || n % threads ? 1 : threads;
}

size_t bmc__vit_scratch(const bmc__config *cfg, int n, int threads) {
    return (size_t)vit_groups(n, threads) * bmc__vit_plan_for(cfg, 1).total;
}

typedef struct vit_group_job {
    const bmc_ctx *ctx;
    const float *chw; /* [n, 3, S, S] */
    float *scratch;   /* groups x stride floats */
    float *out;       /* [n, E] */
    int per;          /* images per group */
    size_t stride;    /* scratch floats per group */
} vit_group_job;

static void vit_group_task(void *arg, int g, int thread) {
    const vit_group_job *j = arg;
    const bmc__config *c = &j->ctx->model->config;
    size_t in_floats = 3 * (size_t)c->image_size * c->image_size;
    bmc__vit_forward(j->ctx->model, j->chw + (size_t)g * j->per * in_floats, j->per,
                     j->scratch + (size_t)g * j->stride, j->out + (size_t)g * j->per * c->embed_dim,
                     j->ctx->solo[thread]);
}

void bmc__vit_run(const bmc_ctx *ctx, const float *chw, int n, float *scratch, float *out) {
    int threads = bmc__pool_threads(ctx->pool), g = vit_groups(n, threads);
    if (g == 1 || !ctx->solo) {
        bmc__vit_forward(ctx->model, chw, n, scratch, out, ctx->pool);
        return;
    }
    vit_group_job j = {ctx, chw, scratch, out, n / g,
                       bmc__vit_plan_for(&ctx->model->config, 1).total};
    bmc__pool_run(ctx->pool, vit_group_task, &j, g);
}

bmc_status bmc__vit_encode(bmc_ctx *ctx, const float *chw, int n, float *out) {
    const bmc__config *c = &ctx->model->config;
    bmc_status st = bmc__vit_check_config(c);
    if (st != BMC_OK) return st;
    size_t in_floats = 3 * (size_t)c->image_size * c->image_size;
    int chunk = bmc__vit_chunk(ctx), threads = bmc__pool_threads(ctx->pool);
    for (int i = 0; i < n; i += chunk) {
        int m = n - i < chunk ? n - i : chunk;
        float *scratch = bmc__ctx_scratch(ctx, bmc__vit_scratch(c, m, threads));
        if (!scratch) return BMC_E_NOMEM;
        bmc__vit_run(ctx, chw + (size_t)i * in_floats, m, scratch, out + (size_t)i * c->embed_dim);
    }
    return BMC_OK;
}
