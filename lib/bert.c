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
    p.att = at;   at += align16(bmc__attention_scratch((int)L, (int)(W / cfg->text_heads)));
    p.cls = at;   at += align16(N * W);
    p.q = at;     at += align16(N * W);
    p.proj = at;  at += align16(N * H);
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

/* Attention output, residual, LayerNorm, FFN, residual, LayerNorm over M rows:
 * ctx[M, W] (attention context), res[M, W] (layer input, overwritten: res + attention output)
 * -> y[M, W]. a[M, W] and inter[M, F] are scratch; y may alias res. */
static void bert_layer_tail(const bmc_model *model, const bmc__bert_layer *L, bmc__pool *pool,
                            int M, const float *ctx, float *res, float *a, float *inter,
                            float *y) {
    const bmc__config *c = &model->config;
    int W = (int)c->text_width, F = (int)c->text_ffn;
    float eps = (float)c->text_ln_eps;
    bmc__gemm(pool, ctx, M, W, L->attn_out_w, 0, W, L->attn_out_b, res, W, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, res, W, a, W, M, W, L->attn_ln_w, L->attn_ln_b, eps);
    bmc__gemm(pool, a, M, W, L->ffn_in_w, 0, F, L->ffn_in_b, inter, F, BMC__GEMM_GELU);
    bmc__gemm(pool, inter, M, F, L->ffn_out_w, 0, W, L->ffn_out_b, a, W, BMC__GEMM_ACC);
    bmc__layernorm_rows(pool, a, W, y, W, M, W, L->out_ln_w, L->out_ln_b, eps);
}

static bmc__attn bert_attn(const bmc__config *c, float *scratch, const bmc__bert_plan *plan,
                           const int *lens, int n) {
    int W = (int)c->text_width, heads = (int)c->text_heads;
    float *qkv = scratch + plan->qkv;
    bmc__attn a;
    memset(&a, 0, sizeof a);
    a.pool = plan->pool;
    a.q = qkv, a.k = qkv + W, a.v = qkv + 2 * W;
    a.ldq = a.ldk = a.ldv = 3 * W;
    a.out = scratch + plan->ctx, a.ldo = W;
    a.n_seq = n, a.lens = lens;
    a.W = W, a.heads = heads;
    a.scale = 1.0f / sqrtf((float)(W / heads));
    a.scratch = scratch + plan->att;
    return a;
}

void bmc__bert_run_layer(const bmc_model *model, int layer, float *h, const int *lens, int n,
                         float *scratch, const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width;
    float *qkv = scratch + plan->qkv;
    bmc__pool *pool = plan->pool;
    int rows = 0;
    for (int i = 0; i < n; i++) rows += lens[i];

    /* Q, K, V: three GEMMs over all packed rows into one [rows, 3W] matrix */
    bmc__gemm(pool, h, rows, W, L->q_w, 0, W, L->q_b, qkv, 3 * W, 0);
    bmc__gemm(pool, h, rows, W, L->k_w, 0, W, L->k_b, qkv + W, 3 * W, 0);
    bmc__gemm(pool, h, rows, W, L->v_w, 0, W, L->v_b, qkv + 2 * W, 3 * W, 0);
    bmc__attn a = bert_attn(c, scratch, plan, lens, n); /* each text attends within itself */
    bmc__attention(&a);
    bert_layer_tail(model, L, pool, rows, scratch + plan->ctx, h, scratch + plan->a,
                    scratch + plan->inter, h);
}

void bmc__bert_run_layer_cls(const bmc_model *model, int layer, const float *h,
                             const int *lens, int n, float *cls_out, float *scratch,
                             const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_layer *L = &model->bert.layers[layer];
    int W = (int)c->text_width;
    float *qkv = scratch + plan->qkv;
    float *g = scratch + plan->cls, *q = scratch + plan->q;
    bmc__pool *pool = plan->pool;
    int rows = 0;
    for (int i = 0; i < n; i++) rows += lens[i];

    /* gather the [CLS] rows: the queries and the residual of the last layer */
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(g + (size_t)i * W, h + at * W, sizeof(float) * (size_t)W);
        at += (size_t)lens[i];
    }
    bmc__gemm(pool, g, n, W, L->q_w, 0, W, L->q_b, q, W, 0);
    bmc__gemm(pool, h, rows, W, L->k_w, 0, W, L->k_b, qkv + W, 3 * W, 0);
    bmc__gemm(pool, h, rows, W, L->v_w, 0, W, L->v_b, qkv + 2 * W, 3 * W, 0);

    /* one query per text: scores over the text's keys, softmax, weighted values */
    bmc__attn a = bert_attn(c, scratch, plan, lens, n);
    a.q = q, a.ldq = W;
    a.cls_only = 1;
    bmc__attention(&a);
    /* g is the residual; the tail writes its output over it */
    bert_layer_tail(model, L, pool, n, scratch + plan->ctx, g, scratch + plan->a,
                    scratch + plan->inter, g);
    if (cls_out != g) memcpy(cls_out, g, sizeof(float) * (size_t)n * W);
}

void bmc__bert_project(const bmc_model *model, const float *cls, int n, float *out, float *scratch,
                       const bmc__bert_plan *plan) {
    const bmc__config *c = &model->config;
    const bmc__bert_weights *w = &model->bert;
    int W = (int)c->text_width, E = (int)c->embed_dim, Hd = (int)c->text_proj_hidden;
    if (c->text_proj_type == BMC__PROJ_MLP) {
        float *t = scratch + plan->proj;
        bmc__gemm(plan->pool, cls, n, W, w->proj0_w, 0, Hd, NULL, t, Hd, BMC__GEMM_GELU);
        bmc__gemm(plan->pool, t, n, Hd, w->proj2_w, 0, E, NULL, out, E, 0);
    } else {
        bmc__gemm(plan->pool, cls, n, W, w->proj0_w, 0, E, NULL, out, E, 0);
    }
}

