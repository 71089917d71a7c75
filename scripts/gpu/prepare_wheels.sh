#!/usr/bin/env bash
# Build, on the CPU machine, the wheels the GPU machine lacks (CPython 3.12, manylinux x86_64), split them into
# .gpu-wheels/call<k>/ folders that each travel with one device command (64 MiB per command, working tree
# included), check them, and print the plan: which folder each device call carries. docs/gpu.md has the calls.
#
#   bash scripts/gpu/prepare_wheels.sh [--margin-mib M] [--smoke PYTHON3.12]
#
# --margin-mib: room kept in each command for files added to the tree before the GPU window (default 3).
# --smoke PY: also install the joined wheels into a throwaway folder for the Python 3.12 interpreter PY and step
#             the TriFinger model in MuJoCo Warp on Warp's CPU device (needs numpy, absl-py and etils, which the
#             GPU image has: they are pip-installed into a throwaway venv).
# Run it again right before a GPU window if the tree has grown (a committed checkpoint, say): the split depends on
# the tree's size. Downloads come from PyPI (pip's cache makes a rerun fast).
set -euo pipefail
cd "$(dirname "$0")/../.."
MARGIN=3
SMOKE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --margin-mib) MARGIN="$2"; shift 2 ;;
    --smoke) SMOKE="$2"; shift 2 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "prepare_wheels.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=.gpu-wheels
DL=$OUT/download

# The pinned set (CARRIED in wheels.py) and pyproject.toml's == pins must agree.
"$PY" - <<'EOF'
import re, sys, tomllib
sys.path.insert(0, "scripts/gpu")
from wheels import CARRIED, normalise
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = deps["dependencies"] + [r for extra in deps.get("optional-dependencies", {}).values() for r in extra]
bad = []
for r in reqs:
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^;,\s]+)", r)
    if m and normalise(m.group(1)) in CARRIED and CARRIED[normalise(m.group(1))] != m.group(2):
        bad.append(f"{m.group(1)}: pyproject pins {m.group(2)}, wheels.py carries {CARRIED[normalise(m.group(1))]}")
if bad:
    sys.exit("prepare_wheels.sh: " + "; ".join(bad))
try:
    from importlib import metadata
    for name, version in CARRIED.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if have != version:
            print(f"note: {name} is {have} in this Python but {version} is carried (CARRIED in wheels.py)")
except Exception:
    pass
EOF

rm -rf "$DL"
mkdir -p "$DL"
SPECS=$("$PY" -c 'import sys; sys.path.insert(0, "scripts/gpu"); from wheels import CARRIED; print(" ".join(f"{k}=={v}" for k, v in CARRIED.items()))')
echo "downloading: $SPECS"
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any -d "$DL" $SPECS 2> >(grep -v "is ignored: it is neither" >&2)

"$PY" scripts/gpu/wheels.py check --wheels "$DL"
"$PY" scripts/gpu/wheels.py plan --wheels "$DL" --out "$OUT" --repo . --margin-mib "$MARGIN"

if [ -n "$SMOKE" ]; then
  TMP=$(mktemp -d /tmp/gpu-wheels-smoke.XXXXXX)
  echo "smoke test with $SMOKE in $TMP"
  "$SMOKE" -m venv "$TMP/venv"
  "$TMP/venv/bin/python" -m pip install -q numpy absl-py etils
  "$TMP/venv/bin/python" scripts/gpu/wheels.py stash --repo . --store "$TMP/store" > /dev/null
  "$TMP/venv/bin/python" scripts/gpu/wheels.py join --store "$TMP/store" --dest "$TMP/joined" > /dev/null
  "$TMP/venv/bin/python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$TMP/site" \
    "$TMP"/joined/*.whl
  PYTHONPATH="$TMP/site" "$TMP/venv/bin/python" - <<'EOF'
import sys, mujoco, mujoco_warp as mjw, warp as wp, git, pyvers
wp.config.quiet = True
m = mujoco.MjModel.from_xml_path("src/trifinger_s2r/robot/assets/trifinger_pro_scene.xml")
with wp.ScopedDevice("cpu"):
    mm = mjw.put_model(m)
    d = mjw.make_data(m, nworld=2)
    for _ in range(4):
        mjw.step(mm, d)
    qpos = d.qpos.numpy()
assert qpos.shape == (2, m.nq) and (abs(qpos) < 1e3).all()
print(f"smoke: Python {sys.version.split()[0]}, mujoco {mujoco.__version__}, warp {wp.config.version}, "
      f"mujoco_warp stepped 2 worlds of the TriFinger scene on Warp's CPU device")
EOF
  rm -rf "$TMP"
fi
