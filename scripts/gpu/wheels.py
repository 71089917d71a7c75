"""The wheel folder the GPU machine needs, split into parts that travel with consecutive device commands.

Standard library only (it also runs on the GPU machine before anything is installed there). Two sides:

CPU machine (scripts/gpu/prepare_wheels.sh calls these):
  plan      split the downloaded wheels into .gpu-wheels/call<k>/ folders, each small enough to travel with the
            working tree in one device command (64 MiB per command, tree included), write MANIFEST.json into
            each, print the plan and the exact device calls
  check     wheel tags (cp312 / py3 / abi3, manylinux x86_64 or any) and completeness: every Requires-Dist of
            a carried wheel is carried, provided by the GPU image, or deliberately left out

GPU machine (scripts/gpu/run.py calls these):
  stash     copy the parts carried in this command (.gpu-wheels/call<k>/) into a store outside the working tree
            (default /root/gpu-wheels), which outlives the command while the machine stays warm
  join      rebuild every wheel from its parts in the store, check sizes and sha256 against the manifest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024
TREE_LIMIT = 64 * MIB
"""What one device command may carry: tracked + untracked-not-ignored files + carried paths."""
MANIFEST = "MANIFEST.json"
CALL_DIR = re.compile(r"^call(\d+)$")

# What the GPU image lacks, at the versions the CPU venv tests (pyproject.toml pins mujoco, mujoco-core and
# mujoco-warp to 4.0.0; the others are the versions resolved in .venv on 2026-11-27). rsl-rl-lib's GitPython
# brings gitdb and smmap; tensordict brings pyvers; mujoco-warp brings warp-lang; mujoco imports glfw.
CARRIED = {
    "warp-lang": "1.19.0",
    "mujoco-warp": "4.0.0",
    "mujoco": "4.0.0",
    "mujoco-core": "4.0.0",
    "glfw": "2.11.0",
    "rsl-rl-lib": "5.5.1",
    "tensordict": "0.15.3",
    "pyvers": "0.2.3",
    "gitpython": "3.2.1",
    "gitdb": "4.0.12",
    "smmap": "5.0.3",
}
LEFT_OUT = {
    "mujoco-studio": "MuJoCo's viewer (mujoco.studio, 12.8 MB); train, bench, export and eval never import it",
    "pyopengl": "mujoco's OpenGL rendering; not imported by train, bench, export or eval",
    "websockets": "mujoco-studio's",
}
"""Requirements of carried wheels that are deliberately not carried (pip installs with --no-deps)."""
IMAGE_PROVIDES = {
    # The GPU image's Python packages as the device tool's docs list them (read on a machine 2026-11-17;
    # normalised names). Its python3 is 3.12 with torch 2.11 (CUDA 13), numpy 2.5, onnx 1.23, onnxruntime 1.30,
    # onnxscript 0.7 among them.
    "absl-py", "accelerate", "aiofiles", "aiohappyeyeballs", "aiohttp", "aiosignal", "annotated-doc", "anyio",
    "attrs", "botorch", "build", "certifi", "charset-normalizer", "chex", "click", "cloudpickle", "cmake",
    "colorama", "contourpy", "coverage", "cuda-bindings", "cuda-core", "cuda-pathfinder", "cuda-toolkit",
    "cupy-cuda13x", "cycler", "cython", "diffrax", "e3nn", "einops", "equinox", "etils", "execnet", "filelock",
    "flatbuffers", "flax", "fonttools", "formulaic", "frozenlist", "fsspec", "gpytorch", "grpcio", "h11", "h5py",
    "hf-xet", "httpcore", "httpx", "huggingface-hub", "humanize", "hypothesis", "idna", "imageio", "iniconfig",
    "interface-meta", "jax", "jax-cuda13-pjrt", "jax-cuda13-plugin", "jaxlib", "jaxtyping", "jinja2", "joblib",
    "kiwisolver", "lazy-loader", "lightning", "lightning-utilities", "linear-operator", "lineax", "llvmlite",
    "lxml", "markdown", "markdown-it-py", "markupsafe", "matplotlib", "mdurl", "meson", "ml-dtypes", "mpi4py",
    "mpmath", "msgpack", "multidict", "multipledispatch", "mypy-extensions", "nanobind", "narwhals", "networkx",
    "ninja", "numba", "numba-cuda", "numpy", "numpyro", "nvidia-cublas", "nvidia-cuda-cupti", "nvidia-cuda-nvrtc",
    "nvidia-cuda-runtime", "nvidia-cudnn-cu13", "nvidia-cufft", "nvidia-cufile", "nvidia-curand",
    "nvidia-cusolver", "nvidia-cusparse", "nvidia-cusparselt-cu13", "nvidia-ml-py", "nvidia-nccl-cu13",
    "nvidia-nvjitlink", "nvidia-nvshmem-cu13", "nvidia-nvtx", "onnx", "onnx-ir", "onnxruntime", "onnxscript",
    "opencv-python-headless", "opt-einsum", "opt-einsum-fx", "optax", "optimistix", "orbax-checkpoint",
    "packaging", "pandas", "pathspec", "patsy", "peft", "pillow", "pip", "pluggy", "portalocker",
    "prometheus-client", "propcache", "protobuf", "psutil", "py-cpuinfo", "pyarrow", "pybind11", "pygments",
    "pyparsing", "pyproject-hooks", "pyre-extensions", "pytest", "pytest-benchmark", "pytest-cov", "pytest-mock",
    "pytest-timeout", "pytest-xdist", "python-dateutil", "pytorch-lightning", "pyyaml", "regex", "requests",
    "rich", "sacrebleu", "safetensors", "scikit-build-core", "scikit-image", "scikit-learn", "scipy", "seaborn",
    "sentence-transformers", "sentencepiece", "setuptools", "shellingham", "simplejson", "six",
    "sortedcontainers", "statsmodels", "sympy", "tabulate", "tensorboard", "tensorboard-data-server",
    "tensorstore", "threadpoolctl", "tifffile", "tiktoken", "timm", "tokenizers", "toolz", "torch",
    "torch-geometric", "torchaudio", "torchdiffeq", "torchmetrics", "torchvision", "tqdm", "transformers",
    "treescope", "triton", "typer", "typing-extensions", "typing-inspect", "urllib3", "uvloop", "wadler-lindig",
    "werkzeug", "wheel", "wrapt", "xarray", "xxhash", "yarl", "zipp",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_name(path: Path) -> tuple[str, str, list[str]]:
    """(normalised project name, version, tags 'python-abi-platform') of a wheel file name."""
    parts = path.name[: -len(".whl")].split("-")
    name, version = parts[0], parts[1]
    pythons, abis, platforms = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    return normalise(name), version, [f"{p}-{a}-{pl}" for p in pythons for a in abis for pl in platforms]


def tags_ok(tags: list[str]) -> bool:
    """Installable on CPython 3.12, Linux x86_64 (manylinux) by some tag."""
    for tag in tags:
        python, abi, platform = tag.split("-")
        py_ok = python in ("cp312", "py3", "py2.py3") or python == "py312"
        abi_ok = abi in ("cp312", "abi3", "none")
        plat_ok = platform == "any" or (platform.startswith("manylinux") and platform.endswith("_x86_64"))
        if py_ok and abi_ok and plat_ok:
            return True
    return False


def requires_dist(path: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def check(wheel_dir: Path) -> int:
    """Print each wheel's tags and unmet requirements; 1 if a wheel is unfit or a requirement is unmet."""
    try:
        from packaging.markers import default_environment
        from packaging.requirements import Requirement
    except ImportError:
        print("check: needs the 'packaging' module (run it with .venv/bin/python)", file=sys.stderr)
        return 2
    env = dict(default_environment(), python_version="3.12", python_full_version="3.12.3", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", implementation_name="cpython",
               platform_python_implementation="CPython", os_name="posix", extra="")
    wheels = sorted(wheel_dir.glob("*.whl"))
    carried = {wheel_name(w)[0]: wheel_name(w)[1] for w in wheels}
    bad = 0
    for expected, version in CARRIED.items():
        if carried.get(expected) != version:
            print(f"MISSING  {expected}=={version} (found: {carried.get(expected)})")
            bad += 1
    for wheel in wheels:
        _, _, tags = wheel_name(wheel)
        fit = tags_ok(tags)
        bad += not fit
        print(f"{'ok      ' if fit else 'UNFIT   '} {wheel.name} ({wheel.stat().st_size / MIB:.1f} MiB)")
        for text in requires_dist(wheel):
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = normalise(req.name)
            if dep in carried:
                where = f"carried {carried[dep]}" + ("" if not req.specifier or req.specifier.contains(
                    carried[dep], prereleases=True) else f" DOES NOT SATISFY {req.specifier}")
                bad += "DOES NOT" in where
            elif dep in IMAGE_PROVIDES:
                where = "GPU image"
            elif dep in LEFT_OUT:
                where = f"left out: {LEFT_OUT[dep]}"
            else:
                where = "UNMET: neither carried nor in the GPU image"
                bad += 1
            print(f"           requires {text:<40} -> {where}")
    print("check: " + ("all wheels fit CPython 3.12 manylinux x86_64 and every requirement is met" if not bad
                       else f"{bad} problem(s)"))
    return 1 if bad else 0


