#!/usr/bin/python3
"""dynopool checkpoints and torchvision (docs/models.md, "Names against torchvision"):

1. ours -> torchvision: the human ResNet-50 and MobileNetV2 at 224 px, 3 channels, 1000 classes,
   written by the library (tests/test_torchvision.c) after one SGD step on a random batch (every
   batch norm's running statistics and counter have moved), load into torchvision.models.
   resnet50() and mobilenet_v2() with strict=True, from the seed's weights and from torchvision's;
   from torchvision's, on random images their logits equal dp_infer_run's and those of
   dynopool.load_checkpoint's module.
2. torchvision -> ours: a torchvision state_dict (batch norms with random affine and statistics,
   so that a swapped buffer would show) written as safetensors (dynopool.write_safetensors) is
   taken as initial weights (dp_model_load_weights, what `train --init` calls): every tensor
   comes back unchanged and dp_infer_run gives torchvision's logits.
3. VGG-16 (ours is the CIFAR-style VGG-16 with batch norm, global pooling and one Linear): its
   features.* tensors are vgg16_bn's by name and shape and load into vgg16_bn().features
   strictly, giving the same feature maps; the classifiers differ, and exactly as documented.
4. `dynopool train --init FILE` on Fashion-MNIST (MobileNetV2 with DynOPool, width 0.0625, from
   a torchvision mobilenet_v2(width_mult=0.0625) with a one-channel stem): the run starts from the
   file's weights (learning rate 1e-30, so one epoch leaves them as they were), its alphas from 2,
   records the file in run.json, and resumes; every kind of mismatch is refused naming the tensor,
   before any run folder exists. A checkpoint under the older MobileNetV2 classifier name
   (`classifier.weight`, made here from the run's by renaming) still evaluates, loads into
   PyTorch and resumes to the same bytes.

    /usr/bin/python3 tests/python/test_torchvision.py TEST_TORCHVISION DYNOPOOL_CLI FASHION_MNIST_DIR

Tolerance of a logit comparison, per case (as tests/python/test_checkpoint.py): the torchvision
network in float64 is the exact value, e32 = max |float32 torchvision - float64| the float32
rounding PyTorch itself makes; the C engine (other summation orders, batch norm folded) must be
within tol = 4 e32 + 8 eps max |z64| of PyTorch (eps = 2^-23), and the logits of different
images must differ by more than 10 tol.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import torch
    import torchvision
except ImportError as e:
    print(f"SKIP: PyTorch or torchvision is not importable ({e}); tools/deps.sh installs "
          "python3-torch and python3-torchvision")
    sys.exit(77)
import torch.nn as nn

import dynopool
from dynopool import models

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_checkpoint import infer_logits  # noqa: E402

EPS = 2.0 ** -23
FAILS = []
TV = {"resnet50": torchvision.models.resnet50, "mobilenetv2": torchvision.models.mobilenet_v2}


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def run(cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def state_of(path):
    """The model's tensors of a checkpoint (no optimizer buffers)."""
    t, _ = dynopool.read_safetensors(path)
    return {k: v for k, v in t.items() if not k.startswith("optimizer.")}


def tolerance(net32, x, z32):
    """(tol, e32, spread) of docstring's rule: net32 in float64 on x."""
    with torch.no_grad():
        z64 = copy.deepcopy(net32).double()(x.double())
    e32 = (z32.double() - z64).abs().max().item()
    tol = 4 * e32 + 8 * EPS * z64.abs().max().item()
    spread = (z64 - z64.mean(dim=0)).abs().max().item()
    return tol, e32, spread


