#!/usr/bin/python3
"""`dynopool eval --task seg` against PyTorch (ref/eval_checkpoint.py) on the same checkpoints:
a tiny HRNet (C = 2, 32 px), human and dynopool (the complexity loss on, so that its alphas
leave 2 and DynOPool samples between pixels), trained for three epochs on 32 generated scenes,
evaluated on 8 more.  So tiny a network often ends predicting one class everywhere, which
would test little: each variant is trained from seeds 1, 2, ... until a checkpoint predicts
at least two classes, some pixels right and some wrong (at most SEEDS tries); every
checkpoint tried is compared.  PyTorch reads the set as the loader's evaluation view and runs the
network in float64; its confusion matrix must equal ours exactly except for the near-ties,
pixels whose two best exact logits are closer than float32 rounding of the network can
explain (the bound's derivation: seg_bound in ref/eval_checkpoint.py).  Those are counted and
printed; ours may put such a pixel in any column of its row, nothing else may differ.  With
no near-tie the mIoU and pixel accuracy must be equal (computed from equal matrices; up to
the last bits of the mean).

    /usr/bin/python3 tests/python/test_seg_eval.py DYNOPOOL_CLI FASHION_MNIST_DIR
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

SEEDS = 6

try:
    import numpy as np
    import torch
    from PIL import Image  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "ref"))
import eval_checkpoint as ec  # noqa: E402


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"FAIL: {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r.stdout


def compare(cli, data, out, pool, lam, seed, fails):
    """Trains, compares eval's confusion matrix with PyTorch's; (fails, whether it tells much)."""
    run(cli, "train", "--task", "seg", "--data", data, "--out", out, "--width", "2", "--input", "32",
        "--epochs", "3", "--batch", "4", "--pool", pool, "--lambda", lam, "--seed", str(seed), "--threads", "1")
    ours = json.loads(run(cli, "eval", "--task", "seg", "--checkpoint", out, "--data", data, "--json",
                          "--threads", "1"))
    tensors, meta = ec.read_safetensors(os.path.join(out, "checkpoint.safetensors"))
    ref = ec.seg_evaluate(tensors, meta, data)
    c, p, t = (np.array(v) for v in (ours["confusion"], ref["confusion"], ref["near_tie_confusion"]))
    # ours = PyTorch's for the sure pixels + the near-ties, each somewhere in its row
    extra = c - (p - t)
    ok = (extra >= 0).all() and (extra.sum(1) == t.sum(1)).all()
    exact = (c == p).all()
    telling = (p.sum(1) > 0).sum() >= 2 and (p.sum(0) > 0).sum() >= 2 and np.trace(p) not in (0, p.sum())
    print(f"{pool} seed {seed}: ours mIoU {ours['miou']:.6f}% pixel acc {ours['pixel_acc']:.6f}%; PyTorch "
          f"{ref['miou']:.6f}% {ref['pixel_acc']:.6f}%; {int(c.sum())} pixels, {(p.sum(0) > 0).sum()} classes "
          f"predicted, {ref['near_ties']} near-ties (tol {ref['tol']:.3g}, PyTorch float32 off by {ref['e32']:.3g}); "
          f"matrices {'equal' if exact else 'differ'}{'' if telling else ' (says little: trying the next seed)'}")
    if not ok:
        print(f"FAIL {pool}: the confusion matrices differ beyond the near-ties:\nours {c.tolist()}\n"
              f"PyTorch {p.tolist()}\nnear-ties {t.tolist()}")
        fails += 1
    if ref["near_ties"] == 0:
        for k in ("miou", "pixel_acc"):
            if abs(ours[k] - ref[k]) > 1e-12 * 100:
                print(f"FAIL {pool}: {k} ours {ours[k]!r}, PyTorch {ref[k]!r}")
                fails += 1
    return fails, telling


def main():
    cli, fmnist = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "set")
        run(cli, "segdata", "--from", fmnist, "--out", data, "--train", "32", "--val", "8", "--size", "32")
        for pool, lam in (("human", "0"), ("dynopool", "0.1")):
            for seed in range(1, SEEDS + 1):
                fails, telling = compare(cli, data, os.path.join(d, f"{pool}-s{seed}"), pool, lam, seed, fails)
                if telling:
                    break
            else:
                print(f"FAIL {pool}: no checkpoint of seeds 1-{SEEDS} predicts two classes, some pixels right "
                      "and some wrong: the comparison says little")
                fails += 1
    print("test_seg_eval: " + ("ok" if not fails else f"{fails} failures"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
