#!/usr/bin/python3
"""A few SGD steps of a small network with dynopool.DynOPool2d (the C operator) match the same
steps with the pure-PyTorch reference layer: every weight and alpha after the steps, and the
sizes the alphas give on the way.   /usr/bin/python3 tests/python/test_train_steps.py

Three runs from the same initial state on the same batch: the network with DynOPool2d in float32
(C), with the reference layer in float64 (exact, R64) and in float32 (R32). The tolerance is
derived from the case: float32 arithmetic in PyTorch itself moves each tensor away from R64 by
e32 = max |R32 - R64| after the steps; the C-backed run must stay within
4 e32 + 8 eps max |R64| of R64 (eps = 2^-23) per tensor, and each step's loss likewise — the same order as PyTorch's own
float32 rounding, whereas a wrong gradient moves parameters by a fraction of the step.
"""
import copy
import sys

try:
    import torch
except ImportError as e:
    print(f"SKIP: PyTorch is not importable ({e}); tools/deps.sh installs python3-torch")
    sys.exit(77)
import torch.nn as nn
import torch.nn.functional as F

import dynopool
from dynopool import models

EPS = 2.0 ** -23
STEPS = 6
FAILS = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


class Small(nn.Module):
    """conv 3x3 -> tanh -> DynOPool (down, non-square) -> conv -> tanh -> DynOPool (up in one
    axis) -> global average -> linear. tanh, not ReLU: no plateaus of exact zeros, so the max
    is decided by clear margins."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.pool1 = models.DynOPool((1.7, 2.3))
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.pool2 = models.DynOPool((0.8, 1.45))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(x)))
        x = self.pool2(torch.tanh(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def sizes(net, side_h, side_w):
    h1 = dynopool.reference.out_size(side_h, net.pool1.alpha[0].item())
    w1 = dynopool.reference.out_size(side_w, net.pool1.alpha[1].item())
    return ((h1, w1), (dynopool.reference.out_size(h1, net.pool2.alpha[0].item()),
                       dynopool.reference.out_size(w1, net.pool2.alpha[1].item())))


def train(net, x, y, dtype):
    net = net.to(dtype)
    alphas = [p for n, p in net.named_parameters() if n.endswith("alpha")]
    rest = [p for n, p in net.named_parameters() if not n.endswith("alpha")]
    # the training recipe's form (docs/guide.md): Nesterov SGD, alphas at a tenth of the rate
    # without weight decay; rates raised so that the alphas move visibly in a few steps
    opt = torch.optim.SGD([{"params": rest, "weight_decay": 5e-4},
                           {"params": alphas, "lr": 0.5, "weight_decay": 0.0}],
                          lr=0.2, momentum=0.9, nesterov=True)
    trace = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(net(x.to(dtype)), y)
        loss.backward()
        opt.step()
        trace.append((loss.item(), sizes(net, x.shape[2], x.shape[3])))
    return net, trace


def main():
    torch.set_num_threads(1)
    torch.manual_seed(7)
    base = Small()
    x = torch.randn(8, 2, 20, 17)
    y = torch.randint(0, 5, (8,))
    start = {k: v.clone() for k, v in base.state_dict().items()}
    c_net, c_trace = train(models.use_impl(copy.deepcopy(base), "c"), x, y, torch.float32)
    r64, r64_trace = train(copy.deepcopy(base), x, y, torch.float64)
    r32, r32_trace = train(copy.deepcopy(base), x, y, torch.float32)
    check(isinstance(c_net.pool1, dynopool.DynOPool2d) and type(r64.pool1) is models.DynOPool,
          "the C run's layers are DynOPool2d, the reference runs' the pure-PyTorch DynOPool")
    for i, ((lc, sc), (lr, sr), (l32, _)) in enumerate(zip(c_trace, r64_trace, r32_trace)):
        tol = 4 * abs(l32 - lr) + 8 * EPS * abs(lr)
        check(sc == sr and abs(lc - lr) <= tol,
              f"step {i + 1}: loss C {lc:.7f} R64 {lr:.7f} (tolerance {tol:.1e}); "
              f"sizes after it C {sc} R64 {sr}")
    sd_c, sd_64, sd_32 = c_net.state_dict(), r64.state_dict(), r32.state_dict()
    for k in sd_64:
        ref = sd_64[k]
        e_c = (sd_c[k].double() - ref).abs().max().item()
        e_32 = (sd_32[k].double() - ref).abs().max().item()
        tol = 4 * e_32 + 8 * EPS * ref.abs().max().item()
        moved = (ref - start[k].double()).abs().max().item()
        check(e_c <= tol and moved > 100 * tol,
              f"{k:13s} moved {moved:.3e} in {STEPS} steps; |C - R64| {e_c:.2e}  "
              f"(|R32 - R64| {e_32:.2e}, tolerance {tol:.2e})")
    a = [tuple(round(v, 4) for v in m.alpha.tolist()) for m in (c_net.pool1, c_net.pool2)]
    print(f"alphas after {STEPS} steps (C): {a[0]} {a[1]}; sizes {c_trace[-1][1]} "
          f"(from {sizes(base, x.shape[2], x.shape[3])})")
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
