#!/usr/bin/python3
"""Independent PyTorch reference of the DynOPool operator (docs/operator.md, "The size
rule" to "Aggregation"): golden tensors for the C tests.

It shares no code with the C library: the operator, python/dynopool/reference.py (imported
from the package, so PyTorch users and these goldens run the same code), is written with
tensor indexing and autograd in float64, and every case is cross-checked against
torch.nn.functional.grid_sample(mode='bilinear', padding_mode='border',
align_corners=False) before it is written.

    /usr/bin/python3 ref/dynopool_ref.py               # rewrite tests/data/dynopool_golden.bin
    /usr/bin/python3 ref/dynopool_ref.py --check       # verify only, write nothing

Golden file, little-endian:
    header  : 8 bytes magic b"DPGOLDEN", u32 version (1), u32 number of cases
    per case: 32 bytes name (NUL-padded ASCII),
              i32 n, c, h, w, agg (0 max, 1 avg), f32 alpha_h, alpha_w, i32 ho, wo,
              f32 x[n*c*h*w], dy[n*c*ho*wo], y[n*c*ho*wo], dx[n*c*h*w], dalpha[2]
"""
import argparse
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from dynopool.reference import (F64, aggregate, axis_taps, dynopool, f32, lerp,  # noqa: E402,F401
                                out_size, query_coords, ste_size)

MAGIC = b"DPGOLDEN"
VERSION = 1
def grid_sample_check(x, alpha_h, alpha_w, agg, y, dy, dx, dalpha, ties):
    """Cross-check value and gradients against grid_sample on the same query points."""
    H, W = x.shape[-2:]
    ho, wo = out_size(H, alpha_h), out_size(W, alpha_w)
    xg = x.detach().clone().requires_grad_(True)
    gh = torch.tensor(float(ho), dtype=F64, requires_grad=True)
    gw = torch.tensor(float(wo), dtype=F64, requires_grad=True)
    u = query_coords(H, gh, ho)
    v = query_coords(W, gw, wo)
    whole = bool((u.detach() == torch.floor(u.detach())).any() or
                 (v.detach() == torch.floor(v.detach())).any())
    qs = []
    for a in range(2):
        for b in range(2):
            gy = (2 * u[:, a] + 1) / H - 1  # normalised, align_corners=False
            gx = (2 * v[:, b] + 1) / W - 1
            grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)
            grid = grid.expand(x.shape[0], ho, wo, 2)
            qs.append(F.grid_sample(xg, grid, mode="bilinear", padding_mode="border",
                                    align_corners=False))
    yg = aggregate(qs, agg)
    assert torch.allclose(yg, y, rtol=0, atol=1e-12), "forward differs from grid_sample"
    if ties:
        return  # selection among exact ties may differ; values were checked
    (yg * dy).sum().backward()
    assert torch.allclose(xg.grad, dx, rtol=0, atol=1e-12), "dx differs from grid_sample"
    if not whole:  # grid_sample unnormalises with its own rounding: skip whole-pixel cases
        dh = (gh.grad.item() if gh.grad is not None else 0.0) * (-H / alpha_h ** 2 if H / alpha_h > 1.5 else 0.0)
        dw = (gw.grad.item() if gw.grad is not None else 0.0) * (-W / alpha_w ** 2 if W / alpha_w > 1.5 else 0.0)
        assert abs(dh - dalpha[0]) <= 1e-9 * (1 + abs(dh)), ("dalpha_h", dh, dalpha[0])
        assert abs(dw - dalpha[1]) <= 1e-9 * (1 + abs(dw)), ("dalpha_w", dw, dalpha[1])


def min_gap(x, alpha_h, alpha_w):
    """Smallest relative gap between the best and second candidate (max aggregation)."""
    xd = x.detach()
    H, W = xd.shape[-2:]
    ho, wo = out_size(H, alpha_h), out_size(W, alpha_w)
    one = torch.tensor(1.0, dtype=F64)
    ru0, ru1, tu = axis_taps(query_coords(H, one * ho, ho).detach(), H)
    rv0, rv1, tv = axis_taps(query_coords(W, one * wo, wo).detach(), W)
    qs = []
    for a in range(2):
        for b in range(2):
            r0, r1 = xd.index_select(2, ru0[:, a]), xd.index_select(2, ru1[:, a])
            c0 = lerp(r0.index_select(3, rv0[:, b]), r1.index_select(3, rv0[:, b]), tu[:, a][:, None])
            c1 = lerp(r0.index_select(3, rv1[:, b]), r1.index_select(3, rv1[:, b]), tu[:, a][:, None])
            qs.append(lerp(c0, c1, tv[:, b][None, :]))
    s = torch.stack(qs).sort(dim=0, descending=True).values
    gap = (s[0] - s[1]) / (1 + s[0].abs())
    # Exact ties come from query points clamped to the same border position:
    # they are ties in float32 too. Only near-ties are a problem.
    gap = gap[gap > 0]
    return gap.min().item() if gap.numel() else math.inf


