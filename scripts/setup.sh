#!/usr/bin/env bash
# One-time set-up on a fresh machine: a project-local venv (.venv) holding the
# torch==2.11.0 wheel, whose libtorch tch builds and links against.
# Idempotent; a full venv also serves as a light one.
#
# Two sets (only PyPI is needed; its torch wheel is the CUDA build):
#   light  torch's own files, no dependencies, plus the CUDA runtime and
#          CUPTI (nvidia-cuda-runtime, nvidia-cuda-cupti: 5 MB of libraries)
#          that this wheel's libtorch_cpu.so is linked against even on the
#          CPU. No cuBLAS, cuDNN, NCCL...: `--device cuda` says what is
#          missing. Python's `import torch` does not work in it (torch's
#          Python module loads libtorch_cuda); nothing here needs it.
#   full   torch with all its dependencies (the CUDA libraries, 4.7 GB).
# Default: full where an NVIDIA driver is present, else light. Ask with
# `scripts/setup.sh --cuda` / `--cpu` or PATCHSCALER_CUDA=1 / 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
want=${PATCHSCALER_CUDA:-}
case "${1:-}" in
  --cuda) want=1 ;;
  --cpu) want=0 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--cuda|--cpu]" >&2; exit 2 ;;
esac
if [ -z "$want" ]; then
  if [ -e /proc/driver/nvidia/version ] || [ -e /dev/nvidiactl ]; then want=1; else want=0; fi
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
has() { ls -d "$site/$1"-*.dist-info >/dev/null 2>&1; }
full() { has nvidia_cublas && "$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.11.0") else 1)' 2>/dev/null; }
light() { ls -d "$site/torch-2.11.0"*.dist-info >/dev/null 2>&1 && has nvidia_cuda_runtime && has nvidia_cuda_cupti; }
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
if [ "$want" = 1 ]; then
  full || "${pip[@]}" "torch==2.11.0"
else
  # The versions torch 2.11.0's cuda-toolkit==13.0.2 pins.
  light || "${pip[@]}" --no-deps "torch==2.11.0" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85"
fi
