#!/usr/bin/python3
"""Why the query points are computed with one rounding (docs/operator.md, "Why one
rounding matters").

At alpha = 2 every query point sits on a whole pixel.  A DynOPool written with
grid_sample normalises the points to [-1, 1] and grid_sample maps them back; in
float64 that round trip can land one ulp below the pixel, flip floor(), and give
alpha a gradient from the wrong neighbour.  The values agree; dalpha does not.

    /usr/bin/python3 ref/grid_sample_rounding.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dynopool_ref as R  # noqa: E402

F64 = torch.float64


def grid_sample_dynopool(x, ho, wo):
    """The operator as four grid_sample calls; ho, wo are leaves for the size gradient."""
    qs = []
    for a in range(2):
        for b in range(2):
            gy = (2 * torch.arange(int(ho.item()), dtype=F64) + 0.5 + a) / ho - 1
            gx = (2 * torch.arange(int(wo.item()), dtype=F64) + 0.5 + b) / wo - 1
            g = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)
            g = g.expand(x.shape[0], *g.shape)
            qs.append(F.grid_sample(x, g, mode="bilinear", padding_mode="border",
                                    align_corners=False))
    return R.aggregate(qs, 0)


def main():
    gen = torch.Generator().manual_seed(0)
    print(f"{'H x W':8s} {'dalpha (reference)':>30s} {'dalpha (grid_sample)':>30s} {'max |y diff|':>13s}")
    for h, w in [(8, 6), (32, 32), (16, 12), (24, 20)]:
        x = torch.randn(2, 3, h, w, dtype=F64, generator=gen)
        ah = torch.tensor(2.0, dtype=F64, requires_grad=True)
        aw = torch.tensor(2.0, dtype=F64, requires_grad=True)
        y = R.dynopool(x, ah, aw, 0)
        dy = torch.randn(y.shape, dtype=F64, generator=gen)
        (y * dy).sum().backward()
        gh = torch.tensor(float(h // 2), dtype=F64, requires_grad=True)
        gw = torch.tensor(float(w // 2), dtype=F64, requires_grad=True)
        yg = grid_sample_dynopool(x, gh, gw)
        (yg * dy).sum().backward()
        # dH_out/dalpha = -H / alpha^2 = -H / 4 at alpha = 2
        ref = f"({ah.grad.item():+.4f}, {aw.grad.item():+.4f})"
        gsd = f"({gh.grad.item() * -h / 4:+.4f}, {gw.grad.item() * -w / 4:+.4f})"
        print(f"{h:3d} x {w:<3d} {ref:>30s} {gsd:>30s} {(yg - y).abs().max().item():13.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
