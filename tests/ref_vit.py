#!/usr/bin/env python3
"""ref_vit.py - tiny random Hugging Face checkpoints of CLIP, DINOv2 and
ViT-MAE, and reference embeddings computed from them with PyTorch operators,
for checking pixvec's C transformers (issue 14; docs/research/
issue14-transformers.md gives the layouts this follows).

No `transformers` or `safetensors` package is used (Debian 12 has neither):
the checkpoint files are written by hand in the hub's layout, and the
reference reads them back from disk, so it shares nothing with the generator
but the files, and nothing with the C code but the files and the recipe.
The forward pass runs in float64 (weights converted, F16 ones included) to
take the reference's own rounding out of a cosine >= 0.9999 comparison.

usage (run with /usr/bin/python3: torch 1.13, numpy, PIL 9.4):
  ref_vit.py gen FAMILY DIR [--f16] [--seed N] [--full]
      FAMILY clip|dinov2|vitmae. Writes DIR/config.json, DIR/model.safetensors
      and, for clip, DIR/vocab.json + DIR/merges.txt (ref_clip_bpe's tiny
      vocabulary). --f16 stores every float tensor as F16. --full (clip):
      ViT-B/32 shapes with random weights, for benchmarks.
  ref_vit.py image DIR OUT.f32 [--pool cls|sum] [--f32] IMG...
      Reference vectors of the images (float32, n x dim, L2-normalised),
      preprocessed with PIL as HF's image processors do. --pool sum: vitmae
      only, the sum over all tokens. --f32 runs the forward in float32 (for
      checking the reference itself). Prints the largest cosine between two
      of the images to stderr.
  ref_vit.py text DIR OUT.f32 [--f32] < texts.jsonl
      Reference CLIP text vectors, one per input line (a JSON string, or an
      object with a "text" member), float32 n x projection_dim.
  ref_vit.py selftest
      Checks the reference itself on generated checkpoints (see selftest()).

Exit status 0, or non-zero with a message on stderr.
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

BICUBIC = getattr(Image, "Resampling", Image).BICUBIC
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_RESIZE, DINO_CROP = 256, 224  # facebook/dinov2-* preprocessor_config.json

# ---- safetensors ------------------------------------------------------------

ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"),
             "F64": np.dtype("<f8"), "I32": np.dtype("<i4")}


def st_code(dtype):
    for k, v in ST_DTYPES.items():
        if v == np.dtype(dtype).newbyteorder("<"):
            return k
    raise ValueError("no safetensors code for %s" % dtype)


def st_write(path, tensors):
    """Write {name: ndarray} as the safetensors library does: 8-byte LE
    header length; compact JSON header with __metadata__ first, padded with
    spaces to a multiple of 8; data in offset order. Tensors are ordered by
    element size descending (I64, F32, F16), then by name, so every tensor
    starts at a multiple of its own element size."""
    names = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for n in names:
        a = tensors[n]
        header[n] = {"dtype": st_code(a.dtype), "shape": list(a.shape),
                     "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            a = tensors[n]
            f.write(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())


def st_read(path):
    """{name: ndarray} of a safetensors file (native dtypes)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=ST_DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


# ---- random checkpoints -------------------------------------------------------

