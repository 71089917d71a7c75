#!/usr/bin/env bash
# Install (idempotent) and run the test suite on the CPU. GPU tests skip where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest tests -p no:cacheprovider "$@"
