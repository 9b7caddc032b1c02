/* format.h - the .bmc model file, on disk. docs/FORMAT.md describes it byte by byte; this is the
 * same description in C. Everything is little-endian; the structs are written as raw bytes. */
#ifndef BMC_FORMAT_H
#define BMC_FORMAT_H

#include <stdint.h>

#define BMC__MAGIC "BMCLIP\0\1"      /* 8 bytes */
#define BMC__FORMAT_VERSION 2
#define BMC__HEADER_SIZE 512
#define BMC__DIR_ENTRY_SIZE 160
#define BMC__ENDIAN_TAG 0x01020304u
#define BMC__TENSOR_ALIGN 64         /* every tensor starts on a 64-byte boundary */
#define BMC__DATA_ALIGN 4096         /* the data region starts on a page boundary */
#define BMC__NAME_MAX 96             /* tensor names, NUL-padded */
#define BMC__MAX_DIMS 4

/* Tensor element types (numbered like ggml_type where one exists). */
enum bmc__dtype {
    BMC__F32 = 0,
    BMC__F16 = 1,
    BMC__I32 = 26,
    BMC__BF16 = 30,
    BMC__U8 = 64,
    BMC__U32 = 65
};

/* Values of bmc__dir_entry.layout. */
enum {
    BMC__LAYOUT_ROWS = 0,   /* row-major, the C order of shape */
    BMC__LAYOUT_PANEL64 = 1, /* a Linear weight [N, K...] as ceil(N / 64) panels [K][64] (below) */
    BMC__LAYOUT_PANEL64X2 = 2 /* the same in BF16 with pairs of k side by side (below) */
};
/* A panel64 tensor: N = shape[0], K = the product of the other dimensions; element (n, k) is at
 * float index (n / 64) * K * 64 + k * 64 + n % 64, and the last panel's slots past N are zero,
 * so nbytes = ceil(N / 64) * 64 * K * element size. The dtype is F32 or F16. The GEMM kernel
 * reads a 64-output block as one contiguous [K][64] run, in place from the mapping.
 * A panel64x2 tensor (dtype BF16, K even) interleaves pairs of k: element (n, k) is at index
 * (n / 64) * K * 64 + (k / 2) * 128 + (n % 64) * 2 + k % 2, the operand order of vdpbf16ps. */
#define BMC__PANEL 64

/* Values of bmc__config.text_proj_type / text_pooler / image_resize / image_interp. */
enum { BMC__PROJ_LINEAR = 1, BMC__PROJ_MLP = 2 };
enum { BMC__POOL_CLS_LAST_HIDDEN = 1 };
enum { BMC__RESIZE_SHORTEST = 1 };
enum { BMC__INTERP_BICUBIC = 1 };

/* Hyper-parameters, preprocessing and tokenizer constants: 256 bytes. */
typedef struct bmc__config {
    /* vision tower (timm ViT) */
    uint32_t image_size;        /* 224 */
    uint32_t patch_size;        /* 16 */
    uint32_t vision_width;      /* 768 */
    uint32_t vision_layers;     /* 12 */
    uint32_t vision_heads;      /* 12 */
    uint32_t vision_mlp;        /* 3072 */
    double vision_ln_eps;       /* 1e-6 */
    /* text tower (BERT) */
    uint32_t vocab_rows;        /* 30522: rows of word_embeddings */
    uint32_t max_positions;     /* 512 */
    uint32_t type_vocab;        /* 2 */
    uint32_t context_length;    /* 256 */
    uint32_t text_width;        /* 768 */
    uint32_t text_layers;       /* 12 */
    uint32_t text_heads;        /* 12 */
    uint32_t text_ffn;          /* 3072 */
    double text_ln_eps;         /* 1e-12 */
    uint32_t text_proj_type;    /* BMC__PROJ_MLP */
    uint32_t text_proj_hidden;  /* 640 ((768 + 512) / 2); 0 for a linear projection */
    uint32_t text_pooler;       /* BMC__POOL_CLS_LAST_HIDDEN */
    /* shared */
    uint32_t embed_dim;         /* 512 */
    /* preprocessing */
    uint32_t image_resize;      /* BMC__RESIZE_SHORTEST */
    uint32_t image_interp;      /* BMC__INTERP_BICUBIC */
    float image_mean[3];        /* 0.48145466, 0.4578275, 0.40821073 */
    float image_std[3];         /* 0.26862954, 0.26130258, 0.27577711 */
    /* tokenizer */
    uint32_t vocab_size;        /* 28895 entries in tokenizer.vocab.* */
    uint32_t pad_id, unk_id, cls_id, sep_id, mask_id; /* 0 1 2 3 4 */
    uint32_t lowercase;         /* 1 */
    uint32_t strip_accents;     /* 1 */
    uint32_t max_word_chars;    /* 100 */
    uint8_t reserved[256 - 156];
} bmc__config;

/* The file header: 512 bytes at offset 0. */
typedef struct bmc__header {
    char magic[8];              /* "BMCLIP\0\1" */
    uint32_t version;           /* BMC__FORMAT_VERSION */
    uint32_t header_size;       /* 512 */
    uint32_t endian_tag;        /* 0x01020304 written little-endian: 04 03 02 01 */
    uint32_t tensor_align;      /* 64 */
    uint64_t file_size;         /* total bytes of the file */
    uint64_t dir_offset;        /* 512: the tensor directory follows the header */
    uint32_t n_tensors;
    uint32_t dir_entry_size;    /* 160 */
    uint64_t data_offset;       /* start of tensor data, multiple of 4096 */
    uint64_t data_size;         /* file_size - data_offset */
    uint32_t flags;             /* 0 in versions 1 and 2 */
    uint32_t dir_crc32;         /* CRC-32 (zlib) of the n_tensors * 160 directory bytes */
    bmc__config config;         /* at offset 72 */
    uint8_t reserved[512 - 72 - 256 - 4];
    uint32_t header_crc32;      /* CRC-32 of bytes 0..507 */
} bmc__header;

/* One tensor directory entry: 160 bytes. */
typedef struct bmc__dir_entry {
    char name[BMC__NAME_MAX];   /* open_clip state_dict key, NUL-padded ("visual.trunk.cls_token") */
    uint32_t dtype;             /* enum bmc__dtype */
    uint32_t ndim;              /* 0..4 (0: a scalar) */
    uint64_t shape[BMC__MAX_DIMS]; /* unused dims are 0... written as 0 */
    uint64_t offset;            /* absolute file offset, multiple of 64, >= data_offset */
    uint64_t nbytes;            /* bytes stored: element count * element size (rows), or the
                                   panels' size, padding included (panel64) */
    uint32_t data_crc32;        /* CRC-32 of the nbytes at offset */
    uint32_t layout;            /* BMC__LAYOUT_ROWS or BMC__LAYOUT_PANEL64 (version 2 on) */
} bmc__dir_entry;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(bmc__config) == 256, "bmc__config must be 256 bytes");
_Static_assert(sizeof(bmc__header) == BMC__HEADER_SIZE, "bmc__header must be 512 bytes");
_Static_assert(sizeof(bmc__dir_entry) == BMC__DIR_ENTRY_SIZE, "bmc__dir_entry must be 160 bytes");
#endif

#endif /* BMC_FORMAT_H */
