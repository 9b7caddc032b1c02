/* image.h - decoding and PIL-exact preprocessing of images (docs/IMAGE.md).
 *
 * The pipeline is open_clip's val transform as run on a PIL image:
 *   decode (keeping PIL's mode) -> Resize(shorter side to S, bicubic; nearest for '1'/'P')
 *   -> CenterCrop(S) -> convert('RGB') -> /255 -> (x - mean) / std
 * with S, mean and std from the model configuration. The mode matters because PIL resizes
 * before converting to RGB, so decoders report the mode PIL would open the file with. */
#ifndef BMC_IMAGE_H
#define BMC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "biomedclip.h"
#include "format.h"

/* Images of more pixels are refused (before any pixel memory is allocated): PIL's own
 * decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS). */
#define BMC__IMAGE_MAX_PIXELS 178956970LL

/* What PIL calls the image's mode; decides how it is resized. */
enum bmc__image_mode {
    BMC__MODE_1 = 1, /* bilevel: nearest, then 0/255                                      */
    BMC__MODE_L,     /* 8-bit gray: bicubic on one channel                                */
    BMC__MODE_I,     /* 16-bit gray (PIL 'I'): see BMC_DECODE_PIL_16BIT                   */
    BMC__MODE_P,     /* palette: nearest on indices, then palette lookup                  */
    BMC__MODE_LA,    /* gray + alpha: bicubic premultiplied, alpha dropped                */
    BMC__MODE_RGB,
    BMC__MODE_RGBA,  /* bicubic premultiplied, alpha dropped (no compositing)             */
    BMC__MODE_CMYK,  /* JPEG CMYK (libjpeg-turbo build): bicubic in CMYK, PIL's CMYK->RGB */
    BMC__MODE_I32,   /* PIL 'I' from 32-bit or signed TIFF samples: int32, PIL's resize, clipped */
    BMC__MODE_F,     /* PIL 'F' (float TIFF): float resize, then PIL's F->L (clip, truncate)  */
    BMC__MODE_PA,    /* palette + alpha (TIFF): bicubic on the indices (as PIL), then lookup  */
    BMC__MODE_LAB    /* CIELab (TIFF), as PIL holds it (L, a + 128, b + 128): bicubic, then
                        littleCMS Lab -> sRGB as Pillow's convert('RGB') (image_lab.c)       */
};

/* A decoded image in its PIL mode, as the format decoders produce it. */
typedef struct bmc__decoded {
    int width, height;
    int mode;                 /* enum bmc__image_mode */
    uint8_t *pix;             /* [height][width * bpp]: bpp 1 ('1' as 0/255, L, P indices), 2 (LA),
                                 3 (RGB), 4 (RGBA, CMYK as PIL holds it); NULL for mode I */
    uint16_t *pix16;          /* [height][width] PIL 'I' values (0..65535), mode I only */
    int32_t *pix32;           /* [height][width] mode I32 only */
    float *pixf;              /* [height][width] mode F only */
    uint8_t palette[256 * 3]; /* mode P: RGB per index; indices the file leaves unset keep the
                                 gray ramp (i, i, i), as PIL's palettes do */
    bmc_image_info info;      /* what the decoder saw; bmc__decode_any fills the fields a decoder
                                 leaves empty (format, mode, size, bits 8 / 16 / 1, one frame) */
} bmc__decoded;

/* The caller's choices (bmc_load_params) as the decoders see them. */
typedef struct bmc__decode_opts {
    int flags, frame, window, window_index; /* window: enum bmc_window_mode */
    double window_center, window_width;
} bmc__decode_opts;

/* Bytes per pixel of bmc__decoded.pix for a mode (0 for mode I). */
int bmc__mode_bpp(int mode);
/* "1", "L", "I", "P", "LA", "RGB", "RGBA", "CMYK", "I" (I32), "F", "PA", "LAB" ("?" otherwise). */
const char *bmc__mode_name(int mode);

/* Refuse absurd sizes, then allocate d->pix (or d->pix16 for mode I) and set the palette to the
 * gray ramp. `what` names the input and format for the message ("x.png: PNG"). */
bmc_status bmc__decoded_alloc(bmc__decoded *d, const char *what, int width, int height, int mode);
/* The size check alone (also used by stb/libjpeg paths before they allocate). */
bmc_status bmc__check_size(const char *what, long long width, long long height);
void bmc__decoded_free(bmc__decoded *d);

/* Format decoders: data[size] is the whole file; `name` names it in error messages. On failure
 * nothing stays allocated. */