class Gen:
    """Random tensors at scales like a trained network's: linear weights
    N(0, (1.5^2)/fan_in) (query and key 2^2/fan_in, for attention sharper
    than uniform), small biases, LayerNorm gains 1 +- 0.1, position tables
    as large as the patch embeddings. The gains make the embedding
    sensitive enough that the likely porting mistakes fall below the
    tests' 0.9999 cosine (selftest measures this), while different images
    stay far apart."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.t = {}

    def normal(self, name, shape, std, mean=0.0):
        self.t[name] = (mean + std * self.rng.standard_normal(shape)).astype(np.float32)

    def uniform(self, name, shape, lo, hi):
        self.t[name] = self.rng.uniform(lo, hi, shape).astype(np.float32)

    def linear(self, name, out, inp, bias=True):
        qk = name.endswith(("query", "key", "q_proj", "k_proj"))
        self.normal(name + ".weight", (out, inp), (2.0 if qk else 1.5) / math.sqrt(inp))
        if bias:
            self.normal(name + ".bias", (out,), 0.05)

    def layernorm(self, name, d):
        self.uniform(name + ".weight", (d,), 0.9, 1.1)
        self.normal(name + ".bias", (d,), 0.05)

    def patch(self, name, d, p, bias):
        self.normal(name + ".weight", (d, 3, p, p), 1.0 / math.sqrt(3 * p * p))
        if bias:
            self.normal(name + ".bias", (d,), 0.05)


def gen_clip_tower(g, pre, d, f, layers):
    for i in range(layers):
        p = "%s.encoder.layers.%d." % (pre, i)
        for q in ("q_proj", "k_proj", "v_proj", "out_proj"):
            g.linear(p + "self_attn." + q, d, d)
        g.layernorm(p + "layer_norm1", d)
        g.layernorm(p + "layer_norm2", d)
        g.linear(p + "mlp.fc1", f, d)
        g.linear(p + "mlp.fc2", d, f)


def gen_clip(out_dir, g, full):
    ref_clip_bpe = import_bpe()
    ref_clip_bpe.make_tiny_vocab(out_dir, n_merges=300, seed=int(g.rng.integers(1 << 30)))
    with open(os.path.join(out_dir, "vocab.json"), encoding="utf-8") as fh:
        vocab = json.load(fh)
    nvocab = max(vocab.values()) + 1
    if full:
        tv = dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=12)
        vv = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                  patch_size=32, image_size=224)
        proj = 512
    else:
        tv = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2)
        vv = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
                  patch_size=8, image_size=32)
        proj = 16
    npos = 77
    # as in openai/clip-vit-base-patch32's config.json: full dumps of both
    # sub-configs (legacy bos 0 / eos 2 ids included), *_config_dict null
    text_config = dict(tv, attention_dropout=0.0, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                       hidden_act="quick_gelu", initializer_factor=1.0, initializer_range=0.02,
                       layer_norm_eps=1e-05, max_position_embeddings=npos, model_type="clip_text_model",
                       projection_dim=proj, vocab_size=nvocab)
    vision_config = dict(vv, attention_dropout=0.0, hidden_act="quick_gelu", initializer_factor=1.0,
                         initializer_range=0.02, layer_norm_eps=1e-05, model_type="clip_vision_model",
                         num_channels=3, projection_dim=proj)
    config = {"_name_or_path": "pixvec-tiny-clip", "architectures": ["CLIPModel"],
              "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip",
              "projection_dim": proj, "text_config": text_config, "text_config_dict": None,
              "torch_dtype": "float32", "transformers_version": None,
              "vision_config": vision_config, "vision_config_dict": None}
    dt, dv = tv["hidden_size"], vv["hidden_size"]
    p, grid = vv["patch_size"], vv["image_size"] // vv["patch_size"]
    g.normal("text_model.embeddings.token_embedding.weight", (nvocab, dt), 0.5)
    g.normal("text_model.embeddings.position_embedding.weight", (npos, dt), 0.3)
    g.t["text_model.embeddings.position_ids"] = np.arange(npos, dtype=np.int64)[None]
    gen_clip_tower(g, "text_model", dt, tv["intermediate_size"], tv["num_hidden_layers"])
    g.layernorm("text_model.final_layer_norm", dt)
    g.normal("vision_model.embeddings.class_embedding", (dv,), 0.1)
    g.patch("vision_model.embeddings.patch_embedding", dv, p, bias=False)
    g.normal("vision_model.embeddings.position_embedding.weight", (1 + grid * grid, dv), 1.0)
    g.t["vision_model.embeddings.position_ids"] = np.arange(1 + grid * grid, dtype=np.int64)[None]
    g.layernorm("vision_model.pre_layrnorm", dv)
    gen_clip_tower(g, "vision_model", dv, vv["intermediate_size"], vv["num_hidden_layers"])
    g.layernorm("vision_model.post_layernorm", dv)
    g.linear("visual_projection", proj, dv, bias=False)
    g.linear("text_projection", proj, dt, bias=False)
    g.t["logit_scale"] = np.array(math.log(100.0), dtype=np.float32)  # rank 0
    return config


def gen_vit_layers(g, pre, d, f, layers, dino):
    """HF ViT-style layers (Dinov2Layer / ViTMAELayer names)."""
    for i in range(layers):
        p = "%sencoder.layer.%d." % (pre, i)
        for q in ("query", "key", "value"):
            g.linear(p + "attention.attention." + q, d, d)
        g.linear(p + "attention.output.dense", d, d)
        if dino:
            g.layernorm(p + "norm1", d)
            g.layernorm(p + "norm2", d)
            g.uniform(p + "layer_scale1.lambda1", (d,), 0.1, 1.0)
            g.uniform(p + "layer_scale2.lambda1", (d,), 0.1, 1.0)
            g.linear(p + "mlp.fc1", f, d)
            g.linear(p + "mlp.fc2", d, f)
        else:
            g.layernorm(p + "layernorm_before", d)
            g.layernorm(p + "layernorm_after", d)
            g.linear(p + "intermediate.dense", f, d)
            g.linear(p + "output.dense", d, f)


def gen_dinov2(g):
    d, heads, layers, ratio, p, size = 32, 4, 2, 2, 14, 70
    f = int(d * ratio)  # HF Dinov2MLP: int(hidden_size * mlp_ratio)
    grid = size // p  # 5: pixvec must interpolate it to the 16 x 16 of a 224 crop
    config = {"architectures": ["Dinov2Model"], "attention_probs_dropout_prob": 0.0,
              "drop_path_rate": 0.0, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
              "hidden_size": d, "image_size": size, "initializer_range": 0.02,
              "layer_norm_eps": 1e-06, "layerscale_value": 1.0, "mlp_ratio": ratio,
              "model_type": "dinov2", "num_attention_heads": heads, "num_channels": 3,
              "num_hidden_layers": layers, "patch_size": p, "qkv_bias": True,
              "torch_dtype": "float32", "transformers_version": "4.47.0", "use_swiglu_ffn": False}
    g.normal("embeddings.cls_token", (1, 1, d), 0.1)
    g.normal("embeddings.mask_token", (1, d), 0.5)
    g.normal("embeddings.position_embeddings", (1, 1 + grid * grid, d), 1.0)
    g.patch("embeddings.patch_embeddings.projection", d, p, bias=True)
    gen_vit_layers(g, "", d, f, layers, dino=True)
    g.layernorm("layernorm", d)
    return config


def gen_vitmae(g):
    d, f, heads, layers, p, size = 32, 64, 4, 2, 8, 32
    dd, grid = 16, size // p
    config = {"architectures": ["ViTMAEForPreTraining"], "attention_probs_dropout_prob": 0.0,
              "decoder_hidden_size": dd, "decoder_intermediate_size": 2 * dd,
              "decoder_num_attention_heads": 2, "decoder_num_hidden_layers": 1,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "hidden_size": d,
              "image_size": size, "initializer_range": 0.02, "intermediate_size": f,
              "layer_norm_eps": 1e-12, "mask_ratio": 0.75, "model_type": "vit_mae",
              "norm_pix_loss": False, "num_attention_heads": heads, "num_channels": 3,
              "num_hidden_layers": layers, "patch_size": p, "qkv_bias": True,
              "torch_dtype": "float32", "transformers_version": "4.47.0"}
    g.normal("vit.embeddings.cls_token", (1, 1, d), 0.1)
    # real checkpoints hold a fixed sin-cos table here; random values make
    # sure the C code reads the file instead of recomputing it
    g.normal("vit.embeddings.position_embeddings", (1, 1 + grid * grid, d), 1.0)
    g.patch("vit.embeddings.patch_embeddings.projection", d, p, bias=True)
    gen_vit_layers(g, "vit.", d, f, layers, dino=False)
    g.layernorm("vit.layernorm", d)
    # the pre-training decoder: present in ViTMAEForPreTraining files, unused
    g.linear("decoder.decoder_embed", dd, d)
    g.normal("decoder.mask_token", (1, 1, dd), 0.02)
    g.normal("decoder.decoder_pos_embed", (1, 1 + grid * grid, dd), 0.3)
    g.linear("decoder.decoder_layers.0.attention.attention.query", dd, dd)
    g.layernorm("decoder.decoder_layers.0.layernorm_before", dd)
    g.layernorm("decoder.decoder_norm", dd)
    g.linear("decoder.decoder_pred", p * p * 3, dd)
    return config


def cmd_gen(a):
    os.makedirs(a.dir, exist_ok=True)
    g = Gen(a.seed)
    if a.family == "clip":
        config = gen_clip(a.dir, g, a.full)
    elif a.full:
        sys.exit("ref_vit.py: --full is for clip only")
    elif a.family == "dinov2":
        config = gen_dinov2(g)
    else:
        config = gen_vitmae(g)
    t = g.t
    if a.f16:
        t = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in t.items()}
    with open(os.path.join(a.dir, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")
    st_write(os.path.join(a.dir, "model.safetensors"), t)


# ---- reading a checkpoint back ------------------------------------------------

class Model:
    """A checkpoint directory read back: family, config and float tensors
    (as dtype, float64 by default)."""

    def __init__(self, d, dtype=torch.float64):
        self.dir = d
        with open(os.path.join(d, "config.json")) as fh:
            self.cfg = json.load(fh)
        mt = self.cfg.get("model_type")
        self.family = {"clip": "clip", "dinov2": "dinov2", "vit_mae": "vitmae"}.get(mt)
        if self.family is None:
            sys.exit("ref_vit.py: %s: model_type %r is not clip, dinov2 or vit_mae" % (d, mt))
        if self.family == "clip":  # HF: a non-null *_config_dict overrides *_config
            for k in ("text", "vision"):
                c = dict(self.cfg.get(k + "_config") or {})
                c.update(self.cfg.get(k + "_config_dict") or {})
                self.cfg[k + "_config"] = c
        self.dtype = dtype
        raw = st_read(os.path.join(d, "model.safetensors"))
        self.t = {k: torch.from_numpy(v.astype(np.float64)).to(dtype)
                  for k, v in raw.items() if v.dtype.kind == "f"}

    def __getitem__(self, k):
        return self.t[k]


def activation(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu  # exact erf form
    sys.exit("ref_vit.py: hidden_act %r is not supported" % name)


def attention(x, m, names, heads, mask):
    b, n, d = x.shape
    hd = d // heads

    def proj(k):
        return F.linear(x, m[names[k] + ".weight"], m[names[k] + ".bias"])

    q, k, v = (proj(k).reshape(b, n, heads, hd).transpose(1, 2) for k in ("q", "k", "v"))
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
    if mask is not None:
        s = s + mask
    o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(b, n, d)
    return F.linear(o, m[names["o"] + ".weight"], m[names["o"] + ".bias"])


def layer_names(family, prefix, i):
    if family == "clip":
        p = "%s.encoder.layers.%d." % (prefix, i)
        return {"ln1": p + "layer_norm1", "ln2": p + "layer_norm2", "q": p + "self_attn.q_proj",
                "k": p + "self_attn.k_proj", "v": p + "self_attn.v_proj",
                "o": p + "self_attn.out_proj", "fc1": p + "mlp.fc1", "fc2": p + "mlp.fc2"}
    p = "%sencoder.layer.%d." % (prefix, i)
    n = {"q": p + "attention.attention.query", "k": p + "attention.attention.key",
         "v": p + "attention.attention.value", "o": p + "attention.output.dense"}
    if family == "dinov2":
        n.update(ln1=p + "norm1", ln2=p + "norm2", fc1=p + "mlp.fc1", fc2=p + "mlp.fc2",
                 ls1=p + "layer_scale1.lambda1", ls2=p + "layer_scale2.lambda1")
    else:
        n.update(ln1=p + "layernorm_before", ln2=p + "layernorm_after",
                 fc1=p + "intermediate.dense", fc2=p + "output.dense")
    return n


def encoder(x, m, family, prefix, layers, heads, eps, act, mask=None):
    """Pre-LN blocks: x += [ls1 *] attn(LN1 x); x += [ls2 *] fc2(act(fc1(LN2 x)))."""
    d = x.shape[-1]
    if d % heads:
        sys.exit("ref_vit.py: hidden size %d is not a multiple of %d heads" % (d, heads))
    for i in range(layers):
        n = layer_names(family, prefix, i)
        h = F.layer_norm(x, (d,), m[n["ln1"] + ".weight"], m[n["ln1"] + ".bias"], eps)
        a = attention(h, m, n, heads, mask)
        x = x + (m[n["ls1"]] * a if "ls1" in n else a)
        h = F.layer_norm(x, (d,), m[n["ln2"] + ".weight"], m[n["ln2"] + ".bias"], eps)
        h = F.linear(h, m[n["fc1"] + ".weight"], m[n["fc1"] + ".bias"])
        h = F.linear(act(h), m[n["fc2"] + ".weight"], m[n["fc2"] + ".bias"])
        x = x + (m[n["ls2"]] * h if "ls2" in n else h)
    return x


# ---- images -------------------------------------------------------------------

def resize_shortest(im, s):
    """HF get_resize_output_image_size(default_to_square=False) + PIL BICUBIC."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    if short == s:
        return im
    nl = int(s * long / short)
    return im.resize((s, nl) if w <= h else (nl, s), BICUBIC)


