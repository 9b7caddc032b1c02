/* image_bmp.c - Windows/OS2 bitmaps as PIL 9.4 opens them (src/PIL/BmpImagePlugin.py).
 *
 * - 1/4/8-bit: palette 'P'; when the palette is exactly the gray ramp (2 colours: black, white)
 *   the mode is 'L' ('1'), so it is resized bicubic instead of nearest,
 * - 16-bit: 'RGB' 5-5-5 (or 5-6-5 with those bitfields), each field scaled v * 255 / max,
 * - 24-bit 'RGB'; 32-bit 'RGB' (the 4th byte is ignored) unless bitfields name an alpha mask,
 *   then 'RGBA',
 * - RLE8/RLE4 as BmpRleDecoder, including its quirks (a delta escape consumes 4 bytes; an odd
 *   absolute RLE4 run drops its last pixel; data that ends early is an error).
 * One divergence: where PIL's gray-ramp shortcut decodes 4-bit or 8-bit-two-colour data with the
 * wrong unpacker, we decode the indices correctly (docs/IMAGE.md). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

enum { RAW = 0, RLE8 = 1, RLE4 = 2, BITFIELDS = 3 };
enum { U_INDEX, U_BGR15, U_BGR16, U_BGR, U_BGRX, U_XBGR, U_ABGR, U_RGBA, U_BGRA };

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int le16(const uint8_t *p) { return p[0] | p[1] << 8; }

/* One row of file data -> the decoded row (indices for 'P'/'L'/'1', else RGB(A)). */
static void unpack_row(const uint8_t *in, uint8_t *out, int w, int bits, int unpacker) {
    for (int x = 0; x < w; x++) {
        const uint8_t *s;
        int v;
        switch (unpacker) {
        case U_INDEX:
            if (bits == 8) out[x] = in[x];
            else if (bits == 4) out[x] = (uint8_t)((in[x >> 1] >> ((x & 1) ? 0 : 4)) & 15);
            else out[x] = (uint8_t)((in[x >> 3] >> (7 - (x & 7))) & 1);
            break;
        case U_BGR15: /* Unpack.c ImagingUnpackBGR15 */
            v = in[2 * x] | in[2 * x + 1] << 8;
            out[3 * x] = (uint8_t)(((v >> 10) & 31) * 255 / 31);
            out[3 * x + 1] = (uint8_t)(((v >> 5) & 31) * 255 / 31);
            out[3 * x + 2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case U_BGR16: /* ImagingUnpackBGR16 */
            v = in[2 * x] | in[2 * x + 1] << 8;
            out[3 * x] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
            out[3 * x + 1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
            out[3 * x + 2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case U_BGR:
            s = in + 3 * x;
            out[3 * x] = s[2], out[3 * x + 1] = s[1], out[3 * x + 2] = s[0];
            break;
        case U_BGRX:
            s = in + 4 * x;
            out[3 * x] = s[2], out[3 * x + 1] = s[1], out[3 * x + 2] = s[0];
            break;
        case U_XBGR:
            s = in + 4 * x;
            out[3 * x] = s[3], out[3 * x + 1] = s[2], out[3 * x + 2] = s[1];
            break;
        case U_ABGR:
            s = in + 4 * x;
            out[4 * x] = s[3], out[4 * x + 1] = s[2], out[4 * x + 2] = s[1], out[4 * x + 3] = s[0];
            break;
        case U_RGBA: memcpy(out + 4 * x, in + 4 * x, 4); break;
        case U_BGRA:
            s = in + 4 * x;
            out[4 * x] = s[2], out[4 * x + 1] = s[1], out[4 * x + 2] = s[0], out[4 * x + 3] = s[3];
            break;
        }
    }
}

/* BmpRleDecoder: fills idx[w * h] (rows in file order). Returns NULL or an error string. */
static const char *rle_decode(const uint8_t *d, size_t n, size_t pos, int rle4, int w, int h, uint8_t *idx) {
    size_t total = (size_t)w * h, len = 0;
    long x = 0;
#define APPEND(v) do { if (len < total) idx[len] = (uint8_t)(v); len++; } while (0)
    while (len < total) {
        if (pos + 2 > n) break;
        int count = d[pos], byte = d[pos + 1];
        pos += 2;
        if (count) {
            if (x + count > w) count = x < w ? (int)(w - x) : 0;
            for (int i = 0; i < count; i++) APPEND(rle4 ? ((i & 1) ? byte & 15 : byte >> 4) : byte);
            x += count;
        } else if (byte == 0) { /* end of line */
            while (len % w) APPEND(0);
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta: PIL reads 2 bytes, then 2 more for (right, up) */
            if (pos + 2 > n) break;
            pos += 2;
            if (pos + 2 > n) return "corrupt RLE delta";
            size_t skip = d[pos] + (size_t)d[pos + 1] * w;
            pos += 2;
            for (size_t i = 0; i < skip && len < total; i++) APPEND(0);
            if (len > total) len = total;
            x = (long)(len % w);
        } else { /* absolute run */
            size_t want = rle4 ? (size_t)byte / 2 : (size_t)byte;
            size_t got = n - pos < want ? n - pos : want;
            for (size_t i = 0; i < got; i++) {
                if (rle4) {
                    APPEND(d[pos + i] >> 4);
                    APPEND(d[pos + i] & 15);
                } else {
                    APPEND(d[pos + i]);
                }
            }
            pos += got;
            if (got < want) break;
            x += byte;
            if (pos % 2) pos++; /* word alignment, counted from the start of the file */
        }
    }
#undef APPEND
    return len < total ? "not enough image data in the RLE stream" : NULL;
}

bmc_status bmc__decode_bmp(const uint8_t *d, size_t n, const char *name, bmc__decoded *out) {
    memset(out, 0, sizeof *out);
    if (n < 18 || d[0] != 'B' || d[1] != 'M') return bmc__fail(BMC_E_IMAGE, "%s: not a BMP file", name);
    uint32_t offset = le32(d + 10), hsize = le32(d + 14);
    if (hsize < 12 || (size_t)hsize > n - 14)
        return bmc__fail(BMC_E_IMAGE, "%s: truncated BMP (header of %u bytes, file of %zu)", name, hsize, n);
    const uint8_t *H = d + 18;
    size_t p = 14 + (size_t)hsize;
    long long w, h;
    int bits, dir = -1, pal_pad;
    uint32_t comp = RAW, colors = 0, mask[4] = {0, 0, 0, 0};
    if (hsize == 12) {
        w = le16(H), h = le16(H + 2), bits = le16(H + 6), pal_pad = 3;
    } else if (hsize == 40 || hsize == 64 || hsize == 108 || hsize == 124) {
        int flip = H[7] == 0xFF; /* negative height: rows stored top-down */
        w = le32(H);
        h = flip ? 4294967296LL - le32(H + 4) : (long long)le32(H + 4);
        dir = flip ? 1 : -1;
        bits = le16(H + 10), comp = le32(H + 12), colors = le32(H + 28), pal_pad = 4;
        if (comp == BITFIELDS) {
            if (hsize - 4 >= 52) {
                for (int i = 0; i < 4; i++) mask[i] = le32(H + 36 + 4 * i);
            } else { /* 40-byte header: three masks follow it */
                if (p + 12 > n) return bmc__fail(BMC_E_IMAGE, "%s: truncated BMP (bitfield masks)", name);
                for (int i = 0; i < 3; i++) mask[i] = le32(d + p + 4 * i);
                p += 12;
            }
        }
    } else {
        return bmc__fail(BMC_E_IMAGE, "%s: unsupported BMP header type (%u bytes)", name, hsize);
    }
    char what[600];
    snprintf(what, sizeof what, "%s: BMP", name);
    bmc_status st = bmc__check_size(what, w, h);
    if (st != BMC_OK) return st;
    if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return bmc__fail(BMC_E_IMAGE, "%s: unsupported BMP pixel depth (%d bits)", name, bits);
    if (!colors) colors = bits <= 16 ? 1u << bits : 0;
    if (offset == 14 + hsize && bits <= 8) offset += 4 * colors;

    int mode = bits <= 8 ? BMC__MODE_P : BMC__MODE_RGB;
    int unpacker = bits <= 8 ? U_INDEX : bits == 16 ? U_BGR15 : bits == 24 ? U_BGR : U_BGRX;
    if (comp == BITFIELDS) {
        uint32_t r = mask[0], g = mask[1], b = mask[2], a = mask[3];
        int u = -1;
        if (bits == 32) {
            if (r == 0xFF0000 && g == 0xFF00 && b == 0xFF && a == 0) u = U_BGRX;
            else if (r == 0xFF000000 && g == 0xFF0000 && b == 0xFF00 && a == 0) u = U_XBGR;
            else if (r == 0xFF000000 && g == 0xFF0000 && b == 0xFF00 && a == 0xFF) u = U_ABGR;
            else if (r == 0xFF && g == 0xFF00 && b == 0xFF0000 && a == 0xFF000000) u = U_RGBA;
            else if (r == 0xFF0000 && g == 0xFF00 && b == 0xFF && a == 0xFF000000) u = U_BGRA;
            else if (!r && !g && !b && !a) u = U_BGRA;
        } else if (bits == 24 && r == 0xFF0000 && g == 0xFF00 && b == 0xFF) {
            u = U_BGR;
        } else if (bits == 16 && r == 0xF800 && g == 0x7E0 && b == 0x1F) {
            u = U_BGR16;
        } else if (bits == 16 && r == 0x7C00 && g == 0x3E0 && b == 0x1F) {
            u = U_BGR15;
        }
        if (u < 0) return bmc__fail(BMC_E_IMAGE, "%s: unsupported BMP bitfields layout", name);
        unpacker = u;
        if (u == U_ABGR || u == U_RGBA || u == U_BGRA) mode = BMC__MODE_RGBA;
    } else if (comp != RAW && comp != RLE8 && comp != RLE4) {
        return bmc__fail(BMC_E_IMAGE, "%s: unsupported BMP compression (%u)", name, comp);
    }
    if ((comp == RLE8 || comp == RLE4) && bits > 8)
        return bmc__fail(BMC_E_IMAGE, "%s: BMP with RLE compression at %d bits per pixel", name, bits);

    uint8_t pal[256 * 3];
    size_t pal_entries = 0;
    if (mode == BMC__MODE_P) {
        if (colors == 0 || colors > 65536)
            return bmc__fail(BMC_E_IMAGE, "%s: unsupported BMP palette size (%u)", name, colors);
        size_t want = (size_t)pal_pad * colors, got = p < n ? (n - p < want ? n - p : want) : 0;
        const uint8_t *P = d + p;
        p += got;
        int gray = 1; /* PIL: ditch a palette that is all gray (0, 255 for two colours) */
        for (uint32_t i = 0; i < colors && gray; i++) {
            int v = colors == 2 ? (i ? 255 : 0) : (int)i;
            if ((size_t)i * pal_pad + 3 > got || P[i * pal_pad] != v || P[i * pal_pad + 1] != v ||
                P[i * pal_pad + 2] != v)
                gray = 0;
        }
        if (gray) {
            mode = colors == 2 ? BMC__MODE_1 : BMC__MODE_L;
        } else {
            pal_entries = got / pal_pad;
            if (pal_entries > 256)
                return bmc__fail(BMC_E_IMAGE, "%s: BMP palette of %zu entries (at most 256)", name, pal_entries);
            for (size_t i = 0; i < pal_entries; i++) /* BGR(X) -> RGB */
                for (int c = 0; c < 3; c++) pal[i * 3 + c] = P[i * pal_pad + 2 - c];
        }
    }
    size_t start = offset ? offset : p;

    st = bmc__decoded_alloc(out, what, (int)w, (int)h, mode);
    if (st != BMC_OK) return st;
    if (pal_entries) memcpy(out->palette, pal, pal_entries * 3);
    int W = (int)w, Hh = (int)h, bpp = bmc__mode_bpp(mode);
    size_t out_row = (size_t)W * bpp;
    const char *why = NULL;
    if (comp == RLE8 || comp == RLE4) {
        uint8_t *idx = bmc__malloc((size_t)W * Hh);
        if (!idx) {
            bmc__decoded_free(out);
            return bmc__fail(BMC_E_NOMEM, "%s: out of memory for a %d x %d BMP", name, W, Hh);
        }
        why = rle_decode(d, n, start, comp == RLE4, W, Hh, idx);
        for (int r = 0; r < Hh && !why; r++)
            memcpy(out->pix + (size_t)(dir < 0 ? Hh - 1 - r : r) * out_row, idx + (size_t)r * W, W);
        bmc__free(idx);
    } else {
        size_t stride = (((size_t)W * bits + 31) >> 3) & ~(size_t)3, rowbytes = ((size_t)W * bits + 7) / 8;
        if (start > n || n - start < stride * (Hh - 1) + rowbytes) {
            why = "truncated pixel data";
        } else {
            for (int r = 0; r < Hh; r++)
                unpack_row(d + start + stride * r, out->pix + (size_t)(dir < 0 ? Hh - 1 - r : r) * out_row,
                           W, bits, unpacker);
        }
    }
    if (why) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: BMP: %s", name, why);
    }
    if (mode == BMC__MODE_1) { /* indices 0, 1 of the black/white palette -> 0, 255 */
        size_t np = (size_t)W * Hh;
        for (size_t i = 0; i < np; i++) out->pix[i] = out->pix[i] ? 255 : 0;
    }
    return BMC_OK;
}
