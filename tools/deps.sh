#!/usr/bin/env bash
# Installs what building and testing dynopool needs on Debian 12 (bookworm).
#   tools/deps.sh              compiler, CMake, oneDNN, cJSON, zlib, libjpeg, libpng,
#                              the Fashion-MNIST files, and OpenBLAS (OpenMP build) for
#                              the benchmarks bench_backend and bench_linear only (the
#                              library does not use it; CMake skips them without it)
# Recommended packages are not installed (a fresh machine has none of them), so
# everything the build touches is named here: tools/check_deps.sh proves it.
# ocl-icd-opencl-dev: Debian's oneDNN is built with an OpenCL GPU runtime, and
# its CMake package (find_package(dnnl)) requires the OpenCL library, which
# libdnnl-dev only recommends.
#   tools/deps.sh --reference  also PyTorch and NumPy for ref/ and bench/ (by hand, not CI)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libdnnl-dev ocl-icd-opencl-dev libopenblas-openmp-dev libcjson-dev zlib1g-dev
      libjpeg-dev libpng-dev dataset-fashion-mnist python3)
if [[ "${1:-}" == "--reference" ]]; then
  pkgs+=(python3-torch python3-numpy)
elif [[ $# -gt 0 ]]; then
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
echo "tools/deps.sh: installed ${pkgs[*]}"
