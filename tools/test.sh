#!/usr/bin/env bash
# Builds dynopool twice and runs every test in each build:
#   build/       Release (-O3 -march=native), as users run it
#   build-asan/  Debug with AddressSanitizer + UndefinedBehaviorSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDYNOPOOL_SANITIZE=ON -DDYNOPOOL_BENCH=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure
