#!/usr/bin/python3
"""dist_model.py — the step-time model of docs/distributed.md ("A model of the
step time"): predicted speed-up of data-parallel `dynopool train` on N nodes over
one node, at a fixed global batch, from a measurements JSON (default
bench/dist_measurements.json).  Prints a Markdown table; cells whose inputs are
still null print "to be measured".

    /usr/bin/python3 bench/dist_model.py [MEASUREMENTS.json] [--nodes 8,64,256]
                                         [--batches 256,1024] [--gbit 10,100]

Model, per training step of a global batch B on N nodes (b = B / N images each):
    compute    T_c(b)  = b * s_per_image                (one node's measured time per
                                                          image; per-node batches below
                                                          the measured one run slower,
                                                          so this is optimistic there)
    allreduce  T_ar    = 2 (N-1)/N * 4 P / (link * eff) + 2 (N-1) * k * latency
               (a ring: each node sends and receives 2 (N-1)/N of the 4 P gradient
               bytes; k = ceil(4 P / bucket) buckets, each 2 (N-1) latency-bound steps)
    overlap    the buckets of all but the first layers sum while the backward pass
               (backward_share of T_c) still runs: exposed = max(T_ar - backward_share
               * T_c, T_ar / k), and without overlap exposed = T_ar
    speed-up   S(N) = T_c(B) / (T_c(B / N) + exposed)
"""
import json
import math
import os
import sys


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    files = [a for a in sys.argv[1:] if a.endswith(".json")]
    path = files[0] if files else os.path.join(here, "dist_measurements.json")
    with open(path) as f:
        m = json.load(f)
    nodes = [int(v) for v in arg("--nodes", "8,64,256").split(",")]
    batches = [int(v) for v in arg("--batches", "256,1024").split(",")]
    gbits = [float(v) for v in arg("--gbit", "10,100").split(",")]
    lat = m.get("latency_s")
    eff = m.get("link_efficiency")
    bucket = m.get("bucket_mb", 16) * 2**20
    print(f"Inputs: {os.path.relpath(path)}; latency {lat if lat is not None else 'to be measured'} s per "
          f"ring step, link efficiency {eff if eff is not None else 'to be measured'}, buckets of "
          f"{m.get('bucket_mb', 16)} MB\n")
    head = "| model | params | s/image (1 node) | Gbit/s | batch | " + " | ".join(
        f"N={n}" for n in nodes) + " |"
    print(head)
    print("|" + "---|" * (5 + len(nodes)))
    for name, mm in m["models"].items():
        P, t = mm["params"], mm.get("s_per_image")
        beta = mm.get("backward_share")
        for g in gbits:
            for B in batches:
                cells = []
                for n in nodes:
                    if B < n:
                        cells.append("—")
                        continue
                    if t is None or beta is None or lat is None or eff is None:
                        cells.append("to be measured")
                        continue
                    k = math.ceil(4 * P / bucket)
                    link = g * 1e9 / 8 * eff
                    t_ar = 2 * (n - 1) / n * 4 * P / link + 2 * (n - 1) * k * lat
                    tc1, tcn = B * t, B / n * t
                    exposed = max(t_ar - beta * tcn, t_ar / k)
                    s_ov, s_no = tc1 / (tcn + exposed), tc1 / (tcn + t_ar)
                    cells.append(f"{s_ov:.1f} ({s_no:.1f})")
                tt = "to be measured" if t is None else f"{t:.4g}"
                print(f"| {name} | {P / 1e6:.2f} M | {tt} | {g:g} | {B} | " + " | ".join(cells) + " |")
    print("\nEach cell: speed-up over one node with the gradient sums overlapped with the backward "
          "pass (without overlap in parentheses); — where the batch has fewer images than nodes.")


if __name__ == "__main__":
    main()