def tree_bytes(repo: Path) -> int:
    """Bytes of what travels with every device command: tracked and untracked-not-ignored files, and shared/."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         check=True, capture_output=True).stdout.decode()
    total = sum((repo / p).stat().st_size for p in out.split("\0") if p and (repo / p).is_file())
    shared = repo / "shared"
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total


def plan(wheel_dir: Path, out: Path, repo: Path, margin_mib: float, part_mib: float | None) -> int:
    """Pack the wheels into call folders (whole wheels first, the largest split across calls), write manifests."""
    wheels = sorted(wheel_dir.glob("*.whl"), key=lambda p: (p.stat().st_size, p.name))
    tree = tree_bytes(repo)
    capacity = int(part_mib * MIB) if part_mib else TREE_LIMIT - tree - int(margin_mib * MIB)
    if capacity < 8 * MIB and not part_mib:
        print(f"plan: the working tree is {tree / MIB:.1f} MiB, leaving {capacity / MIB:.1f} MiB per command "
              "for wheels: too little", file=sys.stderr)
        return 1
    for old in out.glob("call*"):
        if CALL_DIR.match(old.name):
            shutil.rmtree(old)
    calls: list[list[dict]] = [[]]
    room = capacity
    manifest = {"format": 1, "wheels": {}, "capacity_bytes": capacity, "tree_bytes": tree}
    for wheel in wheels:
        size, offset, index = wheel.stat().st_size, 0, 0
        entry = {"sha256": sha256(wheel), "size": size, "parts": []}
        manifest["wheels"][wheel.name] = entry
        while offset < size:
            if room == 0:
                calls.append([])
                room = capacity
            if offset == 0 and size > room and size <= capacity and index == 0 and room < capacity:
                # a wheel that fits in one command is never split: start the next command with it
                calls.append([])
                room = capacity
            take = min(room, size - offset)
            whole = offset == 0 and take == size
            name = wheel.name if whole else f"{wheel.name}.part{index:02d}"
            calls[-1].append({"wheel": wheel.name, "file": name, "offset": offset, "size": take})
            entry["parts"].append({"file": name, "call": len(calls), "size": take})
            offset += take
            index += 1
            room -= take
    manifest["calls"] = len(calls)
    for k, items in enumerate(calls, 1):
        folder = out / f"call{k}"
        folder.mkdir(parents=True)
        for item in items:
            src = wheel_dir / item["wheel"]
            dst = folder / item["file"]
            if item["size"] == src.stat().st_size:
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            else:
                with open(src, "rb") as fin, open(dst, "wb") as fout:
                    fin.seek(item["offset"])
                    remaining = item["size"]
                    while remaining:
                        block = fin.read(min(remaining, 1 << 22))
                        fout.write(block)
                        remaining -= len(block)
    for wheel_entry in manifest["wheels"].values():
        for part in wheel_entry["parts"]:
            part["sha256"] = sha256(out / f"call{part['call']}" / part["file"])
    for k in range(1, len(calls) + 1):
        (out / f"call{k}" / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _print_plan(out, manifest, tree)
    return 0


def _print_plan(out: Path, manifest: dict, tree: int) -> None:
    calls = manifest["calls"]
    rel = out.name
    print(f"\nworking tree that travels with every command: {tree / MIB:.1f} MiB; wheels per command at most "
          f"{manifest['capacity_bytes'] / MIB:.1f} MiB; limit {TREE_LIMIT / MIB:.0f} MiB per command")
    total = 0
    for k in range(1, calls + 1):
        folder = out / f"call{k}"
        size = sum(p.stat().st_size for p in folder.iterdir())
        total += size
        print(f"  call {k}: carry {rel}/call{k} ({size / MIB:.1f} MiB; with the tree {(size + tree) / MIB:.1f} MiB)")
        for p in sorted(folder.iterdir()):
            if p.name != MANIFEST:
                print(f"      {p.name} ({p.stat().st_size / MIB:.1f} MiB)")
    print(f"  wheels in all: {total / MIB:.1f} MiB in {calls} command(s)\n")
    print("Device calls, back to back (the machine stays warm only about 30 s after each call; see docs/gpu.md):")
    for k in range(1, calls):
        print(f"  {k}. run(carry=['{rel}/call{k}'], timeout_s=120, command='bash scripts/gpu/run.sh --stash-only')")
    print(f"  {calls}. run(carry=['{rel}/call{calls}'], timeout_s=T, "
          "command='bash scripts/gpu/run.sh --minutes M --out $OUT')")
    print("  then give_back(); T = min(600, budget_left_s - 60) after the previous call, M = (T - 40) / 60 rounded "
          "down to half a minute (docs/gpu.md)")


def stash(repo: Path, store: Path) -> list[str]:
    """Copy this command's carried call folders into the store; returns what was copied."""
    copied = []
    base = repo / ".gpu-wheels"
    store.mkdir(parents=True, exist_ok=True)
    for folder in sorted(base.glob("call*")) if base.is_dir() else []:
        if not CALL_DIR.match(folder.name) or not folder.is_dir():
            continue
        for f in folder.iterdir():
            target = store / (MANIFEST if f.name == MANIFEST else f.name)
            if f.name == MANIFEST and target.exists() and target.read_bytes() != f.read_bytes():
                # a manifest from another prepare_wheels.sh run: the parts stashed so far belong to it
                for stale in store.iterdir():
                    stale.unlink()
            shutil.copyfile(f, target)
            copied.append(f"{folder.name}/{f.name}")
    return copied


