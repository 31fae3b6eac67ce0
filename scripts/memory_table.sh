#!/usr/bin/env bash
# The README's "Memory" table: peak RSS and time of `upscale` (shipped
# model, CPU, 2 threads, f32 as when the table was made) against input
# size, with the default --memory-limit and with a tighter one that makes
# the image run in regions. Inputs are a synthetic test card (gradients, edges, noise) of
# each size, written by the venv's numpy. Prints a Markdown table.
#   scripts/memory_table.sh [out-dir]    (2048 px takes about 20 min here)
# MEMORY_SPECS="256:1024 512:1536" runs only those sides (side:tight limit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
ps_release
out=${1:-runs/memory}
mkdir -p "$out"
specs=${MEMORY_SPECS:-256:1024 512:1536 1024:2048 2048:4096}
"$PS_ROOT/.venv/bin/python" -c 'import numpy' 2>/dev/null || "$PS_ROOT/.venv/bin/pip" install -q "numpy<3"
# shellcheck disable=SC2086
"$PS_ROOT/.venv/bin/python" - "$out" $(for s in $specs; do echo "${s%%:*}"; done) <<'PY'
import struct, sys, zlib
import numpy as np
out, sides = sys.argv[1], map(int, sys.argv[2:])
def png(path, a):
    h, w, _ = a.shape
    raw = b''.join(b'\x00' + a[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                           + chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))
for side in sides:
    y, x = np.mgrid[0:side, 0:side] / side
    r = 128 + 100 * np.sin(6 * x + 3 * y)
    g = 255 * y
    b = 128 + 80 * np.sign(np.sin(20 * x)) * (y > 0.5)
    noise = np.random.RandomState(side).randn(side, side, 3) * 8 * (x[..., None] > 0.5)
    png(f'{out}/card{side}.png', np.clip(np.stack([r, g, b], -1) + noise, 0, 255).astype(np.uint8))
PY
echo "| input | --memory-limit | how it ran | peak RSS | estimate | time |"
echo "|---|---|---|---|---|---|"
for spec in $specs; do
  side=${spec%%:*}
  for limit in default "${spec##*:}"; do
    flag=(); [ "$limit" = default ] || flag=(--memory-limit "$limit")
    log="$out/card${side}-${limit}.log"
    /usr/bin/time -f "peak %M KiB, %e s" "$ps" upscale --threads 2 --verbose --precision f32 "${flag[@]}" \
      "$out/card$side.png" -o "$out/card${side}-${limit}_x4.png" >"$log" 2>&1
    peak=$(sed -n 's/.*peak \([0-9]*\) KiB.*/\1/p' "$log")
    secs=$(sed -n 's/.*KiB, \([0-9.]*\) s.*/\1/p' "$log")
    how=$(grep -o 'in regions of [0-9]* px' "$log" || echo whole)
    est=$(grep -o 'memory estimate [0-9]* MiB' "$log" | grep -o '[0-9]*' || echo "?")
    shown=$limit; [ "$limit" = default ] && shown="default ($(awk '/^MemTotal:/ {print int($2 / 1024 * 75 / 100)}' /proc/meminfo))"
    echo "| ${side} x ${side} | $shown | $how | $((peak / 1024)) MiB | $est MiB | ${secs} s |"
  done
done
