/* ftfy_encoding.c - ftfy.fix_encoding (ftfy 6.3.1, rspeer/python-ftfy: ftfy/__init__.py
 * fix_encoding_and_explain and _fix_encoding_one_step_and_explain, ftfy/fixes.py, ftfy/badness.py,
 * ftfy/chardata.py, ftfy/bad_codecs/) on code points, with its default configuration. Each
 * function names the Python it reproduces; the data (codecs, the badness regex's character
 * sets, the byte patterns) is generated from ftfy by tools/gen_ftfy_tables.py. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ftfy.h"
#include "unicode.h"

/* fix_encoding_and_explain repeats its step until the text stops changing. A repairing step
 * decodes UTF-8 (the text does not grow) or clears C1 controls, so ftfy itself needs few steps;
 * this bound only guards against a cycle we have not foreseen (docs/TOKENIZER.md). */
#define FIX_MAX_STEPS 64
/* decode_inconsistent_utf8 calls fix_encoding on shorter pieces, which may call it again; the
 * nesting is bounded by the length in Python, here by this depth (the piece is then kept). */
#define FIX_MAX_DEPTH 8

static const bmc__ftfy_char NO_CHAR; /* a character no table mentions */

static const bmc__ftfy_char *char_info(uint32_t c) {
    if (c < 0x80) return &bmc__ftfy_ascii[c];
    int lo = 0, hi = bmc__ftfy_n_chars - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (bmc__ftfy_chars[mid].cp == c) return &bmc__ftfy_chars[mid];
        if (bmc__ftfy_chars[mid].cp < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return &NO_CHAR;
}

static uint8_t clue_of(uint32_t c) { return char_info(c)->clue; }

/* Python's \w for str patterns */
static int is_word(uint32_t c) {
    int lo = 0, hi = bmc__ftfy_n_word - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (c < bmc__ftfy_word[mid][0]) hi = mid - 1;
        else if (c > bmc__ftfy_word[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* badness.is_bad: BADNESS_RE.search(text)                                                      */

/* Character information of s[pos], cached for the few (<= 8) positions an alternative spans. */
typedef struct scan {
    const uint32_t *s;
    size_t n;
    size_t tag[8]; /* pos + 1 of the cached slot */
    const bmc__ftfy_char *ci[8];
} scan;

static const bmc__ftfy_char *scan_info(scan *sc, size_t pos) {
    size_t k = pos & 7;
    if (sc->tag[k] != pos + 1) {
        sc->ci[k] = char_info(sc->s[pos]);
        sc->tag[k] = pos + 1;
    }
    return sc->ci[k];
}

/* Is c (with its information ci) in BADNESS_RE's set k? */
static int in_set(int k, const bmc__ftfy_char *ci, uint32_t c) {
    int member = (int)((ci->bad[k >> 6] >> (k & 63)) & 1);
    unsigned f = bmc__ftfy_bad_set_flags[k];
    if (f & BMC__FTFY_SET_NEG) return !member;
    if (member) return 1;
    if ((f & BMC__FTFY_SET_SPACE) && (bmc__u_flags(c) & BMC__U_WS_PY)) return 1;
    if ((f & BMC__FTFY_SET_WORD) && is_word(c)) return 1;
    if ((f & BMC__FTFY_SET_ANY) && c != '\n') return 1;
    return 0;
}

/* Does the alternative's elements e[...] match at pos (backtracking over optional sets)? */
static int alt_match(const uint16_t *e, scan *sc, size_t pos) {
    for (;; e++) {
        if (*e == 0xFFFF) return 1;
        int kind = *e >> 8, k = *e & 0xFF;
        if (kind == 2) { /* ^ */
            if (pos != 0) return 0;
            continue;
        }
        int here = pos < sc->n && in_set(k, scan_info(sc, pos), sc->s[pos]);
        if (kind == 1) /* optional: with it (greedy), then without */
            return (here && alt_match(e + 1, sc, pos + 1)) || alt_match(e + 1, sc, pos);
        if (!here) return 0;
        pos++;
    }
}

static int lowest_bit(uint64_t m) {
#if defined(__GNUC__)
    return __builtin_ctzll(m);
#else
    int k = 0;
    while (!(m & 1)) m >>= 1, k++;
    return k;
#endif
}

int bmc__ftfy_is_bad(const uint32_t *s, size_t n) {
    scan sc;
    sc.s = s;
    sc.n = n;
    memset(sc.tag, 0, sizeof sc.tag);
    size_t next = 0; /* the first character >= 0x80 at or after pos */
    for (size_t pos = 0; pos < n; pos++) {
        /* Every alternative needs a non-ASCII character at most bmc__ftfy_bad_lookback after
         * its start: a stretch of ASCII is skipped (most text is ASCII around a few symbols). */
        if (next < pos)
            for (next = pos; next < n && s[next] < 0x80; next++) {}
        if (next == n) break;
        if (next - pos > (size_t)bmc__ftfy_bad_lookback) pos = next - (size_t)bmc__ftfy_bad_lookback;
        /* only the alternatives this character can begin, and those beginning with \s or ^ */
        uint64_t m = scan_info(&sc, pos)->alts | bmc__ftfy_bad_other;
        while (m) {
            int a = lowest_bit(m);
            m &= m - 1;
            if (alt_match(bmc__ftfy_bad_alts + bmc__ftfy_bad_alt_start[a], &sc, pos)) return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes: restore_byte_a0, replace_lossy_sequences, the utf-8-variants codec                    */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static int byte_alt_match(const bmc__ftfy_byte_alt *a, const uint8_t *b, size_t n, size_t pos) {
    if (n - pos < (size_t)a->len) return 0;
    for (int i = 0; i < a->len; i++) {
        uint8_t c = b[pos + i];
        if (!((a->set[i][c >> 5] >> (c & 31)) & 1)) return 0;
    }
    return 1;
}

/* The alternative of a bytes regex matching at pos, first in the regex's order, or -1. */
static int byte_alts_at(const bmc__ftfy_byte_alt *alts, int count, const uint8_t *b, size_t n,
                        size_t pos) {
    for (int a = 0; a < count; a++)
        if (byte_alt_match(&alts[a], b, n, pos)) return a;
    return -1;
}

/* fixes.A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" */
static int a_grave_at(const uint8_t *b, size_t n, size_t i) {
    if (b[i] != 0xC3 || i + 1 >= n || b[i + 1] != ' ') return 0;
    const uint8_t *r = b + i + 2;
    size_t m = n - i - 2;
    if (m >= 1 && r[0] == ' ') return 0;
    if (m >= 5 && (!memcmp(r, "quele", 5) || !memcmp(r, "quela", 5) || !memcmp(r, "quilo", 5)))
        return 0;
    if (m >= 2 && r[0] == 's' && r[1] == ' ') return 0;
    return 1;
}

/* fixes.restore_byte_a0: in -> out (room for 1.5x in). */
static void restore_byte_a0(const bytes *in, bytes *out, bytes *tmp) {
    tmp->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (a_grave_at(in->p, in->n, i)) {
            tmp->p[tmp->n++] = 0xC3;
            tmp->p[tmp->n++] = 0xA0;
            tmp->p[tmp->n++] = ' ';
            i++;
        } else {
            tmp->p[tmp->n++] = in->p[i];
        }
    }
    out->n = 0;
    for (size_t i = 0; i < tmp->n;) {
        int a = byte_alts_at(bmc__ftfy_altered, bmc__ftfy_n_altered, tmp->p, tmp->n, i);
        if (a < 0) {
            out->p[out->n++] = tmp->p[i++];
            continue;
        }
        for (int k = 0; k < bmc__ftfy_altered[a].len; k++, i++)
            out->p[out->n++] = tmp->p[i] == ' ' ? 0xA0 : tmp->p[i];
    }
}

/* fixes.replace_lossy_sequences: each match of LOSSY_UTF8_RE -> EF BF BD (room for 3x in). */
static void replace_lossy(const bytes *in, bytes *out) {
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        int a = byte_alts_at(bmc__ftfy_lossy, bmc__ftfy_n_lossy, in->p, in->n, i);
        if (a < 0) {
            out->p[out->n++] = in->p[i++];
            continue;
        }
        out->p[out->n++] = 0xEF;
        out->p[out->n++] = 0xBF;
        out->p[out->n++] = 0xBD;
        i += (size_t)bmc__ftfy_lossy[a].len;
    }
}

/* One well-formed UTF-8 sequence at b[i..n) (Python's strict decoder): its length, or 0. */
static size_t utf8_strict(const uint8_t *b, size_t n, size_t i, uint32_t *cp) {
    uint8_t c = b[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (n - i < len) return 0;
    if (b[i + 1] < lo || b[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (b[i + k] < 0x80 || b[i + k] > 0xBF) return 0;
    uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < len; k++) v = v << 6 | (b[i + k] & 0x3F);
    *cp = v;
    return len;
}

/* The regex `$` of Python (no MULTILINE) at p in b[0..n): the end, or before a final '\n'. */
static int at_end(const uint8_t *b, size_t n, size_t p) {
    return p == n || (p + 1 == n && b[p] == '\n');
}

/* bytes.decode('utf-8-variants') (ftfy/bad_codecs/utf8_variants.py), strict: Python's UTF-8
 * plus C0 80 as U+0000 and CESU-8 surrogate pairs as one character, including the quirks of its
 * `$` (C0 followed by a final '\n' is U+0000 and swallows the '\n'; so does a CESU-8 pair whose
 * last byte is that '\n'). Plain 'utf-8', which ftfy uses when there is no C0 or ED byte,
 * decodes such bytes identically. Appends to out (room for n); 0 when Python raises. */
static int decode_utf8_variants(const uint8_t *b, size_t n, bmc__cpbuf *out) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = b[i];
        if (c == 0xC0) { /* NULL_EXPR \xc0(\x80|$) and then `len(input) > 1` */
            if (i + 1 < n && (b[i + 1] == 0x80 || at_end(b, n, i + 1))) {
                out->p[out->n++] = 0;
                i += 2;
                continue;
            }
            return 0;
        }
        if (c == 0xED && i + 1 < n && b[i + 1] >= 0xA0 && b[i + 1] <= 0xBF) {
            /* SURROGATE_EXPR / CESU8_EXPR: a six-byte CESU-8 pair, or an error */
            if (n - i < 6) return 0;
            const uint8_t *p = b + i;
            if (p[1] > 0xAF || p[2] < 0x80 || p[2] > 0xBF || p[3] != 0xED || p[4] < 0xB0 ||
                p[4] > 0xBF || !((p[5] >= 0x80 && p[5] <= 0xBF) || at_end(b, n, i + 5)))
                return 0;
            out->p[out->n++] = ((uint32_t)(p[1] & 0x0F) << 16) + ((uint32_t)(p[2] & 0x3F) << 10) +
                               ((uint32_t)(p[4] & 0x0F) << 6) + (p[5] & 0x3F) + 0x10000;
            i += 6;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_strict(b, n, i, &cp);
        if (!k) return 0;
        out->p[out->n++] = cp;
        i += k;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* decode_inconsistent_utf8: UTF8_DETECTOR_RE.sub(fix_embedded_mojibake, text)                  */

/* The end of the UTF8_DETECTOR_RE match at pos, or pos when there is none:
 *   (?<![continuation_strict]) ( [first_of_2][cont] | [first_of_3][cont]{2} | [first_of_4][cont]{3} )+
 * Greedy, taking at each repetition the first alternative that matches (nothing follows the
 * group, so Python never backtracks into it). */
static size_t detector_match(const uint32_t *s, size_t n, size_t pos) {
    if (pos > 0 && (clue_of(s[pos - 1]) & BMC__FTFY_CONT_STRICT)) return pos;
    size_t q = pos;
    for (;;) {
        if (q >= n) break;
        uint8_t f = clue_of(s[q]);
        size_t need = 0;
        static const uint8_t firsts[3] = {BMC__FTFY_FIRST2, BMC__FTFY_FIRST3, BMC__FTFY_FIRST4};
        for (int a = 0; a < 3 && !need; a++) {
            if (!(f & firsts[a]) || n - q < (size_t)a + 2) continue;
            size_t k = 1;
            while (k <= (size_t)a + 1 && (clue_of(s[q + k]) & BMC__FTFY_CONT)) k++;
            if (k == (size_t)a + 2) need = k;
        }
        if (!need) break;
        q += need;
    }
    return q;
}

static bmc_status fix_encoding(const uint32_t *s, size_t n, bmc__cpbuf *out, int depth);

static bmc_status decode_inconsistent_utf8(const uint32_t *s, size_t n, bmc__cpbuf *out,
                                           int depth) {
    for (size_t pos = 0; pos < n;) {
        size_t end = detector_match(s, n, pos);
        bmc_status st;
        if (end == pos) {
            if ((st = bmc__cpbuf_reserve(out, 1)) != BMC_OK) return st;
            out->p[out->n++] = s[pos++];
            continue;
        }
        /* fix_embedded_mojibake: only a shorter piece that is_bad, so that it ends */
        if (end - pos < n && depth < FIX_MAX_DEPTH && bmc__ftfy_is_bad(s + pos, end - pos)) {
            if ((st = fix_encoding(s + pos, end - pos, out, depth + 1)) != BMC_OK) return st;
        } else {
            if ((st = bmc__cpbuf_reserve(out, end - pos)) != BMC_OK) return st;
            memcpy(out->p + out->n, s + pos, (end - pos) * sizeof *s);
            out->n += end - pos;
        }
        pos = end;
    }
    return BMC_OK;
}

static int detector_search(const uint32_t *s, size_t n) {
    for (size_t pos = 0; pos < n; pos++)
        if (detector_match(s, n, pos) > pos) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* _fix_encoding_one_step_and_explain, fix_encoding_and_explain                                 */

static int is_c1(uint32_t c) { return c >= 0x80 && c <= 0x9F; }

/* One step on s[0..n): the result goes to out (emptied first). */
static bmc_status one_step(const uint32_t *s, size_t n, bmc__cpbuf *out, int depth) {
    out->n = 0;
    bmc_status st = BMC_OK;
    size_t i;
    for (i = 0; i < n && s[i] < 0x80; i++) {}
    if (i == n || !bmc__ftfy_is_bad(s, n)) goto same; /* possible_encoding(text, 'ascii') */

    /* chardata.possible_encoding for each codec at once */
    unsigned possible = (1u << bmc__ftfy_n_enc) - 1, c1 = 0;
    for (i = 0; i < n && possible; i++) {
        const bmc__ftfy_char *ci = char_info(s[i]);
        if (s[i] < 0x80 && s[i] != 0x1A) continue; /* [\x00-\x19\x1b-\x7f]: any codec */
        for (int e = 0; e < bmc__ftfy_n_enc; e++)
            if (!ci->enc[e]) possible &= ~(1u << e);
    }
    if (possible) {
        /* encode, restore_byte_a0 (1.5x), replace_lossy_sequences (3x): room for 5n bytes */
        size_t cap;
        if (!bmc__mul_size(n, 5, &cap) || cap > SIZE_MAX - 16)
            return bmc__fail(BMC_E_NOMEM, "text: %zu code points is too long", n);
        uint8_t *mem = bmc__malloc(3 * (cap + 16));
        if (!mem) return bmc__fail(BMC_E_NOMEM, "text: out of memory for mojibake repair");
        bytes x = {mem, 0}, y = {mem + cap + 16, 0}, z = {mem + 2 * (cap + 16), 0};
        int done = 0;
        for (int e = 0; e < bmc__ftfy_n_enc && !done; e++) {
            if (!(possible & (1u << e))) continue;
            bytes *cur = &x;
            x.n = 0;
            for (i = 0; i < n; i++) x.p[x.n++] = char_info(s[i])->enc[e];
            if (e != bmc__ftfy_enc_macroman) {
                int altered = 0; /* ALTERED_UTF8_RE.search(encoded_bytes) */
                for (i = 0; i < x.n && !altered; i++)
                    altered = byte_alts_at(bmc__ftfy_altered, bmc__ftfy_n_altered, x.p, x.n, i) >= 0;
                if (altered) {
                    restore_byte_a0(&x, &y, &z);
                    cur = &y;
                }
            }
            if (bmc__ftfy_enc_sloppy[e]) {
                bytes *dst = cur == &x ? &y : &x;
                replace_lossy(cur, dst);
                cur = dst;
            }
            if ((st = bmc__cpbuf_reserve(out, cur->n)) != BMC_OK) break;
            out->n = 0;
            done = decode_utf8_variants(cur->p, cur->n, out);
            if (!done) out->n = 0;
        }
        bmc__free(mem);
        if (st != BMC_OK || done) return st;
    }
    if (detector_search(s, n)) {
        if ((st = decode_inconsistent_utf8(s, n, out, depth)) != BMC_OK) return st;
        if (out->n != n || memcmp(out->p, s, n * sizeof *s)) return BMC_OK;
        out->n = 0;
    }
    for (i = 0; i < n; i++) c1 |= is_c1(s[i]);
    /* 'latin-1' possible: ftfy then asks for 'windows-1252' among the possible encodings,
     * which holds 'sloppy-windows-1252' instead, so it always goes on to re-decode the
     * Latin-1 bytes as strict Windows-1252 (an error on 81 8D 8F 90 9D). */
    if ((possible >> bmc__ftfy_enc_latin1) & 1 && c1) {
        int ok = 1;
        for (i = 0; i < n && ok; i++) ok = !is_c1(s[i]) || bmc__ftfy_cp1252[s[i] - 0x80];
        if (ok) {
            if ((st = bmc__cpbuf_reserve(out, n)) != BMC_OK) return st;
            for (i = 0; i < n; i++) out->p[out->n++] = is_c1(s[i]) ? bmc__ftfy_cp1252[s[i] - 0x80] : s[i];
            return BMC_OK;
        }
    }
    if (c1) { /* fixes.fix_c1_controls: sloppy Windows-1252 (undefined bytes stay) */
        if ((st = bmc__cpbuf_reserve(out, n)) != BMC_OK) return st;
        for (i = 0; i < n; i++) {
            uint32_t c = s[i];
            out->p[out->n++] = is_c1(c) && bmc__ftfy_cp1252[c - 0x80] ? bmc__ftfy_cp1252[c - 0x80] : c;
        }
        return BMC_OK;
    }
same:
    if ((st = bmc__cpbuf_reserve(out, n)) != BMC_OK) return st;
    if (n) memcpy(out->p, s, n * sizeof *s);
    out->n = n;
    return BMC_OK;
}

static bmc_status fix_encoding(const uint32_t *s, size_t n, bmc__cpbuf *out, int depth) {
    bmc_status st;
    size_t i;
    for (i = 0; i < n && s[i] < 0x80; i++) {}
    if (i == n || !bmc__ftfy_is_bad(s, n)) { /* the first step would return it unchanged */
        if ((st = bmc__cpbuf_reserve(out, n)) != BMC_OK) return st;
        if (n) memcpy(out->p + out->n, s, n * sizeof *s);
        out->n += n;
        return BMC_OK;
    }
    bmc__cpbuf a, b;
    bmc__cpbuf_init(&a, NULL, 0);
    bmc__cpbuf_init(&b, NULL, 0);
    st = bmc__cpbuf_reserve(&a, n);
    if (st == BMC_OK) {
        memcpy(a.p, s, n * sizeof *s);
        a.n = n;
    }
    for (int step = 0; st == BMC_OK && step < FIX_MAX_STEPS; step++) {
        if ((st = one_step(a.p, a.n, &b, depth)) != BMC_OK) break;
        int same = a.n == b.n && !memcmp(a.p, b.p, a.n * sizeof *a.p);
        bmc__cpbuf t = a;
        a = b;
        b = t;
        if (same) break;
    }
    if (st == BMC_OK && (st = bmc__cpbuf_reserve(out, a.n)) == BMC_OK) {
        if (a.n) memcpy(out->p + out->n, a.p, a.n * sizeof *a.p);
        out->n += a.n;
    }
    bmc__cpbuf_free(&a);
    bmc__cpbuf_free(&b);
    return st;
}

bmc_status bmc__ftfy_fix_encoding(const uint32_t *s, size_t n, bmc__cpbuf *out) {
    return fix_encoding(s, n, out, 0);
}
