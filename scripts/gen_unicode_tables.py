#!/usr/bin/python3
"""Generate engine/embed/unicode_tables.c and .h: the Unicode data CLIP's
tokenizer (engine/embed/clip_bpe.c) needs, from Python's own unicodedata, so
the C tokenizer and its Python reference (tests/ref_clip_bpe.py, which uses
unicodedata.normalize, str.lower and unicodedata.category) agree code point
for code point.

usage: /usr/bin/python3 scripts/gen_unicode_tables.py engine/embed
Uses only unicodedata and sys; prints the Unicode version it used.

Tables (all sorted, searched by bisection in C):
  uc_class   runs of code points with the same non-zero class bits:
             L (Lu Ll Lt Lm Lo), N (Nd Nl No), WS (the `regex` module's \\s:
             White_Space; checked on Debian 12's python3-regex 2022.10.31),
             SPACE (str.isspace(): WS plus U+001C..U+001F, what str.strip()
             removes), and the two properties of str.lower()'s Final_Sigma
             rule, CASED and CASE_IGNORABLE, found by asking str.lower itself.
  uc_lower   chr(c).lower() for every c it changes to one code point, as
             runs (first, count, stride 1 or 2, delta); U+0130, the only code
             point whose lower case is two code points, is in uc_lower_special.
  uc_ccc     canonical combining class runs (non-zero only).
  uc_decomp  canonical decompositions, one level (c -> a or a b); Hangul
             syllables are algorithmic and not listed.
  uc_comp    indexes into uc_decomp of the primary composites (the pairs NFC
             composes), sorted by (a, b).
"""
import sys
import unicodedata as ud

MAXCP = 0x110000
L_CATS = {"Lu", "Ll", "Lt", "Lm", "Lo"}
N_CATS = {"Nd", "Nl", "No"}
# White_Space (PropList.txt), which python3-regex's \s matches: str.isspace()
# without the four information separators U+001C..U+001F.
WHITE_SPACE = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
               0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
F_L, F_N, F_WS, F_SPACE, F_CASED, F_CI = 1, 2, 4, 8, 16, 32


def is_hangul_syllable(c):
    return 0xAC00 <= c <= 0xD7A3


def class_bits(c):
    ch = chr(c)
    cat = ud.category(ch)
    f = 0
    if cat in L_CATS:
        f |= F_L
    if cat in N_CATS:
        f |= F_N
    if c in WHITE_SPACE:
        f |= F_WS
    if ch.isspace():
        f |= F_SPACE
    # str.lower() turns U+03A3 into final sigma when a cased letter precedes
    # it (skipping case-ignorables) and none follows. Probing str.lower:
    # p2: c then sigma is final <=> c cased and not case-ignorable;
    # p1: 'A', c, sigma is final <=> c case-ignorable or cased;
    # p3: 'A', sigma, c is final <=> c case-ignorable or not cased.
    if 0xD800 <= c <= 0xDFFF:
        return f
    p1 = ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"
    p2 = (ch + "\u03a3").lower()[-1] == "\u03c2"
    p3 = ("A\u03a3" + ch).lower()[1] == "\u03c2"
    if p2:
        f |= F_CASED
    elif p1 and p3:
        f |= F_CI
    return f


def runs(values):
    """(start, end, value) for maximal runs of equal non-zero value."""
    out = []
    start, cur = 0, 0
    for c in range(MAXCP + 1):
        v = values(c) if c < MAXCP else 0
        if v != cur:
            if cur:
                out.append((start, c - 1, cur))
            start, cur = c, v
    return out


def lower_runs():
    single, special = [], []
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF:
            continue
        lo = chr(c).lower()
        if lo == chr(c):
            continue
        if len(lo) == 1:
            single.append((c, ord(lo) - c))
        else:
            special.append((c, [ord(x) for x in lo]))
    out = []  # (first, count, stride, delta)
    i = 0
    while i < len(single):
        c, d = single[i]
        best = (1, 1)
        for stride in (1, 2):
            n = 1
            while (i + n < len(single) and single[i + n][0] == c + n * stride
                   and single[i + n][1] == d):
                n += 1
            if n > best[0]:
                best = (n, stride)
        out.append((c, best[0], best[1], d))
        i += best[0]
    return out, special


