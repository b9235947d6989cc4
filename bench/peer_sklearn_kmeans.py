#!/usr/bin/env python3
"""peer_sklearn_kmeans.py - scikit-learn's side of the k-means benchmark
(issue 4): sklearn.cluster.KMeans as the source project called it (its
default k-means++ init, one init, Lloyd), max_iter iterations with tol=0 so
every run does them all, on WORK/base.f32; writes the centroids to
WORK/sklearn_k<K>_r<r>.f32 (seed 1234 + r) for bench_kmeans to score and key=value lines to FILE.

usage: peer_sklearn_kmeans.py WORK --k K[,K...] [--iters I] [--reps R] [--out FILE]
"""
import argparse
import os
import statistics
import time

import numpy as np
from sklearn.cluster import KMeans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--k", default="100")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(os.path.join(a.work, "kshape")) as f:
        n, d = (int(v) for v in f.read().split()[:2])
    x = np.fromfile(os.path.join(a.work, "base.f32"), dtype=np.float32).reshape(n, d)
    kv = open(a.out, "w") if a.out else None
    print(f"## scikit-learn KMeans: {n} x {d}, {a.iters} iterations, "
          f"threads {os.environ.get('OMP_NUM_THREADS', 'all')}\n")
    print(f"| k | seconds (median of {a.reps}) | iterations run |\n|---|---|---|")
    for k in (int(v) for v in a.k.split(",")):
        ts = []
        for r in range(a.reps):
            km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=a.iters,
                        tol=0.0, algorithm="lloyd", random_state=1234 + r)
            t0 = time.perf_counter()
            km.fit(x)
            ts.append(time.perf_counter() - t0)
            km.cluster_centers_.astype(np.float32).tofile(
                os.path.join(a.work, f"sklearn_k{k}_r{r}.f32"))
        med = statistics.median(ts)
        print(f"| {k} | {med:.3f} | {km.n_iter_} |")
        if kv:
            kv.write(f"k{k}_s={med:.4f}\nk{k}_iters={km.n_iter_}\n")
    if kv:
        kv.close()


if __name__ == "__main__":
    main()
