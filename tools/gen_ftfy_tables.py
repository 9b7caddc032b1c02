#!/usr/bin/env python3
"""gen_ftfy_tables.py - generate lib/ftfy_tables.c: the data of ftfy's fix_encoding (ftfy 6.3.1),
taken from ftfy's own modules, for lib/ftfy_encoding.c.

Usage:  python3 tools/gen_ftfy_tables.py --ftfy DIR [--ucd /usr/share/unicode] [-o lib/ftfy_tables.c]
    --ftfy DIR   a directory holding the `ftfy` package (a checkout of rspeer/python-ftfy at
                 tag v6.3.1); it needs python3-wcwidth. Only run by hand, never by the build.

What is generated (nothing of it is typed by hand):
- the single-byte codecs ftfy tries (chardata.CHARMAP_ENCODINGS, in its order): for every
  character that chardata.possible_encoding accepts beyond [\\x00-\\x19\\x1b-\\x7f], the byte
  Python's codec (ftfy's sloppy-* codecs for windows-125x) encodes it to;
- Windows-1252 of bytes 0x80..0x9F, strict (0 where Python's cp1252 has no character) -- the
  'latin-1 -> windows-1252' step and fix_c1_controls (sloppy: an undefined byte stays itself);
- badness.BADNESS_RE, parsed with Python's own regex parser (re._parser) into its alternatives,
  each a sequence of character sets (a set may be optional, `\\s?`, or be `^`); the sets'
  members (explicit code points, plus the flags \\s, \\w and `.`);
- chardata.UTF8_CLUES: the four classes of UTF8_DETECTOR_RE, by testing every code point;
- chardata.ALTERED_UTF8_RE and chardata.LOSSY_UTF8_RE (bytes patterns), parsed the same way,
  as alternatives of byte sets, in the regex's order;
- Python's \\w (str.isalnum() or '_') from the Unicode Character Database in --ucd (the
  version lib/unicode_tables.c follows), as ranges.
The regexes whose structure lib/ftfy_encoding.c spells out (fixes.A_GRAVE_WORD_RE,
chardata.C1_CONTROL_RE, UTF8_DETECTOR_RE's shape, utf8_variants' patterns) are compared with
the strings the C code implements, so a future ftfy that changes them fails here loudly.
"""
import argparse
import codecs
import os
import re
import sys

try:
    import re._parser as sre_parse
    import re._constants as sre_c
except ImportError:  # Python < 3.11
    import sre_parse
    import sre_constants as sre_c

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

F_SPACE, F_WORD, F_ANY, F_NEG = 1, 2, 4, 8
E_SET, E_OPT, E_BOL = 0, 1, 2


def expand(items, bytes_mode):
    """A parsed regex (without captures' meaning) -> list of alternatives, each a list of
    elements (kind, members, flags). Only what these patterns use is supported."""
    seqs = [[]]
    for op, av in items:
        if op is sre_c.BRANCH:
            alts = []
            for sub in av[1]:
                alts += expand(sub.data, bytes_mode)
            seqs = [s + a for s in seqs for a in alts]
        elif op is sre_c.SUBPATTERN:
            sub = expand(av[3].data, bytes_mode)
            seqs = [s + a for s in seqs for a in sub]
        elif op is sre_c.MAX_REPEAT:
            lo, hi, sub = av
            one = expand(sub.data, bytes_mode)
            assert len(one) == 1 and len(one[0]) == 1, "repeat of more than one set"
            el = one[0][0]
            if (lo, hi) == (0, 1):
                seqs = [s + [(E_OPT, el[1], el[2])] for s in seqs]
            else:
                assert lo == hi, (lo, hi)
                seqs = [s + [el] * lo for s in seqs]
        elif op is sre_c.AT:
            assert av is sre_c.AT_BEGINNING, av
            seqs = [s + [(E_BOL, frozenset(), 0)] for s in seqs]
        else:
            el = (E_SET,) + charset(op, av, bytes_mode)
            seqs = [s + [el] for s in seqs]
    return seqs


