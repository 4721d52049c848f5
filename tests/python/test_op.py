#!/usr/bin/python3
"""dynopool.DynOPool2d (the C operator through ctypes) against the pure-PyTorch reference
(dynopool.reference, float64 autograd): values and gradients to x and alpha, case by case,
within tolerances derived from each case's own terms; the size rule; where the library is
looked for.   /usr/bin/python3 tests/python/test_op.py   (DYNOPOOL_LIB, PYTHONPATH=python)

Tolerances (eps = 2^-23, float32; the float64 reference counts as exact). For one output,
A = the sum of |x| over the four corners of the winning sample:
  y       8 eps A: the C kernel's two lerps, each (1-t)p + tq, round at most ~3 eps (|p| + |q|),
          and t itself is rounded to float once.
  dx      (4 + m) eps S + 2 eps D per input pixel, S = sum |dy| * bilinear weight over the m
          samples that read it (m additions in float, each term rounded ~3 times), D = sum |dy|
          over them: the weights come from t rounded to float, |(1 - t) - (1 - t_float)| <= eps,
          an error not relative to the weight.
  dalpha  (8 + k) eps S_h, S_h = |dH_out/dalpha_h| * sum |dy| |du/dH_out| A over the winners:
          the kernel sums each output row's k = W_out terms in float before going to double;
          for alpha_w, k = H_out (docs/operator.md, "The kernel").
Random data are drawn so that every winner leads its runner-up by more than 1e-4 (relative),
far above these tolerances, so float32 and float64 pick the same sample.
"""
import math
import os
import struct
import subprocess
import sys

try:
    import torch
except ImportError as e:
    print(f"SKIP: PyTorch is not importable ({e}); tools/deps.sh installs python3-torch")
    sys.exit(77)

import dynopool
from dynopool import reference as R

EPS = 2.0 ** -23
F64 = torch.float64
FAILS = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def next_f32(v, toward):
    """The float32 next to float32 v in the direction of toward."""
    b = struct.unpack("<I", struct.pack("<f", v))[0]
    b += 1 if (toward > v) == (v > 0) else -1
    return struct.unpack("<f", struct.pack("<I", b))[0]


def candidates(xv, ah, aw):
    """The four samples of every output cell (a list in the order (0,0) (0,1) (1,0) (1,1)),
    each sample's corners' sum of |x|, and the taps, in float64, from the reference's query
    points (docs/operator.md, "Query points", "Bilinear sample")."""
    H, W = xv.shape[-2:]
    ho, wo = R.out_size(H, ah), R.out_size(W, aw)
    one = torch.tensor(1.0, dtype=F64)
    u = R.query_coords(H, one * ho, ho).detach()
    v = R.query_coords(W, one * wo, wo).detach()
    i0, i1, tu = R.axis_taps(u, H)
    j0, j1, tv = R.axis_taps(v, W)
    qs, corners = [], []
    for a in range(2):
        for b in range(2):
            r0, r1 = xv.index_select(2, i0[:, a]), xv.index_select(2, i1[:, a])
            p00, p10 = r0.index_select(3, j0[:, b]), r1.index_select(3, j0[:, b])
            p01, p11 = r0.index_select(3, j1[:, b]), r1.index_select(3, j1[:, b])
            t_u, t_v = tu[:, a][:, None], tv[:, b][None, :]
            qs.append(R.lerp(R.lerp(p00, p10, t_u), R.lerp(p01, p11, t_u), t_v))
            corners.append(p00 + p10 + p01 + p11)
    return qs, corners, (u, v, ho, wo)


def winners(qs):
    """Index of the winning sample per cell: the first of equal maxima (docs/operator.md,
    "Aggregation"), and the relative lead of the winner over the runner-up."""
    sel = torch.zeros(qs[0].shape, dtype=torch.long)
    best = qs[0].clone()
    for k in (1, 2, 3):
        take = qs[k] > best
        sel[take], best[take] = k, qs[k][take]
    s = torch.stack(qs).sort(dim=0, descending=True).values
    gap = (s[0] - s[1]) / (1 + s[0].abs())
    gap = gap[gap > 0]
    return sel, (gap.min().item() if gap.numel() else math.inf)


