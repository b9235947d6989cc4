#!/usr/bin/env python3
"""peer_torch_vit.py - PyTorch's side of the clip speed benchmark (issue 14):
CLIP ViT-B/32's image and text towers written from PyTorch operators
(F.conv2d for the patches, F.linear, F.layer_norm, softmax, QuickGELU, a
causal mask for text; q, k and v fused into one F.linear as torchvision's
nn.MultiheadAttention does), loading the same checkpoint directory as
pixvec (model.safetensors parsed by hand: 8-byte little-endian header
length, JSON, raw data), on the inputs bench_vit wrote. Each tower runs
eager and as torch.jit.trace + torch.jit.optimize_for_inference (the
fastest setting PyTorch 1.13 documents for CPU inference); images/s at
batch 1 and 32 and texts/s (token ids made by ref_clip_bpe.encode before
the clock starts), median of R; then the worst cosine to pixvec's vectors,
so both are known to run the same network.

The whole network is computed, as torchvision and Hugging Face do (pixvec's
last block computes only the class token's row past attention).

usage: peer_torch_vit.py CKPT WORK N --threads T --reps R [--bpe DIR] [--out FILE]
       [--only b1|b32|text]
  run with OMP_NUM_THREADS=T, OPENBLAS_NUM_THREADS=1 and glibc's malloc
  tuned (bench/run_vit.sh sets them).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def st_read(path):
    """Float tensors of a safetensors file, as float32 torch tensors."""
    with open(path, "rb") as fh:
        raw = fh.read()
    n = int.from_bytes(raw[:8], "little")
    head = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in head.items():
        if name == "__metadata__":
            continue
        dt = DTYPES.get(info["dtype"])
        if dt is None or dt[1] != "f":
            continue
        b, e = info["data_offsets"]
        a = np.frombuffer(raw, dtype=dt, count=(e - b) // np.dtype(dt).itemsize, offset=base + b)
        out[name] = torch.from_numpy(a.astype(np.float32).reshape(info["shape"]))
    return out


class Tower(torch.nn.Module):
    """The pre-LayerNorm blocks of one CLIP tower, weights as buffers."""

    def __init__(self, w, prefix, layers, heads, eps):
        super().__init__()
        self.heads, self.eps, self.layers = heads, eps, layers
        for i in range(layers):
            p = "%s.encoder.layers.%d." % (prefix, i)
            a = p + "self_attn."
            self.register_buffer("qkv_w%d" % i, torch.cat(
                [w[a + k + "_proj.weight"] for k in "qkv"]).contiguous())
            self.register_buffer("qkv_b%d" % i, torch.cat([w[a + k + "_proj.bias"] for k in "qkv"]))
            for k, name in (("o_w", "out_proj.weight"), ("o_b", "out_proj.bias")):
                self.register_buffer(k + str(i), w[a + name])
            for k, name in (("ln1_w", "layer_norm1.weight"), ("ln1_b", "layer_norm1.bias"),
                            ("ln2_w", "layer_norm2.weight"), ("ln2_b", "layer_norm2.bias"),
                            ("fc1_w", "mlp.fc1.weight"), ("fc1_b", "mlp.fc1.bias"),
                            ("fc2_w", "mlp.fc2.weight"), ("fc2_b", "mlp.fc2.bias")):
                self.register_buffer(k + str(i), w[p + name])

    def g(self, k, i):
        return getattr(self, k + str(i))

    def blocks(self, x, mask=None):
        b, t, d = x.shape
        hd = d // self.heads
        scale = 1.0 / math.sqrt(hd)
        for i in range(self.layers):
            h = F.layer_norm(x, (d,), self.g("ln1_w", i), self.g("ln1_b", i), self.eps)
            qkv = F.linear(h, self.g("qkv_w", i), self.g("qkv_b", i))
            qkv = qkv.reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = torch.matmul(q * scale, k.transpose(-1, -2))
            if mask is not None:
                s = s + mask
            o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(b, t, d)
            x = x + F.linear(o, self.g("o_w", i), self.g("o_b", i))
            h = F.layer_norm(x, (d,), self.g("ln2_w", i), self.g("ln2_b", i), self.eps)
            h = F.linear(h, self.g("fc1_w", i), self.g("fc1_b", i))
            h = h * torch.sigmoid(1.702 * h)  # QuickGELU
            x = x + F.linear(h, self.g("fc2_w", i), self.g("fc2_b", i))
        return x


class Vision(Tower):
    def __init__(self, w, cfg):
        v = cfg["vision_config"]
        super().__init__(w, "vision_model", v["num_hidden_layers"], v["num_attention_heads"],
                         v.get("layer_norm_eps", 1e-5))
        self.patch = v["patch_size"]
        e = "vision_model.embeddings."
        self.register_buffer("patch_w", w[e + "patch_embedding.weight"])
        self.register_buffer("cls", w[e + "class_embedding"])
        self.register_buffer("pos", w[e + "position_embedding.weight"])
        for k, name in (("pre_w", "vision_model.pre_layrnorm.weight"),
                        ("pre_b", "vision_model.pre_layrnorm.bias"),
                        ("post_w", "vision_model.post_layernorm.weight"),
                        ("post_b", "vision_model.post_layernorm.bias"),
                        ("proj", "visual_projection.weight")):
            self.register_buffer(k, w[name])

    def forward(self, x):  # x [B, 3, 224, 224], normalised
        x = F.conv2d(x, self.patch_w, stride=self.patch).flatten(2).transpose(1, 2)
        b, _, d = x.shape
        x = torch.cat([self.cls.expand(b, 1, d), x], dim=1) + self.pos
        x = F.layer_norm(x, (d,), self.pre_w, self.pre_b, self.eps)
        x = self.blocks(x)
        y = F.layer_norm(x[:, 0], (d,), self.post_w, self.post_b, self.eps)
        return F.linear(y, self.proj)


class Text(Tower):
    def __init__(self, w, cfg):
        t = cfg["text_config"]
        super().__init__(w, "text_model", t["num_hidden_layers"], t["num_attention_heads"],
                         t.get("layer_norm_eps", 1e-5))
        e = "text_model.embeddings."
        self.register_buffer("tok", w[e + "token_embedding.weight"])
        self.register_buffer("pos", w[e + "position_embedding.weight"])
        self.register_buffer("fin_w", w["text_model.final_layer_norm.weight"])
        self.register_buffer("fin_b", w["text_model.final_layer_norm.bias"])
        self.register_buffer("proj", w["text_projection.weight"])

    def forward(self, ids):  # ids [1, n]: one text, no padding (as pixvec)
        n = ids.shape[1]
        x = F.embedding(ids, self.tok) + self.pos[:n]
        mask = torch.full((n, n), float("-inf")).triu(1)
        x = self.blocks(x, mask)
        d = x.shape[-1]
        y = F.layer_norm(x[:, -1], (d,), self.fin_w, self.fin_b, self.eps)
        return F.linear(y, self.proj)


def optimized(m, example):
    with torch.no_grad():
        tr = torch.jit.trace(m.eval(), example, check_trace=False)
        return torch.jit.optimize_for_inference(tr)


def timed(fn, reps):
    """Median wall time of reps runs, the mean CPU time of one (all
    threads: time.process_time), and the last run's result."""
    ts = []
    c0 = time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), (time.process_time() - c0) / reps, out


