/* model.c - load a .bmc file: map it read-only, validate header, directory and configuration,
 * bind every expected tensor by name (checking the shape the configuration implies), build the
 * vocabulary index. Nothing is copied: the weights are used in place, so loading costs the same
 * for any model size. Every offset and size read from the file is checked before it is used, so
 * no input can make the library read outside the mapping. docs/FORMAT.md describes the file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "error.h"
#include "model.h"

#define BMC__MAX_TENSORS 65536u /* far above any real model; bounds the directory we scan */
#define BMC__MAX_DIM 65536u     /* widths, vocab rows, positions: bounds the products in ctx sizing */
#define BMC__ANY UINT64_MAX     /* an expected dimension that may take any value */

static const char *dtype_name(uint32_t dtype) {
    switch (dtype) {
    case BMC__F32: return "F32";
    case BMC__F16: return "F16";
    case BMC__I32: return "I32";
    case BMC__BF16: return "BF16";
    case BMC__U8: return "U8";
    case BMC__U32: return "U32";
    }
    return "unknown";
}

static size_t dtype_size(uint32_t dtype) {
    switch (dtype) {
    case BMC__F32: case BMC__I32: case BMC__U32: return 4;
    case BMC__F16: case BMC__BF16: return 2;
    case BMC__U8: return 1;
    }
    return 0;
}

static const char *layout_name(uint32_t layout) {
    return layout == BMC__LAYOUT_ROWS ? "rows" : layout == BMC__LAYOUT_PANEL64 ? "panel64" : "panel64x2";
}

/* A Linear weight may be stored in F32 or F16 (panel64) or BF16 (panel64x2): check_entries
 * checked that layout and dtype go together. */
static int panel_type_ok(const bmc__dir_entry *e) {
    return e->dtype == BMC__F32 || e->dtype == BMC__F16 || e->dtype == BMC__BF16;
}

