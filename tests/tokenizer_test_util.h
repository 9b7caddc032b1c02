/* tokenizer_test_util.h - helpers for the tokenizer tests: a vocabulary built from vocab.txt,
 * the BiomedCLIP tokenizer configuration, a whole text cleaned by the library's per-line steps,
 * and just enough JSON reading for the test vectors (strings with escapes, arrays of ints).
 * Header-only (static functions). */
#ifndef BMC_TOKENIZER_TEST_UTIL_H
#define BMC_TOKENIZER_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "text_clean.h"
#include "unicode.h"

static inline const char *tu_shared_data(void) {
    const char *s = getenv("SHARED_DATA");
    return (s && *s) ? s : "../shared/data";
}

/* The whole file, NUL-terminated (malloc); NULL if unreadable. */
static inline char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

typedef struct tu_vocab {
    bmc__vocab v;
    uint32_t *offsets;
    char *text; /* the file, tokens packed in place */
} tu_vocab;

/* vocab.txt: one token per line, id = line number. 0 on success. */
static inline int tu_vocab_load(tu_vocab *tv, const char *path) {
    size_t len;
    memset(tv, 0, sizeof *tv);
    if (!(tv->text = tu_read_file(path, &len))) return -1;
    uint32_t n = 0;
    for (size_t i = 0; i < len; i++) n += tv->text[i] == '\n';
    if (len && tv->text[len - 1] != '\n') n++;
    tv->offsets = malloc(sizeof(uint32_t) * (n + 1));
    if (!tv->offsets) return -1;
    size_t w = 0, start = 0;
    uint32_t k = 0;
    tv->offsets[0] = 0;
    for (size_t i = 0; i <= len && k < n; i++) {
        if (i == len || tv->text[i] == '\n') {
            size_t e = i;
            if (e > start && tv->text[e - 1] == '\r') e--;
            memmove(tv->text + w, tv->text + start, e - start);
            w += e - start;
            tv->offsets[++k] = (uint32_t)w;
            start = i + 1;
        }
    }
    return bmc__vocab_init(&tv->v, tv->offsets, (const uint8_t *)tv->text, n, w) == BMC_OK ? 0 : -1;
}

static inline void tu_vocab_free(tu_vocab *tv) {
    bmc__vocab_free(&tv->v);
    free(tv->offsets);
    free(tv->text);
}

static inline int tu_id(const tu_vocab *tv, const char *token) {
    return bmc__vocab_find(&tv->v, token, strlen(token));
}

/* The tokenizer part of BiomedCLIP's configuration, special ids looked up in the vocabulary. */
static inline bmc__config tu_config(const tu_vocab *tv) {
    bmc__config c;
    memset(&c, 0, sizeof c);
    c.context_length = 256;
    c.vocab_size = tv->v.n;
    c.pad_id = (uint32_t)tu_id(tv, "[PAD]");
    c.unk_id = (uint32_t)tu_id(tv, "[UNK]");
    c.cls_id = (uint32_t)tu_id(tv, "[CLS]");
    c.sep_id = (uint32_t)tu_id(tv, "[SEP]");
    c.mask_id = (uint32_t)tu_id(tv, "[MASK]");
    c.lowercase = 1;
    c.strip_accents = 1;
    c.max_word_chars = 100;
    return c;
}

/* The shared data's BiomedBERT vocabulary and BiomedCLIP's tokenizer configuration; 0 on
 * success. */
static inline int tu_load_biomedbert(tu_vocab *tv, bmc__config *cfg) {
    char path[1024];
    snprintf(path, sizeof path, "%s/biomedbert-vocab.txt", tu_shared_data());
    if (tu_vocab_load(tv, path)) {
        fprintf(stderr, "cannot load %s\n", path);
        return -1;
    }
    *cfg = tu_config(tv);
    return 0;
}

/* The next non-empty line of a file read whole into buf[0..len), from *pos on (start at 0):
 * NUL-terminated in place, *end pointing at that NUL. NULL after the last line. */
static inline char *tu_next_line(char *buf, size_t len, size_t *pos, char **end) {
    while (*pos < len) {
        char *line = buf + *pos, *e = memchr(line, '\n', len - *pos);
        if (!e) e = buf + len;
        *e = 0;
        *pos = (size_t)(e - buf) + 1;
        if (e != line) {
            *end = e;
            return line;
        }
    }
    return NULL;
}

/* A whole text through the library's per-line cleaning, line by line as the tokenizer feeds it:
 * ftfy_only = 1 gives ftfy.fix_text(text) (bmc__ftfy_line), 0 open_clip's cleaning
 * (bmc__clean_line, then " ".join(text.split())). The result is NUL-terminated UTF-8 from
 * bmc__malloc (bmc__free it); every allocation is the library's, so that
 * bmc__alloc_fail_after reaches them all. */