def randomize_bn(net, gen, x=None):
    """Random affine and running statistics in every BatchNorm2d, counters at 5. With x (a
    batch of images), the running statistics are first x's own (one forward in training mode),
    so that the maps keep their scale through the network (without, MobileNetV2's ReLU6s
    saturate and every image gets the same logits), then scaled by random factors."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        c = m.num_features
        m.weight.data = torch.rand(c, generator=gen) + 0.5
        m.bias.data = torch.randn(c, generator=gen) * 0.1
        m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
        m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
    if x is not None:
        for m in bns:
            m.momentum = None  # a cumulative average: after one batch, that batch's statistics
            m.reset_running_stats()
        net.train()
        with torch.no_grad():
            net(x)
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.num_features, generator=gen) * 0.01)
            m.running_var.mul_(torch.rand(m.num_features, generator=gen) * 0.4 + 0.8)
    for m in bns:
        m.num_batches_tracked.fill_(5)


def compare_logits(what, z_c, z_pt, net32, x):
    tol, e32, spread = tolerance(net32, x, z_pt)
    diff = (z_c.double() - z_pt.double()).abs().max().item()
    check(diff <= tol and spread > 10 * tol,
          f"{what}: max |dp_infer_run - torchvision| {diff:.2e} <= {tol:.2e} (|PyTorch f32 - f64| "
          f"{e32:.2e}; logits differ between images by up to {spread:.2e})")


# ---------------------------------------------------------------- 1 and 2
def tv_state(model, gen):
    """torchvision's network with random batch-norm affine and statistics (those of a batch of
    random images, then perturbed), counters at 5: a swapped buffer would show in the logits."""
    torch.manual_seed(7)
    tv = TV[model]()
    randomize_bn(tv, gen, torch.randn(4, 3, 224, 224, generator=gen))
    return tv


def helper_ck(helper, out, model, size, classes, init, steps, lr):
    r = run([helper, model, size, classes, init, steps, lr, out])
    if r.returncode:
        check(False, f"{model}: test_torchvision {model} {size} {classes} {init} {steps} {lr} failed: "
                     f"{r.stderr[-1000:]}")
    return r.returncode == 0


def torchvision_to_ours(helper, tmp, model, x):
    """2: torchvision's state_dict as our initial weights; returns the file (for 1)."""
    tv = tv_state(model, torch.Generator().manual_seed(7))
    sd = tv.state_dict()
    f = os.path.join(tmp, f"tv-{model}.safetensors")
    dynopool.write_safetensors(f, sd)
    ck = os.path.join(tmp, f"init-{model}.safetensors")
    if not helper_ck(helper, ck, model, 224, 1000, f, 0, 0):
        return f
    back = state_of(ck)
    same = sorted(back) == sorted(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
    check(same, f"{model}: a torchvision state_dict ({len(sd)} tensors, random batch-norm "
                "statistics, counters 5) taken as initial weights comes back tensor for tensor")
    tv.eval()
    with torch.no_grad():
        z_tv = tv(x)
    z_c = infer_logits(ck, x, 1000)
    compare_logits(f"{model} from torchvision's state_dict: logits of {x.shape[0]} random images",
                   z_c, z_tv, tv, x)
    return f


def ours_to_torchvision(helper, tmp, model, init, x):
    """1: our checkpoints into torchvision.models strictly: one from the seed's weights after
    one step, one from torchvision's weights (init) after one step (1e-2), whose logits depend
    on the image (at the seed's initialisation MobileNetV2's hardly do: the images' logits differ
    by 2e-7, a thousandth of their size)."""
    for start, f in (("the seed's weights", "-"), ("torchvision's weights", init)):
        ck = os.path.join(tmp, f"{model}-224-{'seed' if f == '-' else 'tv'}.safetensors")
        if not helper_ck(helper, ck, model, 224, 1000, f, 1, 0.01):
            continue
        state = state_of(ck)
        tv = TV[model]()
        try:
            tv.load_state_dict(state, strict=True)
        except RuntimeError as e:
            check(False, f"{model} from {start}: load into torchvision.models strictly: {e}")
            continue
        ref = dynopool.read_safetensors(init)[0] if f != "-" else {}
        nbt = {k: v.item() for k, v in state.items() if k.endswith("num_batches_tracked")}
        moved = all(v == (6 if ref else 1) for v in nbt.values()) and all(
            not torch.equal(v, ref[k] if ref else torch.ones_like(v))
            for k, v in state.items() if k.endswith("running_var"))
        check(moved and len(state) == len(tv.state_dict()),
              f"{model} 224 px, 1000 classes, from {start} and one step: all {len(state)} tensors "
              f"load into torchvision.models.{TV[model].__name__}() with strict=True ({len(nbt)} "
              "batch norms, each counted once more and with moved running statistics)")
        if f == "-":
            continue
        tv.eval()
        with torch.no_grad():
            z_tv = tv(x)
            z_twin = dynopool.load_checkpoint(ck)(x)
        z_c = infer_logits(ck, x, 1000)
        compare_logits(f"{model} 224 px after a step: logits of {x.shape[0]} random images", z_c, z_tv, tv, x)
        tol, _, _ = tolerance(tv, x, z_tv)
        d = (z_twin - z_tv).abs().max().item()
        check(d <= tol, f"{model}: dynopool.load_checkpoint's module gives torchvision's logits "
                        f"(max |difference| {d:.2e} <= {tol:.2e})")


# ---------------------------------------------------------------- 3. VGG-16
def vgg16(helper, tmp):
    ck = os.path.join(tmp, "vgg16-32.safetensors")
    if not helper_ck(helper, ck, "vgg16", 32, 10, "-", 1, 0.01):
        return
    state = state_of(ck)
    tv = torchvision.models.vgg16_bn()
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    try:
        tv.features.load_state_dict(feats, strict=True)
        ok = True
    except RuntimeError as e:
        ok = False
        check(False, f"vgg16: features into vgg16_bn().features: {e}")
    rest = sorted(k for k in state if not k.startswith("features."))
    tv_rest = sorted(k for k in tv.state_dict() if not k.startswith("features."))
    check(ok and rest == ["classifier.bias", "classifier.weight"] and tv_rest == [
        f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("bias", "weight")],
        f"vgg16: all {len(feats)} features.* tensors load into torchvision's vgg16_bn().features "
        f"strictly; the classifiers differ as docs/models.md says (ours {rest}, torchvision's "
        f"{tv_rest})")
    # at 224 px (5 max-pools) the features' names and shapes are the same
    ours224 = {k: tuple(v.shape) for k, v in
               models.build("vgg16", "human", 3, 224, 1000, 1.0).state_dict().items() if k.startswith("features.")}
    tv224 = {k: tuple(v.shape) for k, v in tv.state_dict().items() if k.startswith("features.")}
    check(ours224 == tv224, f"vgg16 224 px: features.* names and shapes are vgg16_bn's ({len(tv224)} tensors)")
    if not ok:
        return
    # the same maps: torchvision's features without their fifth max-pool (ours has four at 32 px)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    tv.eval()
    net = dynopool.load_checkpoint(ck)
    with torch.no_grad():
        a, b = net.features(x), tv.features[:43](x)
    d = (a - b).abs().max().item()
    tol = 8 * EPS * b.abs().max().item()
    check(a.shape == b.shape and d <= tol,
          f"vgg16: our features and vgg16_bn's first 43 modules give the same maps {tuple(a.shape)} "
          f"(max |difference| {d:.2e} <= {tol:.2e})")


def small_inputs():
    """Names and shapes at 32 px (CIFAR-style stems), without running anything: MobileNetV2's are
    torchvision's; ResNet-50's too but for its 3x3 stem conv1 (docs/models.md)."""
    for model, want in (("mobilenetv2", []), ("resnet50", ["conv1.weight"])):
        ours = {k: tuple(v.shape) for k, v in models.build(model, "human", 3, 32, 1000, 1.0).state_dict().items()}
        tv = {k: tuple(v.shape) for k, v in TV[model]().state_dict().items()}
        diff = sorted(k for k in tv if ours.get(k) != tv[k])
        check(sorted(ours) == sorted(tv) and diff == want,
              f"{model} 32 px: torchvision's {len(tv)} names; shapes differ only at {diff or 'none'}"
              + (f" (ours {ours[diff[0]]}, torchvision's {tv[diff[0]]})" if diff else ""))


# ---------------------------------------------------------------- 4. train --init, old names
def tv_fmnist_state(gen):
    """torchvision's mobilenet_v2 at width 0.0625, 10 classes, a one-channel stem."""
    torch.manual_seed(11)
    tv = torchvision.models.mobilenet_v2(width_mult=0.0625, num_classes=10)
    tv.features[0][0] = nn.Conv2d(1, tv.features[0][0].out_channels, 3, 2, 1, bias=False)
    randomize_bn(tv, gen)
    return tv.state_dict()


def rename(src, dst, old, new):
    t, meta = dynopool.read_safetensors(src)
    out = {}
    for k, v in t.items():
        for pre in ("", "optimizer.momentum_buffer."):
            if k.startswith(pre + old):
                k = pre + new + k[len(pre + old):]
                break
        out[k] = v
    dynopool.write_safetensors(dst, out, meta)


def cli_init(cli, data, tmp):
    gen = torch.Generator().manual_seed(5)
    sd = tv_fmnist_state(gen)
    f = os.path.join(tmp, "tv-fmnist.safetensors")
    dynopool.write_safetensors(f, sd)
    base = [cli, "train", "--data", data, "--model", "mobilenetv2", "--pool", "dynopool", "--width",
            "0.0625", "--epochs", "1", "--limit", "64", "--limit-test", "64", "--batch", "64",
            "--lr", "1e-30", "--threads", "1"]
    out = os.path.join(tmp, "run")
    r = run(base + ["--init", f, "--out", out])
    if r.returncode:
        check(False, f"train --init: failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
        return
    ck = os.path.join(out, "checkpoint.safetensors")
    st = state_of(ck)
    w = [k for k in sd if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    dw = max((st[k] - sd[k]).abs().max().item() for k in w)
    nbt = all(st[k].item() == 6 for k in sd if k.endswith("num_batches_tracked"))
    alphas = [v for k, v in st.items() if k.endswith(".alpha")]
    a_ok = len(alphas) == 3 and all(torch.equal(a, torch.tensor([2.0, 2.0])) for a in alphas)
    check(dw <= 1e-20 and nbt and a_ok and set(st) == set(sd) | {k for k in st if k.endswith(".alpha")},
          f"train --init: after one epoch at lr 1e-30 the {len(w)} weights are the file's (max "
          f"|difference| {dw:.1e} <= 1e-20), each BN counter is the file's 5 + 1 step, the "
          f"{len(alphas)} alphas start at (2, 2)")
    with open(os.path.join(out, "run.json")) as fp:
        rj = json.load(fp)
    _, meta = dynopool.read_safetensors(ck)
    check(rj.get("init") == f and json.loads(meta.get("run", "{}")).get("init") == f,
          "train --init: the file is recorded in run.json and in the checkpoint's metadata 'run'")

    # the older classifier name: a copy of the run whose checkpoint names it classifier.*
    old = os.path.join(tmp, "run-old")
    shutil.copytree(out, old)
    rename(ck, os.path.join(old, "checkpoint.safetensors"), "classifier.1.", "classifier.")
    t_old = state_of(os.path.join(old, "checkpoint.safetensors"))
    check("classifier.weight" in t_old and not any(k.startswith("classifier.1") for k in t_old),
          "old names: the copy names the classifier classifier.weight / classifier.bias (and its "
          "momentum buffers so)")
    ev = [run([cli, "eval", "--checkpoint", d, "--limit", "64", "--json", "--threads", "1"]) for d in (out, old)]
    js = [{k: v for k, v in json.loads(e.stdout).items() if k != "checkpoint"} if e.returncode == 0 else {}
          for e in ev]
    check(js[0] and js[0] == js[1], f"old names: dynopool eval gives the same result ({js[1] or ev[1].stderr[-300:]})")
    try:
        a, b = dynopool.load_checkpoint(old).state_dict(), dynopool.load_checkpoint(out).state_dict()
        same = list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    except Exception as e:  # noqa: BLE001 - reported as the test's failure
        same = False
        print(f"      {type(e).__name__}: {e}")
    check(same, "old names: dynopool.load_checkpoint loads the old file strictly, the same tensors")
    rr = [run([cli, "train", "--resume", d, "--epochs", "2", "--threads", "1"]) for d in (out, old)]
    same = all(x.returncode == 0 for x in rr) and open(ck, "rb").read() == open(
        os.path.join(old, "checkpoint.safetensors"), "rb").read()
    check(same, "old names and --init: both runs resume from run.json to epoch 2 and write the same "
                "checkpoint bytes" + ("" if same else f" ({rr[0].stderr[-300:]} {rr[1].stderr[-300:]})"))

    # mismatches: exit 1, the tensor named, no run folder
    def bad(name, state, want):
        g = os.path.join(tmp, f"bad-{name}.safetensors")
        dynopool.write_safetensors(g, state)
        o = os.path.join(tmp, f"run-{name}")
        r = run(base + ["--init", g, "--out", o])
        msg = (r.stdout + r.stderr).strip().splitlines()[-1] if (r.stdout + r.stderr).strip() else ""
        check(r.returncode == 1 and want in msg and g in msg and not os.path.exists(o),
              f"--init refuses {name}: exit {r.returncode}, '{msg}', no run folder")

    rv = "features.5.conv.1.1.running_var"
    bad("a missing tensor", {k: v for k, v in sd.items() if k != rv}, f"missing tensor '{rv}'")
    bad("an extra tensor", {**sd, "features.5.extra": torch.zeros(3)},
        "unexpected tensor 'features.5.extra': mobilenetv2 (dynopool) has no such weight or buffer")
    stem = dict(sd)
    stem["features.0.0.weight"] = torch.zeros(8, 3, 3, 3)
    bad("a wrong shape", stem, "tensor 'features.0.0.weight' is F32[8, 3, 3, 3], mobilenetv2 (dynopool) "
                               "needs F32[8, 1, 3, 3]")
    bad("an alpha", {**sd, "features.4.conv.1.3.alpha": torch.tensor([1.5, 1.5])},
        "tensor 'features.4.conv.1.3.alpha' is a learned resizing factor")
    bad("both classifier names", {**sd, "classifier.weight": sd["classifier.1.weight"]},
        "unexpected tensor 'classifier.weight'")
    dbl = dict(sd)
    dbl["features.1.conv.0.1.running_mean"] = dbl["features.1.conv.0.1.running_mean"].double()
    bad("float64", dbl, "features.1.conv.0.1.running_mean")
    r = run([cli, "train", "--resume", out, "--init", f])
    check(r.returncode == 2, f"--init with --resume is refused (exit {r.returncode}): the run's own "
                             "settings come from run.json")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: test_torchvision.py TEST_TORCHVISION DYNOPOOL_CLI FASHION_MNIST_DIR")
    helper, cli, data = sys.argv[1:]
    torch.set_num_threads(1)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("mobilenetv2", "resnet50"):
            init = torchvision_to_ours(helper, tmp, model, x)
            ours_to_torchvision(helper, tmp, model, init, x)
        vgg16(helper, tmp)
        small_inputs()
        cli_init(cli, data, tmp)
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
