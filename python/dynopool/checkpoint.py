"""dynopool checkpoints (safetensors) into PyTorch.

    net = dynopool.load_checkpoint("runs/fmnist-dynopool")      # a run folder or the file
    x = (pixels / 255 - torch.tensor(net.mean)[:, None, None]) / torch.tensor(net.std)[:, None, None]
    logits = net(x)                                              # eval mode, (N, classes)

The file format is safetensors: an 8-byte little-endian header length, a JSON header (each
tensor's dtype, shape and byte range, and `__metadata__`), then the raw little-endian data. It is
read here with the standard library and torch.frombuffer, and written (write_safetensors: a
state_dict, e.g. torchvision's, for `dynopool train --init`) with the standard library; the
`safetensors` package is not needed.
"""
import json
import os
import struct
import sys

import torch

from . import models

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
          "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
          "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    """({name: tensor}, {metadata key: str}), tensors in the header's order, each its own copy."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise ValueError(f"{path}: the header is not JSON ({e})") from None
    meta = header.pop("__metadata__", {}) or {}
    data = bytearray(raw[8 + n:])
    if sys.byteorder != "little":
        raise OSError("read_safetensors: little-endian machines only")
    tensors = {}
    for name, t in header.items():
        dt = DTYPES.get(t.get("dtype"))
        if dt is None:
            raise ValueError(f"{path}: tensor {name}: dtype {t.get('dtype')!r} is not supported")
        shape, (a, b) = list(t["shape"]), t["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        size = torch.empty((), dtype=dt).element_size()
        if not 0 <= a <= b <= len(data) or b - a != count * size:
            raise ValueError(f"{path}: tensor {name}: bytes [{a}, {b}) do not hold "
                             f"{shape} {t['dtype']} in a data section of {len(data)} bytes")
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dt)
        else:
            tensors[name] = torch.frombuffer(data, dtype=dt, count=count, offset=a).reshape(shape).clone()
    return tensors, meta


NAMES = {v: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (a state_dict: float32, int64, ... CPU tensors, in the dict's order)
    as safetensors, with metadata {str: str} as __metadata__. The header is padded with spaces so
    that the data start 8-byte aligned; each tensor is stored contiguous, little-endian."""
    if sys.byteorder != "little":
        raise OSError("write_safetensors: little-endian machines only")
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in NAMES:
            raise ValueError(f"{path}: tensor {name}: dtype {t.dtype} is not supported")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for b in blobs:
            f.write(b)


# Names an older version gave a tensor (docs/models.md, "Names against torchvision"): MobileNetV2's
# classifier was `classifier` until it took torchvision's `classifier.1` (Dropout + Linear).
LEGACY = {"mobilenetv2": {"classifier.weight": "classifier.1.weight",
                          "classifier.bias": "classifier.1.bias"}}


def upgrade_names(model, state):
    """state with the names an older version of `model` wrote renamed to today's (a name is
    renamed only when the new one is absent); the order is kept."""
    old = {k: v for k, v in LEGACY.get(model, {}).items() if k in state and v not in state}
    return {old.get(k, k): v for k, v in state.items()}


def _json(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def checkpoint_path(path, best=False):
    """A run folder becomes its checkpoint.safetensors (checkpoint-best.safetensors with best),
    as `dynopool eval --checkpoint` reads it; a file stays as it is."""
    if os.path.isdir(path):
        return os.path.join(path, "checkpoint-best.safetensors" if best else "checkpoint.safetensors")
    return path


def load_checkpoint(path, impl="c", best=False, strict=True):
    """The network of a `dynopool train` checkpoint as an nn.Module, in eval mode.

    path: the .safetensors file or a run folder (best: its best epoch). impl: "c" (DynOPool
    layers on the C operator, dynopool.DynOPool2d) or "reference" (pure PyTorch). Every tensor
    of the file but the optimizer's momentum buffers (`optimizer.*`) is loaded with
    load_state_dict(strict=strict). The module carries the run's metadata: `meta` (the header's
    __metadata__, JSON values decoded), `mean` and `std` (per channel: the input is
    (pixel / 255 - mean) / std, as the run prepared its test images), `in_size` (the side the
    network takes) and `arch`, `variant`."""
    path = checkpoint_path(path, best)
    tensors, raw_meta = read_safetensors(path)
    meta = {k: _json(v) for k, v in raw_meta.items()}
    fmt = meta.get("format", "")
    if not str(fmt).startswith("dynopool-checkpoint"):
        raise ValueError(f"{path}: not a dynopool checkpoint (metadata format {fmt!r})")
    try:
        net = models.build(meta["model"], meta["variant"], int(meta["in_ch"]), int(meta["size"]),
                           int(meta["classes"]), float(meta["width"]), impl=impl)
    except KeyError as e:
        raise ValueError(f"{path}: the metadata has no {e}") from None
    state = upgrade_names(meta["model"], {k: v for k, v in tensors.items() if not k.startswith("optimizer.")})
    net.load_state_dict(state, strict=strict)
    net.eval()
    net.meta = meta
    ds = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    c = int(meta["in_ch"])
    net.mean = tuple(ds.get("mean", [0.0] * c))[:c]
    net.std = tuple(ds.get("std", [1.0] * c))[:c]
    return net
