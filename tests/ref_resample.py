#!/usr/bin/env python3
"""ref_resample.py - Pillow's resize, and Hugging Face's shortest-side resize
plus centre crop, on raw 8-bit images, for checking pixvec's
engine/image/img_resample.c byte for byte (tests/test_resample.c).

usage: ref_resample.py DIR
  DIR/cases.txt: one case a line, "ID OP MODE SW SH FILTER A B":
    OP resize: Image.resize((A, B), FILTER), A x B the output size
    OP crop:   HF CLIPImageProcessor's resize (shortest edge A, the long
               side int(A * long / short)) then center_crop to B x B,
               with HF's zero padding when the image is smaller than B
  MODE L or RGB, FILTER Pillow's number (2 bilinear, 3 bicubic).
  DIR/ID.in: SW x SH pixels, row-major, interleaved; DIR/ID.out is written.
The crop arithmetic is HF's (transformers image_transforms.center_crop and
get_resize_output_image_size), written out here in Python.
"""
import math
import sys

from PIL import Image


def hf_resize_size(w, h, side):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = side, int(side * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)  # (W, H)


def hf_center_crop(raw, w, h, nch, crop):
    # HF: top = (H - crop) // 2; when too small, pad with zeros
    # ceil((new - H) / 2) before the image, shift top by the pad, then slice.
    top, left = (h - crop) // 2, (w - crop) // 2
    new_h, new_w = max(crop, h), max(crop, w)
    top_pad = math.ceil((new_h - h) / 2)
    left_pad = math.ceil((new_w - w) / 2)
    padded = bytearray(new_h * new_w * nch)
    for y in range(h):
        o = ((y + top_pad) * new_w + left_pad) * nch
        padded[o:o + w * nch] = raw[y * w * nch:(y + 1) * w * nch]
    top += top_pad
    left += left_pad
    out = bytearray()
    for y in range(max(0, top), min(new_h, top + crop)):
        a = (y * new_w + max(0, left)) * nch
        b = (y * new_w + min(new_w, left + crop)) * nch
        out += padded[a:b]
    assert len(out) == crop * crop * nch
    return bytes(out)


def main():
    d = sys.argv[1]
    with open(d + "/cases.txt") as f:
        for line in f:
            cid, op, mode, sw, sh, flt, a, b = line.split()
            sw, sh, flt, a, b = int(sw), int(sh), int(flt), int(a), int(b)
            nch = 1 if mode == "L" else 3
            with open("%s/%s.in" % (d, cid), "rb") as g:
                raw = g.read()
            im = Image.frombytes(mode, (sw, sh), raw)
            if op == "resize":
                out = im.resize((a, b), flt).tobytes()
            else:
                rw, rh = hf_resize_size(sw, sh, a)
                r = im.resize((rw, rh), flt)
                out = hf_center_crop(r.tobytes(), rw, rh, nch, b)
            with open("%s/%s.out" % (d, cid), "wb") as g:
                g.write(out)


if __name__ == "__main__":
    main()