def bounds(x, dy, ah, aw):
    """Per-case tolerances of y, dx and dalpha (module docstring)."""
    xd, dyd = x.to(F64), dy.to(F64).abs()
    H, W = xd.shape[-2:]
    qs, corners, (u, v, ho, wo) = candidates(xd, ah, aw)
    sel, _ = winners(qs)
    _, acorners, _ = candidates(xd.abs(), ah, aw)  # on |x|: each sample's sum of |corner|
    a_sel = sum(torch.where(sel == k, acorners[k], torch.zeros(())) for k in range(4))
    tol_y = 8 * EPS * a_sel
    # S and m per input pixel: gradients of linear forms with non-negative weights
    xv = xd.clone().requires_grad_(True)
    qv, cv, _ = candidates(xv, ah, aw)
    s_form = sum((sel == k) * dyd * qv[k] for k in range(4)).sum()
    m_form = sum((sel == k) * cv[k] for k in range(4)).sum()
    d_form = sum((sel == k) * dyd * cv[k] for k in range(4)).sum()
    s_dx, = torch.autograd.grad(s_form, xv, retain_graph=True)
    m_dx, = torch.autograd.grad(m_form, xv, retain_graph=True)
    d_dx, = torch.autograd.grad(d_form, xv)
    tol_dx = (4 + m_dx) * EPS * s_dx + 2 * EPS * d_dx
    # alpha: |du/dH_out| (0 at and beyond the borders), straight-through factor, winners' rows
    tols = []
    for axis, (pos, n_in, n_out, alpha, k_sum) in enumerate(((u, H, ho, ah, wo), (v, W, wo, aw, ho))):
        idx = torch.arange(n_out, dtype=F64)[:, None]
        g = ((idx + torch.tensor([0.25, 0.75], dtype=F64)) * n_in / n_out ** 2).abs()
        g = torch.where((pos > 0) & (pos < n_in - 1), g, torch.zeros(()))
        ste = n_in / alpha ** 2 if n_in / alpha > 1.5 else 0.0
        half = (sel >> 1) if axis == 0 else (sel & 1)  # a* for the height, b* for the width
        if axis == 0:
            gs = torch.where(half == 0, g[:, 0][:, None], g[:, 1][:, None])
        else:
            gs = torch.where(half == 0, g[:, 0][None, :], g[:, 1][None, :])
        s = ste * (dyd * gs * a_sel).sum().item()
        tols.append((8 + k_sum) * EPS * s)
    return tol_y, tol_dx, tols


def draw(kind, shape, gen, ah, aw):
    for _ in range(200):
        if kind == "normal":
            x = torch.randn(shape, generator=gen)
        elif kind == "ints":  # small integers at whole pixels: exact ties, the first wins
            x = torch.randint(0, 3, shape, generator=gen).to(torch.float32)
        else:  # const: every sample equal
            x = torch.full(shape, 0.75)
        if kind != "normal":
            return x
        qs, _, _ = candidates(x.to(F64), ah, aw)
        if winners(qs)[1] > 1e-4:
            return x
    raise RuntimeError("no draw without near-ties")


