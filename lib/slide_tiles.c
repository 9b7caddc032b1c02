/* slide_tiles.c - cutting a whole-slide image into model tiles, and finding its tissue
 * (docs/SLIDES.md). Reads the slide only through the public bmc_slide functions.
 *
 * Geometry: a tile is tile_px output pixels at `mpp` um/px, so it covers
 * size0 = round(tile_px * mpp / level0_mpp) level-0 pixels; the grid steps by
 * step0 = round((tile_px - overlap) * mpp / level0_mpp) from level-0 (0, 0) and keeps the tiles
 * lying wholly inside level 0 (as CLAM and TRIDENT do). The tile is read at the coarsest level
 * that is not coarser than the target (1% slack, because OpenSlide's downsamples of odd-sized
 * levels are 4.0002 rather than 4), as a region_px = round(size0 / downsample) square, and
 * resized to tile_px with PIL's bicubic. round() here is floor(v + 0.5).
 *
 * Tissue: CLAM's WholeSlideImage.segmentTissue: HSV saturation of a thumbnail level, median blur
 * 7, Otsu's (or a fixed) binary threshold; Otsu's never below CLAM's fixed default 8, because on
 * a blank slide it splits the background noise in two. Holes smaller than CLAM's a_h are filled,
 * larger ones kept; CLAM's minimum tissue area (a_t) is not applied (a tile's tissue fraction,
 * min_tissue, drops specks instead). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "error.h"
#include "image.h"

#define LEVEL_SLACK 1.01                    /* a level this much coarser still counts as "at" */
#define THUMB_MAX_DS 64.0                   /* CLAM's seg_level: best level for downsample 64 */
#define THUMB_MAX_PIXELS ((int64_t)1 << 26) /* memory bound on the thumbnail read whole */
#define MEDIAN_K 7                          /* CLAM's mthresh */
#define OTSU_FLOOR 8 /* CLAM's fixed sthresh: Otsu's split of a blank slide's noise is no tissue */

static int64_t round_pos(double v) { return (int64_t)floor(v + 0.5); }

bmc_status bmc_slide_tiling_init(const bmc_slide *slide, bmc_slide_tiling *t) {
    if (!slide || !t) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tiling_init: %s is NULL", t ? "slide" : "t");
    if (t->tile_px < 1 || t->tile_px > 4096)
        return bmc__fail(BMC_E_INVALID_ARG, "tiling: tile_px %d (want 1..4096)", t->tile_px);
    if (!(t->mpp > 0) || !isfinite(t->mpp)) return bmc__fail(BMC_E_INVALID_ARG, "tiling: mpp %g (want > 0)", t->mpp);
    if (t->overlap < 0 || t->overlap >= t->tile_px)
        return bmc__fail(BMC_E_INVALID_ARG, "tiling: overlap %d (want 0 <= overlap < tile_px %d)", t->overlap,
                         t->tile_px);
    double mpp0 = t->slide_mpp;
    if (!(mpp0 > 0) || !isfinite(mpp0)) mpp0 = bmc_slide_mpp(slide, NULL);
    if (!(mpp0 > 0))
        return bmc__fail(BMC_E_INVALID_ARG, "tiling: the slide does not say its resolution (no openslide.mpp-x, "
                         "no TIFF resolution): give the microns per level-0 pixel (--slide-mpp)");
    t->level0_mpp = mpp0;
    double scale = t->mpp / mpp0; /* level-0 pixels per output pixel */
    t->size0 = round_pos(t->tile_px * scale);
    t->step0 = round_pos((t->tile_px - t->overlap) * scale);
    if (t->size0 < 1 || t->step0 < 1)
        return bmc__fail(BMC_E_INVALID_ARG, "tiling: a tile of %d px at %g um/px is under one pixel of a %g um/px "
                         "slide", t->tile_px, t->mpp, mpp0);
    double target_ds = (double)t->size0 / t->tile_px;
    int best = 0;
    for (int l = 1; l < bmc_slide_level_count(slide); l++) {
        double ds = bmc_slide_level_downsample(slide, l);
        if (ds <= target_ds * LEVEL_SLACK && ds > bmc_slide_level_downsample(slide, best)) best = l;
    }
    t->level = best;
    int64_t r = round_pos((double)t->size0 / bmc_slide_level_downsample(slide, best));
    if (r < 1) r = 1;
    if (r > 16384)
        return bmc__fail(BMC_E_INVALID_ARG, "tiling: a tile needs a %lld-pixel region of level %d (at most 16384): "
                         "the slide has no level near %g um/px", (long long)r, best, t->mpp);
    t->region_px = (int)r;
    int64_t w0, h0;
    bmc_status st = bmc_slide_level_size(slide, 0, &w0, &h0);
    if (st != BMC_OK) return st;
    t->cols = w0 >= t->size0 ? (w0 - t->size0) / t->step0 + 1 : 0;
    t->rows = h0 >= t->size0 ? (h0 - t->size0) / t->step0 + 1 : 0;
    return BMC_OK;
}

