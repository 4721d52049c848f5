#!/usr/bin/python3
"""A trained EfficientNet checkpoint (human design) in torchvision: load it strictly into
torchvision's EfficientNet at the run's width and depth, and compare the test accuracy torchvision
gives on the whole Fashion-MNIST test set with the one `dynopool eval` gives.

    PYTHONPATH=python /usr/bin/python3 experiments/torchvision_accuracy.py RUN_DIR \\
        [--data /usr/share/datasets/fashion-mnist] [--cli build/dynopool]

At 64 pixels and below our B0/B1 keep the stem and the first 24-channel block at stride 1
(docs/models.md), so those two convolutions of torchvision's model are set to stride 1 (and that
block then adds its input, by torchvision's own rule, where its channels in and out agree); the
first convolution takes the run's input channels. Nothing else is changed. (Not a ctest: it
evaluates 10000 images; tests/python/test_torchvision_effnet.py is the unit test.)
"""
import argparse
import gzip
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
import dynopool  # noqa: E402
from dynopool.checkpoint import checkpoint_path  # noqa: E402


def idx(path):
    with gzip.open(path) as f:
        d = f.read()
    nd = d[3]
    dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return torch.frombuffer(bytearray(d[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(HERE), "build", "dynopool"))
    args = ap.parse_args()
    ck = checkpoint_path(args.run)
    tensors, meta = dynopool.read_safetensors(ck)
    ours = dynopool.load_checkpoint(args.run)  # for the parsed metadata: the normalisation
    arch, pool = meta["model"], meta["variant"]
    if not arch.startswith("efficientnet") or pool != "human":
        sys.exit(f"{ck}: a human-design EfficientNet checkpoint is needed (this is {arch} {pool})")
    size, in_ch, classes, width = int(meta["size"]), int(meta["in_ch"]), int(meta["classes"]), float(meta["width"])
    name = arch.replace("-", "_")
    setting, last = _efficientnet_conf(name, width_mult=width, depth_mult=1.0 if name.endswith("b0") else 1.1)
    tv = EfficientNet(setting, 0.2, last_channel=last, num_classes=classes)
    stem = tv.features[0][0]
    small = size <= 64
    tv.features[0][0] = nn.Conv2d(in_ch, stem.out_channels, 3, 1 if small else 2, 1, bias=False)
    if small:  # the first 24-channel block's depthwise conv, and then torchvision's residual rule
        blk = tv.features[2][0]
        blk.block[1][0].stride = (1, 1)
        blk.use_res_connect = blk.block[0][0].in_channels == blk.block[-1][0].out_channels
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    tv.load_state_dict(state, strict=True)
    tv.eval()
    x = idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).float().unsqueeze(1) / 255
    y = idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).long()
    mean = torch.tensor(ours.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(ours.std, dtype=torch.float32)[:, None, None]
    x = (x - mean) / std
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    right = 0
    with torch.no_grad():
        for i in range(0, len(y), 500):
            right += (tv(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    acc_tv = 100.0 * right / len(y)
    r = subprocess.run([args.cli, "eval", "--checkpoint", ck, "--data", args.data, "--json"],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"dynopool eval failed: {r.stderr[-1000:]}")
    acc_ours = json.loads(r.stdout)["accuracy"]
    print(f"{ck}: loaded strictly into torchvision's EfficientNet ({len(state)} tensors); test accuracy "
          f"on {len(y)} images: torchvision {acc_tv:.2f}%, dynopool eval {acc_ours:.2f}%")
    return 0 if abs(acc_tv - acc_ours) < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
