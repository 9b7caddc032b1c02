/* unicode.c - UTF-8 decoding and the Unicode algorithms of the text pipeline (canonical
 * decomposition, ordering and composition, lowercase), over the generated tables. */
#include "unicode.h"

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                        */

size_t bmc__utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    /* Lead byte: sequence length and the allowed range of the second byte (Table 3-7). */
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *cp = BMC__U_REPLACEMENT; /* C0, C1, F5..FF, or a stray continuation byte */
        return 1;
    }
    /* The maximal subpart ends at the first byte that cannot continue the sequence. */
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) {
            *cp = BMC__U_REPLACEMENT;
            return (size_t)i;
        }
        uint8_t t = s[i];
        uint8_t tlo = i == 1 ? lo : 0x80, thi = i == 1 ? hi : 0xBF;
        if (t < tlo || t > thi) {
            *cp = BMC__U_REPLACEMENT;
            return (size_t)i;
        }
        c = (c << 6) | (t & 0x3F);
    }
    *cp = c;
    return (size_t)len;
}

int bmc__utf8_put(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ------------------------------------------------------------------------------------------ */
/* Normalisation                                                                                */

/* Hangul syllables are composed and decomposed arithmetically (Unicode §3.12). */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

static int find_u32(const uint32_t *a, int n, uint32_t key) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] == key) return mid;
        if (a[mid] < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int bmc__u_decompose(uint32_t c, uint32_t *out, int hf) {
    if (c - S_BASE < (uint32_t)S_COUNT) {
        uint32_t s = c - S_BASE, t = s % T_COUNT;
        out[0] = L_BASE + s / N_COUNT;
        out[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (!t) return 2;
        out[2] = T_BASE + t;
        return 3;
    }
    unsigned f = bmc__u_flags(c);
    if (!(f & (hf ? BMC__U_DEC_HF : BMC__U_DEC))) {
        out[0] = c;
        return 1;
    }
    int i = find_u32(bmc__udecomp_cp, bmc__udecomp_count, c);
    if (i < 0) { /* cannot happen with consistent tables */
        out[0] = c;
        return 1;
    }
    int n = bmc__udecomp_off[i + 1] - bmc__udecomp_off[i];
    for (int k = 0; k < n; k++) out[k] = bmc__udecomp_seq[bmc__udecomp_off[i] + k];
    return n;
}

void bmc__u_reorder(uint32_t *s, size_t n, int hf) {
    /* Insertion sort inside each run of non-starters: stable, and runs are short. */
    for (size_t i = 1; i < n; i++) {
        int cc = bmc__u_ccc(s[i], hf);
        if (cc == 0) continue;
        uint32_t c = s[i];
        size_t j = i;
        while (j > 0) {
            int pc = bmc__u_ccc(s[j - 1], hf);
            if (pc <= cc) break; /* also stops at a starter (pc == 0) */
            s[j] = s[j - 1];
            j--;
        }
        s[j] = c;
    }
}

/* Primary composite of a + b (Hangul included), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a - L_BASE < (uint32_t)L_COUNT && b - V_BASE < (uint32_t)V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a - S_BASE < (uint32_t)S_COUNT && (a - S_BASE) % T_COUNT == 0 && b - T_BASE - 1 < (uint32_t)(T_COUNT - 1))
        return a + (b - T_BASE);
    if (a > 0x1FFFFF || b > 0x1FFFFF) return 0;
    uint64_t key = ((uint64_t)a << 21) | b;
    int lo = 0, hi = bmc__ucomp_count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (bmc__ucomp_key[mid] == key) return bmc__ucomp_val[mid];
        if (bmc__ucomp_key[mid] < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

size_t bmc__u_compose_all(uint32_t *s, size_t n) {
    /* UAX #15 canonical composition: a character C composes with the last starter L when no
     * character between them is blocking (combining class 0 or >= ccc(C)). */
    if (n == 0) return 0;
    size_t out = 1, starter = 0;
    int have_starter = bmc__u_ccc(s[0], 0) == 0;
    int last_cc = have_starter ? 0 : 256;
    for (size_t i = 1; i < n; i++) {
        uint32_t c = s[i];
        int cc = bmc__u_ccc(c, 0);
        if (have_starter && (last_cc < cc || (last_cc == 0 && out == starter + 1))) {
            uint32_t comp = compose(s[starter], c);
            if (comp) {
                s[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = out;
            have_starter = 1;
            last_cc = 0;
        } else {
            last_cc = cc;
        }
        s[out++] = c;
    }
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Case and ftfy maps                                                                           */

int bmc__u_lower(uint32_t c, uint32_t *out) {
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    if (!(bmc__u_flags(c) & BMC__U_LOWER)) {
        out[0] = c;
        return 1;
    }
    if (c == 0x130) { /* SpecialCasing: LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + U+0307 */
        out[0] = 0x69;
        out[1] = 0x307;
        return 2;
    }
    int i = find_u32(bmc__ulower_cp, bmc__ulower_count, c);
    out[0] = i >= 0 ? bmc__ulower_val[i] : c;
    return 1;
}

int bmc__u_ftfy_map(uint32_t c, const uint32_t **seq) {
    if (!(bmc__u_flags(c) & BMC__U_FTFY_MAP)) return 0;
    int i = find_u32(bmc__uftfy_cp, bmc__uftfy_count, c);
    if (i < 0) return 0;
    *seq = bmc__uftfy_seq + bmc__uftfy_off[i];
    return bmc__uftfy_off[i + 1] - bmc__uftfy_off[i];
}
