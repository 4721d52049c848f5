"""The model zoo in PyTorch (docs/models.md): VGG-16, ResNet-50, MobileNetV2, EfficientNet-B0/B1 in
the variants `human`, `dynopool` and `shape-adaptor`, with the complexity loss (docs/operator.md,
"The complexity loss"). The one PyTorch definition of the networks: the C engine's parameter
names, so a `dynopool train` checkpoint loads into it (dynopool.load_checkpoint), and the model
goldens (ref/make_model_golden.py) come from it.

    /usr/bin/python3 ref/models.py --check     # self-test: human GMACs/sizes against the paper,
                                              # parameter names, complexity loss at init

    from dynopool import models
    net = models.build("resnet50", "dynopool", in_ch=3, size=32, classes=10, width=0.25)
    l_gmacs = models.complexity_gmacs(net, (4, 3, 32, 32))   # scalar tensor, grad to alphas
    gmacs, sizes = models.gmacs_info(net, 3, 32)              # thop count incl. BN; stage sizes

Two implementations of the DynOPool layers, the same module tree and state_dict:
  impl="reference"  DynOPool: the float64 autograd operator of dynopool/reference.py (max
                    aggregation), so gradients to x and alpha follow docs/operator.md exactly.
                    Slow: use .double() and small inputs (tests), or swap `DynOPool.impl`
                    for a fast version (bench/bench_models.py).
  impl="c"          dynopool.DynOPool2d: the C operator (libdynopool), float32 only.
`build(..., impl=...)` picks one; `use_impl(net, impl)` switches a built network in place.

complexity_gmacs never runs the network: it walks the module structure with an explicit
straight-through size chain (docs/operator.md, "The size chain").
"""
import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import reference

MODELS = ("vgg16", "resnet50", "mobilenetv2", "efficientnet-b0", "efficientnet-b1")
VARIANTS = ("human", "dynopool", "shape-adaptor")


# --------------------------------------------------------------------------- common rules
def make_divisible(v, divisor=8):
    """torchvision's rule: max(8, floor(v + 4) / 8 * 8), plus 8 if that is below 0.9 v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def ch(c, width):
    return make_divisible(c * width, 8)


class DynOPool(nn.Module):
    """One learned pooling: parameter `alpha` = (alpha_h, alpha_w), max aggregation.

    `init`: the initial alpha, one number for both axes or a pair (alpha_h, alpha_w).
    `impl` (class attribute) is the operator: f(x, alpha) -> y. The default is the float64
    reference of dynopool/reference.py (the exact gradients of docs/operator.md); the subclass
    dynopool.DynOPool2d calls the C operator."""
    impl = staticmethod(reference.dynopool_alpha)

    def __init__(self, init=2.0):
        super().__init__()
        ah, aw = (init, init) if isinstance(init, (int, float)) else init
        self.init_alpha = (float(ah), float(aw))  # plain attribute: not in the state_dict
        self.alpha = nn.Parameter(torch.tensor(self.init_alpha))

    def forward(self, x):
        return type(self).impl(x, self.alpha)

    def extra_repr(self):
        return "alpha=({:.4f}, {:.4f})".format(*self.alpha.detach().tolist())


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d; a subclass only so the golden script can monitor near-ties."""


def _sa_out(d):
    return int(math.floor(max(d, 1.5) + 0.5))


class ShapeAdaptor(nn.Module):
    """out = (1 - sig) * resize(reduce(x)) + sig * resize(x), sig = sigmoid(alpha), the scale
    s = 0.5 + 0.5 sig multiplying the network's running continuous size D (one per axis).

    `state` is a dict shared by all adaptors of one network; the network sets state['D'] = None
    at the start of every forward, and the first adaptor sets it to its input's size (D0)."""

    def __init__(self, a0, state, channels=None):
        super().__init__()
        self.state = state
        self.init_alpha = float(a0)
        self.alpha = nn.Parameter(torch.tensor([float(a0)]))
        if channels is None:
            self.reduce = MaxPool2d(2, 2)
        else:
            self.reduce = nn.Sequential(nn.Conv2d(channels, channels, 1, 2, bias=False),
                                        nn.BatchNorm2d(channels))

    def scale(self, a=None):
        a = self.alpha.detach()[0].item() if a is None else a
        return 0.5 + 0.5 / (1.0 + math.exp(-a))

    def forward(self, x):
        d = self.state.get("D")
        if d is None:
            d = (float(x.shape[-2]), float(x.shape[-1]))
        s = self.scale()
        d = (d[0] * s, d[1] * s)
        self.state["D"] = d
        size = (_sa_out(d[0]), _sa_out(d[1]))
        sig = torch.sigmoid(self.alpha[0])
        r = F.interpolate(self.reduce(x), size=size, mode="bilinear", align_corners=True)
        k = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return (1 - sig) * r + sig * k


def sa_init(d0, n):
    """Initial logit so that n adaptors take d0 to 8 cells: s0 = (8/d0)^(1/n) in [0.51, 0.99]."""
    s0 = min(max((8.0 / d0) ** (1.0 / n), 0.51), 0.99)
    p = 2 * s0 - 1
    return math.log(p / (1 - p))


