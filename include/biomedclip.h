/* biomedclip.h - BiomedCLIP inference (ViT-B/16 image tower + PubMedBERT text tower) in C.
 *
 * This header is the contract: a function that is not declared here is not part of the API.
 * It compiles as C99 and as C++.
 *
 * ---------------------------------------------------------------------------------------------
 * Quick start
 *
 *     #include <biomedclip.h>
 *
 *     bmc_model *model = NULL;
 *     if (bmc_model_load("weights/biomedclip.bmc", NULL, &model) != BMC_OK) {
 *         fprintf(stderr, "%s\n", bmc_last_error());  return 1;
 *     }
 *     bmc_ctx *ctx = NULL;
 *     bmc_ctx_new(model, NULL, &ctx);
 *     const char *labels[2] = {"this is a photo of chest X-ray", "this is a photo of brain MRI"};
 *     float probs[2];
 *     if (bmc_zero_shot_file(ctx, "xray.png", labels, 2, probs) != BMC_OK)
 *         fprintf(stderr, "%s\n", bmc_last_error());
 *     bmc_ctx_free(ctx);
 *     bmc_model_free(model);
 *
 * ---------------------------------------------------------------------------------------------
 * Objects
 *   bmc_model  the weights, mapped read-only from one .bmc file (see docs/FORMAT.md), plus the
 *              configuration and the tokenizer vocabulary. Immutable after load.
 *   bmc_ctx    scratch memory for one forward pass at a time, sized at creation for a maximum
 *              batch; grows only when a larger batch arrives (never in the steady state).
 *   bmc_image  an 8-bit image: either a view of caller pixels (you fill the struct) or pixels
 *              owned by the library (bmc_image_load*, freed with bmc_image_free).
 *
 * Errors
 *   Every fallible function returns a bmc_status (BMC_OK == 0). On failure, bmc_last_error()
 *   returns a message naming the problem (file, tensor, offset, dimension). The message is
 *   kept per thread and is valid until the next failing call on the same thread.
 *   The library never exits or aborts on bad input, and a failed call leaves its outputs
 *   unspecified but never partially allocated.
 *
 * Memory
 *   Objects are allocated only by bmc_model_load, bmc_ctx_new and bmc_image_load*; each has a
 *   matching free, and every free accepts NULL. The forward passes (bmc_encode_pixels,
 *   bmc_encode_ids, and the model part of every encode call) run in the context's scratch arena
 *   and allocate nothing once it has seen its largest batch. Decoding and resizing an image of
 *   arbitrary size need temporaries proportional to that image; bmc_image_crop,
 *   bmc_image_preprocess and bmc_encode_image allocate them per image and free them before
 *   returning. All outputs go to caller-owned buffers whose sizes follow from the constants below
 *   and the model accessors (bmc_model_embed_dim, ...).
 *
 * Threads
 *   - A bmc_model may be shared by any number of threads (it is read-only after load).
 *   - A bmc_ctx must be used by one thread at a time: give each worker thread its own.
 *   - Functions that take only a model (tokenize, preprocess, similarity, ...) are re-entrant.
 *   - The only global mutable state is the log callback (bmc_log_set): set it before use.
 *   - A context runs its forward passes on its own threads: bmc_ctx_params.n_threads of them
 *     (the calling thread included), or, when 0, as many as OpenBLAS is set to use (by default
 *     every core). At the portable kernel level (a CPU without AVX2 + FMA, or BMC_CPU=portable)
 *     the products are OpenBLAS's and run on its threads.
 *     OpenBLAS has one process-wide thread count; n_threads sets it too when > 0.
 *     Latency mode: one context, n_threads = number of cores. Throughput mode: one context per
 *     core, each with n_threads = 1. See docs/PERF.md.
 *
 * Determinism
 *   The same binary with the same thread count gives bit-identical results. At the AVX-512 and
 *   AVX2 kernel levels the thread count does not change the bits either; at the portable level
 *   it may (OpenBLAS's own threads; some of its kernel sets follow the thread partition), by
 *   about 1e-7 relative. An item encoded alone or inside a batch agrees to about 1e-6 relative
 *   (GEMM blocking differs).
 */
