/* image_tiff.c - TIFF through libtiff, with the modes Pillow 9.4's TiffImagePlugin gives.
 *
 * The file is read from memory (TIFFClientOpenExt over the caller's buffer; no mapping, no file
 * descriptor). libtiff's error and warning handlers are per handle (libtiff >= 4.5 open
 * options): warnings are dropped, the first error becomes the message of the BMC_E_IMAGE we
 * return, nothing is printed and nothing aborts. libtiff's single allocations are capped.
 *
 * Modes follow TiffImagePlugin.OPEN_INFO, keyed by (byte order, photometric, sample format,
 * bits per sample, extra samples), decoded as PIL's libtiff path does (TiffDecode.c): strips with
 * TIFFReadEncodedStrip, tiles with TIFFReadTile, separate planes per plane, YCbCr + JPEG through
 * libjpeg's own colour conversion (TIFFTAG_JPEGCOLORMODE = RGB), other YCbCr (and old-style JPEG)
 * through TIFFRGBAImage; then the Orientation tag is applied as PIL's load_end does.
 *   1-bit gray -> '1'; 2/4/8-bit gray -> 'L' (2/4-bit scaled x85 / x17); MinIsWhite inverted;
 *   12/16-bit unsigned gray -> PIL 'I;16' (held as 'I': PIL 9.4 cannot resize 'I;16');
 *   gray + unassociated alpha -> 'LA'; RGB -> 'RGB' (extra samples 'unspecified' dropped: PIL's
 *   RGBX resizes channel by channel, as RGB does); RGB + alpha -> 'RGBA' (associated alpha
 *   un-premultiplied as Unpack.c's RGBa); 16-bit RGB(A)/CMYK keep the high byte; palette -> 'P';
 *   CMYK -> 'CMYK'; YCbCr -> 'RGB'; signed 16/32-bit and unsigned 32-bit gray -> 'I' (int32);
 *   32-bit float gray -> 'F'; palette + alpha -> 'PA'; CIELab -> 'LAB' (littleCMS to RGB).
 * Files PIL refuses ("unknown pixel mode") are refused here too. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

#ifdef BMC_WITH_LIBTIFF

#include <stdarg.h>
#include <tiffio.h>

/* libtiff may allocate this much at once (a strip, a tile); a larger request in a corrupt file
 * fails cleanly instead of reserving gigabytes. The largest image we accept (BMC__IMAGE_MAX_PIXELS
 * 16-bit RGBA samples in one strip) stays under it. */
#define TIFF_MAX_SINGLE_ALLOC ((tmsize_t)1 << 31)
/* more pages than this are not counted (a page chain is bounded by the file size anyway) */
#define TIFF_MAX_PAGES 65535
/* The samples of one page are read whole before conversion: a page whose pixel count passes the
 * size guard may still claim thousands of samples per pixel (fuzz_tiff: 9.4 GB asked of a 200-byte
 * file), so their bytes are bounded too, far above any real page (a 16-bit RGBA page at the
 * pixel limit takes 1.4 GB: bounded at 2 GiB). */
#define TIFF_MAX_RAW ((uint64_t)2 << 30)
/* One tile is read into its own buffer first: real tiles take kilobytes to a few megabytes, and a
 * tile width of 587 million (fuzz_tiff) asked 9.4 GB for a 17 x 9 image. */
#define TIFF_MAX_TILE ((uint64_t)256 << 20)

typedef struct tiff_src {
    const uint8_t *data;
    size_t size, pos;
    char err[256]; /* libtiff's first error */
    int extras_guessed; /* libtiff defined ExtraSamples the file does not declare (its warning) */
} tiff_src;

static tmsize_t src_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_src *s = (tiff_src *)h;
    if (n <= 0 || s->pos >= s->size) return 0;
    size_t k = (size_t)n < s->size - s->pos ? (size_t)n : s->size - s->pos;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tmsize_t)k;
}
static tmsize_t src_write(thandle_t h, void *buf, tmsize_t n) { (void)h, (void)buf, (void)n; return -1; }
static toff_t src_seek(thandle_t h, toff_t off, int whence) {
    tiff_src *s = (tiff_src *)h;
    uint64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = s->pos; break;
    case SEEK_END: base = s->size; break;
    default: return (toff_t)-1;
    }
    uint64_t to = base + off; /* toff_t is unsigned: a wrap-around is a bad offset */
    if (to < base || to > (uint64_t)SIZE_MAX) return (toff_t)-1;
    s->pos = (size_t)to; /* past the end is allowed (reads then return 0) */
    return (toff_t)to;
}
static int src_close(thandle_t h) { (void)h; return 0; }
static toff_t src_size(thandle_t h) { return (toff_t)((tiff_src *)h)->size; }
static int src_map(thandle_t h, void **base, toff_t *size) { (void)h, (void)base, (void)size; return 0; }
static void src_unmap(thandle_t h, void *base, toff_t size) { (void)h, (void)base, (void)size; }

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    tiff_src *s = (tiff_src *)user;
    if (s && !s->err[0]) {
        char msg[200];
        vsnprintf(msg, sizeof msg, fmt, ap);
        snprintf(s->err, sizeof s->err, "%s%s%s", module ? module : "", module ? ": " : "", msg);
    }
    return 1; /* handled: libtiff's global handler (stderr) is not called */
}
static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif, (void)module, (void)ap;
    /* TIFFReadDirectory: "Sum of Photometric type-related color channels and ExtraSamples doesn't
     * match SamplesPerPixel. Defining non-color channels as ExtraSamples.": PIL keys its mode on
     * the ExtraSamples the file holds (none), not on libtiff's guess */
    tiff_src *s = (tiff_src *)user;
    if (s && fmt && strstr(fmt, "Defining non-color channels as ExtraSamples")) s->extras_guessed = 1;
    return 1;
}

