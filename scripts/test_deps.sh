#!/usr/bin/env bash
# What the test suite needs beyond the venv, from Debian's packages: a SLURM
# scheduler for the array-job test (slurm-wlm, munge) and headless Chromium
# for the web page's browser test (chromium, chromium-driver). Installed only
# where missing, and only as root with apt-get; elsewhere the tests that need
# them say what is missing. Idempotent.
set -euo pipefail
want=()
[ -x /usr/sbin/slurmctld ] || want+=(slurm-wlm)
[ -x /usr/sbin/munged ] || want+=(munge)
[ -x /usr/bin/chromium ] || want+=(chromium)
[ -x /usr/bin/chromedriver ] || want+=(chromium-driver)
[ ${#want[@]} -eq 0 ] && exit 0
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo -n); else
    echo "test_deps: not root (and no password-less sudo); missing: ${want[*]}: the tests that need them will fail" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "test_deps: no apt-get; missing: ${want[*]}: the tests that need them will fail" >&2
  exit 0
fi
echo "test_deps: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -q "${want[@]}" >/dev/null 2>&1 ||
  { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 && "${as_root[@]}" apt-get install -y -q "${want[@]}" >/dev/null; } ||
  echo "test_deps: apt-get could not install ${want[*]}: the tests that need them will fail" >&2
