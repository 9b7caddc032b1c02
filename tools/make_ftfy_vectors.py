#!/usr/bin/env python3
"""make_ftfy_vectors.py - build tests/data/ftfy_vectors.jsonl: golden vectors of ftfy's mojibake
repair (ftfy.fix_text with its defaults, ftfy 6.3.1) for tests/test_ftfy.c, made with the real
ftfy and the official Hugging Face tokenizer (the test needs neither).

Usage:
  python3 tools/make_ftfy_vectors.py --ftfy DIR --node-modules DIR [--out FILE]
    --ftfy DIR          a directory holding the `ftfy` package 6.3.1 (a checkout of
                        rspeer/python-ftfy at v6.3.1; it needs python3-wcwidth). Its
                        tests/test_cases.json, if present there, is included.
    --node-modules DIR  node_modules with `tokenizers` (npm install tokenizers@0.23.2)
    --tokenizer FILE    tokenizer.json (default $SHARED_DATA/biomedclip-tokenizer.json)

Groups (`cat`):
  ftfy_cases    the texts of ftfy's own tests/test_cases.json (its 'fixed' is what ftfy hopes
                for; the vectors hold what ftfy 6.3.1 actually gives, which is the reference)
  mojibake1     biomedical captions with non-ASCII characters, UTF-8 read as Windows-1252 (ftfy's
                sloppy codec, and Python's strict one with errors='replace', which loses bytes
                to U+FFFD), Latin-1 and MacRoman
  mojibake2     the same, nested twice (every pair of those four readings)
  nbsp          mojibake whose U+00A0 became a plain space (restore_byte_a0)
  mixed         a correct caption and a mojibake caption in one text (decode_inconsistent_utf8)
  codecs        UTF-8 of Czech/Polish/Russian/Greek/Turkish/Baltic text read in the other codecs
                ftfy tries (windows-1250/1251/1253/1254/1257, iso-8859-2, cp437)
  legit         correctly encoded text that must not change: names, Greek, units, CJK, emoji
  html          HTML references whose unescaped text looks like mojibake ('&Eacute;°C')
  random        random strings over ASCII and the characters ftfy's tables mention
  random_bytes  random UTF-8 text read in a random one of ftfy's codecs
Each line: {"cat", "text", "fixed": ftfy.fix_text(text), "clean": open_clip's cleaning,
"ids": HF tokenizer(clean)}.
"""
import html
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_tokenizer_corpus import hf_ids, open_clip_clean, reference_args  # noqa: E402

SUBJECTS = ["adenocarcinoma", "squamous cell carcinoma", "glioblastoma", "meningioma", "melanoma",
            "hepatocellular carcinoma", "pleural effusion", "pneumothorax", "cardiomegaly",
            "lymph node metastasis", "Crohn's disease", "Sjögren syndrome", "Ménétrier disease",
            "Bürger's disease", "Hodgkin lymphoma", "Kaposi sarcoma", "Ewing sarcoma",
            "Wilms tumour", "Schwann cell tumour", "Creutzfeldt–Jakob disease", "Guillain–Barré syndrome",
            "Hashimoto thyroiditis", "Paget's disease", "Ångström-scale fibrils", "Graves' disease"]
STAINS = ["H&E", "PAS", "Masson's trichrome", "Ki-67", "HER2", "CD3", "CD20", "PD-L1", "α-SMA",
          "β-catenin", "γ-H2AX", "TNF-α", "IFN-γ", "κ light chain", "λ light chain", "p53"]
UNITS = ["µm", "μm", "mm²", "cm³", "°C", "mg/dL", "µg/mL", "mSv", "Gy", "kDa", "Å", "‰", "%"]
MARKS = ["—", "–", "“", "”", "‘", "’", "…", "•", "±", "×", "÷", "≥", "≤", "≈", "→", "½", "¼",
         "²", "³", "·", "§", "¶", "®", "™", "©", "€", "£", "¥", "¢", "°", "¬", "¦", "«", "»",
         "\u00a0", "\u00ad"]
