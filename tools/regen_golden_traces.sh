#!/usr/bin/env bash
# Regenerates the golden traces under tests/data/traces on purpose: run it after
# a change that is meant to alter what the layer machines send (the update
# formulas, the protocol, the trace format), then review and commit the new
# files. tests/tools/golden_trace_test.cpp checks them with `check` and
# `replay`, so an unintended change in the machines' output fails there.
#   usage: tools/regen_golden_traces.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
tool="$build/bin/radmm-trace"
out="$here/tests/data/traces"
if [[ ! -x "$tool" ]]; then
  echo "regen_golden_traces: $tool not found; build the radmm-trace target first" >&2
  exit 2
fi
mkdir -p "$out"
common=(--features 4 --width 6 --outputs 2 --samples 23 --test-samples 7 --payloads)
# Full batch, two-splitting, linearised: STEPs of 3 updates, metrics every 2.
"$tool" record "$out/small_2s_full_batch.rtrace" --layers 3 --algorithm 2s --variant linearized \
  --activation relu --iterations 6 --sync-every 3 --metrics-every 2 --seed 11 "${common[@]}"
# Mini-batches, three-splitting, proximal, one stream per node (merged parts).
"$tool" record "$out/small_3s_mini_batch.rtrace" --layers 3 --algorithm 3s --variant proximal \
  --activation sigmoid --iterations 5 --batch-size 8 --updates-per-batch 2 --seed 12 \
  --per-node-streams "${common[@]}"
for f in "$out"/*.rtrace; do
  "$tool" check "$f"
  "$tool" replay "$f"
done