#ifndef BIOMEDCLIP_H
#define BIOMEDCLIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BMC_API marks the functions of this header. The library is built with -fvisibility=hidden, so
 * these are all that its shared object exports; everything else (bmc__*) stays internal. */
#if defined(__GNUC__) || defined(__clang__)
#define BMC_API __attribute__((visibility("default")))
#else
#define BMC_API
#endif

#define BMC_VERSION_MAJOR 0
#define BMC_VERSION_MINOR 1
#define BMC_VERSION_PATCH 0
#define BMC_VERSION_STRING "0.1.0"
#define BMC_VERSION_NUMBER (BMC_VERSION_MAJOR * 10000 + BMC_VERSION_MINOR * 100 + BMC_VERSION_PATCH)

#define BMC_EMBED_DIM 512   /* length of one BiomedCLIP embedding, both towers; a model file
                               * may declare another size: bmc_model_embed_dim() is the truth */
#define BMC_IMAGE_SIZE 224  /* side of the square model input */
#define BMC_MAX_TOKENS 256  /* context length: most ids a text can have, [CLS] and [SEP] included */

/* ----------------------------------------------------------------------------------------- */
/* Status codes                                                                               */

typedef enum bmc_status {
    BMC_OK = 0,
    BMC_E_INVALID_ARG = -1, /* NULL where a pointer is required, n < 0, bad stride, ...      */
    BMC_E_IO = -2,          /* a file could not be opened, read or mapped                    */
    BMC_E_FORMAT = -3,      /* a model file is malformed (magic, sizes, shapes, offsets)     */
    BMC_E_VERSION = -4,     /* a model file of an unsupported format version                 */
    BMC_E_CHECKSUM = -5,    /* a model file's header, directory or data checksum is wrong    */
    BMC_E_NOMEM = -6,       /* an allocation failed                                          */
    BMC_E_IMAGE = -7,       /* an image could not be decoded, or is of an unusable size      */
    BMC_E_TOO_LONG = -8,    /* an output buffer is too small                                 */
    BMC_E_INTERNAL = -99
} bmc_status;

/* Static English name of a status ("BMC_E_FORMAT: malformed model file"). Never NULL. */
BMC_API const char *bmc_status_str(bmc_status status);

/* Detail of the last failure on the calling thread; "" if none. Never NULL. */
BMC_API const char *bmc_last_error(void);

/* ----------------------------------------------------------------------------------------- */
/* Version and system                                                                         */

BMC_API int bmc_version_number(void);       /* == BMC_VERSION_NUMBER of the compiled library */
BMC_API const char *bmc_version_string(void);
BMC_API const char *bmc_system_info(void);  /* static text: SIMD level, BLAS core, BLAS threads,
                                             * decoders, slide reader (SLIDE=OpenSlide-3.4.1 or none) */

typedef void (*bmc_log_fn)(int level, const char *message, void *user);
#define BMC_LOG_ERROR 0
#define BMC_LOG_WARN 1
#define BMC_LOG_INFO 2
/* Install a log callback (NULL: silent, the default). Not thread-safe: call before other use. */
BMC_API void bmc_log_set(bmc_log_fn fn, void *user);

/* ----------------------------------------------------------------------------------------- */
/* Model                                                                                      */

typedef struct bmc_model bmc_model;

typedef struct bmc_model_params {
    int verify_data;  /* 1: check every tensor's CRC32 at load (reads the whole file). Default 0. */
    int prefault;     /* 1: ask the kernel to read the mapping ahead (MADV_WILLNEED). Default 0.  */
    int huge_pages;   /* 1: ask for 2 MB pages for the mapping (MADV_HUGEPAGE; honoured where
                         the file system caches files in large folios, for the pages read from
                         disk after the load). Fewer TLB misses, faster passes (docs/PERF.md).
                         Default 1. */
} bmc_model_params;