def charset(op, av, bytes_mode):
    members, flags = set(), 0
    if op is sre_c.LITERAL:
        members.add(av)
    elif op is sre_c.ANY:
        assert not bytes_mode
        flags |= F_ANY
    elif op is sre_c.IN:
        for iop, iav in av:
            if iop is sre_c.LITERAL:
                members.add(iav)
            elif iop is sre_c.RANGE:
                members.update(range(iav[0], iav[1] + 1))
            elif iop is sre_c.NEGATE:  # [^...]: the members are what it excludes
                assert not bytes_mode
                flags |= F_NEG
            elif iop is sre_c.CATEGORY:
                assert not bytes_mode
                assert not flags & F_NEG
                flags |= {sre_c.CATEGORY_SPACE: F_SPACE, sre_c.CATEGORY_WORD: F_WORD}[iav]
            else:
                raise AssertionError("unsupported class item %r" % (iop,))
    else:
        raise AssertionError("unsupported regex op %r" % (op,))
    return frozenset(members), flags


def parse(regex):
    return sre_parse.parse(regex.pattern, regex.flags).data


def word_ranges(ucd):
    """Python's \\w for str patterns: str.isalnum() (categories L*, N*, or a numeric value) or '_'."""
    word = set([0x5F])
    first = None
    with open(os.path.join(ucd, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fl = line.split(";")
            c, name, cat = int(fl[0], 16), fl[1], fl[2]
            ok = cat[0] in "LN" or fl[8] != ""
            if name.endswith(", First>"):
                first = c
                continue
            lo = first if name.endswith(", Last>") else c
            first = None
            if ok:
                word.update(range(lo, c + 1))
    ranges, cs = [], sorted(word)
    for c in cs:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def check_hand_coded(ftfy):
    from ftfy import chardata, fixes
    from ftfy.bad_codecs import utf8_variants as uv
    # lib/ftfy_encoding.c: a_grave_fix()
    assert fixes.A_GRAVE_WORD_RE.pattern == b"\xc3 (?! |quele|quela|quilo|s )"
    # lib/ftfy_encoding.c: the C1 tests
    assert chardata.C1_CONTROL_RE.pattern == r"[\x80-\x9f]"
    # lib/ftfy_encoding.c: decode_utf8_variants()
    assert uv.CESU8_EXPR == (b"(\xed([\xa0-\xaf]|$)([\x80-\xbf]|$)(\xed|$)([\xb0-\xbf]|$)"
                             b"([\x80-\xbf]|$))")
    assert uv.SURROGATE_EXPR == b"(\xed([\xa0-\xbf]|$)([\x80-\xbf]|$))"
    assert uv.NULL_EXPR == b"(\xc0(\x80|$))"
    # lib/ftfy_encoding.c: detector_match(): (?<![strict])([f2][c]|[f3][c]{2}|[f4][c]{3})+
    pat = re.sub(r"\s+", "", chardata.UTF8_DETECTOR_RE.pattern)
    c = chardata.UTF8_CLUES
    want = ("(?<![%s])([%s][%s]|[%s][%s]{2}|[%s][%s]{3})+" % (
        c["utf8_continuation_strict"], c["utf8_first_of_2"], c["utf8_continuation"],
        c["utf8_first_of_3"], c["utf8_continuation"], c["utf8_first_of_4"],
        c["utf8_continuation"]))
    assert pat == re.sub(r"\s+", "", want), "UTF8_DETECTOR_RE changed"
    assert chardata.ENCODING_REGEXES["ascii"].pattern == "^[\x00-\x7f]*$"


def build(ftfy, ucd):
    from ftfy import badness, chardata
    check_hand_coded(ftfy)
    encs = list(chardata.CHARMAP_ENCODINGS)
    assert len(encs) <= 16
    # Characters each codec accepts beyond the common ASCII part, and their bytes.
    chars = {}  # code point -> dict
    def rec(cp):
        return chars.setdefault(cp, {"bad": 0, "clue": 0, "enc": [0] * len(encs)})
    for k, e in enumerate(encs):
        rx = chardata.ENCODING_REGEXES[e]
        accepted = bytes(list(range(0x80, 0x100)) + [0x1A]).decode(e)
        for ch in accepted:
            assert rx.match(ch)
            b = ch.encode(e)
            assert len(b) == 1 and b.decode(e) == ch
            if ch == "\x1a" or ord(ch) >= 0x80:
                rec(ord(ch))["enc"][k] = b[0]
            else:
                assert b[0] == ord(ch)
        # nothing else is accepted (spot check of the regex over the BMP)
        for cp in range(0x10000):
            if 0xD800 <= cp < 0xE000:
                continue
            ok = bool(rx.match(chr(cp)))
            mine = (cp < 0x80 and cp != 0x1A) or (cp in chars and chars[cp]["enc"][k] != 0)
            assert ok == mine, (e, hex(cp))
    # Windows-1252, strict and sloppy, of 0x80..0x9F
    cp1252 = []
    sloppy = bytes(range(0x80, 0xA0)).decode("sloppy-windows-1252")
    for b in range(0x80, 0xA0):
        try:
            ch = bytes([b]).decode("windows-1252")
            assert ch == sloppy[b - 0x80]
            cp1252.append(ord(ch))
        except UnicodeDecodeError:
            assert sloppy[b - 0x80] == chr(b)
            cp1252.append(0)
    # BADNESS_RE
    alts = expand(parse(badness.BADNESS_RE), False)
    sets, set_index = [], {}
    alt_codes = []
    for alt in alts:
        code = []
        for kind, members, flags in alt:
            if kind == E_BOL:
                code.append((E_BOL, 0))
                continue
            key = (members, flags)
            if key not in set_index:
                set_index[key] = len(sets)
                sets.append(key)
            code.append((kind, set_index[key]))
        alt_codes.append(code)
    assert len(sets) <= 128, len(sets)
    assert len(alt_codes) <= 64, len(alt_codes)
    # Per character: the alternatives whose first element is a set without flags holding it
    def plain_first(code):
        return code[0][0] == E_SET and sets[code[0][1]][1] == 0
    ascii_alts = [0] * 128
    for a, code in enumerate(alt_codes):
        if plain_first(code):
            for cp in sets[code[0][1]][0]:
                if cp < 0x80:
                    ascii_alts[cp] |= 1 << a
                else:
                    rec(cp)["alts"] = rec(cp).get("alts", 0) | 1 << a
    ascii_bad = [0] * 128
    for i, (members, flags) in enumerate(sets):
        for cp in members:
            if cp < 0x80:
                ascii_bad[cp] |= 1 << i
            else:
                rec(cp)["bad"] |= 1 << i
    # UTF8_CLUES classes: bit 0 first_of_2, 1 first_of_3, 2 first_of_4, 3 continuation,
    # 4 continuation_strict
    clue_names = ["utf8_first_of_2", "utf8_first_of_3", "utf8_first_of_4", "utf8_continuation",
                  "utf8_continuation_strict"]
    ascii_clue = [0] * 128
    for bit, name in enumerate(clue_names):
        rx = re.compile("[%s]" % chardata.UTF8_CLUES[name])
        for cp in range(0x110000):
            if 0xD800 <= cp < 0xE000:
                continue
            if rx.fullmatch(chr(cp)):
                if cp < 0x80:
                    ascii_clue[cp] |= 1 << bit
                else:
                    rec(cp)["clue"] |= 1 << bit
    # byte regexes
    def byte_alts(regex):
        out = []
        for alt in expand(parse(regex), True):
            assert all(k == E_SET and not f for k, _, f in alt) and len(alt) <= 6
            out.append([m for _, m, _ in alt])
        return out
    altered = byte_alts(chardata.ALTERED_UTF8_RE)
    lossy = byte_alts(chardata.LOSSY_UTF8_RE)
    return dict(encs=encs, chars=chars, cp1252=cp1252, sets=sets, alts=alt_codes,
                ascii_bad=ascii_bad, ascii_clue=ascii_clue, ascii_alts=ascii_alts, altered=altered, lossy=lossy,
                word=word_ranges(ucd))


def emit(path, d, ftfy_version, ucd):
    L = []
    w = L.append
    w("/* ftfy_tables.c - GENERATED by tools/gen_ftfy_tables.py from ftfy %s (rspeer/python-ftfy)\n"
      " * and the Unicode Character Database in %s. Do not edit; see lib/ftfy.h. */\n"
      % (ftfy_version, ucd))
    w('#include "ftfy.h"\n\n')
    w("const int bmc__ftfy_n_enc = %d;\n" % len(d["encs"]))
    w("const char *const bmc__ftfy_enc_name[] = {%s};\n"
      % ", ".join('"%s"' % e for e in d["encs"]))
    w("/* 1 for ftfy's sloppy-* codecs (replace_lossy_sequences applies) */\n")
    w("const uint8_t bmc__ftfy_enc_sloppy[] = {%s};\n"
      % ", ".join("1" if e.startswith("sloppy") else "0" for e in d["encs"]))
    w("const int bmc__ftfy_enc_latin1 = %d, bmc__ftfy_enc_macroman = %d;\n\n"
      % (d["encs"].index("latin-1"), d["encs"].index("macroman")))
    w("/* Windows-1252 of bytes 0x80..0x9F (0: undefined in Python's strict cp1252) */\n")
    w("const uint16_t bmc__ftfy_cp1252[32] = {%s};\n\n"
      % ", ".join("0x%04X" % c for c in d["cp1252"]))
    w("/* ASCII: BADNESS_RE set bits, UTF8_CLUES class bits, bytes ([\\x00-\\x19\\x1b-\\x7f] are\n"
      " * themselves in every codec; U+001A only where byte 1A decodes to it, not in the sloppy\n"
      " * codecs, which read 1A as U+FFFD) */\n")
    w("const bmc__ftfy_char bmc__ftfy_ascii[128] = {\n")
    for c in range(128):
        v = d["ascii_bad"][c]
        enc = [c] * len(d["encs"]) if c != 0x1A else \
            [d["chars"][0x1A]["enc"][k] for k in range(len(d["encs"]))]
        w("    {0x%02X, {0x%016XULL, 0x%016XULL}, 0x%016XULL, %d, {%s}},\n"
          % (c, v & (2**64 - 1), v >> 64, d["ascii_alts"][c], d["ascii_clue"][c],
             ", ".join("0x%02X" % b for b in enc)))
    w("};\n\n")
    chars = sorted((cp, r) for cp, r in d["chars"].items() if cp >= 0x80)
    w("/* Every other character that some table mentions, sorted: BADNESS_RE set bits, the\n"
      " * alternatives it can begin, UTF8_CLUES class bits, and its byte in each codec (0: the\n"
      " * codec cannot encode it). */\n")
    w("const int bmc__ftfy_n_chars = %d;\n" % len(chars))
    w("const bmc__ftfy_char bmc__ftfy_chars[] = {\n")
    for cp, r in chars:
        w("    {0x%04X, {0x%016XULL, 0x%016XULL}, 0x%016XULL, %d, {%s}},\n"
          % (cp, r["bad"] & (2**64 - 1), r["bad"] >> 64, r.get("alts", 0), r["clue"], ", ".join("0x%02X" % b for b in r["enc"])))
    w("};\n\n")
    w("/* BADNESS_RE: its sets' flags (1: \\s, 2: \\w, 4: any but newline,\n"
      " * 8: negated, [^...], its members being the characters it excludes) */\n")
    w("const int bmc__ftfy_n_bad_sets = %d;\n" % len(d["sets"]))
    w("const uint8_t bmc__ftfy_bad_set_flags[] = {%s};\n"
      % ", ".join(str(f) for _, f in d["sets"]))
    w("/* Its alternatives, in order: elements (kind << 8 | set), kind 0 set, 1 optional set,\n"
      " * 2 start of text; each alternative ends with 0xFFFF. */\n")
    codes = []
    for alt in d["alts"]:
        codes += ["0x%03X" % (k << 8 | s) for k, s in alt] + ["0xFFFF"]
    starts, pos = [], 0
    for alt in d["alts"]:
        starts.append(pos)
        pos += len(alt) + 1
    plain = lambda code: code[0] == E_SET and d["sets"][code[1]][1] == 0
    others = 0
    for i, alt in enumerate(d["alts"]):
        if not plain(alt[0]):
            others |= 1 << i
    w("const int bmc__ftfy_n_bad_alts = %d;\n" % len(d["alts"]))
    w("const uint16_t bmc__ftfy_bad_alt_start[] = {%s};\n" % ", ".join(str(x) for x in starts))
    # lib/ftfy_encoding.c skips the stretches of ASCII text: that is right only if every
    # alternative needs a character outside ASCII, within its span.
    def ascii_free(code):
        members, flags = d["sets"][code[1]]
        return code[0] == E_SET and flags == 0 and all(c >= 0x80 for c in members)
    lookback = 0
    for alt in d["alts"]:
        k = next(i for i, code in enumerate(alt) if ascii_free(code))  # StopIteration: broken
        lookback = max(lookback, sum(1 for code in alt[:k] if code[0] != E_BOL))
    w("/* Every alternative needs a character outside ASCII (checked by the generator), at most\n"
      " * this many characters after its start */\n")
    w("const int bmc__ftfy_bad_lookback = %d;\n" % lookback)
    w("/* The alternatives that begin with \\\\s or ^ (the others are in each character's `alts`) */\n")
    w("const uint64_t bmc__ftfy_bad_other = 0x%016XULL;\n" % others)
    w("const uint16_t bmc__ftfy_bad_alts[] = {\n")
    for i in range(0, len(codes), 16):
        w("    %s,\n" % ", ".join(codes[i:i + 16]))
    w("};\n\n")
    for name, alts in (("altered", d["altered"]), ("lossy", d["lossy"])):
        regex = {"altered": "ALTERED_UTF8_RE", "lossy": "LOSSY_UTF8_RE"}[name]
        w("/* chardata.%s: alternatives in order, each a sequence of byte sets */\n" % regex)
        w("const int bmc__ftfy_n_%s = %d;\n" % (name, len(alts)))
        w("const bmc__ftfy_byte_alt bmc__ftfy_%s[] = {\n" % name)
        for alt in alts:
            w("    {%d, {\n" % len(alt))
            for m in alt:
                words = [0] * 8
                for b in m:
                    words[b >> 5] |= 1 << (b & 31)
                w("        {%s},\n" % ", ".join("0x%08Xu" % x for x in words))
            w("    }},\n")
        w("};\n\n")
    w("/* Python's \\w (str.isalnum() or '_'), as ranges */\n")
    w("const int bmc__ftfy_n_word = %d;\n" % len(d["word"]))
    w("const uint32_t bmc__ftfy_word[][2] = {\n")
    for i in range(0, len(d["word"]), 6):
        w("    %s,\n" % ", ".join("{0x%X, 0x%X}" % tuple(r) for r in d["word"][i:i + 6]))
    w("};\n")
    with open(path, "w") as f:
        f.write("".join(L))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ftfy", required=True)
    ap.add_argument("--ucd", default="/usr/share/unicode")
    ap.add_argument("-o", "--out", default=os.path.join(REPO, "lib", "ftfy_tables.c"))
    args = ap.parse_args()
    sys.path.insert(0, args.ftfy)
    import ftfy
    assert ftfy.__version__ == "6.3.1", ftfy.__version__
    d = build(ftfy, args.ucd)
    emit(args.out, d, ftfy.__version__, args.ucd)
    print("%s: %d codecs, %d characters, %d BADNESS_RE sets in %d alternatives, %d+%d byte "
          "alternatives, %d \\w ranges" % (args.out, len(d["encs"]), len(d["chars"]),
          len(d["sets"]), len(d["alts"]), len(d["altered"]), len(d["lossy"]), len(d["word"])))


if __name__ == "__main__":
    main()
