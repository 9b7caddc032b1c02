/* bert.c - the BERT text tower (PubMedBERT, post-norm) and its projection to the joint space.
 * Spec §3: embeddings -> LayerNorm -> L x [self-attention + residual + LN, FFN(GELU) + residual
 * + LN] -> last hidden state of [CLS] -> proj0 -> GELU -> proj2. */
#include "bert.h"

#include <math.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "ops.h"

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

bmc__bert_plan bmc__bert_plan_for(const bmc__config *cfg, int rows, int n, int max_len) {
    size_t W = cfg->text_width, F = cfg->text_ffn, E = cfg->embed_dim;
    size_t H = cfg->text_proj_hidden > E ? cfg->text_proj_hidden : E;
    size_t R = (size_t)rows, N = (size_t)n, L = (size_t)max_len;
    bmc__bert_plan p;
    size_t at = 0;
    p.h = at;     at += align16(R * W);
    p.qkv = at;   at += align16(R * 3 * W);
    p.ctx = at;   at += align16(R * W);
    p.a = at;     at += align16(R * W);
    p.inter = at; at += align16(R * F);
    p.att = at;   at += align16(L * L);
    p.cls = at;   at += align16(N * W);
    p.q = at;     at += align16(N * W);
    p.proj = at;  at += align16(N * H);
    p.total = at;
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

/* Attention output, residual, LayerNorm, FFN, residual, LayerNorm over M rows:
 * ctx[M, W] (attention context), res[M, W] (layer input) -> y[M, W]. a[M, W] and inter[M, F]
 * are scratch; y may alias res. */
static void bert_layer_tail(const bmc_model *model, const bmc__bert_layer *L, int M,
                            const float *ctx, const float *res, float *a, float *inter, float *y) {
    const bmc__config *c = &model->config;
    int W = (int)c->text_width, F = (int)c->text_ffn;
    float eps = (float)c->text_ln_eps;
    bmc__linear(ctx, M, W, W, L->attn_out_w, L->attn_out_b, W, a, W);
    bmc__add(a, res, (size_t)M * W);
    bmc__layernorm(a, a, M, W, L->attn_ln_w, L->attn_ln_b, eps);
    bmc__linear(a, M, W, W, L->ffn_in_w, L->ffn_in_b, F, inter, F);
    bmc__gelu(inter, (size_t)M * F);
    bmc__linear(inter, M, F, F, L->ffn_out_w, L->ffn_out_b, W, y, W);
    bmc__add(y, a, (size_t)M * W);
    bmc__layernorm(y, y, M, W, L->out_ln_w, L->out_ln_b, eps);
}

void bmc__bert_run_layer(const bmc_model *model, int layer, float *h, const int *lens, int n,
                         float *scratch, const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width, heads = (int)c->text_heads;
    float scale = 1.0f / sqrtf((float)(W / heads));
    float *qkv = scratch + plan->qkv, *ctx = scratch + plan->ctx;
    int rows = 0;
    for (int i = 0; i < n; i++) rows += lens[i];

    /* Q, K, V: three GEMMs over all packed rows into one [rows, 3W] matrix */
    bmc__linear(h, rows, W, W, L->q_w, L->q_b, W, qkv, 3 * W);
    bmc__linear(h, rows, W, W, L->k_w, L->k_b, W, qkv + W, 3 * W);
    bmc__linear(h, rows, W, W, L->v_w, L->v_b, W, qkv + 2 * W, 3 * W);
    size_t at = 0;
    for (int i = 0; i < n; i++) { /* each text attends only within itself */
        bmc__attention(qkv + at * 3 * W, lens[i], 3 * W, W, heads, scale, ctx + at * W, W,
                       scratch + plan->att);
        at += (size_t)lens[i];
    }
    bert_layer_tail(model, L, rows, ctx, h, scratch + plan->a, scratch + plan->inter, h);
}

void bmc__bert_run_layer_cls(const bmc_model *model, int layer, const float *h,
                             const int *lens, int n, float *cls_out, float *scratch,
                             const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width, heads = (int)c->text_heads, D = W / heads;
    float scale = 1.0f / sqrtf((float)D);
    float *qkv = scratch + plan->qkv, *ctx = scratch + plan->ctx;
    float *g = scratch + plan->cls, *q = scratch + plan->q, *p = scratch + plan->att;
    int rows = 0;
    for (int i = 0; i < n; i++) rows += lens[i];

    /* gather the [CLS] rows: the queries and the residual of the last layer */
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(g + (size_t)i * W, h + at * W, sizeof(float) * (size_t)W);
        at += (size_t)lens[i];
    }
    bmc__linear(g, n, W, W, L->q_w, L->q_b, W, q, W);
    bmc__linear(h, rows, W, W, L->k_w, L->k_b, W, qkv + W, 3 * W);
    bmc__linear(h, rows, W, W, L->v_w, L->v_b, W, qkv + 2 * W, 3 * W);

    /* one query per text and head: scores over the text's keys, softmax, weighted values */
    at = 0;
    for (int i = 0; i < n; i++) {
        int len = lens[i];
        const float *K = qkv + at * 3 * W + W, *V = qkv + at * 3 * W + 2 * W;
        for (int hd = 0; hd < heads; hd++) {
            const float *qh = q + (size_t)i * W + (size_t)hd * D;
            for (int j = 0; j < len; j++) {
                const float *kj = K + (size_t)j * 3 * W + (size_t)hd * D;
                float s = 0.0f;
                for (int d = 0; d < D; d++) s += qh[d] * kj[d];
                p[j] = s * scale;
            }
            bmc__softmax_rows(p, 1, len);
            float *o = ctx + (size_t)i * W + (size_t)hd * D;
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            for (int j = 0; j < len; j++) {
                const float *vj = V + (size_t)j * 3 * W + (size_t)hd * D;
                float pj = p[j];
                for (int d = 0; d < D; d++) o[d] += pj * vj[d];
            }
        }
        at += (size_t)len;
    }
    /* g is the residual; the tail may write its output over it */
    bert_layer_tail(model, L, n, ctx, g, scratch + plan->a, scratch + plan->inter, g);
    if (cls_out != g) memcpy(cls_out, g, sizeof(float) * (size_t)n * W);
}

