/* image_jpeg.c - JPEG (stb_image, or libjpeg-turbo with JPEG=turbo).
 *
 * stb_image's JPEG decoder alone is compiled here, privately (stb_image_impl.h); PNG, GIF, BMP,
 * TGA and PNM have their own decoders that keep PIL's modes and quirks (image_png.c,
 * image_gif.c, image_bmp.c, image_tga.c, image_pnm.c), and PNG's inflater is inflate.c. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

#define STBI_ONLY_JPEG
#include "stb_image_impl.h"

/* ---- JPEG markers -------------------------------------------------------------------------- */

static int is_sof(int m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

/* One DHT segment body d[0..len): tables of (class/id byte, 16 code counts, the values). Marks
 * each table it holds in defined[class][id] (ids over 3, classes over 1: left to stb, which
 * refuses them); 0 if a table declares more than 256 codes or overruns the segment. */
static int bmc__jpeg_dht_ok(const uint8_t *d, size_t len, unsigned char defined[2][4]) {
    size_t q = 0;
    while (q < len) {
        if (q + 17 > len) return 0;
        size_t codes = 0;
        for (int i = 1; i <= 16; i++) codes += d[q + i];
        if (codes > 256 || q + 17 + codes > len) return 0;
        int tc = d[q] >> 4, th = d[q] & 15;
        if (tc <= 1 && th <= 3) defined[tc][th] = 1;
        q += 17 + codes;
    }
    return 1;
}

/* The Huffman tables a scan header (SOS body d[0..len)) decodes with, as stb_image 2.27 uses them
 * (stbi__parse_entropy_coded_data): a sequential scan reads each component's DC and AC table; a
 * progressive one its DC tables in a first DC scan (Ss = 0, Ah = 0), none in a DC refinement,
 * its AC tables in an AC scan (Ss > 0). 0 if one of them was never defined by a DHT before
 * (stb would decode with whatever its uninitialised table memory holds). Table ids over 3 are
 * left to stb, which refuses them. */
static int bmc__jpeg_sos_tables_ok(const uint8_t *d, size_t len, int progressive,
                                   const unsigned char defined[2][4]) {
    if (len < 1) return 1;
    size_t ns = d[0];
    if (1 + 2 * ns + 3 > len) return 1; /* malformed header: stb refuses it ("bad SOS len") */
    int ss = d[1 + 2 * ns], ah = d[3 + 2 * ns] >> 4;
    int uses_dc = !progressive || (ss == 0 && ah == 0), uses_ac = !progressive || ss > 0;
    for (size_t i = 0; i < ns; i++) {
        int td = d[2 + 2 * i] >> 4, ta = d[2 + 2 * i] & 15;
        if (uses_dc && td <= 3 && !defined[0][td]) return 0;
        if (uses_ac && ta <= 3 && !defined[1][ta]) return 0;
    }
    return 1;
}

int bmc__jpeg_scan(const uint8_t *d, size_t n, int *components, int *width, int *height,
                   int *has_eoi, int *undefined_table) {
    *components = *width = *height = *has_eoi = *undefined_table = 0;
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 0;
    size_t p = 2;
    int in_scan = 0;     /* after an SOS: entropy-coded bytes until the next real marker */
    int progressive = 0; /* the first frame header is SOF2 */
    unsigned char defined[2][4] = {{0}}; /* [class: DC, AC][id]: defined by a DHT so far */
    while (p < n) {
        if (d[p] != 0xFF) { /* entropy data, or junk between segments (libjpeg skips it) */
            const uint8_t *ff = memchr(d + p, 0xFF, n - p); /* the next marker, at memchr's speed */
            p = ff ? (size_t)(ff - d) : n;
            continue;
        }
        while (p < n && d[p] == 0xFF) p++; /* fill bytes */
        if (p >= n) break;
        int m = d[p++];
        if (m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue; /* stuffing, RSTn, TEM */
        if (m == 0xD9) {
            *has_eoi = in_scan; /* an EOI before any scan is no image either */
            return *components;
        }
        if (m == 0xD8) continue;
        if (p + 2 > n) break;
        size_t len = (size_t)d[p] << 8 | d[p + 1];
        if (len < 2) break;
        size_t body = p + len <= n ? len - 2 : n - p - 2; /* what the file holds of the body */
        if (is_sof(m) && !*components && p + 8 <= n) {
            *height = d[p + 3] << 8 | d[p + 4];
            *width = d[p + 5] << 8 | d[p + 6];
            *components = d[p + 7];
            progressive = m == 0xC2;
        }
        if (m == 0xC4 && !bmc__jpeg_dht_ok(d + p + 2, body, defined)) {
            *components = 0;
            return -1;
        }
        if (m == 0xDA) {
            if (!bmc__jpeg_sos_tables_ok(d + p + 2, body, progressive, defined)) *undefined_table = 1;
            in_scan = 1;
        }
        p += len;
    }
    return *components;
}

/* ---- decoding ------------------------------------------------------------------------------ */

int bmc__jpeg_backend(void) {
#ifdef BMC_WITH_LIBJPEG
    return 1;
#else
    return 0;
#endif
}

bmc_status bmc__decode_jpeg(const uint8_t *data, size_t size, const char *name, bmc__decoded *out) {
    int comps, w, h, eoi, undefined_table;
    memset(out, 0, sizeof *out);
    int found = bmc__jpeg_scan(data, size, &comps, &w, &h, &eoi, &undefined_table);
    if (found < 0)
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt JPEG: a Huffman table (DHT) declares more than 256 "
                         "codes or overruns its segment", name);
    /* libjpeg-turbo checks this itself, and stands in the standard tables 0 and 1 when a file has
     * none (Motion-JPEG frames), as PIL then does; stb_image 2.27 would decode with uninitialised
     * table memory, so the default build refuses such files. */
    if (undefined_table && !bmc__jpeg_backend())
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt JPEG: a scan (SOS) uses a Huffman table that no DHT "
                         "defined before it", name);
    if (found == 0)
        return bmc__fail(BMC_E_IMAGE, "%s: JPEG without a frame header (SOF): corrupt or truncated", name);
    if (comps != 1 && comps != 3 && comps != 4)
        return bmc__fail(BMC_E_IMAGE, "%s: JPEG with %d components (only 1, 3 or 4 are images)", name, comps);
    char what[600];
    snprintf(what, sizeof what, "%s: JPEG", name);
    bmc_status st = bmc__check_size(what, w, h);
    if (st != BMC_OK) return st;
#ifdef BMC_WITH_LIBJPEG
    (void)eoi; /* libjpeg-turbo reports a premature end itself, as PIL sees it */
    return bmc__decode_jpeg_turbo(data, size, name, out);
#else
    /* stb_image cannot tell a truncated file (it decodes zeros past the end); PIL refuses one */
    if (!eoi) return bmc__fail(BMC_E_IMAGE, "%s: truncated JPEG (no end-of-image marker after the scan)", name);
    if (size > 0x7fffffff) return bmc__fail(BMC_E_IMAGE, "%s: JPEG file over 2 GiB", name);
    /* stb folds a failed allocation in its format probe into "unknown image type" (the probe
     * says "not a JPEG" and stb tries the next format), so count our allocator's failures. */
    int x, y, n;
    unsigned long failed_before = bmc__alloc_failures();
    if (!stbi_info_from_memory(data, (int)size, &x, &y, &n)) {
        const char *why = stbi_failure_reason();
        if (bmc__alloc_failures() != failed_before)
            return bmc__fail(BMC_E_NOMEM, "%s: out of memory reading the JPEG header", name);
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt JPEG (%s)", name, why ? why : "?");
    }
    if ((st = bmc__check_size(what, x, y)) != BMC_OK) return st;
    uint8_t *pix = stbi_load_from_memory(data, (int)size, &x, &y, &n, 0);
    if (!pix) {
        const char *why = stbi_failure_reason();
        if (bmc__alloc_failures() != failed_before)
            return bmc__fail(BMC_E_NOMEM, "%s: out of memory decoding a %d x %d JPEG", name, x, y);
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt JPEG (%s)", name, why ? why : "?");
    }
    /* stb returns 1 channel for gray and 3 otherwise: a CMYK/YCCK file arrives already converted
     * to RGB by stb's own formula (PIL resizes in CMYK first; docs/IMAGE.md) */
    out->width = x;
    out->height = y;
    out->mode = n == 1 ? BMC__MODE_L : BMC__MODE_RGB;
    out->pix = pix;
    return BMC_OK;
#endif
}
