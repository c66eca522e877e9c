#!/usr/bin/env bash
# Stress test of failure recovery (issue 6; not part of the default test run).
# Runs RUNS parallel trainings (default 50); in each, one worker process is
# SIGKILLed at a random moment. With --max-restarts the coordinator must tear
# the run down, restart from the last checkpoint and finish with exactly the
# weights of an uninterrupted serial run. Prints the counts and the time from
# each kill to the coordinator noticing it. Needs a build in build/ (or
# RADMM_BUILD_DIR).
#   scripts/stress.sh [RUNS]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-50}
bin=${RADMM_BUILD_DIR:-build}/bin
work=$(mktemp -d /tmp/radmm-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT
args=(--dataset teacher --samples 2000 --features 8 --layers 5 --width 32 --iterations 300
      --checkpoint-every 20 --metrics-every 50 --quiet)

"$bin/radmm" train "${args[@]}" --out "$work/reference" || { echo "reference run failed"; exit 1; }
right=0 wrong=0 failed=0 leftover_procs=0 leftover_shm=0 detected=0
detect_ms=()
for ((r = 1; r <= runs; ++r)); do
  out="$work/run$r"
  log="$work/run$r.log"
  # Timestamp every line the coordinator prints, to time failure detection.
  ( "$bin/radmm" train "${args[@]}" --parallel shm --max-restarts 3 --out "$out" 2>&1 |
      while IFS= read -r line; do echo "$(date +%s%N) $line"; done > "$log" ) &
  sub=$!
  # Find the coordinator, wait a random 0.2 .. 2 s, kill a random worker.
  coord=""
  for _ in $(seq 100); do
    coord=$(pgrep -n -f "radmm train .*--out $out" || true)
    [[ -n $coord ]] && break
    sleep 0.02
  done
  sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
  [[ $((RANDOM % 2)) -eq 1 ]] && sleep 1
  victim=""
  if [[ -n $coord ]]; then
    workers=($(pgrep -P "$coord" || true))
    if ((${#workers[@]} > 0)); then
      victim=${workers[$((RANDOM % ${#workers[@]}))]}
      kill_ns=$(date +%s%N)
      kill -9 "$victim" 2>/dev/null
    fi
  fi
  wait "$sub"
  if [[ -f $out/model.json ]]; then
    same=1
    for i in 1 2 3 4 5; do cmp -s "$out/W_$i.npy" "$work/reference/W_$i.npy" || same=0; done
    if ((same)); then right=$((right + 1)); else wrong=$((wrong + 1)); fi
  else
    failed=$((failed + 1))
    echo "run $r did not finish:"; tail -3 "$log"
  fi
  if [[ -n $victim ]]; then
    seen=$(grep -m1 "killed by signal" "$log" | cut -d' ' -f1)
    if [[ -n $seen ]]; then
      detected=$((detected + 1))
      detect_ms+=($(( (seen - kill_ns) / 1000000 )))
    fi
  fi
  if [[ -n $coord ]]; then
    [[ -n $(pgrep -P "$coord" 2>/dev/null) ]] && leftover_procs=$((leftover_procs + 1))
    ls /dev/shm | grep -q "radmm_${coord}_" && leftover_shm=$((leftover_shm + 1))
  fi
  rm -rf "$out"
done
echo "runs: $runs  right weights: $right  wrong weights: $wrong  did not finish: $failed"
echo "runs leaving processes: $leftover_procs  runs leaving /dev/shm objects: $leftover_shm"
if ((${#detect_ms[@]} > 0)); then
  sorted=($(printf '%s\n' "${detect_ms[@]}" | sort -n))
  echo "failure detection (kill -> coordinator's report), ms: n=${#sorted[@]} min=${sorted[0]}" \
       "median=${sorted[$((${#sorted[@]} / 2))]} max=${sorted[-1]}"
fi
[[ $wrong -eq 0 && $failed -eq 0 && $leftover_procs -eq 0 && $leftover_shm -eq 0 ]]
