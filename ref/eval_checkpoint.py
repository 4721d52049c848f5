#!/usr/bin/env python3
"""Evaluates a `dynopool train` checkpoint in PyTorch, to compare with `dynopool eval`.

Loads the safetensors file into ref/models.py's module (the same parameter names),
prepares the test images of an IDX dataset as dynopool does (pixels / 255, then the
per-channel mean and std stored in the checkpoint's metadata), and prints the top-1
accuracy and mean cross-entropy.  IDX data and variant "none" only.

  /usr/bin/python3 ref/eval_checkpoint.py runs/fmnist-dynopool/checkpoint.safetensors \
      [/usr/share/datasets/fashion-mnist]
"""
import gzip
import json
import pathlib
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import models  # noqa: E402

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ckpt = sys.argv[1]
    tensors, meta = read_safetensors(ckpt)
    run = json.loads(meta["run"])
    ds = json.loads(meta["dataset"])
    if ds["variant"] != "none":
        sys.exit("only variant 'none' is supported here")
    data = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else run["data"])
    m = models.build(meta["model"], meta["variant"], int(meta["in_ch"]), int(meta["size"]),
                     int(meta["classes"]), float(meta["width"]))
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    m.load_state_dict(state)
    m.eval()
    find = lambda stem: next(p for p in (data / (stem + ".gz"), data / stem) if p.exists())
    x = read_idx(find("t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = torch.from_numpy(read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64))
    x = torch.from_numpy((x - ds["mean"][0]) / ds["std"][0])[:, None]
    with torch.no_grad():
        logits = torch.cat([m(x[i:i + 500]) for i in range(0, len(x), 500)])
    acc = (logits.argmax(1) == y).double().mean().item() * 100
    loss = F.cross_entropy(logits.double(), y).item()
    print(f"PyTorch: {len(y)} test images, accuracy {acc:.2f}%, loss {loss:.4f}")


if __name__ == "__main__":
    main()
