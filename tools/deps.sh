#!/usr/bin/env bash
# Installs what building and testing dynopool needs on Debian 12 (bookworm).
#   tools/deps.sh              compiler, CMake, oneDNN, cJSON, zlib, libjpeg, libpng,
#                              protobuf-c and onnx.proto (the ONNX export), the
#                              Fashion-MNIST files, and OpenBLAS (OpenMP build) for
#                              the benchmarks bench_backend and bench_linear only (the
#                              library does not use it; CMake skips them without it);
#                              Node.js, npm and the npm package onnxruntime-node in
#                              tools/onnxruntime/ for the test deploy.onnx_ort (ONNX
#                              Runtime runs our exported models); Debian's PyTorch,
#                              NumPy and torchvision (python3-torch, python3-numpy,
#                              python3-torchvision; python3-pil for ref/eval_checkpoint.py's
#                              segmentation sets) for the Python package
#                              python/dynopool and its tests (py.*; py.torchvision
#                              loads our checkpoints into torchvision.models), ref/
#                              and bench/; Open MPI (libopenmpi-dev, openmpi-bin) for
#                              data-parallel training across processes
#                              (docs/distributed.md; test cli.mpi)
# Recommended packages are not installed (a fresh machine has none of them), so
# everything the build touches is named here: tools/check_deps.sh proves it.
# ocl-icd-opencl-dev: Debian's oneDNN is built with an OpenCL GPU runtime, and
# its CMake package (find_package(dnnl)) requires the OpenCL library, which
# libdnnl-dev only recommends.
#   tools/deps.sh --reference  the same (PyTorch and NumPy used to be installed only
#                              with it; it is kept so that older instructions work)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libdnnl-dev ocl-icd-opencl-dev libopenblas-openmp-dev libcjson-dev zlib1g-dev
      libjpeg-dev libpng-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev dataset-fashion-mnist python3 nodejs
      python3-torch python3-numpy python3-torchvision python3-pil libopenmpi-dev openmpi-bin)
if [[ $# -gt 0 && "${1:-}" != "--reference" ]]; then
  echo "usage: tools/deps.sh [--reference]" >&2; exit 2
fi
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "tools/deps.sh: run as root, or install sudo" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# npm: Debian's, unless the nodejs installed brings its own (NodeSource's nodejs ships npm
# and conflicts with Debian's npm package)
if ! command -v npm >/dev/null; then
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
  pkgs+=(npm)
fi
echo "tools/deps.sh: installed ${pkgs[*]}"
# ONNX Runtime's CPU runtime, as the npm package onnxruntime-node ships it, into
# tools/onnxruntime/ (ignored by git).  --ignore-scripts: its install script would
# download optional extras (GPU providers) from outside; the CPU runtime needs none.
ort=$(cd "$(dirname "$0")" && pwd)/onnxruntime
mkdir -p "$ort"
npm install --prefix "$ort" --ignore-scripts --no-audit --no-fund --loglevel=error onnxruntime-node@1.30.0 >/dev/null
echo "tools/deps.sh: onnxruntime-node $(node -p "require('$ort/node_modules/onnxruntime-node/package.json').version") in $ort"
