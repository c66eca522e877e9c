#!/usr/bin/env bash
# Table III: test MSE after 600 iterations on Wine Quality (red), residual
# networks of depth 3, 10, 20, 30, 40 with ReLU and sigmoid, trained by SGD,
# SGDM, Adam (backprop, Appendix IX-C presets) and two-/three-splitting RADMM
# (--preset paper), plus 2s/3s RADMM with radmm's default settings, and the
# constant-mean and least-squares predictors on the same split.
#
#   tools/experiments/table3.sh [--quick] [--shared DIR] [--out DIR] [--bin DIR] [--jobs N]
#
# Writes OUT/summary.csv (one row per run), OUT/references.csv, OUT/table.md
# (the table beside the paper's) and OUT/curves/<method>_<activation>.csv (train
# and test MSE per recorded iteration of the deepest networks, for fig5.sh
# --from). Assumptions (README "Table III"): full batch, so an iteration is one
# update; paper columns use width = input width (11 features + bias = 12),
# Kaiming init, no output refit; seed 1, 20 % test split.
# --quick: depths 3 and 5, 20 iterations.
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args table3 "$@"
wine_csv table3

if [[ $QUICK -eq 1 ]]; then
  depths=(3 5); iters=20; every=5
else
  depths=(3 10 20 30 40); iters=600; every=600
fi
deepest=${depths[-1]}
curve_every=5
[[ $QUICK -eq 1 ]] && curve_every=1

common="--data $DATA --target quality --iterations $iters --seed 1 --test-fraction 0.2"
paper="--width 12 --init kaiming --refit-output off"
jobs="$RUNS/jobs.txt"
: > "$jobs"
# Deep runs first: they take longest, so the pool drains evenly.
for ((i = ${#depths[@]} - 1; i >= 0; i--)); do
  N=${depths[$i]}
  m=$every
  [[ $N -eq $deepest ]] && m=$curve_every
  for act in relu sigmoid; do
    base="$common --layers $N --activation $act --metrics-every $m"
    echo "3s-default_${act}_$N $base --algorithm 3s" >> "$jobs"
    echo "2s-default_${act}_$N $base --algorithm 2s" >> "$jobs"
    echo "3s_${act}_$N $base $paper --algorithm 3s --preset paper" >> "$jobs"
    echo "2s_${act}_$N $base $paper --algorithm 2s --preset paper" >> "$jobs"
    for opt in adam sgdm sgd; do
      echo "${opt}_${act}_$N $base $paper --optimizer $opt" >> "$jobs"
    done
  done
done
echo "table3: $(wc -l < "$jobs") runs, $JOBS at a time, results in $OUT" >&2
run_jobs "$jobs"

python3 "$EXP_DIR/wine_ref.py" --data "$DATA" --out "$OUT/references.csv"
mkdir -p "$OUT/curves"
python3 "$EXP_DIR/collect.py" summary --runs "$RUNS" --jobs "$jobs" --out "$OUT/summary.csv"
for act in relu sigmoid; do
  for meth in sgd sgdm adam 2s 3s 2s-default 3s-default; do
    python3 "$EXP_DIR/collect.py" curve --run "$RUNS/${meth}_${act}_$deepest" --out "$OUT/curves/${meth}_${act}.csv"
  done
done
python3 "$EXP_DIR/table3_report.py" --summary "$OUT/summary.csv" --references "$OUT/references.csv" \
  --iterations "$iters" > "$OUT/table.md"
cat "$OUT/table.md"
