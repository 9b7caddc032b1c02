/* image_decode.c - format sniffing, the size guard, and the decoded-image helpers. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

int bmc__mode_bpp(int mode) {
    switch (mode) {
    case BMC__MODE_1: case BMC__MODE_L: case BMC__MODE_P: return 1;
    case BMC__MODE_LA: case BMC__MODE_PA: return 2;
    case BMC__MODE_RGB: case BMC__MODE_LAB: return 3;
    case BMC__MODE_RGBA: case BMC__MODE_CMYK: return 4;
    }
    return 0;
}

const char *bmc__mode_name(int mode) {
    static const char *names[] = {"?", "1", "L", "I", "P", "LA", "RGB", "RGBA", "CMYK", "I", "F", "PA", "LAB"};
    return mode >= BMC__MODE_1 && mode <= BMC__MODE_LAB ? names[mode] : "?";
}

bmc_status bmc__check_size(const char *what, long long width, long long height) {
    if (width <= 0 || height <= 0)
        return bmc__fail(BMC_E_IMAGE, "%s: image of size %lld x %lld (empty)", what, width, height);
    if (width > BMC_IMAGE_MAX_SIDE || height > BMC_IMAGE_MAX_SIDE)
        return bmc__fail(BMC_E_IMAGE, "%s: image of %lld x %lld pixels is too large (a side may be at most "
                         "BMC_IMAGE_MAX_SIDE = %d); refused before decoding", what, width, height, BMC_IMAGE_MAX_SIDE);
    if (width * height > BMC__IMAGE_MAX_PIXELS)
        return bmc__fail(BMC_E_IMAGE, "%s: image of %lld x %lld = %lld pixels is too large (at most %lld, "
                         "PIL's decompression-bomb limit); refused before decoding", what, width, height,
                         width * height, BMC__IMAGE_MAX_PIXELS);
    return BMC_OK;
}

bmc_status bmc__decoded_alloc(bmc__decoded *d, const char *what, int width, int height, int mode) {
    memset(d, 0, sizeof *d);
    bmc_status st = bmc__check_size(what, width, height);
    if (st != BMC_OK) return st;
    size_t n = (size_t)width * (size_t)height;
    if (mode == BMC__MODE_I) d->pix16 = bmc__malloc(n * sizeof(uint16_t));
    else if (mode == BMC__MODE_I32) d->pix32 = bmc__malloc(n * sizeof(int32_t));
    else if (mode == BMC__MODE_F) d->pixf = bmc__malloc(n * sizeof(float));
    else d->pix = bmc__malloc(n * (size_t)bmc__mode_bpp(mode));
    if (!d->pix && !d->pix16 && !d->pix32 && !d->pixf)
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for %d x %d pixels", what, width, height);
    d->width = width;
    d->height = height;
    d->mode = mode;
    for (int i = 0; i < 256; i++) d->palette[i * 3] = d->palette[i * 3 + 1] = d->palette[i * 3 + 2] = (uint8_t)i;
    return BMC_OK;
}

void bmc__decoded_free(bmc__decoded *d) {
    if (!d) return;
    bmc__free(d->pix);
    bmc__free(d->pix16);
    bmc__free(d->pix32);
    bmc__free(d->pixf);
    d->pix = NULL;
    d->pix16 = NULL;
    d->pix32 = NULL;
    d->pixf = NULL;
}

/* Names for formats we recognise but do not decode, so that the error says what the file is. */
static const char *other_format(const uint8_t *d, size_t n) {
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return "WebP";
    if (n >= 132 && !memcmp(d + 128, "DICM", 4)) return "DICOM";
    if (n >= 12 && !memcmp(d, "\0\0\0\fjP  ", 8)) return "JPEG 2000";
    if (n >= 12 && !memcmp(d + 4, "ftyp", 4)) return "HEIF/AVIF/MP4";
    if (n >= 4 && !memcmp(d, "%PDF", 4)) return "PDF";
    if (n >= 4 && !memcmp(d, "\0\0\1\0", 4)) return "ICO";
    if (n >= 2 && d[0] == 0xFF && d[1] == 0x0A) return "JPEG XL";
    return NULL;
}

/* Complete the info a decoder left partly empty: every single-image decoder reports its
 * format here, and the 8-bit ones need nothing else. */
static bmc_status finish_info(bmc__decoded *out, const char *format, const char *name, const bmc__decode_opts *o) {
    bmc_image_info *in = &out->info;
    if (!in->format[0]) snprintf(in->format, sizeof in->format, "%s", format);
    if (!in->mode[0]) snprintf(in->mode, sizeof in->mode, "%s", bmc__mode_name(out->mode));
    in->width = out->width;
    in->height = out->height;
    if (!in->bits_stored)
        in->bits_stored = out->mode == BMC__MODE_I ? 16 : out->mode == BMC__MODE_I32 || out->mode == BMC__MODE_F ? 32
                        : out->mode == BMC__MODE_1 ? 1 : 8;
    if (!in->n_frames) {
        /* a decoder that knows no frames read the first (and only) one */
        in->n_frames = 1;
        in->frame = 0;
        if (o->frame != 0) {
            bmc__decoded_free(out);
            return bmc__fail(BMC_E_IMAGE, "%s: frame %d requested, but a %s file holds one image (frame 0)", name,
                             o->frame, in->format);
        }
    }
    return BMC_OK;
}

