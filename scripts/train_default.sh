#!/usr/bin/env bash
# Reproduces the shipped model (models/default) from nothing, with the step
# counts it was trained for. Each trainer checkpoints into runs/<part> and
# resumes from there when re-run; raise --steps to train longer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup.sh"
"$here/fetch_data.sh"
source "$here/env.sh"
cd "$PS_ROOT"
cargo build --release --quiet
ps=target/release/patchscaler
model=${1:-models/default}
data=data/manifest.csv
[ -d "$model" ] || $ps init --preset cpu -o "$model"
$ps train ae      --model "$model" --data $data --out runs/ae      --steps "${AE_STEPS:-1600}" --batch 8 --crop 128 --lr 2e-4 --config scripts/train/ae.toml --quiet
$ps train grm     --model "$model" --data $data --out runs/grm     --steps "${GRM_STEPS:-475}" --batch 8 --crop 128 --lr 2e-4 --config scripts/train/grm.toml --quiet
$ps train texture --model "$model" --data $data --out runs/texture --steps "${TEXTURE_STEPS:-125}" --lr 5e-4 --config scripts/train/texture.toml --no-grm --quiet
$ps train rtm     --model "$model" --data $data --candidates "${RTM_CANDIDATES:-2000}"
$ps train dit     --model "$model" --data $data --out runs/dit     --steps "${DIT_STEPS:-500}" --batch 4 --crop 192 --lr 2e-4 --config scripts/train/dit.toml --quiet
