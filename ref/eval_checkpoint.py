#!/usr/bin/env python3
"""Evaluates a `dynopool train` checkpoint in PyTorch, to compare with `dynopool eval`.

Loads the safetensors file into ref/models.py's module (the same parameter names),
prepares the test images of an IDX dataset as dynopool does (pixels / 255, then the
per-channel mean and std stored in the checkpoint's metadata), and prints the top-1
accuracy and mean cross-entropy.  IDX data and variant "none" only.

  /usr/bin/python3 ref/eval_checkpoint.py runs/fmnist-dynopool/checkpoint.safetensors \
      [/usr/share/datasets/fashion-mnist]

A segmentation checkpoint (HRNet, `dynopool train --task seg`) is evaluated as `dynopool
eval --task seg` does it: the split (default val) of the PascalVOC-layout set read as the
loader's evaluation view (dp_segset_sample: the centre crop of the network's side at scale
1, bottom and right padded with the mean and the ignore label, the normalisation recorded
in the checkpoint), the network in float64, mean IoU, pixel accuracy and the confusion
matrix (row: true class, column: predicted) as the official HRNet code computes them, and
the pixels whose two best logits are closer than float32 rounding of the network can
explain (seg_bounds below):

  /usr/bin/python3 ref/eval_checkpoint.py runs/seg-w18 /tmp/scenes [--split val] [--json]
"""
import copy
import gzip
import json
import pathlib
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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
    if pathlib.Path(ckpt).is_dir():
        ckpt = str(pathlib.Path(ckpt) / "checkpoint.safetensors")
    tensors, meta = read_safetensors(ckpt)
    if meta["model"] in models.SEG_MODELS:
        return seg_main(ckpt, tensors, meta, sys.argv[2:])
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


# ---- segmentation -------------------------------------------------------------------

SEG_IGNORE = 255


def seg_view(root, ident, size, mean, std):
    """Sample `ident` as dp_segset_sample's evaluation view: x (3, size, size) float32 and
    labels (size, size).  At scale 1 its bilinear resampling reads the pixels themselves
    (the source coordinate (c + 0.5) * 1 - 0.5 = c, weights 0), so x is the pixel / 255 less
    the mean over the std, in float64 as the C code computes it (the float32 mean and std
    widened), rounded once to float32."""
    img = np.asarray(Image.open(root / "JPEGImages" / (ident + ".jpg")).convert("RGB"))
    lab = np.asarray(Image.open(root / "SegmentationClass" / (ident + ".png")))
    if lab.ndim != 2:
        sys.exit(f"{root}/SegmentationClass/{ident}.png: not a palette or grey mask")
    h, w = lab.shape
    oy = (h - size) // 2 if h > size else 0
    ox = (w - size) // 2 if w > size else 0
    x = np.zeros((3, size, size), np.float32)
    y = np.full((size, size), SEG_IGNORE, np.int64)
    ch, cw = min(size, h - oy), min(size, w - ox)
    for c in range(3):
        v = img[oy:oy + ch, ox:ox + cw, c].astype(np.float64) / 255.0
        x[c, :ch, :cw] = ((v - np.float64(np.float32(mean[c]))) / np.float64(np.float32(std[c]))).astype(np.float32)
    y[:ch, :cw] = lab[oy:oy + ch, ox:ox + cw]
    return x, y


def seg_scores(conf):
    """dp_seg_scores: pixel accuracy = correct / counted, IoU_k = TP / max(1, TP + FP + FN),
    mIoU the mean over all classes."""
    tp = np.diag(conf).astype(np.float64)
    acc = tp.sum() / max(1, conf.sum())
    iou = tp / np.maximum(1, conf.sum(0) + conf.sum(1) - tp)
    return 100 * iou.mean(), 100 * acc


