/* image_resize.c - PIL 9.4's resize, bit for bit, computed only where the centre crop looks.
 *
 * Bicubic follows Pillow's src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
 * ImagingResampleHorizontal/Vertical_8bpc and _32bpc, ImagingResampleInner); nearest follows
 * src/libImaging/Geometry.c (ImagingScaleAffine, reached from _imaging.c _resize). Every output
 * sample depends only on its own index, so computing a window of the result gives the same
 * bytes as resizing everything and cropping afterwards.
 *
 * Exactness needs the same floating-point expression order as Pillow and no fused
 * multiply-add: the Makefile compiles with -std=c11, where GCC does not contract; clang is
 * told below. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "error.h"
#include "image.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define PRECISION_BITS (32 - 8 - 2) /* Resample.c: 8 bits result, 2 for overflow and sign */

/* Resample.c bicubic_filter, a = -0.5, support 2. */
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Filter taps along one axis for outputs [o0, o0 + n) of an in_size -> out_size resize. */
typedef struct taps {
    int ksize;      /* taps per output (Resample.c's ksize)          */
    int *bounds;    /* [n][2]: first input index, number of taps     */
    double *kk;     /* [n][ksize] normalised weights                  */
    int32_t *fixed; /* [n][ksize] the weights in 22-bit fixed point  */
} taps;

static void taps_free(taps *t) {
    bmc__free(t->bounds);
    bmc__free(t->kk);
    bmc__free(t->fixed);
    memset(t, 0, sizeof *t);
}

static bmc_status taps_make(taps *t, int in_size, int out_size, int o0, int n, int want_fixed) {
    memset(t, 0, sizeof *t);
    /* precompute_coeffs(inSize, in0 = 0.f, in1 = (float)inSize, outSize): the box is float */
    float in0 = 0.0f, in1 = (float)in_size;
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    size_t nk = (size_t)n * (size_t)t->ksize;
    t->bounds = bmc__malloc((size_t)n * 2 * sizeof(int));
    t->kk = bmc__calloc(nk, sizeof(double));
    if (want_fixed) t->fixed = bmc__calloc(nk, sizeof(int32_t));
    if (!t->bounds || !t->kk || (want_fixed && !t->fixed)) {
        taps_free(t);
        return bmc__fail(BMC_E_NOMEM, "image resize: out of memory for %zu filter taps", nk);
    }
    for (int i = 0; i < n; i++) {
        int xx = o0 + i;
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = &t->kk[(size_t)i * t->ksize];
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        t->bounds[i * 2] = xmin;
        t->bounds[i * 2 + 1] = xmax;
    }
    if (want_fixed) /* normalize_coeffs_8bpc */
        for (size_t j = 0; j < nk; j++) {
            double v = t->kk[j];
            t->fixed[j] = v < 0 ? (int)(-0.5 + v * (1 << PRECISION_BITS))
                                : (int)(0.5 + v * (1 << PRECISION_BITS));
        }
    return BMC_OK;
}

/* Resample.c clip8: the sum >> 22, clamped to 0..255 (Pillow uses a lookup table). */
static inline uint8_t clip8(int32_t ss) {
    int32_t v = ss >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Convert.c rgbA2rgba (RGBA -> RGBa) and, with R = G = B, lA2la (LA -> La). */
static void premultiply_row(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++, in += 4, out += 4) {
        unsigned a = in[3], tmp;
        for (int c = 0; c < 3; c++) {
            tmp = in[c] * a + 128;
            out[c] = (uint8_t)(((tmp >> 8) + tmp) >> 8);
        }
        out[3] = (uint8_t)a;
    }
}

