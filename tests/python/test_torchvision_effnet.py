#!/usr/bin/python3
"""EfficientNet checkpoints and torchvision (docs/models.md, "EfficientNet-B0 and B1"):

1. torchvision -> ours: torchvision's efficientnet_b0() state_dict (batch norms with random
   affine and statistics, counters 5) written as safetensors is taken as initial weights
   (dp_model_load_weights, what `train --init` calls): every tensor comes back unchanged and
   dp_infer_run gives torchvision's logits (eval mode: dropout and stochastic depth off).
2. ours -> torchvision: the human efficientnet-b0 at 224 px and efficientnet-b1 at 240 px,
   1000 classes, written by the library (tests/test_torchvision.c) after one SGD step, load into
   torchvision.models.efficientnet_b0() / _b1() with strict=True, from the seed's weights and
   (B0) from torchvision's; from torchvision's, the logits of dp_infer_run equal torchvision's.
3. Other widths, input channels and classes: torchvision's EfficientNet built as efficientnet_b1()
   builds it but at width_mult 0.25, with a one-channel stem and 10 classes, goes into ours
   (--width 0.25 --in-ch 1 --classes 10, 96 px, where our strides are torchvision's) tensor for
   tensor with its logits, and ours after a step loads back into it with strict=True.
4. The PyTorch twin, dynopool.models.build("efficientnet-b0"/"-b1", "human", 3, S, 1000): its
   state_dict has torchvision's keys and shapes in torchvision's order (224 and 240 px), and with
   torchvision's weights (batch norms randomized as in 1) loaded strictly, its eval-mode logits
   are torchvision's.

    /usr/bin/python3 tests/python/test_torchvision_effnet.py TEST_TORCHVISION

Tolerance of a logit comparison: test_torchvision.py's (4 times float32 PyTorch's own distance
from float64, plus 8 float32 epsilons of the largest logit; the images' logits must differ by
more than 10 times that).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_torchvision as tt  # noqa: E402  (exits 77 when torch or torchvision is missing)
import torch  # noqa: E402
import torchvision  # noqa: E402

from test_checkpoint import infer_logits  # noqa: E402

tt.TV["efficientnet-b0"] = torchvision.models.efficientnet_b0
tt.TV["efficientnet-b1"] = torchvision.models.efficientnet_b1
SIZE = {"efficientnet-b0": 224, "efficientnet-b1": 240}


def ours_to_torchvision(helper, tmp, model, init, x):
    """2, against torchvision alone (the PyTorch twin's own loading is py.checkpoint's)."""
    size = SIZE[model]
    starts = [("the seed's weights", "-")] + ([("torchvision's weights", init)] if init else [])
    for start, f in starts:
        ck = os.path.join(tmp, f"{model}-{size}-{'seed' if f == '-' else 'tv'}.safetensors")
        if not tt.helper_ck(helper, ck, model, size, 1000, f, 1, 0.01):
            continue
        state = tt.state_of(ck)
        tv = tt.TV[model]()
        try:
            tv.load_state_dict(state, strict=True)
        except RuntimeError as e:
            tt.check(False, f"{model} from {start}: load into torchvision.models strictly: {e}")
            continue
        ref = tt.dynopool.read_safetensors(init)[0] if f != "-" else {}
        nbt = {k: v.item() for k, v in state.items() if k.endswith("num_batches_tracked")}
        moved = all(v == (6 if ref else 1) for v in nbt.values()) and all(
            not torch.equal(v, ref[k] if ref else torch.ones_like(v))
            for k, v in state.items() if k.endswith("running_var"))
        tt.check(moved and len(state) == len(tv.state_dict()),
                 f"{model} {size} px, 1000 classes, from {start} and one step: all {len(state)} "
                 f"tensors load into torchvision.models.{tt.TV[model].__name__}() with strict=True "
                 f"({len(nbt)} batch norms, each counted once more and with moved running statistics)")
        if f == "-":
            continue
        tv.eval()
        with torch.no_grad():
            z_tv = tv(x)
        z_c = infer_logits(ck, x, 1000)
        tt.compare_logits(f"{model} {size} px after a step: logits of {x.shape[0]} random images",
                          z_c, z_tv, tv, x)


def other_widths(helper, tmp):
    """3."""
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    import torch.nn as nn
    setting, last = _efficientnet_conf("efficientnet_b1", width_mult=0.25, depth_mult=1.1)
    torch.manual_seed(3)
    tv = EfficientNet(setting, 0.2, last_channel=last, num_classes=10)
    tv.features[0][0] = nn.Conv2d(1, tv.features[0][0].out_channels, 3, 2, 1, bias=False)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 96, 96, generator=gen)
    tt.randomize_bn(tv, gen, torch.randn(4, 1, 96, 96, generator=gen))
    sd = tv.state_dict()
    f = os.path.join(tmp, "tv-b1-w025.safetensors")
    tt.dynopool.write_safetensors(f, sd)
    extra = ["0.25", "1"]
    ck = os.path.join(tmp, "b1-w025-init.safetensors")
    r = tt.run([helper, "efficientnet-b1", 96, 10, f, 0, 0, ck, *extra])
    if r.returncode:
        tt.check(False, f"efficientnet-b1 width 0.25, 1 channel, 10 classes from torchvision's: {r.stderr[-1000:]}")
        return
    back = tt.state_of(ck)
    tt.check(sorted(back) == sorted(sd) and all(torch.equal(back[k], sd[k]) for k in sd),
             f"efficientnet-b1 at width 0.25, 1 channel, 10 classes: torchvision's {len(sd)} tensors "
             "taken as initial weights come back tensor for tensor")
    tv.eval()
    with torch.no_grad():
        z_tv = tv(x)
    tt.compare_logits("efficientnet-b1 width 0.25, 1 channel, 96 px: logits of 2 random images",
                      infer_logits(ck, x, 10), z_tv, tv, x)
    ck2 = os.path.join(tmp, "b1-w025-seed.safetensors")
    r = tt.run([helper, "efficientnet-b1", 96, 10, "-", 1, 0.01, ck2, *extra])
    try:
        tv.load_state_dict(tt.state_of(ck2), strict=True)
        ok = r.returncode == 0
    except RuntimeError as e:
        ok = False
        print(e)
    tt.check(ok, "efficientnet-b1 width 0.25, 1 channel, 10 classes, from the seed's weights and one step: "
                 "loads into torchvision's EfficientNet at width_mult 0.25 with strict=True")


def twin(x):
    """4: python/dynopool/models.py's EfficientNet against torchvision's."""
    from dynopool import models
    gen = torch.Generator().manual_seed(5)
    for model, s in SIZE.items():
        xs = torch.nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        torch.manual_seed(7)
        tv = tt.TV[model]()
        tt.randomize_bn(tv, gen, xs)  # else its logits are ~1e-14 and alike for every image
        tv.eval()
        net = models.build(model, "human", 3, s, 1000, 1.0).eval()
        a, b = net.state_dict(), tv.state_dict()
        same = list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
        tt.check(same, f"{model} twin at {s} px: torchvision's {len(b)} state_dict keys and "
                       f"shapes, in its order ({len(a)} keys)")
        if not same:
            continue
        net.load_state_dict(b, strict=True)
        with torch.no_grad():
            z_tv, z = tv(xs), net(xs)
        tol, e32, spread = tt.tolerance(tv, xs, z_tv)
        diff = (z - z_tv).abs().max().item()
        tt.check(diff <= tol and spread > 10 * tol,
                 f"{model} twin at {s} px with torchvision's weights: max |twin - torchvision| "
                 f"{diff:.2e} <= {tol:.2e} (|PyTorch f32 - f64| {e32:.2e}; logits differ between "
                 f"images by up to {spread:.2e})")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_torchvision_effnet.py TEST_TORCHVISION")
    helper = sys.argv[1]
    torch.set_num_threads(1)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as tmp:
        init = tt.torchvision_to_ours(helper, tmp, "efficientnet-b0", x)
        ours_to_torchvision(helper, tmp, "efficientnet-b0", init, x)
        ours_to_torchvision(helper, tmp, "efficientnet-b1", None, None)
        other_widths(helper, tmp)
    twin(x)
    print(f"{len(tt.FAILS)} failed" if tt.FAILS else "all passed")
    return 1 if tt.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