bmc_status bmc_slide_read_tile(bmc_slide *slide, const bmc_slide_tiling *t, int64_t x, int64_t y,
                               unsigned char *rgb) {
    if (!slide || !t || !rgb) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_read_tile: an argument is NULL");
    if (t->region_px < 1 || t->tile_px < 1)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_read_tile: tiling not initialised (bmc_slide_tiling_init)");
    bmc_image region;
    bmc_status st = bmc_slide_read_region(slide, t->level, x, y, t->region_px, t->region_px, &region);
    if (st != BMC_OK) return st;
    int n = t->tile_px;
    if (t->region_px == n)
        memcpy(rgb, region.pixels, (size_t)n * n * 3);
    else
        st = bmc__resize_bicubic_u8(region.pixels, region.width, region.height, (size_t)region.stride, 3, 0, n, n, 0,
                                    0, n, n, rgb);
    bmc_image_free(&region);
    return st;
}

/* ---- tissue ------------------------------------------------------------------------------- */

/* OpenCV's RGB2HSV_b saturation: diff * round((255 << 12) / v), rounded, >> 12. */
static void saturation(const uint8_t *rgb, size_t n, uint8_t *s) {
    int table[256];
    table[0] = 0;
    for (int v = 1; v < 256; v++) table[v] = (int)lrint((double)(255 << 12) / v);
    for (size_t i = 0; i < n; i++) {
        int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        int v = r > g ? r : g, lo = r < g ? r : g;
        v = v > b ? v : b, lo = lo < b ? lo : b;
        s[i] = (uint8_t)(((v - lo) * table[v] + (1 << 11)) >> 12);
    }
}

/* cv::medianBlur(k): the median of the k x k window, the border replicated. A running histogram
 * along each row. */
static void median_blur(const uint8_t *src, int w, int h, int k, uint8_t *dst) {
    int r = k / 2, half = k * k / 2;
    for (int y = 0; y < h; y++) {
        int hist[256] = {0};
        for (int dy = -r; dy <= r; dy++) {
            int yy = y + dy < 0 ? 0 : y + dy >= h ? h - 1 : y + dy;
            for (int dx = -r; dx <= r; dx++) hist[src[(size_t)yy * w + (dx < 0 ? 0 : dx >= w ? w - 1 : dx)]]++;
        }
        for (int x = 0;; x++) {
            int c = 0, v = 0;
            while ((c += hist[v]) <= half) v++;
            dst[(size_t)y * w + x] = (uint8_t)v;
            if (x + 1 == w) break;
            int xo = x - r < 0 ? 0 : x - r, xi = x + 1 + r >= w ? w - 1 : x + 1 + r;
            for (int dy = -r; dy <= r; dy++) {
                int yy = y + dy < 0 ? 0 : y + dy >= h ? h - 1 : y + dy;
                hist[src[(size_t)yy * w + xo]]--;
                hist[src[(size_t)yy * w + xi]]++;
            }
        }
    }
}