/* Convert.c rgba2rgbA (RGBa -> RGBA) and la2lA. */
static void unpremultiply(uint8_t *p, size_t n_pixels) {
    for (size_t i = 0; i < n_pixels; i++, p += 4) {
        unsigned a = p[3];
        if (a == 255 || a == 0) continue;
        for (int c = 0; c < 3; c++) {
            unsigned v = (255u * p[c]) / a;
            p[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* Which input rows the window's vertical pass reads: [*first, *last). */
static void rows_needed(const taps *tv, int need_v, int y0, int ch, int *first, int *last) {
    if (!need_v) {
        *first = y0;
        *last = y0 + ch;
        return;
    }
    *first = tv->bounds[0];
    *last = tv->bounds[(ch - 1) * 2] + tv->bounds[(ch - 1) * 2 + 1];
}

/* One row of the horizontal pass: Resample.c ImagingResampleHorizontal_8bpc, all channels of an
 * output in one walk over its taps as Pillow does. These scalar loops run where there is no SSE2
 * (not x86) and are what tests/test_image.c compares the SSE2 and AVX2 passes with. */
static void h_row(const uint8_t *in, int chans, int n, const taps *th, uint8_t *out) {
    for (int j = 0; j < n; j++, out += chans) {
        int xmin = th->bounds[j * 2], xmax = th->bounds[j * 2 + 1];
        const int32_t *k = &th->fixed[(size_t)j * th->ksize];
        const uint8_t *p = in + (size_t)xmin * chans;
        int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0, s3 = s0;
        if (chans == 1) {
            for (int x = 0; x < xmax; x++) s0 += p[x] * k[x];
        } else if (chans == 3) {
            for (int x = 0; x < xmax; x++, p += 3) s0 += p[0] * k[x], s1 += p[1] * k[x], s2 += p[2] * k[x];
        } else {
            for (int x = 0; x < xmax; x++, p += 4)
                s0 += p[0] * k[x], s1 += p[1] * k[x], s2 += p[2] * k[x], s3 += p[3] * k[x];
        }
        out[0] = clip8(s0);
        if (chans > 1) out[1] = clip8(s1), out[2] = clip8(s2);
        if (chans > 3) out[3] = clip8(s3);
    }
}

/* One row of the vertical pass (ImagingResampleVertical_8bpc): src is the first of the cnt
 * input rows, row_bytes apart. */
static void v_row(const uint8_t *src, size_t row_bytes, int cnt, const int32_t *k, uint8_t *out) {
    for (size_t j = 0; j < row_bytes; j++) {
        int32_t ss = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < cnt; y++) ss += src[(size_t)y * row_bytes + j] * k[y];
        out[j] = clip8(ss);
    }
}

bmc_status bmc__resize_bicubic_u8_at(int path, const uint8_t *src, int w, int h, size_t stride, int chans,
                                     int premultiply, int out_w, int out_h, int x0, int y0, int cw, int ch,
                                     uint8_t *dst) {
    int need_h = out_w != w, need_v = out_h != h;
    int avx2 = path == BMC__RESIZE_AVX2, sse2 = path == BMC__RESIZE_SSE2;
    taps th = {0}, tv = {0};
    uint8_t *tmp = NULL, *row = NULL, *coef = NULL, *pad = NULL, *vk = NULL;
    bmc_status st = BMC_OK;
    if (premultiply && chans != 4) return bmc__fail(BMC_E_INTERNAL, "resize: premultiply needs 4 channels");
    if (chans != 1 && chans != 3 && chans != 4)
        return bmc__fail(BMC_E_INTERNAL, "resize: %d channels (want 1, 3 or 4)", chans);
    if (!avx2 && !sse2 && path != BMC__RESIZE_SCALAR) return bmc__fail(BMC_E_INTERNAL, "resize: path %d", path);
    if (sse2 && !bmc__resize_have_sse2()) return bmc__fail(BMC_E_INTERNAL, "resize: this build has no SSE2 passes");
    if (need_h && (st = taps_make(&th, w, out_w, x0, cw, 1)) != BMC_OK) goto done;
    if (need_v && (st = taps_make(&tv, h, out_h, y0, ch, 1)) != BMC_OK) goto done;

    int first, last;
    rows_needed(&tv, need_v, y0, ch, &first, &last);
    size_t rowlen = (size_t)cw * chans;
    tmp = bmc__malloc((size_t)(last - first) * rowlen);
    if (premultiply) row = bmc__malloc((size_t)w * 4);
    if ((avx2 || sse2) && need_h) {
        /* the coefficients split for pmaddwd / vpmaddwd, and a zero-padded copy of a row's end */
        coef = bmc__malloc(avx2 ? bmc__resize_h_avx2_coef_bytes(cw, th.ksize, chans)
                                : bmc__resize_h_sse2_coef_bytes(cw, th.ksize, chans));
        pad = bmc__malloc((size_t)(th.ksize + 16) * chans + 16);
    }
    if (sse2 && need_v) vk = bmc__malloc(bmc__resize_v_sse2_scratch_bytes(tv.ksize)); /* one output row's taps */
    if (!tmp || (premultiply && !row) || ((avx2 || sse2) && need_h && (!coef || !pad)) || (sse2 && need_v && !vk)) {
        st = bmc__fail(BMC_E_NOMEM, "image resize: out of memory for %d x %d intermediate", cw, last - first);
        goto done;
    }
    if (coef && avx2) bmc__resize_h_avx2_coef(cw, th.ksize, th.fixed, chans, coef);
    if (coef && sse2) bmc__resize_h_sse2_coef(cw, th.ksize, th.fixed, chans, coef);

    /* horizontal pass (or the plain columns when the width does not change) */
    for (int y = first; y < last; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        if (premultiply) {
            premultiply_row(in, row, w);
            in = row;
        }
        uint8_t *out = tmp + (size_t)(y - first) * rowlen;
        if (!need_h) memcpy(out, in + (size_t)x0 * chans, rowlen);
        else if (avx2) bmc__resize_h_avx2_row(in, w, chans, cw, th.ksize, th.bounds, coef, out, pad);
        else if (sse2) bmc__resize_h_sse2_row(in, w, chans, cw, th.ksize, th.bounds, coef, out, pad);
        else h_row(in, chans, cw, &th, out);
    }

    /* vertical pass (or the plain rows when the height does not change) */
    for (int i = 0; i < ch; i++) {
        uint8_t *out = dst + (size_t)i * rowlen;
        if (!need_v) {
            memcpy(out, tmp + (size_t)i * rowlen, rowlen);
            continue;
        }
        const uint8_t *in = tmp + (size_t)(tv.bounds[i * 2] - first) * rowlen;
        const int32_t *k = &tv.fixed[(size_t)i * tv.ksize];
        if (avx2) bmc__resize_v_avx2_row(in, rowlen, tv.bounds[i * 2 + 1], k, out);
        else if (sse2) bmc__resize_v_sse2_row(in, rowlen, tv.bounds[i * 2 + 1], k, out, vk);
        else v_row(in, rowlen, tv.bounds[i * 2 + 1], k, out);
    }
    if (premultiply) unpremultiply(dst, (size_t)cw * ch);

done:
    taps_free(&th);
    taps_free(&tv);
    bmc__free(tmp);
    bmc__free(row);
    bmc__free(coef);
    bmc__free(pad);
    bmc__free(vk);
    return st;
}

/* AVX2 where cpu.c allows it (BMC_CPU can lower the level), else SSE2, which every x86-64 CPU has. */
bmc_status bmc__resize_bicubic_u8(const uint8_t *src, int w, int h, size_t stride, int chans,
                                  int premultiply, int out_w, int out_h, int x0, int y0, int cw,
                                  int ch, uint8_t *dst) {
    int path = bmc__kern()->level >= BMC__LEVEL_AVX2 ? BMC__RESIZE_AVX2
               : bmc__resize_have_sse2()             ? BMC__RESIZE_SSE2
                                                     : BMC__RESIZE_SCALAR;
    return bmc__resize_bicubic_u8_at(path, src, w, h, stride, chans, premultiply, out_w, out_h, x0, y0, cw, ch,
                                     dst);
}

/* Resample.c ROUND_UP: note the float constant and the truncating cast. Outside int32's range
 * (bicubic overshoot on 32-bit 'I' values near the limits) or NaN the cast is undefined in C;
 * x86-64's cvttsd2si, which Pillow's own build uses there, gives INT32_MIN, and so do we. */
static inline int32_t round_up(double f) {
    double r = f >= 0.0 ? f + 0.5F : f - 0.5F;
    if (!(r > -2147483649.0 && r < 2147483648.0)) return INT32_MIN;
    return (int32_t)r;
}

/* The two PIL passes on 'I' (int32, rounded between passes) or 'F' (float32, stored as float
 * between passes): Resample.c ImagingResampleHorizontal_32bpc / Vertical_32bpc. The source is
 * one of src16 (16-bit 'I'), src32 ('I') or srcf ('F'); the output dst32 ('I') or dstf ('F'). */
static bmc_status resize_32bpc(const uint16_t *src16, const int32_t *src32, const float *srcf, int w, int h,
                               int out_w, int out_h, int x0, int y0, int cw, int ch, int32_t *dst32, float *dstf) {
    int need_h = out_w != w, need_v = out_h != h;
    taps th = {0}, tv = {0};
    double *tmp = NULL; /* holds exact int32 or float32 values */
    bmc_status st = BMC_OK;
    if (need_h && (st = taps_make(&th, w, out_w, x0, cw, 0)) != BMC_OK) goto done;
    if (need_v && (st = taps_make(&tv, h, out_h, y0, ch, 0)) != BMC_OK) goto done;
    int first, last;
    rows_needed(&tv, need_v, y0, ch, &first, &last);
    tmp = bmc__malloc((size_t)(last - first) * cw * sizeof(double));
    if (!tmp) {
        st = bmc__fail(BMC_E_NOMEM, "image resize: out of memory for %d x %d intermediate", cw, last - first);
        goto done;
    }
#define SRC(i) (src16 ? (double)src16[i] : src32 ? (double)src32[i] : (double)srcf[i])
    for (int y = first; y < last; y++) {
        size_t row = (size_t)y * w;
        double *out = tmp + (size_t)(y - first) * cw;
        for (int j = 0; j < cw; j++) {
            if (!need_h) {
                out[j] = SRC(row + x0 + j);
                continue;
            }
            int xmin = th.bounds[j * 2], xmax = th.bounds[j * 2 + 1];
            const double *k = &th.kk[(size_t)j * th.ksize];
            double ss = 0.0;
            for (int x = 0; x < xmax; x++) ss += SRC(row + x + xmin) * k[x];
            out[j] = srcf ? (double)(float)ss : (double)round_up(ss);
        }
    }
#undef SRC
    for (int i = 0; i < ch; i++) {
        for (int j = 0; j < cw; j++) {
            double v;
            if (!need_v) {
                v = tmp[(size_t)i * cw + j];
            } else {
                int ymin = tv.bounds[i * 2] - first, ymax = tv.bounds[i * 2 + 1];
                const double *k = &tv.kk[(size_t)i * tv.ksize];
                double ss = 0.0;
                for (int y = 0; y < ymax; y++) ss += tmp[(size_t)(ymin + y) * cw + j] * k[y];
                v = ss;
            }
            if (dstf) dstf[(size_t)i * cw + j] = (float)v;
            else dst32[(size_t)i * cw + j] = need_v ? round_up(v) : (int32_t)v;
        }
    }
done:
    taps_free(&th);
    taps_free(&tv);
    bmc__free(tmp);
    return st;
}

bmc_status bmc__resize_bicubic_i32(const uint16_t *src16, const int32_t *src32, int w, int h, int out_w, int out_h,
                                   int x0, int y0, int cw, int ch, int32_t *dst) {
    return resize_32bpc(src16, src32, NULL, w, h, out_w, out_h, x0, y0, cw, ch, dst, NULL);
}

bmc_status bmc__resize_bicubic_f32(const float *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw,
                                   int ch, float *dst) {
    return resize_32bpc(NULL, NULL, src, w, h, out_w, out_h, x0, y0, cw, ch, NULL, dst);
}

/* Geometry.c ImagingScaleAffine: the source position of output i is found by adding the step
 * i times (in double), not by multiplying, then truncated (COORD: -1 when negative). Every row
 * walks the same columns: they are found once. */
bmc_status bmc__resize_nearest(const uint8_t *src, int w, int h, size_t stride, int bpp, int out_w,
                               int out_h, int x0, int y0, int cw, int ch, uint8_t *dst) {
    /* _imaging.c _resize: a[0] = (double)(box[2] - box[0]) / xsize with a float box */
    double ax = (double)((float)w - 0.0f) / out_w;
    double ay = (double)((float)h - 0.0f) / out_h;
    double xo = ax * 0.5, yo = ay * 0.5;
    for (int k = 0; k < x0; k++) xo += ax;
    for (int k = 0; k < y0; k++) yo += ay;
    int *col = bmc__malloc((size_t)cw * sizeof *col); /* source column of output j, or -1 */
    if (!col) return bmc__fail(BMC_E_NOMEM, "image resize: out of memory for %d columns", cw);
    double x = xo;
    for (int j = 0; j < cw; j++, x += ax) {
        int xi = x < 0.0 ? -1 : (int)x;
        col[j] = xi >= 0 && xi < w ? xi : -1;
    }
    for (int i = 0; i < ch; i++, yo += ay) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        uint8_t *out = dst + (size_t)i * cw * bpp;
        const uint8_t *in = src + (size_t)(yi < 0 ? 0 : yi) * stride;
        for (int j = 0; j < cw; j++, out += bpp) {
            if (yi < 0 || yi >= h || col[j] < 0) { /* outside the source: Pillow leaves the fill value 0 */
                memset(out, 0, (size_t)bpp);
            } else if (bpp == 1) {
                out[0] = in[col[j]];
            } else if (bpp == 3) {
                const uint8_t *p = in + (size_t)col[j] * 3;
                out[0] = p[0], out[1] = p[1], out[2] = p[2];
            } else {
                memcpy(out, in + (size_t)col[j] * bpp, (size_t)bpp);
            }
        }
    }
    bmc__free(col);
    return BMC_OK;
}

void bmc__resize_dims(int w, int h, int size, int *out_w, int *out_h) {
    /* torchvision _compute_resized_output_size: new_long = int(size * long / short) */
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int new_long = (int)((double)((long long)size * longer) / shorter);
    if (w <= h) {
        *out_w = size;
        *out_h = new_long;
    } else {
        *out_w = new_long;
        *out_h = size;
    }
}

int bmc__crop_offset(int in, int crop) {
    int d = in - crop; /* round(d / 2.0), half to even; d >= 0 here */
    int q = d / 2;
    if ((d & 1) && (q & 1)) q++;
    return q;
}
