#!/usr/bin/python3
"""Whole-model training throughput and memory: PyTorch (ref/models.py, float32; torchvision's own
EfficientNet for the human variant at width 1 above 64 px, where it is the same network) against
`build/dynopool bench`, one table row per configuration.

    cmake -S . -B build && cmake --build build -j2
    /usr/bin/python3 bench/bench_models.py                       # the default configurations
    /usr/bin/python3 bench/bench_models.py --models vgg16 --variants human,dynopool \\
        --batch 64 --steps 10 --json results.json
    /usr/bin/python3 bench/bench_models.py --batch 8 --steps 2 --only-torch   # smoke test
    /usr/bin/python3 bench/bench_models.py --precisions fp32,bf16          # mixed precision too
    /usr/bin/python3 bench/bench_models.py --models hrnet-w48 --variants human,dynopool \\
        --width 18 --size 64 --classes 11 --batch 8     # HRNet-W18 segmentation (per-pixel labels)

A training step is: forward (training mode), cross-entropy (per pixel, ignore label 255, for
the segmentation network hrnet-w48, whose --width is HRNet's C: 18 for W18) (+ lambda * L_GMACs
for dynopool), backward, SGD step (Nesterov momentum 0.9, weight decay 5e-4 on the weights; alphas in their own
group with a tenth of the learning rate and no weight decay). After --warmup steps, each of
--steps steps is timed; images/s = batch / median step time. Peak RSS is ru_maxrss of a fresh
process per configuration (PyTorch runs in a child process for exactly that reason).

PyTorch's DynOPool here is a fast float32 composite (separable bilinear gathers + a 4-way max,
straight-through size gradient), not the float64 reference: it is only for timing.

The C side is `build/dynopool bench --model M --pool V --input S --classes K --batch B
--steps N --width W --json`, whose JSON has `images_per_s` and `peak_rss_mb`; both sides get
OMP_NUM_THREADS = --threads and PyTorch torch.set_num_threads(--threads).
Run one benchmark at a time: two at once share the cores and both numbers are wrong.

--precisions fp32,bf16 adds a bf16 row under each fp32 one: ours with `--precision bf16` (bf16
convolutions and classifier, float32 everything else: docs/engine.md, "Mixed precision"),
PyTorch with the forward and the loss under torch.autocast('cpu', dtype=torch.bfloat16) (the
complexity loss outside it, in float32), the optimizer in float32 on both sides.  The "vs fp32"
column is each side's bf16 images/s over its own fp32.  The header names the CPU and whether it
has native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo); without it oneDNN emulates bf16 on
AVX-512 (slower than fp32) and has none below, where our bf16 rows fail with oneDNN's reason.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_CONFIGS = [("vgg16", "human"), ("vgg16", "dynopool"), ("resnet50", "human"),
                   ("mobilenetv2", "human")]


# --------------------------------------------------------------------------- PyTorch worker
def fast_dynopool(x, alpha):
    """Float32 DynOPool (max aggregation) for timing: the reference's query points and
    straight-through size gradient, sampled separably (rows, then columns) with index_select."""
    import dynopool_ref as ref
    n, c, h, w = x.shape
    taps = []
    for size, a in ((h, alpha[0]), (w, alpha[1])):
        s_int = ref.out_size(size, a.item())
        u = ref.query_coords(size, ref.ste_size(size, a), s_int)  # (s_int, 2), grad to alpha
        i0, i1, t = ref.axis_taps(u, size)
        taps.append((s_int, i0.reshape(-1), i1.reshape(-1), t.reshape(-1).to(x.dtype)))
    (ho, r0, r1, tu), (wo, c0, c1, tv) = taps
    xa, xb = x.index_select(2, r0), x.index_select(2, r1)           # N, C, 2 Ho, W
    rows = xa + tu[:, None] * (xb - xa)
    ya, yb = rows.index_select(3, c0), rows.index_select(3, c1)     # N, C, 2 Ho, 2 Wo
    q = ya + tv * (yb - ya)
    return q.view(n, c, ho, 2, wo, 2).amax(dim=(3, 5))


def worker(args):
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import resource
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(ROOT, "ref"))
    import models
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models.DynOPool.impl = staticmethod(fast_dynopool)
    if args.model.startswith("efficientnet") and args.variant == "human" and args.width == 1 \
            and args.size > 64:
        # torchvision's own model, the same network as ours above 64 px (below, ours keeps the
        # stem and the first down-sampling block at stride 1: docs/models.md)
        import torchvision
        net = getattr(torchvision.models, args.model.replace("-", "_"))(num_classes=args.classes)
    else:
        net = models.build(args.model, args.variant, 3, args.size, args.classes, args.width)
    # in-place activations, as torchvision's models use them: the fair memory baseline
    for mod in net.modules():
        if isinstance(mod, (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.SiLU)):
            mod.inplace = True
    net.train()
    alphas = [p for n, p in net.named_parameters() if n.endswith("alpha")]
    ids = {id(p) for p in alphas}
    opt = torch.optim.SGD([
        {"params": [p for p in net.parameters() if id(p) not in ids], "weight_decay": 5e-4},
        {"params": alphas, "lr": args.lr * 0.1, "weight_decay": 0.0},
    ], lr=args.lr, momentum=0.9, nesterov=True)
    x = torch.randn(args.batch, 3, args.size, args.size)
    seg = args.model in models.SEG_MODELS  # HRNet: one label per pixel, scores at the input's size
    y = torch.randint(0, args.classes, (args.batch, args.size, args.size) if seg else (args.batch,))
    lam = args.lam if args.variant == "dynopool" else 0.0
    bf16 = args.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y, ignore_index=255) if seg else F.cross_entropy(net(x), y)
        loss = loss.float()
        if lam:
            loss = loss + lam * models.complexity_gmacs(net, x.shape)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = dict(images_per_s=args.batch / med, step_ms=1e3 * med,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               threads=args.threads, torch=torch.__version__, precision=args.precision)
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- driver
def run_torch(args, model, variant, precision):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model,
           "--variant", variant, "--precision", precision, "--batch", str(args.batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--size", str(args.size), "--classes",
           str(args.classes), "--width", str(args.width), "--threads", str(args.threads),
           "--lr", str(args.lr), "--lam", str(args.lam)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_ours(args, model, variant, precision):
    exe = os.path.join(args.build, "dynopool")
    if not os.path.exists(exe):
        return {"error": f"{exe} not found"}
    cmd = [exe, "bench", "--model", model, "--pool", variant, "--input", str(args.size),
           "--classes", str(args.classes), "--batch", str(args.batch), "--steps",
           str(args.steps), "--width", f"{args.width:g}", "--json", "--precision", precision]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: " +
                (p.stderr.strip().splitlines() or ["(no message)"])[-1]}
    for line in reversed(p.stdout.strip().splitlines()):  # the JSON object, wherever it is
        try:
            return json.loads(line)
        except ValueError:
            continue
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": "no JSON in the output"}


def cpu_line():
    """The CPU's model name and whether it has native bf16, from /proc/cpuinfo."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and name == "unknown CPU":
                    name = v.strip()
                elif k.strip() == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    native = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (f"CPU: {name}; native bf16: {'yes (' + ', '.join(native) + ')' if native else 'no'}"
            + (f"; ONEDNN_MAX_CPU_ISA={isa}" if isa else ""))