/* DICOM by content: Part 10 ("DICM" after the 128-byte preamble), or a bare dataset whose first
 * element is a plausible tag of group 0002 or 0008 (little or big endian) followed by an
 * explicit VR, or, in implicit VR little endian, a length that fits the file. */
static int dicom_plausible(const uint8_t *d, size_t n) {
    if (n >= 132 && !memcmp(d + 128, "DICM", 4)) return 1;
    if (n < 8) return 0;
    unsigned le_group = d[0] | d[1] << 8, be_group = d[0] << 8 | d[1];
    static const char vrs[] = "AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
    int explicit_vr = 0;
    for (size_t i = 0; i + 1 < sizeof vrs; i += 2)
        if (d[4] == vrs[i] && d[5] == vrs[i + 1]) explicit_vr = 1;
    if (le_group == 0x0002 || le_group == 0x0008) {
        if (explicit_vr) return 1;
        uint32_t len = d[4] | d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
        return len <= n - 8 || len == 0xFFFFFFFFu;
    }
    return (be_group == 0x0002 || be_group == 0x0008) && explicit_vr;
}

bmc_status bmc__decode_any(const uint8_t *d, size_t n, const char *name, const bmc__decode_opts *opts,
                           bmc__decoded *out) {
    static const bmc__decode_opts defaults = {0};
    const bmc__decode_opts *o = opts ? opts : &defaults;
    memset(out, 0, sizeof *out);
    if (n == 0) return bmc__fail(BMC_E_IMAGE, "%s: empty file", name);
    bmc_status st;
    const char *format;
    if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) {
        format = "PNG";
        st = bmc__decode_png(d, n, name, out);
    } else if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) {
        format = "JPEG";
        st = bmc__decode_jpeg(d, n, name, out);
    } else if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6))) {
        format = "GIF";
        st = bmc__decode_gif(d, n, name, out);
    } else if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
        format = "BMP";
        st = bmc__decode_bmp(d, n, name, out);
    } else if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6' &&
               (d[2] == ' ' || d[2] == '\t' || d[2] == '\n' || d[2] == '\r' || d[2] == '\v' || d[2] == '\f')) {
        format = "PNM";
        st = bmc__decode_pnm(d, n, name, out);
    } else if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4) || !memcmp(d, "II+\0", 4) ||
                          !memcmp(d, "MM\0+", 4)) &&
               !(n >= 132 && !memcmp(d + 128, "DICM", 4))) {
        /* classic and BigTIFF; lib/image_tiff.c (libtiff) fills info and pages. A DICOM Part 10
         * file may hold a TIFF header in its 128-byte preamble (dual-personality files, as
         * pydicom's test files do): "DICM" at 128 makes it DICOM. */
        format = "TIFF";
        st = bmc__decode_tiff(d, n, name, o, out);
    } else if (dicom_plausible(d, n)) {
        /* A bare dataset (no "DICM" at 128) is guessed from its first bytes, which a TGA header
         * can mimic (an ID field of 2 or 8 bytes and no colour map reads as group 0002 / 0008):
         * when the file is also a plausible TGA and DCMTK cannot read it, it is read as TGA. */
        int maybe_tga = !(n >= 132 && !memcmp(d + 128, "DICM", 4)) && bmc__tga_plausible(d, n);
        format = "DICOM";
#ifdef BMC_WITH_DICOM
        st = bmc__decode_dicom(d, n, name, o, out); /* fills its own info */
        if (st == BMC_OK || !maybe_tga) return st;
#else
        if (!maybe_tga)
            return bmc__fail(BMC_E_IMAGE, "%s: DICOM support not built in (rebuild without DICOM=0, needs "
                             "libdcmtk-dev)", name);
#endif
        format = "TGA";
        st = bmc__decode_tga(d, n, name, out);
    } else {
        const char *other = other_format(d, n);
        if (other)
            return bmc__fail(BMC_E_IMAGE, "%s: %s images are not supported (JPEG, PNG, TIFF, BMP, TGA, GIF, PNM, DICOM are)", name,
                             other);
        if (!bmc__tga_plausible(d, n))
            return bmc__fail(BMC_E_IMAGE, "%s: not a recognised image format (JPEG, PNG, TIFF, BMP, TGA, GIF, PNM, DICOM; %zu "
                             "bytes starting %02x %02x %02x %02x)", name, n, d[0], n > 1 ? d[1] : 0,
                             n > 2 ? d[2] : 0, n > 3 ? d[3] : 0);
        format = "TGA";
        st = bmc__decode_tga(d, n, name, out);
    }
    if (st != BMC_OK) return st;
    return finish_info(out, format, name, o);
}