/* cv::threshold's THRESH_OTSU (getThreshVal_Otsu_8u). */
static int otsu(const uint8_t *p, size_t n) {
    double hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[p[i]]++;
    double mu = 0, scale = 1.0 / (double)n;
    for (int i = 0; i < 256; i++) mu += i * (hist[i] *= scale);
    double mu1 = 0, q1 = 0, max_sigma = 0;
    int best = 0;
    for (int i = 0; i < 256; i++) {
        double p_i = hist[i], q2, mu2, sigma;
        mu1 *= q1;
        q1 += p_i;
        q2 = 1.0 - q1;
        if ((q1 < q2 ? q1 : q2) < FLT_EPSILON || (q1 > q2 ? q1 : q2) > 1.0 - FLT_EPSILON) continue;
        mu1 = (mu1 + i * p_i) / q1;
        mu2 = (mu - q1 * mu1) / q2;
        sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
        if (sigma > max_sigma) max_sigma = sigma, best = i;
    }
    return best;
}

/* CLAM's hole filter: a hole (background enclosed by tissue, 4-connected) of less than
 * a_h = 16 reference patches of 512 x 512 level-0 pixels is filled; larger holes are kept.
 * mask is 0/255; work holds w * h int32. */
static void fill_small_holes(uint8_t *mask, int w, int h, double level0_per_pixel, int32_t *stack) {
    const double max_area = 16.0 * 512 * 512 / level0_per_pixel; /* in mask pixels */
    size_t n = (size_t)w * h;
    /* 1 = background reached from the border (not a hole), 2 = visited hole pixel */
    uint8_t *seen = bmc__calloc(n, 1);
    if (!seen) return; /* holes stay: a coarser mask, not a wrong one */
    for (int pass = 0; pass < 2; pass++)
        for (size_t start = 0; start < n; start++) {
            int x0 = (int)(start % w), y0 = (int)(start / w);
            int border = x0 == 0 || y0 == 0 || x0 == w - 1 || y0 == h - 1;
            if (mask[start] || seen[start] || (pass == 0 && !border)) continue;
            /* flood one background component */
            size_t top = 0, area = 0, first = top;
            uint8_t tag = pass == 0 ? 1 : 2;
            seen[start] = tag;
            stack[top++] = (int32_t)start;
            size_t head = 0; /* the stack keeps every pixel of the component: refill reads it */
            while (head < top) {
                int32_t p = stack[head++];
                int x = p % w, y = p / w;
                area++;
                const int nx[4] = {x - 1, x + 1, x, x}, ny[4] = {y, y, y - 1, y + 1};
                for (int k = 0; k < 4; k++) {
                    if (nx[k] < 0 || ny[k] < 0 || nx[k] >= w || ny[k] >= h) continue;
                    size_t q = (size_t)ny[k] * w + nx[k];
                    if (!mask[q] && !seen[q]) seen[q] = tag, stack[top++] = (int32_t)q;
                }
            }
            if (pass == 1 && (double)area < max_area)
                for (size_t i = first; i < top; i++) mask[stack[i]] = 255;
        }
    bmc__free(seen);
}

