#!/usr/bin/env bash
# Writes dist/patchscaler-<version>-linux-x86_64.tar.zst: a folder that runs
# on a Linux x86-64 machine with glibc 2.34 or later and nothing installed.
#
#   bin/patchscaler     the stripped release binary (rpath $ORIGIN/../lib)
#   lib/                the libraries it loads: libtorch_cpu, libc10, libgomp,
#                       the CUDA runtime and CUPTI that this libtorch_cpu is
#                       linked against (no GPU needed)
#   models/default/     the shipped model (found beside bin/ at run time)
#   sample.png          the sample image
#   README.md LICENSE   and licences/: libtorch's, NVIDIA's, GCC's (libgomp),
#                       the Rust crates', the NIQE parameters', and the
#                       sources of the data the model was trained on
#
# The folder is laid out and checked by scripts/bundle_dir.sh (every library
# from the set-up's venv, as `ldd` finds it; nothing from the system but
# glibc and the C++ runtime: libstdc++ with GLIBCXX_3.4.26, GCC 9, which
# every system with glibc 2.34 has, while Debian 12's own libstdc++ would
# need glibc 2.36). CUDA is added to it as the README says ("The release
# bundle").
#
# Environment: PS_BIN packages that binary instead of building
# target/release/patchscaler (the bundle test passes its own); DIST (dist/);
# ZSTD_LEVEL (19).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup.sh"
source "$here/env.sh"
cd "$PS_ROOT"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name=patchscaler-$version-linux-x86_64
dist=${DIST:-$PS_ROOT/dist}
bin=${PS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/patchscaler
fi
site=$(dirname "$LIBTORCH")
work=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$work"' EXIT
out=$work/$name
"$here/bundle_dir.sh" "$out" "$bin" "$LIBTORCH/lib" models/default
mkdir -p "$out/licences/data"
cp README.md LICENSE "$out/"
lic=$out/licences
cp "$site"/torch-*.dist-info/licenses/LICENSE "$lic/libtorch-LICENSE"
cp "$site"/torch-*.dist-info/licenses/NOTICE "$lic/libtorch-NOTICE"
cp "$site"/nvidia_cuda_runtime-*.dist-info/licenses/License.txt "$lic/nvidia-cuda-runtime-License.txt"
cp "$site"/nvidia_cuda_cupti-*.dist-info/licenses/License.txt "$lic/nvidia-cuda-cupti-License.txt"
cp /usr/share/doc/libstdc++6/copyright "$lic/gcc-runtime-copyright"
cp assets/NOTICE.md "$lic/niqe-NOTICE.md"
cp docs/data-licences/* "$lic/data/"
# The crates compiled into the binary (normal dependencies of the package).
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
root, seen, todo = m["resolve"]["root"], set(), [m["resolve"]["root"]]
while todo:
    i = todo.pop()
    if i in seen: continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] in (None, "normal") for k in d["dep_kinds"]): todo.append(d["pkg"])
seen.discard(root)
print("Rust crates compiled into bin/patchscaler: name version licence (source)\n")
for p in sorted((pkgs[i] for i in seen), key=lambda p: (p["name"], p["version"])):
    print(p["name"], p["version"], p.get("license") or "see " + (p.get("license_file") or "?"), p.get("repository") or "")
' >"$lic/rust-crates.txt"

mkdir -p "$dist"
rm -f "$dist/$name.tar.zst"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$(git log -1 --format=%ct)" -cf - "$name" |
  zstd -q -T0 "-${ZSTD_LEVEL:-19}" -o "$dist/$name.tar.zst"
echo "release: $dist/$name.tar.zst ($(du -m "$dist/$name.tar.zst" | cut -f1) MB; unpacked $(du -sm "$out" | cut -f1) MB)"
