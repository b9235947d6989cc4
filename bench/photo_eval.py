#!/usr/bin/python3
"""photo_eval.py - the photo benchmark's quality tables (issue 13).

usage: /usr/bin/python3 bench/photo_eval.py OUT HASHES_TSV
           [--pixvec NAME=THR:DUPS_JSON]... [--query NAME=QUERY_FILE]...

OUT is a photo set (bench/photo_set.sh): OUT/manifest.tsv lists
relative_path TAB group TAB transform; images sharing a group (an original
and its variants) are near-duplicates, distractors (group d:<id>) have none.
HASHES_TSV is photo_hashes' output on OUT. Each --pixvec gives the output
of `pixvec dups DB --json` for embedder NAME at threshold THR (THR
"default": the embedder's default, read from the file); repeat it for a
threshold sweep. Each --query gives the file bench/photo_queries.sh wrote
for NAME (the `query IMAGE -k 2 --json` answers, one per image).

Prints markdown: (a) pair precision, recall and F1 per method; (b) recall
of (original, variant) pairs per transform; (c) threshold sweeps; (d) the
fraction of queries whose nearest other image shares their group; (e) the
hashes' distance sanity figures. Needs numpy (Debian's python3-numpy).
"""
import argparse
import json
import os
import sys

import numpy as np

HASHES = [  # name, TSV column, bits
    ("aHash", 1, 64), ("dHash", 2, 64), ("pHash", 3, 64), ("wHash", 4, 64),
    ("PDQ", 5, 256),
]
POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def die(msg):
    sys.exit("photo_eval: " + msg)


