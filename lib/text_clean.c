/* text_clean.c - open_clip's cleaning (ftfy.fix_text with its defaults, html.unescape twice,
 * whitespace) on code points. Each function reproduces one Python function; the name of that
 * function and its source are given above it. ftfy's mojibake repair (fix_encoding) is in
 * lib/ftfy_encoding.c. See text_clean.h and docs/TOKENIZER.md. */
#include <string.h>

#include "error.h"
#include "ftfy.h"
#include "text_clean.h"
#include "unicode.h"

/* ftfy.fix_text works on segments of at most this many code points (TextFixerConfig
 * max_decode_length), each ending at a '\n' when there is one. */
#define FTFY_MAX_SEGMENT 1000000
/* ftfy.fix_and_explain repeats its fixes until the text stops changing. Each repetition undoes
 * one more level of nested escapes ("&amp;amp;lt;"); we stop after this many (docs/TOKENIZER.md). */
#define FTFY_MAX_PASSES 16

void bmc__clean_work_init(bmc__clean_work *w) {
    bmc__cpbuf_init(&w->a, w->store[0], BMC__CLEAN_INLINE);
    bmc__cpbuf_init(&w->b, w->store[1], BMC__CLEAN_INLINE);
    bmc__cpbuf_init(&w->c, w->store[2], BMC__CLEAN_INLINE);
    bmc__cpbuf_init(&w->d, w->store[3], BMC__CLEAN_INLINE);
    w->ftfy_html = 1;
}

void bmc__clean_work_free(bmc__clean_work *w) {
    bmc__cpbuf_free(&w->a);
    bmc__cpbuf_free(&w->b);
    bmc__cpbuf_free(&w->c);
    bmc__cpbuf_free(&w->d);
}

static void put(bmc__cpbuf *b, uint32_t c) { b->p[b->n++] = c; } /* room reserved by caller */

/* UTF-8 s[0..n) decoded into b, whose room (n code points at most) the caller reserved. */
static void put_utf8(bmc__cpbuf *b, const char *s, size_t n) {
    const uint8_t *u = (const uint8_t *)s;
    while (n) {
        uint32_t c;
        size_t k = bmc__utf8_next(u, n, &c);
        put(b, c);
        u += k;
        n -= k;
    }
}

bmc_status bmc__decode_utf8(const char *utf8, size_t len, bmc__cpbuf *b) {
    bmc_status st = bmc__cpbuf_reserve(b, len);
    if (st == BMC_OK) put_utf8(b, utf8, len);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* HTML character references                                                                    */

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); }
static int is_alnum(uint32_t c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static uint32_t hex_val(uint32_t c) { return is_digit(c) ? c - '0' : (c | 32) - 'a' + 10; }

/* Python html._replace_charref, numeric branch: the replacement of &#num; (0 or 1 code point,
 * written to *out; returns the count). cp1252 for 0x80..0x9F as the HTML5 spec says. */
static int numeric_charref(uint32_t num, uint32_t *out) {
    static const uint16_t cp1252[32] = {
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
    if (num == 0) *out = 0xFFFD;
    else if (num == 0x0D) *out = 0x0D;
    else if (num >= 0x80 && num <= 0x9F) *out = cp1252[num - 0x80];
    else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) *out = 0xFFFD;
    else if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
             num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return 0; /* _invalid_codepoints: dropped */
    else *out = num;
    return 1;
}

/* Parse digits (base 10 or 16) of s[0..n) saturating above U+10FFFF. */
static uint32_t parse_num(const uint32_t *s, size_t n, int hex) {
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * (hex ? 16 : 10) + (hex ? hex_val(s[i]) : s[i] - '0');
        if (v > 0x10FFFF) v = 0x110000;
    }
    return v;
}

