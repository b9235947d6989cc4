#!/usr/bin/python3
"""Reference side of tests/test_export.c: numpy and FAISS read what
`pixvec export` wrote, and make the broken inputs `pixvec import` must refuse.

  ref_export.py check DIR      DIR/e.npy, e.ids.npy, e.paths.txt, e.fvecs,
                               e.jsonl against DIR/ref.f32 (the test's vectors
                               from pv_embed_file, row-major float32) and
                               DIR/ref.json ([{id, path}] of the live items)
  ref_export.py faiss DIR K    exact inner-product top-K (faiss.IndexFlatIP)
                               of each query in DIR/q.f32 (float32 rows) over
                               DIR/e.npy; prints one line of item ids a query
  ref_export.py bad DIR        broken inputs made from DIR/e.npy
Exits non-zero with a message on any mismatch.
"""
import io
import json
import sys

import numpy as np


def fail(msg):
    print("ref_export: " + msg, file=sys.stderr)
    sys.exit(1)


def unescape(line):
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\":
            out.append({"\\": "\\", "n": "\n", "r": "\r"}[line[i + 1]])
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def check(d):
    x = np.load(d + "/e.npy")
    ids = np.load(d + "/e.ids.npy")
    if x.dtype != np.dtype("<f4") or x.ndim != 2 or not x.flags.c_contiguous:
        fail("e.npy: dtype %s ndim %d" % (x.dtype, x.ndim))
    if ids.dtype != np.dtype("<u4") or ids.shape != (x.shape[0],):
        fail("e.ids.npy: dtype %s shape %s" % (ids.dtype, ids.shape))
    for name, arr in (("e.npy", x), ("e.ids.npy", ids)):  # byte for byte numpy's own
        b = io.BytesIO()
        np.save(b, arr)
        if b.getvalue() != open(d + "/" + name, "rb").read():
            fail(name + " differs from what np.save writes")
    with open(d + "/e.npy", "rb") as f:
        head = f.read(10)
        hlen = head[8] | head[9] << 8
        if head[6] != 1 or (10 + hlen) % 64 != 0:
            fail("e.npy: version %d, data at %d" % (head[6], 10 + hlen))
    ref_items = json.load(open(d + "/ref.json", encoding="utf-8"))
    ref_ids = np.array([r["id"] for r in ref_items], dtype=np.uint32)
    ref_paths = [r["path"] for r in ref_items]
    ref = np.fromfile(d + "/ref.f32", dtype="<f4").reshape(len(ref_items), -1)
    if x.shape != ref.shape:
        fail("e.npy shape %s, the database holds %s" % (x.shape, ref.shape))
    if not np.array_equal(ids, ref_ids):
        fail("ids %s, pv_items says %s" % (ids.tolist(), ref_ids.tolist()))
    err = float(np.max(np.abs(x - ref))) if x.size else 0.0
    if err > 1e-6:
        fail("vectors differ from pv_embed_file's by %g" % err)
    paths = [unescape(l) for l in open(d + "/e.paths.txt", encoding="utf-8").read().split("\n")[:-1]]
    if paths != ref_paths:
        fail("paths %s, pv_items says %s" % (paths[:3], ref_paths[:3]))
    # fvecs: int32 D, then D float32, per row
    raw = np.fromfile(d + "/e.fvecs", dtype="<i4").reshape(x.shape[0], x.shape[1] + 1)
    if not (raw[:, 0] == x.shape[1]).all():
        fail("fvecs: a row's dimension is not %d" % x.shape[1])
    if not np.array_equal(raw[:, 1:].view("<f4"), x):
        fail("fvecs vectors differ from npy's")
    # jsonl: the same rows, %.9g round-trips float32 exactly
    rows = [json.loads(l) for l in open(d + "/e.jsonl", encoding="utf-8")]
    if [r["id"] for r in rows] != ids.tolist() or [r["path"] for r in rows] != ref_paths:
        fail("jsonl ids or paths differ")
    v = np.array([r["vector"] for r in rows], dtype=np.float32)
    if not np.array_equal(v, x):
        fail("jsonl vectors differ from npy's")
    for r in rows:
        if len(r["hash"]) != 32 or r["width"] <= 0 or r["size"] <= 0 or r["mtime_ns"] <= 0:
            fail("jsonl record %s" % {k: r[k] for k in r if k != "vector"})
    print("ok %d %d" % x.shape)


def knn(d, k):
    import faiss

    x = np.load(d + "/e.npy")
    ids = np.load(d + "/e.ids.npy")
    q = np.fromfile(d + "/q.f32", dtype="<f4").reshape(-1, x.shape[1])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, rows = index.search(q, k)
    for r in rows:
        print(" ".join(str(int(ids[i])) for i in r))


def bad(d):
    x = np.load(d + "/e.npy")
    n = x.shape[0]
    y = x.copy()
    y[5, 3] = np.nan
    np.save(d + "/nan.npy", y)
    np.save(d + "/norm.npy", x * 2)
    np.save(d + "/dim.npy", np.eye(n, 10, dtype=np.float32))
    np.save(d + "/f8.npy", (x * 3).astype(np.float64))  # fine with --normalize
    np.save(d + "/fortran.npy", np.asfortranarray(x))
    np.save(d + "/i4.npy", np.zeros((n, x.shape[1]), dtype=np.int32))
    np.save(d + "/f16.npy", x.astype(np.float16))
    np.save(d + "/big.npy", x.astype(">f4"))
    np.save(d + "/three.npy", x.reshape(n, 1, -1))
    raw = open(d + "/e.npy", "rb").read()
    open(d + "/trunc.npy", "wb").write(raw[:-7])
    open(d + "/long.npy", "wb").write(raw + b"\0\0\0\0")
    open(d + "/hdr.npy", "wb").write(raw[:9])
    open(d + "/magic.npy", "wb").write(b"\x93NUMPX" + raw[6:])
    z = x.copy()
    z[2] = 0
    np.save(d + "/zero.npy", z)
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2])
    elif sys.argv[1] == "faiss":
        knn(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "bad":
        bad(sys.argv[2])
    else:
        fail("unknown command " + sys.argv[1])
