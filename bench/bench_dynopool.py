#!/usr/bin/python3
"""Forward+backward of the C DynOPool beside PyTorch, measured in one run on the
same threads, with the ratios the operator issue targets.

    cmake -S . -B build && cmake --build build -j2
    /usr/bin/python3 bench/bench_dynopool.py [--threads 2] [--reps 20] [--build build]

For each shape and alpha it times (median of REPS after a warm-up):
  C        build/bench_dynopool: dp_dynopool_forward + dp_dynopool_backward
  maxpool  torch max_pool2d(2, 2) forward + backward on the same input (float32)
  ref      the PyTorch DynOPool composite of ref/dynopool_ref.py, in float32
  gs       the same operator as four grid_sample calls and a max (how one would
           write it in PyTorch; for context, not a target)
and prints C/maxpool (target <= 2) and ref/C (target >= 10).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))


def timed(fn, reps):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ref-reps", type=int, default=3, help="reps of the slow composite")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import torch.nn.functional as F
    import dynopool_ref as ref
    torch.set_num_threads(args.threads)
    exe = os.path.join(args.build, "bench_dynopool")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: build first (cmake -S . -B build && cmake --build build)")

    shapes = [(128, 64, 32, 32), (128, 256, 8, 8)]
    alphas = [(2.0, 2.0), (1.7, 2.6)]
    rows = []
    for (n, c, h, w) in shapes:
        x = torch.rand(n, c, h, w, dtype=torch.float32)

        def mp():
            xi = x.detach().requires_grad_(True)
            y = F.max_pool2d(xi, 2, 2)
            y.backward(torch.ones_like(y))
        t_mp = timed(mp, args.reps)
        for (ah, aw) in alphas:
            out = subprocess.run([exe, str(n), str(c), str(h), str(w), str(ah), str(aw),
                                  str(args.reps)], check=True, capture_output=True, text=True,
                                 env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
            cres = json.loads(out.stdout)
            a_h = torch.tensor(ref.f32(ah), dtype=torch.float64)
            a_w = torch.tensor(ref.f32(aw), dtype=torch.float64)

            def composite():
                xi = x.detach().requires_grad_(True)
                ahh = a_h.clone().requires_grad_(True)
                aww = a_w.clone().requires_grad_(True)
                y = ref.dynopool(xi, ahh, aww, 0)
                y.backward(torch.ones_like(y))
            t_ref = timed(composite, args.ref_reps)
            ho, wo = cres["out"]

            def grid_composite():
                xi = x.detach().requires_grad_(True)
                ys = []
                for a in range(2):
                    for b in range(2):
                        gy = (2 * torch.arange(ho, dtype=torch.float32) + 0.5 + a) / ho - 1
                        gx = (2 * torch.arange(wo, dtype=torch.float32) + 0.5 + b) / wo - 1
                        g = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)
                        ys.append(F.grid_sample(xi, g.expand(n, ho, wo, 2), mode="bilinear",
                                                padding_mode="border", align_corners=False))
                y = torch.stack(ys).max(dim=0).values
                y.backward(torch.ones_like(y))
            t_gs = timed(grid_composite, args.ref_reps)
            row = dict(shape=[n, c, h, w], alpha=[ah, aw], out=cres["out"], threads=args.threads,
                       c_fwd_ms=cres["forward_ms"], c_bwd_ms=cres["backward_ms"],
                       c_ms=cres["total_ms"], torch_maxpool_ms=t_mp, torch_ref_ms=t_ref,
                       torch_grid_sample_ms=t_gs,
                       c_over_maxpool=cres["total_ms"] / t_mp, ref_over_c=t_ref / cres["total_ms"])
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)

    if not args.json:
        print(f"DynOPool forward+backward, {args.threads} threads, median of {args.reps} "
              f"(composite: {args.ref_reps}); torch {torch.__version__}")
        print(f"{'input (NCHW)':18s} {'alpha':11s} {'output':7s} {'C fwd':>7s} {'C bwd':>7s} "
              f"{'C ms':>7s} {'maxpool':>8s} {'ref ms':>8s} {'gs ms':>8s} {'C/maxpool':>10s} {'ref/C':>7s}")
        for r in rows:
            print(f"{'x'.join(map(str, r['shape'])):18s} {r['alpha'][0]:g},{r['alpha'][1]:<7g} "
                  f"{r['out'][0]:>3d}x{r['out'][1]:<3d} {r['c_fwd_ms']:7.2f} {r['c_bwd_ms']:7.2f} "
                  f"{r['c_ms']:7.2f} {r['torch_maxpool_ms']:8.2f} {r['torch_ref_ms']:8.1f} "
                  f"{r['torch_grid_sample_ms']:8.1f} "
                  f"{r['c_over_maxpool']:10.2f} {r['ref_over_c']:7.1f}")
        print("targets: C/maxpool <= 2 (maxpool = torch max_pool2d 2x2/2 fwd+bwd on the same "
              "input), ref/C >= 10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