static const char *photometric_name(int p) {
    switch (p) {
    case PHOTOMETRIC_MINISWHITE: return "MinIsWhite";
    case PHOTOMETRIC_MINISBLACK: return "MinIsBlack";
    case PHOTOMETRIC_RGB: return "RGB";
    case PHOTOMETRIC_PALETTE: return "Palette";
    case PHOTOMETRIC_MASK: return "Mask";
    case PHOTOMETRIC_SEPARATED: return "Separated (CMYK)";
    case PHOTOMETRIC_YCBCR: return "YCbCr";
    case PHOTOMETRIC_CIELAB: return "CIELab";
    case PHOTOMETRIC_ICCLAB: return "ICCLab";
    case PHOTOMETRIC_ITULAB: return "ITULab";
    case PHOTOMETRIC_CFA: return "CFA";
    case PHOTOMETRIC_LOGL: return "LogL";
    case PHOTOMETRIC_LOGLUV: return "LogLuv";
    }
    return NULL;
}

static const char *compression_name(int c) {
    switch (c) {
    case COMPRESSION_NONE: return "none";
    case COMPRESSION_CCITTRLE: return "CCITT RLE";
    case COMPRESSION_CCITTFAX3: return "CCITT Group 3";
    case COMPRESSION_CCITTFAX4: return "CCITT Group 4";
    case COMPRESSION_LZW: return "LZW";
    case COMPRESSION_OJPEG: return "old-style JPEG";
    case COMPRESSION_JPEG: return "JPEG";
    case COMPRESSION_ADOBE_DEFLATE: return "Deflate (Adobe)";
    case COMPRESSION_DEFLATE: return "Deflate";
    case COMPRESSION_PACKBITS: return "PackBits";
    case COMPRESSION_NEXT: return "NeXT";
    case COMPRESSION_THUNDERSCAN: return "ThunderScan";
    case COMPRESSION_LZMA: return "LZMA";
    case COMPRESSION_ZSTD: return "ZSTD";
    case COMPRESSION_WEBP: return "WebP";
    case COMPRESSION_JXL: return "JPEG XL";
    case COMPRESSION_LERC: return "LERC";
    case COMPRESSION_SGILOG: return "SGILog";
    case COMPRESSION_SGILOG24: return "SGILog24";
    case COMPRESSION_PIXARLOG: return "PixarLog";
    case COMPRESSION_JBIG: return "JBIG";
    }
    return NULL;
}

/* What to produce from the file's samples. */
enum tiff_kind {
    TK_GRAY,    /* 1/2/4/8-bit gray -> '1' or 'L' */
    TK_GRAY16,  /* 12/16-bit gray -> 'I' */
    TK_LA,      /* gray + alpha, 8-bit */
    TK_RGB,     /* RGB (8/16-bit), extra samples dropped */
    TK_RGBA,    /* RGB + alpha in the 4th sample (8/16-bit) */
    TK_RGBa,    /* RGB + associated alpha: un-premultiplied */
    TK_PALETTE, /* 1/2/4/8-bit indices */
    TK_CMYK,    /* 8/16-bit, extra samples dropped */
    TK_YCBCR_JPEG, /* YCbCr + JPEG: libjpeg converts to RGB (3 samples) */
    TK_RGBAIMG, /* TIFFRGBAImage (other YCbCr, old-style JPEG) -> 'RGB' */
    TK_I32,     /* signed 16/32-bit or unsigned 32-bit gray -> PIL 'I' (int32) */
    TK_F,       /* 32-bit float gray -> PIL 'F' */
    TK_PA,      /* palette + alpha, 8-bit -> 'PA' */
    TK_LAB      /* CIELab 8-bit -> 'LAB' (a, b signed: + 128 as Unpack.c ImagingUnpackLAB) */
};

typedef struct tiff_layout {
    int kind, mode;
    int bps, spp, invert; /* invert: MinIsWhite */
} tiff_layout;

