#!/usr/bin/env bash
# The README's main job on a fresh machine: install the packages, build, and
# train a 5-layer residual network on the built-in "teacher" data set with one
# worker process per layer over shared memory. Each run gets its own output
# directory under runs/, so nothing earlier is overwritten. Extra arguments go
# to `radmm train` (e.g. --algorithm 3s --iterations 500).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"${RADMM_JOBS:-2}" --target radmm radmm-worker
out="runs/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p runs
build/bin/radmm train --dataset teacher --samples 1024 --features 8 --layers 5 --width 16 \
  --iterations 300 --parallel shm --out "$out" "$@"
echo "model, metrics.csv and config.txt are in $out"
