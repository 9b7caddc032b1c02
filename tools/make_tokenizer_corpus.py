#!/usr/bin/env python3
"""make_tokenizer_corpus.py - build tests/data/tokenizer_corpus.jsonl: texts with the ids the
official pipeline gives them, for tests/test_tokenizer_corpus.c (which needs neither Python
packages nor npm nor network).

Usage:
  python3 tools/make_tokenizer_corpus.py --ftfy DIR --node-modules DIR [--out FILE]
    --ftfy DIR          a directory holding the `ftfy` package (6.3.1; e.g. a checkout of
                        rspeer/python-ftfy) -- Debian has no python3-ftfy; it needs python3-wcwidth
    --node-modules DIR  node_modules with `tokenizers` (npm install tokenizers@0.23.2)
    --tokenizer FILE    tokenizer.json (default $SHARED_DATA/biomedclip-tokenizer.json)

Each line of the output is a JSON object (ASCII, \\u escapes):
  text        the input text (a Python str)
  bytes_hex   (some entries) the input as raw bytes, which are not valid UTF-8; `text` is then
              bytes.decode('utf-8', 'replace'), what a Python caller would have
  cat         which group of the corpus it belongs to
  clean       open_clip's cleaning with ftfy.fix_text(text) (its defaults, mojibake repair included):
              " ".join(html.unescape(html.unescape(ftfy(text))).split()) -- what the C library does
  ids         HF tokenizer(clean): the expected output of bmc__tokenize
  raw_ids     HF tokenizer(text), when different from ids: expected of bmc__tokenize(BMC__TOK_RAW)
"""
import argparse
import html
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# ------------------------------------------------------------------------------------------------
# Building blocks

TERMS = ("adenocarcinoma histopathology squamous cell carcinoma chest X-ray brain MRI CT scan "
         "hematoxylin eosin immunohistochemistry pleural effusion pneumothorax cardiomegaly "
         "glioblastoma meningioma metastasis lymph node biopsy mitotic figures necrosis fibrosis "
         "ultrasound echocardiogram mammography lesion nodule opacity consolidation atelectasis "
         "bilateral unilateral anterior posterior axial coronal sagittal T1-weighted T2-weighted "
         "FLAIR DWI contrast-enhanced Ki-67 HER2 ER/PR CD3 CD20 PD-L1 EGFR KRAS BRAF V600E "
         "colonoscopy endoscopy dermoscopy melanoma nevus basal keratinocyte hepatocyte "
         "pathology radiology oncology cytology microscopy fluorescence confocal electron").split()
TEMPLATES = [
    "this is a photo of {t}", "a {t} image", "Figure {n}: {t} showing {t2} ({u})",
    "{T} of the {t2}, magnification x{n}", "{t}; {t2} & {t3} (n={n}, p<0.0{d})",
    "Representative {t} [scale bar = {n} {u}]", "{t} vs. {t2}: {n}% ({n2}/{n3})",
    "Fig. {d}{L}. {T} in a {n}-year-old patient", "{t}\u2014{t2}\u2014{t3}",
    "H&E-stained {t} (\u00d7{n}); arrowheads: {t2}", "{T}, {t2}, and {t3}.",
    "{t} {t2} {t3} {t} {t2}", "\u201c{t}\u201d and \u2018{t2}\u2019 \u2026 {t3}",
    "{n}\u00b1{d} {u} at {n2}\u00b0C", "{T}/{t2} ratio \u2265 {d}.{n}",
]
UNITS = ["\u00b5m", "mm", "cm", "mL", "mg/dL", "\u03bcg", "nm", "kDa", "Gy", "mSv", "%"]
ACCENTED = ("Café naïve résumé façade Zürich Ångström Øresund São Paulo Kraków Łódź Dvořák "
            "Nguyễn Tiếng Việt İstanbul ıi Straße ĳsselmeer Ærøskøbing señor piñata crème brûlée "
            "Ελληνικά ΣΟΦΙΑ σοφίας ΆΈΉΊΌΎΏ άέήίόύώ ΐΰ Москва Ёлка Ђурђевдан עברית العربية "
            "हिन्दी ภาษาไทย Ꭰ ǅemal ǈubljana ǋjegoš").split()
CJK = ["肺癌", "乳腺癌", "磁共振成像", "病理切片", "胸部X线", "がん", "レントゲン", "ｶﾞﾝ", "ﾚﾝﾄｹﾞﾝ",
       "폐암", "자기공명영상", "ﾠﾡﾢ", "丽", "𠀀𠀁", "𪜀", "㐀", "〇", "々", "㋿", "한국어 텍스트", "中文 text 混合"]