/* Binary search of a name given as code points in a table sorted by UTF-8 bytes. */
static const char *entity_find(const bmc__html_entity *t, int count, const uint32_t *name, size_t n) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const unsigned char *e = (const unsigned char *)t[mid].name;
        int cmp = 0;
        size_t i = 0;
        for (; i < n; i++) {
            if (!e[i]) { cmp = 1; break; } /* entry is a proper prefix of name: name > entry */
            uint32_t c = name[i] > 0x7F ? 0x100 : name[i];
            if (c != e[i]) { cmp = c < e[i] ? -1 : 1; break; }
        }
        if (!cmp && i == n && e[n]) cmp = -1;
        if (!cmp) return t[mid].value;
        if (cmp < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* The reference that may start at in[i] == '&': its replacement appended to out, and the index
 * after the text it replaces returned; or i when none starts there (the '&' then stays). */
typedef size_t (*charref_fn)(const uint32_t *in, size_t n, size_t i, bmc__cpbuf *out);

/* re.sub(pattern, fn, text) for a pattern whose matches start with '&', left to right, in -> out
 * (appended). A reference never expands: no value is longer than '&' + its name (checked by
 * the generator), and numeric ones give at most one code point. */
static bmc_status unescape(const uint32_t *in, size_t n, charref_fn ref, bmc__cpbuf *out) {
    bmc_status st = bmc__cpbuf_reserve(out, n);
    if (st != BMC_OK) return st;
    for (size_t i = 0; i < n;) {
        size_t next = in[i] == '&' ? ref(in, n, i, out) : i;
        if (next == i) put(out, in[i++]);
        else i = next;
    }
    return BMC_OK;
}

/* Python's html.unescape (Lib/html/__init__.py): the regex
 *   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * replaced by _replace_charref. */
static size_t py_charref(const uint32_t *in, size_t n, size_t i, bmc__cpbuf *out) {
    size_t j = i + 1;
    if (j < n && in[j] == '#') {
        int hex = j + 1 < n && (in[j + 1] | 32) == 'x';
        size_t d = j + 1 + (size_t)hex, k = d;
        while (k < n && (hex ? is_hex(in[k]) : is_digit(in[k]))) k++;
        if (k == d) return i; /* no digits: not a reference */
        uint32_t r;
        if (numeric_charref(parse_num(in + d, k - d, hex), &r)) put(out, r);
        return (k < n && in[k] == ';') ? k + 1 : k;
    }
    size_t k = j;
    while (k < n && k - j < 32) {
        uint32_t c = in[k];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
            c == ';')
            break;
        k++;
    }
    if (k == j) return i;
    size_t end = (k < n && in[k] == ';') ? k + 1 : k, len = end - j, used = len;
    const char *v = entity_find(bmc__html5, bmc__html5_count, in + j, len);
    /* Not a name: the longest prefix of >= 2 characters that is one, if any. */
    for (size_t x = len - 1; !v && x >= 2; x--) {
        v = entity_find(bmc__html5, bmc__html5_count, in + j, x);
        used = x;
    }
    if (v) {
        put_utf8(out, v, strlen(v));
        for (size_t m = j + used; m < end; m++) put(out, in[m]);
    } else {
        for (size_t m = i; m < end; m++) put(out, in[m]);
    }
    return end;
}

/* ftfy.fixes.unescape_html: HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24}; replaced by _unescape_fixup:
 * a name of html5 ending in ';', an upper-case variant (chardata._build_html_entities), or a
 * numeric reference that html.unescape consumes whole (its result must not contain ';'). */
static size_t ftfy_charref(const uint32_t *in, size_t n, size_t i, bmc__cpbuf *out) {
    size_t j = i + 1;
    int hash = j < n && in[j] == '#';
    j += (size_t)hash;
    size_t k = j;
    while (k < n && k - j <= 24 && is_alnum(in[k])) k++;
    if (k == j || k - j > 24 || k >= n || in[k] != ';') return i;
    if (!hash) {
        const char *v = entity_find(bmc__html5, bmc__html5_count, in + j, k + 1 - j);
        if (!v) v = entity_find(bmc__ftfy_upper, bmc__ftfy_upper_count, in + j, k + 1 - j);
        if (!v) return i;
        put_utf8(out, v, strlen(v));
        return k + 1;
    }
    int hex = (in[j] | 32) == 'x';
    size_t d = j + (size_t)hex, m = d;
    while (m < k && (hex ? is_hex(in[m]) : is_digit(in[m]))) m++;
    uint32_t r = 0;
    int nr = 0;
    if (m == k && m > d) nr = numeric_charref(parse_num(in + d, m - d, hex), &r);
    if (m != k || m == d || (nr == 1 && r == ';')) return i;
    if (nr) put(out, r);
    return k + 1;
}

