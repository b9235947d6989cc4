#!/usr/bin/python3
"""Reference for CLIP's byte-level BPE tokenizer (engine/embed/clip_bpe.c),
written from openai/CLIP's clip/simple_tokenizer.py behaviour, independently
of the C code: Python's own unicodedata.normalize('NFC'), str.lower(),
str.strip() and unicodedata.category, its own scanner for the pre-split (and,
when the `regex` module imports, a cross-check of that scanner against
regex.findall with CLIP's real pattern), and openai's plain BPE loop.

Pipeline (the same subset as clip_bpe.h; stdlib only, Python 3.11):
  1. HTML unescape, done twice: &amp; &lt; &gt; &quot; &apos; &nbsp; (case
     as written, ';' required) and &#DDD; &#xHHH; (';' required) whose value
     is a Unicode scalar value other than 0; anything else stays as typed.
     (html.unescape knows 2,231 entities and the forms without ';'; ftfy,
     which CLIP runs first, is not in Debian 12 and its mojibake repair is
     not done.)
  2. NFC; then runs of White_Space (the `regex` module's \\s) -> one space;
     then str.strip() (str.isspace(), which also removes U+001C..U+001F);
     then str.lower().
  3. Pre-split: CLIP's pattern without its two special-token alternatives:
     user text never yields <|startoftext|> or <|endoftext|>, so a query
     cannot inject control tokens; typed, they split like other characters.
  4. bytes_to_unicode, BPE by merge rank, '</w>' on the last symbol.
encode() returns [start] + BPE ids + [end], cut to max_len as
clip.tokenize(truncate=True) does.

CLI:
  ref_clip_bpe.py vocab DIR                    write DIR/vocab.json, merges.txt
  ref_clip_bpe.py encode VOCAB MERGES [MAX]    JSON string per stdin line ->
                                               JSON list of ids per line
  ref_clip_bpe.py clean                        JSON string per stdin line ->
                                               JSON list of the cleaned text's
                                               code points per line
"""
import json
import os
import random
import re
import sys
import unicodedata

try:
    import regex  # python3-regex: only for the cross-check of the scanner
except ImportError:
    regex = None

SOT, EOT = "<|startoftext|>", "<|endoftext|>"

# ---- bytes_to_unicode (openai's table, rebuilt) -----------------------------


def bytes_to_unicode():
    keep = (list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)))
    table = {b: chr(b) for b in keep}
    nxt = 0x100
    for b in range(256):
        if b not in table:
            table[b] = chr(nxt)
            nxt += 1
    # openai's order: the kept bytes first, then the others
    order = keep + [b for b in range(256) if b not in keep]
    return table, order


B2U, B2U_ORDER = bytes_to_unicode()

# ---- cleanup ----------------------------------------------------------------

NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
ENTITY = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|(amp|lt|gt|quot|apos|nbsp));")
WS_RUN = re.compile(r"[^\S\x1c-\x1f]+")  # re's \s is str.isspace(): drop the separators


def _entity(m):
    if m.group(3):
        return NAMED[m.group(3)]
    v = int(m.group(1), 10) if m.group(1) is not None else int(m.group(2), 16)
    if v == 0 or v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
        return m.group(0)
    return chr(v)


def clean(text):
    text = ENTITY.sub(_entity, ENTITY.sub(_entity, text))
    text = unicodedata.normalize("NFC", text)
    text = WS_RUN.sub(" ", text).strip()
    return text.lower()


# ---- pre-split --------------------------------------------------------------


def _is_l(ch):
    return unicodedata.category(ch)[0] == "L"


def _is_n(ch):
    return unicodedata.category(ch) in ("Nd", "Nl", "No")


def _is_ws(ch):
    return ch.isspace() and not "\x1c" <= ch <= "\x1f"


