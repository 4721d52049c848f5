#!/usr/bin/env bash
# Builds dynopool twice and runs every test; every stage runs even when an
# earlier one failed, and the summary at the end reports each:
#   build/       Release (-O3 -march=native), as users run it, with
#                  1. oneDNN's kernels for this CPU            (2 threads, one test at a time)
#                  2. ONEDNN_MAX_CPU_ISA=AVX2         (older Intel, AMD Zen 2/3; 1 thread, 2 tests at a time)
#                  3. ONEDNN_MAX_CPU_ISA=AVX512_CORE  (AVX-512 without AMX/BF16; likewise)
#                (on a CPU without AVX-512, stage 3 runs its AVX2 kernels again)
#   build-asan/  Debug with AddressSanitizer + UndefinedBehaviorSanitizer
#   deps         tools/check_deps.sh: the build used only what tools/deps.sh installs
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# A fixed thread count: results repeat bit for bit for a given count, and the
# tests compare runs (the tool would otherwise use the cores left idle).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
names=()
results=()
stage() { # NAME COMMAND...
  local name=$1
  shift
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then results+=("passed"); else results+=("FAILED"); fi
  names+=("$name ($((SECONDS - start)) s)")
}
release_build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$jobs"
}
# Under the sanitizers every op and every network runs, but not every network in every
# pooling variant: the human and Shape Adaptor goldens of ResNet-50, MobileNetV2 and
# EfficientNet-B0 (their ops are each in another golden or in ops.fd) and ONNX Runtime's
# numerical comparison (export itself runs in deploy.onnx) are left to the three Release
# stages; together they were 4.8 of the 8.8 minutes this stage took on 2 cores.  The MPI
# test (cli.mpi) too: Open MPI's runtime holds memory to the end that LeakSanitizer reports.
ASAN_SKIP='^(cli\.mpi|cli\.bf16|deploy\.onnx_ort|model\.golden\.(resnet50|mobilenetv2|efficientnet-b0)\.(human|shape-adaptor))$'
asan() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDYNOPOOL_SANITIZE=ON -DDYNOPOOL_BENCH=OFF &&
    cmake --build build-asan -j"$jobs" &&
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -E "$ASAN_SKIP"
}
stage "Release build" release_build
if [[ ${results[0]} == passed ]]; then
  stage "Release tests, this CPU's kernels" ctest --test-dir build --output-on-failure
  # Stages 2 and 3 check the other instruction sets' kernels, not threading (stage 1 and
  # the sanitizer stage run every test on 2 threads): one thread per test, $jobs tests at
  # a time, which halves their wall time on 2 cores.
  stage "Release tests, ONEDNN_MAX_CPU_ISA=AVX2" env ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 \
    ctest --test-dir build --output-on-failure -j"$jobs"
  stage "Release tests, ONEDNN_MAX_CPU_ISA=AVX512_CORE" env ONEDNN_MAX_CPU_ISA=AVX512_CORE OMP_NUM_THREADS=1 \
    ctest --test-dir build --output-on-failure -j"$jobs"
  stage "deps: only tools/deps.sh's packages used" tools/check_deps.sh build
fi
stage "ASan + UBSan build and tests" asan
echo
echo "=== summary"
status=0
for i in "${!names[@]}"; do
  printf '  %-7s %s\n' "${results[$i]}" "${names[$i]}"
  [[ ${results[$i]} == passed ]] || status=1
done
if ((status)); then echo "tools/test.sh: some stages FAILED"; else echo "tools/test.sh: all stages passed"; fi
exit $status
