#!/usr/bin/env python3
"""gen_unicode.py - generate lib/unicode_tables.c from the Unicode Character Database.

Usage:  python3 tools/gen_unicode.py [--ucd /usr/share/unicode] [-o lib/unicode_tables.c]

Input: the UCD text files of Debian's `unicode-data` package (Unicode 15.0.0 on bookworm):
UnicodeData.txt, DerivedAge.txt, PropList.txt, SpecialCasing.txt, DerivedNormalizationProps.txt.
The output is deterministic: running this twice gives the same bytes.

Two families of properties are generated, because the text pipeline imitates two programs:

1. The Hugging Face `tokenizers` crate (Rust), as shipped in npm tokenizers@0.23.2. It does not
   use one Unicode version but three, and we reproduce each (verified against that build for
   every code point, see docs/TOKENIZER.md):
   - general categories come from the crate `unicode_categories` 0.1.1, whose tables are
     Unicode 8.0: a code point assigned after 8.0 is "unassigned" there (not Cc/Cf/Co, not Mn,
     not P*). Five code points changed category since 8.0; CATEGORY_8_0_FIXES lists them.
   - NFD comes from `unicode-normalization-alignments` 0.1.12, whose tables are Unicode 9.0:
     decompositions and combining classes of code points assigned after 9.0 are unknown there.
   - lowercase and White_Space come from Rust's std (char::to_lowercase, char::is_whitespace),
     Unicode 17.0 in that build: the UCD 15.0 mappings plus LOWER_16_17 below.
2. Python (open_clip's cleaning: ftfy, html.unescape, str.split): NFC with the full 15.0 data,
   str.isspace(), the `\\d` of the re module, and ftfy's character maps.
"""
import argparse
import os
import sys
import unicodedata

# Code points whose general category in Unicode 8.0 (as frozen in unicode_categories 0.1.1)
# differs from 15.0, among those assigned by 8.0. Checked against the crate's own table.
CATEGORY_8_0_FIXES = {
    0x1734: "Mn",   # HANUNOO SIGN PAMUDPOD: Mn in 8.0, Mc since 14.0
    0x1885: "Lo",   # MONGOLIAN LETTER ALI GALI BALUDA: Lo in 8.0, Mn since 9.0
    0x1886: "Lo",   # MONGOLIAN LETTER ALI GALI THREE BALUDA
    0xA9BD: "Mc",   # JAVANESE CONSONANT SIGN KERET: Mc in 8.0, Mn since 12.0
    0x111C9: "Po",  # SHARADA SANDHI MARK: Po in 8.0, Mn since 11.0
    0x166D: "Po",   # CANADIAN SYLLABICS CHI SIGN: Po in 8.0, So since 12.0
}

# Simple lowercase mappings added in Unicode 16.0 and 17.0 (UnicodeData.txt of those versions),
# which Rust's std knows and Debian's 15.0 UCD does not. (first, last, delta) or explicit pairs.
LOWER_16_17 = [
    (0x1C89, 0x1C89, 1),            # 16.0 CYRILLIC CAPITAL LETTER TJE
    (0xA7CB, 0xA7CB, 0x0264 - 0xA7CB),  # 16.0 LATIN CAPITAL LETTER RAMS HORN
    (0xA7CC, 0xA7CC, 1),            # 16.0 LATIN CAPITAL LETTER S WITH DIAGONAL STROKE
    (0xA7CE, 0xA7CE, 1),            # 17.0
    (0xA7D2, 0xA7D2, 1),            # 17.0
    (0xA7D4, 0xA7D4, 1),            # 17.0
    (0xA7DA, 0xA7DA, 1),            # 16.0 LATIN CAPITAL LETTER LAMBDA
    (0xA7DC, 0xA7DC, 0x019B - 0xA7DC),  # 16.0 LATIN CAPITAL LETTER LAMBDA WITH STROKE
    (0x10D50, 0x10D65, 0x20),       # 16.0 GARAY CAPITAL LETTERS
    (0x16EA0, 0x16EB8, 0x1B),       # 17.0 BERIA ERFE CAPITAL LETTERS
]

# The CJK ranges of tokenizers' BertNormalizer (normalizers/bert.rs is_chinese_char).
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