/* Pillow's OPEN_INFO, as a function. *why is set when PIL refuses or we do not hold the mode. */
static int pick_layout(int big_endian, int photo, int sf, int bps, int spp, int n_extra, const uint16_t *extra,
                       int compression, int planar, tiff_layout *L, char *why, size_t why_size) {
    memset(L, 0, sizeof *L);
    L->bps = bps;
    L->spp = spp;
    int e0 = n_extra > 0 ? extra[0] : -1;
    /* PIL keys on exactly these extras (Corel Draw 10 writes 999) */
    int extras_rest_zero = 1;
    for (int i = 1; i < n_extra; i++)
        if (extra[i] != 0) extras_rest_zero = 0;
    if (compression == COMPRESSION_OJPEG) photo = PHOTOMETRIC_YCBCR; /* as TiffImagePlugin */
    /* PIL's key holds the ExtraSamples tuple itself: the colour samples are what is left */
    int ok_extra = n_extra == spp - (photo == PHOTOMETRIC_RGB || photo == PHOTOMETRIC_YCBCR ||
                                     photo == PHOTOMETRIC_CIELAB ? 3 : photo == PHOTOMETRIC_SEPARATED ? 4 : 1);
    /* signed, 32-bit and float gray: (II|MM, 1, INT, 16|32), (II, 1, UINT, 32), (II|MM, 0|1, FLOAT, 32) */
    if (spp == 1 && n_extra == 0 && photo == PHOTOMETRIC_MINISBLACK &&
        ((sf == SAMPLEFORMAT_INT && (bps == 16 || bps == 32)) ||
         (sf == SAMPLEFORMAT_UINT && bps == 32 && !big_endian))) {
        L->kind = TK_I32;
        L->mode = BMC__MODE_I32;
        return 1;
    }
    if (spp == 1 && n_extra == 0 && sf == SAMPLEFORMAT_IEEEFP && bps == 32 &&
        (photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_MINISWHITE)) {
        L->kind = TK_F;
        L->mode = BMC__MODE_F;
        return 1;
    }
    if (sf != SAMPLEFORMAT_UINT) {
        snprintf(why, why_size, "%s %d-bit samples, photometric %d, %d per pixel (PIL 9.4: unknown pixel mode)",
                 sf == SAMPLEFORMAT_INT ? "signed integer" : sf == SAMPLEFORMAT_IEEEFP ? "floating-point"
                 : "complex or void", bps, photo, spp);
        return 0;
    }
    switch (photo) {
    case PHOTOMETRIC_MINISWHITE:
    case PHOTOMETRIC_MINISBLACK:
        if (spp == 1 && n_extra == 0) {
            if (bps == 1 || bps == 2 || bps == 4 || bps == 8) {
                L->kind = TK_GRAY;
                L->mode = bps == 1 ? BMC__MODE_1 : BMC__MODE_L;
                L->invert = photo == PHOTOMETRIC_MINISWHITE;
                return 1;
            }
            /* (II, 1, 12), (II, 0|1, 16), (MM, 1, 16); PIL keeps MinIsWhite 16-bit as is */
            if ((bps == 12 && !big_endian && photo == PHOTOMETRIC_MINISBLACK) ||
                (bps == 16 && (!big_endian || photo == PHOTOMETRIC_MINISBLACK))) {
                L->kind = TK_GRAY16;
                L->mode = BMC__MODE_I;
                return 1;
            }
            break;
        }
        if (spp == 2 && n_extra == 1 && bps == 8 && photo == PHOTOMETRIC_MINISBLACK && e0 == EXTRASAMPLE_UNASSALPHA) {
            L->kind = TK_LA;
            L->mode = BMC__MODE_LA;
            return 1;
        }
        break;
    case PHOTOMETRIC_RGB:
        if (bps == 8 && spp >= 3 && spp <= 6 && extras_rest_zero && (ok_extra || (spp == 4 && !n_extra))) {
            if (n_extra == 0) L->kind = spp == 3 ? TK_RGB : TK_RGBA;
            else if (e0 == EXTRASAMPLE_UNSPECIFIED) L->kind = TK_RGB;
            else if (e0 == EXTRASAMPLE_ASSOCALPHA) L->kind = TK_RGBa;
            else if (e0 == EXTRASAMPLE_UNASSALPHA || (e0 == 999 && spp == 4)) L->kind = TK_RGBA;
            else break;
            L->mode = L->kind == TK_RGB ? BMC__MODE_RGB : BMC__MODE_RGBA;
            return 1;
        }
        if (bps == 16 && (spp == 3 || spp == 4) && (ok_extra || (spp == 4 && !n_extra))) {
            if (spp == 3) L->kind = TK_RGB;
            else if (n_extra == 0 || e0 == EXTRASAMPLE_UNASSALPHA) L->kind = TK_RGBA;
            else if (e0 == EXTRASAMPLE_UNSPECIFIED) L->kind = TK_RGB;
            else if (e0 == EXTRASAMPLE_ASSOCALPHA) L->kind = TK_RGBa;
            else break;
            L->mode = L->kind == TK_RGB ? BMC__MODE_RGB : BMC__MODE_RGBA;
            return 1;
        }
        break;
    case PHOTOMETRIC_PALETTE:
        if (spp == 1 && !n_extra && (bps == 1 || bps == 2 || bps == 4 || bps == 8)) {
            L->kind = TK_PALETTE;
            L->mode = BMC__MODE_P;
            return 1;
        }
        if (spp == 2 && n_extra == 1 && bps == 8 && e0 == EXTRASAMPLE_UNASSALPHA) {
            L->kind = TK_PA;
            L->mode = BMC__MODE_PA;
            return 1;
        }
        break;
    case PHOTOMETRIC_SEPARATED:
        if (bps == 8 && spp >= 4 && spp <= 6 && ok_extra && (n_extra == 0 || (e0 == 0 && extras_rest_zero))) {
            L->kind = TK_CMYK;
            L->mode = BMC__MODE_CMYK;
            return 1;
        }
        if (bps == 16 && spp == 4 && !n_extra && !big_endian) {
            L->kind = TK_CMYK;
            L->mode = BMC__MODE_CMYK;
            return 1;
        }
        break;
    case PHOTOMETRIC_YCBCR:
        if (bps == 8 && spp == 3 && !n_extra) {
            L->kind = compression == COMPRESSION_JPEG && planar == PLANARCONFIG_CONTIG ? TK_YCBCR_JPEG : TK_RGBAIMG;
            L->mode = BMC__MODE_RGB;
            return 1;
        }
        break;
    case PHOTOMETRIC_CIELAB:
        if (bps == 8 && spp == 3 && !n_extra) {
            L->kind = TK_LAB;
            L->mode = BMC__MODE_LAB;
            return 1;
        }
        break;
    }
    const char *pn = photometric_name(photo);
    snprintf(why, why_size, "photometric %d%s%s%s, %s-endian, %d x %d-bit samples, %d extra (PIL 9.4: unknown "
             "pixel mode)", photo, pn ? " (" : "", pn ? pn : "", pn ? ")" : "", big_endian ? "big" : "little",
             spp, bps, n_extra);
    return 0;
}

