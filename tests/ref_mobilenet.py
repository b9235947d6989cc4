#!/usr/bin/env python3
"""ref_mobilenet.py - a reference MobileNetV2 forward pass written with
PyTorch operators, for checking pixvec's C forward pass (engine/embed/cnn.c).

It shares nothing with the C code but the weight file: it reads the
safetensors file itself, keeps batch norm as a separate operation (the C
code folds it into the convolutions), and pads with F.pad the way Keras'
ZeroPadding2D does before each stride-2 convolution (nothing before, one
after) and 'same' (one each side) at stride 1.

usage: ref_mobilenet.py MODEL.safetensors IN.f32 N OUT.f32
  IN.f32: N images, 224 x 224 x 3 float32, NHWC, already preprocessed
  OUT.f32: N x 1280 float32 features (global average pool)
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-3  # Keras MobileNetV2's BatchNormalization epsilon
SPEC = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"]).copy())
    return out


def bn(w, x, name):
    return F.batch_norm(x, w[name + "/moving_mean"], w[name + "/moving_variance"],
                        w[name + "/gamma"], w[name + "/beta"], training=False, eps=EPS)


def conv(w, x, kernel, stride=1, depthwise=False):
    k = w[kernel]  # Keras HWIO; depthwise [kh, kw, c, 1]
    if depthwise:
        weight = k.permute(2, 3, 0, 1)  # [c, 1, kh, kw]
        groups = weight.shape[0]
    else:
        weight = k.permute(3, 2, 0, 1)  # [out, in, kh, kw]
        groups = 1
    if weight.shape[-1] == 3:
        x = F.pad(x, (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))
    return F.conv2d(x, weight, stride=stride, groups=groups)


def relu6(x):
    return torch.clamp(x, 0.0, 6.0)


def forward(w, x):
    x = relu6(bn(w, conv(w, x, "Conv1/kernel", 2), "bn_Conv1"))
    b, cin = 0, 32
    for t, c, n, s in SPEC:
        for r in range(n):
            p = "expanded_conv" if b == 0 else f"block_{b}"
            stride = s if r == 0 else 1
            y = x
            if t != 1:
                y = relu6(bn(w, conv(w, y, p + "_expand/kernel"), p + "_expand_BN"))
            y = relu6(bn(w, conv(w, y, p + "_depthwise/depthwise_kernel", stride, True),
                         p + "_depthwise_BN"))
            y = bn(w, conv(w, y, p + "_project/kernel"), p + "_project_BN")
            if stride == 1 and cin == c:
                y = y + x
            x, cin, b = y, c, b + 1
    x = relu6(bn(w, conv(w, x, "Conv_1/kernel"), "Conv_1_bn"))
    return x.mean(dim=(2, 3))


def main():
    model, inp, n, outp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(1)
    w = load(model)
    x = np.fromfile(inp, dtype="<f4").reshape(n, 224, 224, 3)
    with torch.no_grad():
        y = forward(w, torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    y.numpy().astype("<f4").tofile(outp)


if __name__ == "__main__":
    main()