def cos_min(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("work")
    ap.add_argument("n", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bpe", help="folder of ref_clip_bpe.py (default: ../tests)")
    ap.add_argument("--only", choices=["b1", "b32", "text"])
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, a.bpe or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import ref_clip_bpe  # noqa: E402

    with open(os.path.join(a.ckpt, "config.json")) as fh:
        cfg = json.load(fh)
    w = st_read(os.path.join(a.ckpt, "model.safetensors"))
    vis, txt = Vision(w, cfg).eval(), Text(w, cfg).eval()
    del w
    side = cfg["vision_config"]["image_size"]
    u8 = np.fromfile(os.path.join(a.work, "vit_in.u8"), dtype=np.uint8).reshape(a.n, side, side, 3)
    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255.0
    x = ((x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)).contiguous()

    res, lines = {}, []
    with torch.no_grad():
        for batch in (1, 32):
            key = "b%d" % batch
            if a.only and a.only != key:
                continue
            bs = min(batch, a.n)
            jit = optimized(vis, x[:bs])
            for name, m in (("jit", jit), ("eager", vis)):
                for _ in range(2):  # warm up (the optimised graph settles on its 2nd run)
                    m(x[:bs])
                t, cpu, ys = timed(lambda: [m(x[b:b + batch]) for b in range(0, a.n, batch)], a.reps)
                y = torch.cat(ys).numpy()
                pv = os.path.join(a.work, "vit_%s.f32" % ("b1" if batch == 1 else "b32"))
                c = cos_min(y, np.fromfile(pv, dtype="<f4").reshape(a.n, -1)) if os.path.exists(pv) else float("nan")
                res["%s_%s_rate" % (key, name)] = a.n / t
                res["%s_%s_cos" % (key, name)] = c
                res["%s_%s_cpu" % (key, name)] = cpu
                lines.append("| images, batch %d, %s | %.2f images/s | %.2f | %.7f |" % (batch, name, a.n / t, cpu, c))
        if not a.only or a.only == "text":
            texts = open(os.path.join(a.work, "vit_texts.txt"), encoding="utf-8").read().splitlines()
            vocab, merges = (os.path.join(a.ckpt, f) for f in ("vocab.json", "merges.txt"))
            ids = [torch.tensor([list(ref_clip_bpe.encode(s, vocab, merges, max_len=77))]) for s in texts]
            ntok = [int(i.shape[1]) for i in ids]
            jit = optimized(txt, ids[max(range(len(ids)), key=lambda i: ntok[i])])
            pv = np.fromfile(os.path.join(a.work, "vit_text.f32"), dtype="<f4").reshape(len(texts), -1)
            for name, m in (("jit", jit), ("eager", txt)):
                for _ in range(2):
                    for i in ids:
                        m(i)
                t, cpu, ys = timed(lambda: [m(i) for i in ids], a.reps)
                c = cos_min(torch.cat(ys).numpy(), pv)
                res["text_%s_rate" % name] = len(ids) / t
                res["text_%s_cos" % name] = c
                res["text_%s_cpu" % name] = cpu
                lines.append("| texts, one per call, %s | %.2f texts/s | %.2f | %.7f |" % (name, len(ids) / t, cpu, c))
            res["text_tokens_mean"] = statistics.mean(ntok)
            res["text_tokens_min"], res["text_tokens_max"] = min(ntok), max(ntok)
    print("## PyTorch %s (same CLIP towers from torch operators, %d threads, OMP_NUM_THREADS=%s, "
          "OPENBLAS_NUM_THREADS=%s)\n" % (torch.__version__, a.threads, os.environ.get("OMP_NUM_THREADS", "unset"),
                                          os.environ.get("OPENBLAS_NUM_THREADS", "unset")))
    print("| measure | rate | CPU s per rep (all threads) | worst cosine to pixvec |\n|---|---|---|---|")
    print("\n".join(lines))
    if "text_tokens_mean" in res:
        print("\ntext tokens per query: %d to %d, mean %.1f" % (res["text_tokens_min"], res["text_tokens_max"],
                                                            res["text_tokens_mean"]))
    if a.out:
        with open(a.out, "w") as fh:
            for k, v in res.items():
                fh.write("%s=%s\n" % (k, v))


if __name__ == "__main__":
    main()
