/* encode_text.c - the public text encoders: ids -> embeddings, text -> ids -> embeddings (the
 * tower runs through the scheduler, run.h). */
#include <string.h>

#include "error.h"
#include "model.h"
#include "ops.h"
#include "run.h"

bmc_status bmc_encode_ids(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out,
                          int normalize) {
    if (!ctx) return bmc__fail(BMC_E_INVALID_ARG, "encode_ids: ctx is NULL");
    if (n < 0) return bmc__fail(BMC_E_INVALID_ARG, "encode_ids: n = %d < 0", n);
    if (n == 0) return BMC_OK;
    if (!ids || !lens || !out)
        return bmc__fail(BMC_E_INVALID_ARG, "encode_ids: %s is NULL",
                         !ids ? "ids" : !lens ? "lens" : "out");
    bmc_status st = bmc__run_texts(ctx, ids, lens, n, out);
    if (st != BMC_OK) return st;
    if (normalize) bmc__l2_normalize_rows(out, n, bmc_model_embed_dim(bmc_ctx_model(ctx)));
    return BMC_OK;
}

/* Texts are tokenized into a fixed buffer on the stack and encoded a buffer-full at a time
 * (several texts packed per call), so encoding allocates nothing beyond the context's scratch. */
#define TEXT_CHUNK_IDS 4096
#define TEXT_CHUNK_TEXTS 256

bmc_status bmc_encode_text(bmc_ctx *ctx, const char *const *texts, int n, float *out,
                           int normalize) {
    if (!ctx) return bmc__fail(BMC_E_INVALID_ARG, "encode_text: ctx is NULL");
    if (n < 0) return bmc__fail(BMC_E_INVALID_ARG, "encode_text: n = %d < 0", n);
    if (n == 0) return BMC_OK;
    if (!texts || !out)
        return bmc__fail(BMC_E_INVALID_ARG, "encode_text: %s is NULL", !texts ? "texts" : "out");
    const bmc_model *model = bmc_ctx_model(ctx);
    int cap = (int)model->config.context_length;
    if (cap < 1 || cap > TEXT_CHUNK_IDS)
        return bmc__fail(BMC_E_INTERNAL, "encode_text: context length %d outside 1..%d", cap,
                         TEXT_CHUNK_IDS);
    int E = (int)model->config.embed_dim;

    int ids[TEXT_CHUNK_IDS];
    int lens[TEXT_CHUNK_TEXTS];
    int first = 0, k = 0, used = 0; /* texts first..first+k-1 are tokenized into ids[0..used) */
    for (int i = 0; i <= n; i++) {
        int flush = i == n || k == TEXT_CHUNK_TEXTS || used + cap > TEXT_CHUNK_IDS;
        if (flush && k > 0) {
            bmc_status st = bmc_encode_ids(ctx, ids, lens, k, out + (size_t)first * E, normalize);
            if (st != BMC_OK) return st;
            first += k;
            k = 0;
            used = 0;
        }
        if (i == n) break;
        if (!texts[i]) return bmc__fail(BMC_E_INVALID_ARG, "encode_text: texts[%d] is NULL", i);
        int got = 0;
        bmc_status st = bmc_tokenize(model, texts[i], ids + used, cap, &got);
        if (st != BMC_OK) return st;
        if (got < 1) /* the tokenizer always adds [CLS] and [SEP]; never expected */
            return bmc__fail(BMC_E_INTERNAL, "encode_text: text %d tokenized to no ids", i);
        lens[k++] = got;
        used += got;
    }
    return BMC_OK;
}