def missing_parts(store: Path) -> tuple[dict | None, list[str]]:
    """(manifest, parts not yet in the store or of the wrong size) for the store."""
    path = store / MANIFEST
    if not path.is_file():
        return None, ["MANIFEST.json (no carried wheel part has arrived yet)"]
    manifest = json.loads(path.read_text())
    missing = []
    for entry in manifest["wheels"].values():
        for part in entry["parts"]:
            f = store / part["file"]
            if not f.is_file() or f.stat().st_size != part["size"]:
                missing.append(f"{part['file']} (call {part['call']})")
    return manifest, missing


def join(store: Path, dest: Path) -> list[Path]:
    """Rebuild the wheels from the store into dest, checking each one's sha256; raises on anything missing."""
    manifest, missing = missing_parts(store)
    if missing:
        raise FileNotFoundError("wheel parts missing from " + str(store) + ": " + ", ".join(missing) +
                                " -- carry the listed calls' folders again (docs/gpu.md)")
    dest.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name, entry in manifest["wheels"].items():
        target = dest / name
        if not (target.is_file() and target.stat().st_size == entry["size"] and sha256(target) == entry["sha256"]):
            with open(target, "wb") as fout:
                for part in entry["parts"]:
                    with open(store / part["file"], "rb") as fin:
                        shutil.copyfileobj(fin, fout, 1 << 22)
            if sha256(target) != entry["sha256"]:
                target.unlink()
                raise ValueError(f"{name}: sha256 of the joined parts does not match the manifest")
        wheels.append(target)
    return wheels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--wheels", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repo", type=Path, default=Path("."))
    p.add_argument("--margin-mib", type=float, default=3.0,
                   help="room left in each command for files added to the tree before the GPU window")
    p.add_argument("--part-mib", type=float, help="wheels per command (default: 64 MiB - tree - margin)")
    c = sub.add_parser("check")
    c.add_argument("--wheels", type=Path, required=True)
    s = sub.add_parser("stash")
    s.add_argument("--repo", type=Path, default=Path("."))
    s.add_argument("--store", type=Path, required=True)
    j = sub.add_parser("join")
    j.add_argument("--store", type=Path, required=True)
    j.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "plan":
        return plan(args.wheels, args.out, args.repo, args.margin_mib, args.part_mib)
    if args.cmd == "check":
        return check(args.wheels)
    if args.cmd == "stash":
        print("\n".join(stash(args.repo, args.store)) or "nothing carried")
        return 0
    for wheel in join(args.store, args.dest):
        print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
