/* image.c - the public image functions: load (file / memory), free, crop, preprocess.
 *
 * A loaded image keeps the mode PIL would give the file (image.h) next to its public view, so
 * that the crop resizes as open_clip's transform does on a PIL image:
 *   '1', 'P'     nearest (a palette is expanded first: nearest picks whole pixels, so resizing
 *                the expanded colours equals resizing the indices and looking them up after)
 *   'L'          bicubic, one channel
 *   'LA', 'RGBA' bicubic on premultiplied RGBa, alpha dropped afterwards (no compositing)
 *   'I'          16-bit gray: scaled to 8 bits by default; BMC_DECODE_PIL_16BIT keeps PIL's
 *                'I' values, resizes them as PIL does and clips to 255 (almost white)
 *   'CMYK'       bicubic in CMYK, then PIL's CMYK -> RGB
 * Caller views are GRAY = 'L', RGB, RGBA = 'RGBA'. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "image.h"
#include "model.h"

#define IMAGE_MAGIC 0x42494d47u /* "BIMG" */
#define MAX_FILE_BYTES ((size_t)INT_MAX)

typedef struct bmc__image_internal {
    uint32_t magic;
    int mode;            /* enum bmc__image_mode of the file */
    int flags;           /* BMC_DECODE_* used at load */
    int width, height, format, stride;
    uint8_t *view;       /* [height][stride] the public pixels */
    uint16_t *pix16;     /* [height][width] PIL 'I' values (mode I with BMC_DECODE_PIL_16BIT) */
    uint8_t *cmyk;       /* [height][width * 4] PIL's CMYK (mode CMYK) */
    int32_t *pix32;      /* [height][width] PIL 'I' values (mode I32, default window) */
    float *pixf;         /* [height][width] PIL 'F' values (mode F, default window) */
    uint8_t *pa;         /* [height][width * 2] index + alpha (mode PA) */
    uint8_t *lab;        /* [height][width * 3] PIL's LAB bytes (mode LAB) */
    bmc_image_info info; /* what the decoder saw (bmc_image_get_info) */
} bmc__image_internal;

/* ---- loading ------------------------------------------------------------------------------- */

static bmc_status read_file(const char *path, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bmc__fail(BMC_E_IO, "%s: cannot open image: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return bmc__fail(BMC_E_IO, "%s: cannot stat image: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return bmc__fail(BMC_E_IO, "%s: is a directory, not an image file", path);
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > MAX_FILE_BYTES) {
        close(fd);
        return bmc__fail(BMC_E_IMAGE, "%s: image file of %lld bytes is too large (at most %zu)", path,
                         (long long)sb.st_size, MAX_FILE_BYTES);
    }
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 1 << 16, n = 0;
    uint8_t *buf = bmc__malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return bmc__fail(BMC_E_NOMEM, "%s: out of memory reading the image file", path);
        }
        if (n == cap) { /* a pipe, or a file that grew */
            if (cap > MAX_FILE_BYTES) {
                bmc__free(buf);
                close(fd);
                return bmc__fail(BMC_E_IMAGE, "%s: image file is too large (over %zu bytes)", path, MAX_FILE_BYTES);
            }
            uint8_t *nb = bmc__realloc(buf, cap * 2);
            if (!nb) bmc__free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            bmc__free(buf);
            close(fd);
            return bmc__fail(BMC_E_IO, "%s: cannot read image: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = n;
    return BMC_OK;
}

/* A sample of a gray image held wider than 8 bits: 16-bit 'I', 32-bit 'I' or 'F'. */
static inline double wide_at(const bmc__decoded *d, size_t i) {
    return d->pix16 ? (double)d->pix16[i] : d->pix32 ? (double)d->pix32[i] : (double)d->pixf[i];
}

/* Gray held wider than 8 bits (16-bit PNG/PGM/TIFF 'I', TIFF 32-bit 'I' and 'F') to 8 bits with a
 * window chosen by the caller (docs/IMAGE.md, "16-bit gray"): min-max of the image, or a given
 * centre / width, LINEAR as DICOM PS3.3 C.11.2.1.2.1 (the DICOM decoder's rule, so that --window
 * means the same for every format); y in [0, 1] becomes floor(255 y + 0.5). NaN becomes 0 and is
 * left out of the min-max, as are infinities. */
static bmc_status window_wide(const bmc__decoded *d, size_t n, const bmc__decode_opts *o, const char *name,
                              uint8_t *dst, char *rule, size_t rule_size) {
    if (o->window == BMC_WINDOW_MINMAX) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double v = wide_at(d, i);
            if (isfinite(v)) lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
        if (!(lo <= hi)) lo = hi = 0; /* no finite sample */
        for (size_t i = 0; i < n; i++) {
            double v = wide_at(d, i);
            double y = isnan(v) || v <= lo ? 0 : v >= hi ? (hi > lo ? 1 : 0) : (v - lo) / (hi - lo);
            dst[i] = (uint8_t)floor(255 * y + 0.5);
        }
        snprintf(rule, rule_size, "min-max %.9g..%.9g", lo, hi);
        return BMC_OK;
    }
    if (o->window == BMC_WINDOW_CENTER_WIDTH) {
        double c = o->window_center, w = o->window_width;
        if (!(w >= 1))
            return bmc__fail(BMC_E_IMAGE, "%s: window width %g (LINEAR needs width >= 1)", name, w);
        for (size_t i = 0; i < n; i++) {
            double x = wide_at(d, i), y;
            if (isnan(x) || x <= c - 0.5 - (w - 1) / 2) y = 0;
            else if (x > c - 0.5 + (w - 1) / 2) y = 1;
            else y = (x - (c - 0.5)) / (w - 1) + 0.5;
            double q = floor(255 * y + 0.5);
            dst[i] = (uint8_t)(q <= 0 ? 0 : q >= 255 ? 255 : q);
        }
        snprintf(rule, rule_size, "given window C=%g W=%g LINEAR", c, w);
        return BMC_OK;
    }
    return bmc__fail(BMC_E_IMAGE, "%s: a window from the file was asked for, but only DICOM files hold windows "
                     "(use min-max or a centre and width)", name);
}