def read_manifest(out):
    rows = []
    with open(os.path.join(out, "manifest.tsv")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            p = line.split("\t")
            if len(p) < 3:
                die("manifest line without 3 fields: %r" % line)
            rows.append((p[0], p[1], p[2]))
    return rows


def hex_bytes(h, nbits):
    return np.frombuffer(bytes.fromhex(h), dtype=np.uint8) if h != "-" else None


def read_hashes(path, rows):
    """{hash name: (uint8 array n x bytes, ok mask)}, plus PDQ's mirror
    hashes and quality, in manifest order."""
    by_path = {}
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 8:
                by_path[p[0]] = p
    n = len(rows)
    out = {}
    ok = np.zeros(n, dtype=bool)
    for i, (rel, _, _) in enumerate(rows):
        p = by_path.get(rel)
        ok[i] = p is not None and p[1] != "-"
    missing = [rows[i][0] for i in range(n) if not ok[i]]
    if missing:
        print("note: %d images have no hash (not decoded): %s%s\n" % (
            len(missing), ", ".join(missing[:5]), " ..." if len(missing) > 5 else ""))
    for name, col, bits in HASHES + [("PDQ-mirror", 6, 256)]:
        a = np.zeros((n, bits // 8), dtype=np.uint8)
        for i, (rel, _, _) in enumerate(rows):
            if ok[i]:
                a[i] = hex_bytes(by_path[rel][col], bits)
        out[name] = a
    q = np.zeros(n, dtype=int)
    for i, (rel, _, _) in enumerate(rows):
        if ok[i]:
            q[i] = int(by_path[rel][7])
    return out, ok, q


def hamming_matrix(a, b=None):
    """All-pairs Hamming distances between rows of a and rows of b."""
    b = a if b is None else b
    d = np.empty((a.shape[0], b.shape[0]), dtype=np.int16)
    for s in range(0, a.shape[0], 128):
        x = a[s:s + 128, None, :] ^ b[None, :, :]
        d[s:s + 128] = POP8[x].sum(axis=2)
    return d


class Truth:
    def __init__(self, rows):
        self.rows = rows
        self.n = len(rows)
        self.group = [g for _, g, _ in rows]
        self.gid = {}
        for g in self.group:
            self.gid.setdefault(g, len(self.gid))
        self.g = np.array([self.gid[g] for g in self.group])
        sizes = {}
        for g in self.group:
            if not g.startswith("d:"):
                sizes[g] = sizes.get(g, 0) + 1
        self.pairs = sum(s * (s - 1) // 2 for s in sizes.values())
        self.distractor = np.array([g.startswith("d:") for g in self.group])
        # (original, variant) pairs per transform
        orig = {g: i for i, (_, g, t) in enumerate(rows) if t == "orig"}
        self.transforms = []
        self.tpairs = {}
        for i, (_, g, t) in enumerate(rows):
            if t in ("orig", "distractor") or g not in orig:
                continue
            if t not in self.tpairs:
                self.transforms.append(t)
                self.tpairs[t] = []
            self.tpairs[t].append((orig[g], i))

    def same(self, i, j):
        return self.g[i] == self.g[j] and not self.distractor[i]


def prf(tp, pred, truth):
    p = tp / pred if pred else 1.0
    r = tp / truth if truth else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


class Components:
    """Union-find over the threshold graph, fed edges in order of distance;
    keeps the number of pairs inside components and of true pairs among
    them (per component, its count of images of each group)."""

    def __init__(self, truth):
        self.t = truth
        self.parent = list(range(truth.n))
        self.size = [1] * truth.n
        self.groups = [{truth.g[i]: 1} if not truth.distractor[i] else {} for i in range(truth.n)]
        self.pred = 0
        self.tp = 0

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i, j):
        a, b = self.find(i), self.find(j)
        if a == b:
            return
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.pred += self.size[a] * self.size[b]
        ga, gb = self.groups[a], self.groups[b]
        for g, c in gb.items():
            if g in ga:
                self.tp += ga[g] * c
                ga[g] += c
            else:
                ga[g] = c
        self.groups[b] = None
        self.parent[b] = a
        self.size[a] += self.size[b]


class HashMethod:
    """One hash: its distance matrix (with excluded images at a distance
    above every threshold) and its sweep."""

    def __init__(self, name, dist, thresholds, truth, note=""):
        self.name, self.dist, self.thresholds, self.t, self.note = name, dist, thresholds, truth, note
        iu = np.triu_indices(truth.n, 1)
        d = dist[iu]
        keep = d <= thresholds[-1]
        self.ei, self.ej, self.ed = iu[0][keep], iu[1][keep], d[keep]
        order = np.argsort(self.ed, kind="stable")
        self.ei, self.ej = self.ei[order].tolist(), self.ej[order].tolist()
        self.ed = self.ed[order].tolist()
        self.sweep = {}
        c = Components(truth)
        k = 0
        for T in thresholds:
            while k < len(self.ed) and self.ed[k] <= T:
                c.union(self.ei[k], self.ej[k])
                k += 1
            self.sweep[T] = (c.pred, c.tp) + prf(c.tp, c.pred, truth.pairs)
        self.best = max(thresholds, key=lambda T: (self.sweep[T][4], -T))

    def components_at(self, T):
        c = Components(self.t)
        for k in range(len(self.ed)):
            if self.ed[k] > T:
                break
            c.union(self.ei[k], self.ej[k])
        return [c.find(i) for i in range(self.t.n)]

    def query_hits(self, big):
        """Over the non-distractor images: how many have their nearest
        other image in their group with no image of another group as near
        (a tie counts as a miss), how many ties, and how many have no usable
        hash (not decoded, or excluded by a quality rule: misses too)."""
        hits, ties, excluded, n = 0, 0, 0, 0
        for i in range(self.t.n):
            if self.t.distractor[i]:
                continue
            n += 1
            row = self.dist[i].astype(np.int32)
            same = self.t.g == self.t.g[i]
            same[i] = False
            other = ~same
            other[i] = False
            best_same = row[same].min() if same.any() else big
            best_other = row[other].min() if other.any() else big
            if best_same >= big:
                excluded += 1
            elif best_same < best_other:
                hits += 1
            elif best_same == best_other:
                ties += 1
        return hits, n, ties, excluded


def load_dups(path, index_of):
    with open(path) as f:
        j = json.load(f)
    pairs = set()
    unknown = 0
    for g in j.get("groups", []):
        ids = []
        for m in g.get("members", []):
            i = index_of.get(os.path.realpath(m["path"]))
            if i is None:
                unknown += 1
            else:
                ids.append(i)
        ids = sorted(set(ids))
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                pairs.add((ids[a], ids[b]))
    if unknown:
        print("note: %s names %d images outside the manifest\n" % (path, unknown))
    return j.get("threshold"), pairs


def iter_json(path):
    dec = json.JSONDecoder()
    with open(path) as f:
        s = f.read()
    k = 0
    while True:
        while k < len(s) and s[k].isspace():
            k += 1
        if k >= len(s):
            return
        obj, k = dec.raw_decode(s, k)
        yield obj


def pixvec_query(path, truth, index_of):
    hits, n, errors = 0, 0, 0
    seen = set()
    for q in iter_json(path):
        i = index_of.get(os.path.realpath(q.get("query", "")))
        if i is None or truth.distractor[i] or i in seen:
            if i is None:
                errors += 1
            continue
        seen.add(i)
        n += 1
        for h in q.get("hits", []):
            j = index_of.get(os.path.realpath(h["path"]))
            if j == i:
                continue
            hits += j is not None and truth.same(i, j)
            break
    want = int((~truth.distractor).sum())
    return hits, want, n, errors


def fmt(x):
    return "%.4f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("hashes")
    ap.add_argument("--pixvec", action="append", default=[], metavar="NAME=THR:FILE")
    ap.add_argument("--query", action="append", default=[], metavar="NAME=FILE")
    args = ap.parse_args()

    rows = read_manifest(args.out)
    truth = Truth(rows)
    index_of = {os.path.realpath(os.path.join(args.out, r)): i for i, (r, _, _) in enumerate(rows)}
    H, ok, quality = read_hashes(args.hashes, rows)
    norig = sum(1 for r in rows if r[2] == "orig")
    print("## photo set %s: %d images (%d originals, %d variants, %d distractors), %d true pairs\n" % (
        args.out, truth.n, norig, truth.n - norig - int(truth.distractor.sum()),
        int(truth.distractor.sum()), truth.pairs))

    # --- the hashes
    big = 1 << 14
    methods = []
    for name, _, bits in HASHES:
        d = hamming_matrix(H[name])
        if name == "PDQ":
            dm = np.minimum(hamming_matrix(H["PDQ"], H["PDQ-mirror"]),
                            hamming_matrix(H["PDQ-mirror"], H["PDQ"]))
            variants = [("PDQ", d, ""), ("PDQ+flip", np.minimum(d, dm),
                                          "min over the image and its mirror hash")]
        else:
            variants = [(name, d, "")]
        for vname, dd, note in variants:
            dd = dd.copy()
            dd[~ok, :] = big
            dd[:, ~ok] = big
            th = list(range(0, 33)) if bits == 64 else sorted(set(range(0, 129, 2)) | {31})
            methods.append(HashMethod(vname, dd, th, truth, note))
            if bits == 256:
                lowq = ok & (quality < 50)
                dq = dd.copy()
                dq[lowq, :] = big
                dq[:, lowq] = big
                methods.append(HashMethod(vname + " q>=50", dq, th, truth,
                                          "images of quality < 50 never match (the reference's rule)"))
    lowq_n = int((ok & (quality < 50)).sum())

    # --- pixvec
    pix = {}  # name -> {thr: pairs}, plus default thr
    pix_default = {}
    for spec in args.pixvec:
        try:
            name, rest = spec.split("=", 1)
            thr, path = rest.split(":", 1)
        except ValueError:
            die("--pixvec wants NAME=THR:FILE, not %r" % spec)
        t, pairs = load_dups(path, index_of)
        if t is None:
            die("%s has no threshold field" % path)
        t = round(float(t), 4)
        pix.setdefault(name, {})[t] = pairs
        if thr == "default":
            pix_default[name] = t

    def pix_score(pairs):
        tp = sum(1 for i, j in pairs if truth.same(i, j))
        return (len(pairs), tp) + prf(tp, len(pairs), truth.pairs)

    # (a)
    print("### (a) pair precision, recall and F1\n")
    print("| method | threshold | pairs predicted | true pairs found | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    arows = []
    for name in pix:
        ts = sorted(pix[name])
        t = pix_default.get(name, ts[0])
        label = "pixvec %s" % name
        if name == "cnn" and t == 0.9:
            label += " (= imagededup's recipe, cosine >= 0.9)"
        arows.append((label, "%.3f%s" % (t, " (default)" if name in pix_default else ""),
                      pix_score(pix[name][t]), ("pix", name, t)))
        if name == "cnn" and 0.9 in pix[name] and t != 0.9:
            arows.append(("pixvec cnn, imagededup's recipe", "0.900", pix_score(pix[name][0.9]),
                          ("pix", name, 0.9)))
    for m in methods:
        arows.append((m.name, "<= %d (best F1)" % m.best, m.sweep[m.best], ("hash", m, m.best)))
    for label, thr, s, _ in arows:
        print("| %s | %s | %d | %d | %s | %s | %s |" % (label, thr, s[0], s[1], fmt(s[2]), fmt(s[3]), fmt(s[4])))
    print("\nTrue pairs: every pair of images sharing a group (original-variant and "
          "variant-variant). pixvec: every pair inside a group `dups --json` reports, at the "
          "embedder's default threshold. Hashes: pairs within Hamming distance T joined into "
          "connected components, every pair inside a component counted, at the T of best F1 "
          "on this set (chosen on the same set it is scored on: an upper bound for a hash). "
          "PDQ+flip: the distance is the minimum over the two images' hashes and each one's "
          "mirror hash. q>=50: %d of %d images have PDQ quality below 50.\n" % (lowq_n, int(ok.sum())))

    # (b)
    print("### (b) recall of (original, variant) pairs per transform\n")
    preds = []
    for label, _, _, spec in arows:
        if spec[0] == "pix":
            pairs = pix[spec[1]][spec[2]]
            preds.append(lambda i, j, p=pairs: (min(i, j), max(i, j)) in p)
        else:
            comp = spec[1].components_at(spec[2])
            preds.append(lambda i, j, c=comp: c[i] == c[j])
    print("| transform | pairs | " + " | ".join(r[0] for r in arows) + " |")
    print("|---|---|" + "---|" * len(arows))
    for t in truth.transforms:
        tp = truth.tpairs[t]
        cells = ["%.2f" % (sum(1 for i, j in tp if pr(i, j)) / len(tp)) for pr in preds]
        print("| %s | %d | %s |" % (t, len(tp), " | ".join(cells)))
    print("\nAt the thresholds of table (a). A variant counts as found when it ends up in a "
          "predicted pair with its original.\n")

    # (c)
    print("### (c) threshold sweeps\n")
    show64 = [0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32]
    show256 = [0, 10, 20, 31, 40, 50, 60, 70, 80, 90, 100, 128]
    for m in methods:
        print("%s%s:\n" % (m.name, " (" + m.note + ")" if m.note else ""))
        print("| T | pairs predicted | precision | recall | F1 |\n|---|---|---|---|---|")
        show = show64 if m.thresholds[-1] == 32 else show256
        for T in sorted(set(show) | {m.best}):
            s = m.sweep[T]
            print("| %s | %d | %s | %s | %s |" % ("**%d**" % T if T == m.best else "%d" % T, s[0],
                                                   fmt(s[2]), fmt(s[3]), fmt(s[4])))
        print()
    for name in pix:
        what = "pair score (aligned comparison)" if name == "photo" else "cosine"
        print("pixvec %s (`dups` groups, %s >= threshold):\n" % (name, what))
        print("| threshold | pairs predicted | precision | recall | F1 |\n|---|---|---|---|---|")
        for t in sorted(pix[name]):
            s = pix_score(pix[name][t])
            print("| %.3f%s | %d | %s | %s | %s |" % (t, " (default)" if pix_default.get(name) == t else "",
                                                     s[0], fmt(s[2]), fmt(s[3]), fmt(s[4])))
        print()

    # (d)
    print("### (d) query by image: is the nearest other image in the query's group?\n")
    print("| method | queries | nearest other image in the group | fraction | notes |")
    print("|---|---|---|---|---|")
    for spec in args.query:
        name, path = spec.split("=", 1)
        hits, want, n, errors = pixvec_query(path, truth, index_of)
        note = "" if n == want else "%d of %d images answered" % (n, want)
        if errors:
            note += (" " if note else "") + "%d answers not for a manifest image" % errors
        print("| pixvec %s | %d | %d | %s | %s |" % (name, want, hits, fmt(hits / want if want else 0), note))
    for m in methods:
        hits, n, ties, excluded = m.query_hits(big)
        print("| %s | %d | %d | %s | %d ties with another group's image (misses)%s |" % (
            m.name, n, hits, fmt(hits / n if n else 0), ties,
            "; %d queries whose own or every same-group hash is unusable (misses)" % excluded if excluded else ""))
    print("\nQueries: every original and variant (not the distractors); the query image itself "
          "is skipped in its own results. pixvec: the first other image `query IMAGE -k 2` "
          "returns. Hashes: the nearest other image by Hamming distance; when an image of "
          "another group is as near as the nearest of the query's group, the query counts "
          "as a miss.\n")

    # (e)
    print("### (e) hash sanity: mean Hamming distance\n")
    orig = {g: i for i, (_, g, t) in enumerate(rows) if t == "orig"}
    oi = np.array([i for i in orig.values() if ok[i]])
    print("| hash | bits | original vs q60 | original vs mirror | between different originals (mean / min) |")
    print("|---|---|---|---|---|")
    for name, dist in [(m.name, m.dist) for m in methods if "q>=50" not in m.name]:
        bits = 64 if name in ("aHash", "dHash", "pHash", "wHash") else 256

        def mean_over(tr):
            v = [dist[i, j] for i, j in truth.tpairs.get(tr, []) if ok[i] and ok[j]]
            return "%.1f" % np.mean(v) if v else "-"
        if len(oi) > 1:
            sub = dist[np.ix_(oi, oi)][np.triu_indices(len(oi), 1)]
            between = "%.1f / %d" % (sub.mean(), sub.min())
        else:
            between = "-"
        print("| %s | %d | %s | %s | %s |" % (name, bits, mean_over("q60"), mean_over("mirror"), between))
    print()


if __name__ == "__main__":
    main()