BMC_API bmc_model_params bmc_model_default_params(void);

/* Map and validate a .bmc model file. params may be NULL (defaults). On failure *out is NULL. */
BMC_API bmc_status bmc_model_load(const char *path, const bmc_model_params *params,
                                  bmc_model **out);
BMC_API void bmc_model_free(bmc_model *model); /* NULL-safe */

/* Accessors. */
BMC_API int bmc_model_embed_dim(const bmc_model *model);      /* 512 */
BMC_API int bmc_model_image_size(const bmc_model *model);     /* 224 */
BMC_API int bmc_model_context_length(const bmc_model *model); /* 256 */
BMC_API int bmc_model_vocab_size(const bmc_model *model);     /* tokenizer vocabulary entries */
BMC_API float bmc_model_logit_scale(const bmc_model *model);  /* exp(logit_scale), checkpoint's */
BMC_API int64_t bmc_model_n_params(const bmc_model *model);   /* float parameters (195,902,721) */
BMC_API int bmc_model_n_tensors(const bmc_model *model);
BMC_API uint64_t bmc_model_file_size(const bmc_model *model);
/* The identity of the model file's contents as text, "bmc<version>-<file size>-<CRC-32>", where
 * the CRC-32 is the header's own, which covers the configuration and the directory CRC-32, which
 * covers every tensor's CRC-32: two files with the same fingerprint hold the same model. Written
 * into buf (always NUL-terminated when size > 0); returns the full length (snprintf semantics). */
BMC_API int bmc_model_fingerprint(const bmc_model *model, char *buf, size_t size);
/* The token string of id (NULL if out of range); the pointer lives as long as the model. */
BMC_API const char *bmc_model_token(const bmc_model *model, int id, size_t *len);
/* Multi-line human-readable description (configuration, counts, sizes) written into buf;
 * returns the full length (snprintf semantics). */
BMC_API int bmc_model_describe(const bmc_model *model, char *buf, size_t size);

/* ----------------------------------------------------------------------------------------- */
/* Context                                                                                    */

typedef struct bmc_ctx bmc_ctx;

typedef struct bmc_ctx_params {
    int n_threads;  /* > 0: the context's threads, and OpenBLAS's (process-wide) thread count.
                     * 0 (default): OpenBLAS's current count, which is left as it is. */
    int max_batch;  /* scratch is sized for this many images/texts up front. Default 8.         */
} bmc_ctx_params;

BMC_API bmc_ctx_params bmc_ctx_default_params(void);

BMC_API bmc_status bmc_ctx_new(const bmc_model *model, const bmc_ctx_params *params, bmc_ctx **out);
BMC_API void bmc_ctx_free(bmc_ctx *ctx); /* NULL-safe */
BMC_API const bmc_model *bmc_ctx_model(const bmc_ctx *ctx);

/* ----------------------------------------------------------------------------------------- */
/* Text                                                                                       */

/* Tokenize UTF-8 text exactly as open_clip's HFTokenizer + BertTokenizerFast do:
 * [CLS] ids... [SEP], truncated to the context length, no padding. Invalid UTF-8 bytes are
 * replaced by U+FFFD (which BERT's normaliser then drops). ids must hold `cap` ints;
 * cap >= BMC_MAX_TOKENS always suffices. *n_ids receives the count. */
BMC_API bmc_status bmc_tokenize(const bmc_model *model, const char *utf8, int *ids, int cap,
                                int *n_ids);

/* Encode n texts into out[n * bmc_model_embed_dim(model)]. normalize != 0: each row has unit L2 norm. */
BMC_API bmc_status bmc_encode_text(bmc_ctx *ctx, const char *const *texts, int n, float *out,
                                   int normalize);