# Property bits (must match lib/unicode.h).
F_HF_OTHER = 1 << 0    # Cc, Cf or Co in Unicode 8.0 (BertNormalizer drops it)
F_HF_MN = 1 << 1       # Mn in Unicode 8.0 (dropped after NFD)
F_HF_PUNCT = 1 << 2    # P* in Unicode 8.0, or ASCII punctuation (BertPreTokenizer isolates it)
F_WS_RUST = 1 << 3     # White_Space (Rust char::is_whitespace)
F_WS_PY = 1 << 4       # Python str.isspace()
F_DEC_HF = 1 << 5      # has a canonical decomposition known to Unicode 9.0
F_DEC = 1 << 6         # has a canonical decomposition (15.0)
F_CCC_HF = 1 << 7      # non-zero combining class known to Unicode 9.0
F_LOWER = 1 << 8       # lowercase mapping differs from the code point (Rust, 17.0)
F_DIGIT_PY = 1 << 9    # decimal digit (Python re \d)
F_NFC_QC = 1 << 10     # NFC_Quick_Check is No or Maybe (NFC may change the text)
F_FTFY_MAP = 1 << 11   # ftfy replaces it (C1 control, Latin ligature, width form, curly quote)
F_CJK = 1 << 12        # inside CJK_RANGES (BertNormalizer puts spaces around it)

MAX = 0x110000


