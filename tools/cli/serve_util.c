/* serve_util.c - small codecs for `biomedclip serve`: base64 (Debian has no small maintained C
 * base64 library; GLib's or OpenSSL's would be a large dependency for 40 lines), data URIs, the
 * image size from a file header (to refuse a decompression bomb before the decoder allocates
 * for it), and an uncompressed BMP writer for thumbnails (every browser shows BMP). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

unsigned char *srv_b64_decode(const char *s, size_t len, size_t *out_len, int *bad) {
    *bad = 0;
    signed char val[256];
    memset(val, -1, sizeof val);
    for (int i = 0; i < 64; i++) val[(unsigned char)b64_alphabet[i]] = (signed char)i;
    /* padding: at most two '=' at the end, and then the length must be a multiple of 4 */
    size_t pad = 0;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=') pad++;
    if (pad && len % 4) goto invalid;
    size_t n = len - pad;
    if (n % 4 == 1) goto invalid;
    unsigned char *out = malloc(n / 4 * 3 + 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = val[(unsigned char)s[i]];
        if (v < 0) {
            free(out);
            goto invalid;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* leftover bits must be zero (canonical encoding), as RFC 4648 section 3.5 allows to demand */
    if (acc != 0) {
        free(out);
        goto invalid;
    }
    *out_len = o;
    return out;
invalid:
    *bad = 1;
    return NULL;
}

char *srv_b64_encode(const unsigned char *p, size_t n) {
    char *out = malloc((n + 2) / 3 * 4 + 1), *q = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = b64_alphabet[v >> 18], *q++ = b64_alphabet[(v >> 12) & 63];
        *q++ = b64_alphabet[(v >> 6) & 63], *q++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *q++ = b64_alphabet[v >> 18], *q++ = b64_alphabet[(v >> 12) & 63], *q++ = '=', *q++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *q++ = b64_alphabet[v >> 18], *q++ = b64_alphabet[(v >> 12) & 63];
        *q++ = b64_alphabet[(v >> 6) & 63], *q++ = '=';
    }
    *q = '\0';
    return out;
}

int srv_data_uri(const char *uri, const char **payload, size_t *len) {
    if (strncmp(uri, "data:", 5) != 0) return -1;
    const char *comma = strchr(uri + 5, ',');
    if (!comma || comma - (uri + 5) < 7 || strncmp(comma - 7, ";base64", 7) != 0) return -1;
    *payload = comma + 1;
    *len = strlen(comma + 1);
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static unsigned le16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }

int srv_image_size(const unsigned char *p, size_t n, long long *w, long long *h) {
    if (n >= 24 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8) && !memcmp(p + 12, "IHDR", 4)) {
        *w = be32(p + 16), *h = be32(p + 20);
        return 0;
    }
    if (n >= 10 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) {
        *w = le16(p + 6), *h = le16(p + 8);
        return 0;
    }
    if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
        int32_t bw, bh;
        memcpy(&bw, p + 18, 4), memcpy(&bh, p + 22, 4); /* little-endian hosts only, as the library */
        *w = bw < 0 ? -(long long)bw : bw, *h = bh < 0 ? -(long long)bh : bh;
        return 0;
    }
    if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
        /* walk the marker segments to the first start-of-frame */
        size_t i = 2;
        while (i + 4 <= n) {
            if (p[i] != 0xFF) return -1;
            unsigned char m = p[i + 1];
            if (m == 0xFF) { i++; continue; }
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
            size_t seg = (size_t)p[i + 2] << 8 | p[i + 3];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (i + 9 > n) return -1;
                *h = (long long)p[i + 5] << 8 | p[i + 6];
                *w = (long long)p[i + 7] << 8 | p[i + 8];
                return 0;
            }
            if (m == 0xDA || seg < 2) return -1;
            i += 2 + seg;
        }
    }
    return -1;
}

unsigned char *srv_bmp(const unsigned char *rgb, int w, int h, size_t *len) {
    size_t row = ((size_t)w * 3 + 3) & ~(size_t)3, size = 54 + row * (size_t)h;
    unsigned char *b = calloc(1, size);
    if (!b) return NULL;
    uint32_t v;
    b[0] = 'B', b[1] = 'M';
    v = (uint32_t)size, memcpy(b + 2, &v, 4);
    v = 54, memcpy(b + 10, &v, 4);
    v = 40, memcpy(b + 14, &v, 4);
    v = (uint32_t)w, memcpy(b + 18, &v, 4);
    v = (uint32_t)h, memcpy(b + 22, &v, 4);
    b[26] = 1, b[28] = 24;
    v = (uint32_t)(row * (size_t)h), memcpy(b + 34, &v, 4);
    for (int y = 0; y < h; y++) { /* bottom-up rows, BGR */
        unsigned char *d = b + 54 + row * (size_t)(h - 1 - y);
        const unsigned char *s = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) d[3 * x] = s[3 * x + 2], d[3 * x + 1] = s[3 * x + 1], d[3 * x + 2] = s[3 * x];
    }
    *len = size;
    return b;
}
