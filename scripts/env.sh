# Sourced by the project's scripts: points tch at the venv's libtorch.
# shellcheck shell=bash
PS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export VIRTUAL_ENV="$PS_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# torch's folder itself (include/, lib/), not LIBTORCH_USE_PYTORCH: that asks
# Python's `import torch`, which the light set-up cannot do (scripts/setup.sh).
# No LD_LIBRARY_PATH: the binaries find libtorch through their rpath and the
# target/<profile>/lib link that build.rs makes.
unset LIBTORCH_USE_PYTORCH
LIBTORCH=$(ls -d "$VIRTUAL_ENV"/lib/python3*/site-packages/torch 2>/dev/null | head -1)
export LIBTORCH
# No path of this machine in what is built (the release bundle's test reads
# the binary's strings): Rust panics and C/C++ assertion messages name the
# crates' sources and libtorch's headers by these short prefixes instead.
# Every build sources this file, so every build has the same flags.
ps_maps=" --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
case "${RUSTFLAGS:-}" in *"$ps_maps"*) ;; *) export RUSTFLAGS="${RUSTFLAGS:-}$ps_maps" ;; esac
ps_maps=" -ffile-prefix-map=${CARGO_HOME:-$HOME/.cargo}=/cargo -ffile-prefix-map=$LIBTORCH=libtorch"
case "${CFLAGS:-}" in *"$ps_maps"*) ;; *) export CFLAGS="${CFLAGS:-}$ps_maps" ;; esac
case "${CXXFLAGS:-}" in *"$ps_maps"*) ;; *) export CXXFLAGS="${CXXFLAGS:-}$ps_maps" ;; esac
unset ps_maps
# The kit sits beside the checkout; a git worktree elsewhere finds it through
# the main checkout's folder.
if [ -z "${PATCHSCALER_CONFORMANCE:-}" ]; then
  main_root=$(cd "$(git -C "$PS_ROOT" rev-parse --git-common-dir 2>/dev/null)/.." 2>/dev/null && pwd || echo "$PS_ROOT")
  for c in "$PS_ROOT/../shared/conformance" "$main_root/../shared/conformance"; do
    if [ -d "$c" ]; then export PATCHSCALER_CONFORMANCE="$c"; break; fi
  done
fi
# For the measuring scripts: work from the root with a fresh release build,
# the binary in $ps.
ps_release() {
  cd "$PS_ROOT" && cargo build --release --quiet && ps=target/release/patchscaler
}