def seg_bound(net, x, z):
    """tol: how far a float32 implementation of the network (ours: oneDNN's direct
    convolutions, another summation order, batch norm folded into the convolutions) may put
    a logit from its exact value z (float64 here, whose own error is 2^29 times smaller).

    Derivation.  Each float32 operation rounds with a relative error of at most u = 2^-24,
    and a dot product of n terms is within gamma_n sum |w_i x_i| of the exact one whatever
    its order (Higham, forward error analysis).  Carried through the whole network with
    magnitudes (the network run on |x| with |W| and the batch norms' |scale|) this worst
    case is no use here: HRNet's hundred layers compound |W| to a bound of 6e56 on a width-2
    dynopool network trained as tests/seg_train_test.sh does (measured with a first version
    of this function, not kept), where the float32 errors are below 1e-2.  Rounding errors of
    different orders are of the same size and not aligned with the signs of the weights, so
    the error of one float32 forward pass is what it is for another one up to a small
    factor: we run the same network in float32 in PyTorch (its own order and kernels),
    measure e32 = max |z32 - z| over every logit of the split, and allow the C engine
    tol = 4 e32 + 8 eps max |z| (eps = 2^-23; the second term for the last rounding of a
    logit), as tests/python/test_checkpoint.py does for the classifiers.  A pixel whose two
    best exact logits are within 2 tol of each other (each may move by tol) may be ranked
    the other way by a float32 implementation: a near-tie."""
    with torch.no_grad():
        net32 = copy.deepcopy(net).float()
        z32 = torch.cat([net32(x[k:k + 8].float()) for k in range(0, len(x), 8)]).double()
    e32 = float((z32 - z).abs().max())
    return 4 * e32 + 8 * 2.0 ** -23 * float(z.abs().max()), e32


def seg_evaluate(tensors, meta, data, split="val"):
    """The checkpoint (read_safetensors' tensors and metadata) on the split of the set in
    folder data: a dict with miou and pixel_acc (%), images, confusion (K x K lists), the
    near-ties (near_ties, and near_tie_confusion: their part of confusion), tol and e32."""
    ds = json.loads(meta["dataset"])
    size, K = int(meta["size"]), int(meta["classes"])
    net = models.build(meta["model"], meta["variant"], int(meta["in_ch"]), size, K, float(meta["width"]))
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    net.load_state_dict(state)
    net = net.double().eval()
    data = pathlib.Path(data)
    ids = (data / "ImageSets" / "Segmentation" / (split + ".txt")).read_text().split()
    views = [seg_view(data, i, size, ds["mean"], ds["std"]) for i in ids]
    x = torch.from_numpy(np.stack([v[0] for v in views])).double()
    y = torch.from_numpy(np.stack([v[1] for v in views]))
    with torch.no_grad():
        z = torch.cat([net(x[k:k + 8]) for k in range(0, len(x), 8)])
    tol, e32 = seg_bound(net, x, z)
    pred = z.argmax(1)
    top2 = z.topk(2, dim=1)
    counted = y != SEG_IGNORE
    tie = (top2.values[:, 0] - top2.values[:, 1] <= 2 * tol) & counted
    conf = np.zeros((K, K), np.int64)
    np.add.at(conf, (y[counted].numpy(), pred[counted].numpy()), 1)
    tconf = np.zeros((K, K), np.int64)
    np.add.at(tconf, (y[tie].numpy(), pred[tie].numpy()), 1)
    miou, acc = seg_scores(conf)
    return {"miou": miou, "pixel_acc": acc, "images": len(ids), "confusion": conf.tolist(),
            "near_ties": int(tie.sum()), "near_tie_confusion": tconf.tolist(), "tol": tol, "e32": e32}


def seg_main(ckpt, tensors, meta, args):
    split, as_json, data = "val", False, None
    i = 0
    while i < len(args):
        if args[i] == "--split":
            split, i = args[i + 1], i + 2
        elif args[i] == "--json":
            as_json, i = True, i + 1
        else:
            data, i = args[i], i + 1
    out = seg_evaluate(tensors, meta, data or json.loads(meta["run"])["data"], split)
    if as_json:
        print(json.dumps(out))
        return
    print(f"PyTorch (float64): {split} split, {out['images']} images: mIoU {out['miou']:.2f}%, pixel accuracy "
          f"{out['pixel_acc']:.2f}%; {out['near_ties']} counted pixels are near-ties (top two logits within "
          f"2 tol, tol {out['tol']:.3g}); the confusion matrix (row: true class, column: predicted):")
    for row in out["confusion"]:
        print(" ".join(f"{v:6d}" for v in row))


if __name__ == "__main__":
    main()