/* One chunk of texts whose rows fit the planned scratch. */
static void bert_encode_chunk(const bmc_model *model, const int *ids, const int *lens, int n,
                              int rows, int max_len, float *scratch, float *out,
                              bmc__pool *pool) {
    const bmc__config *c = &model->config;
    bmc__bert_plan plan = bmc__bert_plan_for(c, rows, n, max_len);
    plan.pool = pool;
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

/* Rows a group needs before a chunk is split into groups: below it, each thread reading every
 * weight for its own few rows costs more than the threads sharing each product. Medians of
 * alternating runs at 2 threads, ms per text, shared against grouped (28 Nov): 4 x 24 tokens
 * (48 rows a group) 11.90 / 12.02, 8 x 24 (96) 10.83 / 10.48, 16 x 24 (192) 10.91 / 10.76. */
#define BERT_GROUP_MIN_ROWS 96

/* A chunk of texts runs as one group per thread, each on its own thread from start to end (as
 * bmc__vit_run does for images: no thread waits for another between the ~80 steps of a pass),
 * when every group gets at least two texts and BERT_GROUP_MIN_ROWS rows; smaller batches share
 * each product among the threads, which then read the weights once. */
static int bert_groups(int n, int rows, int threads) {
    if (threads <= 1 || n < 2 * threads || rows < BERT_GROUP_MIN_ROWS * threads) return 1;
    return threads;
}

/* Cut n texts (n >= g) into g contiguous groups of about rows / g rows, each at least one
 * text: first[0..g]. (The grouping cannot change a result: gemm.c sums in the same order for
 * any number of rows.) */
static void bert_partition(const int *lens, int n, int rows, int g, int *first) {
    int t = 0, acc = 0;
    for (int h = 0; h < g; h++) {
        first[h] = t;
        long target = (long)rows * (h + 1) / g;
        do acc += lens[t++];
        while (t < n - (g - 1 - h) && acc + lens[t] / 2 <= target);
    }
    first[g] = n;
}

size_t bmc__bert_scratch(const bmc__config *cfg, int rows, int n, int max_len, int threads) {
    int g = bert_groups(n, rows, threads);
    /* the groups' plans add up to the whole chunk's, but for the attention scratch, which each
     * has, and the rounding of each part to 16 floats */
    return bmc__bert_plan_for(cfg, rows, n, max_len).total +
           (size_t)(g - 1) * bmc__bert_plan_for(cfg, 0, 0, max_len).total + (size_t)g * 9 * 16;
}

typedef struct bert_group_job {
    const bmc_ctx *ctx;
    const int *ids, *lens; /* the chunk's */
    int first[BMC__POOL_MAX + 1]; /* group g: texts first[g] .. first[g+1]-1 */
    int rows[BMC__POOL_MAX];      /* ... their rows */
    size_t at[BMC__POOL_MAX];     /* ... the offset of their first id */
    size_t off[BMC__POOL_MAX];    /* ... the offset of their scratch (each planned for itself) */
    int max_len;
    float *scratch;
    float *out;            /* [n, E] */
} bert_group_job;

static void bert_group_task(void *arg, int g, int thread) {
    const bert_group_job *j = arg;
    const bmc__config *c = &j->ctx->model->config;
    int n = j->first[g + 1] - j->first[g];
    bert_encode_chunk(j->ctx->model, j->ids + j->at[g], j->lens + j->first[g], n, j->rows[g],
                      j->max_len, j->scratch + j->off[g],
                      j->out + (size_t)j->first[g] * c->embed_dim, j->ctx->solo[thread]);
}

static void bert_run_chunk(const bmc_ctx *ctx, const int *ids, const int *lens, int n, int rows,
                           int max_len, float *scratch, float *out) {
    bert_group_job j;
    int g = ctx->solo ? bert_groups(n, rows, bmc__pool_threads(ctx->pool)) : 1;
    if (g == 1) {
        bert_encode_chunk(ctx->model, ids, lens, n, rows, max_len, scratch, out, ctx->pool);
        return;
    }
    bert_partition(lens, n, rows, g, j.first);
    j.ctx = ctx, j.ids = ids, j.lens = lens, j.max_len = max_len, j.scratch = scratch, j.out = out;
    size_t at = 0, off = 0;
    for (int h = 0; h < g; h++) {
        int group_rows = 0;
        for (int i = j.first[h]; i < j.first[h + 1]; i++) group_rows += lens[i];
        j.rows[h] = group_rows, j.at[h] = at, j.off[h] = off;
        at += (size_t)group_rows;
        /* the groups lie one after another in the arena, each planned for its own texts */
        off += bmc__bert_plan_for(&ctx->model->config, group_rows, j.first[h + 1] - j.first[h],
                                  max_len)
                   .total;
    }
    bmc__pool_run(ctx->pool, bert_group_task, &j, g);
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
    float *scratch = bmc__ctx_scratch(
        ctx, bmc__bert_scratch(c, cap_rows, cap_texts, ctx_len, bmc__pool_threads(ctx->pool)));
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
        bert_run_chunk(ctx, ids + at, lens + i, k, rows, max_len, scratch, out + (size_t)i * E);
        at += (size_t)rows;
        i += k;
    }
    return BMC_OK;
}
