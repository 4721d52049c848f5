#!/usr/bin/python3
"""`dynopool eval --task seg` against PyTorch (ref/eval_checkpoint.py) on the same checkpoints:
a tiny HRNet (C = 2, 32 px), human and dynopool (the complexity loss on, so that its alphas
leave 2 and DynOPool samples between pixels), trained for three epochs on 32 generated scenes,
evaluated on 8 more.  PyTorch reads the set as the loader's evaluation view and runs the
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


def main():
    cli, fmnist = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "set")
        run(cli, "segdata", "--from", fmnist, "--out", data, "--train", "32", "--val", "8", "--size", "32")
        for pool, lam in (("human", "0"), ("dynopool", "0.1")):
            out = os.path.join(d, pool)
            run(cli, "train", "--task", "seg", "--data", data, "--out", out, "--width", "2", "--input", "32",
                "--epochs", "3", "--batch", "4", "--pool", pool, "--lambda", lam, "--threads", "1")
            ours = json.loads(run(cli, "eval", "--task", "seg", "--checkpoint", out, "--data", data, "--json",
                                  "--threads", "1"))
            tensors, meta = ec.read_safetensors(os.path.join(out, "checkpoint.safetensors"))
            ref = ec.seg_evaluate(tensors, meta, data)
            c, p, t = (np.array(v) for v in (ours["confusion"], ref["confusion"], ref["near_tie_confusion"]))
            # ours = PyTorch's for the sure pixels + the near-ties, each somewhere in its row
            extra = c - (p - t)
            ok = (extra >= 0).all() and (extra.sum(1) == t.sum(1)).all()
            exact = (c == p).all()
            print(f"{pool}: ours mIoU {ours['miou']:.6f}% pixel acc {ours['pixel_acc']:.6f}%; PyTorch "
                  f"{ref['miou']:.6f}% {ref['pixel_acc']:.6f}%; {int(c.sum())} pixels, {ref['near_ties']} "
                  f"near-ties (tol {ref['tol']:.3g}, PyTorch float32 off by {ref['e32']:.3g}); matrices "
                  f"{'equal' if exact else 'differ'}")
            if not ok:
                print(f"FAIL {pool}: the confusion matrices differ beyond the near-ties:\nours {c.tolist()}\n"
                      f"PyTorch {p.tolist()}\nnear-ties {t.tolist()}")
                fails += 1
            if ref["near_ties"] == 0:
                for k in ("miou", "pixel_acc"):
                    if abs(ours[k] - ref[k]) > 1e-12 * 100:
                        print(f"FAIL {pool}: {k} ours {ours[k]!r}, PyTorch {ref[k]!r}")
                        fails += 1
            if (p.sum(1) > 0).sum() < 2 or (p.sum(0) > 0).sum() < 2 or np.trace(p) in (0, p.sum()):
                print(f"FAIL {pool}: the comparison says little (one class true or predicted, or all right or all wrong): {p.tolist()}")
                fails += 1
    print("test_seg_eval: " + ("ok" if not fails else f"{fails} failures"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