TEMPLATES = [
    "Figure {n}{L}: {s} ({st} stain, ×{n2}); scale bar {n3} {u}",
    "{S} at {n}{u} — {st} positive ({n2}% ± {n3})",
    "“{s}” in a {n}-year-old patient; {st}≥{n2} {u}",
    "Representative {s} • {st} • {n} {u} … see § {n2}",
    "{S}: {st}-stained section, magnification ×{n} (bar = {n2} {u})",
    "{S} vs. {s2} — p ≤ 0.0{n3}, n = {n}",
    "Axial T2‑weighted MRI: {s} ({n}×{n2} mm) {m} {s2}",
    "Histology of {s}{m} {st} {m} {n}{u}",
    "Café-au-lait macules and {s} — naïve cohort, résumé of {n} cases",
    "{S} in the Zürich cohort: {n} µm thick sections at {n2} °C",
]


def caption(rng):
    s, s2 = rng.choice(SUBJECTS), rng.choice(SUBJECTS)
    return rng.choice(TEMPLATES).format(
        s=s, s2=s2, S=s[0].upper() + s[1:], st=rng.choice(STAINS), u=rng.choice(UNITS),
        m=rng.choice(MARKS), n=rng.randint(1, 400), n2=rng.randint(1, 99), n3=rng.randint(1, 9),
        L=rng.choice("ABCDEF"))


def readings(ftfy_codecs_ok):
    """How UTF-8 bytes get misread: (name, function bytes -> str)."""
    return [
        ("sloppy-windows-1252", lambda b: b.decode("sloppy-windows-1252")),
        ("windows-1252/replace", lambda b: b.decode("windows-1252", errors="replace")),
        ("latin-1", lambda b: b.decode("latin-1")),
        ("macroman", lambda b: b.decode("macroman")),
    ]


LEGIT = ["Café naïve résumé façade", "Zürich Ångström Øresund", "São Paulo, Kraków, Łódź",
         "Dvořák, Nguyễn Văn A, İstanbul", "Straße, señor, piñata, crème brûlée",
         "Ελληνικά: α-κύτταρα, β-αναστολείς", "ΣΟΦΙΑ σοφίας ΆΈΉΊΌΎΏ άέήίόύώ", "Москва, Ёлка",
         "Müller-Lyer illusion", "Sjögren's syndrome", "Ménière's disease", "Bürger, Gaucher, Pompe",
         "37 °C", "5 µm", "10 μm", "2.5 mm²", "±0.5 SD", "×400", "≥ 18 years", "≤ 5%", "½ dose",
         "p < 0.05", "IL-1β, TNF-α, IFN-γ", "Na⁺/K⁺-ATPase", "Ca²⁺", "10⁻³ M", "℃", "Å",
         "肺癌 病理切片", "乳腺癌", "磁共振成像", "がん レントゲン", "폐암 자기공명영상",
         "🙂 🫁 🧠 ❤️ 👍🏽 👨‍⚕️ 🔬 🧬", "naïve B cells — CD19⁺", "“quoted” and ‘single’ quotes",
         "Einstein–Podolsky–Rosen", "Hodgkin’s lymphoma", "Köln, Düsseldorf, Göttingen",
         "Årsberetning for Ærø", "Þingvellir, Ísland", "Český Krumlov", "Pećina, Đakovo",
         "Ñandú", "Ça va", "À la carte", "È vero", "Ölüdeniz", "Ünye", "Ørsted",
         "ÅÄÖ åäö", "ÆØÅ æøå", "Œuvre, cœur", "¿Qué? ¡Sí!", "© 2024 ® ™", "€ 100, £ 50, ¥ 1000",
         "• bullet • list •", "§ 4 ¶ 2", "«guillemets»", "Ω = 5 kΩ", "µ-opioid", "δ-wave",
         "Ψ-function", "φ = 1.618", "Θ-defensin", "ß-Sheet", "Gödel, Escher, Bach",
         "Ã is a letter", "Â is too", "Ð and ð", "Þ þ", "× ÷ ±", "¼ ½ ¾", "° ′ ″", "‰ ‱",
         "naïve café", "coöperate", "Noël", "Zoë", "Chloë", "Brontë", "façade", "jalapeño",
         "Ångström unit Å", "Schrödinger", "Poincaré", "Erdős", "Gauß", "Łukasiewicz"]