void bmc__bert_project(const bmc_model *model, const float *cls, int n, float *out, float *scratch,
                       const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_weights *w = &model->bert;
    int W = (int)c->text_width, E = (int)c->embed_dim, Hd = (int)c->text_proj_hidden;
    if (c->text_proj_type == BMC__PROJ_MLP) {
        float *t = scratch + plan->proj;
        bmc__linear(cls, n, W, W, w->proj0_w, NULL, Hd, t, Hd);
        bmc__gelu(t, (size_t)n * Hd);
        bmc__linear(t, n, Hd, Hd, w->proj2_w, NULL, E, out, E);
    } else {
        bmc__linear(cls, n, W, W, w->proj0_w, NULL, E, out, E);
    }
}

/* One chunk of texts whose rows fit the planned scratch. */
static void bert_encode_chunk(const bmc_model *model, const int *ids, const int *lens, int n,
                              int rows, int max_len, float *scratch, float *out) {
    const bmc__config *c = &model->config;
    bmc__bert_plan plan = bmc__bert_plan_for(c, rows, n, max_len);
    int nl = (int)c->text_layers, W = (int)c->text_width;
    float *h = scratch + plan.h, *cls = scratch + plan.cls;
    bmc__bert_embed(model, ids, lens, n, h);
    for (int l = 0; l + 1 < nl; l++) bmc__bert_run_layer(model, l, h, lens, n, scratch, &plan);
    if (nl > 0) {
        bmc__bert_run_layer_cls(model, nl - 1, h, lens, n, cls, scratch, &plan);
    } else {
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            memcpy(cls + (size_t)i * W, h + at * W, sizeof(float) * (size_t)W);
            at += (size_t)lens[i];
        }
    }
    bmc__bert_project(model, cls, n, out, scratch, &plan);
}

bmc_status bmc__bert_encode(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out) {
    const bmc_model *model = ctx->model;
    const bmc__config *c = &model->config;
    size_t total = 0;
    bmc_status st = bmc__bert_check(model, ids, lens, n, &total);
    if (st != BMC_OK) return st;
    if (n == 0) return BMC_OK;

    /* Texts are packed greedily into chunks of at most max_batch * context_length rows, so the
     * scratch stays at the size the context was made for whatever n is. */
    int ctx_len = (int)c->context_length;
    size_t max_batch = ctx->params.max_batch > 0 ? (size_t)ctx->params.max_batch : 1;
    size_t cap = max_batch * (size_t)ctx_len;
    if (cap > ((size_t)1 << 24)) cap = (size_t)1 << 24; /* a huge max_batch must not overflow */
    if (cap < (size_t)ctx_len) cap = (size_t)ctx_len;
    if (cap > total) cap = total;
    int cap_rows = (int)cap;
    int cap_texts = n < cap_rows ? n : cap_rows;
    bmc__bert_plan worst = bmc__bert_plan_for(c, cap_rows, cap_texts, ctx_len);
    float *scratch = bmc__ctx_scratch(ctx, worst.total);
    if (!scratch) return BMC_E_NOMEM;

    int E = (int)c->embed_dim;
    size_t at = 0;
    for (int i = 0; i < n;) {
        int k = 0, rows = 0, max_len = 0;
        while (i + k < n && rows + lens[i + k] <= cap_rows) {
            rows += lens[i + k];
            if (lens[i + k] > max_len) max_len = lens[i + k];
            k++;
        }
        bert_encode_chunk(model, ids + at, lens + i, k, rows, max_len, scratch,
                          out + (size_t)i * E);
        at += (size_t)rows;
        i += k;
    }
    return BMC_OK;
}
