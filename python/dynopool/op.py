"""DynOPool in PyTorch on the C operator: forward and backward are dp_dynopool_forward and
dp_dynopool_backward of libdynopool (include/dynopool_op.h), reached through ctypes.

    from dynopool import DynOPool2d
    pool = DynOPool2d(2.0)            # alpha = (2, 2), a learnable Parameter of shape (2,)
    y = pool(x)                       # x: (N, C, H, W) float32 on the CPU
    y.sum().backward()                # x.grad and pool.alpha.grad, as docs/operator.md defines

Gradients are the operator's own (docs/operator.md, "Formulas, as implemented"): to x through
the bilinear weights of each cell's winning sample; to alpha through the query points and the
straight-through size, dH_out/dalpha_h = -H / alpha_h^2 above the 1.5 floor and 0 on it.
The output size is dp_dynopool_size's, so Python and C share one size rule.
"""
import ctypes

import torch

from . import _lib
from .models import DynOPool


def out_size(n_in, alpha):
    """The output side for an input side n_in at alpha: dp_dynopool_size (docs/operator.md,
    "The size rule": floor(max(n_in / alpha, 1.5) + 0.5), in double from the float32 alpha)."""
    return _lib.check(_lib.load().dp_dynopool_size(int(n_in), float(alpha)),
                      f"dp_dynopool_size({n_in}, {alpha})")


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr())


def _check_x(x, what):
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"DynOPool2d: {what} must be a 4-d (N, C, H, W) tensor")
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise TypeError(f"DynOPool2d: the C operator takes float32 CPU tensors, {what} is "
                        f"{x.dtype} on {x.device} (the pure-PyTorch operator, "
                        "dynopool.models.DynOPool, takes any float type)")


def _alphas(alpha):
    if alpha.shape != (2,):
        raise ValueError(f"DynOPool2d: alpha must have shape (2,), not {tuple(alpha.shape)}")
    ah, aw = alpha.detach().to("cpu", torch.float32).tolist()  # the C operator's float alpha
    return ah, aw


class DynOPoolFunction(torch.autograd.Function):
    """y = DynOPool(x, alpha) on the C operator; alpha is (alpha_h, alpha_w), used as float32."""

    @staticmethod
    def forward(ctx, x, alpha):
        _check_x(x, "x")
        ah, aw = _alphas(alpha)
        x = x.contiguous()
        n, c, h, w = x.shape
        lib = _lib.load()
        ho, wo = out_size(h, ah), out_size(w, aw)
        y = torch.empty((n, c, ho, wo), dtype=torch.float32)
        if y.numel():
            _lib.check(lib.dp_dynopool_forward(_ptr(x), n, c, h, w, ah, aw, _ptr(y)),
                       "dp_dynopool_forward")
        ctx.save_for_backward(x, alpha)
        ctx.alphas = (ah, aw)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, alpha = ctx.saved_tensors
        ah, aw = ctx.alphas
        n, c, h, w = x.shape
        dy = dy.to(torch.float32).contiguous()
        dx = torch.empty_like(x)
        dalpha = (ctypes.c_float * 2)()
        if x.numel():
            _lib.check(_lib.load().dp_dynopool_backward(_ptr(x), _ptr(dy), n, c, h, w, ah, aw,
                                                        _ptr(dx), dalpha),
                       "dp_dynopool_backward")
        else:
            dx.zero_()
        da = torch.tensor([dalpha[0], dalpha[1]], dtype=alpha.dtype, device=alpha.device)
        return (dx if ctx.needs_input_grad[0] else None,
                da if ctx.needs_input_grad[1] else None)


def dynopool2d(x, alpha):
    """The functional form: f(x, alpha) -> y on the C operator (max aggregation)."""
    return DynOPoolFunction.apply(x, alpha)


class DynOPool2d(DynOPool):
    """A DynOPool layer (paper, section 4.1) on the C operator.

    DynOPool2d(init=2.0): `alpha` is a Parameter of shape (2,) = (alpha_h, alpha_w), initially
    `init` (a number for both axes, or a pair). The output is (N, C, H_out, W_out) with
    H_out = out_size(H, alpha_h). The state_dict holds `alpha` only, as in a `dynopool train`
    checkpoint; dynopool.models.use_impl switches a network between this class and the
    pure-PyTorch DynOPool."""
    impl = staticmethod(dynopool2d)


def set_threads(n):
    """Threads of the C operator from now on (dp_set_threads; OMP_NUM_THREADS otherwise)."""
    _lib.check(_lib.load().dp_set_threads(int(n)), f"dp_set_threads({n})")