CODEC_TEXTS = [
    ("windows-1250", ["Čeština, Polština: rakovina plic", "Żółta gorączka, źrebię", "Příliš žluťoučký kůň"]),
    ("windows-1251", ["Рак лёгкого, гистология", "Опухоль мозга, МРТ", "Ёжик в тумане"]),
    ("windows-1253", ["Καρκίνος του πνεύμονα", "Ιστολογία όγκου", "μικροσκόπιο ηλεκτρονίων"]),
    ("windows-1254", ["Akciğer kanseri, İstanbul", "Şişli hastanesi, ğüşıöç"]),
    ("windows-1257", ["Plaučių vėžys, ąčęėįšųūž", "Vēža šūnas, Rīga"]),
    ("iso-8859-2", ["Rak płuca, Łódź", "Žlutý kůň, Brno", "Gyógyszerész, Győr"]),
    ("cp437", ["Café résumé", "naïve façade", "Zürich Ärzte"]),
    ("macroman", ["Café résumé", "Ångström ±5 µm", "“quotes” — dash"]),
]


def ftfy_alphabet():
    """The characters ftfy's codecs produce from bytes 80..FF, and a few others."""
    chars = set()
    for e in ("latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
              "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2",
              "macroman", "cp437"):
        chars.update(bytes(range(0x80, 0x100)).decode(e))
    return sorted(chars) + ["\ufffd", "\u2044", "\u2202", "\u2206", "\u220f", "\u2211", "\u221a",
                            "\u221e", "\u2229", "\u222b", "\u2248", "\u2260", "\u2261", "\u2264",
                            "\u2265", "\u2116", "\uf8ff", "\u25ca", "\u2310"]


ASCII_POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + \
    [" ", " ", " ", ".", ",", "?", "!", "-", "'", "&", ";", "\t", "\x1a"]


