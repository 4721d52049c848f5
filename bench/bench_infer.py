#!/usr/bin/python3
"""Inference speed of one checkpoint in three runtimes, in one run on the same threads: the C
inference API (build/bench_infer: dp_infer_load + dp_infer_run, batch norm folded), PyTorch eval
mode (dynopool.load_checkpoint, torch.no_grad; DynOPool layers on the C operator) and ONNX
Runtime (onnxruntime-node on the file `dynopool export` writes). Latency at batch 1 and the time
of a batch of B (throughput), each the median of REPS runs after WARM warm-up runs on the same
input, and the best of ROUNDS rounds in which the three run in turn; one table with the ratios
to ours. The logits of the three on that batch must agree within 1e-4 relative (per image, max |theirs - ours| / max |ours|), or the table is not printed.

    cmake -S . -B build && cmake --build build -j2
    /usr/bin/python3 bench/bench_infer.py --checkpoint runs/fmnist-dynopool [--threads 2]
        [--batch 64] [--reps 20] [--warm 3] [--rounds 3]
    /usr/bin/python3 bench/bench_infer.py --quick     # smoke test: a tiny run trained here
                                                      # (Fashion-MNIST), batch 4, 1 repetition

Threads: ours dp_set_threads (and OMP_NUM_THREADS); PyTorch torch.set_num_threads and
dynopool.set_threads; ONNX Runtime intraOpNumThreads (inter-op 1). ONNX Runtime is found in
--ort-dir (tools/onnxruntime, where tools/deps.sh installs it); without Node.js its row says so.
Measured figures: docs/guide.md, "Deploy".
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python"))
TOL = 1e-4


def sh(cmd, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"bench_infer.py: {' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-1500:]}"
                 f"{r.stderr[-1500:]}")
    return r.stdout


def rel_diff(a, b):
    """max over images of max |a - b| / max |b| (b: ours)."""
    d = (a.double() - b.double()).abs().amax(dim=1)
    m = b.double().abs().amax(dim=1).clamp_min(1e-30)
    return (d / m).max().item()


def pytorch(ck, x, threads, reps, warm):
    import torch
    import dynopool
    torch.set_num_threads(threads)
    dynopool.set_threads(threads)
    net = dynopool.load_checkpoint(ck)  # eval mode

    def med(n):
        xs = x[:n].contiguous()
        with torch.no_grad():
            for _ in range(warm):
                net(xs)
            t = []
            for _ in range(reps):
                t0 = time.perf_counter()
                y = net(xs)
                t.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(t), y

    ms1, _ = med(1)
    msb, y = med(x.shape[0])
    return {"impl": "pytorch", "version": torch.__version__, "batch1_ms": ms1, "batch_ms": msb,
            "images_per_s": 1e3 * x.shape[0] / msb}, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="a checkpoint file or run folder (required without --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="the runtimes in turn, each keeps its best")
    ap.add_argument("--cli", default=os.path.join(REPO, "build", "dynopool"), help="the dynopool tool")
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "bench_infer"), help="bench/bench_infer.c built")
    ap.add_argument("--ort-dir", default=os.path.join(REPO, "tools", "onnxruntime"),
                    help="where onnxruntime-node is installed (node_modules)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="--quick's training data")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: a tiny run trained here, batch 4, one repetition (timings mean nothing)")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.reps, args.warm, args.rounds = 4, 1, 0, 1
    elif not args.checkpoint:
        ap.error("--checkpoint is required (or --quick)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import dynopool
    from dynopool.checkpoint import checkpoint_path
    cli, bench = args.cli, args.bench
    tmp = tempfile.mkdtemp(prefix="bench_infer.")
    try:
        if args.quick:
            run = os.path.join(tmp, "run")
            sh([cli, "train", "--data", args.data, "--model", "mobilenetv2", "--width", "0.0625", "--epochs", "1",
                "--limit", "64", "--limit-test", "32", "--batch", "32", "--alpha-init", "1.7", "--threads",
                args.threads, "--out", run])
            args.checkpoint = run
        ck = checkpoint_path(args.checkpoint)
        _, meta = dynopool.read_safetensors(ck)
        c, s, k = int(meta["in_ch"]), int(meta["size"]), int(meta["classes"])
        x = torch.randn(args.batch, c, s, s, generator=torch.Generator().manual_seed(1))
        xbin = os.path.join(tmp, "x.bin")
        with open(xbin, "wb") as f:
            f.write(x.numpy().tobytes())
        logits, runs = {}, {"dynopool": [], "pytorch": [], "onnxruntime": []}
        onnx = None
        if shutil.which("node") is not None:
            pkg = os.path.join(args.ort_dir, "node_modules", "onnxruntime-node", "package.json")
            if not os.path.exists(pkg):
                sys.exit(f"bench_infer.py: onnxruntime-node is not installed in {args.ort_dir} (tools/deps.sh "
                         "installs it; or give --ort-dir)")
            onnx = os.path.join(tmp, "model.onnx")
            sh([cli, "export", "--checkpoint", ck, "--onnx", onnx])
        # rounds: the three runtimes in turn, so that a slower spell of a shared
        # machine falls on all of them; each keeps its best round
        for _ in range(args.rounds):
            out = os.path.join(tmp, "ours.bin")
            runs["dynopool"].append(json.loads(sh([bench, ck, "--threads", args.threads, "--batch", args.batch,
                                                   "--reps", args.reps, "--warm", args.warm, "--input", xbin,
                                                   "--logits", out, "--json"])))
            runs["dynopool"][-1]["version"] = "this build"
            logits["dynopool"] = torch.from_file(out, size=args.batch * k).reshape(args.batch, k).clone()
            row, logits["pytorch"] = pytorch(ck, x, args.threads, args.reps, args.warm)
            runs["pytorch"].append(row)
            if onnx:
                out = os.path.join(tmp, "ort.bin")
                env = dict(os.environ, DP_ORT_DIR=args.ort_dir)
                runs["onnxruntime"].append(json.loads(sh(["node", os.path.join(HERE, "bench_infer_ort.js"), onnx,
                                                          xbin, args.batch, c, s, args.threads, args.reps,
                                                          args.warm, out], env=env)))
                logits["onnxruntime"] = torch.from_file(out, size=args.batch * k).reshape(args.batch, k).clone()
        rows = []
        for name, rs in runs.items():
            if not rs:
                rows.append({"impl": name, "skipped": "Node.js is not installed (tools/deps.sh installs it)"})
                continue
            best = dict(rs[0])
            best["batch1_ms"] = min(r["batch1_ms"] for r in rs)
            best["batch_ms"] = min(r["batch_ms"] for r in rs)
            best["images_per_s"] = 1e3 * args.batch / best["batch_ms"]
            best["spread"] = max(max(r["batch1_ms"] for r in rs) / best["batch1_ms"],
                                 max(r["batch_ms"] for r in rs) / best["batch_ms"])
            rows.append(best)
        # the same model: the logits agree
        diffs = {n: rel_diff(z, logits["dynopool"]) for n, z in logits.items() if n != "dynopool"}
        bad = {n: d for n, d in diffs.items() if not d <= TOL}
        if bad:
            sys.exit(f"bench_infer.py: logits differ from ours by more than {TOL}: {bad}")
        ours = rows[0]
        print(f"{ours['model']} ({ours['pool']}), input {c}x{s}x{s}, {k} classes, {args.threads} threads, median "
              f"of {args.reps} after {args.warm} warm-up runs, best of {args.rounds} rounds; {ck}")
        print(f"{'runtime':22s} {'batch 1 ms':>11s} {'x ours':>7s} {f'batch {args.batch} ms':>12s} "
              f"{'images/s':>10s} {'x ours':>7s} {'logits vs ours':>15s}  {'spread':>6s}")
        for r in rows:
            name = f"{r['impl']} {r.get('version', '')}".strip()
            if "skipped" in r:
                print(f"{name:22s} skipped: {r['skipped']}")
                continue
            print(f"{name:22s} {r['batch1_ms']:11.3f} {r['batch1_ms'] / ours['batch1_ms']:7.2f} "
                  f"{r['batch_ms']:12.3f} {r['images_per_s']:10.1f} "
                  f"{r['images_per_s'] / ours['images_per_s']:7.2f} "
                  f"{diffs.get(r['impl'], 0.0):15.1e}  {r['spread']:6.2f}")
        print("x ours: their time / ours at batch 1 (above 1: ours is faster), their images/s / ours at batch "
              f"{args.batch} (below 1: ours is faster); spread: the slowest round's time / the best's")
        if args.quick:
            print("(--quick: tiny sizes, one repetition; the timings mean nothing)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
