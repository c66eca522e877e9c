#!/usr/bin/env bash
# Runs one reproduction's --quick mode into a temporary directory and checks
# that its outputs exist and parse. Usage: check_quick.sh NAME BIN_DIR SHARED_DIR
set -euo pipefail
name="$1" bin="$2" shared="$3"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
exp="$repo/tools/experiments"
out="$(mktemp -d "${TMPDIR:-/tmp}/radmm-check-$name.XXXXXX")"
trap 'rm -rf "$out"' EXIT
fail() { echo "check_quick $name: $*" >&2; exit 1; }
wine="$shared/data/wine-quality/winequality-red.csv"

# csv_ok FILE MIN_ROWS COLUMN...: a header naming COLUMNs and at least MIN_ROWS rows.
csv_ok() {
  python3 - "$@" <<'PY' || fail "bad CSV $1"
import csv, sys
path, n, cols = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = list(csv.DictReader(open(path, newline="")))
missing = [c for c in cols if rows and c not in rows[0]]
if len(rows) < n or missing:
    sys.exit("%s: %d rows (need %d), missing columns %s" % (path, len(rows), n, missing))
PY
}
png_ok() {
  if ! { [[ -s "$1" ]] && head -c 8 "$1" | od -An -c | grep -q 'P   N   G'; }; then fail "no PNG at $1"; fi
}

case "$name" in
  table3)
    [[ -f "$wine" ]] || { echo "check_quick: skipped: $wine not found"; exit 0; }
    "$exp/table3.sh" --quick --bin "$bin" --shared "$shared" --out "$out"
    csv_ok "$out/summary.csv" 28 name status mse_test mse_train seconds
    csv_ok "$out/references.csv" 2 predictor mse_test
    grep -q '^| ReLU | 3 |' "$out/table.md" || fail "table.md lacks the ReLU N=3 row"
    # Every run either finished or says why not.
    python3 - "$out/summary.csv" <<'PY' || fail "a run neither finished nor gave a reason"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    assert r["status"] in ("ok", "diverged", "failed"), r
PY
    # The python split is radmm's: the least-squares model loaded into a
    # 2-layer ReLU network gives the same test MSE at iteration 0.
    mkdir -p "$out/ls" && python3 "$exp/wine_ref.py" --data "$wine" --npy-dir "$out/ls" --out "$out/ls/ref.csv"
    "$bin/radmm" train --data "$wine" --target quality --layers 2 --width 12 --activation relu \
      --init-from "$out/ls" --iterations 1 --optimizer sgd --out "$out/ls/run" --quiet
    python3 - "$out/ls/ref.csv" "$out/ls/run/metrics.csv" <<'PY' || fail "least squares on radmm's split differs"
import csv, sys
ref = {r["predictor"]: float(r["mse_test"]) for r in csv.DictReader(open(sys.argv[1]))}
k0 = next(csv.DictReader(open(sys.argv[2])))
assert abs(float(k0["mse_test"]) - ref["least squares"]) < 1e-10, (k0["mse_test"], ref)
PY
    ;;
  table3_variants)
    [[ -f "$wine" ]] || { echo "check_quick: skipped: $wine not found"; exit 0; }
    "$exp/table3_variants.sh" --quick --bin "$bin" --shared "$shared" --out "$out"
    csv_ok "$out/summary.csv" 8 name status mse_test
    grep -q '^| 2S | relu | 3 |' "$out/table.md" || fail "table.md lacks the 2S ReLU row"
    ;;
  fig5)
    [[ -f "$wine" ]] || { echo "check_quick: skipped: $wine not found"; exit 0; }
    "$exp/fig5.sh" --quick --bin "$bin" --shared "$shared" --out "$out"
    for a in relu sigmoid; do for m in sgd sgdm adam 2s 3s; do
      [[ -f "$out/curves/${m}_$a.csv" ]] || fail "no curve ${m}_$a"
    done; done
    csv_ok "$out/curves/adam_relu.csv" 2 k mse_train mse_test
    png_ok "$out/fig5.png"
    ;;
  fig6)
    [[ -f "$wine" ]] || { echo "check_quick: skipped: $wine not found"; exit 0; }
    "$exp/fig6.sh" --quick --bin "$bin" --shared "$shared" --out "$out"
    csv_ok "$out/runtime.csv" 10 method activation mean_s std_s n
    png_ok "$out/fig6.png"
    ;;
  table4)
    "$exp/table4.sh" --quick --bin "$bin" --out "$out"
    csv_ok "$out/runtime.csv" 6 layers d mode mean_s std_s
    grep -q 'Parallel .*faster' "$out/table.md" || fail "table.md incomplete"
    png_ok "$out/table4.png"
    ;;
  convergence)
    "$exp/convergence.sh" --quick --bin "$bin" --out "$out"
    csv_ok "$out/distance.csv" 50 k L dist fit
    grep -q '^rho=0\.' "$out/rate.txt" || fail "no rate in (0, 1) in rate.txt"
    png_ok "$out/convergence.png"
    ;;
  *) fail "unknown reproduction" ;;
esac
echo "check_quick $name: ok"