/* "[a,b,c]" for messages */
static const char *shape_str(char *buf, size_t size, uint32_t ndim, const uint64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (uint32_t i = 0; i < ndim && n < size; i++) {
        if (shape[i] == BMC__ANY) n += (size_t)snprintf(buf + n, size - n, i ? ",*" : "*");
        else n += (size_t)snprintf(buf + n, size - n, i ? ",%" PRIu64 : "%" PRIu64, shape[i]);
    }
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* ---- header and configuration ------------------------------------------------------------- */

static bmc_status check_header(const char *path, const uint8_t *map, size_t size, bmc__header *h) {
    memcpy(h, map, sizeof *h);
    if (memcmp(h->magic, BMC__MAGIC, 8) != 0)
        return bmc__fail(BMC_E_FORMAT, "%s: not a .bmc model file (bad magic at offset 0)", path);
    static const uint8_t le_tag[4] = {4, 3, 2, 1};
    if (memcmp(map + 16, le_tag, 4) != 0)
        return bmc__fail(BMC_E_FORMAT, "%s: endian tag at offset 16 is %02x %02x %02x %02x, expected 04 03 02 01",
                         path, map[16], map[17], map[18], map[19]);
    if (h->endian_tag != BMC__ENDIAN_TAG)
        return bmc__fail(BMC_E_FORMAT, "%s: this host is big-endian; .bmc files are little-endian only", path);
    if (h->version != BMC__FORMAT_VERSION)
        return bmc__fail(BMC_E_VERSION, "%s: format version %u, this library reads version %u%s", path,
                         h->version, BMC__FORMAT_VERSION,
                         h->version < BMC__FORMAT_VERSION
                             ? " (convert the checkpoint again with tools/convert.py: version 2 "
                               "stores the Linear weights as 64-output panels)"
                             : "");
    uint32_t crc = bmc__crc32(0, map, BMC__HEADER_SIZE - 4);
    if (crc != h->header_crc32)
        return bmc__fail(BMC_E_CHECKSUM, "%s: header CRC-32 is 0x%08x, the header (bytes 0..507) gives 0x%08x",
                         path, h->header_crc32, crc);
    if (h->header_size != BMC__HEADER_SIZE || h->dir_entry_size != BMC__DIR_ENTRY_SIZE ||
        h->tensor_align != BMC__TENSOR_ALIGN || h->dir_offset != BMC__HEADER_SIZE || h->flags != 0)
        return bmc__fail(BMC_E_FORMAT,
                         "%s: header sizes (header %u, entry %u, align %u, directory at %" PRIu64 ", flags %u) "
                         "are not 512/160/64/512/0",
                         path, h->header_size, h->dir_entry_size, h->tensor_align, h->dir_offset, h->flags);
    if (h->file_size != size)
        return bmc__fail(BMC_E_FORMAT, "%s: header says the file has %" PRIu64 " bytes, it has %zu (truncated?)",
                         path, h->file_size, size);
    if (h->n_tensors == 0 || h->n_tensors > BMC__MAX_TENSORS)
        return bmc__fail(BMC_E_FORMAT, "%s: %u tensors in the directory (1..%u allowed)", path, h->n_tensors,
                         BMC__MAX_TENSORS);
    uint64_t dir_end = h->dir_offset + (uint64_t)h->n_tensors * BMC__DIR_ENTRY_SIZE;
    if (h->data_offset % BMC__DATA_ALIGN != 0 || h->data_offset < dir_end || h->data_offset > size ||
        h->data_size != size - h->data_offset)
        return bmc__fail(BMC_E_FORMAT,
                         "%s: data region at %" PRIu64 " (+%" PRIu64 " bytes) does not follow the directory "
                         "[512, %" PRIu64 ") on a 4096-byte boundary inside the %zu-byte file",
                         path, h->data_offset, h->data_size, dir_end, size);
    crc = bmc__crc32(0, map + h->dir_offset, (size_t)(dir_end - h->dir_offset));
    if (crc != h->dir_crc32)
        return bmc__fail(BMC_E_CHECKSUM, "%s: directory CRC-32 is 0x%08x, the %u entries at 512 give 0x%08x", path,
                         h->dir_crc32, h->n_tensors, crc);
    return BMC_OK;
}

static int dim_ok(uint32_t v) { return v > 0 && v <= BMC__MAX_DIM; }
static int eps_ok(double v) { return isfinite(v) && v > 0 && v < 1; }

static bmc_status check_config(const char *path, const bmc__config *c) {
#define BAD(...) return bmc__fail(BMC_E_FORMAT, __VA_ARGS__)
    if (!dim_ok(c->image_size) || !dim_ok(c->patch_size) || c->image_size % c->patch_size)
        BAD("%s: config: image size %u is not a positive multiple of the patch size %u", path, c->image_size,
            c->patch_size);
    if (c->image_size > BMC_IMAGE_SIZE) /* callers size pixel buffers with BMC_IMAGE_SIZE */
        BAD("%s: config: image size %u exceeds BMC_IMAGE_SIZE %d", path, c->image_size, BMC_IMAGE_SIZE);
    if (!dim_ok(c->vision_width) || !dim_ok(c->vision_heads) || !dim_ok(c->vision_mlp) ||
        c->vision_width % c->vision_heads)
        BAD("%s: config: vision width %u, heads %u, mlp %u (width must be a multiple of heads)", path,
            c->vision_width, c->vision_heads, c->vision_mlp);
    if (c->vision_layers == 0 || c->vision_layers > BMC__MAX_LAYERS)
        BAD("%s: config: %u vision layers (1..%d allowed)", path, c->vision_layers, BMC__MAX_LAYERS);
    if (!eps_ok(c->vision_ln_eps) || !eps_ok(c->text_ln_eps))
        BAD("%s: config: LayerNorm eps %g / %g outside (0, 1)", path, c->vision_ln_eps, c->text_ln_eps);
    if (!dim_ok(c->vocab_rows) || !dim_ok(c->max_positions) || !dim_ok(c->type_vocab))
        BAD("%s: config: vocabulary rows %u, positions %u, token types %u", path, c->vocab_rows, c->max_positions,
            c->type_vocab);
    if (c->context_length < 2 || c->context_length > c->max_positions || c->context_length > BMC_MAX_TOKENS)
        BAD("%s: config: context length %u (2..min(%u positions, BMC_MAX_TOKENS %d) allowed)", path,
            c->context_length, c->max_positions, BMC_MAX_TOKENS);
    if (!dim_ok(c->text_width) || !dim_ok(c->text_heads) || !dim_ok(c->text_ffn) || c->text_width % c->text_heads)
        BAD("%s: config: text width %u, heads %u, ffn %u (width must be a multiple of heads)", path, c->text_width,
            c->text_heads, c->text_ffn);
    if (c->text_layers == 0 || c->text_layers > BMC__MAX_LAYERS)
        BAD("%s: config: %u text layers (1..%d allowed)", path, c->text_layers, BMC__MAX_LAYERS);
    if (!dim_ok(c->embed_dim) || c->embed_dim > BMC_EMBED_DIM) /* callers size outputs with BMC_EMBED_DIM */
        BAD("%s: config: embedding dimension %u (1..BMC_EMBED_DIM %d allowed)", path, c->embed_dim, BMC_EMBED_DIM);
    if (!((c->text_proj_type == BMC__PROJ_MLP && dim_ok(c->text_proj_hidden)) ||
          (c->text_proj_type == BMC__PROJ_LINEAR && c->text_proj_hidden == 0)))
        BAD("%s: config: text projection type %u with hidden size %u", path, c->text_proj_type, c->text_proj_hidden);
    if (c->text_pooler != BMC__POOL_CLS_LAST_HIDDEN || c->image_resize != BMC__RESIZE_SHORTEST ||
        c->image_interp != BMC__INTERP_BICUBIC)
        BAD("%s: config: unsupported pooler %u / resize %u / interpolation %u", path, c->text_pooler,
            c->image_resize, c->image_interp);
    for (int i = 0; i < 3; i++)
        if (!isfinite(c->image_mean[i]) || !isfinite(c->image_std[i]) || !(c->image_std[i] > 0))
            BAD("%s: config: image mean/std channel %d is %g/%g", path, i, c->image_mean[i], c->image_std[i]);
    if (c->vocab_size == 0 || c->vocab_size > c->vocab_rows)
        BAD("%s: config: %u vocabulary entries for %u embedding rows", path, c->vocab_size, c->vocab_rows);
    uint32_t ids[5] = {c->pad_id, c->unk_id, c->cls_id, c->sep_id, c->mask_id};
    for (int i = 0; i < 5; i++)
        if (ids[i] >= c->vocab_size)
            BAD("%s: config: special token id %u (pad/unk/cls/sep/mask #%d) is not below %u", path, ids[i], i,
                c->vocab_size);
    if (c->lowercase > 1 || c->strip_accents > 1 || c->max_word_chars == 0)
        BAD("%s: config: tokenizer switches lowercase %u, strip_accents %u, max_word_chars %u", path, c->lowercase,
            c->strip_accents, c->max_word_chars);
#undef BAD
    return BMC_OK;
}

/* ---- directory entries ---------------------------------------------------------------------- */

static int cmp_entry_offset(const void *a, const void *b) {
    const bmc__dir_entry *x = *(const bmc__dir_entry *const *)a, *y = *(const bmc__dir_entry *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Each entry on its own (name, dtype, shape, size, place), then that no two ranges overlap. */
static bmc_status check_entries(const char *path, const bmc__header *h, const bmc__dir_entry *dir) {
    for (uint32_t i = 0; i < h->n_tensors; i++) {
        const bmc__dir_entry *e = &dir[i];
        uint64_t at = BMC__HEADER_SIZE + (uint64_t)i * BMC__DIR_ENTRY_SIZE;
        if (!memchr(e->name, 0, BMC__NAME_MAX) || !e->name[0])
            return bmc__fail(BMC_E_FORMAT, "%s: directory entry %u (offset %" PRIu64 "): name is empty or not "
                             "NUL-terminated within %d bytes", path, i, at, BMC__NAME_MAX);
        size_t esize = dtype_size(e->dtype);
        if (!esize)
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: unknown dtype %u", path, e->name, e->dtype);
        if (e->ndim > BMC__MAX_DIMS)
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: %u dimensions (at most %d)", path, e->name, e->ndim,
                             BMC__MAX_DIMS);
        size_t count = 1;
        for (uint32_t d = 0; d < BMC__MAX_DIMS; d++) {
            if (d >= e->ndim) {
                if (e->shape[d] != 0)
                    return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: unused dimension %u is %" PRIu64 ", not 0", path,
                                     e->name, d, e->shape[d]);
            } else if (e->shape[d] > SIZE_MAX || !bmc__mul_size(count, (size_t)e->shape[d], &count)) {
                return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: element count overflows", path, e->name);
            }
        }
        if (e->layout == BMC__LAYOUT_PANEL64 || e->layout == BMC__LAYOUT_PANEL64X2) {
            /* stored as ceil(N / 64) panels of [K][64]: the count rounded up to whole panels */
            int pairs = e->layout == BMC__LAYOUT_PANEL64X2;
            int dt_ok = pairs ? e->dtype == BMC__BF16 : e->dtype == BMC__F32 || e->dtype == BMC__F16;
            if (!dt_ok || e->ndim < 2 || e->shape[0] == 0)
                return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: layout %s needs %s tensor of 2 or more "
                                 "dimensions (the first > 0), not %s with %u", path, e->name,
                                 pairs ? "panel64x2" : "panel64", pairs ? "a BF16" : "an F32 or F16",
                                 dtype_name(e->dtype), e->ndim);
            size_t n = (size_t)e->shape[0], k = count / n;
            if (pairs && k % 2)
                return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: layout panel64x2 needs an even K, not %zu", path,
                                 e->name, k);
            if (n > SIZE_MAX - BMC__PANEL ||
                !bmc__mul_size((n + BMC__PANEL - 1) / BMC__PANEL * BMC__PANEL, k, &count))
                return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: element count overflows", path, e->name);
        } else if (e->layout != BMC__LAYOUT_ROWS) {
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: unknown layout %u (0 rows, 1 panel64, 2 panel64x2)",
                             path, e->name,
                             e->layout);
        }
        size_t nbytes;
        if (!bmc__mul_size(count, esize, &nbytes) || nbytes != e->nbytes)
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: nbytes %" PRIu64 " but %zu elements of %s%s need %zu",
                             path, e->name, e->nbytes, count, dtype_name(e->dtype),
                             e->layout != BMC__LAYOUT_ROWS ? " (whole panels)" : "", count * esize);
        if (e->offset % BMC__TENSOR_ALIGN != 0)
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: offset %" PRIu64 " is not a multiple of %d", path,
                             e->name, e->offset, BMC__TENSOR_ALIGN);
        if (e->offset < h->data_offset || e->offset > h->file_size || e->nbytes > h->file_size - e->offset)
            return bmc__fail(BMC_E_FORMAT, "%s: tensor %s: bytes [%" PRIu64 ", +%" PRIu64 ") are outside the data "
                             "region [%" PRIu64 ", %" PRIu64 ")", path, e->name, e->offset, e->nbytes,
                             h->data_offset, h->file_size);
    }
    const bmc__dir_entry **order = bmc__malloc(sizeof *order * h->n_tensors);
    if (!order) return bmc__fail(BMC_E_NOMEM, "%s: out of memory sorting %u tensors", path, h->n_tensors);
    for (uint32_t i = 0; i < h->n_tensors; i++) order[i] = &dir[i];
    qsort(order, h->n_tensors, sizeof *order, cmp_entry_offset);
    bmc_status st = BMC_OK;
    for (uint32_t i = 1; i < h->n_tensors; i++) {
        const bmc__dir_entry *a = order[i - 1], *b = order[i];
        if (a->offset + a->nbytes > b->offset) {
            st = bmc__fail(BMC_E_FORMAT, "%s: tensors %s [%" PRIu64 ", +%" PRIu64 ") and %s [%" PRIu64 ", +%" PRIu64
                           ") overlap", path, a->name, a->offset, a->nbytes, b->name, b->offset, b->nbytes);
            break;
        }
    }
    bmc__free(order);
    return st;
}

