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
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "test_deps: not root or no apt-get; missing: ${want[*]}" >&2
  exit 0
fi
echo "test_deps: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null 2>&1 ||
  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null; }
