#!/usr/bin/env bash
# The prepared GPU run: one command on the GPU machine, from the repository root (docs/gpu.md):
#
#   bash scripts/gpu/run.sh --minutes M --out DIR        # GPU machine: wheels, tests, benches, training, export
#   bash scripts/gpu/run.sh --stash-only                 # GPU machine: keep the wheel parts this call carried
#   bash scripts/gpu/run.sh --cpu-dry-run --out DIR      # CPU machine: the same stages, tiny, on Warp's CPU device
#
# Writes bench.json, model.pt, config.json, progress.json, policy.onnx, metadata.json, summary.json and log.txt
# into DIR; exits 1 if any stage failed. All options: bash scripts/gpu/run.sh --help (scripts/gpu/run.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
for arg in "$@"; do
  [ "$arg" = "--cpu-dry-run" ] && DRY=1
done
# The GPU image's python3 holds torch; the dry run uses the project's venv where there is one.
if [ -z "${PYTHON:-}" ]; then
  if [ "$DRY" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
exec "$PYTHON" scripts/gpu/run.py --python "$PYTHON" "$@"
