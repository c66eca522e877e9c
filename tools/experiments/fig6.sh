#!/usr/bin/env bash
# Figure 6: runtime of 600 iterations of the 3-layer ReLU and sigmoid residual
# networks on Wine Quality (red), SGD, SGDM, Adam, 2S and 3S RADMM with the
# paper's settings, 5 repetitions each: mean and standard deviation as bars.
#
#   tools/experiments/fig6.sh [--quick] [--shared DIR] [--out DIR] [--bin DIR]
#
# Runs one at a time (--jobs is ignored: concurrent runs would time each
# other), metrics only at the end (--metrics-every 600) so the time is the
# training's. The time is radmm's own (metrics.csv "seconds": training only,
# no process start or CSV parsing); wall-clock time is in runs.csv too.
# Writes OUT/runs.csv, OUT/runtime.csv (method,activation,mean,std,n) and OUT/fig6.png.
# --quick: 20 iterations, 2 repetitions (no timing claims).
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args fig6 "$@"
JOBS=1
wine_csv fig6
if [[ $QUICK -eq 1 ]]; then iters=20; reps=2; else iters=600; reps=5; fi

common="--data $DATA --target quality --iterations $iters --seed 1 --test-fraction 0.2 --layers 3 --metrics-every $iters"
paper="--width 12 --init kaiming --refit-output off"
jobs="$RUNS/jobs.txt"
: > "$jobs"
# Repetitions interleaved, so a slow spell on a shared machine hits every method.
for ((r = 1; r <= reps; r++)); do
  for a in relu sigmoid; do
    for o in sgd sgdm adam; do echo "${o}_${a}_r$r $common --activation $a $paper --optimizer $o" >> "$jobs"; done
    echo "2s_${a}_r$r $common --activation $a $paper --algorithm 2s --preset paper" >> "$jobs"
    echo "3s_${a}_r$r $common --activation $a $paper --algorithm 3s --preset paper" >> "$jobs"
  done
done
echo "fig6: $(wc -l < "$jobs") runs, one at a time, results in $OUT" >&2
run_jobs "$jobs"
python3 "$EXP_DIR/collect.py" summary --runs "$RUNS" --jobs "$jobs" --out "$OUT/runs.csv"
python3 "$EXP_DIR/runtime_stats.py" --runs "$RUNS" --jobs "$jobs" --out "$OUT/runtime.csv"
gnuplot -e "data='$OUT/runtime.csv'; out='$OUT/fig6.png'; iters='$iters'" "$EXP_DIR/fig6.gp"
cat "$OUT/runtime.csv"
echo "fig6: wrote $OUT/fig6.png" >&2
