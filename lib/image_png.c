/* image_png.c - PNG decoder that keeps PIL's modes.
 *
 * PIL 9.4 (src/PIL/PngImagePlugin.py _MODES) opens: gray 1-bit as '1'; gray 2/4-bit as 'L'
 * (scaled by 0x55 / 0x11); gray 8-bit 'L'; gray 16-bit 'I'; RGB 'RGB' (16-bit: the high bytes);
 * palette 'P' at any depth; gray+alpha 8-bit 'LA', 16-bit 'RGBA' (high bytes, R = G = B); RGBA
 * 'RGBA' (16-bit: high bytes). tRNS never changes the mode (the final convert('RGB') ignores
 * it). Palette entries PLTE does not give stay the gray ramp of PIL's palette.
 * Unlike PIL we also check the CRC of the IDAT chunks: a corrupt file fails loudly instead of
 * decoding to garbage. */
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "crc32.h"
#include "error.h"
#include "image.h"

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_letter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Adam7 passes: x0, y0, dx, dy; one pass (the whole image) when not interlaced. */
static const int adam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

typedef struct png_info {
    int w, h, depth, ctype, interlace;
    int channels; /* samples per pixel in the file */
    int mode;
} png_info;

static size_t row_bytes(const png_info *pi, int w) {
    return ((size_t)w * pi->depth * pi->channels + 7) / 8;
}

static void pass_dims(const png_info *pi, int pass, int *pw, int *ph) {
    if (!pi->interlace) {
        *pw = pi->w;
        *ph = pi->h;
        return;
    }
    const int *a = adam7[pass];
    *pw = pi->w > a[0] ? (pi->w - a[0] + a[2] - 1) / a[2] : 0;
    *ph = pi->h > a[1] ? (pi->h - a[1] + a[3] - 1) / a[3] : 0;
}

/* PNG's Paeth predictor, without branches: pa = |p - a| = |b - c|, pb = |p - b| = |a - c|,
 * pc = |p - c| = |a + b - 2c| for p = a + b - c. */
static inline int paeth(int a, int b, int c) {
    int pa = b - c, pb = a - c, pc = pa + pb;
    pa = pa < 0 ? -pa : pa;
    pb = pb < 0 ? -pb : pb;
    pc = pc < 0 ? -pc : pc;
    int bc = pb <= pc ? b : c;
    return (pa <= pb && pa <= pc) ? a : bc;
}

/* Undo the filter of one row in place; prev is the previous unfiltered row or NULL (the first
 * row of a pass: a row of zeros). The first bpp bytes have no left neighbour (0), the rest are
 * walked without per-byte tests. row and prev never overlap. */
static int unfilter(uint8_t *restrict row, const uint8_t *restrict prev, size_t n, int type, int bpp) {
    size_t k = (size_t)bpp < n ? (size_t)bpp : n;
    switch (type) {
    case 0: return 1;
    case 1:
        for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
        return 1;
    case 2:
        if (prev) {
            size_t i = 0;
#ifdef __SSE2__ /* x86-64's baseline: GCC -O2 leaves this loop scalar once it is inlined */
            for (; i + 16 <= n; i += 16) {
                __m128i v = _mm_add_epi8(_mm_loadu_si128((const __m128i *)(row + i)),
                                         _mm_loadu_si128((const __m128i *)(prev + i)));
                _mm_storeu_si128((__m128i *)(row + i), v);
            }
#endif
            for (; i < n; i++) row[i] = (uint8_t)(row[i] + prev[i]);
        }
        return 1;
    case 3:
        if (!prev) {
            for (size_t i = k; i < n; i++) row[i] = (uint8_t)(row[i] + (row[i - bpp] >> 1));
            return 1;
        }
        for (size_t i = 0; i < k; i++) row[i] = (uint8_t)(row[i] + (prev[i] >> 1));
        for (size_t i = k; i < n; i++) row[i] = (uint8_t)(row[i] + ((row[i - bpp] + prev[i]) >> 1));
        return 1;
    case 4:
        if (!prev) { /* b = c = 0: the predictor is a, as Sub */
            for (size_t i = k; i < n; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
            return 1;
        }
        for (size_t i = 0; i < k; i++) row[i] = (uint8_t)(row[i] + prev[i]); /* a = c = 0: b */
        for (size_t i = k; i < n; i++) row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp]));
        return 1;
    }
    return 0;
}

