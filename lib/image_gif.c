/* image_gif.c - the first frame of a GIF, as PIL 9.4 opens it.
 *
 * Behaviour of src/PIL/GifImagePlugin.py (first frame) and src/libImaging/GifDecode.c:
 * - mode 'P' when the frame has a palette (local, else global), 'L' when it has none; a
 *   palette that is exactly the gray ramp (entry i = (i, i, i)) counts as none (_is_palette_needed),
 * - the image is the logical screen, grown to hold the frame; pixels outside the frame are
 *   index 0, or the frame's transparent index when it has one,
 * - every index of the frame is written (no transparency on frame 0), interlaced rows in
 *   passes of 8, 8, 4, 2,
 * - LZW as GifDecode.c: 12-bit codes at most, a full table stops growing, a code above the
 *   next free one is an error.
 * Where PIL would read on past an end code or an empty sub-block before the frame is full, we
 * stop and keep what was decoded (those files are malformed; PIL then usually fails). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

#define GIF_TABLE 4096

static int le16(const uint8_t *p) { return p[0] | p[1] << 8; }

/* GifImagePlugin._is_palette_needed: anything but the exact gray ramp is a real palette. */
static int palette_needed(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        size_t v = i / 3;
        if (p[i] != v) return 1;
        if (i + 2 >= n) return 1; /* a cut entry (PIL raises here): keep it as a palette */
        if (p[i + 1] != v || p[i + 2] != v) return 1;
    }
    return 0;
}

typedef struct lzw_out {
    uint8_t *img;          /* [height][width] indices */
    int width;             /* image row length */
    int x0, y0, w, h;      /* the frame rectangle */
    int x, y, step, stage; /* position; interlace stage 1..3, 0 when done or not interlaced */
} lzw_out;

/* Write one index; returns 1 when the frame is complete (GifDecode.c NEWLINE). */
static int put(lzw_out *o, uint8_t v) {
    o->img[(size_t)(o->y0 + o->y) * o->width + o->x0 + o->x] = v;
    if (++o->x < o->w) return 0;
    o->x = 0;
    o->y += o->step;
    while (o->y >= o->h) {
        switch (o->stage) {
        case 1: o->y = 4; o->stage = 2; break;
        case 2: o->step = 4; o->y = 2; o->stage = 3; break;
        case 3: o->step = 2; o->y = 1; o->stage = 0; break;
        default: return 1;
        }
    }
    return 0;
}

/* Decode the sub-blocks starting at d[*p]. Returns 0 on success, else an error string. */
static const char *lzw_decode(const uint8_t *d, size_t n, size_t p, int bits, lzw_out *o) {
    static const char *truncated = "truncated image data";
    if (bits < 0 || bits > 12) return "bad LZW code size";
    if (o->w <= 0 || o->h <= 0) return NULL;
    uint8_t data[GIF_TABLE], stack[GIF_TABLE];
    uint16_t link[GIF_TABLE];
    int clear = 1 << bits, end = clear + 1;
    int next = clear + 2, codesize = bits + 1, codemask = (1 << codesize) - 1;
    int first = 1, lastcode = 0;
    uint8_t lastdata = 0;
    uint32_t bitbuf = 0;
    int bitcount = 0, blocksize = 0;
    for (;;) {
        while (bitcount < codesize) {
            if (blocksize > 0) {
                if (p >= n) return truncated;
                bitbuf |= (uint32_t)d[p++] << bitcount;
                bitcount += 8;
                blocksize--;
            } else {
                if (p >= n) return truncated;
                blocksize = d[p++];
                if (blocksize == 0) return NULL; /* terminator before the frame is full */
                if (p + blocksize > n) return truncated;
            }
        }
        int c = (int)(bitbuf & (uint32_t)codemask);
        bitbuf >>= codesize;
        bitcount -= codesize;
        if (c == clear) {
            next = clear + 2;
            codesize = bits + 1;
            codemask = (1 << codesize) - 1;
            first = 1;
            continue;
        }
        if (c == end) return NULL;
        int len = 0;
        if (first) {
            if (c > clear) return "corrupt LZW data (first code after a clear is not a literal)";
            lastdata = (uint8_t)c;
            lastcode = c;
            first = 0;
            if (put(o, lastdata)) return NULL;
            continue;
        }
        int thiscode = c;
        if (c > next) return "corrupt LZW data (code beyond the table)";
        if (c == next) {
            stack[len++] = lastdata;
            c = lastcode;
        }
        while (c >= clear) {
            if (len >= GIF_TABLE || c >= GIF_TABLE) return "corrupt LZW data (string too long)";
            stack[len++] = data[c];
            c = link[c];
        }
        lastdata = (uint8_t)c;
        if (next < GIF_TABLE) {
            data[next] = (uint8_t)c;
            link[next] = (uint16_t)lastcode;
            if (next == codemask && codesize < 12) {
                codesize++;
                codemask = (1 << codesize) - 1;
            }
            next++;
        }
        lastcode = thiscode;
        /* the string is c followed by the stack read backwards */
        if (put(o, (uint8_t)c)) return NULL;
        while (len > 0)
            if (put(o, stack[--len])) return NULL;
    }
}