/* tw x th pixels, each the mean of an f x f block of `level` (rounded), read f rows at a time. */
static bmc_status box_thumbnail(bmc_slide *slide, int level, int64_t tw, int64_t th, int f, bmc_image *out) {
    bmc__decoded d;
    memset(&d, 0, sizeof d);
    uint32_t *acc = bmc__calloc((size_t)tw * 3, sizeof *acc);
    d.pix = acc ? bmc__malloc((size_t)tw * th * 3) : NULL;
    if (!d.pix) {
        bmc__free(acc);
        return bmc__fail(BMC_E_NOMEM, "tissue: out of memory for a %lld x %lld thumbnail", (long long)tw, (long long)th);
    }
    double ds = bmc_slide_level_downsample(slide, level);
    bmc_status st = BMC_OK;
    for (int64_t ty = 0; ty < th && st == BMC_OK; ty++) {
        bmc_image strip;
        int64_t y0 = (int64_t)floor((double)(ty * f) * ds + 0.5);
        if ((st = bmc_slide_read_region(slide, level, 0, y0, (int)(tw * f), f, &strip)) != BMC_OK) break;
        memset(acc, 0, (size_t)tw * 3 * sizeof *acc);
        for (int r = 0; r < f; r++) {
            const uint8_t *p = strip.pixels + (size_t)r * strip.stride;
            for (int64_t x = 0; x < tw * f; x++)
                for (int c = 0; c < 3; c++) acc[(x / f) * 3 + c] += p[x * 3 + c];
        }
        uint8_t *row = d.pix + (size_t)ty * tw * 3;
        uint32_t area = (uint32_t)f * f;
        for (int64_t i = 0; i < tw * 3; i++) row[i] = (uint8_t)((acc[i] + area / 2) / area);
        bmc_image_free(&strip);
    }
    bmc__free(acc);
    if (st != BMC_OK) {
        bmc__free(d.pix);
        return st;
    }
    d.width = (int)tw, d.height = (int)th, d.mode = BMC__MODE_RGB;
    return bmc__image_adopt(&d, "slide thumbnail", out);
}

bmc_status bmc_slide_tissue_mask(bmc_slide *slide, int threshold, bmc_image *mask, bmc_image *thumbnail,
                                 double *downsample_x, double *downsample_y, int *used_threshold) {
    if (mask) memset(mask, 0, sizeof *mask);
    if (thumbnail) memset(thumbnail, 0, sizeof *thumbnail);
    if (!slide || !mask) return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tissue_mask: %s is NULL", mask ? "slide" : "mask");
    if (threshold > 255) return bmc__fail(BMC_E_INVALID_ARG, "tissue: threshold %d (want 0..255, or < 0 for Otsu)",
                                          threshold);
    int n_levels = bmc_slide_level_count(slide), level = 0;
    for (int l = 1; l < n_levels; l++)
        if (bmc_slide_level_downsample(slide, l) <= THUMB_MAX_DS) level = l;
    int64_t w0, h0, w, h;
    bmc_status st = bmc_slide_level_size(slide, 0, &w0, &h0);
    if (st != BMC_OK) return st;
    for (;; level++) {
        if ((st = bmc_slide_level_size(slide, level, &w, &h)) != BMC_OK) return st;
        if (w * h <= THUMB_MAX_PIXELS || level + 1 == n_levels) break;
    }
    /* a slide without a small level (a single-level TIFF): its smallest level averaged over
     * f x f blocks, read in strips */
    int f = 1;
    while ((w / f) * (h / f) > THUMB_MAX_PIXELS) f++;
    double lw = (double)w, lh = (double)h;
    bmc_image thumb;
    if (f == 1) st = bmc_slide_read_region(slide, level, 0, 0, (int)w, (int)h, &thumb);
    else st = box_thumbnail(slide, level, w / f, h / f, f, &thumb);
    if (st != BMC_OK) return st;
    w = thumb.width, h = thumb.height;
    double dsx = (double)w0 / lw * f, dsy = (double)h0 / lh * f; /* level-0 pixels per mask pixel */
    size_t n = (size_t)w * (size_t)h;
    bmc__decoded d;
    memset(&d, 0, sizeof d);
    uint8_t *sat = bmc__malloc(n);
    d.pix = sat ? bmc__malloc(n) : NULL;
    if (!d.pix) {
        bmc__free(sat);
        bmc_image_free(&thumb);
        return bmc__fail(BMC_E_NOMEM, "tissue: out of memory for a %lld x %lld mask", (long long)w, (long long)h);
    }
    saturation(thumb.pixels, n, sat);
    median_blur(sat, (int)w, (int)h, MEDIAN_K, d.pix);
    int thr = threshold >= 0 ? threshold : otsu(d.pix, n);
    if (threshold < 0 && thr < OTSU_FLOOR) thr = OTSU_FLOOR;
    for (size_t i = 0; i < n; i++) d.pix[i] = d.pix[i] > thr ? 255 : 0;
    bmc__free(sat);
    int32_t *stack = bmc__malloc(n * sizeof *stack);
    if (stack) fill_small_holes(d.pix, (int)w, (int)h, dsx * dsy, stack);
    bmc__free(stack);
    d.width = (int)w, d.height = (int)h, d.mode = BMC__MODE_L;
    if ((st = bmc__image_adopt(&d, "tissue mask", mask)) != BMC_OK) {
        bmc_image_free(&thumb);
        return st;
    }
    if (thumbnail) *thumbnail = thumb;
    else bmc_image_free(&thumb);
    if (downsample_x) *downsample_x = dsx;
    if (downsample_y) *downsample_y = dsy;
    if (used_threshold) *used_threshold = thr;
    return BMC_OK;
}

