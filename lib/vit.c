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

#include "ops.h"
#include "vit.h"

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
    p.x = off, off += bmc__align16(rows * W);
    p.xn = off, off += bmc__align16(rows * W);
    p.att = off, off += bmc__align16(rows * W);
    p.big = off, off += bmc__align16(rows * wide);
    p.thread_floats = bmc__align16(bmc__attention_scratch(p.T, (int)(W / cfg->vision_heads)));
    p.scores = off, off += p.thread_floats;
    p.total = off;
    p.pool = NULL;
    return p;
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
    bmc__gemm(plan->pool, bmc__mat_of(tok, n * G * G, W, W), bmc__mat_of(cols, n * G * G, K, K),
              w->patch_w, w->patch_b, 0);

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

/* Attention within each image of the plan: q, k, v side by side in the rows of qkv. */
static bmc__attn vit_attn(const bmc__config *c, float *scratch, const bmc__vit_plan *plan,
                          bmc__mat qkv, bmc__mat out) {
    int W = (int)c->vision_width, H = (int)c->vision_heads;
    float scale = (float)(1.0 / sqrt((double)(W / H))); /* head_dim^-0.5, 0.125 at 64 */
    bmc__attn a = bmc__attn_qkv(plan->pool, qkv, out, H, scale, scratch + plan->scores);
    a.n_seq = plan->n, a.len = plan->T;
    return a;
}

void bmc__vit_run_block(const bmc_model *model, int layer, float *scratch,
                        const bmc__vit_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__vit_block *b = &model->vit.blocks[layer];
    int W = (int)c->vision_width, F = (int)c->vision_mlp, rows = plan->n * plan->T;
    float eps = (float)c->vision_ln_eps;
    bmc__pool *pool = plan->pool;
    bmc__mat x = bmc__mat_of(scratch + plan->x, rows, W, W);
    bmc__mat xn = bmc__mat_of(scratch + plan->xn, rows, W, W);
    bmc__mat att = bmc__mat_of(scratch + plan->att, rows, W, W);
    bmc__mat qkv = bmc__mat_of(scratch + plan->big, rows, 3 * W, 3 * W);
    bmc__mat hidden = bmc__mat_of(scratch + plan->big, rows, F, F);

    /* x = x + proj(attention(LN1(x))) */
    bmc__layernorm_rows(pool, xn, x, b->norm1_w, b->norm1_b, eps);
    bmc__gemm(pool, qkv, xn, b->qkv_w, b->qkv_b, 0);
    bmc__attn a = vit_attn(c, scratch, plan, qkv, att);
    bmc__attention(&a);
    bmc__gemm(pool, x, att, b->proj_w, b->proj_b, BMC__GEMM_ACC);

    /* x = x + fc2(GELU(fc1(LN2(x)))) */
    bmc__layernorm_rows(pool, xn, x, b->norm2_w, b->norm2_b, eps);
    bmc__gemm(pool, hidden, xn, b->fc1_w, b->fc1_b, BMC__GEMM_GELU);
    bmc__gemm(pool, x, hidden, b->fc2_w, b->fc2_b, BMC__GEMM_ACC);
}

void bmc__vit_run_block_cls(const bmc_model *model, int layer, float *scratch,
                            const bmc__vit_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__vit_block *b = &model->vit.blocks[layer];
    int W = (int)c->vision_width, F = (int)c->vision_mlp, T = plan->T, n = plan->n;
    int rows = n * T;
    float eps = (float)c->vision_ln_eps;
    bmc__pool *pool = plan->pool;
    float *big = scratch + plan->big;
    bmc__mat x = bmc__mat_of(scratch + plan->x, rows, W, W);
    bmc__mat xn = bmc__mat_of(scratch + plan->xn, rows, W, W);
    bmc__mat qkv = bmc__mat_of(big, rows, 3 * W, 3 * W);
    /* the class-token rows: row i*T of each image */
    bmc__mat x_cls = bmc__mat_of(x.p, n, W, T * W), xn_cls = bmc__mat_of(xn.p, n, W, T * W);
    bmc__mat q_cls = bmc__mat_of(big, n, W, T * 3 * W); /* their queries, in their Q columns */
    bmc__mat att = bmc__mat_of(scratch + plan->att, n, W, W);
    bmc__mat hidden = bmc__mat_of(big, n, F, F);
    bmc__mat xn1 = bmc__mat_of(xn.p, n, W, W);

    /* keys and values of every row; the queries of the cls rows */
    bmc__layernorm_rows(pool, xn, x, b->norm1_w, b->norm1_b, eps);
    bmc__gemm(pool, bmc__mat_cols(qkv, W, 2 * W), xn, bmc__panels_rows(b->qkv_w, W, 2 * W),
              b->qkv_b + W, 0);
    bmc__gemm(pool, q_cls, xn_cls, bmc__panels_rows(b->qkv_w, 0, W), b->qkv_b, 0);
    bmc__attn a = vit_attn(c, scratch, plan, qkv, att);
    a.q = q_cls;
    a.cls_only = 1;
    bmc__attention(&a);
    /* x_cls += proj(att); x_cls += fc2(GELU(fc1(LN2(x_cls)))) */
    bmc__gemm(pool, x_cls, att, b->proj_w, b->proj_b, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, xn1, x_cls, b->norm2_w, b->norm2_b, eps);
    bmc__gemm(pool, hidden, xn1, b->fc1_w, b->fc1_b, BMC__GEMM_GELU);
    bmc__gemm(pool, x_cls, hidden, b->fc2_w, b->fc2_b, BMC__GEMM_ACC);
}

void bmc__vit_pool_project(const bmc_model *model, float *scratch, const bmc__vit_plan *plan,
                           float *out) {
    const bmc__config *c = &model->config;
    int W = (int)c->vision_width, E = (int)c->embed_dim, n = plan->n;
    bmc__mat pooled = bmc__mat_of(scratch + plan->att, n, W, W);
    /* LayerNorm is per row, so normalising only the cls rows equals taking them after the
     * full-sequence norm (timm: norm(x) then x[:, 0]). */
    bmc__layernorm_rows(NULL, pooled, bmc__mat_of(scratch + plan->x, n, W, plan->T * W),
                        model->vit.norm_w, model->vit.norm_b, (float)c->vision_ln_eps);
    bmc__gemm(plan->pool, bmc__mat_of(out, n, E, E), pooled, model->vit.head_w, NULL, 0);
}

/* One image a pass: its activations stay in cache, where a batch's would stream from memory at
 * every product, and the weights are read once per image either way (docs/PERF.md). The
 * results are the same either way: a row's products and an image's attention do not depend on
 * the other rows. */
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