bmc_status bmc__decode_gif(const uint8_t *d, size_t n, const char *name, bmc__decoded *out) {
    memset(out, 0, sizeof *out);
    if (n < 13 || (memcmp(d, "GIF87a", 6) && memcmp(d, "GIF89a", 6)))
        return bmc__fail(BMC_E_IMAGE, "%s: not a GIF file", name);
    int W = le16(d + 6), H = le16(d + 8), flags = d[10];
    size_t p = 13;
    const uint8_t *gpal = NULL, *lpal = NULL;
    size_t gpal_n = 0, lpal_n = 0;
    int local_flag = 0;
    if (flags & 128) {
        size_t want = (size_t)3 << ((flags & 7) + 1);
        gpal_n = want < n - p ? want : n - p;
        if (palette_needed(d + p, gpal_n)) gpal = d + p;
        p += gpal_n;
    }
    int transparency = -1, x0 = 0, y0 = 0, fw = 0, fh = 0, interlace = 0, bits = 0, found = 0;
    while (!found) {
        if (p >= n || d[p] == ';')
            return bmc__fail(BMC_E_IMAGE, "%s: GIF without an image (truncated or empty)", name);
        int c = d[p++];
        if (c == '!') {
            if (p >= n) break;
            int label = d[p++];
            int first_block = 1;
            while (p < n && d[p]) { /* sub-blocks */
                size_t bl = d[p];
                const uint8_t *b = d + p + 1;
                size_t avail = n - p - 1 < bl ? n - p - 1 : bl;
                if (first_block && label == 0xF9) {
                    if (avail < 4) return bmc__fail(BMC_E_IMAGE, "%s: corrupt GIF (short graphic control block)", name);
                    if (b[0] & 1) transparency = b[3]; /* a later GCE without it keeps it */
                }
                first_block = 0;
                p += 1 + avail;
            }
            if (p < n) p++; /* block terminator */
        } else if (c == ',') {
            if (p + 9 > n) break;
            x0 = le16(d + p);
            y0 = le16(d + p + 2);
            fw = le16(d + p + 4);
            fh = le16(d + p + 6);
            int f = d[p + 8];
            p += 9;
            interlace = (f & 64) != 0;
            if (f & 128) {
                size_t want = (size_t)3 << ((f & 7) + 1);
                size_t got = want < n - p ? want : n - p;
                local_flag = 1;
                if (palette_needed(d + p, got)) {
                    lpal = d + p;
                    lpal_n = got;
                }
                p += got;
            }
            if (p >= n) break;
            bits = d[p++];
            found = 1;
        } /* any other byte is skipped, as PIL does */
    }
    if (!found) return bmc__fail(BMC_E_IMAGE, "%s: truncated GIF (ends inside the headers)", name);
    const uint8_t *pal = local_flag ? lpal : gpal;
    size_t pal_n = local_flag ? lpal_n : gpal_n;
    if (x0 + fw > W) W = x0 + fw;
    if (y0 + fh > H) H = y0 + fh;
    char what[600];
    snprintf(what, sizeof what, "%s: GIF", name);
    bmc_status st = bmc__decoded_alloc(out, what, W, H, pal ? BMC__MODE_P : BMC__MODE_L);
    if (st != BMC_OK) return st;
    memset(out->pix, transparency >= 0 ? transparency : 0, (size_t)W * H);
    if (pal) memcpy(out->palette, pal, (pal_n / 3 > 256 ? 256 : pal_n / 3) * 3);
    lzw_out o = {out->pix, W, x0, y0, fw, fh, 0, 0, interlace ? 8 : 1, interlace ? 1 : 0};
    const char *why = lzw_decode(d, n, p, bits, &o);
    if (why) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: GIF: %s", name, why);
    }
    return BMC_OK;
}
