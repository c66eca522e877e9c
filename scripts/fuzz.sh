#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes for a bounded time (issue 6): CSV,
# .npy, checkpoint blocks, protocol headers and TCP frames, and the trace
# reader. clang + libFuzzer + ASan/UBSan, in build-fuzz. Seconds per target:
# RADMM_FUZZ_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${RADMM_JOBS:-2}
seconds=${RADMM_FUZZ_SECONDS:-30}
CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRADMM_FUZZ=ON -DRADMM_BUILD_BENCH=OFF \
  -DRADMM_FUZZ_SECONDS="$seconds" -DRADMM_OPENMP=OFF
targets=(radmm-fuzz-csv radmm-fuzz-npy radmm-fuzz-block radmm-fuzz-frame radmm-trace-fuzz)
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"
ctest --test-dir build-fuzz --output-on-failure -L fuzz