/* ------------------------------------------------------------------------------------------ */
/* ftfy's other fixes                                                                           */

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes (composed into one
 * table by gen_unicode.py), then fix_line_breaks (\r\n, \r, U+2028, U+2029 -> \n; U+0085 has
 * already become U+2026 through fix_c1_controls). */
static bmc_status ftfy_char_fixes(const uint32_t *in, size_t n, bmc__cpbuf *out) {
    size_t need = 0;
    const uint32_t *seq;
    for (size_t i = 0; i < n; i++) {
        int k = bmc__u_ftfy_map(in[i], &seq);
        need += k ? (size_t)k : 1;
    }
    bmc_status st = bmc__cpbuf_reserve(out, need);
    if (st != BMC_OK) return st;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        int k = bmc__u_ftfy_map(c, &seq);
        if (k) {
            for (int m = 0; m < k; m++) put(out, seq[m]);
        } else if (c == '\r') {
            if (i + 1 < n && in[i + 1] == '\n') continue; /* the \n follows */
            put(out, '\n');
        } else if (c == 0x2028 || c == 0x2029) {
            put(out, '\n');
        } else {
            put(out, c);
        }
    }
    return BMC_OK;
}

static int ftfy_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* remove_terminal_escapes (ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]), with Python's Unicode \d),
 * then remove_control_chars (chardata._build_control_char_mapping). */
static bmc_status ftfy_removals(const uint32_t *in, size_t n, bmc__cpbuf *out) {
    bmc_status st = bmc__cpbuf_reserve(out, n);
    if (st != BMC_OK) return st;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0x1B && i + 1 < n && in[i + 1] == '[') {
            size_t k = i + 2;
            while (k < n && (in[k] == ';' || (bmc__u_flags(in[k]) & BMC__U_DIGIT_PY))) k++;
            if (k < n && in[k] < 0x80 && ((in[k] | 32) >= 'a' && (in[k] | 32) <= 'z')) {
                i = k;
                continue;
            }
        }
        if (!ftfy_control(c)) put(out, c);
    }
    return BMC_OK;
}

/* unicodedata.normalize('NFC', s) with the Unicode 15.0 tables. */
static bmc_status nfc(const uint32_t *in, size_t n, bmc__cpbuf *out) {
    int needed = 0;
    for (size_t i = 0; i < n && !needed; i++) {
        const bmc__uprop *p = bmc__uprop_of(in[i]);
        needed = (p->flags & BMC__U_NFC_QC) || p->ccc;
    }
    size_t len = n;
    uint32_t d[BMC__U_MAX_DECOMP];
    if (needed)
        for (size_t i = 0; i < n; i++) len += (size_t)bmc__u_decompose(in[i], d, 0) - 1;
    bmc_status st = bmc__cpbuf_reserve(out, len);
    if (st != BMC_OK) return st;
    if (!needed) {
        if (n) memcpy(out->p + out->n, in, n * sizeof *in);
        out->n += n;
        return BMC_OK;
    }
    size_t start = out->n;
    for (size_t i = 0; i < n; i++) out->n += (size_t)bmc__u_decompose(in[i], out->p + out->n, 0);
    bmc__u_reorder(out->p + start, out->n - start, 0);
    out->n = start + bmc__u_compose_all(out->p + start, out->n - start);
    return BMC_OK;
}

/* Printable ASCII (tabs and newlines allowed), without '&' when entities are decoded: no fix
 * changes it. fix_encoding in particular returns ASCII text at once (ftfy's
 * possible_encoding(text, 'ascii') test), so the mojibake repair costs ASCII text nothing. */
static int ftfy_trivial(const uint32_t *s, size_t n, int html) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c >= 0x7F || (c < 0x20 && c != '\t' && c != '\n') || (c == '&' && html)) return 0;
    }
    return 1;
}