def center_crop(im, s):
    """HF image_transforms.center_crop: top = (H - s) // 2, left = (W - s) // 2."""
    w, h = im.size
    top, left = (h - s) // 2, (w - s) // 2
    return im.crop((left, top, left + s, top + s))


def to_tensor(im, mean, std, dtype):
    x = torch.from_numpy(np.asarray(im, dtype=np.float64) / 255.0)  # H W 3
    x = (x - torch.tensor(mean, dtype=torch.float64)) / torch.tensor(std, dtype=torch.float64)
    return x.permute(2, 0, 1).to(dtype)


def preprocess(m, path):
    im = Image.open(path).convert("RGB")
    if m.family == "clip":
        s = m.cfg["vision_config"].get("image_size", 224)
        return to_tensor(center_crop(resize_shortest(im, s), s), CLIP_MEAN, CLIP_STD, m.dtype)
    if m.family == "dinov2":
        im = center_crop(resize_shortest(im, DINO_RESIZE), DINO_CROP)
        return to_tensor(im, IMAGENET_MEAN, IMAGENET_STD, m.dtype)
    s = m.cfg.get("image_size", 224)  # ViTImageProcessor: squash to s x s
    return to_tensor(im.resize((s, s), BICUBIC), IMAGENET_MEAN, IMAGENET_STD, m.dtype)