def parse_ranges(path):
    """Yield (first, last, fields...) from a UCD property file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(";")]
            r = fields[0]
            lo, hi = (r.split("..") + [r])[:2] if ".." in r else (r, r)
            yield int(lo, 16), int(hi, 16), fields[1:]


def load(ucd):
    gc = ["Cn"] * MAX
    ccc = [0] * MAX
    bidi = [""] * MAX
    decimal = [False] * MAX
    dec = {}
    lower = {}
    first = None
    with open(os.path.join(ucd, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fl = line.rstrip("\n").split(";")
            cp, name = int(fl[0], 16), fl[1]
            if name.endswith(", First>"):
                first = cp
                continue
            cps = range(first, cp + 1) if name.endswith(", Last>") else [cp]
            for c in cps:
                gc[c] = fl[2]
                ccc[c] = int(fl[3])
                bidi[c] = fl[4]
                decimal[c] = fl[6] != ""
                if fl[5] and not fl[5].startswith("<"):
                    dec[c] = [int(x, 16) for x in fl[5].split()]
                if fl[13]:
                    lower[c] = [int(fl[13], 16)]
    age = [None] * MAX
    for lo, hi, fields in parse_ranges(os.path.join(ucd, "DerivedAge.txt")):
        v = tuple(int(x) for x in fields[0].split("."))
        for c in range(lo, hi + 1):
            age[c] = v
    white = set()
    for lo, hi, fields in parse_ranges(os.path.join(ucd, "PropList.txt")):
        if fields[0] == "White_Space":
            white.update(range(lo, hi + 1))
    # SpecialCasing: unconditional lower mappings only (Rust char::to_lowercase ignores the
    # conditional ones such as Final_Sigma and the language-specific ones).
    for lo, hi, fields in parse_ranges(os.path.join(ucd, "SpecialCasing.txt")):
        if len(fields) >= 4 and fields[3] != "":
            continue
        lower[lo] = [int(x, 16) for x in fields[0].split()]
    excl, nfc_qc = set(), set()
    for lo, hi, fields in parse_ranges(os.path.join(ucd, "DerivedNormalizationProps.txt")):
        if fields[0] == "Full_Composition_Exclusion":
            excl.update(range(lo, hi + 1))
        elif fields[0] == "NFC_QC" and fields[1] in ("N", "M"):
            nfc_qc.update(range(lo, hi + 1))
    for lo, hi, delta in LOWER_16_17:
        for c in range(lo, hi + 1):
            assert c not in lower, hex(c)
            lower[c] = [c + delta]
    return gc, ccc, bidi, decimal, dec, lower, age, white, excl, nfc_qc


def full_decomp(c, dec):
    if c not in dec:
        return [c]
    out = []
    for d in dec[c]:
        out += full_decomp(d, dec)
    return out


def ftfy_maps():
    """ftfy 6.3.1's character fixes in the order fix_and_explain applies them, composed per
    code point: fix_c1_controls (sloppy windows-1252), fix_latin_ligatures,
    fix_character_width (NFKC of U+FF01..U+FFEF, U+3000 -> space), uncurl_quotes."""
    c1 = {}
    for b in range(0x80, 0xA0):
        try:
            c1[b] = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            c1[b] = chr(b)  # 'sloppy' codec: undefined bytes stay Latin-1
    lig = {0x132: "IJ", 0x133: "ij", 0x149: "\u02bcn", 0x1F1: "DZ", 0x1F2: "Dz", 0x1F3: "dz",
           0x1C4: "D\u017d", 0x1C5: "D\u017e", 0x1C6: "d\u017e", 0x1C7: "LJ", 0x1C8: "Lj",
           0x1C9: "lj", 0x1CA: "NJ", 0x1CB: "Nj", 0x1CC: "nj", 0xFB00: "ff", 0xFB01: "fi",
           0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "\u017ft", 0xFB06: "st"}
    width = {0x3000: " "}
    for i in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(i))
        if alt != chr(i):
            width[i] = alt
    quotes = {0x2BC: "'"}
    for i in range(0x2018, 0x201C):
        quotes[i] = "'"
    for i in range(0x201C, 0x2020):
        quotes[i] = '"'

    def tr(s, m):
        return "".join(m.get(ord(ch), ch) for ch in s)

    out = {}
    for c in sorted(set(c1) | set(lig) | set(width) | set(quotes)):
        s = chr(c)
        for m in (c1, lig, width, quotes):
            s = tr(s, m)
        if s != chr(c):
            out[c] = [ord(ch) for ch in s]
    return out


def build(ucd):
    gc, ccc, bidi, decimal, dec, lower, age, white, excl, nfc_qc = load(ucd)
    ftfy = ftfy_maps()

    def gc8(c):
        if c in CATEGORY_8_0_FIXES:
            return CATEGORY_8_0_FIXES[c]
        return gc[c] if age[c] is not None and age[c] <= (8, 0) else "Cn"

    flags = [0] * MAX
    for c in range(MAX):
        f = 0
        g8 = gc8(c)
        if g8 in ("Cc", "Cf", "Co"):
            f |= F_HF_OTHER
        if g8 == "Mn":
            f |= F_HF_MN
        if g8.startswith("P") or (c < 128 and chr(c) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"):
            f |= F_HF_PUNCT
        if c in white:
            f |= F_WS_RUST
        if bidi[c] in ("WS", "B", "S") or gc[c] == "Zs":
            f |= F_WS_PY
        if c in dec:
            f |= F_DEC
            if age[c] <= (9, 0):
                f |= F_DEC_HF
        if ccc[c] and age[c] <= (9, 0):
            f |= F_CCC_HF
        if c in lower and lower[c] != [c]:
            f |= F_LOWER
        if decimal[c]:
            f |= F_DIGIT_PY
        if c in nfc_qc:
            f |= F_NFC_QC
        if c in ftfy:
            f |= F_FTFY_MAP
        if any(a <= c <= b for a, b in CJK_RANGES):
            f |= F_CJK
        flags[c] = f
    # Facts lib/unicode.c relies on.
    for c in range(MAX):
        if ccc[c]:
            assert not flags[c] & (F_WS_RUST | F_WS_PY | F_HF_PUNCT | F_CJK), hex(c)
    assert flags[0x0A] & F_WS_PY and flags[0x1C] & F_WS_PY and not flags[0x1C] & F_WS_RUST

    decomp = {c: full_decomp(c, dec) for c in dec}
    comp = []
    for c, d in dec.items():
        if len(d) == 2 and c not in excl:
            comp.append((d[0], d[1], c))
    comp.sort()
    lows = sorted((c, v) for c, v in lower.items() if v != [c])
    return flags, ccc, decomp, comp, lows, ftfy


def two_level(values, block):
    """values[MAX] -> (stage1, stage2): values[c] == stage2[stage1[c // block] * block + c % block]."""
    blocks, index, stage1 = [], {}, []
    for b in range(0, MAX, block):
        key = tuple(values[b:b + block])
        if key not in index:
            index[key] = len(blocks)
            blocks.append(key)
        stage1.append(index[key])
    stage2 = [v for blk in blocks for v in blk]
    return stage1, stage2


def c_array(ctype, name, values, per_line=16, fmt="{}"):
    lines = []
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(fmt.format(v) for v in values[i:i + per_line]) + ",")
    return "const %s %s[%d] = {\n%s\n};\n" % (ctype, name, len(values), "\n".join(lines))


def emit(out_path, ucd):
    flags, ccc, decomp, comp, lows, ftfy = build(ucd)
    # Records: distinct (flags, ccc) pairs; each code point stores a record index.
    recs, rec_index, per_cp = [], {}, []
    for c in range(MAX):
        key = (flags[c], ccc[c])
        if key not in rec_index:
            rec_index[key] = len(recs)
            recs.append(key)
        per_cp.append(rec_index[key])
    assert len(recs) < 256, len(recs)
    best = None
    for block in (64, 128, 256):
        s1, s2 = two_level(per_cp, block)
        size = len(s1) * 2 + len(s2)
        if best is None or size < best[0]:
            best = (size, block, s1, s2)
    _, block, s1, s2 = best
    assert len(set(s1)) < 65536
    shift = block.bit_length() - 1

    dec_cps = sorted(decomp)
    dec_off, dec_seq = [0], []
    for c in dec_cps:
        dec_seq += decomp[c]
        dec_off.append(len(dec_seq))
    ftfy_cps = sorted(ftfy)
    ftfy_off, ftfy_seq = [0], []
    for c in ftfy_cps:
        ftfy_seq += ftfy[c]
        ftfy_off.append(len(ftfy_seq))
    single = [(c, v[0]) for c, v in lows if len(v) == 1]
    multi = [(c, v) for c, v in lows if len(v) > 1]
    assert len(multi) == 1 and multi[0][0] == 0x130, multi  # U+0130 -> i + U+0307

    hexf = "0x{:X}"
    parts = []
    parts.append("/* unicode_tables.c - GENERATED by tools/gen_unicode.py; do not edit.\n"
                 " * Source: Unicode Character Database %s (%s), plus the version pins described in\n"
                 " * tools/gen_unicode.py and docs/TOKENIZER.md. */\n" % (ucd_version(ucd), ucd))
    parts.append('#include "unicode.h"\n\n')
    parts.append("const int bmc__uprop_shift = %d;\n\n" % shift)
    parts.append("/* Distinct (flags, canonical combining class) records. */\n")
    parts.append("const bmc__uprop bmc__uprop_records[%d] = {\n%s\n};\n\n" % (
        len(recs), "\n".join("    {0x%04X, %d}," % r for r in recs)))
    parts.append("/* Record index of code point c: stage2[(stage1[c >> shift] << shift) + (c & mask)]. */\n")
    parts.append(c_array("uint16_t", "bmc__uprop_stage1", s1, 16) + "\n")
    parts.append(c_array("uint8_t", "bmc__uprop_stage2", s2, 24) + "\n")
    parts.append("/* Full canonical decompositions (recursive), sorted by code point; Hangul syllables\n"
                 " * are decomposed arithmetically in unicode.c. */\n")
    parts.append("const int bmc__udecomp_count = %d;\n" % len(dec_cps))
    parts.append(c_array("uint32_t", "bmc__udecomp_cp", dec_cps, 10, hexf))
    parts.append(c_array("uint16_t", "bmc__udecomp_off", dec_off, 16))
    parts.append(c_array("uint32_t", "bmc__udecomp_seq", dec_seq, 10, hexf) + "\n")
    parts.append("/* Primary composites (canonical pairs minus Full_Composition_Exclusion), sorted by\n"
                 " * (first, second); key = first << 21 | second. */\n")
    parts.append("const int bmc__ucomp_count = %d;\n" % len(comp))
    parts.append(c_array("uint64_t", "bmc__ucomp_key", [(a << 21) | b for a, b, _ in comp], 6,
                         "0x{:X}ull"))
    parts.append(c_array("uint32_t", "bmc__ucomp_val", [c for _, _, c in comp], 10, hexf) + "\n")
    parts.append("/* Simple lowercase mappings (Rust char::to_lowercase), sorted; U+0130 is the one\n"
                 " * unconditional multi-character mapping and is handled in unicode.c. */\n")
    parts.append("const int bmc__ulower_count = %d;\n" % len(single))
    parts.append(c_array("uint32_t", "bmc__ulower_cp", [c for c, _ in single], 10, hexf))
    parts.append(c_array("uint32_t", "bmc__ulower_val", [v for _, v in single], 10, hexf) + "\n")
    parts.append("/* ftfy's per-character replacements, composed in ftfy's order. */\n")
    parts.append("const int bmc__uftfy_count = %d;\n" % len(ftfy_cps))
    parts.append(c_array("uint32_t", "bmc__uftfy_cp", ftfy_cps, 10, hexf))
    parts.append(c_array("uint16_t", "bmc__uftfy_off", ftfy_off, 16))
    parts.append(c_array("uint32_t", "bmc__uftfy_seq", ftfy_seq, 10, hexf))
    text = "".join(parts)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print("%s: %d records, block %d, stage1 %d, stage2 %d, %d decompositions, %d composites, "
          "%d lowercase, %d ftfy, %d bytes of C" % (out_path, len(recs), block, len(s1), len(s2),
                                                    len(dec_cps), len(comp), len(single),
                                                    len(ftfy_cps), len(text)))


def ucd_version(ucd):
    with open(os.path.join(ucd, "DerivedAge.txt"), encoding="utf-8") as f:
        first = f.readline().strip()
    return first.lstrip("# ").replace("DerivedAge-", "").replace(".txt", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ucd", default="/usr/share/unicode")
    ap.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "..", "lib",
                                                           "unicode_tables.c"))
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.ucd, "UnicodeData.txt")):
        sys.exit("gen_unicode.py: no UnicodeData.txt under %s (apt-get install unicode-data)" % args.ucd)
    emit(args.output, args.ucd)


if __name__ == "__main__":
    main()
