#!/usr/bin/env bash
# Every measured figure of the README's results, from a model (default: the
# shipped one), into runs/eval/: the three evaluation protocols (bicubic,
# light, Real-ESRGAN; the README's docs/eval_val_<protocol>_x4.csv are
# runs/eval/<protocol>/eval.csv) on the validation split, the ablations
# (paper Tables 3 and 4, small scale), the 512 -> 2048 speed benchmark and
# the quality / runtime trade-off (paper Fig. 6).
#   scripts/eval_default.sh [model] [out]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
ps_release
model=${1:-models/default}
out=${2:-runs/eval}
mkdir -p "$out"
mapfile -t val < <(awk -F, '$NF=="val" {print "data/"$1}' data/manifest.csv)
common=(--model "$model" --crop-hr 256 --seed 0)

for d in bicubic light realesrgan; do
  $ps eval "${val[@]}" "${common[@]}" --degrade "$d" -o "$out/$d" | tee "$out/$d.txt"
done

# Ablations on the Real-ESRGAN protocol (the setting of the paper's tables).
ablate() { # name, extra flags...
  local name=$1; shift
  $ps eval "${val[@]}" "${common[@]}" --degrade realesrgan --no-uniform "$@" -o "$out/ablation-$name" >"$out/ablation-$name.txt"
}
ablate prompt-zeros --prompt zeros
ablate y0-lr --y0 lr
ablate thresholds-paper --thresholds 0.95,0.75
ablate no-detail-gate --no-detail-gate
# The detail gate on clean inputs too (README, "Detail gate").
$ps eval "${val[@]}" "${common[@]}" --degrade bicubic --no-uniform --no-detail-gate -o "$out/bicubic-no-detail-gate" >"$out/bicubic-no-detail-gate.txt"
# A plan with more hard patches: the thresholds that give 20 % simple, 30 % medium.
harder=$($ps calibrate --model "$model" --data data/manifest.csv --shares 0.2,0.3 --dry-run | sed -n 's/^log thresholds[^:]*: //p' | tr -d ' ')
ablate thresholds-harder "--log-thresholds=$harder"
echo "$harder" >"$out/ablation-thresholds-harder.value"

$ps bench --model "$model" -o "$out/bench" | tee "$out/bench.txt"
$ps bench --tradeoff --model "$model" --images 8 -o "$out/tradeoff" | tee "$out/tradeoff.txt"
