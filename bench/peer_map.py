#!/usr/bin/env python3
"""peer_map.py - the peers' side of the map benchmark (issue 15): one layout
of VECTORS.f32 (n x DIM float32, pixvec's own vectors in pixvec's CSV
order, written by map_vectors) per call, by

  tsne      scikit-learn 1.2.1 TSNE at its documented defaults, passed
            explicitly: n_components=2, perplexity=30, early_exaggeration=12,
            learning_rate="auto", n_iter=1000 (1.2's name), init="pca",
            method="barnes_hut", angle=0.5, random_state=42, n_jobs=-1;
  umap      umap-learn 0.5.3 UMAP() at its defaults (n_neighbors 15,
            min_dist 0.1, metric euclidean), unseeded: its parallel SGD,
            the fast path;
  umap42    the same with random_state=42: reproducible, and single-threaded
            SGD (umap-learn disables its parallel epochs when seeded).

umap-learn's numba compile is timed apart: NUMBA_CACHE_DIR is a fresh
temporary folder (so no earlier run's cache hides it), then `import umap`
is timed, then a fit of the first 300 points (same parameters: it compiles
the kernels), then the real fit. In 0.5.3 the epoch kernel is compiled
again inside every fit, so the real fit still holds one such compile.

Writes the layout to OUT.f32 (n x 2 float32) and prints one JSON object:
{"peer", "n", "dim", "fit_s", "import_s", "compile_s", "threads", ...}.

usage: peer_map.py VECTORS.f32 DIM {tsne|umap|umap42} OUT.f32
"""
import json
import os
import shutil
import sys
import tempfile
import time


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in ("tsne", "umap", "umap42"):
        sys.exit(__doc__)
    vec, dim, peer, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cache = None
    if peer.startswith("umap"):
        cache = tempfile.mkdtemp(prefix="pixvec-numba-")
        os.environ["NUMBA_CACHE_DIR"] = cache
    import numpy as np

    x = np.fromfile(vec, dtype=np.float32).reshape(-1, dim)
    res = {"peer": peer, "n": int(x.shape[0]), "dim": dim, "threads": os.cpu_count()}
    try:
        if peer == "tsne":
            import sklearn
            from sklearn.manifold import TSNE

            res["version"] = sklearn.__version__
            m = TSNE(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                     learning_rate="auto", n_iter=1000, init="pca",
                     method="barnes_hut", angle=0.5, random_state=42, n_jobs=-1)
            t0 = time.perf_counter()
            y = m.fit_transform(x)
            res["fit_s"] = time.perf_counter() - t0
            res["kl"] = float(m.kl_divergence_)
        else:
            t0 = time.perf_counter()
            import umap

            res["import_s"] = time.perf_counter() - t0
            res["version"] = umap.__version__
            kw = {"random_state": 42} if peer == "umap42" else {}
            t0 = time.perf_counter()
            umap.UMAP(**kw).fit_transform(x[:300])
            res["compile_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            y = umap.UMAP(**kw).fit_transform(x)
            res["fit_s"] = time.perf_counter() - t0
        np.ascontiguousarray(y, dtype=np.float32).tofile(out)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
