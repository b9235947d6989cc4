#!/usr/bin/env python3
"""ref_umap.py - umap-learn 0.5.3 (Debian's umap-learn package) as the
reference for pixvec's C UMAP (index/umap.c, tests/test_umap.c).

The C test writes its input (the kNN lists it also gives its own code) and
reads back what umap-learn makes of it, so both sides start from the same
neighbours (self excluded here; the self entry is prepended below, as
umap-learn's own kNN has it).

usage (run with /usr/bin/python3: numpy, scipy, sklearn, umap):
  ref_umap.py ab MIN_DIST SPREAD
      prints umap.umap_.find_ab_params(SPREAD, MIN_DIST): "a b".
  ref_umap.py graph IN OUT
      IN: u32 n, u32 k, i32 nbr[n][k], f32 dist[n][k]. Runs
      fuzzy_simplicial_set with those neighbours (n_neighbors = k + 1) and
      writes OUT: f32 sigma[n], f32 rho[n], u64 nnz, i32 row[nnz],
      i32 col[nnz], f32 val[nnz] (CSR order).
  ref_umap.py fit IN OUT
      IN: u32 n, u32 dim, u32 k, u64 seed, f32 x[n][dim], i32 nbr[n][k],
      f32 dist[n][k]. What umap.UMAP(n_neighbors = k + 1, random_state =
      seed, defaults otherwise).fit does, with those neighbours
      (fuzzy_simplicial_set, then simplicial_set_embedding); OUT:
      f32 y[n][2], f64 trustworthiness(x, y, n_neighbors=10) (sklearn).
  ref_umap.py trust IN_X IN_Y
      prints sklearn's trustworthiness at k = 10: IN_X is u32 n, u32 dim,
      f32 x; IN_Y is u32 n, u32 dims, f32 y.

graph and fit cache their output by a hash of the command and the input in
$TMPDIR/pixvec-umap-ref (umap-learn's numba compile takes tens of seconds;
the test suite calls this several times per run). Exit status 0, or
non-zero with a message on stderr.
"""
import hashlib
import os
import shutil
import struct
import sys
import tempfile
import warnings

import numpy as np


def cache_path(cmd, data):
    h = hashlib.sha256(cmd.encode() + b"\0" + data).hexdigest()[:32]
    d = os.path.join(tempfile.gettempdir(), "pixvec-umap-ref")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, cmd + "-" + h + ".bin")


def write_atomic(path, blob):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def with_self(nbr, dist):
    n = nbr.shape[0]
    ki = np.hstack([np.arange(n, dtype=np.int32)[:, None], nbr]).astype(np.int32)
    kd = np.hstack([np.zeros((n, 1), np.float32), dist]).astype(np.float32)
    return ki, kd


def cmd_graph(data):
    import scipy.sparse
    import umap.umap_ as uu

    n, k = struct.unpack_from("<II", data, 0)
    off = 8
    nbr = np.frombuffer(data, "<i4", n * k, off).reshape(n, k)
    off += 4 * n * k
    dist = np.frombuffer(data, "<f4", n * k, off).reshape(n, k)
    ki, kd = with_self(nbr, dist)
    x = np.zeros((n, 1), np.float32)  # unused when the kNN is given
    graph, sigmas, rhos = uu.fuzzy_simplicial_set(
        x, k + 1, np.random.RandomState(0), "euclidean", knn_indices=ki, knn_dists=kd)
    g = scipy.sparse.csr_matrix(graph)
    g.sort_indices()
    coo = g.tocoo()
    return (np.asarray(sigmas, "<f4").tobytes() + np.asarray(rhos, "<f4").tobytes()
            + struct.pack("<Q", coo.nnz) + coo.row.astype("<i4").tobytes()
            + coo.col.astype("<i4").tobytes() + coo.data.astype("<f4").tobytes())


def cmd_fit(data):
    from sklearn.manifold import trustworthiness
    from sklearn.utils import check_random_state
    import umap.umap_ as uu

    n, dim, k, seed = struct.unpack_from("<IIIQ", data, 0)
    off = 20
    x = np.frombuffer(data, "<f4", n * dim, off).reshape(n, dim)
    off += 4 * n * dim
    nbr = np.frombuffer(data, "<i4", n * k, off).reshape(n, k)
    off += 4 * n * k
    dist = np.frombuffer(data, "<f4", n * k, off).reshape(n, k)
    ki, kd = with_self(nbr, dist)
    # UMAP.fit's steps for a seeded fit (0.5.3 umap_.py): its precomputed_knn
    # wants an NNDescent index as well, so the two steps are called directly.
    rs = check_random_state(int(seed))
    a, b = uu.find_ab_params(1.0, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, _, _ = uu.fuzzy_simplicial_set(x, k + 1, rs, "euclidean",
                                              knn_indices=ki, knn_dists=kd)
        y, _ = uu.simplicial_set_embedding(
            x, graph, 2, 1.0, a, b, 1.0, 5, None, "spectral", rs, "euclidean", {},
            False, {}, False, parallel=False)
    y = np.asarray(y, "<f4")
    t = trustworthiness(x, y, n_neighbors=10)
    return y.tobytes() + struct.pack("<d", t)


def read_mat(path):
    with open(path, "rb") as f:
        data = f.read()
    n, d = struct.unpack_from("<II", data, 0)
    return np.frombuffer(data, "<f4", n * d, 8).reshape(n, d)


def main(argv):
    if len(argv) == 4 and argv[1] == "ab":
        import umap.umap_ as uu
        a, b = uu.find_ab_params(float(argv[3]), float(argv[2]))
        print("%.8f %.8f" % (a, b))
        return 0
    if len(argv) == 4 and argv[1] == "trust":
        from sklearn.manifold import trustworthiness
        print("%.10f" % trustworthiness(read_mat(argv[2]), read_mat(argv[3]), n_neighbors=10))
        return 0
    if len(argv) == 4 and argv[1] in ("graph", "fit"):
        with open(argv[2], "rb") as f:
            data = f.read()
        cp = cache_path(argv[1], data)
        if not os.path.exists(cp):
            blob = cmd_graph(data) if argv[1] == "graph" else cmd_fit(data)
            write_atomic(cp, blob)
        shutil.copyfile(cp, argv[3])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
