#!/usr/bin/env bash
# Install (idempotent), start the services the farm tests use (PostgreSQL, Chromium; see test_services.sh), and
# run the test suite on the CPU. GPU tests skip where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
eval "$(bash scripts/test_services.sh)"
exec .venv/bin/python -m pytest tests -p no:cacheprovider "$@"