/* Store pixel i of an unfiltered row at (x, y) of the decoded image in its PIL mode. */
static void put_pixel(const png_info *pi, const uint8_t *row, int i, bmc__decoded *d, int x, int y) {
    size_t at = (size_t)y * d->width + x;
    if (pi->depth < 8) {
        int bit = i * pi->depth;
        int v = (row[bit >> 3] >> (8 - pi->depth - (bit & 7))) & ((1 << pi->depth) - 1);
        if (pi->ctype == 3) d->pix[at] = (uint8_t)v;
        else d->pix[at] = (uint8_t)(pi->depth == 1 ? (v ? 255 : 0) : pi->depth == 2 ? v * 0x55 : v * 0x11);
        return;
    }
    int step = pi->depth / 8; /* bytes per sample: 16-bit keeps the high (first) byte */
    const uint8_t *s = row + (size_t)i * pi->channels * step;
    switch (pi->ctype) {
    case 0:
        if (pi->depth == 16) d->pix16[at] = (uint16_t)(s[0] << 8 | s[1]);
        else d->pix[at] = s[0];
        break;
    case 3: d->pix[at] = s[0]; break;
    case 2: for (int c = 0; c < 3; c++) d->pix[at * 3 + c] = s[c * step]; break;
    case 4:
        if (pi->depth == 16) { /* PIL: 'RGBA' via LA;16B */
            uint8_t *o = d->pix + at * 4;
            o[0] = o[1] = o[2] = s[0];
            o[3] = s[2];
        } else {
            d->pix[at * 2] = s[0];
            d->pix[at * 2 + 1] = s[1];
        }
        break;
    case 6: for (int c = 0; c < 4; c++) d->pix[at * 4 + c] = s[c * step]; break;
    }
}

static bmc_status parse_ihdr(const uint8_t *c, uint32_t len, const char *name, png_info *pi) {
    if (len < 13) return bmc__fail(BMC_E_IMAGE, "%s: truncated PNG header (IHDR of %u bytes)", name, len);
    uint32_t w = be32(c), h = be32(c + 4);
    pi->depth = c[8];
    pi->ctype = c[9];
    pi->interlace = c[12];
    if (c[10] != 0 || c[11] != 0 || c[12] > 1)
        return bmc__fail(BMC_E_IMAGE, "%s: PNG with unknown compression/filter/interlace method (%d/%d/%d)",
                         name, c[10], c[11], c[12]);
    int d = pi->depth, ok = 0;
    switch (pi->ctype) {
    case 0: ok = d == 1 || d == 2 || d == 4 || d == 8 || d == 16; pi->channels = 1;
        pi->mode = d == 1 ? BMC__MODE_1 : d == 16 ? BMC__MODE_I : BMC__MODE_L; break;
    case 2: ok = d == 8 || d == 16; pi->channels = 3; pi->mode = BMC__MODE_RGB; break;
    case 3: ok = d == 1 || d == 2 || d == 4 || d == 8; pi->channels = 1; pi->mode = BMC__MODE_P; break;
    case 4: ok = d == 8 || d == 16; pi->channels = 2; pi->mode = d == 8 ? BMC__MODE_LA : BMC__MODE_RGBA; break;
    case 6: ok = d == 8 || d == 16; pi->channels = 4; pi->mode = BMC__MODE_RGBA; break;
    }
    if (!ok) return bmc__fail(BMC_E_IMAGE, "%s: PNG with invalid colour type %d / bit depth %d", name, pi->ctype, d);
    char what[600];
    snprintf(what, sizeof what, "%s: PNG", name);
    bmc_status st = bmc__check_size(what, w, h);
    pi->w = (int)w;
    pi->h = (int)h;
    return st;
}