def run_case(spec, gen):
    name, n, c, h, w, ah, aw, agg, kind = spec
    ah, aw = f32(ah), f32(aw)
    ho, wo = out_size(h, ah), out_size(w, aw)
    for attempt in range(100):
        if kind == "normal":
            x32 = torch.randn(n, c, h, w, generator=gen, dtype=torch.float32)
        elif kind == "ints":  # small integers: many exact ties
            x32 = torch.randint(0, 3, (n, c, h, w), generator=gen).to(torch.float32)
        elif kind == "const":  # every candidate equal: the first must win
            x32 = torch.full((n, c, h, w), 0.75, dtype=torch.float32)
        else:
            raise ValueError(kind)
        # Random data must keep the selection away from near-ties, or float32
        # rounding in C could legitimately pick another candidate.
        if kind != "normal" or agg == 1 or min_gap(x32.to(F64), ah, aw) > 1e-4:
            break
    else:
        raise RuntimeError(f"{name}: no tie-free draw")
    dy32 = torch.randn(n, c, ho, wo, generator=gen, dtype=torch.float32)

    x = x32.to(F64).requires_grad_(True)
    a_h = torch.tensor(ah, dtype=F64, requires_grad=True)
    a_w = torch.tensor(aw, dtype=F64, requires_grad=True)
    y = dynopool(x, a_h, a_w, agg)
    assert y.shape == (n, c, ho, wo), (name, y.shape)
    dy = dy32.to(F64)
    (y * dy).sum().backward()
    # No gradient path at all (both axes on the 1.5 floor) means a zero gradient.
    dalpha = tuple(0.0 if a.grad is None else a.grad.item() for a in (a_h, a_w))

    grid_sample_check(x.detach(), ah, aw, agg, y.detach(), dy, x.grad, dalpha,
                      ties=(kind != "normal"))
    if agg == 0 and ah == 2.0 and aw == 2.0 and h % 2 == 0 and w % 2 == 0:
        mp = F.max_pool2d(x.detach(), 2, 2)
        assert torch.equal(mp, y.detach()), f"{name}: alpha 2 is not max pooling"
    return dict(name=name, n=n, c=c, h=h, w=w, agg=agg, ah=ah, aw=aw, ho=ho, wo=wo,
                x=x32, dy=dy32, y=y.detach().to(torch.float32),
                dx=x.grad.to(torch.float32), dalpha=dalpha)


# name, n, c, h, w, alpha_h, alpha_w, agg, data
CASES = [
    ("alpha2_even",      2, 3,  8,  6, 2.0, 2.0, 0, "normal"),
    ("alpha2_even_big",  2, 2, 16, 12, 2.0, 2.0, 0, "normal"),
    ("nonsquare",        2, 2, 13, 11, 1.7, 2.6, 0, "normal"),
    ("nonsquare_wide",   1, 3, 10, 24, 2.6, 1.7, 0, "normal"),
    ("upsample",         1, 2,  5,  7, 0.6, 0.8, 0, "normal"),
    ("upsample_mixed",   2, 1,  6,  9, 0.8, 2.3, 0, "normal"),
    ("h1",               1, 2,  1,  9, 2.0, 1.3, 0, "normal"),
    ("w1",               2, 1,  7,  1, 1.4, 0.5, 0, "normal"),
    ("h2w3",             1, 2,  2,  3, 2.0, 2.0, 0, "normal"),
    ("h3w2",             2, 2,  3,  2, 1.1, 0.9, 0, "normal"),
    ("floor15",          1, 2,  5,  4, 4.0, 3.0, 0, "normal"),
    ("floor15_one_axis", 1, 2,  5, 12, 4.0, 1.9, 0, "normal"),
    ("odd_alpha2",       1, 3,  9, 15, 2.0, 2.0, 0, "normal"),
    ("odd_sizes",        2, 2, 11,  7, 1.3, 1.9, 0, "normal"),
    ("nc_many",          3, 4, 12, 10, 1.3, 1.9, 0, "normal"),
    ("big_alpha",        1, 2, 32, 32, 5.3, 3.1, 0, "normal"),
    ("ties_ints_a2",     2, 2,  8,  8, 2.0, 2.0, 0, "ints"),
    ("ties_ints_dyadic", 1, 2,  8,  8, 0.5, 0.5, 0, "ints"),
    ("ties_ints_a4",     1, 2, 16, 16, 4.0, 4.0, 0, "ints"),
    ("ties_const",       1, 2, 13, 11, 1.7, 2.6, 0, "const"),
    ("avg_nonsquare",    2, 2, 13, 11, 1.7, 2.6, 1, "normal"),
    ("avg_upsample",     1, 2,  5,  7, 0.6, 0.8, 1, "normal"),
    ("avg_alpha2",       1, 2,  8,  6, 2.0, 2.0, 1, "normal"),
]


def write(cases, path):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<II", VERSION, len(cases)))
        for r in cases:
            f.write(r["name"].encode("ascii").ljust(32, b"\0"))
            f.write(struct.pack("<5i2f2i", r["n"], r["c"], r["h"], r["w"], r["agg"],
                                r["ah"], r["aw"], r["ho"], r["wo"]))
            for key in ("x", "dy", "y", "dx"):
                f.write(r[key].contiguous().numpy().astype("<f4").tobytes())
            f.write(struct.pack("<2f", *r["dalpha"]))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "data", "dynopool_golden.bin"))
    ap.add_argument("--check", action="store_true", help="verify the reference, write nothing")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20221)
    results = [run_case(s, gen) for s in CASES]
    for r in results:
        print(f"{r['name']:18s} x ({r['n']},{r['c']},{r['h']},{r['w']}) alpha ({r['ah']:.4g},"
              f"{r['aw']:.4g}) -> ({r['ho']},{r['wo']})  dalpha ({r['dalpha'][0]:+.5f},"
              f"{r['dalpha'][1]:+.5f})")
    if not args.check:
        write(results, os.path.normpath(args.out))
        print("wrote", os.path.normpath(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
