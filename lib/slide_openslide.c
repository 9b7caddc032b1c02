/* slide_openslide.c - the one door to OpenSlide: open a whole-slide image, its levels and
 * resolution, read a region as RGB. Nothing else in the library includes openslide.h, so a build
 * without it (make SLIDE=0) only loses this door: bmc_slide_open then says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image.h"

#ifdef BMC_WITH_OPENSLIDE
#include <openslide.h>

const char *bmc__slide_backend(void) {
    static _Thread_local char buf[64];
    snprintf(buf, sizeof buf, "OpenSlide-%s", openslide_get_version());
    return buf;
}

struct bmc_slide {
    openslide_t *osr;
    char *path;
    int n_levels;
    int64_t *dims;  /* [n_levels][2] width, height */
    double *ds;     /* [n_levels] downsample */
    double mpp_x, mpp_y;
    char vendor[64];
};

/* A property as a positive finite number, else 0. */
static double prop_double(openslide_t *osr, const char *name) {
    const char *v = openslide_get_property_value(osr, name);
    if (!v || !*v) return 0;
    char *end = NULL;
    double d = strtod(v, &end);
    return (end != v && isfinite(d) && d > 0) ? d : 0;
}

/* The TIFF resolution as microns per pixel (0 when absent or in no absolute unit). */
static double tiff_mpp(openslide_t *osr, const char *res_name) {
    double res = prop_double(osr, res_name);
    const char *unit = openslide_get_property_value(osr, "tiff.ResolutionUnit");
    if (res <= 0 || !unit) return 0;
    if (!strcmp(unit, "centimeter")) return 10000.0 / res;
    if (!strcmp(unit, "inch")) return 25400.0 / res;
    return 0;
}

bmc_status bmc_slide_open(const char *path, bmc_slide **out) {
    if (out) *out = NULL;
    if (!path || !out) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_open: %s is NULL", path ? "out" : "path");
    FILE *probe = fopen(path, "rb"); /* OpenSlide says only "unsupported" for a missing file */
    if (!probe) return bmc__fail(BMC_E_IO, "%s: cannot open", path);
    fclose(probe);
    const char *vendor = openslide_detect_vendor(path);
    openslide_t *osr = openslide_open(path);
    if (!osr) return bmc__fail(BMC_E_IMAGE, "%s: not a slide OpenSlide recognises", path);
    const char *err = openslide_get_error(osr);
    if (err) {
        bmc_status st = bmc__fail(BMC_E_IMAGE, "%s: OpenSlide: %s", path, err);
        openslide_close(osr);
        return st;
    }
    int n = openslide_get_level_count(osr);
    if (n < 1) {
        openslide_close(osr);
        return bmc__fail(BMC_E_IMAGE, "%s: OpenSlide reports %d levels", path, n);
    }
    bmc_slide *s = bmc__calloc(1, sizeof *s);
    if (s) {
        s->dims = bmc__calloc((size_t)n * 2, sizeof *s->dims);
        s->ds = bmc__calloc((size_t)n, sizeof *s->ds);
        s->path = bmc__malloc(strlen(path) + 1);
    }
    if (!s || !s->dims || !s->ds || !s->path) {
        if (s) bmc__free(s->dims), bmc__free(s->ds), bmc__free(s->path);
        bmc__free(s);
        openslide_close(osr);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory", path);
    }
    strcpy(s->path, path);
    s->osr = osr;
    s->n_levels = n;
    for (int l = 0; l < n; l++) {
        int64_t w = -1, h = -1;
        openslide_get_level_dimensions(osr, l, &w, &h);
        s->dims[2 * l] = w, s->dims[2 * l + 1] = h;
        s->ds[l] = openslide_get_level_downsample(osr, l);
        if (w <= 0 || h <= 0 || !(s->ds[l] > 0)) {
            const char *e = openslide_get_error(osr);
            bmc_status st = bmc__fail(BMC_E_IMAGE, "%s: level %d has size %lld x %lld, downsample %g%s%s", path,
                                      l, (long long)w, (long long)h, s->ds[l], e ? ": OpenSlide: " : "", e ? e : "");
            bmc_slide_close(s);
            return st;
        }
    }
    s->mpp_x = prop_double(osr, OPENSLIDE_PROPERTY_NAME_MPP_X);
    s->mpp_y = prop_double(osr, OPENSLIDE_PROPERTY_NAME_MPP_Y);
    if (s->mpp_x <= 0 || s->mpp_y <= 0) { /* generic TIFF: OpenSlide 3.4 leaves mpp unset */
        s->mpp_x = tiff_mpp(osr, "tiff.XResolution");
        s->mpp_y = tiff_mpp(osr, "tiff.YResolution");
    }
    if (s->mpp_x <= 0 || s->mpp_y <= 0) s->mpp_x = s->mpp_y = 0;
    snprintf(s->vendor, sizeof s->vendor, "%s", vendor ? vendor : "unknown");
    *out = s;
    return BMC_OK;
}