/* The sample c of pixel x in a row of packed samples (MSB-first bit order, as libtiff hands them
 * over after FillOrder; 16-bit samples in host order). */
static inline unsigned sample_at(const uint8_t *row, size_t idx, int bps) {
    switch (bps) {
    case 8: return row[idx];
    case 16: {
        uint16_t v;
        memcpy(&v, row + 2 * idx, 2);
        return v;
    }
    case 32: {
        uint32_t v;
        memcpy(&v, row + 4 * idx, 4);
        return v;
    }
    default: {
        size_t bit = idx * (size_t)bps;
        unsigned v = 0;
        for (int k = 0; k < bps; k++, bit++) v = (v << 1) | ((row[bit >> 3] >> (7 - (bit & 7))) & 1u);
        return v;
    }
    }
}

typedef struct tiff_reader {
    TIFF *tif;
    tiff_src *src;
    const char *name;
    int w, h, planes;
    size_t row_bytes;   /* bytes of one row of one plane */
    uint8_t *raw;       /* [planes][h][row_bytes] */
} tiff_reader;

static bmc_status tiff_fail(tiff_reader *r, const char *what) {
    return bmc__fail(BMC_E_IMAGE, "%s: corrupt or unreadable TIFF: %s (libtiff: %s)", r->name, what,
                     r->src->err[0] ? r->src->err : "no detail");
}

