/* bert.h - the BERT text tower: its scratch plan, its stages (embeddings, one layer, the last
 * layer for the [CLS] rows only, pooling + projection; tests call them one by one) and the
 * forward pass over a batch of texts on the threads it is given. How a batch is cut into chunks
 * and spread over threads is the scheduler's (run.h).
 *
 * Texts are PACKED: the ids of n texts lie one after another (text i has lens[i] ids), and every
 * activation is a [rows, W] matrix with rows = sum(lens), so each weight is one GEMM for the whole
 * batch. Attention stays inside each text. Only real tokens are run: the padded PyTorch
 * computation gives pad keys exactly zero weight, so this is exact up to summation order. */
#ifndef BMC_BERT_H
#define BMC_BERT_H

#include <stddef.h>

#include "model.h"
#include "pool.h"

/* Where each part of the scratch arena lies for a chunk of `rows` packed rows in `n` texts whose
 * longest has `max_len` ids. All offsets are in floats and 16-float (64-byte) aligned. */
typedef struct bmc__bert_plan {
    size_t h;       /* [rows, W]   hidden states, updated in place layer by layer */
    size_t qkv;     /* [rows, 3W]  Q | K | V of every row                          */
    size_t ctx;     /* [rows, W]   attention context                               */
    size_t a;       /* [rows, W]   after the attention block's LayerNorm           */
    size_t inter;   /* [rows, F]   FFN hidden                                      */
    size_t att;     /* attention scratch of one thread (used when pool is NULL)    */
    size_t thread_floats; /* ... its size: what each thread of a pool needs        */
    size_t cls;     /* [n, W]      [CLS] rows (gathered, then final)               */
    size_t q;       /* [n, W]      queries of the [CLS] rows in the last layer     */
    size_t proj;    /* [n, max(H, E)] projection hidden                            */
    size_t total;   /* floats in all                                               */
    bmc__pool *pool; /* the threads the stages run on; NULL: the caller alone      */
} bmc__bert_plan;

/* The plan on the caller's thread alone (set .pool to spread the work). */
bmc__bert_plan bmc__bert_plan_for(const bmc__config *cfg, int rows, int n, int max_len);

/* Check that n texts of lens[i] ids are valid input (1 <= lens[i] <= context length, ids inside
 * the embedding table); BMC_E_INVALID_ARG naming text/position/id otherwise. *rows receives the
 * total number of ids. */
bmc_status bmc__bert_check(const bmc_model *model, const int *ids, const int *lens, int n,
                           size_t *rows);

/* h[rows, W] = LayerNorm(word_emb[id] + type_emb[0] + pos_emb[position]); positions restart at 0
 * in each text. */
void bmc__bert_embed(const bmc_model *model, const int *ids, const int *lens, int n, float *h);

/* One post-norm BERT layer over every row of h[rows, W], in place. `scratch` is the arena laid
 * out by `plan` (its h part is not used: h may live anywhere). */
void bmc__bert_run_layer(const bmc_model *model, int layer, float *h, const int *lens, int n,
                         float *scratch, const bmc__bert_plan *plan);

/* The same layer computed only for the [CLS] row (first row) of each text: keys and values of
 * every row, queries/FFN of the n [CLS] rows. cls_out[n, W] receives those rows of the layer
 * output. Exact: no other row of the last layer feeds the [CLS] row. */
void bmc__bert_run_layer_cls(const bmc_model *model, int layer, const float *h,
                             const int *lens, int n, float *cls_out, float *scratch,
                             const bmc__bert_plan *plan);

/* out[n, E] = proj2(GELU(proj0(cls))) (MLP projection) or proj0(cls) (linear projection). */
void bmc__bert_project(const bmc_model *model, const float *cls, int n, float *out, float *scratch,
                       const bmc__bert_plan *plan);

/* The whole tower on n packed texts whose longest has max_len ids: out[n, E] raw (unnormalised)
 * embeddings. scratch holds bmc__bert_plan_for(cfg, sum(lens), n, max_len).total floats. The
 * work runs on pool (NULL: the caller alone). */
void bmc__bert_forward(const bmc_model *model, const int *ids, const int *lens, int n,
                       int max_len, float *scratch, float *out, bmc__pool *pool);

#endif /* BMC_BERT_H */