/* Encode n already tokenized texts, packed one after another in ids: text i has lens[i] ids
 * (1 <= lens[i] <= context length), starting at the sum of the lengths before it. */
BMC_API bmc_status bmc_encode_ids(bmc_ctx *ctx, const int *ids, const int *lens, int n, float *out,
                                  int normalize);

/* ----------------------------------------------------------------------------------------- */
/* Images                                                                                     */

typedef enum bmc_pixel_format {
    BMC_PIXEL_GRAY = 1, /* 1 byte per pixel                          */
    BMC_PIXEL_RGB = 3,  /* 3 bytes per pixel, R G B                  */
    BMC_PIXEL_RGBA = 4  /* 4 bytes per pixel, R G B A (straight alpha) */
} bmc_pixel_format;

/* An 8-bit image. As a view, fill it yourself: the library never writes or frees `pixels`.
 * stride is the number of bytes from one row to the next (>= width * format). */
typedef struct bmc_image {
    int width, height;
    bmc_pixel_format format;
    int stride;
    const unsigned char *pixels;
    void *internal_; /* library use; NULL in caller-made views */
} bmc_image;

/* Decoding flags. */
#define BMC_DECODE_DEFAULT 0
/* 16-bit PNGs: PIL opens gray 16-bit as mode 'I' and clips it to 255 when converting to RGB,
 * so a 16-bit X-ray comes out almost white. By default the library scales 16-bit samples to
 * 8 bits (v * 255 / 65535, rounded); this flag reproduces PIL's clipping for strict parity. */
#define BMC_DECODE_PIL_16BIT 1

/* Decode a file / a memory buffer: JPEG (baseline, progressive), PNG (1-16 bit; gray, gray+alpha,
 * RGB, RGBA, palette), BMP, TGA, GIF (first frame), PNM, and DICOM (DCMTK builds: Part 10 or bare
 * datasets, first frame, docs/IMAGE.md's windowing rule). The image keeps what PIL would call
 * its mode (palette indices, gray, gray+alpha, RGB, RGBA) internally, so that preprocessing
 * follows PIL's per-mode rules (palette resized nearest on indices, alpha premultiplied, gray as
 * one channel). The public fields are a view of the pixels as GRAY, RGB or RGBA (a palette is
 * expanded). Free with bmc_image_free. Images wider or taller than BMC_IMAGE_MAX_SIDE are
 * refused before any pixel memory is allocated. */
#define BMC_IMAGE_MAX_SIDE 32768
BMC_API bmc_status bmc_image_load(const char *path, int flags, bmc_image *out);
BMC_API bmc_status bmc_image_load_memory(const void *data, size_t size, int flags, bmc_image *out);
BMC_API void bmc_image_free(bmc_image *image); /* NULL-safe; a no-op on caller-made views */

/* How stored values of more than 8 bits become the 8-bit image (docs/IMAGE.md). */
typedef enum bmc_window_mode {
    BMC_WINDOW_AUTO = 0,        /* DICOM: the file's first window (Window Center/Width with its VOI
                                   LUT Function), else its first VOI LUT Sequence item, else the
                                   min-max of the frame. Other 16-bit images: the flags' rule
                                   (scale v * 255 / 65535, or PIL's clip with BMC_DECODE_PIL_16BIT) */
    BMC_WINDOW_FILE = 1,        /* DICOM: the file's window number window_index (0-based)       */
    BMC_WINDOW_MINMAX = 2,      /* min-max of the frame (DICOM) or of the image (16-bit PNG, PGM,
                                   TIFF)                                                          */
    BMC_WINDOW_CENTER_WIDTH = 3 /* window_center / window_width, LINEAR as DICOM PS3.3
                                   C.11.2.1.2.1                                                   */
} bmc_window_mode;