/* Read every strip or tile of the page into r->raw. */
static bmc_status read_raw(tiff_reader *r) {
    TIFF *tif = r->tif;
    size_t plane_bytes = r->row_bytes * (size_t)r->h;
    r->raw = bmc__malloc(plane_bytes * (size_t)r->planes);
    if (!r->raw) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for the TIFF samples", r->name);
    if (TIFFIsTiled(tif)) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        tmsize_t tsize = TIFFTileSize(tif), trow = TIFFTileRowSize(tif);
        if (tw == 0 || th == 0 || tsize <= 0 || trow <= 0 || (uint64_t)trow * th > (uint64_t)tsize)
            return tiff_fail(r, "bad tile size");
        if ((uint64_t)tsize > TIFF_MAX_TILE)
            return bmc__fail(BMC_E_IMAGE, "%s: TIFF tiles of %u x %u take %lld bytes each, more than the %llu this "
                             "library reads; refused before decoding", r->name, tw, th, (long long)tsize,
                             (unsigned long long)TIFF_MAX_TILE);
        uint8_t *tile = bmc__malloc((size_t)tsize);
        if (!tile) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for a TIFF tile", r->name);
        for (int p = 0; p < r->planes; p++)
            for (uint32_t ty = 0; ty < (uint32_t)r->h; ty += th)
                for (uint32_t tx = 0; tx < (uint32_t)r->w; tx += tw) {
                    if (TIFFReadTile(tif, tile, tx, ty, 0, (uint16_t)p) < 0) {
                        bmc__free(tile);
                        return tiff_fail(r, "a tile cannot be decoded");
                    }
                    /* the tile's columns tx.. in whole bytes: tile widths are multiples of 16 */
                    size_t x_byte = (size_t)((uint64_t)tx * (uint64_t)trow / tw);
                    size_t n = (size_t)trow;
                    if (x_byte >= r->row_bytes) continue;
                    if (x_byte + n > r->row_bytes) n = r->row_bytes - x_byte;
                    for (uint32_t y = 0; y < th && ty + y < (uint32_t)r->h; y++)
                        memcpy(r->raw + (size_t)p * plane_bytes + (size_t)(ty + y) * r->row_bytes + x_byte,
                               tile + (size_t)y * (size_t)trow, n);
                }
        bmc__free(tile);
        return BMC_OK;
    }
    uint32_t rps = 0;
    if (!TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps) || rps == 0 || rps > (uint32_t)r->h)
        rps = (uint32_t)r->h;
    tmsize_t ssize = TIFFStripSize(tif);
    if (ssize <= 0) return tiff_fail(r, "bad strip size");
    uint8_t *strip = bmc__malloc((size_t)ssize);
    if (!strip) return bmc__fail(BMC_E_NOMEM, "%s: out of memory for a TIFF strip", r->name);
    for (int p = 0; p < r->planes; p++)
        for (uint32_t y = 0; y < (uint32_t)r->h; y += rps) {
            uint32_t rows = (uint32_t)r->h - y < rps ? (uint32_t)r->h - y : rps;
            tmsize_t want = (tmsize_t)(r->row_bytes * rows);
            if (want > ssize) want = ssize;
            tstrip_t s = TIFFComputeStrip(tif, y, (uint16_t)p);
            tmsize_t got = TIFFReadEncodedStrip(tif, s, strip, want);
            if (got < 0) {
                bmc__free(strip);
                return tiff_fail(r, "a strip cannot be decoded");
            }
            if (got < want) memset(strip + got, 0, (size_t)(want - got)); /* as PIL: short strips read as 0 */
            memcpy(r->raw + (size_t)p * plane_bytes + (size_t)y * r->row_bytes, strip, (size_t)want);
        }
    bmc__free(strip);
    return BMC_OK;
}

/* Convert r->raw into out (allocated by the caller in L's mode). */
/* The common layouts (8-bit contiguous samples already in the mode's byte order, 16-bit gray)
 * row by row without the per-sample reader: 1 when row y was done. */
static int convert_row_fast(const tiff_layout *L, int separate, const uint8_t *row, int w, int y,
                            bmc__decoded *out) {
    int spp = L->spp;
    if (separate) return 0;
    if (L->bps == 16 && L->kind == TK_GRAY16) {
        memcpy(out->pix16 + (size_t)y * w, row, (size_t)w * 2);
        return 1;
    }
    if (L->bps != 8) return 0;
    int bpp = bmc__mode_bpp(out->mode);
    uint8_t *o = out->pix + (size_t)y * w * bpp;
    switch (L->kind) {
    case TK_GRAY:
        if (L->invert)
            for (int x = 0; x < w; x++) o[x] = (uint8_t)(255 - row[x]);
        else
            memcpy(o, row, (size_t)w);
        return 1;
    case TK_PALETTE: case TK_LA: case TK_PA: case TK_RGB: case TK_YCBCR_JPEG: case TK_RGBA: case TK_CMYK: {
        int take = bpp; /* the first bpp samples of each pixel; the rest are extra samples */
        if (L->kind == TK_YCBCR_JPEG) spp = 3; /* libjpeg's RGB */
        if (spp == take) {
            memcpy(o, row, (size_t)w * take);
        } else {
            for (int x = 0; x < w; x++) memcpy(o + (size_t)x * take, row + (size_t)x * spp, (size_t)take);
        }
        return 1;
    }
    default:
        return 0;
    }
}

