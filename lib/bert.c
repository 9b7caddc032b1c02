/* bert.c - the BERT text tower (PubMedBERT, post-norm) and its projection to the joint space.
 * Spec §3: embeddings -> LayerNorm -> L x [self-attention + residual + LN, FFN(GELU) + residual
 * + LN] -> last hidden state of [CLS] -> proj0 -> GELU -> proj2. */
#include "bert.h"

#include <math.h>
#include <string.h>

#include "error.h"
#include "ops.h"

bmc__bert_plan bmc__bert_plan_for(const bmc__config *cfg, int rows, int n, int max_len) {
    size_t W = cfg->text_width, F = cfg->text_ffn, E = cfg->embed_dim;
    size_t H = cfg->text_proj_hidden > E ? cfg->text_proj_hidden : E;
    size_t R = (size_t)rows, N = (size_t)n, L = (size_t)max_len;
    bmc__bert_plan p;
    size_t at = 0;
    p.h = at;     at += bmc__align16(R * W);
    p.qkv = at;   at += bmc__align16(R * 3 * W);
    p.ctx = at;   at += bmc__align16(R * W);
    p.a = at;     at += bmc__align16(R * W);
    p.inter = at; at += bmc__align16(R * F);
    p.thread_floats = bmc__align16(bmc__attention_scratch((int)L, (int)(W / cfg->text_heads)));
    p.att = at;   at += p.thread_floats;
    p.cls = at;   at += bmc__align16(N * W);
    p.q = at;     at += bmc__align16(N * W);
    p.proj = at;  at += bmc__align16(N * H);
    p.total = at;
    p.pool = NULL;
    return p;
}

bmc_status bmc__bert_check(const bmc_model *model, const int *ids, const int *lens, int n,
                           size_t *rows) {
    const bmc__config *c = &model->config;
    int max_len = (int)c->context_length;
    if ((int)c->max_positions < max_len) max_len = (int)c->max_positions;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > max_len)
            return bmc__fail(BMC_E_INVALID_ARG, "encode_ids: text %d has %d ids; want 1..%d", i,
                             lens[i], max_len);
        for (int j = 0; j < lens[i]; j++) {
            int id = ids[at + (size_t)j];
            if (id < 0 || (uint32_t)id >= c->vocab_rows)
                return bmc__fail(BMC_E_INVALID_ARG,
                                 "encode_ids: text %d position %d: id %d outside [0, %u)", i, j, id,
                                 c->vocab_rows);
        }
        at += (size_t)lens[i];
    }
    *rows = at;
    return BMC_OK;
}

void bmc__bert_embed(const bmc_model *model, const int *ids, const int *lens, int n, float *h) {
    const bmc__config *c = &model->config;
    const bmc__bert_weights *w = &model->bert;
    int W = (int)c->text_width;
    const float *type0 = w->type_emb; /* token_type_ids are all 0 */
    size_t r = 0;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < lens[i]; p++, r++) {
            const float *we = w->word_emb + (size_t)ids[r] * W;
            const float *pe = w->pos_emb + (size_t)p * W;
            float *y = h + r * W;
            /* HF order: (word + type) + position */
            for (int d = 0; d < W; d++) y[d] = (we[d] + type0[d]) + pe[d];
        }
    }
    bmc__layernorm(h, h, (int)r, W, w->emb_ln_w, w->emb_ln_b, (float)c->text_ln_eps);
}

/* The rows of h at which each of the n texts starts: the [CLS] rows, copied into cls[n, W]. */
static void gather_cls(const float *h, const int *lens, int n, int W, float *cls) {
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(cls + (size_t)i * W, h + at * W, sizeof(float) * (size_t)W);
        at += (size_t)lens[i];
    }
}

/* The layer after attention, over the M rows of res (its input, which receives res + attention
 * output): y = LN(a + FFN(a)) with a = LN(res + ctx Wo^T + bo). a and inter are scratch; y may
 * be res. */
static void bert_layer_tail(const bmc_model *model, const bmc__bert_layer *L, bmc__pool *pool,
                            bmc__mat ctx, bmc__mat res, bmc__mat a, bmc__mat inter, bmc__mat y) {
    float eps = (float)model->config.text_ln_eps;
    bmc__gemm(pool, res, ctx, L->attn_out_w, L->attn_out_b, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, a, res, L->attn_ln_w, L->attn_ln_b, eps);
    bmc__gemm(pool, inter, a, L->ffn_in_w, L->ffn_in_b, BMC__GEMM_GELU);
    bmc__gemm(pool, a, inter, L->ffn_out_w, L->ffn_out_b, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, y, a, L->out_ln_w, L->out_ln_b, eps);
}

/* Attention within each text: q, k, v side by side in the rows of qkv. */
static bmc__attn bert_attn(const bmc__config *c, float *scratch, const bmc__bert_plan *plan,
                           const int *lens, int n, bmc__mat qkv, bmc__mat out) {
    int W = (int)c->text_width, heads = (int)c->text_heads;
    bmc__attn a = bmc__attn_qkv(plan->pool, qkv, out, heads, 1.0f / sqrtf((float)(W / heads)),
                                scratch + plan->att);
    a.n_seq = n, a.lens = lens;
    return a;
}

