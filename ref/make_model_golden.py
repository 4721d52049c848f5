#!/usr/bin/python3
"""Golden training-step data for the model zoo (docs/models.md), from ref/models.py in float64.

    /usr/bin/python3 ref/make_model_golden.py            # rewrite tests/data/model_*.safetensors
    /usr/bin/python3 ref/make_model_golden.py --check    # compute and verify, write nothing
    /usr/bin/python3 ref/make_model_golden.py --only vgg16:dynopool
    /usr/bin/python3 ref/make_model_golden.py --verify   # recompute the files from themselves

One file per model x variant, tests/data/model_<model>_<variant>.safetensors (the variant name as
it is: model_vgg16_shape-adaptor.safetensors). Each holds, for a batch of N = 4 random
3x32x32 images and K = 10 classes, in training mode (batch statistics):

  input [N,C,S,S], target [N] (I64)
  param.<key>        every state_dict entry before anything ran (buffers included)
  logits [N,K], loss_task [] (mean cross-entropy), loss_gmacs [] (complexity_gmacs),
  loss [] = loss_task + lambda * loss_gmacs; lambda (metadata) is 0.5 for `dynopool`, 0 otherwise
  grad.<name>        d loss / d parameter, every trainable parameter (0 where no gradient flows)
  gmacs_grad.<alpha> d loss_gmacs / d alpha, every DynOPool alpha (dynopool variant only)
  step_loss [3]      the total loss of each of 3 SGD steps on the same batch, from the initial
                     state (each: zero_grad, forward, loss, backward, step)
  step.<key>         every state_dict entry after those 3 steps (running stats included)
  sizes [k,2]        (h, w) after each resizing stage at the initial alphas, in forward order
  step_sizes [3,k,2] the same in the forward of each step (a DynOPool's size may move)

SGD is torch.optim.SGD (nesterov): d = g + wd p; b = d on the first step, else b = m b + d;
p -= lr (d + m b). Two groups: alphas (lr_alpha = lr / 10, no weight decay) and everything
else (weight decay 5e-4). BN: eps 1e-5, momentum 0.1, running_var updated with the unbiased
batch variance.

Width: 0.25, halved while a file would exceed ~3.5 MB (vgg16 0.125, resnet50 0.0625,
mobilenetv2 0.25); metadata `width`. EfficientNet-B0 (B1 only differs in depth: no golden) is
at width 1/32, where make_divisible holds nearly every layer at 8 channels (16 at the end) and
a file is ~0.47 MB; its 16 blocks, not the width, set that size.

EfficientNet's dropout and stochastic depth draw their masks from the engine's seed, PyTorch's
from its generator: they never agree, so EfficientNet is built without them on both sides
(models.build(..., drop=False); the engine's dp_model_config.no_drop, metadata `no_drop` = 1).
Their masks are held by engine.facts (efficientnet_resume) and ops.fd.

Learning rate and seed. These tiny batch-4 networks are rough: ResNet-50 and MobileNetV2 at init
have kinks (ReLU, max) so dense that float32 rounding flips a few of them and moves some
gradients by up to ~1 % (shape-adaptor variants most), and at lr 0.05 three SGD steps magnify
that to O(1) differences: float32 PyTorch itself does not follow float64 there. So lr is 0.05
for vgg16 (float32 follows to ~1e-6) and 1e-4 for resnet50 and mobilenetv2 (metadata `lr`,
`lr_alpha`). EfficientNet's SiLU has no kink; only its max aggregations (DynOPool, the adaptors'
max-pool) do, and at lr 0.05 a near-tie among them moved the pre-pool depthwise weights after
3 steps by ~4 % under a 2^-20 perturbation (tests/test_models.c's noise runs): lr 0.01, where
the worst such tensor moves ~0.6 % (dynopool; shape-adaptor and human stay below 2e-3).
For each file, seeds SEED, SEED+1, ... are tried until one keeps every max's winner >= MIN_GAP
ahead of the runner-up, every continuous size >= MIN_MARGIN from a rounding boundary, and
float32 PyTorch within F32_TOL of every tensor (else the best is kept, with a warning). The
float32 PyTorch error of the kept file is in metadata `torch_f32_l2_err` (JSON: group ->
worst |diff|/|ref| per tensor; '<group>.zero' = absolute error of tensors that are 0 in exact
arithmetic, e.g. the gradient of a bias followed by BN): a float32 engine should be compared
with tolerances a few times those.

HRNetV2 (hrnet-w48, segmentation; human and dynopool) is at width 2 (its channel number C; stem
and stage 1 at 8), batch 2, 3 classes, input 48 (human) or 32 (dynopool; see SEG): its target is
[N,S,S] with a tenth of the pixels 255 (ignored), its logits [N,K,S,S], loss_task the per-pixel
cross-entropy over the counted pixels (models.seg_loss). lr 1e-4: the alphas' task gradient sums
over every map position and every stream of a level, and at 1e-3 three steps moved sizes by 2.

Everything is F32 except target and *.num_batches_tracked (I64). Parameters and input are drawn
in float32 and the computation runs in float64 on those exact values. The file format is
safetensors (8-byte little-endian header size, JSON header in file order with __metadata__, data).
"""
import argparse
import copy
import glob
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dynopool_ref  # noqa: E402
import models  # noqa: E402

