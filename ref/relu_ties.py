#!/usr/bin/env python3
# For a model golden file (tests/data/model_*.safetensors): the ReLU / ReLU6 inputs closest
# to a kink (0, or 6) in the float64 reference.  Values within ~1e-5 can land on the other
# side in any float32 run, which is why tests/test_models.c holds ResNet-50 and MobileNetV2 to
# a looser tolerance than VGG-16.   /usr/bin/python3 ref/relu_ties.py FILE
import sys, torch; sys.path.insert(0,'ref')
from make_model_golden import read_safetensors
import models
f=sys.argv[1]
t,m,order=read_safetensors(f)
net=models.build(m['model'],m['variant'],int(m['in_ch']),int(m['size']),int(m['classes']),float(m['width'])).double()
sd={k[6:]:torch.from_numpy(v.copy()) for k,v in t.items() if k.startswith('param.')}
net.load_state_dict(sd); net.train()
res=[]
def hook(mod,inp,out,name=None):
    x=inp[0].detach(); res.append((name, float(x.abs().min()), float(((x-6).abs()).min()) if isinstance(mod,torch.nn.ReLU6) else 99))
for n,mod in net.named_modules():
    if isinstance(mod,(torch.nn.ReLU,torch.nn.ReLU6)): mod.register_forward_hook(lambda mo,i,o,n=n: hook(mo,i,o,n))
net(torch.from_numpy(t['input'].copy()).double())
for r in sorted(res,key=lambda r:min(r[1],r[2]))[:8]: print(r)