/* Convert.c f2l: clipped to 0..255, then truncated (NaN: 0, what x86 gives PIL's cast). */
static inline uint8_t f2l(float v) { return v >= 255.0f ? 255 : v > 0.0f ? (uint8_t)v : 0; }

/* Build the public view (and what the crop needs) from a decoded image; consumes d. */
static bmc_status finish(bmc__decoded *d, const bmc__decode_opts *o, const char *name, bmc_image *out) {
    int flags = o->flags;
    bmc__image_internal *in = bmc__calloc(1, sizeof *in);
    size_t n = (size_t)d->width * d->height;
    int format = d->mode == BMC__MODE_P || d->mode == BMC__MODE_PA || d->mode == BMC__MODE_RGB ||
                 d->mode == BMC__MODE_CMYK || d->mode == BMC__MODE_LAB ? BMC_PIXEL_RGB
               : d->mode == BMC__MODE_LA || d->mode == BMC__MODE_RGBA ? BMC_PIXEL_RGBA : BMC_PIXEL_GRAY;
    uint8_t *view = NULL;
    if (in) {
        if (d->mode == BMC__MODE_1 || d->mode == BMC__MODE_L || d->mode == BMC__MODE_RGB || d->mode == BMC__MODE_RGBA) {
            view = d->pix; /* already the view */
            d->pix = NULL;
        } else {
            view = bmc__malloc(n * format);
        }
    }
    if (!in || !view) {
        bmc__free(in);
        bmc__decoded_free(d);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for the %d x %d image", name, d->width, d->height);
    }
    in->info = d->info;
    switch (d->mode) {
    case BMC__MODE_I: case BMC__MODE_I32: case BMC__MODE_F:
        if (o->window != BMC_WINDOW_AUTO) { /* a window chosen by the caller: 8 bits, no PIL 'I' */
            bmc_status st = window_wide(d, n, o, name, view, in->info.window, sizeof in->info.window);
            if (st != BMC_OK) {
                bmc__free(view);
                bmc__free(in);
                bmc__decoded_free(d);
                return st;
            }
            break;
        }
        if (d->mode == BMC__MODE_I32) { /* PIL's 'I': resized as int32, clipped by convert('RGB') */
            for (size_t i = 0; i < n; i++)
                view[i] = (uint8_t)(d->pix32[i] <= 0 ? 0 : d->pix32[i] >= 255 ? 255 : d->pix32[i]);
            snprintf(in->info.window, sizeof in->info.window, "PIL clip (values outside 0..255 clipped)");
            in->pix32 = d->pix32;
            d->pix32 = NULL;
            break;
        }
        if (d->mode == BMC__MODE_F) { /* PIL's 'F': resized as float, then F -> L */
            for (size_t i = 0; i < n; i++) view[i] = f2l(d->pixf[i]);
            snprintf(in->info.window, sizeof in->info.window, "PIL F->L (clipped to 0..255, truncated)");
            in->pixf = d->pixf;
            d->pixf = NULL;
            break;
        }
        /* 16-bit: PIL clips 'I' to 255 in convert('RGB'); by default scale to 8 bits */
        if (!in->info.window[0])
            snprintf(in->info.window, sizeof in->info.window, "%s",
                     (flags & BMC_DECODE_PIL_16BIT) ? "PIL clip 16->8 bit (values over 255 become 255)"
                                                    : "scale 16->8 bit (v * 255 / 65535)");
        for (size_t i = 0; i < n; i++) {
            unsigned v = d->pix16[i];
            view[i] = (uint8_t)((flags & BMC_DECODE_PIL_16BIT) ? (v > 255 ? 255 : v) : (v * 255u + 32767u) / 65535u);
        }
        if (flags & BMC_DECODE_PIL_16BIT) {
            in->pix16 = d->pix16;
            d->pix16 = NULL;
        }
        break;
    case BMC__MODE_P:
        for (size_t i = 0; i < n; i++) memcpy(view + 3 * i, d->palette + 3 * d->pix[i], 3);
        break;
    case BMC__MODE_LAB: { /* Pillow's convert('RGB'): littleCMS */
        bmc_status st = bmc__lab_to_rgb(d->pix, n, view, name);
        if (st != BMC_OK) {
            bmc__free(view);
            bmc__free(in);
            bmc__decoded_free(d);
            return st;
        }
        in->lab = d->pix;
        d->pix = NULL;
        break;
    }
    case BMC__MODE_PA: /* Convert.c pa2rgb: the index's colour, alpha dropped */
        for (size_t i = 0; i < n; i++) memcpy(view + 3 * i, d->palette + 3 * d->pix[2 * i], 3);
        in->pa = d->pix;
        d->pix = NULL;
        break;
    case BMC__MODE_LA:
        for (size_t i = 0; i < n; i++) {
            view[4 * i] = view[4 * i + 1] = view[4 * i + 2] = d->pix[2 * i];
            view[4 * i + 3] = d->pix[2 * i + 1];
        }
        break;
    case BMC__MODE_CMYK: /* Convert.c cmyk2rgb */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *c = d->pix + 4 * i;
            int nk = 255 - c[3];
            for (int k = 0; k < 3; k++) {
                int tmp = c[k] * nk + 128, v = nk - (((tmp >> 8) + tmp) >> 8);
                view[3 * i + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        in->cmyk = d->pix;
        d->pix = NULL;
        break;
    }
    in->magic = IMAGE_MAGIC;
    in->mode = d->mode;
    in->flags = flags;
    in->width = d->width;
    in->height = d->height;
    in->format = format;
    in->stride = d->width * format;
    in->view = view;
    bmc__decoded_free(d);
    out->width = in->width;
    out->height = in->height;
    out->format = (bmc_pixel_format)format;
    out->stride = in->stride;
    out->pixels = view;
    out->internal_ = in;
    return BMC_OK;
}

bmc_status bmc__image_adopt(bmc__decoded *d, const char *name, bmc_image *out) {
    const bmc__decode_opts defaults = {.flags = BMC_DECODE_DEFAULT, .window = BMC_WINDOW_AUTO};
    return finish(d, &defaults, name, out);
}

static bmc_status load_buffer(const uint8_t *data, size_t size, const bmc__decode_opts *o, const char *name,
                              bmc_image *out) {
    bmc__decoded d;
    bmc_status st = bmc__decode_any(data, size, name, o, &d);
    if (st != BMC_OK) return st;
    return finish(&d, o, name, out);
}

bmc_load_params bmc_load_default_params(void) {
    bmc_load_params p;
    memset(&p, 0, sizeof p);
    p.flags = BMC_DECODE_DEFAULT;
    p.window = BMC_WINDOW_AUTO;
    return p;
}

/* Check the arguments and turn the public params into the decoders' options. */
static bmc_status check_load_args(const char *fn, const void *src, const bmc_load_params *params, bmc_image *out,
                                  bmc__decode_opts *o) {
    if (out) memset(out, 0, sizeof *out);
    if (!src) return bmc__fail(BMC_E_INVALID_ARG, "%s: input is NULL", fn);
    if (!out) return bmc__fail(BMC_E_INVALID_ARG, "%s: out is NULL", fn);
    bmc_load_params p = params ? *params : bmc_load_default_params();
    if (p.flags & ~BMC_DECODE_PIL_16BIT) return bmc__fail(BMC_E_INVALID_ARG, "%s: unknown flags 0x%x", fn, p.flags);
    if (p.frame < 0) return bmc__fail(BMC_E_INVALID_ARG, "%s: frame %d (frames are numbered from 0)", fn, p.frame);
    switch (p.window) {
    case BMC_WINDOW_AUTO: case BMC_WINDOW_MINMAX: break;
    case BMC_WINDOW_FILE:
        if (p.window_index < 0)
            return bmc__fail(BMC_E_INVALID_ARG, "%s: window_index %d (file windows are numbered from 0)", fn,
                             p.window_index);
        break;
    case BMC_WINDOW_CENTER_WIDTH:
        if (!isfinite(p.window_center) || !isfinite(p.window_width) || !(p.window_width > 0))
            return bmc__fail(BMC_E_INVALID_ARG, "%s: window centre %g, width %g (want finite values, width > 0)",
                             fn, p.window_center, p.window_width);
        break;
    default:
        return bmc__fail(BMC_E_INVALID_ARG, "%s: unknown window mode %d", fn, (int)p.window);
    }
    o->flags = p.flags;
    o->frame = p.frame;
    o->window = (int)p.window;
    o->window_index = p.window_index;
    o->window_center = p.window_center;
    o->window_width = p.window_width;
    return BMC_OK;
}

bmc_status bmc_image_load_ex(const char *path, const bmc_load_params *params, bmc_image *out) {
    bmc__decode_opts o;
    bmc_status st = check_load_args("bmc_image_load", path, params, out, &o);
    if (st != BMC_OK) return st;
    uint8_t *data;
    size_t size;
    if ((st = read_file(path, &data, &size)) != BMC_OK) return st;
    st = load_buffer(data, size, &o, path, out);
    bmc__free(data);
    return st;
}

bmc_status bmc_image_load_memory_ex(const void *data, size_t size, const bmc_load_params *params, bmc_image *out) {
    bmc__decode_opts o;
    bmc_status st = check_load_args("bmc_image_load_memory", data, params, out, &o);
    if (st != BMC_OK) return st;
    return load_buffer(data, size, &o, "image in memory", out);
}

bmc_status bmc_image_load(const char *path, int flags, bmc_image *out) {
    bmc_load_params p = bmc_load_default_params();
    p.flags = flags;
    return bmc_image_load_ex(path, &p, out);
}

bmc_status bmc_image_load_memory(const void *data, size_t size, int flags, bmc_image *out) {
    bmc_load_params p = bmc_load_default_params();
    p.flags = flags;
    return bmc_image_load_memory_ex(data, size, &p, out);
}

static bmc__image_internal *internal_of(const bmc_image *img) {
    bmc__image_internal *in = img ? (bmc__image_internal *)img->internal_ : NULL;
    return in && in->magic == IMAGE_MAGIC ? in : NULL;
}

bmc_status bmc_image_get_info(const bmc_image *image, bmc_image_info *info) {
    if (info) memset(info, 0, sizeof *info);
    if (!image || !info) return bmc__fail(BMC_E_INVALID_ARG, "bmc_image_get_info: %s is NULL", image ? "info" : "image");
    const bmc__image_internal *in = internal_of(image);
    if (!in) return bmc__fail(BMC_E_INVALID_ARG, "bmc_image_get_info: not an image from bmc_image_load* (a caller's "
                              "view has no file information)");
    *info = in->info;
    return BMC_OK;
}

void bmc_image_free(bmc_image *image) {
    bmc__image_internal *in = internal_of(image);
    if (!in) return; /* NULL, or a caller's view */
    bmc__free(in->view);
    bmc__free(in->pix16);
    bmc__free(in->cmyk);
    bmc__free(in->pix32);
    bmc__free(in->pixf);
    bmc__free(in->pa);
    bmc__free(in->lab);
    in->magic = 0;
    bmc__free(in);
    memset(image, 0, sizeof *image);
}

/* ---- checks -------------------------------------------------------------------------------- */

bmc_status bmc__image_check(const bmc_image *img, const char *fn) {
    if (!img) return bmc__fail(BMC_E_INVALID_ARG, "%s: image is NULL", fn);
    if (img->internal_) {
        const bmc__image_internal *in = internal_of(img);
        if (!in) return bmc__fail(BMC_E_INVALID_ARG, "%s: image.internal_ is set but is not a loaded image "
                                  "(set it to NULL in your own views)", fn);
        if (img->pixels != in->view || img->width != in->width || img->height != in->height ||
            (int)img->format != in->format || img->stride != in->stride)
            return bmc__fail(BMC_E_INVALID_ARG, "%s: a loaded image's fields were changed (make a view with "
                             "internal_ = NULL instead)", fn);
        return BMC_OK;
    }
    if (!img->pixels) return bmc__fail(BMC_E_INVALID_ARG, "%s: image.pixels is NULL", fn);
    if (img->format != BMC_PIXEL_GRAY && img->format != BMC_PIXEL_RGB && img->format != BMC_PIXEL_RGBA)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: image.format %d (want BMC_PIXEL_GRAY, _RGB or _RGBA)", fn,
                         (int)img->format);
    if (img->width <= 0 || img->height <= 0)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: image size %d x %d (both must be > 0)", fn, img->width, img->height);
    if ((long long)img->stride < (long long)img->width * img->format)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: image.stride %d < width %d * %d bytes per pixel", fn, img->stride,
                         img->width, (int)img->format);
    if (img->width > BMC_IMAGE_MAX_SIDE || img->height > BMC_IMAGE_MAX_SIDE)
        return bmc__fail(BMC_E_IMAGE, "%s: image of %d x %d pixels is too large (a side may be at most %d)", fn,
                         img->width, img->height, BMC_IMAGE_MAX_SIDE);
    return BMC_OK;
}