class _Net(nn.Module):
    """Base: resets the shape adaptors' running size at the start of every forward."""

    def _reset(self):
        if getattr(self, "sa_state", None) is not None:
            self.sa_state["D"] = None


# --------------------------------------------------------------------------- VGG-16
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


class VGG16(_Net):
    def __init__(self, variant, in_ch, size, classes, width):
        super().__init__()
        self.arch, self.variant, self.in_size = "vgg16", variant, size
        cfg = VGG_CFG + (["M"] if size > 64 else [])
        n_m = cfg.count("M")
        self.sa_state = {"D": None} if variant == "shape-adaptor" else None
        a0 = sa_init(size, n_m) if variant == "shape-adaptor" else None
        layers, c = [], in_ch
        for v in cfg:
            if v == "M":
                if variant == "human":
                    layers.append(MaxPool2d(2, 2))
                elif variant == "dynopool":
                    layers.append(DynOPool(2.0))
                else:
                    layers.append(ShapeAdaptor(a0, self.sa_state))
            else:
                co = ch(v, width)
                layers += [nn.Conv2d(c, co, 3, padding=1, bias=True), nn.BatchNorm2d(co),
                           nn.ReLU(inplace=False)]
                c = co
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        self._reset()
        x = self.features(x)
        return self.classifier(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- ResNet-50
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, variant, downsample, sa=None):
        super().__init__()
        out = planes * 4
        self.stride = stride  # the human network's stride
        s = stride if variant == "human" else 1
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if variant == "dynopool" and stride != 1:
            self.pool = DynOPool(2.0)  # shared by the main path and the shortcut
        else:
            self.pool = None
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=False)
        if downsample:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, s, bias=False),
                                            nn.BatchNorm2d(out))
        else:
            self.downsample = None
        self.sa = sa

    def forward(self, x):
        o = self.relu(self.bn1(self.conv1(x)))
        o = self.relu(self.bn2(self.conv2(o)))
        if self.pool is not None:
            o = self.pool(o)
        o = self.bn3(self.conv3(o))
        idt = x
        if self.downsample is not None:
            idt = self.downsample(x)
            if self.pool is not None:
                idt = self.pool(idt)
        o = self.relu(o + idt)
        if self.sa is not None:
            o = self.sa(o)
        return o