typedef struct bmc_load_params {
    int flags;                /* BMC_DECODE_* (default BMC_DECODE_DEFAULT)                       */
    int frame;                /* 0-based frame (DICOM multi-frame) or page (multi-page TIFF).
                                 Default 0.                                                       */
    bmc_window_mode window;   /* default BMC_WINDOW_AUTO                                          */
    int window_index;         /* for BMC_WINDOW_FILE                                              */
    double window_center, window_width; /* for BMC_WINDOW_CENTER_WIDTH (width > 0)                */
} bmc_load_params;
BMC_API bmc_load_params bmc_load_default_params(void);

/* Like bmc_image_load / _memory, with frame, page and window choices. params NULL = defaults.
 * bmc_image_load(path, flags, out) equals bmc_image_load_ex with the default params and flags. */
BMC_API bmc_status bmc_image_load_ex(const char *path, const bmc_load_params *params, bmc_image *out);
BMC_API bmc_status bmc_image_load_memory_ex(const void *data, size_t size, const bmc_load_params *params,
                                    bmc_image *out);

/* What the decoder saw (for `biomedclip info-image`, frame enumeration). */
typedef struct bmc_image_info {
    char format[16];           /* "DICOM", "TIFF", "PNG", "JPEG", "GIF", "BMP", "TGA", "PNM"     */
    char mode[8];              /* PIL mode the pixels are in: "L", "RGB", "P", "I", ...          */
    int width, height;
    int bits_stored;           /* bits per sample in the file (1, 8, 12, 16, ...)                */
    int n_frames;              /* frames (DICOM) or pages (TIFF); 1 for single-image formats     */
    int frame;                 /* the frame / page that was loaded (0-based)                     */
    char photometric[32];      /* DICOM / TIFF photometric interpretation; "" otherwise          */
    char transfer_syntax[128]; /* DICOM: "UID (name)"; TIFF: compression name; "" otherwise      */
    char window[128];          /* the rule applied to reach 8 bits, e.g. "file window 0: C=40
                                  W=400 LINEAR", "min-max 12..3012", "scale 16->8 bit"; "" for
                                  8-bit sources                                                  */
} bmc_image_info;
/* Fill info for an image from bmc_image_load*; BMC_E_INVALID_ARG for caller-made views. */
BMC_API bmc_status bmc_image_get_info(const bmc_image *image, bmc_image_info *info);

/* Resize (shorter side to 224, PIL bicubic) and centre-crop an 8-bit image view.
 * rgb224 receives 224*224*3 bytes, row-major RGB. */
BMC_API bmc_status bmc_image_crop(const bmc_model *model, const bmc_image *image,
                                  unsigned char *rgb224);

/* The model input for an image: crop as above, then /255 and (x - mean) / std.
 * chw receives 3*224*224 floats in channel-major (CHW) order. */
BMC_API bmc_status bmc_image_preprocess(const bmc_model *model, const bmc_image *image, float *chw);

/* Encode n images (views or loaded ones, any size) into out[n * bmc_model_embed_dim(model)]. */
BMC_API bmc_status bmc_encode_image(bmc_ctx *ctx, const bmc_image *images, int n, float *out,
                                    int normalize);

/* Encode n preprocessed inputs chw[n * 3*224*224] (as bmc_image_preprocess writes them). */
BMC_API bmc_status bmc_encode_pixels(bmc_ctx *ctx, const float *chw, int n, float *out,
                                     int normalize);

/* ----------------------------------------------------------------------------------------- */
/* Similarity and zero-shot                                                                   */

/* Cosine similarities of n_img rows img[n_img * dim] with n_txt rows txt[n_txt * dim]:
 * out[i * n_txt + j] = dot(img_i, txt_j) / (max(|img_i|, 1e-12) max(|txt_j|, 1e-12)), computed
 * in double. dim is the embedding length, bmc_model_embed_dim(model) (BMC_EMBED_DIM for
 * BiomedCLIP; smaller for test models). Any two sets of embeddings may be compared (image-image,
 * text-text). n_img, n_txt, dim must be > 0 (BMC_E_INVALID_ARG otherwise). */
