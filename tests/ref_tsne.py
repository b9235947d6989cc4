#!/usr/bin/env python3
"""ref_tsne.py - scikit-learn 1.2.1 references for pixvec's t-SNE and PCA
(index/tsne.c, index/pca.c; tests/test_tsne.c runs this with popen/system).

usage (run with /usr/bin/python3: scikit-learn 1.2.1, numpy, scipy):
  ref_tsne.py p DIR N K PERPLEXITY
      Reads DIR/nbr.u32 and DIR/dist.f32 (N x K, row i = point i's K
      nearest other points, nearest first, plain euclidean distances).
      Writes DIR/cond.f64 (N x K: sklearn's _binary_search_perplexity on
      the squared distances, as _joint_probabilities_nn calls it) and
      DIR/joint.f64 (N x N dense: _joint_probabilities_nn's P).
  ref_tsne.py run DIR N DIM SEED
      Reads DIR/x.f32 (N x DIM) and DIR/y.f32 (N x 2, pixvec's layout of
      the same rows). Runs sklearn's TSNE with the 1.2.1 defaults (2-D,
      perplexity 30, exaggeration 12, learning rate auto, 1000 iterations,
      pca init, Barnes-Hut angle 0.5, random_state SEED). Prints one line:
      "kl_sklearn KL_SK kl_pixvec KL_PV kl_sklearn_reported KL" where the
      first two are the exact KL(P || Q) of each layout against the same P
      (exact 91 nearest neighbours), Q over all pairs.
  ref_tsne.py pca DIR N DIM NCOMP
      Reads DIR/x.f32; writes DIR/pca.f32 (N x NCOMP), sklearn's
      PCA(svd_solver="full").fit_transform (svd_flip signs).

Exit status 0, or non-zero with a message on stderr.
"""
import os
import sys

# One OpenMP thread: sklearn's Barnes-Hut busy-waits its OpenMP workers,
# which on a shared 2-core machine costs several times the work itself
# (24 s of CPU instead of 4 s for the 1,000-point run). Set before numpy
# and sklearn load their runtimes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402
from scipy.spatial.distance import pdist, squareform  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.manifold import _t_sne, _utils  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402


def cmd_p(d, n, k, perp):
    nbr = np.fromfile(d + "/nbr.u32", dtype=np.uint32).reshape(n, k).astype(np.int64)
    dist = np.fromfile(d + "/dist.f32", dtype=np.float32).reshape(n, k)
    sq = (dist.astype(np.float64) ** 2).astype(np.float32)
    cond = _utils._binary_search_perplexity(sq, perp, 0)
    cond.astype(np.float64).tofile(d + "/cond.f64")
    m = csr_matrix((sq.ravel(), nbr.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    P = _t_sne._joint_probabilities_nn(m, perp, 0)
    np.asarray(P.todense(), dtype=np.float64).tofile(d + "/joint.f64")


def exact_kl(P, y):
    w = 1.0 / (1.0 + squareform(pdist(y.astype(np.float64), "sqeuclidean")))
    np.fill_diagonal(w, 0.0)
    q = w / w.sum()
    P = P.tocoo()
    pq = q[P.row, P.col]
    return float(np.sum(P.data * np.log(np.maximum(P.data, 1e-300) / np.maximum(pq, 1e-300))))


def cmd_run(d, n, dim, seed):
    x = np.fromfile(d + "/x.f32", dtype=np.float32).reshape(n, dim)
    y_pv = np.fromfile(d + "/y.f32", dtype=np.float32).reshape(n, 2)
    tsne = TSNE(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                learning_rate="auto", n_iter=1000, init="pca", angle=0.5,
                method="barnes_hut", random_state=seed)
    y_sk = tsne.fit_transform(x)
    k = min(n - 1, int(3.0 * 30.0 + 1))
    nn = NearestNeighbors(n_neighbors=k).fit(x)
    g = nn.kneighbors_graph(mode="distance")
    g.data **= 2
    P = _t_sne._joint_probabilities_nn(g, 30.0, 0)
    print("kl_sklearn %.6f kl_pixvec %.6f kl_sklearn_reported %.6f"
          % (exact_kl(P, y_sk), exact_kl(P, y_pv), tsne.kl_divergence_))


def cmd_pca(d, n, dim, ncomp):
    x = np.fromfile(d + "/x.f32", dtype=np.float32).reshape(n, dim).astype(np.float64)
    y = PCA(n_components=ncomp, svd_solver="full").fit_transform(x)
    y.astype(np.float32).tofile(d + "/pca.f32")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "p" and len(argv) == 6:
        cmd_p(argv[2], int(argv[3]), int(argv[4]), float(argv[5]))
    elif argv[1] == "run" and len(argv) == 6:
        cmd_run(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    elif argv[1] == "pca" and len(argv) == 6:
        cmd_pca(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