class ResNet50(_Net):
    def __init__(self, variant, in_ch, size, classes, width):
        super().__init__()
        self.arch, self.variant, self.in_size = "resnet50", variant, size
        big = size > 64
        c0 = ch(64, width)
        if not big:
            self.conv1 = nn.Conv2d(in_ch, c0, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_ch, c0, 7, 1 if variant == "dynopool" else 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = self.pool = None
        if big:
            if variant == "dynopool":
                self.pool = DynOPool(4.0)
            else:
                self.maxpool = MaxPool2d(3, 2, 1)
        self.sa_state = {"D": None} if variant == "shape-adaptor" else None
        # the size entering the first adaptor: the human stem's output (conv/2 + pool/2 if big)
        d0 = size if not big else ((size - 1) // 2 + 1 - 1) // 2 + 1
        a0 = sa_init(d0, 3) if variant == "shape-adaptor" else None
        cin = c0
        for li, (n, p) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
            planes = ch(p, width)
            blocks = []
            for b in range(n):
                stride = 2 if (li > 0 and b == 0) else 1
                sa = None
                if variant == "shape-adaptor" and stride == 2:
                    sa = ShapeAdaptor(a0, self.sa_state, channels=planes * 4)
                blocks.append(Bottleneck(cin, planes, stride, variant, b == 0, sa))
                cin = planes * 4
            setattr(self, f"layer{li + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        self._reset()
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        if self.pool is not None:
            x = self.pool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- MobileNetV2
def _conv_bn_relu6(cin, cout, k, s, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=False))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t, variant, sa_a0=None, sa_state=None):
        super().__init__()
        self.stride = stride  # the human network's stride
        s = stride if variant == "human" else 1
        hidden = int(round(cin * t))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if t != 1:
            layers.append(_conv_bn_relu6(cin, hidden, 1, 1))
        dw = _conv_bn_relu6(hidden, hidden, 3, s, groups=hidden)
        if stride != 1 and variant == "dynopool":
            dw.append(DynOPool(2.0))
        elif stride != 1 and variant == "shape-adaptor":
            dw.append(ShapeAdaptor(sa_a0, sa_state))
        layers += [dw, nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(_Net):
    def __init__(self, variant, in_ch, size, classes, width):
        super().__init__()
        self.arch, self.variant, self.in_size = "mobilenetv2", variant, size
        big = size > 64
        s0, s1 = (2, 2) if big else (1, 1)
        cfg = [(1, 16, 1, 1), (6, 24, 2, s1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]
        self.sa_state = {"D": None} if variant == "shape-adaptor" else None
        a0 = None
        if variant == "shape-adaptor":
            n_sa = sum(1 for (_, _, _, s) in cfg if s == 2)
            d0 = size if not big else (size - 1) // 2 + 1  # the stem stays human
            a0 = sa_init(d0, n_sa)
        cin = ch(32, width)
        stem = _conv_bn_relu6(in_ch, cin, 3, 1 if (big and variant == "dynopool") else s0)
        if big and variant == "dynopool":
            stem.append(DynOPool(2.0))
        feats = [stem]
        for t, c, n, s in cfg:
            cout = ch(c, width)
            for i in range(n):
                feats.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, variant,
                                              a0, self.sa_state))
                cin = cout
        self.last = make_divisible(1280 * max(1.0, width), 8)
        feats.append(_conv_bn_relu6(cin, self.last, 1, 1))
        self.features = nn.Sequential(*feats)
        # torchvision's names: its classifier is Sequential(Dropout(0.2), Linear), so the Linear
        # is classifier.1 (docs/models.md, "Names against torchvision"); no dropout here
        self.classifier = nn.Sequential(nn.Identity(), nn.Linear(self.last, classes))

    def forward(self, x):
        self._reset()
        x = self.features(x)
        return self.classifier(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- EfficientNet
def _conv_bn_silu(cin, cout, k, s, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.SiLU(inplace=False))


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation(c, q) with SiLU: x * sigmoid(fc2(silu(fc1(mean(x)))))."""

    def __init__(self, c, q):
        super().__init__()
        self.fc1 = nn.Conv2d(c, q, 1)
        self.fc2 = nn.Conv2d(q, c, 1)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.silu(self.fc1(s)))) * x


class StochasticDepth(nn.Module):
    """torchvision's StochasticDepth(p, "row"): in training each sample's branch is dropped with
    probability p and kept ones scaled by 1/(1 - p); identity in eval or at p = 0. Its masks come
    from PyTorch's generator, the engine's from its seed (docs/engine.md): they never agree, so
    the goldens build the network with p = 0."""

    def __init__(self, p):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype,
                           device=x.device).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class MBConv(nn.Module):
    """torchvision's MBConv (docs/models.md, "EfficientNet-B0 and B1"): `block` = [expand],
    depthwise, SE, projection; `stochastic_depth` + residual when stride 1 and cin = cout."""

    def __init__(self, cin, cout, k, stride, t, sd_p, variant, sa_a0=None, sa_state=None):
        super().__init__()
        self.stride = stride  # the human network's stride
        s = stride if variant == "human" else 1
        hidden = make_divisible(cin * t, 8)
        self.use_res = stride == 1 and cin == cout
        layers = []
        if hidden != cin:
            layers.append(_conv_bn_silu(cin, hidden, 1, 1))
        dw = _conv_bn_silu(hidden, hidden, k, s, groups=hidden)
        if stride != 1 and variant == "dynopool":
            dw.append(DynOPool(2.0))
        elif stride != 1 and variant == "shape-adaptor":
            dw.append(ShapeAdaptor(sa_a0, sa_state))
        layers += [dw, SqueezeExcitation(hidden, max(1, cin // 4)),
                   nn.Sequential(nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
                                 nn.BatchNorm2d(cout))]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_p)

    def forward(self, x):
        r = self.block(x)
        return self.stochastic_depth(r) + x if self.use_res else r


# (expand, kernel, stride, in, out, layers): torchvision's _efficientnet_conf
EFF_CFG = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
           (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class EfficientNet(_Net):
    """torchvision's efficientnet_b0 (depth 1) / _b1 (depth 1.1). The stem and the first
    24-channel block stride only above 64 pixels, as MobileNetV2's. `dropout` (classifier.0) and
    `stochastic_depth` (the rate p of the last block; block b of B gets p b / B) are torchvision's
    0.2 by default; the engine's dp_model_config.no_drop is both at 0."""

    def __init__(self, variant, in_ch, size, classes, width, depth=1.0, arch="efficientnet-b0",
                 dropout=0.2, stochastic_depth=0.2):
        super().__init__()
        self.arch, self.variant, self.in_size = arch, variant, size
        big = size > 64
        layers = [int(math.ceil(n * depth - 1e-9)) for *_, n in EFF_CFG]
        total = sum(layers)
        strides = [(2 if big else 1) if g == 1 else row[2] for g, row in enumerate(EFF_CFG)]
        self.sa_state = {"D": None} if variant == "shape-adaptor" else None
        a0 = None
        if variant == "shape-adaptor":
            d0 = size if not big else (size - 1) // 2 + 1  # the stem stays human
            a0 = sa_init(d0, sum(1 for s in strides if s == 2))
        cin = ch(32, width)
        dyn_stem = big and variant == "dynopool"
        stem = _conv_bn_silu(in_ch, cin, 3, 1 if dyn_stem else (2 if big else 1))
        if dyn_stem:
            stem.append(DynOPool(2.0))
        feats, b = [stem], 0
        for (t, k, _, _, c, _), n, sg in zip(EFF_CFG, layers, strides):
            cout = ch(c, width)
            blocks = []
            for i in range(n):
                blocks.append(MBConv(cin, cout, k, sg if i == 0 else 1, t,
                                     stochastic_depth * b / total, variant, a0, self.sa_state))
                cin = cout
                b += 1
            feats.append(nn.Sequential(*blocks))
        self.last = 4 * cin
        feats.append(_conv_bn_silu(cin, self.last, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last, classes))

    def forward(self, x):
        self._reset()
        x = self.features(x)
        return self.classifier(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- HRNetV2 (segmentation)
SEG_MODELS = ("hrnet-w48",)
SEG_IGNORE = 255


def hr_width(width):
    """HRNet's width is its channel number C: 1 (the default) means 48, else an integer 2..64."""
    if width == 1:
        return 48
    if 2 <= width <= 64 and float(width) == int(width):
        return int(width)
    raise ValueError(f"hrnet width {width!r}: 1 (= 48) or an integer in [2, 64]")


class _SharedPool(nn.Module):
    """A later use of a level's DynOPool (its alpha is the level's; not in this state_dict)."""

    def __init__(self, pools, level):
        super().__init__()
        self._pools, self._level = pools, level  # a plain list: not registered

    def forward(self, x):
        return self._pools[self._level](x)


class _Down(nn.Sequential):
    """Into HRNet level `level`: conv 3x3 stride 2 + BN (+ ReLU) in the human design; DynOPool
    (the level's alpha) then the conv at stride 1 in the dynopool one (paper eq. 5.3). The
    DynOPool is child `pool` (the level's first use) or an unregistered shared reference, so the
    conv and BN keep the official indices 0, 1, 2."""

    def __init__(self, cin, cout, relu, variant, pools, level):
        super().__init__()
        self.level = level
        if variant == "dynopool":
            if pools[level] is None:
                pools[level] = DynOPool(2.0)
                self.pool = pools[level]
            else:
                self.shared = _SharedPool(pools, level)
        s = 1 if variant == "dynopool" else 2
        self.add_module("0", nn.Conv2d(cin, cout, 3, s, 1, bias=False))
        self.add_module("1", nn.BatchNorm2d(cout))
        if relu:
            self.add_module("2", nn.ReLU())

    def forward(self, x):
        for name, m in self.named_children():
            x = m(x)
        return x


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


class HRBottleneck(nn.Module):
    def __init__(self, cin, planes, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, bias=False),
                                        nn.BatchNorm2d(4 * planes)) if downsample else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _up(x, ref):
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class HRModule(nn.Module):
    """The official HighResolutionModule (4 BasicBlocks per branch, full fusion)."""

    def __init__(self, ch, variant, pools):
        super().__init__()
        nb = len(ch)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(c) for _ in range(4)]) for c in ch)
        fl = []
        for i in range(nb):
            row = []
            for j in range(nb):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False),
                                             nn.BatchNorm2d(ch[i])))
                elif j == i:
                    row.append(None)
                else:
                    row.append(nn.Sequential(*[
                        _Down(ch[j], ch[i] if k == i - j - 1 else ch[j], k != i - j - 1, variant,
                              pools, j + k + 2) for k in range(i - j)]))
            fl.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fl)

    def forward(self, x):
        x = [b(xi) for b, xi in zip(self.branches, x)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, len(x)):
                if j == i:
                    y = y + x[j]
                elif j > i:
                    y = y + _up(row[j](x[j]), x[i])
                else:
                    y = y + row[j](x[j])
            out.append(F.relu(y))
        return out


