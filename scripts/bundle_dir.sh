#!/usr/bin/env bash
# Lays out the release bundle's folder (no archive, no licences): the one
# place that decides what a bundle holds, for `scripts/release.sh` and for
# the lent GPU's check of the bundle (`scripts/gpu/train.sh`).
#
#   scripts/bundle_dir.sh OUT BIN TORCH_LIB MODEL
#
#   OUT/bin/patchscaler   BIN stripped (its rpath is $ORIGIN/../lib)
#   OUT/lib/              what `ldd` resolves inside TORCH_LIB's site-packages:
#                         libtorch_cpu, libc10, libgomp, the CUDA runtime and
#                         CUPTI that this libtorch_cpu is linked against
#   OUT/models/default/   MODEL
#   OUT/sample.png
#
# Checked: nothing resolved outside the bundle but glibc and the C++ runtime,
# and no CUDA library beyond the runtime and CUPTI. Needs no cargo, no
# Python, no network: it runs on the lent GPU machine too.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: scripts/bundle_dir.sh OUT BIN TORCH_LIB MODEL" >&2; exit 2; }
out=$1 bin=$2 tl=$(cd "$3" && pwd -P) model=$4
root=$(cd "$(dirname "$0")/.." && pwd)
site=$(cd "$tl/../.." && pwd -P)
[ -e "$out" ] && { echo "bundle_dir: $out exists; give a new folder" >&2; exit 1; }
mkdir -p "$out/bin" "$out/lib" "$out/models"
out=$(cd "$out" && pwd -P)
strip -o "$out/bin/patchscaler" "$bin"

# The libraries: everything ldd resolves inside the venv.
ldd_txt=$(LD_LIBRARY_PATH=$tl ldd "$out/bin/patchscaler")
if grep -q 'not found' <<<"$ldd_txt"; then
  echo "bundle_dir: unresolved libraries:" >&2; grep 'not found' <<<"$ldd_txt" >&2; exit 1
fi
awk '$2 == "=>" {print $3}' <<<"$ldd_txt" | while read -r lib; do
  real=$(realpath "$lib")
  case "$real" in "$site"/*) cp -L "$lib" "$out/lib/" ;; esac
done
if ls "$out/lib" | grep -E 'torch_cuda|c10_cuda|cublas|cudnn|nccl|cufft|cusparse|curand|nvshmem|cusolver'; then
  echo "bundle_dir: a CUDA library beyond the runtime would be bundled (above)" >&2; exit 1
fi
if env -i ldd "$out/bin/patchscaler" | awk '$2 == "=>" {print $3}' | xargs realpath |
  grep -v "^$out/lib/" | grep -vE '/lib(c|m|dl|rt|pthread|util|stdc\+\+|gcc_s)\.so'; then
  echo "bundle_dir: the bundle would load the libraries above from the system" >&2; exit 1
fi
cp -r "$model" "$out/models/default"
cp "$root/assets/sample.png" "$out/"