BMC_API bmc_status bmc_similarity(const float *img, int n_img, const float *txt, int n_txt, int dim,
                                  float *out);

/* For n_img image embeddings and n_txt text embeddings (rows of bmc_model_embed_dim(model)
 * floats, normalised or not): probs[i * n_txt + j] = softmax_j(bmc_model_logit_scale(model) *
 * cosine(img_i, txt_j)), the notebook's zero-shot probabilities (softmax in double). */
BMC_API bmc_status bmc_zero_shot_probs(const bmc_model *model, const float *img, int n_img,
                                       const float *txt, int n_txt, float *probs);

/* Convenience: decode one image file (BMC_DECODE_DEFAULT), encode it and the n texts (n > 0),
 * and write probs[n] as bmc_zero_shot_probs does. Allocates (n + 1) embeddings of scratch for
 * the call and frees it before returning. */
BMC_API bmc_status bmc_zero_shot_file(bmc_ctx *ctx, const char *path, const char *const *texts,
                                      int n,
                                      float *probs);

/* ----------------------------------------------------------------------------------------- */
/* Whole-slide images (docs/SLIDES.md)                                                        */
/*                                                                                            */
/* Read through OpenSlide (Aperio SVS, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle,     */
/* Ventana, generic tiled TIFF). A build without OpenSlide (make SLIDE=0) keeps the functions */
/* and bmc_slide_open fails with BMC_E_IMAGE saying so. Coordinates x, y are always level-0   */
/* pixels; sizes are pixels of the level read. A bmc_slide may be read from several threads   */
/* at once (OpenSlide handles are thread-safe); open and close are not concurrent with reads. */

typedef struct bmc_slide bmc_slide;

/* Open a slide. A file OpenSlide cannot read gets BMC_E_IMAGE with OpenSlide's own message
 * (or "not a slide OpenSlide recognises"). On failure *out is NULL. */
BMC_API bmc_status bmc_slide_open(const char *path, bmc_slide **out);
BMC_API void bmc_slide_close(bmc_slide *slide); /* NULL-safe */

BMC_API int bmc_slide_level_count(const bmc_slide *slide);
/* Size of a level in pixels (BMC_E_INVALID_ARG for a level out of range). */
BMC_API bmc_status bmc_slide_level_size(const bmc_slide *slide, int level, int64_t *width, int64_t *height);
/* Downsample of a level relative to level 0, as OpenSlide reports it (0 if out of range). */
BMC_API double bmc_slide_level_downsample(const bmc_slide *slide, int level);
/* Microns per level-0 pixel: openslide.mpp-x / openslide.mpp-y, else the TIFF resolution
 * (tiff.XResolution with tiff.ResolutionUnit centimeter or inch); 0 when the slide says
 * nothing (the caller must then be told the resolution). mpp_y may be NULL. */
BMC_API double bmc_slide_mpp(const bmc_slide *slide, double *mpp_y);
/* OpenSlide's vendor name ("aperio", "generic-tiff", ...); never NULL. */
BMC_API const char *bmc_slide_vendor(const bmc_slide *slide);

/* Read width x height pixels of `level`, the top-left at level-0 (x, y), into an RGB image
 * owned by the library (free with bmc_image_free). OpenSlide's premultiplied ARGB is
 * un-premultiplied exactly as openslide-python does (c * 255 / a, truncated; alpha 0 gives
 * black) and the alpha dropped, so the pixels equal
 * slide.read_region((x, y), level, (width, height)).convert("RGB") in Python. Regions outside
 * the slide read as black. width * height is limited to 2^28 pixels. */
BMC_API bmc_status bmc_slide_read_region(bmc_slide *slide, int level, int64_t x, int64_t y, int width,
                                 int height, bmc_image *out);

/* A tile grid: squares of tile_px pixels at mpp microns per pixel, stepping by tile_px -
 * overlap pixels, anchored at level-0 (0, 0). bmc_slide_tiling_init fills the derived fields
 * (docs/SLIDES.md states the rule, so a tile can be reproduced with openslide-python + PIL). */