static void convert(const tiff_reader *r, const tiff_layout *L, const uint16_t *cmap[3], bmc__decoded *out) {
    int w = r->w, bps = L->bps, spp = L->spp;
    size_t plane_bytes = r->row_bytes * (size_t)r->h;
    int separate = r->planes > 1;
    int bpp = bmc__mode_bpp(out->mode);
    unsigned maxv = bps >= 16 ? 65535u : (1u << bps) - 1u;
    for (int y = 0; y < r->h; y++) {
        const uint8_t *row0 = r->raw + (size_t)y * r->row_bytes;
        uint8_t *o = out->pix ? out->pix + (size_t)y * w * bpp : NULL;
        uint16_t *o16 = out->pix16 ? out->pix16 + (size_t)y * w : NULL;
        if (convert_row_fast(L, separate, row0, w, y, out)) continue;
        for (int x = 0; x < w; x++) {
            unsigned s[6] = {0};
            int nc = spp < 6 ? spp : 6;
            for (int c = 0; c < nc; c++)
                s[c] = separate ? sample_at(row0 + (size_t)c * plane_bytes, (size_t)x, bps)
                                : sample_at(row0, (size_t)x * spp + c, bps);
            /* 16-bit colour keeps the high byte (Unpack.c RGB;16N etc.) */
            if (bps == 16 && L->kind != TK_GRAY16 && L->kind != TK_I32)
                for (int c = 0; c < nc; c++) s[c] >>= 8;
            switch (L->kind) {
            case TK_GRAY: {
                unsigned v = s[0];
                if (L->invert) v = maxv - v;
                o[x] = (uint8_t)(bps == 1 ? (v ? 255 : 0) : v * (255u / maxv));
                break;
            }
            case TK_GRAY16: o16[x] = (uint16_t)s[0]; break;
            case TK_I32: out->pix32[(size_t)y * w + x] = bps == 16 ? (int32_t)(int16_t)s[0] : (int32_t)s[0]; break;
            case TK_F: memcpy(&out->pixf[(size_t)y * w + x], &s[0], 4); break;
            case TK_PA: o[2 * x] = (uint8_t)s[0], o[2 * x + 1] = (uint8_t)s[1]; break;
            case TK_LAB:
                o[3 * x] = (uint8_t)s[0], o[3 * x + 1] = (uint8_t)(s[1] ^ 128), o[3 * x + 2] = (uint8_t)(s[2] ^ 128);
                break;
            case TK_LA: o[2 * x] = (uint8_t)s[0], o[2 * x + 1] = (uint8_t)s[1]; break;
            case TK_RGB: case TK_YCBCR_JPEG:
                o[3 * x] = (uint8_t)s[0], o[3 * x + 1] = (uint8_t)s[1], o[3 * x + 2] = (uint8_t)s[2];
                break;
            case TK_RGBA:
                for (int c = 0; c < 4; c++) o[4 * x + c] = (uint8_t)s[c];
                break;
            case TK_RGBa: { /* Unpack.c unpackRGBa */
                unsigned a = s[3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = !a ? 0 : a == 255 ? s[c] : s[c] * 255u / a;
                    o[4 * x + c] = (uint8_t)(v > 255 ? 255 : v);
                }
                o[4 * x + 3] = (uint8_t)a;
                break;
            }
            case TK_PALETTE: o[x] = (uint8_t)s[0]; break;
            case TK_CMYK:
                for (int c = 0; c < 4; c++) o[4 * x + c] = (uint8_t)s[c];
                break;
            }
        }
    }
    if (L->kind == TK_PALETTE || L->kind == TK_PA) {
        int n = 1 << bps;
        for (int i = 0; i < n && i < 256; i++)
            for (int c = 0; c < 3; c++) out->palette[3 * i + c] = (uint8_t)(cmap[c][i] >> 8);
    }
}

/* TIFFRGBAImage, as PIL's _decodeAsRGBA: blocks of rows-per-strip (or tile length) rows, top-left
 * orientation requested, alpha dropped ('RGBX'). */
static bmc_status read_rgba_image(tiff_reader *r, bmc__decoded *out) {
    TIFF *tif = r->tif;
    char emsg[1024] = "";
    TIFFRGBAImage img;
    if (!TIFFRGBAImageOK(tif, emsg) || !TIFFRGBAImageBegin(&img, tif, 0, emsg))
        return bmc__fail(BMC_E_IMAGE, "%s: TIFF cannot be converted to RGB by libtiff (%s)", r->name,
                         emsg[0] ? emsg : r->src->err);
    uint32_t block = 0;
    int ok = TIFFIsTiled(tif) ? TIFFGetFieldDefaulted(tif, TIFFTAG_TILELENGTH, &block)
                              : TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &block);
    if (!ok || block == 0 || block > (uint32_t)r->h) block = (uint32_t)r->h;
    img.req_orientation = ORIENTATION_TOPLEFT;
    img.col_offset = 0;
    bmc_status st = BMC_OK;
    uint32_t *buf = bmc__malloc((size_t)r->w * block * 4);
    if (!buf) st = bmc__fail(BMC_E_NOMEM, "%s: out of memory for the TIFF RGBA rows", r->name);
    for (uint32_t y = 0; st == BMC_OK && y < (uint32_t)r->h; y += block) {
        uint32_t rows = (uint32_t)r->h - y < block ? (uint32_t)r->h - y : block;
        img.row_offset = (int)y;
        if (!TIFFRGBAImageGet(&img, buf, (uint32_t)r->w, rows)) {
            st = tiff_fail(r, "TIFFRGBAImageGet failed");
            break;
        }
        for (uint32_t k = 0; k < rows; k++)
            for (int x = 0; x < r->w; x++) {
                uint32_t v = buf[(size_t)k * r->w + x];
                uint8_t *o = out->pix + ((size_t)(y + k) * r->w + x) * 3;
                o[0] = (uint8_t)TIFFGetR(v), o[1] = (uint8_t)TIFFGetG(v), o[2] = (uint8_t)TIFFGetB(v);
            }
    }
    bmc__free(buf);
    TIFFRGBAImageEnd(&img);
    return st;
}