/* Keys and values of every row of x, into their columns of qkv. */
static void bert_keys_values(bmc__pool *pool, const bmc__bert_layer *L, bmc__mat x, bmc__mat qkv) {
    int W = x.cols;
    bmc__gemm(pool, bmc__mat_cols(qkv, W, W), x, L->k_w, L->k_b, 0);
    bmc__gemm(pool, bmc__mat_cols(qkv, 2 * W, W), x, L->v_w, L->v_b, 0);
}

static int sum_lens(const int *lens, int n) {
    int rows = 0;
    for (int i = 0; i < n; i++) rows += lens[i];
    return rows;
}

void bmc__bert_run_layer(const bmc_model *model, int layer, float *h, const int *lens, int n,
                         float *scratch, const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width, F = (int)c->text_ffn, rows = sum_lens(lens, n);
    bmc__pool *pool = plan->pool;
    bmc__mat x = bmc__mat_of(h, rows, W, W);
    bmc__mat qkv = bmc__mat_of(scratch + plan->qkv, rows, 3 * W, 3 * W);
    bmc__mat ctx = bmc__mat_of(scratch + plan->ctx, rows, W, W);

    /* Q, K, V: three products over all packed rows into one [rows, 3W] matrix */
    bmc__gemm(pool, bmc__mat_cols(qkv, 0, W), x, L->q_w, L->q_b, 0);
    bert_keys_values(pool, L, x, qkv);
    bmc__attn a = bert_attn(c, scratch, plan, lens, n, qkv, ctx); /* each text within itself */
    bmc__attention(&a);
    bert_layer_tail(model, L, pool, ctx, x, bmc__mat_of(scratch + plan->a, rows, W, W),
                    bmc__mat_of(scratch + plan->inter, rows, F, F), x);
}

void bmc__bert_run_layer_cls(const bmc_model *model, int layer, const float *h,
                             const int *lens, int n, float *cls_out, float *scratch,
                             const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width, F = (int)c->text_ffn;
    bmc__pool *pool = plan->pool;
    /* the [CLS] rows: the residual, their queries and their attention context */
    bmc__mat g = bmc__mat_of(scratch + plan->cls, n, W, W);
    bmc__mat q = bmc__mat_of(scratch + plan->q, n, W, W);
    bmc__mat ctx = bmc__mat_of(scratch + plan->ctx, n, W, W);
    bmc__mat qkv = bmc__mat_of(scratch + plan->qkv, sum_lens(lens, n), 3 * W, 3 * W);

    gather_cls(h, lens, n, W, g.p);
    bmc__gemm(pool, q, g, L->q_w, L->q_b, 0);
    bert_keys_values(pool, L, bmc__mat_of(h, qkv.rows, W, W), qkv);

    /* one query per text: scores over the text's keys, softmax, weighted values */
    bmc__attn a = bert_attn(c, scratch, plan, lens, n, qkv, ctx);
    a.q = q;
    a.cls_only = 1;
    bmc__attention(&a);
    /* the tail writes its output over the residual g */
    bert_layer_tail(model, L, pool, ctx, g, bmc__mat_of(scratch + plan->a, n, W, W),
                    bmc__mat_of(scratch + plan->inter, n, F, F), g);
    if (cls_out != g.p) memcpy(cls_out, g.p, sizeof(float) * (size_t)n * W);
}

void bmc__bert_project(const bmc_model *model, const float *cls, int n, float *out, float *scratch,
                       const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_weights *w = &model->bert;
    int W = (int)c->text_width, E = (int)c->embed_dim, Hd = (int)c->text_proj_hidden;
    bmc__mat x = bmc__mat_of(cls, n, W, W), y = bmc__mat_of(out, n, E, E);
    if (c->text_proj_type == BMC__PROJ_MLP) {
        bmc__mat t = bmc__mat_of(scratch + plan->proj, n, Hd, Hd);
        bmc__gemm(plan->pool, t, x, w->proj0_w, NULL, BMC__GEMM_GELU);
        bmc__gemm(plan->pool, y, t, w->proj2_w, NULL, 0);
    } else {
        bmc__gemm(plan->pool, y, x, w->proj0_w, NULL, 0);
    }
}

void bmc__bert_forward(const bmc_model *model, const int *ids, const int *lens, int n,
                       int max_len, float *scratch, float *out, bmc__pool *pool) {
    const bmc__config *c = &model->config;
    bmc__bert_plan plan = bmc__bert_plan_for(c, sum_lens(lens, n), n, max_len);
    plan.pool = pool;
    int nl = (int)c->text_layers;
    float *h = scratch + plan.h, *cls = scratch + plan.cls;
    bmc__bert_embed(model, ids, lens, n, h);
    for (int l = 0; l + 1 < nl; l++) bmc__bert_run_layer(model, l, h, lens, n, scratch, &plan);
    if (nl > 0) bmc__bert_run_layer_cls(model, nl - 1, h, lens, n, cls, scratch, &plan);
    else gather_cls(h, lens, n, (int)c->text_width, cls);
    bmc__bert_project(model, cls, n, out, scratch, &plan);
}
