#!/usr/bin/env python3
"""peer_torch_cnn.py - PyTorch's side of the cnn speed benchmark (issue 5):
the same MobileNetV2 (tests/ref_mobilenet.py's forward, PyTorch operators,
batch norm folded into the convolutions as pixvec does, so both run the
same arithmetic) on the inputs bench_cnn wrote, at the same batch size and
thread count; images/s, median of R, and the largest difference from
pixvec's features.

usage: peer_torch_cnn.py MODEL WORK N --batch B --threads T --reps R [--out FILE]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import ref_mobilenet as ref  # noqa: E402


def fold(w):
    """Batch norm folded into each convolution: (weight, bias) per conv."""
    out = {}
    for name in [k[:-len("/kernel")] for k in w if k.endswith("/kernel")] + \
                [k[:-len("/depthwise_kernel")] for k in w if k.endswith("/depthwise_kernel")]:
        dw = name + "/depthwise_kernel" in w
        k = w[name + ("/depthwise_kernel" if dw else "/kernel")]
        bn = {"Conv1": "bn_Conv1", "Conv_1": "Conv_1_bn"}.get(name, name + "_BN")
        if bn + "/gamma" not in w:  # nsfwjs' classifier head: not the backbone
            continue
        s = w[bn + "/gamma"] / torch.sqrt(w[bn + "/moving_variance"] + ref.EPS)
        b = w[bn + "/beta"] - w[bn + "/moving_mean"] * s
        weight = k.permute(2, 3, 0, 1) if dw else k.permute(3, 2, 0, 1)
        out[name] = ((weight * s.view(-1, 1, 1, 1)).contiguous(), b.contiguous(), dw)
    return out


def conv(c, x, name, stride=1):
    weight, bias, dw = c[name]
    if weight.shape[-1] == 3:
        x = F.pad(x, (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))
    return F.conv2d(x, weight, bias, stride=stride, groups=weight.shape[0] if dw else 1)


def forward(c, x):
    x = torch.clamp(conv(c, x, "Conv1", 2), 0, 6)
    b, cin = 0, 32
    for t, ch, n, s in ref.SPEC:
        for r in range(n):
            p = "expanded_conv" if b == 0 else f"block_{b}"
            stride = s if r == 0 else 1
            y = x
            if t != 1:
                y = torch.clamp(conv(c, y, p + "_expand"), 0, 6)
            y = torch.clamp(conv(c, y, p + "_depthwise", stride), 0, 6)
            y = conv(c, y, p + "_project")
            if stride == 1 and cin == ch:
                y = y + x
            x, cin, b = y, ch, b + 1
    return torch.clamp(conv(c, x, "Conv_1"), 0, 6).mean(dim=(2, 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("work")
    ap.add_argument("n", type=int)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = fold(ref.load(a.model))
    x = np.fromfile(os.path.join(a.work, "cnn_in.f32"), dtype="<f4").reshape(a.n, 224, 224, 3)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    ts = []
    with torch.no_grad():
        forward(c, x[:1])  # warm up
        for _ in range(a.reps):
            t0 = time.perf_counter()
            ys = [forward(c, x[b:b + a.batch]) for b in range(0, a.n, a.batch)]
            ts.append(time.perf_counter() - t0)
    y = torch.cat(ys).numpy()
    pv = np.fromfile(os.path.join(a.work, "cnn_out.f32"), dtype="<f4").reshape(a.n, -1)
    cos = (y * pv).sum(1) / np.linalg.norm(y, axis=1) / np.linalg.norm(pv, axis=1)
    ips = a.n / statistics.median(ts)
    print(f"## PyTorch {torch.__version__} (same network, batch {a.batch}, {a.threads} threads)\n")
    print(f"| forward only | {ips:.1f} images/s | worst cosine to pixvec's features {cos.min():.7f} |")
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"torch_ips={ips:.3f}\ntorch_cos={cos.min():.7f}\n")


if __name__ == "__main__":
    main()