static void swap_buf(bmc__cpbuf *x, bmc__cpbuf *y) {
    bmc__cpbuf t = *x;
    *x = *y;
    *y = t;
}

/* ftfy.fix_and_explain(segment): repeat the fixes until nothing changes.
 * The result is appended to out. */
static bmc_status ftfy_segment(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out) {
    for (size_t i = 0; i < n && w->ftfy_html; i++)
        if (in[i] == '<') w->ftfy_html = 0; /* unescape_html='auto', for this and later segments */
    bmc_status st;
    if (ftfy_trivial(in, n, w->ftfy_html)) {
        if ((st = bmc__cpbuf_reserve(out, n)) != BMC_OK) return st;
        if (n) memcpy(out->p + out->n, in, n * sizeof *in);
        out->n += n;
        return BMC_OK;
    }
    bmc__cpbuf *cur = &w->a, *x = &w->b, *y = &w->c;
    cur->n = 0;
    if ((st = bmc__cpbuf_reserve(cur, n)) != BMC_OK) return st;
    if (n) memcpy(cur->p, in, n * sizeof *in);
    cur->n = n;
    for (int pass = 0; pass < FTFY_MAX_PASSES; pass++) {
        x->n = y->n = 0;
        const bmc__cpbuf *src = cur;
        if (w->ftfy_html) {
            if ((st = unescape(cur->p, cur->n, ftfy_charref, x)) != BMC_OK) return st;
            src = x;
        }
        if ((st = bmc__ftfy_fix_encoding(src->p, src->n, y)) != BMC_OK) return st;
        x->n = 0;
        if ((st = ftfy_char_fixes(y->p, y->n, x)) != BMC_OK) return st;
        y->n = 0;
        if ((st = ftfy_removals(x->p, x->n, y)) != BMC_OK) return st;
        x->n = 0;
        if ((st = nfc(y->p, y->n, x)) != BMC_OK) return st;
        int same = x->n == cur->n && !memcmp(x->p, cur->p, x->n * sizeof *x->p);
        swap_buf(cur, x);
        if (same) break;
    }
    if ((st = bmc__cpbuf_reserve(out, cur->n)) != BMC_OK) return st;
    if (cur->n) memcpy(out->p + out->n, cur->p, cur->n * sizeof *cur->p);
    out->n += cur->n;
    return BMC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* A line                                                                                       */

bmc_status bmc__ftfy_line(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out) {
    for (size_t pos = 0; pos < n; pos += FTFY_MAX_SEGMENT) { /* a line, cut into segments */
        size_t len = n - pos < FTFY_MAX_SEGMENT ? n - pos : FTFY_MAX_SEGMENT;
        bmc_status st = ftfy_segment(w, in + pos, len, out);
        if (st != BMC_OK) return st;
    }
    return BMC_OK;
}

bmc_status bmc__clean_line(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out) {
    bmc__cpbuf *fixed = &w->d;
    fixed->n = 0;
    bmc_status st = bmc__ftfy_line(w, in, n, fixed);
    if (st != BMC_OK) return st;
    /* basic_clean: html.unescape(html.unescape(text)). w->a and w->b are free again. */
    const bmc__cpbuf *src = fixed;
    for (int round = 0; round < 2; round++) {
        bmc__cpbuf *dst = round ? &w->b : &w->a;
        int amp = 0;
        for (size_t i = 0; i < src->n && !amp; i++) amp = src->p[i] == '&';
        if (!amp) continue;
        dst->n = 0;
        if ((st = unescape(src->p, src->n, py_charref, dst)) != BMC_OK) return st;
        src = dst;
    }
    /* whitespace_clean: every str.isspace() character separates words. */
    if ((st = bmc__cpbuf_reserve(out, src->n)) != BMC_OK) return st;
    for (size_t i = 0; i < src->n; i++) {
        uint32_t c = src->p[i];
        put(out, (c < 0x80 ? (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F))
                           : (bmc__u_flags(c) & BMC__U_WS_PY) != 0) ? ' ' : c);
    }
    return BMC_OK;
}