def one_case(name, n, c, h, w, ah, aw, kind, gen):
    ah, aw = R.f32(ah), R.f32(aw)
    x = draw(kind, (n, c, h, w), gen, ah, aw)
    ho, wo = R.out_size(h, ah), R.out_size(w, aw)
    dy = torch.randn((n, c, ho, wo), generator=gen)
    # the C operator, float32
    pool = dynopool.DynOPool2d((ah, aw))
    xc = x.clone().requires_grad_(True)
    yc = pool(xc)
    yc.backward(dy)
    # the reference, float64 on the same float32 values
    xr = x.to(F64).requires_grad_(True)
    a_h = torch.tensor(ah, dtype=F64, requires_grad=True)
    a_w = torch.tensor(aw, dtype=F64, requires_grad=True)
    yr = R.dynopool(xr, a_h, a_w, 0)
    (yr * dy.to(F64)).sum().backward()
    da_r = [0.0 if a.grad is None else a.grad.item() for a in (a_h, a_w)]
    tol_y, tol_dx, tol_a = bounds(x, dy, ah, aw)
    shape_ok = tuple(yc.shape) == (n, c, ho, wo) == tuple(yr.shape)
    ey = (yc.detach().to(F64) - yr.detach()).abs()
    edx = (xc.grad.to(F64) - xr.grad).abs()
    da_c = pool.alpha.grad.tolist()
    ok = (shape_ok and bool((ey <= tol_y).all()) and bool((edx <= tol_dx).all()) and
          all(abs(da_c[i] - da_r[i]) <= tol_a[i] for i in range(2)))
    worst = lambda e, t: (e / t.clamp(min=1e-300)).max().item() if e.numel() else 0.0
    ra = [abs(da_c[i] - da_r[i]) / tol_a[i] if tol_a[i] else (0.0 if da_c[i] == da_r[i] else math.inf)
          for i in range(2)]
    check(ok, f"{name:18s} ({n},{c},{h},{w}) alpha ({ah:.9g},{aw:.9g}) -> {ho}x{wo}: "
              f"|err|/tol  y {worst(ey, tol_y):.2g}  dx {worst(edx, tol_dx):.2g}  "
              f"dalpha {ra[0]:.2g} {ra[1]:.2g}  (dalpha C {da_c[0]:+.5f} {da_c[1]:+.5f}, "
              f"ref {da_r[0]:+.5f} {da_r[1]:+.5f})")


def test_operator():
    gen = torch.Generator().manual_seed(14)
    b9 = next_f32(2.0, 3.0)           # 9 / alpha just below 4.5: 4 rows
    b9d = next_f32(2.0, 1.0)          # just above 4.5: 5 rows
    a28 = R.f32(28 / 16.5)            # 28 / alpha within an ulp of 16.5
    cases = [
        ("alpha2_even",      2, 3,  8,  6, 2.0, 2.0, "normal"),
        ("nonsquare",        2, 2, 13, 11, 1.7, 2.6, "normal"),
        ("nonsquare_wide",   1, 3, 10, 24, 2.6, 1.7, "normal"),
        ("upsample",         1, 2,  5,  7, 0.6, 0.8, "normal"),
        ("upsample_mixed",   2, 1,  6,  9, 0.8, 2.3, "normal"),
        ("upsample_big",     1, 2, 12, 10, 0.45, 0.7, "normal"),
        ("h1",               1, 2,  1,  9, 2.0, 1.3, "normal"),
        ("w2",               2, 1,  7,  2, 1.4, 0.5, "normal"),
        ("floor15",          1, 2,  5,  4, 4.0, 3.0, "normal"),
        ("floor15_one_axis", 1, 2,  5, 12, 4.0, 1.9, "normal"),
        ("batch_channels",   4, 8, 32, 32, 1.7, 2.6, "normal"),
        ("big_alpha",        1, 2, 32, 32, 5.3, 3.1, "normal"),
        ("half_up_9",        1, 3,  9,  9, 2.0, 2.0, "normal"),
        ("boundary_9_below", 1, 3,  9,  9, b9, b9d, "normal"),
        ("boundary_28",      1, 2, 28, 28, a28, next_f32(a28, 2.0), "normal"),
        ("boundary_28_b",    1, 2, 28, 28, next_f32(a28, 1.0), next_f32(next_f32(a28, 2.0), 2.0), "normal"),
        ("ties_ints_a2",     2, 2,  8,  8, 2.0, 2.0, "ints"),
        ("ties_ints_a4",     1, 2, 16, 16, 4.0, 4.0, "ints"),
        ("ties_const",       1, 2, 13, 11, 1.7, 2.6, "const"),
    ]
    for case in cases:
        one_case(*case, gen)


