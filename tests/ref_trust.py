#!/usr/bin/env python3
"""ref_trust.py - the reference for tests/test_layout_quality.c: scikit-learn's
trustworthiness and a plain numpy count of the k nearest neighbours a layout
keeps (docs/research/issue15-maps.md 3.1 and 3.2), on float32 files.

usage (run with /usr/bin/python3: scikit-learn 1.2.1, numpy):
  ref_trust.py X.f32 N DIM Y.f32 DIMS K
      X: N x DIM float32, Y: N x DIMS float32 (raw, row-major). Prints
      "trust kept" as two floats with 17 significant digits. The input is
      converted to float64 before either measure; both sets exclude the
      point itself.
Exit status 0, or non-zero with a message on stderr.
"""
import sys

import numpy as np
from sklearn.manifold import trustworthiness


def kept_fraction(x, y, k):
    """(1/(n k)) sum_i |N_k^X(i) & N_k^Y(i)|, by full distance matrices."""
    n = x.shape[0]

    def knn(a):
        d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :k]

    nx, ny = knn(x), knn(y)
    both = sum(len(np.intersect1d(nx[i], ny[i])) for i in range(n))
    return both / (n * k)


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    xf, n, dim, yf, dims, k = sys.argv[1:]
    n, dim, dims, k = int(n), int(dim), int(dims), int(k)
    x = np.fromfile(xf, dtype=np.float32).reshape(n, dim).astype(np.float64)
    y = np.fromfile(yf, dtype=np.float32).reshape(n, dims).astype(np.float64)
    t = trustworthiness(x, y, n_neighbors=k)
    print(f"{t:.17g} {kept_fraction(x, y, k):.17g}")


if __name__ == "__main__":
    main()
