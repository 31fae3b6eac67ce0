#!/usr/bin/env bash
# Packs what a lent GPU machine needs into gpu-pack/ (gitignored; name it in
# the device tool's `carry`): the stripped release binary and the lib's test
# binary (xz), and the training images resized to fit the upload limit. The
# machine has torch 2.11.0 but no Rust, so everything compiled is made here.
# Usage: scripts/gpu/pack.sh [budget MB for images, default 13]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../setup.sh"
"$here/../fetch_data.sh"
source "$here/../env.sh"
cd "$PS_ROOT"
out=gpu-pack
rm -rf "$out" && mkdir -p "$out/data"
cargo build --release --quiet
strip -o "$out/patchscaler" target/release/patchscaler
xz -9 -f "$out/patchscaler"
tests=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["lib"]: print(m["executable"])' | tail -1)
strip -o "$out/lib-tests" "$tests"
xz -9 -f "$out/lib-tests"
"$VIRTUAL_ENV/bin/python" -c 'import PIL' 2>/dev/null || "$VIRTUAL_ENV/bin/pip" install -q "pillow==12.*"
# The images get what the 64 MiB upload leaves after the tracked tree, the
# binaries and 1 MB of margin (the model alone is 47 MB since the exact
# latent shipped); an argument overrides it (MB).
tree=$( (git -C "$here/../.." ls-files -z | xargs -0 stat -c %s 2>/dev/null || true) | awk '{s+=$1} END {print s + 0}')
bins=$(du -cb "$out"/*.xz | tail -1 | cut -f1)
budget=${1:-$(awk -v t="$tree" -v b="$bins" 'BEGIN {printf "%.1f", (64 * 1048576 - t - b - 1e6) / 1e6}')}
echo "pack: tracked tree $((tree / 1000000)) MB, binaries $((bins / 1000000)) MB, images at most $budget MB"
"$VIRTUAL_ENV/bin/python" "$here/pack_data.py" data/manifest.csv "$out/data" --budget-mb "$budget"
du -sh "$out"/* | sed 's/^/pack: /'