bmc_status bmc__decode_png(const uint8_t *data, size_t size, const char *name, bmc__decoded *out) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    png_info pi = {0};
    const uint8_t *plte = NULL;
    uint32_t plte_len = 0;
    size_t idat_first = 0, idat_total = 0; /* offset of the first IDAT chunk, payload bytes */
    int have_ihdr = 0, in_idat = 0, done = 0;
    memset(out, 0, sizeof *out);
    if (size < 8 || memcmp(data, sig, 8))
        return bmc__fail(BMC_E_IMAGE, "%s: not a PNG file", name);

    /* chunks up to the end of the image data; everything after it is ignored */
    for (size_t p = 8; !done;) {
        if (p + 8 > size) {
            if (in_idat) break; /* the data is complete; IEND is optional for us, as for PIL */
            return bmc__fail(BMC_E_IMAGE, "%s: truncated PNG (ends at byte %zu, inside a chunk header)", name, size);
        }
        uint32_t len = be32(data + p);
        const uint8_t *type = data + p + 4;
        char tname[5] = {0};
        for (int i = 0; i < 4; i++) tname[i] = is_letter(type[i]) ? (char)type[i] : '?';
        int is_idat = !memcmp(type, "IDAT", 4);
        if (in_idat && !is_idat) break;
        if (len > 0x7fffffffu || !is_letter(type[0]) || !is_letter(type[1]) || !is_letter(type[2]) || !is_letter(type[3]))
            return bmc__fail(BMC_E_IMAGE, "%s: corrupt PNG (bad chunk header at byte %zu)", name, p);
        if (len + (size_t)12 > size - p)
            return bmc__fail(BMC_E_IMAGE, "%s: truncated PNG (chunk '%s' at byte %zu needs %u bytes, the file ends at %zu)",
                             name, tname, p, len + 12, size);
        if (bmc__crc32(0, type, (size_t)len + 4) != be32(data + p + 8 + len))
            return bmc__fail(BMC_E_IMAGE, "%s: corrupt PNG (CRC mismatch in chunk '%s' at byte %zu)", name, tname, p);
        const uint8_t *c = data + p + 8;
        if (!have_ihdr) {
            if (memcmp(type, "IHDR", 4))
                return bmc__fail(BMC_E_IMAGE, "%s: corrupt PNG (first chunk is '%s', not IHDR)", name, tname);
            bmc_status st = parse_ihdr(c, len, name, &pi);
            if (st != BMC_OK) return st;
            have_ihdr = 1;
        } else if (!memcmp(type, "PLTE", 4)) {
            plte = c;
            plte_len = len;
        } else if (is_idat) {
            if (!in_idat) idat_first = p;
            in_idat = 1;
            idat_total += len;
        } else if (!memcmp(type, "IEND", 4)) {
            done = 1;
        }
        p += (size_t)len + 12;
    }
    if (!in_idat) return bmc__fail(BMC_E_IMAGE, "%s: PNG without image data (no IDAT chunk)", name);

    /* gather the IDAT payloads, inflate, unfilter, unpack */
    size_t total = 0;
    for (int pass = 0; pass < (pi.interlace ? 7 : 1); pass++) {
        int pw, ph;
        pass_dims(&pi, pass, &pw, &ph);
        if (pw && ph) total += (size_t)ph * (1 + row_bytes(&pi, pw));
    }
    uint8_t *z = bmc__malloc(idat_total ? idat_total : 1), *raw = bmc__malloc(total + BMC__INFLATE_SLACK);
    if (!z || !raw) {
        bmc__free(z);
        bmc__free(raw);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory for %zu bytes of PNG data", name, total);
    }
    size_t zn = 0;
    for (size_t p = idat_first; zn < idat_total;) {
        uint32_t len = be32(data + p);
        memcpy(z + zn, data + p + 8, len);
        zn += len;
        p += (size_t)len + 12;
    }
    int ok = bmc__inflate(z, zn, raw, total);
    bmc__free(z);
    if (!ok) {
        bmc__free(raw);
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt or truncated PNG image data (inflate failed or %zu bytes short)",
                         name, total);
    }
    char what[600];
    snprintf(what, sizeof what, "%s: PNG", name);
    bmc_status st = bmc__decoded_alloc(out, what, pi.w, pi.h, pi.mode);
    if (st != BMC_OK) {
        bmc__free(raw);
        return st;
    }
    if (pi.ctype == 3 && plte) {
        uint32_t n = plte_len / 3 > 256 ? 256 : plte_len / 3;
        memcpy(out->palette, plte, (size_t)n * 3);
    }
    int fbpp = (pi.depth * pi.channels + 7) / 8; /* filter unit: bytes per complete pixel */
    uint8_t *r = raw;
    for (int pass = 0; pass < (pi.interlace ? 7 : 1); pass++) {
        int pw, ph;
        pass_dims(&pi, pass, &pw, &ph);
        if (!pw || !ph) continue;
        size_t rb = row_bytes(&pi, pw);
        const uint8_t *prev = NULL;
        for (int j = 0; j < ph; j++, r += rb + 1) {
            if (!unfilter(r + 1, prev, rb, r[0], fbpp)) {
                bmc__free(raw);
                bmc__decoded_free(out);
                return bmc__fail(BMC_E_IMAGE, "%s: corrupt PNG (unknown filter type %d)", name, r[0]);
            }
            prev = r + 1;
            const int *a = adam7[pass];
            if (!pi.interlace && pi.depth == 8) { /* the row is already in the decoded layout */
                memcpy(out->pix + (size_t)j * rb, r + 1, rb);
                continue;
            }
            for (int i = 0; i < pw; i++) {
                int x = pi.interlace ? a[0] + i * a[2] : i, y = pi.interlace ? a[1] + j * a[3] : j;
                put_pixel(&pi, r + 1, i, out, x, y);
            }
        }
    }
    bmc__free(raw);
    out->info.bits_stored = pi.depth;
    return BMC_OK;
}