/* PIL's load_end: the Orientation tag as a transpose of the decoded image. */
static bmc_status apply_orientation(bmc__decoded *d, int orientation, const char *name) {
    if (orientation < 2 || orientation > 8) return BMC_OK;
    int w = d->width, h = d->height, swap = orientation >= 5;
    int bpp = d->mode == BMC__MODE_I ? 2 : d->mode == BMC__MODE_I32 || d->mode == BMC__MODE_F ? 4
            : bmc__mode_bpp(d->mode);
    uint8_t *src = d->pix ? d->pix : d->pix16 ? (uint8_t *)d->pix16 : d->pix32 ? (uint8_t *)d->pix32
                 : (uint8_t *)d->pixf;
    uint8_t *dst = bmc__malloc((size_t)w * h * bpp);
    if (!dst) return bmc__fail(BMC_E_NOMEM, "%s: out of memory turning the TIFF image", name);
    int nw = swap ? h : w, nh = swap ? w : h;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            int sx, sy; /* the source pixel of output (x, y) */
            switch (orientation) {
            case 2: sx = w - 1 - x, sy = y; break;              /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;      /* ROTATE_180 */
            case 4: sx = x, sy = h - 1 - y; break;              /* FLIP_TOP_BOTTOM */
            case 5: sx = y, sy = x; break;                      /* TRANSPOSE */
            case 6: sx = y, sy = h - 1 - x; break;              /* ROTATE_270 (clockwise 90) */
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;      /* TRANSVERSE */
            default: sx = w - 1 - y, sy = x; break;             /* 8: ROTATE_90 */
            }
            memcpy(dst + ((size_t)y * nw + x) * bpp, src + ((size_t)sy * w + sx) * bpp, (size_t)bpp);
        }
    if (d->pix) {
        bmc__free(d->pix);
        d->pix = dst;
    } else if (d->pix16) {
        bmc__free(d->pix16);
        d->pix16 = (uint16_t *)dst;
    } else if (d->pix32) {
        bmc__free(d->pix32);
        d->pix32 = (int32_t *)dst;
    } else {
        bmc__free(d->pixf);
        d->pixf = (float *)dst;
    }
    d->width = nw;
    d->height = nh;
    return BMC_OK;
}