def build(ftfy, rng):
    items = []
    add = lambda cat, t: items.append((cat, t))
    for path in (os.path.join(ftfy.__path__[0], "..", "tests", "test_cases.json"),):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for case in json.load(f):
                    add("ftfy_cases", case["original"])
    caps = []
    while len(caps) < 250:
        c = caption(rng)
        if any(ord(ch) > 0x7F for ch in c) and c not in caps:
            caps.append(c)
    reads = readings(True)
    for c in caps:
        b = c.encode("utf-8")
        for _, r in reads:
            m1 = r(b)
            add("mojibake1", m1)
            for _, r2 in reads:
                add("mojibake2", r2(m1.encode("utf-8")))
    for c in caps[:150]:
        for _, r in reads[:3]:
            m = r(c.encode("utf-8"))
            if "\u00a0" in m:
                add("nbsp", m.replace("\u00a0", " "))
    words = ["à la carte", "à la mode", "às vezes", "àquele dia", "Ãquela", "fà cil", "São Paulo à noite",
             "café à la", "naïve à", "Ã  deux", "Ã\u00a0 la"]
    for w in words:
        for _, r in reads[:3]:
            add("nbsp", r(w.encode("utf-8")).replace("\u00a0", " "))
    for i in range(200):
        good, bad = rng.choice(caps), rng.choice(caps)
        r = rng.choice(reads)[1]
        part = r(bad.encode("utf-8"))
        add("mixed", good + " " + part if i % 2 else part + " " + good)
    for enc, texts in CODEC_TEXTS:
        for t in texts:
            add("codecs", t.encode("utf-8").decode(enc, errors="replace"))
            add("codecs", caption(rng) + " " + t.encode("utf-8").decode(enc, errors="replace"))
    for t in LEGIT:
        add("legit", t)
        add("legit", caption(rng) + " " + t)
    for c in caps[:100]:
        add("legit", c)
    # HTML references that unescape to mojibake-looking pairs
    lat = [(n, v) for n, v in html.entities.html5.items()
           if n.endswith(";") and len(v) == 1 and 0xC0 <= ord(v) <= 0xFF]
    follow = ["°C", "±", "²", "·", "®", "™", "€", "“", "…", "µm", "¼", "©", "½", "¢", "\u00a0", "¬"]
    for n, v in lat:
        f = rng.choice(follow)
        add("html", "&%s%s" % (n, f))
        add("html", "Temperature 37&%s%s, %s" % (n, rng.choice(follow), caption(rng)))
        add("html", "&#%d;%s" % (ord(v), rng.choice(follow)))
        add("html", "&%s%s" % (n.upper(), rng.choice(follow)))
        add("html", "a < b &%s%s" % (n, f))  # a '<': ftfy leaves the reference alone
    add("html", "&Eacute;°C")
    alphabet = ftfy_alphabet()
    for _ in range(3000):
        k = rng.randint(1, 12)
        add("random", "".join(rng.choice(alphabet) if rng.random() < 0.6 else rng.choice(ASCII_POOL)
                              for _ in range(k)))
    encs = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
            "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2",
            "macroman", "cp437"]
    pool = alphabet + [chr(c) for c in range(0x370, 0x3D0)] + [chr(c) for c in range(0x400, 0x460)] + \
        ["肺", "癌", "🙂", "🧬", "\U00010348", "\u0800", "\uffff"[:0] + "\ufffc", "\u00a0"]
    for _ in range(1000):
        t = "".join(rng.choice(pool) if rng.random() < 0.5 else rng.choice(ASCII_POOL[:-1])
                    for _ in range(rng.randint(1, 10)))
        add("random_bytes", t.encode("utf-8").decode(rng.choice(encs), errors="replace"))
    # CESU-8 / Java modified UTF-8 read as Latin-1 / Windows-1252
    for t in ["🙂 emoji", "𝒥ohn", "a\U0001F9EC b", "x\x00y"]:
        u16 = t.encode("utf-16-be")
        cesu = b"".join(
            (chr(int.from_bytes(u16[i:i + 2], "big")).encode("utf-8", "surrogatepass")
             if int.from_bytes(u16[i:i + 2], "big") != 0 else b"\xc0\x80")
            for i in range(0, len(u16), 2))
        for e in ("latin-1", "sloppy-windows-1252"):
            add("cesu8", cesu.decode(e))
            add("cesu8", caption(rng) + " " + cesu.decode(e))
            add("cesu8", cesu.decode(e) + "\n")
    seen, out = set(), []
    for cat, t in items:
        if t not in seen:
            seen.add(t)
            out.append((cat, t))
    return out


def main():
    args, ftfy = reference_args(__doc__, "ftfy_vectors.jsonl")
    assert ftfy.__version__ == "6.3.1", ftfy.__version__
    items = build(ftfy, random.Random(2024))
    fixed = [ftfy.fix_text(t) for _, t in items]
    clean = [open_clip_clean(ftfy, t) for _, t in items]
    ids = hf_ids(clean, args.node_modules, args.tokenizer)
    cats, changed = {}, {}
    with open(args.out, "w", encoding="utf-8") as f:
        for (cat, t), fx, cl, i in zip(items, fixed, clean, ids):
            f.write(json.dumps({"cat": cat, "text": t, "fixed": fx, "clean": cl, "ids": i},
                               ensure_ascii=False) + "\n")
            cats[cat] = cats.get(cat, 0) + 1
            changed[cat] = changed.get(cat, 0) + (ftfy.fix_text(t, fix_encoding=False) != fx)
    print("%s: %d vectors; per group (mojibake repair changed): %s" % (args.out, len(items), ", ".join(
        "%s %d (%d)" % (c, cats[c], changed[c]) for c in sorted(cats))))


if __name__ == "__main__":
    main()