N, C, S, K = 4, 3, 32, 10
STEPS = 3
LAMBDA = 0.5
MOMENTUM, WD = 0.9, 5e-4
ALPHA_LR_DIV = 10   # lr_alpha = lr / ALPHA_LR_DIV (a tenth: docs/guide.md, "The training recipe")
# Learning rate per model (see "Learning rate and seed" above): where float32 still follows.
LR_EFF = 0.01
LR = {"vgg16": 0.05, "resnet50": 1e-4, "mobilenetv2": 1e-4, "efficientnet-b0": LR_EFF, "hrnet-w48": 1e-4}
WIDTH = {"efficientnet-b0": 0.03125}  # else pick_width
GOLDEN_MODELS = ("vgg16", "resnet50", "mobilenetv2", "efficientnet-b0", "hrnet-w48")
# HRNet (segmentation): its own batch, input and classes, per-pixel targets with ignored pixels,
# human and dynopool only; width 2 is its channel number C (stem and stage 1 at 8)
# Input per variant: every size well inside its rounding (human 48: 24 12 6 3 2, the last map
# not 1x1, whose batch norm over 2 values is chaotic in float32; dynopool 32: 16 8 4 2 and 2/2
# clamped to 2 by the 1.5 floor, where 48 would put 3/2 exactly on it).
SEG = {"hrnet-w48": dict(n=2, size={"human": 48, "dynopool": 32}, classes=3, width=2)}
IGNORE_FRAC = 0.1   # of the target pixels set to 255 (models.SEG_IGNORE)
NO_DROP = ("efficientnet-b0",)  # built without dropout / stochastic depth (see above)
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
MAX_FILE = 3.5e6    # bytes: halve the width (from 0.25) until a file fits
SEED = 1234
SEEDS = 12          # seeds SEED, SEED+1, ... tried
F32_THREADS = (1,)  # float32 PyTorch thread counts (the worst is kept; 2 threads on 2 shared
                    # cores can be 100x slower, so one)
MIN_GAP = 3e-6      # relative gap between the winner and the runner-up of every max
MIN_MARGIN = 0.01   # distance of every continuous size (H/alpha, adaptor D) from k + 0.5
F32_TOL = 2e-3      # float32 PyTorch must land this close (|diff| / |ref|, 2-norms, per tensor)
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "data"))


# --------------------------------------------------------------------------- safetensors
def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, np.ndarray of float32 or int64), written in this order."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, a in tensors:
        if a.dtype == np.float32:
            dt, b = "F32", a.astype("<f4").tobytes()
        elif a.dtype == np.int64:
            dt, b = "I64", a.astype("<i8").tobytes()
        else:
            raise TypeError(f"{name}: {a.dtype}")
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        dt = {"F32": "<f4", "I64": "<i8"}[e["dtype"]]
        out[name] = np.frombuffer(raw[base + b:base + en], dtype=dt).reshape(e["shape"])
    return out, meta, list(header)


