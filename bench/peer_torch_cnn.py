#!/usr/bin/env python3
"""peer_torch_cnn.py - PyTorch's side of the cnn speed benchmark (issues 5
and 17): the same MobileNetV2 (tests/ref_mobilenet.py's weights and
layout, batch norm folded into the convolutions as pixvec does, so both run
the same arithmetic) on the inputs bench_cnn wrote, in the ways a PyTorch
user runs a CNN for inference:

  eager   torch.no_grad, NCHW (PyTorch's default layout);
  cl      eager with the input and weights in channels_last (NHWC, oneDNN's
          preferred layout for convolutions on CPU);
  jit     torch.jit.trace, torch.jit.freeze, torch.jit.optimize_for_inference
          (oneDNN convolutions with fused ReLU6 clamps, channels_last).

Each mode at each batch size: one warm-up pass over the images (the jit
modes profile and specialise on their first calls), then R timed passes;
images/s is the median. Threads: torch.set_num_threads(T); run_cnn.sh also
sets OMP_NUM_THREADS=T, OPENBLAS_NUM_THREADS=1 and, for the tuned rows,
glibc's malloc thresholds (MALLOC_MMAP_THRESHOLD_ etc.: big activations
reused from the heap, not mmap'd and zeroed per call) before python starts,
since both are read at start-up. The worst cosine to pixvec's features is
checked per mode.

usage: peer_torch_cnn.py MODEL WORK N --threads T --reps R
                         [--batches 1,8,32] [--modes eager,cl,jit] [--out FILE]
  --out: one line per mode and batch, "torch_<mode>_b<B>=<images/s>", and
         "torch_<mode>_cos=<worst cosine>"
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
    """Batch norm folded into each convolution: (weight, bias, depthwise)."""
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


class Conv(torch.nn.Module):
    """A folded convolution with Keras' padding. 'Same' at stride 1 is the
    conv's padding=1. Keras' stride-2 padding is asymmetric (nothing before,
    one after), which PyTorch's conv cannot say; a ZeroPad2d before the conv
    would do it, but costs the jit mode a layout conversion and a copy per
    stride-2 layer (a third of its speed). Instead the 3x3 kernel becomes a
    4x4 one with a zero first row and column at padding=1: output row y then
    reads input rows 2y-1 (times 0) to 2y+2, the last one the padding, the
    same sums as Keras' for 16/9 of the multiply-adds of five small layers."""

    def __init__(self, weight, bias, dw, stride, act):
        super().__init__()
        k = weight.shape[-1]
        if k == 3 and stride == 2:
            weight, k = F.pad(weight, (1, 0, 1, 0)), 4
        self.conv = torch.nn.Conv2d(weight.shape[1] * (weight.shape[0] if dw else 1),
                                    weight.shape[0], k, stride=stride,
                                    padding=1 if k > 1 else 0,
                                    groups=weight.shape[0] if dw else 1)
        self.conv.weight.data.copy_(weight)
        self.conv.bias.data.copy_(bias)
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        return F.hardtanh(x, 0.0, 6.0) if self.act else x


class Block(torch.nn.Module):
    def __init__(self, c, p, t, stride, residual):
        super().__init__()
        layers = [Conv(*c[p + "_expand"], 1, True)] if t != 1 else []
        layers += [Conv(*c[p + "_depthwise"], stride, True), Conv(*c[p + "_project"], 1, False)]
        self.body = torch.nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        layers = [Conv(*c["Conv1"], 2, True)]
        b, cin = 0, 32
        for t, ch, n, s in ref.SPEC:
            for r in range(n):
                p = "expanded_conv" if b == 0 else f"block_{b}"
                stride = s if r == 0 else 1
                layers.append(Block(c, p, t, stride, stride == 1 and cin == ch))
                cin, b = ch, b + 1
        layers.append(Conv(*c["Conv_1"], 1, True))
        self.features = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


def build(mode, c, example):
    net = MobileNetV2(c).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if mode == "eager":
        return net, lambda x: x
    net = net.to(memory_format=torch.channels_last)
    to_cl = lambda x: x.contiguous(memory_format=torch.channels_last)  # noqa: E731
    if mode == "cl":
        return net, to_cl
    with torch.no_grad():
        traced = torch.jit.trace(net, to_cl(example))
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    return frozen, to_cl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("work")
    ap.add_argument("n", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--modes", default="eager,cl,jit")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = fold(ref.load(a.model))
    x = np.fromfile(os.path.join(a.work, "cnn_in.f32"), dtype="<f4").reshape(a.n, 224, 224, 3)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    pv = np.fromfile(os.path.join(a.work, "cnn_out.f32"), dtype="<f4").reshape(a.n, -1)
    batches = [int(b) for b in a.batches.split(",")]
    modes = a.modes.split(",")
    malloc = "tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "default"
    print(f"## PyTorch {torch.__version__}, {a.threads} threads "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), malloc {malloc}\n")
    print("| mode | batch | images/s | worst cosine to pixvec |\n|---|---|---|---|")
    kv = []
    for mode in modes:
        for bs in batches:
            with torch.no_grad():
                net, prep = build(mode, c, x[:bs])
                chunks = [prep(x[b:b + bs]) for b in range(0, a.n, bs)]
                ys = [net(ch) for ch in chunks]  # warm-up (and jit profiling)
                ts = []
                for _ in range(a.reps):
                    t0 = time.perf_counter()
                    ys = [net(ch) for ch in chunks]
                    ts.append(time.perf_counter() - t0)
            y = torch.cat(ys).numpy()
            cos = (y * pv).sum(1) / np.linalg.norm(y, axis=1) / np.linalg.norm(pv, axis=1)
            ips = a.n / statistics.median(ts)
            print(f"| {mode} | {bs} | {ips:.1f} | {cos.min():.7f} |")
            kv.append(f"torch_{mode}_b{bs}={ips:.3f}\ntorch_{mode}_b{bs}_cos={cos.min():.7f}\n")
    if a.out:
        with open(a.out, "w") as f:
            f.write("".join(kv))


if __name__ == "__main__":
    main()
