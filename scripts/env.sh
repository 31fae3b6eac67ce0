# Sourced by the project's scripts: points tch at the venv's libtorch.
# shellcheck shell=bash
PS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export VIRTUAL_ENV="$PS_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
torch_lib=$(ls -d "$VIRTUAL_ENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1)
if [ -n "$torch_lib" ]; then export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
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
