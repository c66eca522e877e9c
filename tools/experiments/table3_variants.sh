#!/usr/bin/env bash
# Why Table III's paper-setting RADMM columns differ from the paper: the same
# runs (--preset paper, width 12, 600 full-batch iterations) with one setting
# changed at a time:
#   kaiming/off   as in table3.sh (the paper's Kaiming init, no output refit)
#   residual/off  radmm's residual init (branches scaled by 1/sqrt(N-1))
#   kaiming/on    the output refit (W_N = ridge fit on the forward features)
#   residual/on   both
# for 2S and 3S RADMM, ReLU and sigmoid, depths 3, 10, 20 (deeper ones take
# minutes each on 2 cores).
#
#   tools/experiments/table3_variants.sh [--quick] [--shared DIR] [--out DIR] [--bin DIR] [--jobs N]
#
# Writes OUT/summary.csv and OUT/table.md. --quick: depth 3, 20 iterations.
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args table3_variants "$@"
wine_csv table3_variants
if [[ $QUICK -eq 1 ]]; then depths=(3); iters=20; else depths=(20 10 3); iters=600; fi
jobs="$RUNS/jobs.txt"
: > "$jobs"
for N in "${depths[@]}"; do
  for act in relu sigmoid; do
    for alg in 2s 3s; do
      for init in kaiming residual; do
        for refit in off on; do
          echo "${alg}_${act}_${N}_${init}_$refit --data $DATA --target quality --iterations $iters --seed 1 --test-fraction 0.2 --metrics-every $iters --layers $N --activation $act --width 12 --algorithm $alg --preset paper --init $init --refit-output $refit" >> "$jobs"
        done
      done
    done
  done
done
echo "table3_variants: $(wc -l < "$jobs") runs, $JOBS at a time, results in $OUT" >&2
run_jobs "$jobs"
python3 "$EXP_DIR/collect.py" summary --runs "$RUNS" --jobs "$jobs" --out "$OUT/summary.csv"
python3 - "$OUT/summary.csv" "$iters" > "$OUT/table.md" <<'PY'
import csv, math, sys
rows = {r["name"]: r for r in csv.DictReader(open(sys.argv[1]))}
def cell(name):
    r = rows.get(name)
    if r is None:
        return "n/a"
    if r["status"] != "ok":
        return "- (%s)" % r["status"]
    v = float(r["mse_test"])
    return "-" if not math.isfinite(v) or v > 500 else "%.4f" % v
keys = sorted({tuple(n.split("_")[:3]) for n in rows}, key=lambda k: (k[1], int(k[2]), k[0]))
print("Test MSE after %s iterations (normalised units), --preset paper, width 12, full batch." % sys.argv[2])
print("init: kaiming = the paper's, residual = radmm's; refit: W_N refitted by ridge on the forward features.")
print("")
print("| method | act | N | kaiming, no refit (Table III) | residual init | refit | residual init + refit |")
print("|---|---|---|---|---|---|---|")
for alg, act, N in keys:
    b = "%s_%s_%s_" % (alg, act, N)
    print("| %s | %s | %s | %s | %s | %s | %s |" % (alg.upper(), act, N, cell(b + "kaiming_off"),
          cell(b + "residual_off"), cell(b + "kaiming_on"), cell(b + "residual_on")))
PY
cat "$OUT/table.md"
