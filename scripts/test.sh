#!/usr/bin/env bash
# The test command: on a fresh machine it sets up the venv (torch 2.11.0) and
# fetches the training images (the trainers' end-to-end tests use them),
# installs the SLURM and Chromium packages the cluster and browser tests use
# (scripts/test_deps.sh), then
# runs every test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup.sh"
"$here/fetch_data.sh"
"$here/test_deps.sh"
source "$here/env.sh"
cd "$PS_ROOT"
cargo test --release "$@"
