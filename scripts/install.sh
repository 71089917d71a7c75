#!/usr/bin/env bash
# Create .venv and install trifinger-s2r with its test and PyBullet extras.
# torch comes first, pinned to a CPU build where one is available, so that pip never pulls the CUDA stack.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
