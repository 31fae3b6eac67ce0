#!/usr/bin/env bash
# The test command: sets up the venv on a fresh machine, then runs every test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup.sh"
source "$here/env.sh"
cd "$PS_ROOT"
cargo test --release "$@"