EMOJI = ["🙂", "🫁", "🧠", "❤️", "👍🏽", "👨‍⚕️", "🏳️‍🌈", "🇩🇪", "🔬", "✔", "©", "™", "⚕", "#️⃣", "🧬"]
ENTITIES = ["&amp;", "&amp", "&lt;", "&gt", "&quot;", "&apos;", "&nbsp;", "&nbsp", "&copy;",
            "&eacute;", "&eacute", "&EACUTE;", "&Eacute;", "&szlig;", "&SZLIG;", "&fflig;",
            "&FFLIG;", "&ldquo;", "&rdquo;", "&lsquo;", "&rsquo;", "&hellip;", "&mdash;", "&ndash;",
            "&micro;", "&deg;", "&plusmn;", "&times;", "&alpha;", "&ALPHA;", "&Alpha;", "&beta;",
            "&ge;", "&le;", "&ne;", "&NotEqualTilde;", "&acE;", "&ThickSpace;", "&zwnj;", "&zwj;",
            "&shy;", "&#65;", "&#x41;", "&#X6a;", "&#0;", "&#1;", "&#9;", "&#10;", "&#13;", "&#28;",
            "&#59;", "&#x3b;", "&#128;", "&#133;", "&#x85;", "&#147;", "&#x93;", "&#150;", "&#157;",
            "&#127;", "&#xD800;", "&#x110000;", "&#99999999999999999999;", "&#65", "&#x41",
            "&#xZZ;", "&#;", "&#abc;", "&#0x41;", "&#65a;", "&amp;lt;", "&amp;amp;quot;",
            "&amp;amp;amp;amp;gt;", "&notit;", "&notin;", "&not", "&ampxyz;", "&am;", "&;",
            "&unknown;", "&Aacute", "&aacutex", "&copysign", "&lt\u00e9", "&x", "&&amp;",
            "&#38;lt;", "&#x26;amp;", "&amp;#65;", "&CounterClockwiseContourIntegral;",
            "&abcdefghijklmnopqrstuvwxyz;", "&abcdefghijklmnopqrstuvwxyzabcdefghij",
            "&\uff41\uff4d\uff50;", "&a\u0000mp;", "&am\x01p;", "&\u1e9eZLIG;"]
CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1c", "\x1d", "\x1e",
            "\x1f", "\x7f", "\x80", "\x81", "\x85", "\x8d", "\x91", "\x92", "\x93", "\x94", "\x96",
            "\x97", "\x9d", "\x9f", "\u00ad", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
            "\u202a", "\u202e", "\u2060", "\u2061", "\u2066", "\u2069", "\u206a", "\u206f", "\ufeff",
            "\ufff9", "\ufffb", "\ufffc", "\ufffd", "\U000e0001", "\U000e0041", "\U000e007f",
            "\ue000", "\uf8ff", "\U000f0000", "\ufdd0", "\uffff", "\U0010ffff", "\u180e", "\u061c",
            "\x1b[31m", "\x1b[0m", "\x1b[1;32;40m", "\x1b[\u0663m", "\x1b[", "\x1b[12", "\x1b]0;x"]
SPACES = [" ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0",
          "\u1680", "\u2000", "\u2005", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
          "\u180e", "\u200b"]
WIDTH = ["Ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３", "（ｘ）", "！？", "＆ａｍｐ；", "＜ｔａｇ＞", "ｶﾀｶﾅ",
         "ﾊﾟﾝ", "ﾞ", "￣", "￥", "｡", "〜", "＂", "＇", "￨"]
LIGATURES = ["ﬁbrosis", "ﬂuorescence", "eﬀusion", "oﬃce", "baﬄe", "ﬅ", "ﬆain", "Ĳssel", "ĳs",
             "ŉ", "Ǳ", "ǆ", "ǉ", "ǌ", "ﬀﬁﬂﬃﬄ"]
QUOTES = ["\u2018", "\u2019", "\u201a", "\u201b", "\u201c", "\u201d", "\u201e", "\u201f", "\u02bc",
          "\u2032", "\u2033", "\u00ab", "\u00bb", "\u2039", "\u203a", "`", "\u00b4"]