int bmc__image_mode(const bmc_image *img) {
    const bmc__image_internal *in = internal_of(img);
    if (in) return in->mode;
    if (!img) return 0;
    return img->format == BMC_PIXEL_GRAY ? BMC__MODE_L : img->format == BMC_PIXEL_RGB ? BMC__MODE_RGB : BMC__MODE_RGBA;
}

/* ---- the crop ------------------------------------------------------------------------------ */

enum { K_U8, K_NEAREST, K_I32, K_CMYK, K_F32, K_PA, K_LAB };

static bmc_status check_config(const bmc__config *cfg, const char *fn) {
    if (!cfg) return bmc__fail(BMC_E_INVALID_ARG, "%s: configuration is NULL", fn);
    if (cfg->image_size < 1 || cfg->image_size > 4096)
        return bmc__fail(BMC_E_FORMAT, "%s: model image_size %u (want 1..4096)", fn, cfg->image_size);
    return BMC_OK;
}

bmc_status bmc__image_crop(const bmc__config *cfg, const bmc_image *img, unsigned char *rgb) {
    const char *fn = "bmc_image_crop";
    bmc_status st = check_config(cfg, fn);
    if (st != BMC_OK || (st = bmc__image_check(img, fn)) != BMC_OK) return st;
    if (!rgb) return bmc__fail(BMC_E_INVALID_ARG, "%s: output buffer is NULL", fn);
    const bmc__image_internal *in = internal_of(img);
    int S = (int)cfg->image_size, w = img->width, h = img->height;
    int mode = bmc__image_mode(img);

    /* torchvision Resize(S) then CenterCrop(S): the window of the resized image we need */
    int nw, nh;
    bmc__resize_dims(w, h, S, &nw, &nh);
    int resize = nw != w || nh != h;

    /* what gets resized: the view, PIL's 'I' / 'F' values, the CMYK samples, or the PA indices
     * (PIL resizes 'PA' bicubically, indices and all; unresized, the palette view is PIL's) */
    int kind = (mode == BMC__MODE_1 || mode == BMC__MODE_P) ? K_NEAREST
             : in && (in->pix16 || in->pix32) ? K_I32 : in && in->pixf ? K_F32 : in && in->cmyk ? K_CMYK
             : in && in->pa && resize ? K_PA : in && in->lab && resize ? K_LAB : K_U8;
    const uint8_t *src = img->pixels;
    size_t stride = (size_t)img->stride;
    int chans = (int)img->format;
    uint8_t *indices = NULL;
    if (kind == K_CMYK) {
        src = in->cmyk;
        chans = 4;
        stride = (size_t)w * 4;
    } else if (kind == K_LAB) { /* resized in LAB (3 bands, none premultiplied), converted after */
        src = in->lab;
        chans = 3;
        stride = (size_t)w * 3;
    } else if (kind == K_PA) {
        indices = bmc__malloc((size_t)w * h);
        if (!indices) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for the %d x %d palette indices", fn, w, h);
        for (size_t i = 0; i < (size_t)w * h; i++) indices[i] = in->pa[2 * i];
        src = indices;
        chans = 1;
        stride = (size_t)w;
    }

    int cw = nw < S ? nw : S, ch = nh < S ? nh : S;
    int x0 = nw < S ? 0 : bmc__crop_offset(nw, S), y0 = nh < S ? 0 : bmc__crop_offset(nh, S);
    int px = nw < S ? (S - nw) / 2 : 0, py = nh < S ? (S - nh) / 2 : 0; /* zero padding */
    int rbpp = kind == K_I32 || kind == K_F32 ? 4 : chans;
    uint8_t *region = bmc__malloc((size_t)cw * ch * rbpp);
    if (!region) {
        bmc__free(indices);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for the %d x %d crop", fn, cw, ch);
    }

    if (!resize && kind != K_I32 && kind != K_F32) {
        for (int y = 0; y < ch; y++)
            memcpy(region + (size_t)y * cw * chans, src + (size_t)(y0 + y) * stride + (size_t)x0 * chans,
                   (size_t)cw * chans);
    } else if (kind == K_NEAREST) {
        st = bmc__resize_nearest(src, w, h, stride, chans, nw, nh, x0, y0, cw, ch, region);
    } else if (kind == K_I32) {
        st = bmc__resize_bicubic_i32(in->pix16, in->pix32, w, h, nw, nh, x0, y0, cw, ch, (int32_t *)region);
    } else if (kind == K_F32) {
        st = bmc__resize_bicubic_f32(in->pixf, w, h, nw, nh, x0, y0, cw, ch, (float *)region);
    } else {
        st = bmc__resize_bicubic_u8(src, w, h, stride, chans, chans == 4 && kind == K_U8, nw, nh, x0, y0, cw,
                                    ch, region);
    }
    bmc__free(indices);
    if (st == BMC_OK && kind == K_LAB) { /* the resized LAB window to RGB, in place */
        uint8_t *lab_rgb = bmc__malloc((size_t)cw * ch * 3);
        st = lab_rgb ? bmc__lab_to_rgb(region, (size_t)cw * ch, lab_rgb, fn)
                     : bmc__fail(BMC_E_NOMEM, "%s: out of memory for the %d x %d crop", fn, cw, ch);
        if (st == BMC_OK) memcpy(region, lab_rgb, (size_t)cw * ch * 3);
        bmc__free(lab_rgb);
    }
    if (st != BMC_OK) {
        bmc__free(region);
        return st;
    }

    /* convert('RGB') into the S x S output: one loop per kind, so that the common cases are
     * plain copies */
    memset(rgb, 0, (size_t)S * S * 3);
    for (int y = 0; y < ch; y++) {
        uint8_t *o = rgb + ((size_t)(py + y) * S + px) * 3;
        const uint8_t *r = region + (size_t)y * cw * rbpp;
        if (kind == K_I32) { /* Convert.c i2rgb */
            for (int x = 0; x < cw; x++, o += 3, r += 4) {
                int32_t v;
                memcpy(&v, r, 4);
                o[0] = o[1] = o[2] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
            }
        } else if (kind == K_F32) { /* convert('RGB') of 'F' goes through 'L' */
            for (int x = 0; x < cw; x++, o += 3, r += 4) {
                float v;
                memcpy(&v, r, 4);
                o[0] = o[1] = o[2] = f2l(v);
            }
        } else if (kind == K_CMYK) { /* Convert.c cmyk2rgb */
            for (int x = 0; x < cw; x++, o += 3, r += 4) {
                int nk = 255 - r[3];
                for (int k = 0; k < 3; k++) {
                    int tmp = r[k] * nk + 128, v = nk - (((tmp >> 8) + tmp) >> 8);
                    o[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        } else if (chans == 1) {
            /* 'L' replicated; '1' as 0 / 255; 'PA': Pillow 9.4 resizes it into a new core image
             * whose palette is the default gray ramp (Image._new copies the Python palette
             * without applying it), so convert('RGB') shows the resized indices as gray */
            int bilevel = mode == BMC__MODE_1 && kind != K_PA;
            for (int x = 0; x < cw; x++, o += 3, r++) o[0] = o[1] = o[2] = bilevel ? (r[0] ? 255 : 0) : r[0];
        } else if (chans == 3) {
            memcpy(o, r, (size_t)cw * 3);
        } else {
            for (int x = 0; x < cw; x++, o += 3, r += chans) o[0] = r[0], o[1] = r[1], o[2] = r[2]; /* alpha dropped, no compositing */
        }
    }
    bmc__free(region);
    return BMC_OK;
}

bmc_status bmc__image_to_input(const bmc__config *cfg, const bmc_image *img, float *chw) {
    const char *fn = "bmc_image_preprocess";
    bmc_status st = check_config(cfg, fn);
    if (st != BMC_OK) return st;
    if (!chw) return bmc__fail(BMC_E_INVALID_ARG, "%s: output buffer is NULL", fn);
    for (int c = 0; c < 3; c++)
        if (!isfinite(cfg->image_std[c]) || cfg->image_std[c] == 0.0f || !isfinite(cfg->image_mean[c]))
            return bmc__fail(BMC_E_FORMAT, "%s: model image_mean/std[%d] = %g/%g is unusable", fn, c,
                             cfg->image_mean[c], cfg->image_std[c]);
    size_t S = cfg->image_size, plane = S * S;
    uint8_t *rgb = bmc__malloc(plane * 3);
    if (!rgb) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for the crop", fn);
    if ((st = bmc__image_crop(cfg, img, rgb)) != BMC_OK) {
        bmc__free(rgb);
        return st;
    }
    /* torchvision to_tensor: float32(x) / 255; Normalize: sub_(mean) then div_(std), each an
     * IEEE float32 operation (not a multiply by 1/std, not fused). The result depends only on
     * the byte and the channel: a table of the 3 x 256 values computed that way */
    float table[3][256];
    for (int c = 0; c < 3; c++) {
        float mean = cfg->image_mean[c], std = cfg->image_std[c];
        for (int x = 0; x < 256; x++) {
            float v = (float)x / 255.0f;
            v = v - mean;
            table[c][x] = v / std;
        }
    }
    for (size_t i = 0; i < plane; i++) {
        chw[i] = table[0][rgb[i * 3]];
        chw[plane + i] = table[1][rgb[i * 3 + 1]];
        chw[2 * plane + i] = table[2][rgb[i * 3 + 2]];
    }
    bmc__free(rgb);
    return BMC_OK;
}

/* ---- public wrappers over the model's configuration ------------------------------------------ */

bmc_status bmc_image_crop(const bmc_model *model, const bmc_image *image, unsigned char *rgb224) {
    if (!model) return bmc__fail(BMC_E_INVALID_ARG, "bmc_image_crop: model is NULL");
    return bmc__image_crop(&model->config, image, rgb224);
}

bmc_status bmc_image_preprocess(const bmc_model *model, const bmc_image *image, float *chw) {
    if (!model) return bmc__fail(BMC_E_INVALID_ARG, "bmc_image_preprocess: model is NULL");
    return bmc__image_to_input(&model->config, image, chw);
}
