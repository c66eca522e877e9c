#!/usr/bin/env bash
# Figure 5: train and test MSE per iteration for the 40-layer ReLU and sigmoid
# residual networks on Wine Quality (red): SGD, SGDM, Adam, 2S and 3S RADMM with
# the paper's settings (same runs as table3.sh's deepest row), plus 2S/3S with
# radmm's default settings as dashed lines.
#
#   tools/experiments/fig5.sh [--quick] [--from TABLE3_OUT] [--shared DIR] [--out DIR] [--bin DIR] [--jobs N]
#
# --from DIR plots DIR/curves/ written by table3.sh (no training, nothing
# copied); otherwise the runs are made here and their curves written to
# OUT/curves/*.csv. Writes OUT/fig5.png (and OUT/summary.csv).
# --quick: 5 layers, 30 iterations.
FROM=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) FROM="$2"; shift ;;
    --from=*) FROM="${1#*=}" ;;
    *) args+=("$1") ;;
  esac
  shift
done
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args fig5 "${args[@]+"${args[@]}"}"

methods="sgd sgdm adam 2s 3s 2s-default 3s-default"
if [[ $QUICK -eq 1 ]]; then depth=5; iters=30; else depth=40; iters=600; fi
if [[ -n "$FROM" ]]; then
  [[ -d "$FROM/curves" ]] || { echo "fig5: $FROM/curves not found (run table3.sh first)" >&2; exit 2; }
  curves="$(cd "$FROM/curves" && pwd)"
  if [[ -f "$FROM/summary.csv" ]]; then
    grep -E "^(name|[a-z0-9-]+_(relu|sigmoid)_$depth)," "$FROM/summary.csv" > "$OUT/summary.csv" || true
  fi
else
  curves="$OUT/curves"
  mkdir -p "$curves"
  wine_csv fig5
  common="--data $DATA --target quality --iterations $iters --seed 1 --test-fraction 0.2 --layers $depth --metrics-every 1"
  paper="--width 12 --init kaiming --refit-output off"
  jobs="$RUNS/jobs.txt"
  : > "$jobs"
  for a in relu sigmoid; do
    echo "3s-default_${a}_$depth $common --activation $a --algorithm 3s" >> "$jobs"
    echo "2s-default_${a}_$depth $common --activation $a --algorithm 2s" >> "$jobs"
    echo "3s_${a}_$depth $common --activation $a $paper --algorithm 3s --preset paper" >> "$jobs"
    echo "2s_${a}_$depth $common --activation $a $paper --algorithm 2s --preset paper" >> "$jobs"
    for o in adam sgdm sgd; do echo "${o}_${a}_$depth $common --activation $a $paper --optimizer $o" >> "$jobs"; done
  done
  echo "fig5: $(wc -l < "$jobs") runs, $JOBS at a time, results in $OUT" >&2
  run_jobs "$jobs"
  python3 "$EXP_DIR/collect.py" summary --runs "$RUNS" --jobs "$jobs" --out "$OUT/summary.csv"
  for a in relu sigmoid; do for m in $methods; do
    python3 "$EXP_DIR/collect.py" curve --run "$RUNS/${m}_${a}_$depth" --out "$curves/${m}_$a.csv"
  done; done
fi

# Methods with at least one recorded row get a line; the others a note.
declare -A have note
for a in relu sigmoid; do
  have[$a]=""; note[$a]=""
  for m in $methods; do
    f="$curves/${m}_$a.csv"
    if [[ -f "$f" && $(wc -l < "$f") -gt 1 ]]; then
      have[$a]+="$m "
    elif [[ -f "$OUT/summary.csv" ]] && grep -q "^${m}_${a}_$depth," "$OUT/summary.csv"; then
      note[$a]+="$m: $(grep "^${m}_${a}_$depth," "$OUT/summary.csv" | cut -d, -f2) (no curve)  "
    fi
  done
done
gnuplot -e "dir='$curves'; out='$OUT/fig5.png'; depth='$depth'; m_relu='${have[relu]}'; m_sigmoid='${have[sigmoid]}'; n_relu='${note[relu]}'; n_sigmoid='${note[sigmoid]}'" \
  "$EXP_DIR/fig5.gp"
echo "fig5: wrote $OUT/fig5.png" >&2