typedef struct bmc_slide_tiling {
    /* in */
    int tile_px;         /* tile side in output pixels (e.g. 224)                             */
    double mpp;          /* target microns per pixel (e.g. 0.5, "20x")                        */
    int overlap;         /* output pixels shared by neighbouring tiles, 0 <= overlap < tile_px */
    double slide_mpp;    /* level-0 microns per pixel; 0: from the slide (bmc_slide_mpp)      */
    /* out */
    double level0_mpp;   /* the level-0 resolution used                                       */
    int64_t size0;       /* tile side in level-0 pixels: round(tile_px * mpp / level0_mpp)    */
    int64_t step0;       /* grid step in level-0 pixels: round((tile_px - overlap) * mpp / level0_mpp) */
    int level;           /* the level read: the coarsest whose downsample <= size0/tile_px * 1.01 */
    int region_px;       /* side of the region read at that level: round(size0 / downsample)  */
    int64_t cols, rows;  /* grid size: tiles lying wholly inside level 0                      */
} bmc_slide_tiling;

/* Fill the derived fields of *t (t->tile_px, mpp, overlap, slide_mpp set by the caller).
 * BMC_E_INVALID_ARG when the slide has no resolution and t->slide_mpp is 0. */
BMC_API bmc_status bmc_slide_tiling_init(const bmc_slide *slide, bmc_slide_tiling *t);

/* The tile whose level-0 top-left is (x, y): the region_px square of t->level read there, then
 * resized to tile_px x tile_px with PIL's bicubic (skipped when region_px == tile_px).
 * rgb receives tile_px * tile_px * 3 bytes. */
BMC_API bmc_status bmc_slide_read_tile(bmc_slide *slide, const bmc_slide_tiling *t, int64_t x, int64_t y,
                               unsigned char *rgb);

/* Tissue mask as CLAM finds it (docs/SLIDES.md): a thumbnail level (the coarsest level of at
 * most 64x downsample, coarser while it exceeds 2^26 pixels) read whole (a slide whose smallest
 * level is larger: that level averaged over f x f blocks, the smallest f that fits), HSV saturation
 * (OpenCV's 8-bit formula), 7x7 median blur, threshold: Otsu's when threshold < 0 (but at
 * least 8, CLAM's fixed default, so that a blank slide has no tissue), else `threshold` (0..255;
 * tissue where saturation > threshold); holes in the tissue smaller than CLAM's a_h (16 areas of
 * 512 x 512 level-0 pixels) are filled, larger ones stay holes. The mask is a
 * GRAY image (0 background, 255 tissue) owned by the library; *downsample_x/_y (may be NULL)
 * receive level-0 pixels per mask pixel, *used_threshold (may be NULL) the threshold applied.
 * thumbnail (may be NULL) receives the RGB thumbnail the mask was computed on. */
BMC_API bmc_status bmc_slide_tissue_mask(bmc_slide *slide, int threshold, bmc_image *mask,
                                 bmc_image *thumbnail, double *downsample_x, double *downsample_y,
                                 int *used_threshold);

/* The tiles of the grid to embed, in row-major order (y, then x), as level-0 top-lefts
 * coords[2 * i] = x, coords[2 * i + 1] = y. With a mask (from bmc_slide_tissue_mask), a tile is
 * kept when the fraction of tissue in the mask pixels it covers is >= min_tissue; mask NULL
 * keeps every tile. Writes at most cap tiles (coords may be NULL when cap is 0) and sets *n to
 * the number of tiles there are (call once with cap 0 to size the array). */
BMC_API bmc_status bmc_slide_tile_coords(const bmc_slide_tiling *t, const bmc_image *mask,
                                 double downsample_x, double downsample_y, double min_tissue,
                                 int64_t *coords, int64_t cap, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif /* BIOMEDCLIP_H */
