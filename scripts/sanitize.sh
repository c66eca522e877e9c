#!/usr/bin/env bash
# Hardened builds (issue 6): the test suite under AddressSanitizer with
# UndefinedBehaviorSanitizer, and the in-process (threaded) tiers under
# ThreadSanitizer. Each gets its own build directory; benchmarks are skipped.
#   scripts/sanitize.sh asan   # address,undefined: fast, inproc, shm and process tiers
#   scripts/sanitize.sh tsan   # thread: the in-process tiers (threads, one address space)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${RADMM_JOBS:-2}
kind=${1:?usage: scripts/sanitize.sh asan|tsan}

case "$kind" in
  asan)
    dir=build-asan
    flags=(-DRADMM_SANITIZE=address,undefined)
    # Every tier except TCP across namespaces and the slow ones.
    tests=(-L "fast|inproc|shm|process" -LE slow)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  tsan)
    dir=build-tsan
    # libgomp is not TSan-instrumented: Eigen's OpenMP threads would be false positives.
    flags=(-DRADMM_SANITIZE=thread -DRADMM_OPENMP=OFF)
    tests=(-L inproc -LE slow)
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    ;;
  *) echo "unknown sanitizer '$kind' (asan or tsan)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRADMM_WERROR=ON -DRADMM_BUILD_BENCH=OFF "${flags[@]}"
cmake --build "$dir" -j"$jobs"
ctest --test-dir "$dir" --output-on-failure -j"$jobs" "${tests[@]}"