bmc_status bmc__decode_png(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
bmc_status bmc__decode_jpeg(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
bmc_status bmc__decode_gif(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
bmc_status bmc__decode_bmp(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
bmc_status bmc__decode_tga(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
bmc_status bmc__decode_pnm(const uint8_t *data, size_t size, const char *name, bmc__decoded *out);
/* TIFF through libtiff (image_tiff.c): opts->frame picks the page; fills out->info (pages,
 * photometric, compression). Without libtiff (TIFF=0) it refuses the file naming the option. */
bmc_status bmc__decode_tiff(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                            bmc__decoded *out);
/* Pillow's 'LAB' -> 'RGB' (littleCMS; BMC_E_IMAGE naming LCMS=0 in a build without it): n pixels
 * of 3 bytes (L, a + 128, b + 128) into n RGB pixels. */
bmc_status bmc__lab_to_rgb(const uint8_t *lab, size_t n, uint8_t *rgb, const char *name);
/* Sniff the format and decode (BMC_E_IMAGE for unknown formats, naming what it looks like).
 * opts NULL = defaults. A frame past the file's last is refused. On success out->info is
 * complete. */
bmc_status bmc__decode_any(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                           bmc__decoded *out);
/* DICOM (lib/image_dicom.cc, DCMTK): Part 10 files and bare datasets, one frame (opts->frame),
 * stored values to 8 bits by the rule of docs/IMAGE.md; fills out->info itself. */
bmc_status bmc__decode_dicom(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                             bmc__decoded *out);
/* "DCMTK 3.6.7" (DICOM builds). */
const char *bmc__dicom_version(void);
/* True when a TGA header this plausible is at data (TGA has no magic number). */
int bmc__tga_plausible(const uint8_t *data, size_t size);

/* zlib inflate (stb_image's inflater) of the first out_size bytes of a stream into out, which
 * must have room for out_size + BMC__INFLATE_SLACK bytes. Returns 1 when the out_size bytes
 * are there (a longer stream is cut), 0 when the stream is corrupt or ends early. */
#define BMC__INFLATE_SLACK 512
int bmc__inflate(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size);
/* JPEG: the first SOF's components (1, 3, 4), or 0 when none, or -1 when a Huffman table (DHT)
 * declares more than 256 codes or overruns its segment (stb_image 2.27 writes past its arrays
 * on such a table; 2.28 refuses it); whether an EOI marker follows the first scan (a file
 * without one is truncated); and whether a scan uses a Huffman table that no earlier DHT
 * defined (stb 2.27 would decode with its uninitialised table memory and index past its
 * arrays). */
int bmc__jpeg_scan(const uint8_t *data, size_t size, int *components, int *width, int *height,
                   int *has_eoi, int *undefined_table);
/* Which JPEG decoder this build uses: 0 stb_image (default), 1 libjpeg-turbo (JPEG=turbo). */
int bmc__jpeg_backend(void);
#ifdef BMC_WITH_LIBJPEG
bmc_status bmc__decode_jpeg_turbo(const uint8_t *data, size_t size, const char *name,
                                  bmc__decoded *out);
#endif

/* ---- resampling (image_resize.c): PIL 9.4's Resample.c / Geometry.c, computed only for the
 * output window [x0, x0 + cw) x [y0, y0 + ch) of the full out_w x out_h result. ---------- */

/* Bicubic (antialiased when reducing), 8-bit, `chans` interleaved channels (1, 3 or 4).
 * premultiply: treat the 4 channels as RGBA and resize them premultiplied (PIL's RGBa path),
 * writing the unpremultiplied result (PIL's RGBa -> RGBA). dst is [ch][cw * chans]. */
bmc_status bmc__resize_bicubic_u8(const uint8_t *src, int w, int h, size_t stride, int chans,
                                  int premultiply, int out_w, int out_h, int x0, int y0, int cw,
                                  int ch, uint8_t *dst);
/* Which code runs the two 8-bit passes: bmc__resize_bicubic_u8 takes AVX2 at the avx2 level and
 * above, SSE2 below it (every x86-64 CPU), the scalar loops on other architectures. All three give
 * Pillow's bytes. */
typedef enum bmc__resize_path {
    BMC__RESIZE_SCALAR = 0, /* the plain loops, as Pillow's Resample.c                            */
    BMC__RESIZE_SSE2 = 1,   /* image_resize_sse2.c: only where bmc__resize_have_sse2()            */
    BMC__RESIZE_AVX2 = 2    /* image_resize_avx2.c: only where cpu.c reports AVX2                 */
} bmc__resize_path;
/* The same with the passes of `path` (enum bmc__resize_path), whatever level runs: the tests
 * compare them. A path this build lacks (SSE2 without __SSE2__) is refused (BMC_E_INTERNAL). */
bmc_status bmc__resize_bicubic_u8_at(int path, const uint8_t *src, int w, int h, size_t stride, int chans,
                                     int premultiply, int out_w, int out_h, int x0, int y0, int cw, int ch,
                                     uint8_t *dst);
/* The AVX2 passes (image_resize_avx2.c). The horizontal one works from coefficient vectors made
 * once per resize: bmc__resize_h_avx2_coef_bytes(n, ksize, chans) bytes, filled from the n x ksize
 * fixed-point taps by bmc__resize_h_avx2_coef. A row: n outputs of `chans` bytes from a row of w
 * pixels, bounds[2j] its first pixel and bounds[2j + 1] the count; pad is scratch of
 * (ksize + 16) * chans + 16 bytes.
 * The vertical one: out[j] for j < row_bytes from cnt rows at src, row_bytes apart, taps k. */
size_t bmc__resize_h_avx2_coef_bytes(int n, int ksize, int chans);
void bmc__resize_h_avx2_coef(int n, int ksize, const int32_t *fixed, int chans, void *coef);
void bmc__resize_h_avx2_row(const uint8_t *in, int w, int chans, int n, int ksize, const int *bounds,
                            const void *coef, uint8_t *out, uint8_t *pad);
void bmc__resize_v_avx2_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out);
/* The SSE2 passes (image_resize_sse2.c), the same interface: coefficients of
 * bmc__resize_h_sse2_coef_bytes(n, ksize, chans) bytes, the same pad; the vertical one also takes
 * scratch of bmc__resize_v_sse2_scratch_bytes(ksize) bytes for its coefficient pairs. Compiled
 * without SSE2 (not x86) they are stubs and bmc__resize_have_sse2() is 0. */
int bmc__resize_have_sse2(void);
size_t bmc__resize_h_sse2_coef_bytes(int n, int ksize, int chans);
void bmc__resize_h_sse2_coef(int n, int ksize, const int32_t *fixed, int chans, void *coef);
void bmc__resize_h_sse2_row(const uint8_t *in, int w, int chans, int n, int ksize, const int *bounds,
                            const void *coef, uint8_t *out, uint8_t *pad);
size_t bmc__resize_v_sse2_scratch_bytes(int ksize);
void bmc__resize_v_sse2_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out,
                            void *scratch);
/* Bicubic on PIL 'I' values (double coefficients, rounded int32 between passes), from 16-bit
 * (src16) or int32 (src32) samples. dst [ch][cw]. */
bmc_status bmc__resize_bicubic_i32(const uint16_t *src16, const int32_t *src32, int w, int h, int out_w,
                                   int out_h, int x0, int y0, int cw, int ch, int32_t *dst);
/* The same on PIL 'F' values (float32 between passes). */
bmc_status bmc__resize_bicubic_f32(const float *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw,
                                   int ch, float *dst);
/* Nearest neighbour (PIL's ImagingScaleAffine), `bpp` bytes per pixel. dst [ch][cw * bpp]. */
bmc_status bmc__resize_nearest(const uint8_t *src, int w, int h, size_t stride, int bpp, int out_w,
                               int out_h, int x0, int y0, int cw, int ch, uint8_t *dst);

/* torchvision Resize(size) for a PIL image: the shorter side becomes `size`, the longer one
 * int(size * long / short) (truncated). */
void bmc__resize_dims(int w, int h, int size, int *out_w, int *out_h);
/* torchvision CenterCrop offset: int(round((in - crop) / 2.0)), round half to even. */
int bmc__crop_offset(int in, int crop);

/* Make a library-owned bmc_image (freed by bmc_image_free) of a decoded image; consumes d,
 * also on failure. Used by the readers outside image.c (slides). */
bmc_status bmc__image_adopt(bmc__decoded *d, const char *name, bmc_image *out);

/* The whole-slide reader of this build ("OpenSlide-3.4.1", or "none" with make SLIDE=0). */
const char *bmc__slide_backend(void);

/* ---- the pipeline (image.c) --------------------------------------------------------------- */

/* Check a caller's view or a loaded image (BMC_E_INVALID_ARG naming the bad field). */
bmc_status bmc__image_check(const bmc_image *img, const char *fn);
/* Resize + centre-crop + convert('RGB'): rgb receives S*S*3 bytes, S = cfg->image_size. */
bmc_status bmc__image_crop(const bmc__config *cfg, const bmc_image *img, unsigned char *rgb);
/* The model input: the crop, then float(x) / 255, then (x - mean) / std, as CHW floats
 * chw[3 * S * S]. */
bmc_status bmc__image_to_input(const bmc__config *cfg, const bmc_image *img, float *chw);
/* The PIL mode of an image: loaded ones report the file's mode, views GRAY 'L', RGB, RGBA. */
int bmc__image_mode(const bmc_image *img);

#endif /* BMC_IMAGE_H */