void bmc_slide_close(bmc_slide *s) {
    if (!s) return;
    if (s->osr) openslide_close(s->osr);
    bmc__free(s->dims), bmc__free(s->ds), bmc__free(s->path);
    bmc__free(s);
}

int bmc_slide_level_count(const bmc_slide *s) { return s ? s->n_levels : 0; }

bmc_status bmc_slide_level_size(const bmc_slide *s, int level, int64_t *w, int64_t *h) {
    if (!s || level < 0 || level >= s->n_levels)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_level_size: level %d out of range (%d levels)", level,
                         s ? s->n_levels : 0);
    if (w) *w = s->dims[2 * level];
    if (h) *h = s->dims[2 * level + 1];
    return BMC_OK;
}

double bmc_slide_level_downsample(const bmc_slide *s, int level) {
    return (s && level >= 0 && level < s->n_levels) ? s->ds[level] : 0;
}

double bmc_slide_mpp(const bmc_slide *s, double *mpp_y) {
    if (mpp_y) *mpp_y = s ? s->mpp_y : 0;
    return s ? s->mpp_x : 0;
}

const char *bmc_slide_vendor(const bmc_slide *s) { return s ? s->vendor : ""; }

bmc_status bmc_slide_read_region(bmc_slide *s, int level, int64_t x, int64_t y, int width, int height,
                                 bmc_image *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!s || !out) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_read_region: %s is NULL", s ? "out" : "slide");
    if (level < 0 || level >= s->n_levels)
        return bmc__fail(BMC_E_INVALID_ARG, "%s: level %d out of range (%d levels)", s->path, level, s->n_levels);
    if (width <= 0 || height <= 0 || (int64_t)width * height > ((int64_t)1 << 28))
        return bmc__fail(BMC_E_INVALID_ARG, "%s: region of %d x %d pixels (each side > 0, at most 2^28 pixels)",
                         s->path, width, height);
    size_t n = (size_t)width * (size_t)height;
    uint32_t *argb = bmc__malloc(n * sizeof *argb);
    bmc__decoded d;
    memset(&d, 0, sizeof d);
    d.pix = argb ? bmc__malloc(n * 3) : NULL;
    if (!d.pix) {
        bmc__free(argb);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for a %d x %d region", s->path, width, height);
    }
    openslide_read_region(s->osr, argb, x, y, level, width, height);
    const char *err = openslide_get_error(s->osr);
    if (err) {
        bmc__free(argb), bmc__free(d.pix);
        return bmc__fail(BMC_E_IMAGE, "%s: OpenSlide: %s", s->path, err);
    }
    /* openslide-python's argb2rgba, then PIL's convert("RGB") dropping alpha */
    for (size_t i = 0; i < n; i++) {
        uint32_t v = argb[i], a = v >> 24;
        uint32_t r = (v >> 16) & 255, g = (v >> 8) & 255, b = v & 255;
        if (a == 0) r = g = b = 0;
        else if (a != 255) r = 255 * r / a, g = 255 * g / a, b = 255 * b / a;
        d.pix[3 * i] = (uint8_t)r, d.pix[3 * i + 1] = (uint8_t)g, d.pix[3 * i + 2] = (uint8_t)b;
    }
    bmc__free(argb);
    d.width = width, d.height = height, d.mode = BMC__MODE_RGB;
    return bmc__image_adopt(&d, s->path, out);
}

#else /* !BMC_WITH_OPENSLIDE */

const char *bmc__slide_backend(void) { return "none"; }

struct bmc_slide {
    int unused;
};

bmc_status bmc_slide_open(const char *path, bmc_slide **out) {
    if (out) *out = NULL;
    if (!path || !out) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_open: %s is NULL", path ? "out" : "path");
    return bmc__fail(BMC_E_IMAGE, "%s: this libbiomedclip was built without OpenSlide (make SLIDE=0)",
                     path ? path : "slide");
}
void bmc_slide_close(bmc_slide *s) { (void)s; }
int bmc_slide_level_count(const bmc_slide *s) { return 0; }
bmc_status bmc_slide_level_size(const bmc_slide *s, int level, int64_t *w, int64_t *h) {
    return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_level_size: built without OpenSlide");
}
double bmc_slide_level_downsample(const bmc_slide *s, int level) { return 0; }
double bmc_slide_mpp(const bmc_slide *s, double *mpp_y) {
    if (mpp_y) *mpp_y = 0;
    return 0;
}
const char *bmc_slide_vendor(const bmc_slide *s) { return ""; }
bmc_status bmc_slide_read_region(bmc_slide *s, int level, int64_t x, int64_t y, int width, int height,
                                 bmc_image *out) {
    if (out) memset(out, 0, sizeof *out);
    return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_read_region: built without OpenSlide");
}

#endif