/* ---- binding tensors by name ---------------------------------------------------------------- */

typedef struct expect {
    char name[BMC__NAME_MAX];
    uint32_t dtype, ndim, layout;
    uint64_t shape[BMC__MAX_DIMS];
    const void **dst;                 /* where the data pointer goes (layout rows) ... */
    bmc__panels *panels;              /* ... or the panels (layout panel64)            */
    const bmc__dir_entry *found;
} expect;

typedef struct expect_list {
    expect *v;
    size_t n, cap;
} expect_list;

static void want(expect_list *l, const void *dst, uint32_t dtype, uint32_t ndim, uint64_t d0, uint64_t d1,
                 uint64_t d2, uint64_t d3, const char *fmt, ...) BMC__PRINTF(9, 10);

static void want(expect_list *l, const void *dst, uint32_t dtype, uint32_t ndim, uint64_t d0, uint64_t d1,
                 uint64_t d2, uint64_t d3, const char *fmt, ...) {
    if (l->n == l->cap) return; /* cannot happen: cap is computed from the same config */
    expect *x = &l->v[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->name, sizeof x->name, fmt, ap);
    va_end(ap);
    x->dtype = dtype;
    x->ndim = ndim;
    x->shape[0] = d0, x->shape[1] = d1, x->shape[2] = d2, x->shape[3] = d3;
    x->dst = (const void **)dst;
    x->panels = NULL;
    x->layout = BMC__LAYOUT_ROWS;
    x->found = NULL;
}

