#!/usr/bin/env bash
# One-time set-up on a fresh machine: a project-local venv holding the
# torch==2.11.0 wheel whose libtorch tch links against. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.11.0") else 1)' 2>/dev/null; then
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "torch==2.11.0" "numpy<3"
fi
# The browser test of `patchscaler serve` (tests/serve_browser.rs) drives
# Chromium through chromedriver: installed here where apt-get is usable
# (as root, or with password-less sudo); the test fails without them.
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && command -v apt-get >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root="none"; fi
  fi
  if [ "$as_root" = none ]; then
    echo "setup: chromium/chromedriver missing and apt-get needs root; the browser test will fail" >&2
  else
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
      || echo "setup: apt-get could not install chromium chromium-driver; the browser test will fail" >&2
  fi
fi
