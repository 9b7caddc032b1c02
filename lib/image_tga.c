/* image_tga.c - Targa files as PIL 9.4 opens them (src/PIL/TgaImagePlugin.py,
 * src/libImaging/TgaRleDecode.c).
 *
 * Modes: gray 'L' (1-bit '1', 16-bit 'LA'), colour-mapped 'P', true colour 'RGB' (16-bit 5-5-5
 * scaled v * 255 / 31, 24-bit) or 'RGBA' (32-bit). A colour map of 16/24/32-bit entries is the
 * palette, preceded by `first entry index` black entries as PIL builds it. Rows are bottom-up
 * unless the descriptor says top-down; right-to-left images are mirrored. RLE packets may run
 * across rows when they are literal; a repeated run that crosses a row is an error, as in PIL. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

static int le16(const uint8_t *p) { return p[0] | p[1] << 8; }

int bmc__tga_plausible(const uint8_t *d, size_t n) {
    if (n < 18) return 0;
    int cmtype = d[1], itype = d[2], depth = d[16];
    if (cmtype > 1 || le16(d + 12) <= 0 || le16(d + 14) <= 0) return 0;
    if (depth != 1 && depth != 8 && depth != 16 && depth != 24 && depth != 32) return 0;
    return itype == 1 || itype == 2 || itype == 3 || itype == 9 || itype == 10 || itype == 11;
}

/* One row of file bytes -> decoded pixels (rawmodes "1", "L", "LA", "P", "BGR;5", "BGR", "BGRA"). */
static void unpack_row(const uint8_t *in, uint8_t *out, int w, int rawbits, int gray) {
    for (int x = 0; x < w; x++) {
        const uint8_t *s;
        int v;
        switch (rawbits) {
        case 1: out[x] = (in[x >> 3] >> (7 - (x & 7)) & 1) ? 255 : 0; break;
        case 8: out[x] = in[x]; break;
        case 16:
            if (gray) { /* LA */
                out[2 * x] = in[2 * x];
                out[2 * x + 1] = in[2 * x + 1];
                break;
            }
            v = in[2 * x] | in[2 * x + 1] << 8; /* Unpack.c ImagingUnpackBGR15 */
            out[3 * x] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
            out[3 * x + 1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
            out[3 * x + 2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case 24:
            s = in + 3 * x;
            out[3 * x] = s[2], out[3 * x + 1] = s[1], out[3 * x + 2] = s[0];
            break;
        case 32:
            s = in + 4 * x;
            out[4 * x] = s[2], out[4 * x + 1] = s[1], out[4 * x + 2] = s[0], out[4 * x + 3] = s[3];
            break;
        }
    }
}

bmc_status bmc__decode_tga(const uint8_t *d, size_t n, const char *name, bmc__decoded *out) {
    memset(out, 0, sizeof *out);
    if (!bmc__tga_plausible(d, n)) return bmc__fail(BMC_E_IMAGE, "%s: not a TGA file", name);
    int id_len = d[0], cmtype = d[1], itype = d[2], depth = d[16], flags = d[17];
    int cm_first = le16(d + 3), cm_len = le16(d + 5), cm_depth = d[7];
    int W = le16(d + 12), H = le16(d + 14);
    int mode, kind = itype & 7;
    if (kind == 3) mode = depth == 1 ? BMC__MODE_1 : depth == 16 ? BMC__MODE_LA : BMC__MODE_L;
    else if (kind == 1) mode = BMC__MODE_P;
    else mode = depth == 32 ? BMC__MODE_RGBA : BMC__MODE_RGB;
    /* TgaImagePlugin MODES: (type, depth) pairs PIL can decode */
    int ok = (kind == 1 && depth == 8) || (kind == 3 && (depth == 1 || depth == 8 || depth == 16)) ||
             (kind == 2 && (depth == 16 || depth == 24 || depth == 32));
    int rle = (itype & 8) != 0;
    if (!ok || (rle && depth == 1))
        return bmc__fail(BMC_E_IMAGE, "%s: unsupported TGA (image type %d, %d bits per pixel)", name, itype, depth);
    int top_down = (flags & 0x20) != 0, mirror = (flags & 0x10) != 0;
    char what[600];
    snprintf(what, sizeof what, "%s: TGA", name);
    bmc_status st = bmc__check_size(what, W, H);
    if (st != BMC_OK) return st;

    size_t p = 18 + (size_t)id_len;
    uint8_t pal[256 * 3];
    int pal_n = 0;
    if (cmtype && (cm_depth == 16 || cm_depth == 24 || cm_depth == 32)) {
        size_t esz = cm_depth / 8, want = esz * cm_len;
        size_t got = p < n ? (n - p < want ? n - p : want) : 0;
        if (mode == BMC__MODE_P) {
            if (cm_first + got / esz > 256)
                return bmc__fail(BMC_E_IMAGE, "%s: TGA colour map of %zu entries (at most 256)", name, cm_first + got / esz);
            memset(pal, 0, sizeof pal);
            uint8_t rgb[3 * 256];
            for (size_t i = 0; i < got / esz; i++) {
                const uint8_t *e = d + p + i * esz;
                if (esz == 2) unpack_row(e, rgb, 1, 16, 0);
                else unpack_row(e, rgb, 1, 24, 0); /* BGR and BGRA: alpha unused by convert('RGB') */
                memcpy(pal + (cm_first + i) * 3, rgb, 3);
            }
            pal_n = cm_first + (int)(got / esz);
        }
        p += got;
    }
    int rawbits = depth; /* bits per pixel of the rawmode */
    size_t line = ((size_t)W * rawbits + 7) / 8, total = line * H;

    st = bmc__decoded_alloc(out, what, W, H, mode);
    if (st != BMC_OK) return st;
    if (pal_n) memcpy(out->palette, pal, (size_t)pal_n * 3);
    uint8_t *buf = bmc__malloc(total ? total : 1); /* file rows, in file order */
    if (!buf) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for a %d x %d TGA", name, W, H);
    }
    const char *why = NULL;
    if (!rle) {
        if (p > n || n - p < total) why = "truncated pixel data";
        else memcpy(buf, d + p, total);
    } else { /* TgaRleDecode.c: runs may not cross a row, literal packets may */
        size_t pix = (size_t)depth / 8, filled = 0;
        while (filled < total && !why) {
            if (p >= n) { why = "truncated RLE data"; break; }
            int hdr = d[p++];
            size_t count = (size_t)(hdr & 0x7f) + 1, bytes = count * pix;
            if (hdr & 0x80) {
                if (n - p < pix) { why = "truncated RLE data"; break; }
                if (filled % line + bytes > line) { why = "RLE run crosses a row"; break; }
                for (size_t i = 0; i < count; i++) memcpy(buf + filled + i * pix, d + p, pix);
                p += pix;
            } else {
                if (n - p < bytes) { why = "truncated RLE data"; break; }
                if (bytes > total - filled) bytes = total - filled;
                memcpy(buf + filled, d + p, bytes);
                p += count * pix;
            }
            filled += bytes;
        }
    }
    if (!why) {
        int bpp = bmc__mode_bpp(mode);
        for (int r = 0; r < H; r++) {
            uint8_t *o = out->pix + (size_t)(top_down ? r : H - 1 - r) * W * bpp;
            unpack_row(buf + (size_t)r * line, o, W, rawbits, kind == 3);
            if (mirror)
                for (int a = 0, b = W - 1; a < b; a++, b--)
                    for (int c = 0; c < bpp; c++) {
                        uint8_t t = o[a * bpp + c];
                        o[a * bpp + c] = o[b * bpp + c];
                        o[b * bpp + c] = t;
                    }
        }
    }
    bmc__free(buf);
    if (why) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: TGA: %s", name, why);
    }
    return BMC_OK;
}
