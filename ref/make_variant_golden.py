#!/usr/bin/env python3
"""Golden outputs of the paper's toy variants (paper, sections 3.1-3.2; docs/guide.md,
"Data") at test time, by PyTorch.

An 8x8 uint8 pattern p[i][j] = (37 i + 91 j) mod 256, as floats p / 255:
  stretch-v : bilinear (align_corners=False) to 16x8, centre 8x8 crop (rows 4..11)
  tile      : antialiased bilinear down to 4x4, tiled 4x4 -> 16x16
  large     : antialiased bilinear down to 4x4, bilinear up to 16x16
Writes tests/data/variants_golden.bin: float32 little-endian, the input (64),
then stretch-v (64), tile (256), large (256).  Run: /usr/bin/python3 ref/make_variant_golden.py
"""
import pathlib
import numpy as np
import torch
import torch.nn.functional as F

i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
p = ((37 * i + 91 * j) % 256).astype(np.float32) / 255.0
x = torch.from_numpy(p)[None, None]
stretch = F.interpolate(x, size=(16, 8), mode="bilinear", align_corners=False)[..., 4:12, :]
small = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False, antialias=True)
tile = small.repeat(1, 1, 4, 4)
large = F.interpolate(small, size=(16, 16), mode="bilinear", align_corners=False)
out = np.concatenate([t.numpy().ravel() for t in (x, stretch, tile, large)]).astype("<f4")
path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "variants_golden.bin"
path.write_bytes(out.tobytes())
print(f"wrote {path} ({out.size} floats)")