COMBINING = ["e\u0301", "a\u0323\u0302", "a\u0302\u0323", "o\u0308\u0304", "n\u0303",
             "\u1100\u1161\u11a8", "\u1100\u1161", "\u110b\u1173",
             "x\U0001d165\u0301", "\U0001d165\U0001d16d",
             "a\U0001e944\u0301", "a\U0001e000\U0001d165", "a\U0001d165\U0001e000",
             "\u0915\u093c\u0941", "\u0915\u0941\u093c", "a\u0345\u0313", "\u03b1\u0313\u0300\u0345",
             "\u1f82", "\u0958", "\u2126", "\u212b", "\uf900", "\u0344", "\u0340",
             "\U00011938", "\u0041\u030a", "\u00c5", "\u0130", "\u0131",
             "\u1e9e", "\u03a3", "\u03c2", "\ua7cb", "\ua7dc", "\U00010d50", "\U00016ea0", "\u1c89",
             "\u01c5", "\u1f88", "\u1f8f", "\u0587", "\ufb13", "\U000111c9", "\u1734", "\u1885",
             "\ua9bd", "\u166d", "\u2e43", "\u08d4", "\u0f73", "\u0f75", "\u0f81"]
SPECIALS = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]", "[MASK", "MASK]", "[[MASK]]",
            "[MA SK]", "[MASK][MASK]", "[\u200bMASK]", "[ＭＡＳＫ]", "＜MASK＞"]
MOJIBAKE = ["sÃ³", "voilÃ  le travail", "Ã©tÃ©", "donâ€™t", "â€œquotedâ€\x9d", "Ã¼ber", "ÐŸÑ€Ð¸Ð²ÐµÑ‚",
            "cafÃ©", "naÃ¯ve", "â€¦", "Ã\xa0 la", "æ—¥æœ¬", "Ã‰TÃ‰", "Î±Î²Î³", "Ã±", "â„¢"]
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
             b"\xf0\x80\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\x80", b"\xbf\xbf", b"\xc3",
             b"\xe2\x82", b"\xf0\x9f\x99", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc",
             b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"\xc1\xbf", b"\xe0\x9f\xbf",
             b"\xf0\x8f\xbf\xbf", b"\xef\xbf\xbd", b"\xe2\x80", b"\xc2"]


def fill(rng, tpl):
    pick = lambda: rng.choice(TERMS)
    return tpl.format(t=pick(), t2=pick(), t3=pick(), T=pick().capitalize(), n=rng.randint(1, 400),
                      n2=rng.randint(1, 99), n3=rng.randint(100, 999), d=rng.randint(1, 9),
                      u=rng.choice(UNITS), L=rng.choice("ABCDEF"))


def caption(rng):
    return fill(rng, rng.choice(TEMPLATES))


def sprinkle(rng, base, pool, k):
    """Insert k items of pool at random places of base."""
    parts = list(base)
    for _ in range(k):
        parts.insert(rng.randint(0, len(parts)), rng.choice(pool))
    return "".join(parts)


FUZZ_POOLS = [TERMS, UNITS, ACCENTED, CJK, EMOJI, ENTITIES, CONTROLS, SPACES, WIDTH, LIGATURES,
              QUOTES, COMBINING, SPECIALS, list("abcxyzABC0123456789.,;:!?()[]{}<>&#%+-=/\\'\"_~*")]


def fuzz(rng):
    n = rng.randint(1, 25)
    out = []
    for _ in range(n):
        pool = rng.choice(FUZZ_POOLS)
        out.append(rng.choice(pool))
        if rng.random() < 0.5:
            out.append(rng.choice([" ", "", "", "\n"]))
    return "".join(out)