/* A Linear weight [n, k] (or [n, a, b, c] used as [n, a*b*c]), stored as panels. */
static void want_panels(expect_list *l, bmc__panels *dst, uint32_t ndim, uint64_t d0, uint64_t d1,
                        uint64_t d2, uint64_t d3, const char *fmt, ...) BMC__PRINTF(8, 9);

static void want_panels(expect_list *l, bmc__panels *dst, uint32_t ndim, uint64_t d0, uint64_t d1,
                        uint64_t d2, uint64_t d3, const char *fmt, ...) {
    if (l->n == l->cap) return;
    char name[BMC__NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    want(l, NULL, BMC__F32, ndim, d0, d1, d2, d3, "%s", name);
    expect *x = &l->v[l->n - 1];
    x->panels = dst;
    x->layout = BMC__LAYOUT_PANEL64;
}

#define W1(dst, a, ...) want(&l, &(dst), BMC__F32, 1, a, 0, 0, 0, __VA_ARGS__)
#define W2(dst, a, b, ...) want(&l, &(dst), BMC__F32, 2, a, b, 0, 0, __VA_ARGS__)
#define WP(dst, a, b, ...) want_panels(&l, &(dst), 2, a, b, 0, 0, __VA_ARGS__)
/* Layer i's Linear (weight w as panels [n, k], bias b [n]) or LayerNorm (w, b [n]), named by
 * the format f, i and the module's name: "<name>.weight", "<name>.bias". */
#define WLINEAR(w, b, n, k, f, i, name)                                                          \
    (WP(w, n, k, f, i, name ".weight"), W1(b, n, f, i, name ".bias"))
#define WNORM(w, b, n, f, i, name) (W1(w, n, f, i, name ".weight"), W1(b, n, f, i, name ".bias"))

static void list_expected(bmc_model *m, expect_list *out, const float **logit_scale, const uint32_t **voff,
                          const uint8_t **vbytes) {
    expect_list l = *out;
    const bmc__config *c = &m->config;
    uint64_t vw = c->vision_width, vm = c->vision_mlp, tw = c->text_width, tf = c->text_ffn, e = c->embed_dim;
    uint64_t g = c->image_size / c->patch_size, p = c->patch_size, hid = c->text_proj_hidden;
    bmc__vit_weights *v = &m->vit;
    want(&l, &v->cls_token, BMC__F32, 3, 1, 1, vw, 0, "visual.trunk.cls_token");
    want(&l, &v->pos_embed, BMC__F32, 3, 1, 1 + g * g, vw, 0, "visual.trunk.pos_embed");
    want_panels(&l, &v->patch_w, 4, vw, 3, p, p, "visual.trunk.patch_embed.proj.weight");
    W1(v->patch_b, vw, "visual.trunk.patch_embed.proj.bias");
    for (uint32_t i = 0; i < c->vision_layers; i++) {
        bmc__vit_block *b = &v->blocks[i];
        const char *f = "visual.trunk.blocks.%u.%s";
        WNORM(b->norm1_w, b->norm1_b, vw, f, i, "norm1");
        WLINEAR(b->qkv_w, b->qkv_b, 3 * vw, vw, f, i, "attn.qkv");
        WLINEAR(b->proj_w, b->proj_b, vw, vw, f, i, "attn.proj");
        WNORM(b->norm2_w, b->norm2_b, vw, f, i, "norm2");
        WLINEAR(b->fc1_w, b->fc1_b, vm, vw, f, i, "mlp.fc1");
        WLINEAR(b->fc2_w, b->fc2_b, vw, vm, f, i, "mlp.fc2");
    }
    W1(v->norm_w, vw, "visual.trunk.norm.weight");
    W1(v->norm_b, vw, "visual.trunk.norm.bias");
    WP(v->head_w, e, vw, "visual.head.proj.weight");

    bmc__bert_weights *t = &m->bert;
    W2(t->word_emb, c->vocab_rows, tw, "text.transformer.embeddings.word_embeddings.weight");
    W2(t->pos_emb, c->max_positions, tw, "text.transformer.embeddings.position_embeddings.weight");
    W2(t->type_emb, c->type_vocab, tw, "text.transformer.embeddings.token_type_embeddings.weight");
    W1(t->emb_ln_w, tw, "text.transformer.embeddings.LayerNorm.weight");
    W1(t->emb_ln_b, tw, "text.transformer.embeddings.LayerNorm.bias");
    for (uint32_t i = 0; i < c->text_layers; i++) {
        bmc__bert_layer *b = &t->layers[i];
        const char *f = "text.transformer.encoder.layer.%u.%s";
        WLINEAR(b->q_w, b->q_b, tw, tw, f, i, "attention.self.query");
        WLINEAR(b->k_w, b->k_b, tw, tw, f, i, "attention.self.key");
        WLINEAR(b->v_w, b->v_b, tw, tw, f, i, "attention.self.value");
        WLINEAR(b->attn_out_w, b->attn_out_b, tw, tw, f, i, "attention.output.dense");
        WNORM(b->attn_ln_w, b->attn_ln_b, tw, f, i, "attention.output.LayerNorm");
        WLINEAR(b->ffn_in_w, b->ffn_in_b, tf, tw, f, i, "intermediate.dense");
        WLINEAR(b->ffn_out_w, b->ffn_out_b, tw, tf, f, i, "output.dense");
        WNORM(b->out_ln_w, b->out_ln_b, tw, f, i, "output.LayerNorm");
    }
    if (c->text_proj_type == BMC__PROJ_MLP) {
        WP(t->proj0_w, hid, tw, "text.proj.0.weight");
        WP(t->proj2_w, e, hid, "text.proj.2.weight");
    } else {
        WP(t->proj0_w, e, tw, "text.proj.weight");
    }
    want(&l, logit_scale, BMC__F32, 0, 0, 0, 0, 0, "logit_scale");
    want(&l, voff, BMC__U32, 1, (uint64_t)c->vocab_size + 1, 0, 0, 0, "tokenizer.vocab.offsets");
    want(&l, vbytes, BMC__U8, 1, BMC__ANY, 0, 0, 0, "tokenizer.vocab.bytes");
    *out = l;
}
#undef W1
#undef W2
#undef WP

static int cmp_expect(const void *a, const void *b) {
    return strcmp(((const expect *)a)->name, ((const expect *)b)->name);
}

static bmc_status bind_tensors(bmc_model *m, const float **logit_scale, const uint32_t **voff,
                               const uint8_t **vbytes, size_t *vbytes_n) {
    const bmc__config *c = &m->config;
    expect_list l = {NULL, 0, 4 + 12 * (size_t)c->vision_layers + 3 + 5 + 16 * (size_t)c->text_layers + 2 + 3};
    l.v = bmc__malloc(sizeof *l.v * l.cap);
    if (!l.v) return bmc__fail(BMC_E_NOMEM, "%s: out of memory listing the expected tensors", m->path);
    list_expected(m, &l, logit_scale, voff, vbytes);
    qsort(l.v, l.n, sizeof *l.v, cmp_expect);
    bmc_status st = BMC_OK;
    char s1[96], s2[96];
    for (uint32_t i = 0; i < m->n_tensors && st == BMC_OK; i++) {
        const bmc__dir_entry *e = &m->dir[i];
        expect key;
        memcpy(key.name, e->name, sizeof key.name); /* NUL-terminated: checked before */
        expect *x = bsearch(&key, l.v, l.n, sizeof *l.v, cmp_expect);
        if (!x) {
            st = bmc__fail(BMC_E_FORMAT, "%s: unexpected tensor %s (directory entry %u) for this configuration",
                           m->path, e->name, i);
        } else if (x->found) {
            st = bmc__fail(BMC_E_FORMAT, "%s: tensor %s appears twice in the directory (entries %u and %u)", m->path,
                           e->name, (uint32_t)(x->found - m->dir), i);
        } else if (x->panels ? !panel_type_ok(e) : e->dtype != x->dtype) {
            st = bmc__fail(BMC_E_FORMAT, "%s: tensor %s: dtype %s, expected %s", m->path, e->name,
                           dtype_name(e->dtype), dtype_name(x->dtype));
        } else {
            int same = e->ndim == x->ndim;
            for (uint32_t d = 0; same && d < x->ndim; d++)
                same = x->shape[d] == BMC__ANY || x->shape[d] == e->shape[d];
            if (!same) {
                st = bmc__fail(BMC_E_FORMAT, "%s: tensor %s: expected shape %s, found %s (entry %u, offset %" PRIu64
                               ")", m->path, e->name, shape_str(s1, sizeof s1, x->ndim, x->shape),
                               shape_str(s2, sizeof s2, e->ndim, e->shape), i, e->offset);
                break;
            }
            if (x->panels ? e->layout == BMC__LAYOUT_ROWS : e->layout != BMC__LAYOUT_ROWS) {
                st = bmc__fail(BMC_E_FORMAT, "%s: tensor %s: layout %s, expected %s (entry %u)", m->path, e->name,
                               layout_name(e->layout), x->panels ? "panel64" : "rows", i);
                break;
            }
            x->found = e;
            if (x->panels) {
                x->panels->p = m->map + e->offset;
                x->panels->wt = e->dtype == BMC__F16 ? BMC__W_F16 : e->dtype == BMC__BF16 ? BMC__W_BF16 : BMC__W_F32;
                m->weight_dtype[x->panels->wt] = 1;
                x->panels->N = (int)e->shape[0];
                x->panels->K = (int)(e->shape[1] * (e->ndim > 2 ? e->shape[2] : 1) * (e->ndim > 3 ? e->shape[3] : 1));
            } else {
                *x->dst = m->map + e->offset;
            }
            if (x->panels) m->n_params += (int64_t)x->panels->N * x->panels->K;
            else if (e->dtype == BMC__F32) m->n_params += (int64_t)(e->nbytes / 4);
            if (e->dtype == BMC__U8) *vbytes_n = (size_t)e->nbytes;
        }
    }
    for (size_t i = 0; i < l.n && st == BMC_OK; i++)
        if (!l.v[i].found)
            st = bmc__fail(BMC_E_FORMAT, "%s: missing tensor %s %s", m->path, l.v[i].name,
                           shape_str(s1, sizeof s1, l.v[i].ndim, l.v[i].shape));
    bmc__free(l.v);
    return st;
}

/* ---- load / free ------------------------------------------------------------------------------ */

bmc_model_params bmc_model_default_params(void) {
    bmc_model_params p;
    memset(&p, 0, sizeof p);
    p.huge_pages = 1;
    return p;
}

static bmc_status verify_data(const bmc_model *m) {
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const bmc__dir_entry *e = &m->dir[i];
        uint32_t crc = bmc__crc32(0, m->map + e->offset, (size_t)e->nbytes);
        if (crc != e->data_crc32)
            return bmc__fail(BMC_E_CHECKSUM, "%s: tensor %s: data CRC-32 is 0x%08x, the directory says 0x%08x "
                             "(bytes [%" PRIu64 ", +%" PRIu64 "))", m->path, e->name, crc, e->data_crc32, e->offset,
                             e->nbytes);
    }
    return BMC_OK;
}

