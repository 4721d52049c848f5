"""The DynOPool operator in plain PyTorch: tensor indexing and autograd (docs/operator.md,
"The size rule" to "Aggregation"). It shares no code with the C library, which makes it the
reference the C operator is tested against (ref/dynopool_ref.py writes the golden tensors from
it; tests/python/test_op.py compares dynopool.DynOPool2d with it).

    y = dynopool(x, alpha_h, alpha_w, agg)   # x: (N, C, H, W) leaf; alphas: 0-d tensors

Written for float64 (exact gradients, slow); it runs in float32 too, for timing
(bench/bench_pytorch_op.py)."""
import math
import struct

import torch

F64 = torch.float64


def f32(v):
    """The float32 value of v, as a Python float (what the C side receives)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def out_size(n_in, alpha):
    """floor(max(in / alpha, 1.5) + 0.5) (docs/operator.md, "The size rule")."""
    return int(math.floor(max(n_in / alpha, 1.5) + 0.5))


def ste_size(n_in, alpha):
    """The output size as a tensor: the integer value, gradient -in/alpha^2 above the floor."""
    hard = out_size(n_in, alpha.item())
    s = n_in / alpha
    if s.item() > 1.5:
        return s + (hard - s).detach()
    return (s * 0.0).detach() + hard


def query_coords(n_in, size, size_int):
    """(size_int, 2) query coordinates u(i, a); value exact (one rounding), gradient to size."""
    i = torch.arange(size_int, dtype=F64)[:, None]
    a = torch.tensor([0.0, 1.0], dtype=F64)[None, :]
    k = 4 * i + 2 * a + 1
    exact = (k * n_in - 2 * size_int) / (4 * size_int)
    smooth = (k / 4) * n_in / size - 0.5
    return exact + (smooth - smooth.detach())


def axis_taps(u, n_in):
    """Border clamp with grid_sample's gradient rule (zero at and beyond the borders)."""
    inside = (u > 0) & (u < n_in - 1)
    uc = torch.where(inside, u, u.detach().clamp(0, n_in - 1))
    u0 = torch.floor(uc.detach())
    t = uc - u0
    i0 = u0.long()
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, t


def lerp(p, q, t):
    return p + t * (q - p)


def dynopool(x, alpha_h, alpha_w, agg=0):
    """x: (N, C, H, W) float64 leaf; alphas: 0-d float64 leaves; agg 0 max, 1 mean. Returns y."""
    H, W = x.shape[-2:]
    ho_t, wo_t = ste_size(H, alpha_h), ste_size(W, alpha_w)
    ho, wo = out_size(H, alpha_h.item()), out_size(W, alpha_w.item())
    ru0, ru1, tu = axis_taps(query_coords(H, ho_t, ho), H)
    rv0, rv1, tv = axis_taps(query_coords(W, wo_t, wo), W)
    tu, tv = tu.to(x.dtype), tv.to(x.dtype)  # positions in float64, weights in x's type
    qs = []
    for a in range(2):
        for b in range(2):
            def rows(idx):
                return x.index_select(2, idx[:, a])
            def px(r, idx):
                return r.index_select(3, idx[:, b])
            r0, r1 = rows(ru0), rows(ru1)
            t_u = tu[:, a][:, None]
            t_v = tv[:, b][None, :]
            c0 = lerp(px(r0, rv0), px(r1, rv0), t_u)  # height first, then width
            c1 = lerp(px(r0, rv1), px(r1, rv1), t_u)
            qs.append(lerp(c0, c1, t_v))
    return aggregate(qs, agg)


def aggregate(qs, agg):
    if agg == 1:
        return (qs[0] + qs[1] + qs[2] + qs[3]) / 4
    y = qs[0]
    for q in qs[1:]:  # ties go to the first; a NaN wins, as in max_pool2d
        take = (q.detach() > y.detach()) | torch.isnan(q.detach())
        y = torch.where(take, q, y)
    return y


def dynopool_alpha(x, alpha):
    """The operator with alpha as one (2,) tensor, max aggregation: f(x, alpha) -> y, the
    signature of dynopool.models.DynOPool.impl."""
    return dynopool(x, alpha[0], alpha[1], 0)
