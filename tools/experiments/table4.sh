#!/usr/bin/env bash
# Table IV scaled to this machine: serial against parallel (one process per
# layer, --parallel shm) runtime of two-splitting proximal-linearized RADMM on
# the oscillating function (10 samples, sigmoid, --preset oscillating =
# Appendix IX-C's Section VII-B settings) across widths d, 5 layers; then the
# same with 8 layers (more layers than this machine's 2 cores) to show the
# pipeline.
#
#   tools/experiments/table4.sh [--quick] [--out DIR] [--bin DIR] [--widths "250 500 ..."] [--reps R] [--iterations K]
#
# Scaled: the paper times d = 3000..6500 on 32 cores; here d = 250..4000,
# 10 iterations, 3 repetitions (a full-size run would take hours on 2 cores).
# Runs go one at a time; --bias off so the width is exactly d; metrics and
# synchronisation only at the end (--metrics-every/--sync-every large).
# Writes OUT/runs.csv, OUT/runtime.csv (layers,d,mode,mean_s,std_s,n,wall_mean_s),
# OUT/table.md and OUT/table4.png. --quick: d = 32, 64, 2 iterations, 1 repetition.
WIDTHS=""; REPS=""; ITERS=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --widths) WIDTHS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --iterations) ITERS="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args table4 "${args[@]+"${args[@]}"}"
JOBS=1
if [[ $QUICK -eq 1 ]]; then
  : "${WIDTHS:=32 64}" "${REPS:=1}" "${ITERS:=2}"; deep_width=64
else
  : "${WIDTHS:=250 500 1000 2000 3000 4000}" "${REPS:=3}" "${ITERS:=10}"; deep_width=1000
fi
jobs="$RUNS/jobs.txt"
: > "$jobs"
base="--dataset oscillating --samples 10 --bias off --activation sigmoid --preset oscillating --test-fraction 0 --seed 1 --iterations $ITERS --metrics-every 100000 --sync-every 100000"
for ((r = 1; r <= REPS; r++)); do
  for d in $WIDTHS; do
    for mode in none shm; do
      echo "N5_d${d}_${mode}_r$r $base --layers 5 --features $d --parallel $mode" >> "$jobs"
    done
  done
  for mode in none shm; do
    echo "N8_d${deep_width}_${mode}_r$r $base --layers 8 --features $deep_width --parallel $mode" >> "$jobs"
  done
done
echo "table4: $(wc -l < "$jobs") runs, one at a time, results in $OUT" >&2
run_jobs "$jobs"
python3 "$EXP_DIR/collect.py" summary --runs "$RUNS" --jobs "$jobs" --out "$OUT/runs.csv"
python3 "$EXP_DIR/table4_report.py" --runs "$RUNS" --jobs "$jobs" --out "$OUT/runtime.csv" \
  --iterations "$ITERS" --cores "$(nproc)" > "$OUT/table.md"
gnuplot -e "data='$OUT/runtime.csv'; out='$OUT/table4.png'; iters='$ITERS'" "$EXP_DIR/table4.gp"
cat "$OUT/table.md"
echo "table4: wrote $OUT/table4.png" >&2