static bmc_status load(bmc_model *m, const bmc_model_params *p) {
    bmc__header h;
    bmc_status st = check_header(m->path, m->map, m->map_size, &h);
    if (st != BMC_OK) return st;
    m->config = h.config;
    m->dir = (const bmc__dir_entry *)(m->map + h.dir_offset);
    m->n_tensors = h.n_tensors;
    if ((st = check_config(m->path, &m->config)) != BMC_OK) return st;
    if ((st = check_entries(m->path, &h, m->dir)) != BMC_OK) return st;
    const float *ls = NULL;
    const uint32_t *voff = NULL;
    const uint8_t *vbytes = NULL;
    size_t vbytes_n = 0;
    if ((st = bind_tensors(m, &ls, &voff, &vbytes, &vbytes_n)) != BMC_OK) return st;
    if (p->verify_data && (st = verify_data(m)) != BMC_OK) return st;
    float scale = expf(*ls);
    if (!isfinite(scale))
        return bmc__fail(BMC_E_FORMAT, "%s: tensor logit_scale: exp(%g) is not finite", m->path, (double)*ls);
    m->logit_scale = scale;
    if ((st = bmc__vocab_init(&m->vocab, voff, vbytes, m->config.vocab_size, vbytes_n)) != BMC_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", bmc_last_error());
        return bmc__fail(st, "%s: %s", m->path, msg);
    }
    /* NUL-terminated copies, so that bmc_model_token returns C strings */
    size_t n = m->config.vocab_size, total = vbytes_n + n;
    m->token_text = bmc__malloc(total);
    if (!m->token_text) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for %zu bytes of token text", m->path, total);
    for (size_t i = 0; i < n; i++) {
        memcpy(m->token_text + voff[i] + i, vbytes + voff[i], voff[i + 1] - voff[i]);
        m->token_text[voff[i + 1] + i] = 0;
    }
    if (p->prefault) (void)madvise((void *)m->map, m->map_size, MADV_WILLNEED);
    return BMC_OK;
}