bmc_status bmc_slide_tile_coords(const bmc_slide_tiling *t, const bmc_image *mask, double dsx, double dsy,
                                 double min_tissue, int64_t *coords, int64_t cap, int64_t *n) {
    if (!t || !n || (cap > 0 && !coords))
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tile_coords: an argument is NULL");
    *n = 0;
    if (t->size0 < 1 || t->step0 < 1)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tile_coords: tiling not initialised");
    uint32_t *integral = NULL; /* [(mh + 1) * (mw + 1)] tissue pixels above and left */
    int mw = 0, mh = 0;
    if (mask) {
        bmc_status st = bmc__image_check(mask, "bmc_slide_tile_coords");
        if (st != BMC_OK) return st;
        if (mask->format != BMC_PIXEL_GRAY)
            return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tile_coords: the mask must be GRAY");
        if (!(dsx > 0) || !(dsy > 0))
            return bmc__fail(BMC_E_INVALID_ARG, "bmc_slide_tile_coords: mask downsample %g x %g", dsx, dsy);
        mw = mask->width, mh = mask->height;
        integral = bmc__calloc((size_t)(mw + 1) * (mh + 1), sizeof *integral);
        if (!integral) return bmc__fail(BMC_E_NOMEM, "tiles: out of memory for the mask integral");
        for (int y = 0; y < mh; y++) {
            uint32_t run = 0;
            for (int x = 0; x < mw; x++) {
                run += mask->pixels[(size_t)y * mask->stride + x] != 0;
                integral[(size_t)(y + 1) * (mw + 1) + x + 1] = integral[(size_t)y * (mw + 1) + x + 1] + run;
            }
        }
    }
    int64_t count = 0;
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) {
            int64_t x = c * t->step0, y = r * t->step0;
            if (integral) {
                /* the mask pixels the tile touches: [floor(x / ds), ceil((x + size0) / ds)) */
                int64_t mx0 = (int64_t)floor(x / dsx), my0 = (int64_t)floor(y / dsy);
                int64_t mx1 = (int64_t)ceil((x + t->size0) / dsx), my1 = (int64_t)ceil((y + t->size0) / dsy);
                mx1 = mx1 > mw ? mw : mx1, my1 = my1 > mh ? mh : my1;
                if (mx0 >= mx1 || my0 >= my1) continue;
                const uint32_t *I = integral;
                size_t W = (size_t)mw + 1;
                double tissue = (double)I[my1 * W + mx1] - I[my0 * W + mx1] - I[my1 * W + mx0] + I[my0 * W + mx0];
                if (tissue / (double)((mx1 - mx0) * (my1 - my0)) < min_tissue) continue;
            }
            if (count < cap) coords[2 * count] = x, coords[2 * count + 1] = y;
            count++;
        }
    bmc__free(integral);
    *n = count;
    return BMC_OK;
}
