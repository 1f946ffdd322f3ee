#!/usr/bin/env bash
# Runs on a GPU machine in a few minutes: installs the project and prints the GPU table.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e '.[video]' 2>/dev/null || true
python benchmarks/gpu_check.py "$@"