bmc_status bmc_model_load(const char *path, const bmc_model_params *params, bmc_model **out) {
    if (!out) return bmc__fail(BMC_E_INVALID_ARG, "bmc_model_load: out is NULL");
    *out = NULL;
    if (!path) return bmc__fail(BMC_E_INVALID_ARG, "bmc_model_load: path is NULL");
    bmc_model_params p = params ? *params : bmc_model_default_params();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bmc__fail(BMC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return bmc__fail(BMC_E_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bmc__fail(BMC_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size < BMC__HEADER_SIZE || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return bmc__fail(BMC_E_FORMAT, "%s: %lld bytes is too small for the %d-byte .bmc header", path,
                         (long long)sb.st_size, BMC__HEADER_SIZE);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) return bmc__fail(BMC_E_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(err));
#ifdef MADV_HUGEPAGE
    /* A pass reads every weight of a tower (340 MB for the text, 344 MB for the image): with
     * 4 KB pages that is ~85,000 TLB misses a pass, each a two-level walk in a virtual machine;
     * 2 MB pages make passes faster (docs/PERF.md). Advice only: the
     * kernel uses it for what it reads into the page cache from now on (a file still cached in
     * small pages, e.g. just written, keeps them until evicted: tools/convert.py evicts its
     * output) and ignores it where it cannot. */
    if (p.huge_pages) (void)madvise(map, size, MADV_HUGEPAGE);
#endif
    bmc_model *m = bmc__calloc(1, sizeof *m);
    if (!m) {
        munmap(map, size);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory", path);
    }
    m->map = map;
    m->map_size = size;
    snprintf(m->path, sizeof m->path, "%s", path);
    bmc_status st = load(m, &p);
    if (st != BMC_OK) {
        bmc_model_free(m);
        return st;
    }
    *out = m;
    return BMC_OK;
}

void bmc_model_free(bmc_model *m) {
    if (!m) return;
    bmc__vocab_free(&m->vocab);
    bmc__free(m->token_text);
    if (m->map) munmap((void *)m->map, m->map_size);
    bmc__free(m);
}

/* ---- accessors ---------------------------------------------------------------------------------- */

int bmc_model_embed_dim(const bmc_model *m) { return m ? (int)m->config.embed_dim : 0; }
int bmc_model_image_size(const bmc_model *m) { return m ? (int)m->config.image_size : 0; }
int bmc_model_context_length(const bmc_model *m) { return m ? (int)m->config.context_length : 0; }
int bmc_model_vocab_size(const bmc_model *m) { return m ? (int)m->vocab.n : 0; }
float bmc_model_logit_scale(const bmc_model *m) { return m ? m->logit_scale : 0.0f; }
int64_t bmc_model_n_params(const bmc_model *m) { return m ? m->n_params : 0; }
int bmc_model_n_tensors(const bmc_model *m) { return m ? (int)m->n_tensors : 0; }
uint64_t bmc_model_file_size(const bmc_model *m) { return m ? (uint64_t)m->map_size : 0; }

int bmc_model_fingerprint(const bmc_model *m, char *buf, size_t size) {
    if (!m) return snprintf(buf, size, "%s", "");
    const bmc__header *h = (const bmc__header *)m->map;
    return snprintf(buf, size, "bmc%u-%" PRIu64 "-%08x", h->version, h->file_size, h->header_crc32);
}

const char *bmc_model_token(const bmc_model *m, int id, size_t *len) {
    if (!m || id < 0 || (uint32_t)id >= m->vocab.n) {
        if (len) *len = 0;
        return NULL;
    }
    uint32_t a = m->vocab.offsets[id], b = m->vocab.offsets[id + 1];
    if (len) *len = b - a;
    return m->token_text + a + (size_t)id;
}

/* snprintf that keeps counting after the buffer is full */
static void put(char *buf, size_t size, size_t *n, const char *fmt, ...) BMC__PRINTF(4, 5);
static void put(char *buf, size_t size, size_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*n < size ? buf + *n : NULL, *n < size ? size - *n : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *n += (size_t)k;
}

static const char *group(char *buf, size_t size, uint64_t v) { /* 195902721 -> "195,902,721" */
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v), o = 0;
    for (int i = 0; i < n && o + 2 < (int)size; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

int bmc_model_describe(const bmc_model *m, char *buf, size_t size) {
    if (buf && size) buf[0] = 0;
    if (!buf) size = 0;
    if (!m) return 0;
    const bmc__config *c = &m->config;
    size_t n = 0;
    char a[40], b[40];
    put(buf, size, &n, "file            %s\n", m->path);
    put(buf, size, &n, "file size       %s bytes (format version %d)\n", group(a, sizeof a, m->map_size),
        BMC__FORMAT_VERSION);
    put(buf, size, &n, "tensors         %u\n", m->n_tensors);
    put(buf, size, &n, "parameters      %s\n", group(b, sizeof b, (uint64_t)m->n_params));
    put(buf, size, &n, "linear weights  %s%s%s%s%s (LayerNorm, biases and embedding tables float32)\n",
        m->weight_dtype[BMC__W_F32] ? "float32" : "",
        m->weight_dtype[BMC__W_F32] && m->weight_dtype[BMC__W_F16] ? " + " : "",
        m->weight_dtype[BMC__W_F16] ? "float16" : "",
        (m->weight_dtype[BMC__W_F32] || m->weight_dtype[BMC__W_F16]) && m->weight_dtype[BMC__W_BF16] ? " + " : "",
        m->weight_dtype[BMC__W_BF16] ? "bfloat16" : "");
    put(buf, size, &n, "vision          ViT: image %u, patch %u, width %u, %u layers, %u heads, mlp %u, "
        "LayerNorm eps %g\n", c->image_size, c->patch_size, c->vision_width, c->vision_layers, c->vision_heads,
        c->vision_mlp, c->vision_ln_eps);
    put(buf, size, &n, "text            BERT: width %u, %u layers, %u heads, ffn %u, vocabulary rows %u, "
        "positions %u, token types %u, LayerNorm eps %g\n", c->text_width, c->text_layers, c->text_heads,
        c->text_ffn, c->vocab_rows, c->max_positions, c->type_vocab, c->text_ln_eps);
    if (c->text_proj_type == BMC__PROJ_MLP)
        put(buf, size, &n, "text head       CLS of last hidden state -> mlp %u -> GELU -> %u\n",
            c->text_proj_hidden, c->embed_dim);
    else
        put(buf, size, &n, "text head       CLS of last hidden state -> linear %u\n", c->embed_dim);
    put(buf, size, &n, "embedding       %u\n", c->embed_dim);
    put(buf, size, &n, "context length  %u\n", c->context_length);
    put(buf, size, &n, "logit scale     %.6g (exp of %.6g)\n", (double)m->logit_scale, log((double)m->logit_scale));
    put(buf, size, &n, "image input     %ux%u, shortest side + bicubic + centre crop, mean %.8g %.8g %.8g, "
        "std %.8g %.8g %.8g\n", c->image_size, c->image_size, c->image_mean[0], c->image_mean[1], c->image_mean[2],
        c->image_std[0], c->image_std[1], c->image_std[2]);
    put(buf, size, &n, "tokenizer       WordPiece, %u tokens, lowercase %u, strip accents %u, max word %u chars, "
        "pad %u unk %u cls %u sep %u mask %u\n", m->vocab.n, c->lowercase, c->strip_accents, c->max_word_chars,
        c->pad_id, c->unk_id, c->cls_id, c->sep_id, c->mask_id);
    return (int)n;
}