def build_texts(shared_vectors, seed=1234):
    rng = random.Random(seed)
    items = []  # (cat, text, raw_bytes or None)
    add = lambda cat, text, raw=None: items.append((cat, text, raw))
    with open(shared_vectors, encoding="utf-8") as f:
        for v in json.load(f)["vectors"]:
            add("shared_vectors", v["text"])  # their ids after open_clip's cleaning
    for _ in range(500):
        add("caption", caption(rng))
    for w in ACCENTED:
        add("accents", w)
        add("accents", "%s %s %s" % (caption(rng), w, w.upper()))
    for w in CJK:
        add("cjk", w)
        add("cjk", "%s %s" % (w, caption(rng)))
    for e in EMOJI:
        add("emoji", "%s %s" % (caption(rng), e))
        add("emoji", e + e + "x")
    for e in ENTITIES:
        add("html", e)
        add("html", "x%sy %s" % (e, e))
        add("html", "%s %s" % (caption(rng), e))
        add("html", "a < b %s" % e)             # a '<': ftfy leaves entities to html.unescape
        add("html", "%s\nline <b>2</b>\n%s" % (e, e))  # '<' on line 2 only: line 1 is unescaped by ftfy
    for c in CONTROLS:
        add("control", "ctrl%schar" % c)
        add("control", "%s%s %s" % (c, caption(rng), c))
    for s in SPACES:
        add("space", "a%sb" % s)
        add("space", "%s%s%s" % (s, caption(rng), s))
        add("space", s * 3)
    add("space", "")
    add("space", " ")
    add("space", "\n\n\t ")
    for w in WIDTH + LIGATURES + QUOTES:
        add("ftfy", w)
        add("ftfy", "%s %s %s" % (caption(rng), w, w))
    for c in COMBINING:
        add("combining", c)
        add("combining", "word%s word %s" % (c, c.upper()))
    for s in SPECIALS:
        add("special", s)
        add("special", "a %s b" % s)
        add("special", "foo%sbar" % s)
    for m in MOJIBAKE:
        add("mojibake", m)
        add("mojibake", "%s %s" % (caption(rng), m))
    for b in BAD_BYTES:
        for raw in (b, b"x" + b + b"y", caption(rng).encode() + b + b" " + "ﬁ\u00e9".encode() + b):
            add("bad_utf8", raw.decode("utf-8", "replace"), raw)
    for n in (98, 99, 100, 101, 102, 150):
        add("long_word", "x" * n)
        add("long_word", "a " + "\u00e9" * n + " b")          # precomposed: 1 char each after NFD+Mn
        add("long_word", "a " + "e\u0301" * n + " b")
        add("long_word", "pre" + "ab" * (n // 2) + "!" + "z" * n)
        add("long_word", "ﬁ" * n)                              # ftfy doubles the length
        add("long_word", "&amp;" * n)
    for k in (120, 200, 254, 255, 256, 300, 1000):
        add("long_text", " ".join(caption(rng) for _ in range(k // 6 + 1)))
        add("long_text", "carcinoma " * k)
        add("long_text", "\n".join(caption(rng) for _ in range(k // 4)))
        add("long_text", "[MASK] " * k)
    for _ in range(700):
        add("fuzz", fuzz(rng))
    for _ in range(50):
        add("fuzz_long", "".join(fuzz(rng) for _ in range(12)))
    return items


# ------------------------------------------------------------------------------------------------
# Reference pipeline


def open_clip_clean(ftfy, text):
    """open_clip tokenizer.py: whitespace_clean(basic_clean(text)), with ftfy's defaults."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip()


def hf_ids(texts, node_modules, tokenizer):
    env = dict(os.environ, NODE_PATH=node_modules)
    inp = "".join(json.dumps(t) + "\n" for t in texts)
    js = os.path.join(REPO, "tests", "tokenizer_corpus", "hf_ids.js")
    res = subprocess.run(["node", js, tokenizer], input=inp.encode(), capture_output=True, env=env,
                         check=True)
    out = [json.loads(line) for line in res.stdout.decode().splitlines()]
    assert len(out) == len(texts)
    return out


def reference_args(doc, out_name):
    """The command line of the vector generators (this one and make_ftfy_vectors.py): the parsed
    arguments and the ftfy module of --ftfy."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--ftfy", required=True)
    ap.add_argument("--node-modules", required=True)
    shared = os.environ.get("SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--tokenizer", default=os.path.join(shared, "biomedclip-tokenizer.json"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", out_name))
    args = ap.parse_args()
    sys.path.insert(0, args.ftfy)
    import ftfy  # noqa: E402
    return args, ftfy


def main():
    args, ftfy = reference_args(__doc__, "tokenizer_corpus.jsonl")
    items = build_texts(os.path.join(os.path.dirname(args.tokenizer), "tokenizer_test_vectors.json"))
    texts = [t for _, t, _ in items]
    clean = [open_clip_clean(ftfy, t) for t in texts]
    ids = hf_ids(clean, args.node_modules, args.tokenizer)
    raw = hf_ids(texts, args.node_modules, args.tokenizer)
    n_repaired = 0
    with open(args.out, "w", encoding="ascii") as f:
        for i, (cat, text, rawb) in enumerate(items):
            rec = {"cat": cat, "text": text}
            if rawb is not None:
                rec["bytes_hex"] = rawb.hex()
            rec["clean"] = clean[i]
            rec["ids"] = ids[i]
            if raw[i] != ids[i]:
                rec["raw_ids"] = raw[i]
            f.write(json.dumps(rec, ensure_ascii=True) + "\n")
            n_repaired += ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)
    cats = {}
    for cat, _, _ in items:
        cats[cat] = cats.get(cat, 0) + 1
    print("%s: %d texts (%s); ftfy's mojibake repair changes %d of them" % (
        args.out, len(items), ", ".join("%s %d" % kv for kv in sorted(cats.items())), n_repaired))


if __name__ == "__main__":
    main()