def patchify(x, w, b, p):
    """Conv2d with kernel = stride = p, then [B, tokens, D] in raster order."""
    return F.conv2d(x, w, b, stride=p).flatten(2).transpose(1, 2)


def dinov2_positions(m, grid):
    """Current HF Dinov2Embeddings.interpolate_pos_encoding: the stored
    square grid resized to grid x grid with F.interpolate(size=..., bicubic,
    align_corners=False) (not the older scale_factor + 0.1 form); the class
    position unchanged."""
    pos = m["embeddings.position_embeddings"]
    npos, d = pos.shape[1] - 1, pos.shape[2]
    g0 = int(round(math.sqrt(npos)))
    if g0 * g0 != npos:
        sys.exit("ref_vit.py: %d patch positions are not a square grid" % npos)
    if g0 == grid:
        return pos[0], g0
    pp = pos[:, 1:].reshape(1, g0, g0, d).permute(0, 3, 1, 2)
    pp = F.interpolate(pp, size=(grid, grid), mode="bicubic", align_corners=False)
    pp = pp.permute(0, 2, 3, 1).reshape(grid * grid, d)
    return torch.cat([pos[0, :1], pp], dim=0), g0


def embed_images(m, paths, pool="cls"):
    """L2-normalised vectors [n, dim] (m.dtype) of the image files."""
    x = torch.stack([preprocess(m, p) for p in paths])
    c = m.cfg
    if m.family == "clip":
        v = c["vision_config"]
        vp = "vision_model.embeddings."
        h = patchify(x, m[vp + "patch_embedding.weight"], None, v["patch_size"])
        cls = m[vp + "class_embedding"].expand(h.shape[0], 1, -1)
        h = torch.cat([cls, h], dim=1) + m[vp + "position_embedding.weight"]
        d, eps = h.shape[-1], v.get("layer_norm_eps", 1e-5)
        h = F.layer_norm(h, (d,), m["vision_model.pre_layrnorm.weight"],
                         m["vision_model.pre_layrnorm.bias"], eps)
        h = encoder(h, m, "clip", "vision_model", v["num_hidden_layers"], v["num_attention_heads"],
                    eps, activation(v.get("hidden_act", "quick_gelu")))
        y = F.layer_norm(h[:, 0], (d,), m["vision_model.post_layernorm.weight"],
                         m["vision_model.post_layernorm.bias"], eps)
        y = F.linear(y, m["visual_projection.weight"])
    else:
        pre = "" if m.family == "dinov2" else "vit."
        ep = pre + "embeddings."
        p = c["patch_size"]
        h = patchify(x, m[ep + "patch_embeddings.projection.weight"],
                     m[ep + "patch_embeddings.projection.bias"], p)
        if m.family == "dinov2":
            pos, _ = dinov2_positions(m, x.shape[-1] // p)
        else:
            pos = m[ep + "position_embeddings"][0]
        # ViT-MAE without masking (mask_ratio 0, noise = arange): patches in
        # raster order, cls + pos[0] in front
        cls = m[ep + "cls_token"].expand(h.shape[0], 1, -1)
        h = torch.cat([cls + pos[:1], h + pos[1:]], dim=1)
        d, eps = h.shape[-1], c.get("layer_norm_eps", 1e-6 if m.family == "dinov2" else 1e-12)
        h = encoder(h, m, m.family, pre, c["num_hidden_layers"], c["num_attention_heads"], eps,
                    activation(c.get("hidden_act", "gelu")))
        h = F.layer_norm(h, (d,), m[pre + "layernorm.weight"], m[pre + "layernorm.bias"], eps)
        y = h.sum(dim=1) if pool == "sum" else h[:, 0]
    return F.normalize(y, dim=-1)


# ---- text ---------------------------------------------------------------------

def import_bpe():
    """tests/ref_clip_bpe.py, the tokenizer reference, imported only when a
    CLIP vocabulary or text is needed."""
    try:
        import ref_clip_bpe
    except ImportError as e:
        raise ImportError("tests/ref_clip_bpe.py (the CLIP tokenizer reference) cannot be "
                          "imported: %s" % e) from e
    return ref_clip_bpe


def token_ids(m, text):
    ref_clip_bpe = import_bpe()
    ids = ref_clip_bpe.encode(text, os.path.join(m.dir, "vocab.json"),
                              os.path.join(m.dir, "merges.txt"), max_len=77)
    return list(ids)


def embed_texts(m, texts):
    t = m.cfg["text_config"]
    d, eps = m["text_model.final_layer_norm.weight"].shape[0], t.get("layer_norm_eps", 1e-5)
    out = []
    for text in texts:
        ids = token_ids(m, text)
        n = len(ids)
        if n > m["text_model.embeddings.position_embedding.weight"].shape[0]:
            sys.exit("ref_vit.py: %d tokens, more than the positions" % n)
        h = (m["text_model.embeddings.token_embedding.weight"][torch.tensor(ids)]
             + m["text_model.embeddings.position_embedding.weight"][:n])[None]
        mask = torch.full((n, n), float("-inf"), dtype=m.dtype).triu(1)
        h = encoder(h, m, "clip", "text_model", t["num_hidden_layers"], t["num_attention_heads"],
                    eps, activation(t.get("hidden_act", "quick_gelu")), mask)
        h = F.layer_norm(h, (d,), m["text_model.final_layer_norm.weight"],
                         m["text_model.final_layer_norm.bias"], eps)
        y = F.linear(h[0, n - 1], m["text_projection.weight"])  # the end token's row
        out.append(F.normalize(y, dim=-1))
    return torch.stack(out)


def read_texts(f):
    texts = []
    for line in f:
        if not line.strip():
            continue
        v = json.loads(line)
        texts.append(v["text"] if isinstance(v, dict) else v)
    return texts


def max_pair_cosine(y):
    y = y.double()
    c = y @ y.T
    c.fill_diagonal_(-2)
    return c.max().item() if len(y) > 1 else float("nan")


def write_f32(path, y):
    with open(path, "wb") as f:
        f.write(y.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def cmd_image(a):
    m = Model(a.dir, torch.float32 if a.f32 else torch.float64)
    if a.pool == "sum" and m.family != "vitmae":
        sys.exit("ref_vit.py: --pool sum is for vitmae only")
    y = embed_images(m, a.images, a.pool)
    if m.family == "dinov2":
        g0 = dinov2_positions(m, DINO_CROP // m.cfg["patch_size"])[1]
        print("ref_vit.py: dinov2 positions interpolated from %dx%d to %dx%d" %
              (g0, g0, DINO_CROP // m.cfg["patch_size"], DINO_CROP // m.cfg["patch_size"]),
              file=sys.stderr)
    print("ref_vit.py: %s %d images, dim %d, largest cosine between two of them %.4f"
          % (m.family, len(y), y.shape[1], max_pair_cosine(y)), file=sys.stderr)
    write_f32(a.out, y)


def cmd_text(a):
    m = Model(a.dir, torch.float32 if a.f32 else torch.float64)
    if m.family != "clip":
        sys.exit("ref_vit.py: %s has no text tower" % m.family)
    texts = read_texts(sys.stdin)
    if not texts:
        sys.exit("ref_vit.py: no texts on standard input")
    y = embed_texts(m, texts)
    print("ref_vit.py: %d texts, largest cosine between two of them %.4f"
          % (len(y), max_pair_cosine(y)), file=sys.stderr)
    write_f32(a.out, y)


# ---- checking the reference itself -------------------------------------------

def smooth_image(path, w, h, seed):
    """Smooth random RGB content (low-frequency sinusoids), as the C test makes."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = r.uniform(0.5, 4), r.uniform(0.5, 4), r.uniform(0, 6.3)
            img[..., c] += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    Image.fromarray(img.round().astype(np.uint8)).save(path)


# Square and not; 70 x 33 is one where HF's centre crop (floor) and
# torchvision's (round half to even) start one pixel apart, for clip
# (67 x 32 -> 32) and dinov2 (543 x 256 -> 224) alike.
TEST_SIZES = [(40, 40), (70, 33), (300, 500), (257, 256)]


def cos_rows(a, b):
    return F.cosine_similarity(a.double(), b.double(), dim=-1)


def selftest():
    """On generated checkpoints: float64 vs float32 forward agree (cos >=
    0.99999), batch == one at a time, different images are told apart
    (cosine < 0.99), F16 files read back as the rounded F32 values, the
    DINOv2 interpolation path runs (grid 5 -> 16) and changes the table, the
    safetensors files are aligned and in the library's order, and the
    tokenizer (when importable) gives texts vectors that differ."""
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + msg)
        ok = ok and bool(cond)

    with tempfile.TemporaryDirectory() as tmp:
        imgs = []
        for i, (w, h) in enumerate(TEST_SIZES):
            imgs.append(os.path.join(tmp, "im%d.png" % i))
            smooth_image(imgs[-1], w, h, 100 + i)
        fams = [("clip", False), ("clip", True), ("dinov2", False), ("vitmae", False)]
        for fam, f16 in fams:
            d = os.path.join(tmp, fam + ("16" if f16 else ""))
            try:
                cmd_gen(argparse.Namespace(family=fam, dir=d, f16=f16, seed=7, full=False))
            except ImportError as e:
                check(False, "%s: gen needs ref_clip_bpe: %s" % (fam, e))
                continue
            raw = open(os.path.join(d, "model.safetensors"), "rb").read()
            n = struct.unpack("<Q", raw[:8])[0]
            hdr = json.loads(raw[8:8 + n])
            del hdr["__metadata__"]
            offs = sorted((v["data_offsets"][0], ST_DTYPES[v["dtype"]].itemsize) for v in hdr.values())
            check(n % 8 == 0 and all((8 + n + o) % sz == 0 for o, sz in offs)
                  and [sz for _, sz in offs] == sorted((sz for _, sz in offs), reverse=True),
                  "%s%s: header %d bytes, every tensor aligned to its element size, I64 first"
                  % (fam, " f16" if f16 else "", n))
            pools = ["cls", "sum"] if fam == "vitmae" else ["cls"]
            for pool in pools:
                m64, m32 = Model(d), Model(d, torch.float32)
                y64 = embed_images(m64, imgs, pool)
                y32 = embed_images(m32, imgs, pool)
                one = torch.cat([embed_images(m64, [p], pool) for p in imgs])
                tag = "%s%s %s" % (fam, " f16" if f16 else "", pool)
                check(cos_rows(y64, y32).min() >= 0.99999,
                      "%s: float64 vs float32: 1 - worst cosine = %.2g" % (tag, 1 - cos_rows(y64, y32).min()))
                check((y64 - one).abs().max() < 1e-12, "%s: batch of 4 == one at a time" % tag)
                check(max_pair_cosine(y64) < 0.99,
                      "%s: largest cosine between two images %.4f" % (tag, max_pair_cosine(y64)))
            if fam == "dinov2":
                m = Model(d)
                pos, g0 = dinov2_positions(m, 16)
                stored = m["embeddings.position_embeddings"][0]
                check(g0 == 5 and pos.shape[0] == 257 and torch.equal(pos[0], stored[0]),
                      "dinov2: stored grid %d -> 16x16 interpolated (257 rows), class row kept" % g0)
                # no interpolation: the nearest-neighbour table differs a lot
                near = F.interpolate(stored[1:].reshape(1, 5, 5, -1).permute(0, 3, 1, 2), size=(16, 16),
                                     mode="nearest").permute(0, 2, 3, 1).reshape(256, -1)
                check((near - pos[1:]).abs().max() > 0.05,
                      "dinov2: bicubic differs from nearest (%.3f)" % (near - pos[1:]).abs().max())
            if fam == "clip" and f16:
                r16 = st_read(os.path.join(d, "model.safetensors"))
                r32 = st_read(os.path.join(tmp, "clip", "model.safetensors"))
                same = all(np.array_equal(r16[k], r32[k].astype(np.float16)) for k in r32)
                check(same and r16["logit_scale"].shape == () and
                      r16["text_model.embeddings.position_ids"].dtype == np.int64,
                      "clip f16: every float tensor is the F32 one rounded; logit_scale rank 0; "
                      "position_ids I64")
            if fam == "clip":
                texts = ["a photo of a cat", "", "a diagram!!", "Café crème", "猫と犬", "🙂 ok",
                         " ".join(["word"] * 100)]
                try:
                    m64, m32 = Model(d), Model(d, torch.float32)
                    t64, t32 = embed_texts(m64, texts), embed_texts(m32, texts)
                    ids = token_ids(m64, texts[-1])
                    check(len(ids) == 77, "clip: a long text is cut to 77 ids (%d)" % len(ids))
                    check(cos_rows(t64, t32).min() >= 0.99999,
                          "clip text: float64 vs float32: 1 - worst cosine = %.2g" % (1 - cos_rows(t64, t32).min()))
                    check(max_pair_cosine(t64) < 0.99,
                          "clip text: largest cosine between two texts %.4f" % max_pair_cosine(t64))
                except ImportError as e:
                    check(False, "clip text needs ref_clip_bpe: %s" % e)
        # the >= 0.9999 bar catches the mistakes a C port is likely to make
        d = os.path.join(tmp, "clip")
        if os.path.exists(d):
            mistakes = mistakes_clip()
            base = embed_images(Model(d), imgs)
            for what, undo in mistakes:
                try:
                    worst = cos_rows(base, embed_images(Model(d), imgs)).min()
                finally:
                    undo()
                if what.startswith("note:"):
                    print("note %s: worst cosine %.6f" % (what[5:], worst))
                else:
                    check(worst < 0.9999, "clip: %s gives worst cosine %.6f < 0.9999" % (what, worst))
        d = os.path.join(tmp, "dinov2")
        if os.path.exists(d):
            base = embed_images(Model(d), imgs)
            for what, undo in mistakes_dinov2():
                try:
                    worst = cos_rows(base, embed_images(Model(d), imgs)).min()
                finally:
                    undo()
                check(worst < 0.9999, "dinov2: %s gives worst cosine %.6f < 0.9999" % (what, worst))
    return 0 if ok else 1


def patch_global(name, value):
    """Replace a module global; returns the function that puts it back."""
    g = globals()
    old = g[name]
    g[name] = value
    return lambda: g.__setitem__(name, old)


def mistakes_clip():
    """Generators of (description, undo) with one plausible mistake applied
    while the caller embeds."""
    crop = center_crop

    def tv_crop(im, s):  # torchvision's rounding instead of HF's floor
        w, h = im.size
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return im.crop((left, top, left + s, top + s))

    def shifted(im, s):
        w, h = im.size
        return crop(im, s) if w == h else im.crop((1, 1, s + 1, s + 1))

    yield "ImageNet mean instead of CLIP's", patch_global("CLIP_MEAN", IMAGENET_MEAN)
    yield "BILINEAR instead of BICUBIC", patch_global("BICUBIC", Image.BILINEAR)
    yield "torchvision's centre-crop rounding", patch_global("center_crop", tv_crop)
    yield "a crop one pixel off", patch_global("center_crop", shifted)
    # too close to quick_gelu for a 2-layer net to tell at 0.9999: reported only
    yield "note: gelu instead of quick_gelu", patch_global(
        "activation", lambda name, act=activation: act("gelu"))


def mistakes_dinov2():
    def old_form(m, grid):  # older HF / original dinov2: scale_factor (grid + 0.1) / g0
        pos = m["embeddings.position_embeddings"]
        g0, d = int(round(math.sqrt(pos.shape[1] - 1))), pos.shape[2]
        pp = pos[:, 1:].reshape(1, g0, g0, d).permute(0, 3, 1, 2)
        sf = (grid + 0.1) / g0
        pp = F.interpolate(pp, scale_factor=(sf, sf), mode="bicubic", align_corners=False)
        return torch.cat([pos[0, :1], pp.permute(0, 2, 3, 1).reshape(grid * grid, d)]), g0

    def antialias(m, grid):
        pos = m["embeddings.position_embeddings"]
        g0, d = int(round(math.sqrt(pos.shape[1] - 1))), pos.shape[2]
        pp = pos[:, 1:].reshape(1, g0, g0, d).permute(0, 3, 1, 2).float()
        pp = F.interpolate(pp, size=(grid, grid), mode="bicubic", align_corners=False,
                           antialias=True).to(pos.dtype)
        return torch.cat([pos[0, :1], pp.permute(0, 2, 3, 1).reshape(grid * grid, d)]), g0

    yield "the scale_factor (+0.1) interpolation", patch_global("dinov2_positions", old_form)
    yield "antialiased interpolation", patch_global("dinov2_positions", antialias)
    yield "layer scale left out", patch_global(
        "layer_names", lambda f, p, i, ln=layer_names: {k: v for k, v in ln(f, p, i).items()
                                                         if k not in ("ls1", "ls2")})


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(prog="ref_vit.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("family", choices=["clip", "dinov2", "vitmae"])
    g.add_argument("dir")
    g.add_argument("--f16", action="store_true")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--full", action="store_true")
    i = sub.add_parser("image")
    i.add_argument("dir")
    i.add_argument("out")
    i.add_argument("--pool", choices=["cls", "sum"], default="cls")
    i.add_argument("--f32", action="store_true")
    i.add_argument("images", nargs="+")
    t = sub.add_parser("text")
    t.add_argument("dir")
    t.add_argument("out")
    t.add_argument("--f32", action="store_true")
    sub.add_parser("selftest")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    try:
        return run(a)
    except ImportError as e:
        print("ref_vit.py: %s" % e, file=sys.stderr)
        return 3


def run(a):
    if a.cmd == "gen":
        cmd_gen(a)
    elif a.cmd == "image":
        cmd_image(a)
    elif a.cmd == "text":
        cmd_text(a)
    else:
        return selftest()
    return 0


if __name__ == "__main__":
    sys.exit(main())