class HRNet(_Net):
    """HRNetV2 for segmentation with the official code's names (lib/models/seg_hrnet.py of
    HRNet-Semantic-Segmentation; docs/models.md, "HRNetV2"): stem, stage 1 of 4 Bottlenecks,
    stages 2-4 of 1/4/3 modules, the head on all branches up-sampled to the highest,
    scores up-sampled to the input (bilinear, align_corners=False). Stem and stage 1 are
    min(64, 4C) wide (64 for the official widths). The dynopool variant: one DynOPool per
    level (stem 1, stem 2, branches 1-3), shared by every stream that enters the level."""

    def __init__(self, variant, in_ch, size, classes, width):
        super().__init__()
        if variant not in ("human", "dynopool"):
            raise ValueError(f"hrnet: variant {variant!r} is not built")
        C = hr_width(width)
        st = min(64, 4 * C)
        self.in_size = size
        pools = [None] * 5
        self._pools = pools  # a plain list: the level DynOPools, registered where first used
        dyn = variant == "dynopool"
        if dyn:
            pools[0], pools[1] = DynOPool(2.0), DynOPool(2.0)
            self.pool1, self.pool2 = pools[0], pools[1]
        self.conv1 = nn.Conv2d(in_ch, st, 3, 1 if dyn else 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(st)
        self.conv2 = nn.Conv2d(st, st, 3, 1 if dyn else 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(st)
        self.layer1 = nn.Sequential(*[HRBottleneck(st if k == 0 else 4 * st, st, k == 0)
                                      for k in range(4)])
        ch = [C, 2 * C, 4 * C, 8 * C]
        self.ch = ch
        self.transition1 = nn.ModuleList([
            nn.Sequential(nn.Conv2d(4 * st, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C), nn.ReLU()),
            nn.Sequential(_Down(4 * st, ch[1], True, variant, pools, 2))])
        self.stage2 = nn.Sequential(HRModule(ch[:2], variant, pools))
        self.transition2 = nn.ModuleList([nn.Identity(), nn.Identity(),
                                          nn.Sequential(_Down(ch[1], ch[2], True, variant, pools, 3))])
        self.stage3 = nn.Sequential(*[HRModule(ch[:3], variant, pools) for _ in range(4)])
        self.transition3 = nn.ModuleList([nn.Identity()] * 3 + [
            nn.Sequential(_Down(ch[2], ch[3], True, variant, pools, 4))])
        self.stage4 = nn.Sequential(*[HRModule(ch, variant, pools) for _ in range(3)])
        cc = sum(ch)
        self.last_layer = nn.Sequential(nn.Conv2d(cc, cc, 1), nn.BatchNorm2d(cc), nn.ReLU(),
                                        nn.Conv2d(cc, classes, 1))

    def forward(self, x):
        inp = x
        if self.conv1.stride[0] == 1:
            x = self.pool1(x)
        x = F.relu(self.bn1(self.conv1(x)))
        if self.conv2.stride[0] == 1:
            x = self.pool2(x)
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        xs = [self.transition1[0](x), self.transition1[1](x)]
        xs = self.stage2(xs)
        xs = xs + [self.transition2[2](xs[-1])]
        xs = self.stage3(xs)
        xs = xs + [self.transition3[3](xs[-1])]
        xs = self.stage4(xs)
        y = torch.cat([xs[0]] + [_up(t, xs[0]) for t in xs[1:]], 1)
        return _up(self.last_layer(y), inp)


def seg_loss(logits, target):
    """The official criterion: CrossEntropyLoss(ignore_index=255), mean over counted pixels."""
    return F.cross_entropy(logits, target, ignore_index=SEG_IGNORE)


def _hr_walk(k, model, h, w):
    """HRNet's size chain: the five level sizes, then every conv and BN at its level's size
    (the head at level 2, branch 0's)."""
    levels = []
    for lv in range(5):
        conv = model.conv1 if lv == 0 else model.conv2 if lv == 1 else \
            (model.transition1[1][0] if lv == 2 else model.transition2[2][0]
             if lv == 3 else model.transition3[3][0])._modules["0"]
        if model._pools[lv] is not None:
            h, w = k.dynopool(model._pools[lv], h, w, conv.in_channels)
        else:
            h, w = k.strided(h, 3, 2, 1), k.strided(w, 3, 2, 1)
        k.stage(h, w)
        levels.append((h, w))

    def level_of(path):  # the index in levels of the module's output size (branch b: b + 1)
        if path.startswith(("conv1", "bn1")):
            return 0
        if path.startswith(("conv2", "bn2", "layer1", "transition1.0", "last_layer")):
            return 1
        parts = path.split(".")
        if parts[0].startswith("transition"):
            return int(parts[1]) + 1
        if parts[2] == "branches":
            return int(parts[3]) + 1
        i, j = int(parts[3]), int(parts[4])  # fuse_layers.i.j[.k]: at branch j's size, or
        if j > i:                            # branch j + k + 1's in a down-sampling chain
            return j + 1
        return j + int(parts[5]) + 2

    for path, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            lh, lw = levels[level_of(path)]
            if isinstance(m, nn.Conv2d):
                per = m.out_channels * (m.in_channels // m.groups * m.kernel_size[0] *
                                        m.kernel_size[1] + (m.bias is not None))
                k.layers.append(("conv", per, lh, lw))
            else:
                k.layers.append(("bn", 2 * m.num_features, lh, lw))
    return k


IMPLS = ("reference", "c")


def _impl_class(impl):
    if impl == "reference":
        return DynOPool
    if impl == "c":
        from .op import DynOPool2d  # loads libdynopool only when asked for
        return DynOPool2d
    raise ValueError(f"impl {impl!r}: one of {IMPLS}")


def use_impl(net, impl):
    """Switches every DynOPool layer of net to impl ("reference" or "c") in place; returns net.

    The layers keep their identity and their `alpha` Parameter (an optimizer holding it, and a
    ResNet block's pool shared by its main path and shortcut, stay as they are): the two classes
    hold the same state and differ only in the operator their forward calls."""
    cls = _impl_class(impl)
    for m in net.modules():
        if isinstance(m, DynOPool):
            m.__class__ = cls
    return net


def build(model, variant, in_ch=3, size=32, classes=10, width=1.0, impl="reference", drop=True):
    """drop=False: EfficientNet without dropout and stochastic depth (rates 0; the engine's
    dp_model_config.no_drop); the other models have neither."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: one of {VARIANTS}")
    if model in SEG_MODELS:
        net = HRNet(variant, in_ch, size, classes, width)
        return net if impl == "reference" else use_impl(net, impl)
    if model in ("efficientnet-b0", "efficientnet-b1"):
        p = 0.2 if drop else 0.0
        net = EfficientNet(variant, in_ch, size, classes, width,
                           1.0 if model == "efficientnet-b0" else 1.1, model, p, p)
        return net if impl == "reference" else use_impl(net, impl)
    cls = {"vgg16": VGG16, "resnet50": ResNet50, "mobilenetv2": MobileNetV2}.get(model)
    if cls is None:
        raise ValueError(f"model {model!r}: one of {MODELS}")
    net = cls(variant, in_ch, size, classes, width)
    return net if impl == "reference" else use_impl(net, impl)


# --------------------------------------------------------------------------- size walk
class _Walk:
    """Walks a model's layers (never its forward) with a size chain per axis.

    mode 'init': DynOPool/adaptor alphas at their initial values, sizes are constants;
    mode 'current': DynOPool alphas are the parameters (sizes carry gradient);
    adaptor sizes are always constants (their alphas get no complexity gradient)."""

    def __init__(self, model, mode, dtype):
        self.mode, self.dtype = mode, dtype
        self.layers = []  # (kind, macs per output pixel, H, W)
        self.stages = []  # (h, w) after every resizing stage
        self.sa_d = None
        self.dyn_out = 0  # DynOPool output elements per image (its own cost, informative)

    def const(self, v):
        return torch.tensor(float(v), dtype=self.dtype)

    @staticmethod
    def strided(h, k, s, p):
        """Integer output size of a k/s/p window; value exact, gradient 1/s."""
        n = (int(round(h.item())) + 2 * p - k) // s + 1
        v = h / s
        return v + (n - v).detach()

    def conv(self, m, h, w):
        (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
        h, w = self.strided(h, kh, sh, ph), self.strided(w, kw, sw, pw)
        per = m.out_channels * (m.in_channels // m.groups * kh * kw + (m.bias is not None))
        self.layers.append(("conv", per, h, w))
        return h, w

    def bn(self, m, h, w):
        self.layers.append(("bn", 2 * m.num_features, h, w))
        return h, w

    def se(self, m):
        """squeeze-and-excitation: its two 1x1 convolutions on 1x1 maps (docs/operator.md, "How
        MACs are counted"); no term of L_GMACs (their cost does not depend on the size)"""
        q, c = m.fc1.out_channels, m.fc1.in_channels
        self.layers.append(("se", q * (c + 1) + c * (q + 1), self.const(1), self.const(1)))

    def linear(self, m):
        self.layers.append(("linear", m.in_features * m.out_features, self.const(1), self.const(1)))

    def maxpool(self, m, h, w):
        k, s, p = m.kernel_size, m.stride, m.padding
        return self.strided(h, k, s, p), self.strided(w, k, s, p)

    def dynopool(self, m, h, w, channels):
        if self.mode == "init":
            ah, aw = self.const(m.init_alpha[0]), self.const(m.init_alpha[1])
        else:
            ah, aw = m.alpha[0].to(self.dtype), m.alpha[1].to(self.dtype)
        out = []
        for n, a in ((h, ah), (w, aw)):
            v = n / a
            if v.item() > 1.5:
                out.append(v + (torch.floor(v.detach() + 0.5) - v).detach())
            else:
                out.append(self.const(2.0))
        self.dyn_out += channels * out[0].item() * out[1].item()
        return out[0], out[1]

    def adaptor(self, m, h, w):
        if m.reduce is not None and isinstance(m.reduce, nn.Sequential):
            rh, rw = self.conv(m.reduce[0], h, w)
            self.bn(m.reduce[1], rh, rw)
        if self.sa_d is None:
            self.sa_d = (h.item(), w.item())
        s = m.scale(m.init_alpha if self.mode == "init" else None)
        self.sa_d = (self.sa_d[0] * s, self.sa_d[1] * s)
        return self.const(_sa_out(self.sa_d[0])), self.const(_sa_out(self.sa_d[1]))

    def stage(self, h, w):
        self.stages.append((int(round(h.item())), int(round(w.item()))))

    # a Sequential of conv / bn / activation / pooling modules, in order
    def seq(self, mods, h, w, c):
        for m in mods:
            if isinstance(m, nn.Conv2d):
                h, w = self.conv(m, h, w)
                c = m.out_channels
            elif isinstance(m, nn.BatchNorm2d):
                h, w = self.bn(m, h, w)
            elif isinstance(m, nn.MaxPool2d):
                h, w = self.maxpool(m, h, w)
                self.stage(h, w)
            elif isinstance(m, DynOPool):
                h, w = self.dynopool(m, h, w, c)
                self.stage(h, w)
            elif isinstance(m, ShapeAdaptor):
                h, w = self.adaptor(m, h, w)
                self.stage(h, w)
            elif isinstance(m, nn.Sequential):
                h, w, c = self.seq(m, h, w, c)
            elif isinstance(m, SqueezeExcitation):
                self.se(m)
            elif isinstance(m, (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Identity)):
                pass
            else:
                raise TypeError(f"size walk: unexpected module {type(m).__name__}")
        return h, w, c


def _walk(model, h, w, mode, dtype):
    k = _Walk(model, mode, dtype)
    h, w = k.const(h), k.const(w)
    if isinstance(model, VGG16):
        h, w, c = k.seq(model.features, h, w, None)
        k.linear(model.classifier)
    elif isinstance(model, ResNet50):
        h, w = k.conv(model.conv1, h, w)
        h, w = k.bn(model.bn1, h, w)
        c = model.conv1.out_channels
        if model.maxpool is not None:  # conv/2 + pool/2 is one resizing stage
            h, w = k.maxpool(model.maxpool, h, w)
            k.stage(h, w)
        elif model.pool is not None:
            h, w = k.dynopool(model.pool, h, w, c)
            k.stage(h, w)
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for blk in layer:
                hi, wi = h, w
                h, w = k.conv(blk.conv1, h, w)
                h, w = k.bn(blk.bn1, h, w)
                h, w = k.conv(blk.conv2, h, w)
                h, w = k.bn(blk.bn2, h, w)
                if blk.pool is not None:
                    h, w = k.dynopool(blk.pool, h, w, blk.conv2.out_channels)
                h, w = k.conv(blk.conv3, h, w)
                h, w = k.bn(blk.bn3, h, w)
                if blk.downsample is not None:  # shortcut: its own sizes, not carried on
                    sh, sw = k.conv(blk.downsample[0], hi, wi)
                    k.bn(blk.downsample[1], sh, sw)
                    if blk.pool is not None:
                        k.dynopool(blk.pool, sh, sw, blk.downsample[0].out_channels)
                if blk.sa is not None:
                    h, w = k.adaptor(blk.sa, h, w)
                if blk.stride != 1:
                    k.stage(h, w)
        k.linear(model.fc)
    elif isinstance(model, MobileNetV2):
        h, w, c = k.seq(model.features[0], h, w, None)
        if model.features[0][0].stride[0] != 1:
            k.stage(h, w)
        for blk in model.features[1:-1]:
            h, w, c = k.seq(blk.conv, h, w, c)  # DynOPool / adaptor mark their own stage
            if blk.stride != 1 and not any(isinstance(m, (DynOPool, ShapeAdaptor))
                                           for m in blk.modules()):
                k.stage(h, w)
        h, w, c = k.seq(model.features[-1], h, w, c)
        k.linear(model.classifier[1])
    elif isinstance(model, HRNet):
        _hr_walk(k, model, h, w)
    elif isinstance(model, EfficientNet):
        h, w, c = k.seq(model.features[0], h, w, None)
        if model.features[0][0].stride[0] != 1:
            k.stage(h, w)
        for stage in model.features[1:-1]:
            for blk in stage:
                h, w, c = k.seq(blk.block, h, w, c)  # DynOPool / adaptor mark their own stage
                if blk.stride != 1 and not any(isinstance(m, (DynOPool, ShapeAdaptor))
                                               for m in blk.modules()):
                    k.stage(h, w)
        h, w, c = k.seq(model.features[-1], h, w, c)
        k.linear(model.classifier[1])
    else:
        raise TypeError(type(model).__name__)
    return k


def _dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float64


def complexity_gmacs(model, x_shape):
    """L_GMACs = sum over convs and linears of (H_t W_t)/(H_0 W_0) * GMACs_0 (paper, section
    4.2, eq. 4.7; docs/operator.md, "The complexity loss").

    GMACs_0: the layer's MACs per image at the initial alphas (thop rule), in 1e9.
    H_t: the straight-through size chain at the current alphas; gradient only to DynOPool alphas."""
    h, w = x_shape[-2], x_shape[-1]
    dt = _dtype(model)
    w0 = _walk(model, h, w, "init", dt)
    wt = _walk(model, h, w, "current", dt)
    assert len(w0.layers) == len(wt.layers)
    total = torch.zeros((), dtype=dt)
    for (kind, per, h0, w0_), (_, _, ht, wt_) in zip(w0.layers, wt.layers):
        if kind in ("bn", "se"):  # only convolutions and linears (docs/operator.md)
            continue
        g0 = per * h0.item() * w0_.item() / 1e9
        total = total + g0 * (ht * wt_) / (h0.item() * w0_.item())
    return total


def gmacs_info(model, in_ch=None, size=None):
    """(GMACs per image by the thop rule INCLUDING batch norm 2*C*H*W, at the current alphas;
    [(h, w) after every resizing stage, in forward order])."""
    size = model.in_size if size is None else size
    if in_ch is not None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == in_ch, (first.in_channels, in_ch)
    k = _walk(model, size, size, "current", torch.float64)
    total = sum(per * h.item() * w.item() for _, per, h, w in k.layers) / 1e9
    return total, k.stages


def dynopool_out_elements(model, size=None):
    """DynOPool output elements per image (its own cost: 16 MACs each, paper Table 5.5)."""
    size = model.in_size if size is None else size
    return _walk(model, size, size, "current", torch.float64).dyn_out


def alpha_names(model):
    return [n for n, _ in model.named_parameters() if n.endswith("alpha")]


# --------------------------------------------------------------------------- self-test
PAPER = {  # model: ((32x32/100 GMACs, sizes), (224x224/1000 GMACs, sizes))
    "vgg16": ((0.31, [16, 8, 4, 2]), (15.39, [112, 56, 28, 14, 7])),
    "resnet50": ((1.31, [16, 8, 4]), (4.11, [56, 28, 14, 7])),
    "mobilenetv2": ((0.09, [16, 8, 4]), (0.31, [112, 56, 28, 14, 7])),
}


def _check():
    ok = True
    torch.manual_seed(0)
    print("human models, GMACs per image (thop rule incl. BN) and sizes after each resizing stage")
    for m, cases in PAPER.items():
        for (size, classes), (paper, psizes) in zip(((32, 100), (224, 1000)), cases):
            net = build(m, "human", 3, size, classes, 1.0)
            g, sizes = gmacs_info(net, 3, size)
            good = abs(g - paper) <= 0.01 and [s[0] for s in sizes] == psizes and \
                all(s[0] == s[1] for s in sizes)
            ok &= good
            print(f"  {m:12s} {size:3d}x{size:<3d} C={classes:<4d} {g:8.4f} G (paper {paper:5.2f})"
                  f"  sizes {[list(s) for s in sizes]}  {'ok' if good else 'FAIL'}")
    print("complexity loss at the initial alphas = conv + linear GMACs; names; forward")
    want_names = {
        ("vgg16", "dynopool"): ["features.6.alpha", "features.13.alpha", "features.23.alpha"],
        ("vgg16", "shape-adaptor"): ["features.6.alpha"],
        ("resnet50", "dynopool"): ["layer2.0.pool.alpha", "layer4.0.pool.alpha"],
        ("resnet50", "shape-adaptor"): ["layer2.0.sa.alpha", "layer3.0.sa.reduce.0.weight",
                                        "layer3.0.sa.reduce.1.running_var"],
        ("mobilenetv2", "dynopool"): ["features.4.conv.1.3.alpha", "features.14.conv.1.3.alpha"],
        ("mobilenetv2", "shape-adaptor"): ["features.7.conv.1.3.alpha"],
        ("efficientnet-b0", "dynopool"): ["features.3.0.block.1.3.alpha",
                                          "features.6.0.block.1.3.alpha"],
        ("efficientnet-b0", "shape-adaptor"): ["features.4.0.block.1.3.alpha",
                                               "features.6.0.block.2.fc1.bias"],
    }
    for m in MODELS:
        for v in VARIANTS:
            for size in (32, 224):
                net = build(m, v, 3, size, 10, 1.0 if size == 224 else 0.25).double()
                lg = complexity_gmacs(net, (1, 3, size, size)).item()
                k = _walk(net, size, size, "init", torch.float64)
                direct = sum(per * h.item() * w.item() for kind, per, h, w in k.layers
                             if kind not in ("bn", "se")) / 1e9
                g, sizes = gmacs_info(net, 3, size)
                good = abs(lg - direct) <= 1e-12 * max(1, direct)
                sd = net.state_dict()
                for name in want_names.get((m, v), []):
                    if size == 32 and name not in sd:
                        print(f"    missing name {name}")
                        good = False
                ok &= good
                print(f"  {m:12s} {v:14s} {size:3d}  L_GMACs(init) {lg:9.4f}  GMACs+BN {g:9.4f}"
                      f"  sizes {[s[0] for s in sizes]}  {'ok' if good else 'FAIL'}")
    # a small float64 forward/backward of every variant, and VGG dynopool(alpha 2) == human
    for m in MODELS:
        nets = {}
        for v in VARIANTS:
            torch.manual_seed(1)
            net = build(m, v, 3, 32, 5, 0.125, drop=False).double()
            x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
            y = net(x)
            y2 = net(x)  # the adaptors' running size is reset per forward
            assert torch.equal(y, y2)
            loss = F.cross_entropy(y, torch.tensor([0, 3])) + 0.5 * complexity_gmacs(net, x.shape)
            loss.backward()
            nets[v] = (net, x, y)
            if v == "dynopool":
                assert all(p.grad is not None for n, p in net.named_parameters()
                           if n.endswith("alpha"))
        if m == "vgg16":
            hn, x, yh = nets["human"]
            dn = build(m, "dynopool", 3, 32, 5, 0.125).double()
            dn.load_state_dict(hn.state_dict(), strict=False)
            same = torch.equal(dn(x), yh)
            ok &= same
            print(f"  vgg16 dynopool at alpha 2 == human (max pooling): {same}")
    # complexity gradient by hand: VGG dynopool at 32, the last pool
    net = build("vgg16", "dynopool", 3, 32, 10, 1.0).double()
    lg = complexity_gmacs(net, (1, 3, 32, 32))
    lg.backward()
    # after the last pool (features.33): 3 convs 512->512 at 2x2 and the linear (ratio 1).
    per = 512 * (512 * 9 + 1)
    g0 = 3 * per * 4 / 1e9
    # d/dalpha_h of (H W)/(H0 W0): H = 4/alpha -> dH/dalpha = -4/4 = -1, W/W0 = 1, H0 = 2
    want = g0 * (-1.0) / 2
    got = net.features[33].alpha.grad[0].item()
    good = abs(got - want) <= 1e-12
    ok &= good
    print(f"  dL/dalpha_h of VGG's last pool {got:.6e} (by hand {want:.6e})  "
          f"{'ok' if good else 'FAIL'}")
    print("ALL OK" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="run the self-test")
    ap.add_argument("--model", choices=MODELS)
    ap.add_argument("--variant", choices=VARIANTS, default="human")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--width", type=float, default=1.0)
    a = ap.parse_args(argv)
    if a.model:
        net = build(a.model, a.variant, 3, a.size, a.classes, a.width)
        g, s = gmacs_info(net, 3, a.size)
        print(f"{a.model} {a.variant} {a.size}: {g:.4f} GMACs, sizes {s}, "
              f"L_GMACs {complexity_gmacs(net, (1, 3, a.size, a.size)).item():.4f}, "
              f"{sum(p.numel() for p in net.parameters())} parameters")
        for k, v in net.state_dict().items():
            print(f"  {k} {list(v.shape)}")
        return 0
    return _check()


if __name__ == "__main__":
    sys.exit(main())