# --------------------------------------------------------------------------- branch monitor
class TieMonitor:
    """While `on`: the smallest relative gap between the winner and the runner-up of every max
    (DynOPool and max-pool), and the smallest distance of a continuous size (H / alpha of a
    DynOPool, D of an adaptor) from a rounding boundary (k + 0.5, or the 1.5 floor). Either one
    near float32 rounding could let a float32 engine take another branch. Also records the
    output size of every DynOPool / adaptor, in forward order."""

    def __init__(self):
        self.on = False
        self.ties = True  # watch the maxima too (off: sizes only)
        self.reset()

    def reset(self):
        self.gap = math.inf
        self.margin = math.inf
        self.sizes = {}  # first output size of each DynOPool (a shared one runs twice) / adaptor

    def size(self, s_cont):
        self.margin = min(self.margin, abs(s_cont - math.floor(s_cont) - 0.5)
                          if s_cont > 1.5 else 1.5 - s_cont)

    def dyn(self, x, alpha):
        if self.on:
            if self.ties:
                self.gap = min(self.gap, dynopool_ref.min_gap(x.detach(), alpha[0].item(),
                                                              alpha[1].item()))
            for n, a in zip(x.shape[-2:], alpha.tolist()):
                self.size(n / a)
        y = dynopool_ref.dynopool(x, alpha[0], alpha[1], 0)
        if self.on:
            self.sizes.setdefault(id(alpha), tuple(y.shape[-2:]))
        return y

    def maxpool(self, m, x):
        if self.on and self.ties:
            k, s, p = m.kernel_size, m.stride, m.padding
            xd = F.pad(x.detach(), (p, p, p, p), value=-math.inf)
            cols = F.unfold(xd, k, stride=s)  # N, C*k*k, L
            cols = cols.view(x.shape[0], x.shape[1], k * k, -1)
            top = cols.topk(2, dim=2).values
            gap = (top[:, :, 0] - top[:, :, 1]) / (1 + top[:, :, 0].abs())
            gap = gap[gap > 0]
            if gap.numel():
                self.gap = min(self.gap, gap.min().item())

    def adaptor(self, m, y):
        if self.on:
            for d in m.state["D"]:
                self.size(d)
            self.sizes.setdefault(id(m), tuple(y.shape[-2:]))


MON = TieMonitor()
models.DynOPool.impl = staticmethod(MON.dyn)
_mp_forward = models.MaxPool2d.forward
_sa_forward = models.ShapeAdaptor.forward


def _monitored_maxpool(self, x):
    MON.maxpool(self, x)
    return _mp_forward(self, x)


def _monitored_adaptor(self, x):
    y = _sa_forward(self, x)
    MON.adaptor(self, y)
    return y


models.MaxPool2d.forward = _monitored_maxpool
models.ShapeAdaptor.forward = _monitored_adaptor


