#!/usr/bin/env bash
# Runs one radmm training job for the reproduction scripts (called by lib.sh's
# run_jobs). Argument: one line "RUN_NAME radmm-train-args..." (no quoting:
# paths must not contain spaces). Needs $RADMM and $RUNS.
#
# Leaves $RUNS/RUN_NAME/ with model/ (radmm's output directory), stderr.txt and
# result.txt: status=ok|diverged|failed, rc, wall seconds, and the last line of
# radmm's error output. A diverged or failed run is a result, not an error:
# this script exits 0 so the other runs go on.
set -uo pipefail
read -r -a words <<< "$1"
name="${words[0]}"
args=("${words[@]:1}")
dir="$RUNS/$name"
rm -rf "$dir"
mkdir -p "$dir"
t0=$(date +%s.%N)
"$RADMM" train "${args[@]}" --out "$dir/model" --quiet --force 2> "$dir/stderr.txt"
rc=$?
t1=$(date +%s.%N)
if [[ $rc -eq 0 ]]; then
  status=ok
elif grep -qi diverged "$dir/stderr.txt"; then
  status=diverged
else
  status=failed
fi
message=$(grep -v '^radmm: warning' "$dir/stderr.txt" | tail -n 1 | tr -d '\r' | tr ',' ';')
{
  echo "status=$status"
  echo "rc=$rc"
  echo "seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  echo "message=$message"
  echo "args=${args[*]}"
} > "$dir/result.txt"
[[ $status == ok ]] || echo "  $name: $status ($message)" >&2
exit 0