bmc_status bmc__decode_tiff(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                            bmc__decoded *out) {
    memset(out, 0, sizeof *out);
    int frame = opts ? opts->frame : 0;
    tiff_src src = {data, size, 0, "", 0};
    TIFFOpenOptions *oo = TIFFOpenOptionsAlloc();
    if (!oo) return bmc__fail(BMC_E_NOMEM, "%s: out of memory opening the TIFF", name);
    TIFFOpenOptionsSetErrorHandlerExtR(oo, on_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(oo, on_warning, &src);
    TIFFOpenOptionsSetMaxSingleMemAlloc(oo, TIFF_MAX_SINGLE_ALLOC);
    /* "m": no memory mapping (reads go through src_read); "r": read only */
    TIFF *tif = TIFFClientOpenExt(name, "rm", (thandle_t)&src, src_read, src_write, src_seek, src_close, src_size,
                                  src_map, src_unmap, oo);
    TIFFOpenOptionsFree(oo);
    if (!tif)
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt TIFF: the header or first directory cannot be read (libtiff: %s)",
                         name, src.err[0] ? src.err : "no detail");
    tiff_reader r = {tif, &src, name, 0, 0, 1, 0, NULL};
    bmc_status st = BMC_OK;
    char what[600];
    snprintf(what, sizeof what, "%s: TIFF", name);

    int pages = 0;
    if (frame > 0) {
        /* count the pages only as far as needed to know whether `frame` exists */
        pages = TIFFNumberOfDirectories(tif);
        if (pages > TIFF_MAX_PAGES) pages = TIFF_MAX_PAGES;
        if (frame >= pages) {
            st = bmc__fail(BMC_E_IMAGE, "%s: page %d requested, but the TIFF file holds %d page%s (0..%d)", name,
                           frame, pages, pages == 1 ? "" : "s", pages - 1);
            goto done;
        }
        if (!TIFFSetDirectory(tif, (tdir_t)frame)) {
            st = tiff_fail(&r, "the page's directory cannot be read");
            goto done;
        }
    } else {
        pages = TIFFNumberOfDirectories(tif);
        if (pages > TIFF_MAX_PAGES) pages = TIFF_MAX_PAGES;
        if (pages < 1) pages = 1;
        if (TIFFCurrentDirectory(tif) != 0 && !TIFFSetDirectory(tif, 0)) {
            st = tiff_fail(&r, "the first directory cannot be read again");
            goto done;
        }
    }

    uint32_t w = 0, h = 0;
    uint16_t bps = 1, spp = 1, sf = SAMPLEFORMAT_UINT, photo = 0, comp = COMPRESSION_NONE, planar = PLANARCONFIG_CONTIG;
    uint16_t n_extra = 0, *extra = NULL, orientation = 0;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)) {
        st = bmc__fail(BMC_E_IMAGE, "%s: corrupt TIFF: no ImageWidth / ImageLength", name);
        goto done;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sf);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_ORIENTATION, &orientation)) orientation = 0;
    if (src.extras_guessed) n_extra = 0;
    src.err[0] = 0; /* from here on, any libtiff error means corrupt pixel data */

    const char *pn = photometric_name(photo), *cn = compression_name(comp);
    char comp_name[32];
    if (cn) snprintf(comp_name, sizeof comp_name, "%s", cn);
    else snprintf(comp_name, sizeof comp_name, "compression %u", comp);

    tiff_layout L;
    char why[300];
    if (!pick_layout(TIFFIsBigEndian(tif), photo, sf, bps, spp, n_extra, extra, comp, planar, &L, why, sizeof why)) {
        st = bmc__fail(BMC_E_IMAGE, "%s: TIFF layout not supported: %s", name, why);
        goto done;
    }
    if (!TIFFIsCODECConfigured(comp)) {
        st = bmc__fail(BMC_E_IMAGE, "%s: TIFF compression %s is not available in this libtiff", name, comp_name);
        goto done;
    }
    if ((st = bmc__check_size(what, w, h)) != BMC_OK) goto done;
    const uint16_t *cmap[3] = {NULL, NULL, NULL};
    if (L.kind == TK_PALETTE || L.kind == TK_PA) {
        uint16_t *rm, *gm, *bm;
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &rm, &gm, &bm)) {
            st = bmc__fail(BMC_E_IMAGE, "%s: palette TIFF without a ColorMap", name);
            goto done;
        }
        cmap[0] = rm, cmap[1] = gm, cmap[2] = bm;
    }
    r.w = (int)w;
    r.h = (int)h;
    if (L.kind == TK_YCBCR_JPEG) {
        /* as PIL: libjpeg converts YCbCr to RGB and upsamples the chroma */
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    if ((st = bmc__decoded_alloc(out, what, (int)w, (int)h, L.mode)) != BMC_OK) goto done;
    /* what info-image shows (bmc__decode_any adds the size and mode) */
    bmc_image_info *info = &out->info;
    snprintf(info->format, sizeof info->format, "TIFF");
    info->bits_stored = bps;
    info->n_frames = pages;
    info->frame = frame;
    if (pn) snprintf(info->photometric, sizeof info->photometric, "%s", pn);
    else snprintf(info->photometric, sizeof info->photometric, "%u", photo);
    snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", comp_name);
    if (L.kind == TK_RGBAIMG) {
        st = read_rgba_image(&r, out);
    } else {
        r.planes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
        /* one row of one plane: contig rows hold every sample; libtiff computes it (and knows
         * JPEGCOLORMODE's 3 samples without subsampling) */
        uint64_t bits = (uint64_t)w * bps * (r.planes > 1 ? 1 : (L.kind == TK_YCBCR_JPEG ? 3 : spp));
        r.row_bytes = (size_t)((bits + 7) / 8);
        tmsize_t sl = TIFFScanlineSize(tif);
        if (sl <= 0 || (uint64_t)sl != r.row_bytes) {
            st = tiff_fail(&r, "scanline size disagrees with the image layout");
            goto done;
        }
        uint64_t raw = (uint64_t)r.row_bytes * h * (uint64_t)r.planes;
        if (raw > TIFF_MAX_RAW) {
            st = bmc__fail(BMC_E_IMAGE, "%s: TIFF page of %u x %u pixels with %u samples of %u bits takes %llu "
                           "bytes of samples, more than the %llu this library reads; refused before decoding",
                           name, w, h, spp, bps, (unsigned long long)raw, (unsigned long long)TIFF_MAX_RAW);
            goto done;
        }
        if ((st = read_raw(&r)) == BMC_OK) convert(&r, &L, cmap, out);
    }
    /* libtiff reports some corrupt data (a bad CCITT code word, an LZW code out of range) as an
     * error yet returns the strip: refuse the file, as PIL does */
    if (st == BMC_OK && src.err[0]) st = tiff_fail(&r, "the pixel data is corrupt");
    if (st == BMC_OK) st = apply_orientation(out, orientation, name);

done:
    bmc__free(r.raw);
    TIFFClose(tif);
    if (st != BMC_OK) bmc__decoded_free(out);
    return st;
}

#else /* !BMC_WITH_LIBTIFF */

bmc_status bmc__decode_tiff(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                            bmc__decoded *out) {
    (void)data, (void)size, (void)opts;
    memset(out, 0, sizeof *out);
    return bmc__fail(BMC_E_IMAGE, "%s: TIFF support not built in (rebuild without TIFF=0, needs libtiff-dev)", name);
}

#endif
