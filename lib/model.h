/* model.h - the loaded model: configuration plus pointers into the read-only mapping of a .bmc
 * file. Nothing here is copied; every pointer points into the mapping. Shapes follow PyTorch:
 * a Linear weight is [out, in], so y = x W^T + b; the file holds it as 64-output panels
 * (bmc__panels, ops.h), everything else row-major. */
#ifndef BMC_MODEL_H
#define BMC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "biomedclip.h"
#include "format.h"
#include "ops.h"
#include "vocab.h"

#define BMC__MAX_LAYERS 64

typedef struct bmc__vit_block {
    const float *norm1_w, *norm1_b; /* [W]                       */
    bmc__panels qkv_w;              /* [3W, W]  outputs: Q | K | V */
    const float *qkv_b;             /* [3W]                      */
    bmc__panels proj_w;             /* [W, W]                    */
    const float *proj_b;            /* [W]                       */
    const float *norm2_w, *norm2_b; /* [W]                       */
    bmc__panels fc1_w, fc2_w;       /* [MLP, W], [W, MLP]        */
    const float *fc1_b, *fc2_b;     /* [MLP], [W]                */
} bmc__vit_block;

typedef struct bmc__vit_weights {
    bmc__panels patch_w;            /* [W, 3, P, P]: conv weight, used as a [W, 3*P*P] matrix */
    const float *patch_b;           /* [W]                                                    */
    const float *cls_token;         /* [W]                                                    */
    const float *pos_embed;         /* [1 + (S/P)^2, W]                                       */
    bmc__vit_block blocks[BMC__MAX_LAYERS];
    const float *norm_w, *norm_b;   /* [W] final LayerNorm                                    */
    bmc__panels head_w;             /* [E, W] projection, no bias                            */
} bmc__vit_weights;

typedef struct bmc__bert_layer {
    bmc__panels q_w, k_w, v_w;      /* [W, W]      */
    const float *q_b, *k_b, *v_b;   /* [W]         */
    bmc__panels attn_out_w;         /* [W, W]      */
    const float *attn_out_b;        /* [W]         */
    const float *attn_ln_w, *attn_ln_b;   /* [W]         */
    bmc__panels ffn_in_w, ffn_out_w;      /* [F, W], [W, F] */
    const float *ffn_in_b, *ffn_out_b;    /* [F], [W]    */
    const float *out_ln_w, *out_ln_b;     /* [W]         */
} bmc__bert_layer;

typedef struct bmc__bert_weights {
    const float *word_emb;          /* [vocab_rows, W]    */
    const float *pos_emb;           /* [max_positions, W] */
    const float *type_emb;          /* [type_vocab, W]; row 0 is used */
    const float *emb_ln_w, *emb_ln_b; /* [W]              */
    bmc__bert_layer layers[BMC__MAX_LAYERS];
    bmc__panels proj0_w;            /* [H, W] (mlp) or [E, W] (linear), no bias */
    bmc__panels proj2_w;            /* [E, H] (mlp) or empty, no bias           */
} bmc__bert_weights;

struct bmc_model {
    const uint8_t *map;             /* the whole file, mapped read-only */
    size_t map_size;
    bmc__config config;             /* copy of the header's configuration */
    const bmc__dir_entry *dir;      /* [n_tensors], inside the mapping */
    uint32_t n_tensors;
    int64_t n_params;               /* float parameters */
    unsigned char weight_dtype[3];  /* which bmc__wtype the Linear weights use (a file may mix) */
    float logit_scale;              /* exp() of the stored value */
    bmc__vit_weights vit;
    bmc__bert_weights bert;
    bmc__vocab vocab;
    char *token_text;               /* [vocab bytes + n]: each token NUL-terminated, for bmc_model_token */
    char path[512];
};

#endif /* BMC_MODEL_H */
