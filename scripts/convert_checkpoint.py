#!/usr/bin/env python3
"""convert_checkpoint.py - write model.safetensors beside a Hugging Face
checkpoint that only has pytorch_model.bin (older repositories, such as
some of facebook/vit-mae-*), so that `pixvec init --embedder clip|dinov2|
vitmae --model DIR` can map it.

Needs python3-torch (Debian; scripts/setup.sh installs it). The .bin file
is a pickle: load only files you trust (torch 1.13 has no weights_only
loader). Tensors are written as they are (float32 stays float32, float16
stays float16), in the safetensors layout: an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the
data, larger element types first so that float32 data stays 4-aligned.

usage: scripts/convert_checkpoint.py DIR
"""
import json
import os
import struct
import sys

DTYPES = {  # torch dtype name -> (safetensors dtype, bytes per element)
    "torch.float32": ("F32", 4), "torch.float16": ("F16", 2),
    "torch.bfloat16": ("BF16", 2), "torch.float64": ("F64", 8),
    "torch.int64": ("I64", 8), "torch.int32": ("I32", 4),
    "torch.int16": ("I16", 2), "torch.int8": ("I8", 1),
    "torch.uint8": ("U8", 1), "torch.bool": ("BOOL", 1),
}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: convert_checkpoint.py DIR")
    d = sys.argv[1]
    src, dst = os.path.join(d, "pytorch_model.bin"), os.path.join(d, "model.safetensors")
    if os.path.exists(dst):
        sys.exit(f"{dst} exists already: nothing to do")
    if not os.path.exists(src):
        sys.exit(f"{src}: no such file (download it from the model's Hugging Face page)")
    import torch
    state = torch.load(src, map_location="cpu")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    items = []
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            continue
        if str(t.dtype) not in DTYPES:
            sys.exit(f"{src}: tensor {name} has dtype {t.dtype}, which safetensors cannot hold")
        items.append((name, t.contiguous()))
    items.sort(key=lambda nt: (-DTYPES[str(nt[1].dtype)][1], nt[0]))
    header, blobs, off = {}, [], 0
    for name, t in items:
        dtype, size = DTYPES[str(t.dtype)]
        # bfloat16 has no numpy type: its raw bytes through int16
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        assert len(raw) == t.numel() * size
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, dst)
    print(f"wrote {dst}: {len(items)} tensors, {off} bytes of data")


if __name__ == "__main__":
    main()