def fmt(v, spec):
    width = int(spec.split(".")[0] or 0)
    return format(v, spec) if isinstance(v, (int, float)) else "-".rjust(width)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma list (with --variants: every combination)")
    ap.add_argument("--variants", help="comma list of human, dynopool, shape-adaptor")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--lam", type=float, default=0.5, help="lambda of L_GMACs (dynopool only)")
    ap.add_argument("--precisions", default="fp32",
                    help="comma list of fp32, bf16 (ours --precision; PyTorch bf16 autocast)")
    ap.add_argument("--only-torch", action="store_true", help="skip build/dynopool")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    if args.models or args.variants:
        ms = (args.models or "vgg16,resnet50,mobilenetv2").split(",")
        vs = (args.variants or "human").split(",")
        configs = [(m, v) for m in ms for v in vs]
    else:
        configs = DEFAULT_CONFIGS
    precisions = args.precisions.split(",")
    if any(p not in ("fp32", "bf16") for p in precisions):
        ap.error(f"--precisions: expected fp32 and/or bf16, got '{args.precisions}'")
    print(f"training step, {args.size}x{args.size}x3, {args.classes} classes, batch {args.batch}, "
          f"width {args.width:g}, {args.threads} threads, median of {args.steps} after "
          f"{args.warmup} warm-up")
    print(cpu_line())
    hdr = (f"{'model':12s} {'variant':14s} {'prec':4s} {'torch img/s':>11s} {'ours img/s':>10s} "
           f"{'ours/torch':>10s} {'torch MB':>9s} {'ours MB':>8s} {'ours/torch':>10s}"
           + (f" {'torch vs fp32':>13s} {'ours vs fp32':>12s}" if len(precisions) > 1 else ""))
    print(hdr)
    rows = []
    for model, variant in configs:
        base = {}
        for prec in precisions:
            t = run_torch(args, model, variant, prec)
            o = {} if args.only_torch else run_ours(args, model, variant, prec)
            ti, oi = t.get("images_per_s"), o.get("images_per_s")
            tm, om = t.get("peak_rss_mb"), o.get("peak_rss_mb")
            r_speed = oi / ti if ti and oi else None
            r_mem = om / tm if tm and om else None
            if prec == "fp32":
                base = dict(torch=ti, ours=oi)
            tv = ti / base["torch"] if prec != "fp32" and ti and base.get("torch") else None
            ov = oi / base["ours"] if prec != "fp32" and oi and base.get("ours") else None
            row = dict(model=model, variant=variant, precision=prec, size=args.size,
                       classes=args.classes, batch=args.batch, width=args.width,
                       threads=args.threads, steps=args.steps, cpu=cpu_line(), torch=t, ours=o,
                       speed_ratio=r_speed, memory_ratio=r_mem, torch_vs_fp32=tv, ours_vs_fp32=ov)
            rows.append(row)
            print(f"{model:12s} {variant:14s} {prec:4s} {fmt(ti, '11.1f')} {fmt(oi, '10.1f')} "
                  f"{fmt(r_speed, '10.2f')} {fmt(tm, '9.0f')} {fmt(om, '8.0f')} "
                  f"{fmt(r_mem, '10.2f')}"
                  + (f" {fmt(tv, '13.2f')} {fmt(ov, '12.2f')}" if len(precisions) > 1 else ""),
                  flush=True)
            for side, res in (("torch", t), ("ours", o)):
                if "error" in res:
                    print(f"    {side}: {res['error']}")
    if args.json:
        text = json.dumps(rows, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
