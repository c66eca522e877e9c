#!/usr/bin/env bash
# Builds radmm (Release, warnings as errors) in ./build and runs every test
# suite except those labelled slow. Extra arguments go to ctest, e.g.
#   scripts/test.sh -R core_tests
# Set RADMM_BUILD_DIR to build elsewhere and RADMM_JOBS for the parallelism.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${RADMM_BUILD_DIR:-build}
jobs=${RADMM_JOBS:-2}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRADMM_WERROR=ON
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs" -LE slow "$@"
