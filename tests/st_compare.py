#!/usr/bin/python3
"""st_compare.py A B [--tol T] [--exact]: compares two dynopool checkpoints
(safetensors) tensor by tensor.  Prints the largest difference; exit 1 when a
tensor is missing, differs in shape, or differs by more than T * (1 + max|A|)
(--exact: any bit).  Used by tests/mpi_test.sh (docs/distributed.md)."""
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64}[v["dtype"]]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out


def main():
    args = sys.argv[1:]
    tol, exact, only = 0.0, "--exact" in args, None
    if "--tol" in args:
        tol = float(args[args.index("--tol") + 1])
    if "--only" in args:
        only = args[args.index("--only") + 1]
    files = [a for a in args if a.endswith(".safetensors")]
    A, B = load(files[0]), load(files[1])
    worst, bad = (0.0, ""), 0
    for k in sorted(A):
        if only and only not in k:
            continue
        if k not in B or A[k].shape != B[k].shape:
            print(f"{k}: missing or another shape in {files[1]}")
            bad += 1
            continue
        a, b = A[k].astype(np.float64), B[k].astype(np.float64)
        if exact:
            if A[k].tobytes() != B[k].tobytes():
                print(f"{k}: bytes differ")
                bad += 1
            continue
        d = float(np.max(np.abs(a - b))) if a.size else 0.0
        rel = d / (1.0 + float(np.max(np.abs(a))) if a.size else 1.0)
        if rel > worst[0]:
            worst = (rel, k)
        if rel > tol:
            print(f"{k}: differs by {d:.3g} ({rel:.3g} of 1 + max|a|; tolerance {tol:g})")
            bad += 1
    print(f"compared {len(A)} tensors; largest difference {worst[0]:.3g} ({worst[1]}); {bad} over the tolerance")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
