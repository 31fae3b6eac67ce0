#!/usr/bin/env bash
# Training throughput and loss, float32 against bf16 autocast, for every
# trainer: each part trains a few steps from the shipped model with the same
# seed (so the same batches and noise), once per precision, and the table
# gives samples/s (mean over the steps after the first two) and the mean
# relative difference of the per-step training loss. Usage:
#   scripts/bench_train.sh [model] [steps-scale] [parts, e.g. "ae dit"]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
ps_release
model=${1:-models/default}
scale=${2:-1}
only=${3:-ae grm texture dit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# part, steps, flags (the shipped run's batch and crop, from train_default.sh)
runs=(
  "ae      $((30 * scale)) --batch 8 --crop 128"
  "grm     $((30 * scale)) --batch 8 --crop 128"
  "texture $((12 * scale)) --no-grm"
  "dit     $((20 * scale)) --batch 4 --crop 192"
)
echo "| trainer | batch | f32 samples/s | bf16 samples/s | bf16 / f32 | mean rel. loss diff |"
echo "|---|---|---|---|---|---|"
for r in "${runs[@]}"; do
  read -r part steps flags <<<"$r"
  [[ " $only " == *" $part "* ]] || continue
  for p in f32 bf16; do
    # A trainer writes the part it trained into the model folder: each run starts from a fresh copy.
    rm -rf "$work/model" && cp -r "$model" "$work/model"
    # shellcheck disable=SC2086
    $ps train "$part" --model "$work/model" --data data/manifest.csv --out "$work/$part-$p" \
      --steps "$steps" --lr 1e-6 --val-every 100000 --ckpt-every 100000 --precision "$p" --quiet $flags >/dev/null
    # The first logged value of a step is its loss; keep (step, loss, samples/s).
    awk -F, '$2=="train" && !seen[$1]++ {print $1, $4, $6}' "$work/$part-$p/log.csv" >"$work/$part-$p.txt"
  done
  join "$work/$part-f32.txt" "$work/$part-bf16.txt" | awk -v part="$part" -v flags="$flags" '
    $1 > 2 { n++; f += $3; b += $5; d += ($4 - $2) / ($2 == 0 ? 1 : ($2 < 0 ? -$2 : $2)); a += (($4 - $2) < 0 ? $2 - $4 : $4 - $2) / ($2 < 0 ? -$2 : $2) }
    END {
      batch = (flags ~ /--batch/) ? flags : "default"; sub(/.*--batch /, "", batch); sub(/ .*/, "", batch)
      printf "| %s | %s | %.2f | %.2f | %.2fx | %.2f%% (signed %+.2f%%) |\n", part, batch, f / n, b / n, b / f, 100 * a / n, 100 * d / n
    }'
done
grep -o -m1 'amx[a-z_0-9]*\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/cpu bf16 features: /'; echo