def presplit(text):
    """CLIP's regex (without the special tokens) as a scanner: at each
    position the first alternative that matches wins."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _is_ws(ch):
            i += 1
            continue
        if ch == "'" and i + 1 < n:
            two = text[i + 1:i + 3].lower()
            # IGNORECASE: 's' also matches U+017F LATIN SMALL LETTER LONG S
            if text[i + 1] in "stmdSTMD\u017f":
                out.append(text[i:i + 2])
                i += 2
                continue
            if two in ("re", "ve", "ll"):
                out.append(text[i:i + 3])
                i += 3
                continue
        j = i + 1
        if _is_l(ch):
            while j < n and _is_l(text[j]):
                j += 1
        elif not _is_n(ch):
            while j < n and not (_is_ws(text[j]) or _is_l(text[j]) or _is_n(text[j])):
                j += 1
        out.append(text[i:j])
        i = j
    return out


PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def presplit_crosscheck(text):
    """True if the scanner agrees with the real pattern (or cannot be
    checked: no `regex`, or a code point unassigned in this Python's Unicode
    version, which the newer `regex` may know)."""
    if regex is None or any(unicodedata.category(c) == "Cn" for c in text):
        return True
    return regex.findall(PATTERN, text, regex.IGNORECASE) == presplit(text)


# ---- vocabulary and BPE -----------------------------------------------------


def load(vocab_path, merges_path):
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    while lines and lines[-1].rstrip("\r") == "":
        lines.pop()
    ranks = {}
    for line in lines:
        a, b = line.rstrip("\r").split(" ")
        assert a in vocab and b in vocab and a + b in vocab and (a, b) not in ranks
        ranks[(a, b)] = len(ranks)
    return vocab, ranks


def bpe(token, ranks):
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(word[k], word[k + 1]) for k in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        first, second = best
        new, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = new
    return word


_LOADED = {}


def encode(text, vocab_path, merges_path, max_len=77):
    key = (vocab_path, merges_path)
    if key not in _LOADED:
        _LOADED[key] = load(vocab_path, merges_path)
    vocab, ranks = _LOADED[key]
    ids = []
    for piece in presplit(clean(text)):
        if len(ids) >= max_len - 2:
            break
        token = "".join(B2U[b] for b in piece.encode("utf-8"))
        ids.extend(vocab[t] for t in bpe(token, ranks))
    return [vocab[SOT]] + ids[:max_len - 2] + [vocab[EOT]]


# ---- a tiny vocabulary for tests -------------------------------------------

CORPUS = """
The quick brown fox jumps over the lazy dog. The dog is not amused; the fox is.
A photo of the cat on the mat, a picture of the other cat in the garden there.
They think that these three things are there, and that the theme is the thing.
It's what they've said: we're here, I'm there, you'll see, he'd know, that's it.
In the morning the sun rises over the mountains, and in the evening it sets in
the west. Children are playing in the street with their bicycles and a ball.
Photographs of beaches, forests, cities at night, people walking in the rain.
Café au lait, crème brûlée, naïve façade, jalapeño, São Paulo, Zürich, Málaga,
résumé, déjà vu, Ångström, Øresund, Kraków, Dvořák, Ærø, smörgåsbord, piñata.
The weather in the north is colder than in the south, and the rivers there are
wide. Another thing: the theatre, the thermometer, the thesis, the therapist.
Numbers like 2024 and 3.14 appear in the text, with one, two, three and four.
"""


def make_tiny_vocab(out_dir, n_merges=300, seed=0):
    """Write out_dir/vocab.json and out_dir/merges.txt: the 512 byte symbols,
    n_merges merges learned by BPE training on CORPUS (most frequent pair
    first; ties broken by a seeded shuffle; a pair whose merged string is
    already a symbol is skipped, so every token is distinct), then the start
    and end tokens; ids in openai's order."""
    rng = random.Random(seed)
    freq = {}
    for piece in presplit(clean(CORPUS)):
        token = "".join(B2U[b] for b in piece.encode("utf-8"))
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        freq[word] = freq.get(word, 0) + 1
    symbols = set(B2U.values()) | {c + "</w>" for c in B2U.values()}
    tiebreak = {}
    merges = []
    while len(merges) < n_merges:
        counts = {}
        for word, f in freq.items():
            for k in range(len(word) - 1):
                p = (word[k], word[k + 1])
                counts[p] = counts.get(p, 0) + f
        cands = [p for p in counts if p[0] + p[1] not in symbols]
        if not cands:
            break
        for p in cands:
            if p not in tiebreak:
                tiebreak[p] = rng.random()
        best = max(cands, key=lambda p: (counts[p], tiebreak[p]))
        merges.append(best)
        symbols.add(best[0] + best[1])
        new = {}
        for word, f in freq.items():
            w, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    w.append(best[0] + best[1])
                    i += 2
                else:
                    w.append(word[i])
                    i += 1
            new[tuple(w)] = new.get(tuple(w), 0) + f
        freq = new
    tokens = [B2U[b] for b in B2U_ORDER]
    tokens += [t + "</w>" for t in tokens]
    tokens += [a + b for a, b in merges]
    tokens += [SOT, EOT]
    assert len(set(tokens)) == len(tokens)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "vocab":
        make_tiny_vocab(sys.argv[2])
        return 0
    if len(sys.argv) in (4, 5) and sys.argv[1] == "encode":
        max_len = int(sys.argv[4]) if len(sys.argv) == 5 else 77
        bad = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            text = json.loads(line)
            if not presplit_crosscheck(clean(text)):
                sys.stderr.write("ref_clip_bpe: scanner != regex.findall on %r\n" % text)
                bad += 1
            ids = encode(text, sys.argv[2], sys.argv[3], max_len)
            sys.stdout.write(json.dumps(ids) + "\n")
        return 1 if bad else 0
    if len(sys.argv) == 2 and sys.argv[1] == "clean":
        for line in sys.stdin:
            sys.stdout.write(json.dumps([ord(c) for c in clean(json.loads(line))]) + "\n")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
