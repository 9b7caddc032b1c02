/* image_pnm.c - PBM/PGM/PPM (P1-P6) as PIL 9.4 opens them (src/PIL/PpmImagePlugin.py).
 *
 * P1/P4 -> '1'; P2/P5 -> 'L', or 'I' when maxval > 255; P3/P6 -> 'RGB'. Samples are scaled to
 * the mode's range as PIL does: round(v / maxval * 255) (65535 for 'I'), Python's round (half to
 * even) on the double quotient, clipped; maxval 255 (and 65535 for P5) is taken as is. The header
 * tokens follow PIL's reader: '#' comments end at CR/LF, at most 10 characters per token, and
 * exactly one whitespace byte ends the last token before raster data. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "image.h"

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* PpmImageFile._read_token: returns the token's value, or -1 (with *why) on a bad header. */
static long long read_token(const uint8_t *d, size_t n, size_t *p, const char **why) {
    char tok[16];
    int len = 0;
    while (len <= 10) {
        if (*p >= n) break;
        int c = d[(*p)++];
        if (is_ws(c)) {
            if (!len) continue;
            break;
        }
        if (c == '#') { /* comment: up to CR or LF (or the end) */
            while (*p < n && d[*p] != '\r' && d[*p] != '\n') (*p)++;
            if (*p < n) (*p)++;
            continue;
        }
        tok[len++] = (char)c;
    }
    if (!len) {
        *why = "header ends early";
        return -1;
    }
    if (len > 10) {
        *why = "header token too long";
        return -1;
    }
    long long v = 0;
    for (int i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9') {
            *why = "non-numeric header token";
            return -1;
        }
        v = v * 10 + (tok[i] - '0');
    }
    return v;
}

/* round(v / maxval * out_max) as Python computes it, clipped to out_max */
static int scale(long v, long maxval, int out_max) {
    double r = nearbyint((double)v / (double)maxval * (double)out_max);
    return r > out_max ? out_max : (int)r;
}

bmc_status bmc__decode_pnm(const uint8_t *d, size_t n, const char *name, bmc__decoded *out) {
    memset(out, 0, sizeof *out);
    if (n < 2 || d[0] != 'P' || d[1] < '1' || d[1] > '6' || (n > 2 && !is_ws(d[2])))
        return bmc__fail(BMC_E_IMAGE, "%s: not a PBM/PGM/PPM file (or an unsupported variant)", name);
    int kind = d[1] - '0', plain = kind <= 3;
    int bands = (kind == 3 || kind == 6) ? 3 : 1;
    size_t p = 3;
    const char *why = NULL;
    long long w = read_token(d, n, &p, &why), h = w < 0 ? -1 : read_token(d, n, &p, &why), maxval = 1;
    if (h >= 0 && kind != 1 && kind != 4) maxval = read_token(d, n, &p, &why);
    if (w < 0 || h < 0 || maxval < 0) return bmc__fail(BMC_E_IMAGE, "%s: corrupt PNM header (%s)", name, why);
    if (maxval < 1 || maxval > 65535)
        return bmc__fail(BMC_E_IMAGE, "%s: PNM maxval %lld (must be 1..65535)", name, maxval);
    int mode = (kind == 1 || kind == 4) ? BMC__MODE_1 : bands == 3 ? BMC__MODE_RGB
             : maxval > 255 ? BMC__MODE_I : BMC__MODE_L;
    char what[600];
    snprintf(what, sizeof what, "%s: PNM", name);
    bmc_status st = bmc__check_size(what, w, h);
    if (st != BMC_OK) return st;
    int W = (int)w, H = (int)h, out_max = mode == BMC__MODE_I ? 65535 : 255;
    size_t count = (size_t)W * H * bands;

    /* how much raster data is needed: check before allocating */
    size_t bytes_per = maxval > 255 ? 2 : 1;
    if (!plain) {
        size_t need = kind == 4 ? (size_t)((W + 7) / 8) * H : count * bytes_per;
        if (p > n || n - p < need)
            return bmc__fail(BMC_E_IMAGE, "%s: truncated PNM (%zu bytes of pixel data, %zu needed)", name,
                             p > n ? 0 : n - p, need);
    }
    if ((st = bmc__decoded_alloc(out, what, W, H, mode)) != BMC_OK) return st;

    for (size_t i = 0; i < count && !why; i++) {
        long v;
        if (kind == 4) { /* packed bits, 1 = black, rows padded to a byte */
            size_t x = i % W, y = i / W;
            v = (d[p + y * ((W + 7) / 8) + x / 8] >> (7 - x % 8)) & 1;
            out->pix[i] = v ? 0 : 255;
            continue;
        }
        if (!plain) {
            v = bytes_per == 2 ? (long)(d[p + 2 * i] << 8 | d[p + 2 * i + 1]) : d[p + i];
        } else if (kind == 1) { /* one character per pixel, whitespace and comments optional */
            int c = -1;
            while (p < n) {
                c = d[p++];
                if (c == '#') {
                    while (p < n && d[p] != '\r' && d[p] != '\n') p++;
                    c = -1;
                    continue;
                }
                if (!is_ws(c)) break;
                c = -1;
            }
            if (c != '0' && c != '1') {
                why = c < 0 ? "plain PBM data ends early" : "invalid plain PBM character";
                break;
            }
            out->pix[i] = c == '1' ? 0 : 255;
            continue;
        } else { /* plain decimal tokens */
            while (p < n && (is_ws(d[p]) || d[p] == '#')) {
                if (d[p] == '#')
                    while (p < n && d[p] != '\r' && d[p] != '\n') p++;
                else
                    p++;
            }
            int len = 0;
            v = 0;
            while (p < n && d[p] >= '0' && d[p] <= '9' && len <= 10) v = v * 10 + (d[p++] - '0'), len++;
            if (!len || len > 10 || (p < n && !is_ws(d[p]) && d[p] != '#')) {
                why = p >= n && !len ? "plain PNM data ends early" : "invalid plain PNM value";
                break;
            }
            if (v > maxval) {
                why = "plain PNM value above maxval";
                break;
            }
        }
        int s = (maxval == out_max && !plain) ? (int)v : scale(v, (long)maxval, out_max);
        if (mode == BMC__MODE_I) out->pix16[i] = (uint16_t)s;
        else out->pix[i] = (uint8_t)s;
    }
    if (why) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: PNM: %s", name, why);
    }
    int bits = 1; /* bits of maxval: a 12-bit PGM declares 4095 */
    while (bits < 16 && (1L << bits) <= maxval) bits++;
    out->info.bits_stored = bits;
    return BMC_OK;
}