def decompositions():
    dec = []
    for c in range(MAXCP):
        if is_hangul_syllable(c):
            continue
        s = ud.decomposition(chr(c))
        if not s or s.startswith("<"):
            continue
        parts = [int(x, 16) for x in s.split()]
        assert 1 <= len(parts) <= 2, hex(c)
        dec.append((c, parts[0], parts[1] if len(parts) == 2 else 0))
    comp = []
    for i, (c, a, b) in enumerate(dec):
        # A primary composite: NFC leaves it alone (so it is not excluded,
        # not a singleton and not a non-starter decomposition).
        if b and ud.normalize("NFC", chr(c)) == chr(c):
            comp.append(i)
    comp.sort(key=lambda i: (dec[i][1], dec[i][2]))
    return dec, comp


def emit_rows(f, rows, per_line):
    """rows (C initialisers), per_line to a line."""
    for i in range(0, len(rows), per_line):
        f.write("    " + " ".join(rows[i:i + per_line]) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_unicode_tables.py OUTDIR")
    outdir = sys.argv[1]
    ver = ud.unidata_version
    print("gen_unicode_tables: Unicode %s (Python %s)" % (ver, sys.version.split()[0]))
    cls = runs(class_bits)
    low, special = lower_runs()
    assert special == [(0x130, [0x69, 0x307])], special
    ccc = runs(lambda c: ud.combining(chr(c)))
    assert max(v for _, _, v in ccc) < 256
    dec, comp = decompositions()
    assert len(dec) < 65536

    gen = "/* Generated by scripts/gen_unicode_tables.py from Python %s's unicodedata\n" \
          " * (Unicode %s). Do not edit. */\n" % (sys.version.split()[0], ver)
    with open(outdir + "/unicode_tables.h", "w") as f:
        f.write(gen)
        f.write("""/*
 * unicode_tables.h - the Unicode character data of CLIP's tokenizer
 * (clip_bpe.c): letter / number / white-space classes, the Final_Sigma
 * properties of str.lower(), simple lower-case mappings, and the canonical
 * decompositions, compositions and combining classes of NFC. The layout of
 * each table is described in scripts/gen_unicode_tables.py.
 */
#ifndef PV_UNICODE_TABLES_H
#define PV_UNICODE_TABLES_H

#include <stdint.h>

#define UC_VERSION "%s"

enum {
    UC_L = %d,              /* Lu Ll Lt Lm Lo: regex \\p{L} */
    UC_N = %d,              /* Nd Nl No: regex \\p{N} */
    UC_WS = %d,             /* White_Space: python3-regex's \\s */
    UC_SPACE = %d,          /* str.isspace(): UC_WS and U+001C..U+001F */
    UC_CASED = %d,          /* cased and not case-ignorable (Final_Sigma) */
    UC_CASE_IGNORABLE = %d  /* case-ignorable (Final_Sigma) */
};

typedef struct { uint32_t first, last, bits; } uc_range;
typedef struct { uint32_t first; uint16_t count; uint8_t stride; int32_t delta; } uc_lower_run;
typedef struct { uint32_t cp, a, b; } uc_decomp_entry; /* b == 0: one code point */

extern const uc_range uc_class[];
extern const uint32_t uc_class_len;
extern const uc_lower_run uc_lower[];
extern const uint32_t uc_lower_len;
extern const uc_range uc_ccc[];    /* bits = the combining class */
extern const uint32_t uc_ccc_len;
extern const uc_decomp_entry uc_decomp[];
extern const uint32_t uc_decomp_len;
extern const uint16_t uc_comp[];   /* indexes into uc_decomp, by (a, b) */
extern const uint32_t uc_comp_len;

#endif
""" % (ver, F_L, F_N, F_WS, F_SPACE, F_CASED, F_CI))
    with open(outdir + "/unicode_tables.c", "w") as f:
        f.write(gen)
        f.write('#include "unicode_tables.h"\n')
        for ctype, name, fmt, rows, per_line in (
                ("uc_range", "uc_class", "{0x%X,0x%X,%d},", cls, 5),
                ("uc_lower_run", "uc_lower", "{0x%X,%d,%d,%d},", low, 5),
                ("uc_range", "uc_ccc", "{0x%X,0x%X,%d},", ccc, 5),
                ("uc_decomp_entry", "uc_decomp", "{0x%X,0x%X,0x%X},", dec, 5),
                ("uint16_t", "uc_comp", "%d,", comp, 14)):
            f.write("\nconst %s %s[] = {\n" % (ctype, name))
            emit_rows(f, [fmt % r for r in rows], per_line)
            f.write("};\nconst uint32_t %s_len = %d;\n" % (name, len(rows)))
    print("gen_unicode_tables: %d class runs, %d lower runs, %d ccc runs, %d decompositions, "
          "%d compositions" % (len(cls), len(low), len(ccc), len(dec), len(comp)))


if __name__ == "__main__":
    main()
