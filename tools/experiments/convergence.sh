#!/usr/bin/env bash
# Convergence (Theorem 2, R-linear case): the augmented Lagrangian's distance
# to its final value, |L_k - L_K|, per iteration on a log scale, with a fitted
# linear rate, for a proximal two-splitting RADMM run that meets Assumption 1
# (beta = 10 > 1, smooth activation tanh, constant proximal terms tau = nu = 1,
# so omega_i^k and nu_i^k are bounded above and below).
#
#   tools/experiments/convergence.sh [--quick] [--out DIR] [--bin DIR]
#
# Data: radmm's built-in teacher data set (32 samples, 4 features; no
# download); 3 layers, lambda = 1. L_K of the last
# iteration stands in for the limit L*, so the distance is only meaningful well
# before K: the rate is fitted on iterations [K/10, K/2] by least squares on
# log10 |L_k - L_K|. Writes OUT/distance.csv (k,L,dist,fit), OUT/rate.txt and
# OUT/convergence.png. --quick: 60 iterations.
# shellcheck source=tools/experiments/lib.sh
source "$(dirname "$0")/lib.sh"
exp_parse_args convergence "$@"
if [[ $QUICK -eq 1 ]]; then iters=60; else iters=600; fi
jobs="$RUNS/jobs.txt"
echo "prox2s --dataset teacher --samples 32 --features 4 --test-fraction 0 --layers 3 --activation tanh --algorithm 2s --variant proximal --beta 10 --lambda 1 --tau 1 --nu 1 --ef-tau 1 --ef-nu 1 --refit-output off --seed 1 --iterations $iters --metrics-every 1" > "$jobs"
echo "convergence: 1 run ($iters iterations), results in $OUT" >&2
run_jobs "$jobs"
[[ $(status_of prox2s) == ok ]] || { echo "convergence: the run failed: $(cat "$RUNS/prox2s/result.txt")" >&2; exit 1; }
sed -e "s|^out = .*|out = (temporary)|" "$RUNS/prox2s/model/config.txt" > "$OUT/config.txt"
python3 "$EXP_DIR/rate_fit.py" --metrics "$RUNS/prox2s/model/metrics.csv" --out "$OUT/distance.csv" > "$OUT/rate.txt"
cat "$OUT/rate.txt"
gnuplot -e "data='$OUT/distance.csv'; out='$OUT/convergence.png'; $(grep -E '^(rho|c|k0|k1)=' "$OUT/rate.txt" | tr '\n' ';')" "$EXP_DIR/convergence.gp"
echo "convergence: wrote $OUT/convergence.png" >&2