# --------------------------------------------------------------------------- init
def init_weights(net, model):
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            if model == "vgg16":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.1, 0.1)
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.num_batches_tracked.zero_()
        elif isinstance(m, nn.Linear):
            bound = 1 / math.sqrt(m.in_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.uniform_(m.bias, -0.1, 0.1)
    for m in net.modules():  # alphas stay at their initial values
        if isinstance(m, models.DynOPool):
            assert m.alpha.tolist() == list(m.init_alpha)
        if isinstance(m, models.ShapeAdaptor):
            assert m.alpha.item() == float(np.float32(m.init_alpha))
        if isinstance(m, nn.BatchNorm2d):
            assert m.eps == BN_EPS and m.momentum == BN_MOMENTUM


def est_bytes(net):
    sd = net.state_dict()
    return 4 * (2 * sum(t.numel() for t in sd.values()) +
                sum(p.numel() for p in net.parameters())) + 30 * 1024


def pick_width(model):
    w = 0.25
    while est_bytes(models.build(model, "shape-adaptor", C, S, K, w)) > MAX_FILE and w > 0.05:
        w /= 2
    return w


# --------------------------------------------------------------------------- one file
def f32(t):
    return t.detach().to(torch.float32).contiguous().numpy()


def state_arrays(prefix, sd):
    out = []
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            out.append((prefix + k, np.array(int(v.item()), dtype=np.int64)))
        else:
            out.append((prefix + k, f32(v)))
    return out


def total_loss(net, x, target, lam):
    logits = net(x)
    lt = models.seg_loss(logits, target) if target.dim() == 3 else F.cross_entropy(logits, target)
    lg = models.complexity_gmacs(net, x.shape)
    loss = lt + lam * lg if lam != 0 else lt + 0.0
    return logits, lt, lg, loss


def make(model, variant, width, seed, lr, dtype=torch.float64):
    """One golden record: (tensors in file order, metadata, info for the summary)."""
    lr_alpha = lr / ALPHA_LR_DIV
    torch.manual_seed(seed)
    sg = SEG.get(model)
    N, S, K = (sg["n"], sg["size"][variant], sg["classes"]) if sg else (globals()["N"], globals()["S"],
                                                                globals()["K"])
    net = models.build(model, variant, C, S, K, width, drop=False)
    init_weights(net, model)
    x32 = torch.randn(N, C, S, S, dtype=torch.float32)
    if sg:  # one label per pixel, a tenth of them ignored
        target = torch.randint(0, K, (N, S, S), dtype=torch.int64)
        target[torch.rand(N, S, S) < IGNORE_FRAC] = models.SEG_IGNORE
    else:
        target = torch.randint(0, K, (N,), dtype=torch.int64)
    net = net.to(dtype)
    net.train()
    x = x32.to(dtype)
    lam = LAMBDA if variant == "dynopool" else 0.0
    init_state = copy.deepcopy(net.state_dict())
    _, sizes = models.gmacs_info(net, C, S)
    alphas = [(n, p) for n, p in net.named_parameters() if n.endswith("alpha")]

    # 1. one forward/backward from the initial state
    MON.reset()
    MON.on = True
    logits, lt, lg, loss = total_loss(net, x, target, lam)
    MON.on = False
    gmacs_grad = {}
    if variant == "dynopool":
        gs = torch.autograd.grad(lg, [p for _, p in alphas], retain_graph=True, allow_unused=True)
        gmacs_grad = {n: (torch.zeros_like(p) if g is None else g)
                      for (n, p), g in zip(alphas, gs)}
    net.zero_grad(set_to_none=True)
    loss.backward()
    grads = [(n, torch.zeros_like(p) if p.grad is None else p.grad.clone())
             for n, p in net.named_parameters()]

    # 2. from the initial state again: STEPS SGD steps on the same batch
    net.load_state_dict(init_state)
    net.zero_grad(set_to_none=True)
    alpha_ids = {id(p) for _, p in alphas}
    opt = torch.optim.SGD([
        {"params": [p for p in net.parameters() if id(p) not in alpha_ids],
         "lr": lr, "weight_decay": WD},
        {"params": [p for _, p in alphas], "lr": lr_alpha, "weight_decay": 0.0},
    ], lr=lr, momentum=MOMENTUM, nesterov=True)
    step_loss, step_sizes = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        MON.sizes = {}
        MON.on = True
        _, _, _, l = total_loss(net, x, target, lam)
        MON.on = False
        step_sizes.append(list(MON.sizes.values()) if variant != "human" else sizes)
        l.backward()
        opt.step()
        step_loss.append(l.item())
    final_state = copy.deepcopy(net.state_dict())
    final_sizes = models.gmacs_info(net, C, S)[1]
    MON.sizes = {}
    MON.on, MON.ties = True, False  # the sizes of the final alphas (eval: stats untouched)
    with torch.no_grad():
        net.eval()
        net(x)
    MON.on, MON.ties = False, True
    # the DynOPool / adaptor outputs seen in the forward are the size walk's
    assert step_sizes[0] == sizes, (step_sizes[0], sizes)
    assert variant == "human" or list(MON.sizes.values()) == final_sizes

    tensors = [("input", x32.numpy()), ("target", target.numpy())]
    tensors += state_arrays("param.", init_state)
    tensors += [("logits", f32(logits)), ("loss_task", f32(lt)), ("loss_gmacs", f32(lg)),
                ("loss", f32(loss))]
    tensors += [("grad." + n, f32(g)) for n, g in grads]
    tensors += [("gmacs_grad." + n, f32(g)) for n, g in gmacs_grad.items()]
    tensors += [("step_loss", np.array(step_loss, dtype=np.float32))]
    tensors += state_arrays("step.", final_state)
    k = len(sizes)
    tensors += [("sizes", np.array(sizes, dtype=np.float32).reshape(k, 2))]
    tensors += [("step_sizes", np.array(step_sizes, dtype=np.float32).reshape(STEPS, k, 2))]
    meta = dict(model=model, variant=variant, in_ch=C, size=S, classes=K, width=repr(width),
                batch=N, **{"lambda": repr(lam)}, lr=repr(lr), lr_alpha=repr(lr_alpha),
                momentum=repr(MOMENTUM), weight_decay=repr(WD), steps=STEPS,
                bn_eps=repr(BN_EPS), bn_momentum=repr(BN_MOMENTUM), nesterov="true",
                seed=seed, generator="ref/make_model_golden.py",
                **({"no_drop": 1} if model in NO_DROP else {}))
    info = dict(loss=loss.item(), lt=lt.item(), lg=lg.item(), step_loss=step_loss, gap=MON.gap,
                margin=MON.margin, sizes=sizes, final_sizes=final_sizes, step_sizes=step_sizes,
                alphas={n: p.detach().tolist() for n, p in net.named_parameters()
                        if n.endswith("alpha")})
    return tensors, meta, info


def f32_errors(ref, other):
    """Worst relative error |diff| / |ref| (2-norms, per tensor) of each group of tensors, and
    the worst max |diff| / max |ref|; tensors that are zero in exact arithmetic (|ref| < 1e-9:
    a bias before a BN) report the absolute max |diff| under '<group>.zero'."""
    b = dict(other)
    l2, mx = {}, {}
    for name, a in ref:
        if a.dtype != np.float32 or name == "input" or name.startswith("param."):
            continue
        group = name.split(".")[0]
        if group == "step" and (name.endswith("running_mean") or name.endswith("running_var")):
            group = "step.bn_stats"
        elif group in ("grad", "step") and name.endswith("alpha"):
            group += ".alpha"
        a = a.astype(np.float64)
        o = b[name].astype(np.float64)
        if o.shape != a.shape:
            l2[group] = mx[group] = math.inf
            continue
        if a.size == 0:
            continue
        den = float(np.linalg.norm(a))
        if den < 1e-9:
            group += ".zero"
            e2 = em = float(np.abs(o - a).max())
        else:
            e2 = float(np.linalg.norm(o - a)) / den
            em = float(np.abs(o - a).max()) / float(np.abs(a).max())
        l2[group] = max(l2.get(group, 0.0), e2)
        mx[group] = max(mx.get(group, 0.0), em)
    return l2, mx


def pick(model, variant, width, lr, seeds):
    """The first seed whose run keeps away from float32's branches (TieMonitor) and which
    float32 PyTorch reproduces within F32_TOL; else the least bad one.
    Returns (badness, tensors, meta, info, (l2 errors, max errors)); badness <= 1: accepted."""
    best, best_mon = None, None

    def with_f32(cand):
        bad, tensors, meta, info = cand
        MON.ties = False
        l2, mx = {}, {}
        for threads in F32_THREADS:  # other summation orders, other roundings
            torch.set_num_threads(threads)
            t32, _, _ = make(model, variant, width, meta["seed"], lr, torch.float32)
            e2, em = f32_errors(tensors, t32)
            for k in e2:
                l2[k], mx[k] = max(l2.get(k, 0.0), e2[k]), max(mx.get(k, 0.0), em[k])
        torch.set_num_threads(1)
        MON.ties = True
        bad = max([bad] + [v / F32_TOL for k, v in l2.items() if not k.endswith(".zero")])
        return (bad, tensors, meta, info, (l2, mx))

    for i in range(seeds):
        tensors, meta, info = make(model, variant, width, SEED + i, lr)
        bad = max(MIN_GAP / max(info["gap"], 1e-300), MIN_MARGIN / max(info["margin"], 1e-300))
        if bad > 1:  # near a branch: float32 is not even tried unless nothing better comes
            if best_mon is None or bad < best_mon[0]:
                best_mon = (bad, tensors, meta, info)
            continue
        cand = with_f32((bad, tensors, meta, info))
        if best is None or cand[0] < best[0]:
            best = cand
        if cand[0] <= 1:
            break
    return best if best is not None else with_f32(best_mon)


def verify(path):
    """Recompute a file from its own contents (input, target, param.*, metadata) in float64 and
    return the worst relative difference (max |diff| / max |stored|) over every stored tensor."""
    t, meta, _ = read_safetensors(path)
    net = models.build(meta["model"], meta["variant"], int(meta["in_ch"]), int(meta["size"]),
                       int(meta["classes"]), float(meta["width"]),
                       drop=meta.get("no_drop") != "1").double().train()
    sd = {k[6:]: torch.from_numpy(np.array(v)) for k, v in t.items() if k.startswith("param.")}
    net.load_state_dict(sd)
    x = torch.from_numpy(np.array(t["input"])).double()
    y = torch.from_numpy(np.array(t["target"]))
    lam, lr = float(meta["lambda"]), float(meta["lr"])
    alphas = [p for n, p in net.named_parameters() if n.endswith("alpha")]
    ids = {id(p) for p in alphas}
    opt = torch.optim.SGD([
        {"params": [p for p in net.parameters() if id(p) not in ids],
         "weight_decay": float(meta["weight_decay"])},
        {"params": alphas, "lr": float(meta["lr_alpha"]), "weight_decay": 0.0},
    ], lr=lr, momentum=float(meta["momentum"]), nesterov=meta["nesterov"] == "true")
    got = {}
    losses = []
    for k in range(int(meta["steps"])):
        opt.zero_grad(set_to_none=True)
        logits, lt, lg, loss = total_loss(net, x, y, lam)
        if k == 0:
            got.update(logits=logits, loss_task=lt, loss_gmacs=lg, loss=loss)
        loss.backward()
        if k == 0:
            got.update({"grad." + n: p.grad for n, p in net.named_parameters()
                        if p.grad is not None})
        opt.step()
        losses.append(loss.item())
    got["step_loss"] = torch.tensor(losses)
    got.update({"step." + k: v for k, v in net.state_dict().items()})
    worst = 0.0
    for k, v in got.items():
        ref = np.array(t[k], dtype=np.float64)
        v = v.detach().double().numpy()
        den = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-6)
        worst = max(worst, float(np.abs(v - ref).max()) / den if ref.size else 0.0)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compute and verify, write nothing")
    ap.add_argument("--only", action="append", default=[], help="model:variant (repeatable)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--lr", type=float, help="learning rate for every model (default: LR)")
    ap.add_argument("--seeds", type=int, default=SEEDS, help="seeds to try per file")
    ap.add_argument("-v", "--verbose", action="store_true", help="float32 errors per group")
    ap.add_argument("--verify", action="store_true",
                    help="recompute every written file from its own contents and compare")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.verify:
        for path in sorted(glob.glob(os.path.join(args.out, "model_*.safetensors"))):
            print(f"{os.path.basename(path):44s} worst relative difference {verify(path):.1e}")
        return 0  # 2 threads on 2 shared cores can be 100x slower
    t_all = time.time()
    total = 0
    for model in GOLDEN_MODELS:
        width = SEG[model]["width"] if model in SEG else WIDTH.get(model) or pick_width(model)
        for variant in models.VARIANTS:
            if model in SEG and variant == "shape-adaptor":
                continue
            if args.only and f"{model}:{variant}" not in args.only:
                continue
            t0 = time.time()
            lr = args.lr or LR[model]
            bad, tensors, meta, info, (l2, mx) = pick(model, variant, width, lr, args.seeds)
            meta["torch_f32_l2_err"] = json.dumps({k: float(f"{v:.2g}") for k, v in l2.items()})
            name = f"model_{model}_{variant}.safetensors"
            path = os.path.join(args.out, name)
            if not args.check:
                write_safetensors(path, tensors, meta)
                back, bmeta, order = read_safetensors(path)
                assert order == [n for n, _ in tensors] and bmeta == {k: str(v) for k, v in
                                                                      meta.items()}
                for n, a in tensors:
                    assert np.array_equal(back[n], a), n
                size = os.path.getsize(path)
            else:
                size = sum(a.nbytes for _, a in tensors)
            total += size
            moved = ""
            if info["final_sizes"] != info["sizes"] or any(st != info["sizes"]
                                                          for st in info["step_sizes"]):
                moved = f" -> steps {[[list(x) for x in st] for st in info['step_sizes'][1:]]}" \
                        f" final {[list(x) for x in info['final_sizes']]}"
            worst = {g: max(v for k, v in l2.items() if k.split(".")[0] == g and
                            not k.endswith(".zero")) for g in ("grad", "step")}
            note = "" if bad <= 1 else f" (best of {args.seeds} seeds, not within {F32_TOL:g})"
            print(f"{name:44s} w={width:<6g} lr {meta['lr']:<6s} seed {meta['seed']} "
                  f"{size / 1e6:4.2f} MB  loss {info['loss']:.5f} (gmacs {info['lg']:.6f})  "
                  f"steps {' '.join(f'{v:.4f}' for v in info['step_loss'])}  "
                  f"sizes {[s[0] for s in info['sizes']]}{moved}  f32 torch err grad "
                  f"{worst['grad']:.0e} step {worst['step']:.0e}"
                  f"{note}  {time.time() - t0:.1f}s", flush=True)
            if args.verbose:
                print(f"    tie gap {info['gap']:.1e}, size margin {info['margin']:.3f}; float32 "
                      "torch, worst per tensor of |diff|/|ref| (max|diff|/max|ref|): "
                      + " ".join(f"{k} {l2[k]:.0e}({mx[k]:.0e})" for k in l2
                                 if not k.startswith("loss") and "sizes" not in k))
    print(f"total {total / 1e6:.2f} MB in {time.time() - t_all:.1f}s"
          + ("" if args.check else f", written to {args.out}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