def test_sizes():
    """out_size is dp_dynopool_size; it agrees with the reference's rule, on both sides of every
    rounding boundary k + 0.5 for sides 1..40 (alpha the float32 nearest in / (k + 0.5) and its
    two neighbours), and the boundaries are really crossed."""
    bad, crossed, n = [], 0, 0
    for side in range(1, 41):
        for k in range(1, 2 * side + 2):
            a = R.f32(side / (k + 0.5))
            alphas = (next_f32(a, 0.0), a, next_f32(a, 1e9))
            sizes = [dynopool.out_size(side, al) for al in alphas]
            crossed += sizes[0] != sizes[2]
            for al, s in zip(alphas, sizes):
                n += 1
                if s != R.out_size(side, al):
                    bad.append((side, al, s, R.out_size(side, al)))
    check(not bad and crossed > 100,
          f"sizes: {n} (side, alpha) pairs at rounding boundaries agree with the reference "
          f"({len(bad)} differ{': ' + str(bad[:3]) if bad else ''}); {crossed} boundaries crossed")
    check(dynopool.out_size(5, 2.0) == 3 and dynopool.out_size(2, 2.0) == 2 and
          dynopool.out_size(32, 0.5) == 64, "sizes: halves up (5 -> 3), the floor (2 -> 2), up-sampling")
    try:
        dynopool.out_size(8, -1.0)
        check(False, "sizes: alpha -1 refused")
    except ValueError as e:
        check("alpha" in str(e), f"sizes: alpha -1 refused ({e})")


def test_errors():
    pool = dynopool.DynOPool2d(2.0)
    for x, want, what in ((torch.zeros(1, 1, 4, 4, dtype=F64), TypeError, "float64 input"),
                          (torch.zeros(4, 4), ValueError, "a 2-d input")):
        try:
            pool(x)
            check(False, f"errors: {what} refused")
        except want as e:
            check(True, f"errors: {what} refused ({type(e).__name__}: {str(e)[:60]}...)")
    # a non-contiguous input is the same as its contiguous copy
    x = torch.randn(2, 3, 9, 8).transpose(2, 3)
    check(torch.equal(pool(x), pool(x.contiguous())), "a non-contiguous input: same values")


def test_library_search():
    """DYNOPOOL_LIB wins and a missing file is named; the library next to a copy of the
    package is found there."""
    env = dict(os.environ, DYNOPOOL_LIB="/nonexistent/libdynopool.so")
    code = "import dynopool; dynopool.out_size(8, 2.0)"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    check(r.returncode != 0 and "/nonexistent/libdynopool.so ($DYNOPOOL_LIB: no such file)" in r.stderr
          and "LibraryNotFound" in r.stderr, "library: a wrong DYNOPOOL_LIB is an error naming it")
    import shutil
    import tempfile
    lib = dynopool.library().path
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(os.path.dirname(dynopool.__file__), os.path.join(d, "dynopool"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(lib, os.path.join(d, "dynopool", "libdynopool.so"))
        env = {k: v for k, v in os.environ.items() if k not in ("DYNOPOOL_LIB", "PYTHONPATH")}
        env["PYTHONPATH"] = d
        code = "import dynopool; print(dynopool.library().path); print(dynopool.out_size(9, 2.0))"
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        want = os.path.join(d, "dynopool", "libdynopool.so")
        check(r.returncode == 0 and r.stdout.split() == [want, "5"],
              f"library: found next to the package ({r.stdout.split()[:1] or r.stderr[-200:]})")


def main():
    torch.set_num_threads(1)
    print(f"libdynopool: {dynopool.library().path}")
    test_operator()
    test_sizes()
    test_errors()
    test_library_search()
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