static inline bmc_status tu_clean(const char *utf8, size_t len, int ftfy_only, char **out,
                                  size_t *out_len) {
    *out = NULL;
    bmc__clean_work w;
    bmc__clean_work_init(&w);
    bmc__cpbuf line, res;
    bmc__cpbuf_init(&line, NULL, 0);
    bmc__cpbuf_init(&res, NULL, 0);
    bmc_status st = BMC_OK;
    for (size_t pos = 0; pos < len && st == BMC_OK;) {
        const char *nl = memchr(utf8 + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - utf8) + 1 : len;
        line.n = 0;
        st = bmc__decode_utf8(utf8 + pos, end - pos, &line);
        if (st == BMC_OK)
            st = ftfy_only ? bmc__ftfy_line(&w, line.p, line.n, &res)
                           : bmc__clean_line(&w, line.p, line.n, &res);
        pos = end;
    }
    char *s = NULL;
    size_t n = 0, bytes;
    if (st == BMC_OK) {
        if (!bmc__mul_size(res.n, 4, &bytes) || !(s = bmc__malloc(bytes + 1))) {
            st = bmc__fail(BMC_E_NOMEM, "tu_clean: out of memory");
        } else {
            int space = 0; /* clean: " ".join(text.split()) over the U+0020 of bmc__clean_line */
            for (size_t i = 0; i < res.n; i++) {
                if (!ftfy_only && res.p[i] == ' ') {
                    space = n > 0;
                    continue;
                }
                if (space) s[n++] = ' ';
                space = 0;
                n += (size_t)bmc__utf8_put(res.p[i], s + n);
            }
            s[n] = 0;
        }
    }
    bmc__cpbuf_free(&line);
    bmc__cpbuf_free(&res);
    bmc__clean_work_free(&w);
    if (st != BMC_OK) return st;
    *out = s;
    if (out_len) *out_len = n;
    return BMC_OK;
}

static inline bmc_status tu_clean_text(const char *utf8, size_t len, char **out, size_t *out_len) {
    return tu_clean(utf8, len, 0, out, out_len);
}

static inline bmc_status tu_fix_text(const char *utf8, size_t len, char **out, size_t *out_len) {
    return tu_clean(utf8, len, 1, out, out_len);
}

/* Pointer to the value of "key" in [p, end), or NULL. */
static inline const char *tu_json_key(const char *p, const char *end, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    size_t n = strlen(pat);
    for (const char *q = p; q + n <= end; q++) {
        if (memcmp(q, pat, n)) continue;
        q += n;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
        return q;
    }
    return NULL;
}

static inline int tu_hex4(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* Decode the JSON string at p (p[0] == '"') into out (malloc'd, UTF-8, NUL-terminated; *len
 * bytes without the NUL). Returns the position after the closing quote, or NULL. */
static inline const char *tu_json_string(const char *p, char **out, size_t *len) {
    if (*p != '"') return NULL;
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    for (p++; s && *p && *p != '"'; p++) {
        if (n + 8 > cap && !(s = realloc(s, cap *= 2))) return NULL;
        if (*p != '\\') {
            s[n++] = *p;
            continue;
        }
        p++;
        unsigned u, lo;
        switch (*p) {
        case 'n': s[n++] = '\n'; break;
        case 't': s[n++] = '\t'; break;
        case 'r': s[n++] = '\r'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'u':
            if (tu_hex4(p + 1, &u)) goto bad;
            p += 4;
            if (u >= 0xD800 && u <= 0xDBFF && p[1] == '\\' && p[2] == 'u' && !tu_hex4(p + 3, &lo) &&
                lo >= 0xDC00 && lo <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            n += (size_t)bmc__utf8_put(u, s + n);
            break;
        default: s[n++] = *p; break; /* \" \\ \/ */
        }
    }
    if (!s || *p != '"') goto bad;
    s[n] = 0;
    *out = s;
    *len = n;
    return p + 1;
bad:
    free(s);
    return NULL;
}

/* Parse the JSON array of ints at p into ids[cap]; returns the count, or -1. */
static inline int tu_json_ints(const char *p, int *ids, int cap) {
    if (!p || *p != '[') return -1;
    int n = 0;
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t') p++;
        if (*p == ']') return n;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || n >= cap) return -1;
        ids[n++] = (int)v;
        p = end;
    }
}

/* Decode hex digits into bytes (malloc'd); *len bytes. */
static inline char *tu_unhex(const char *p, size_t *len) {
    size_t n = 0;
    while ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')) n++;
    char *b = malloc(n / 2 + 1);
    for (size_t i = 0; b && i + 1 < n; i += 2) {
        unsigned v;
        sscanf(p + i, "%2x", &v);
        b[i / 2] = (char)v;
    }
    *len = n / 2;
    return b;
}

#endif /* BMC_TOKENIZER_TEST_UTIL_H */
