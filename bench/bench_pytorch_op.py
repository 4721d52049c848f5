#!/usr/bin/python3
"""DynOPool inside PyTorch: forward+backward of dynopool.DynOPool2d (the C operator through
ctypes, python/dynopool) against the pure-PyTorch composite (dynopool.reference, the operator
written with index_select/lerp/where and autograd, in float32), both timed in this run on the
same threads; prints the ratio composite / DynOPool2d (the issue's target: >= 10).

    cmake -S . -B build && cmake --build build -j2
    PYTHONPATH=python /usr/bin/python3 bench/bench_pytorch_op.py [--threads 2] [--reps 20]
    PYTHONPATH=python /usr/bin/python3 bench/bench_pytorch_op.py --quick    # smoke test: tiny
                                                                            # sizes, 1 repetition

Each measurement is the median of REPS calls after a warm-up, of: a fresh leaf x and alpha,
y = pool(x), y.backward(dy) (dy fixed), so both sides pay PyTorch's autograd bookkeeping and
the C side also its ctypes calls. The library is found as dynopool._lib says ($DYNOPOOL_LIB,
build/, ...).
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def timed(fn, reps, warm):
    for _ in range(warm):
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
    ap.add_argument("--ref-reps", type=int, default=3, help="repetitions of the slow composite")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: tiny shapes, one repetition (timings mean nothing)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import dynopool
    from dynopool import reference as R
    torch.set_num_threads(args.threads)
    dynopool.set_threads(args.threads)

    if args.quick:
        shapes, reps, ref_reps, warm = [(2, 3, 8, 8)], 1, 1, 0
    else:
        shapes, reps, ref_reps, warm = [(128, 64, 32, 32), (128, 256, 8, 8)], args.reps, args.ref_reps, 3
    alphas = [(2.0, 2.0), (1.7, 2.6)]
    print(f"DynOPool forward+backward in PyTorch, {args.threads} threads, median of {reps} "
          f"(composite: {ref_reps}); torch {torch.__version__}, {dynopool.library().path}")
    print(f"{'input (NCHW)':18s} {'alpha':9s} {'output':>7s} {'DynOPool2d ms':>14s} "
          f"{'composite ms':>13s} {'composite/DynOPool2d':>21s}")
    ratios = []
    for (n, c, h, w) in shapes:
        x = torch.rand(n, c, h, w, dtype=torch.float32)
        for (ah, aw) in alphas:
            ah, aw = R.f32(ah), R.f32(aw)
            ho, wo = dynopool.out_size(h, ah), dynopool.out_size(w, aw)
            dy = torch.rand(n, c, ho, wo, dtype=torch.float32)
            pool = dynopool.DynOPool2d((ah, aw))

            def c_op():
                xi = x.detach().requires_grad_(True)
                pool.alpha.grad = None
                pool(xi).backward(dy)

            def composite():
                xi = x.detach().requires_grad_(True)
                a_h = torch.tensor(ah, dtype=torch.float64, requires_grad=True)
                a_w = torch.tensor(aw, dtype=torch.float64, requires_grad=True)
                R.dynopool(xi, a_h, a_w, 0).backward(dy)

            t_c = timed(c_op, reps, warm)
            t_r = timed(composite, ref_reps, min(warm, 1))
            ratios.append(t_r / t_c)
            print(f"{'x'.join(map(str, (n, c, h, w))):18s} {f'{ah:g},{aw:g}':9s} "
                  f"{f'{ho}x{wo}':>7s} {t_c:14.2f} {t_r:13.1f} {t_r / t_c:21.1f}")
    print(f"composite/DynOPool2d: {min(ratios):.1f} to {max(ratios):.1f} (target >= 10)"
          + ("  [--quick: a smoke test, not a measurement]" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
