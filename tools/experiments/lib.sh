# shellcheck shell=bash
# Shared by the reproduction scripts (sourced, not run). Parses the common
# flags, finds the radmm binary and the Wine Quality data, runs radmm jobs in
# parallel and records how each ended.
#
# Common flags of every tools/experiments/<name>.sh:
#   --quick        small sizes, results in a temporary directory (CI; no timing claims)
#   --shared DIR   the shared data folder (default: ../shared next to the repository)
#   --out DIR      results directory (default: docs/results/<name>, or a temp dir with --quick)
#   --bin DIR      directory holding radmm and radmm-worker (default: $RADMM_BIN_DIR or build/bin)
#   --jobs N       radmm runs at a time (default: 2)
#   --keep-runs    keep every run's directory (model, metrics.csv) under OUT/runs
set -euo pipefail

EXP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$EXP_DIR/../.." && pwd)"

QUICK=0
SHARED="$REPO_ROOT/../shared"
OUT=""
BIN_DIR="${RADMM_BIN_DIR:-$REPO_ROOT/build/bin}"
JOBS=2
KEEP_RUNS=0

exp_usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<EOF
Common flags: --quick, --shared DIR, --out DIR, --bin DIR, --jobs N, --keep-runs, --help
EOF
}

# exp_parse_args NAME "$@": sets QUICK, SHARED, OUT, BIN_DIR, JOBS, RADMM, RUNS.
exp_parse_args() {
  local name="$1"
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --quick) QUICK=1 ;;
      --shared) SHARED="$2"; shift ;;
      --shared=*) SHARED="${1#*=}" ;;
      --out) OUT="$2"; shift ;;
      --out=*) OUT="${1#*=}" ;;
      --bin) BIN_DIR="$2"; shift ;;
      --bin=*) BIN_DIR="${1#*=}" ;;
      --jobs) JOBS="$2"; shift ;;
      --jobs=*) JOBS="${1#*=}" ;;
      --keep-runs) KEEP_RUNS=1 ;;
      -h|--help) exp_usage; exit 0 ;;
      *) echo "$name: unknown flag '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
  done
  RADMM="$BIN_DIR/radmm"
  if [[ ! -x "$RADMM" || ! -x "$BIN_DIR/radmm-worker" ]]; then
    echo "$name: no radmm/radmm-worker in $BIN_DIR; build them (cmake --build build --target radmm radmm-worker) or pass --bin DIR" >&2
    exit 2
  fi
  if [[ -z "$OUT" ]]; then
    if [[ $QUICK -eq 1 ]]; then
      OUT="$(mktemp -d "${TMPDIR:-/tmp}/radmm-$name-quick.XXXXXX")"
    else
      OUT="$REPO_ROOT/docs/results/$name"
    fi
  fi
  mkdir -p "$OUT"
  OUT="$(cd "$OUT" && pwd)"
  if [[ $KEEP_RUNS -eq 1 ]]; then
    RUNS="$OUT/runs"
    mkdir -p "$RUNS"
  else
    RUNS="$(mktemp -d "${TMPDIR:-/tmp}/radmm-$name-runs.XXXXXX")"
    trap 'rm -rf "$RUNS"' EXIT
  fi
  export RADMM RUNS
}

# wine_csv NAME: sets DATA to the Wine Quality (red) path, or says why it is
# missing and exits 0 (a skip, not a failure: the data is not part of the
# repository). Call it directly, not in $(...), so the exit ends the script.
wine_csv() {
  local f="$SHARED/data/wine-quality/winequality-red.csv"
  if [[ ! -f "$f" ]]; then
    echo "$1: skipped: $f not found (pass --shared DIR)" >&2
    [[ $QUICK -eq 1 ]] && rmdir "$OUT" 2> /dev/null
    exit 0
  fi
  # shellcheck disable=SC2034  # read by the calling script
  DATA="$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"
}

# run_jobs FILE: each line is "RUN_NAME radmm-train-args...". Runs them
# $JOBS at a time through run_case.sh; each run leaves $RUNS/RUN_NAME/.
run_jobs() {
  local file="$1"
  [[ -s "$file" ]] || return 0
  xargs -d '\n' -P "$JOBS" -n 1 "$EXP_DIR/run_case.sh" < "$file"
}

# status_of RUN_NAME: ok | diverged | failed (from run_case.sh's record).
status_of() { sed -n 's/^status=//p' "$RUNS/$1/result.txt"; }
