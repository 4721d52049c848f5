#!/usr/bin/python3
"""Multiply-accumulates of torchvision's efficientnet_b0 at 224 and efficientnet_b1 at 240
(1000 classes, one image), counted per module with forward hooks: the terms of our rule
(docs/operator.md, "How MACs are counted": convolutions with their bias, SE's 1x1
convolutions, batch norm as 2 C H W, the classifier) and, apart, one operation per element
for what that rule counts as 0 (SiLU, SE's sigmoid and scaling, the average pools).
docs/models.md, "EfficientNet-B0 and B1", quotes its output.

    /usr/bin/python3 tools/effnet_macs.py
"""
import torch, torchvision, sys
torch.set_num_threads(1)
from torchvision.ops.misc import SqueezeExcitation
def count(name, size):
    m = getattr(torchvision.models, name)().eval()
    acc = {}
    def add(k, v): acc[k] = acc.get(k, 0) + v
    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            cin = inp[0].shape[1]
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs = out.numel() * (cin // mod.groups * k + (1 if mod.bias is not None else 0))
            add("conv (SE fc1/fc2)" if out.shape[-1] == 1 else "conv", macs)
        elif isinstance(mod, torch.nn.BatchNorm2d): add("batch norm 2CHW", 2 * out.numel())
        elif isinstance(mod, torch.nn.Linear): add("linear", mod.in_features * mod.out_features)
        elif isinstance(mod, torch.nn.SiLU): add("SiLU (1 per element)", out.numel())
        elif isinstance(mod, torch.nn.Sigmoid): add("SE sigmoid (1 per element)", out.numel())
        elif isinstance(mod, SqueezeExcitation): add("SE scale x*s (1 per element)", out.numel())
        elif isinstance(mod, torch.nn.AdaptiveAvgPool2d): add("avg pools (1 per input element)", inp[0].numel())
    for mod in m.modules(): mod.register_forward_hook(hook)
    with torch.no_grad(): m(torch.zeros(1, 3, size, size))
    print(f"{name} at {size}:")
    for k, v in acc.items(): print(f"  {k:34s} {v/1e9:.4f} G")
    base = sum(v for k, v in acc.items() if k in ("conv", "conv (SE fc1/fc2)", "batch norm 2CHW", "linear"))
    print(f"  {'ours (conv + SE convs + BN + linear)':34s} {base/1e9:.4f} G")
    print(f"  {'+ everything else above':34s} {sum(acc.values())/1e9:.4f} G")
count("efficientnet_b0", 224); count("efficientnet_b1", 240)
