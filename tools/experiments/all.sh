#!/usr/bin/env bash
# Every reproduction, one after the other: Table III, its paper-preset
# variants, Figure 5 (from Table III's runs), Figure 6, Table IV (scaled) and
# the convergence rate.
#
#   tools/experiments/all.sh [--quick] [--shared DIR] [--out DIR] [--bin DIR] [--jobs N]
#
# --out DIR puts each reproduction in DIR/<name>/ (default: docs/results/<name>/,
# or temporary directories with --quick). Timing reproductions (fig6, table4)
# run one job at a time whatever --jobs says. Exit status: the first failure's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out=""
pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --out=*) out="${1#*=}" ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --shared|--bin|--jobs) pass+=("$1" "$2"); shift ;;
    *) pass+=("$1") ;;
  esac
  shift
done
quick=0
for a in "${pass[@]+"${pass[@]}"}"; do [[ $a == --quick ]] && quick=1; done
if [[ -z "$out" && $quick -eq 1 ]]; then out="$(mktemp -d "${TMPDIR:-/tmp}/radmm-experiments-quick.XXXXXX")"; fi
dir() { if [[ -n "$out" ]]; then echo "--out $out/$1"; fi; }
results="${out:-$here/../../docs/results}"

# shellcheck disable=SC2046
"$here/table3.sh" "${pass[@]+"${pass[@]}"}" $(dir table3)
# shellcheck disable=SC2046
"$here/table3_variants.sh" "${pass[@]+"${pass[@]}"}" $(dir table3_variants)
if [[ -d "$results/table3/curves" ]]; then
  # shellcheck disable=SC2046
  "$here/fig5.sh" "${pass[@]+"${pass[@]}"}" --from "$results/table3" $(dir fig5)
else
  echo "all: fig5 skipped: no Table III curves in $results/table3" >&2
fi
# shellcheck disable=SC2046
"$here/fig6.sh" "${pass[@]+"${pass[@]}"}" $(dir fig6)
# shellcheck disable=SC2046
"$here/table4.sh" "${pass[@]+"${pass[@]}"}" $(dir table4)
# shellcheck disable=SC2046
"$here/convergence.sh" "${pass[@]+"${pass[@]}"}" $(dir convergence)
echo "all: results under $results" >&2
