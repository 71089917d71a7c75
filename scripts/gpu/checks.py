"""What the prepared GPU run (scripts/gpu/run.py) checks on the GPU machine: that the carried wheels import, the
device and the versions (preflight, for bench.json), and which tests need CUDA. Standard library only."""

from __future__ import annotations

import ast
from pathlib import Path

IMPORT_CHECK = {"warp": "warp.config.version", "mujoco": "mujoco.__version__",
                "mujoco_warp": "getattr(mujoco_warp, '__version__', 'installed')", "rsl_rl": "'installed'",
                "tensordict": "tensordict.__version__", "git": "git.__version__"}


PREFLIGHT = """
import json, platform, sys
before = {m.split(".")[0] for m in sys.modules}
import torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "python": platform.python_version(), "processor": platform.processor() or platform.machine()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(name=torch.cuda.get_device_name(0), memory_gib=round(p.total_memory / 2**30, 1),
                multiprocessors=p.multi_processor_count, capability=f"{p.major}.{p.minor}")
else:
    info["name"] = "cpu (Warp CPU device, dry run): " + info["processor"]
try:
    import warp, mujoco, mujoco_warp, rsl_rl, tensordict, onnxruntime, onnxscript
    import trifinger_s2r.cli, trifinger_s2r.train.trainer, trifinger_s2r.export.policy_bundle
    import trifinger_s2r.bench.env_bench, trifinger_s2r.bench.train_bench, trifinger_s2r.eval.rollouts
    trifinger_s2r.cli.build_parser()  # the subcommands' modules, imported as the CLI starts
    info.update(warp=warp.config.version, mujoco=mujoco.__version__)
except ImportError as err:
    info["import_error"] = str(err)
from importlib.metadata import packages_distributions
dists = packages_distributions()
info["distributions"] = {top: dists[top] for top in sorted({m.split(".")[0] for m in sys.modules} - before)
                         if top in dists}
print(json.dumps(info))
"""
"""Device and versions for bench.json; which installed distributions the train/export/bench code imports."""


def cuda_only_tests(tests: Path) -> list[str]:
    """Node ids of the tests that skip without CUDA: a `skipif` decorator or module `pytestmark` naming cuda."""
    ids = []
    for path in sorted(tests.rglob("test_*.py")):
        source = path.read_text()
        if "cuda" not in source:
            continue
        tree = ast.parse(source)
        rel = path.relative_to(tests.parent).as_posix()
        module_marked = any(
            isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                 for t in node.targets)
            and "cuda" in (ast.get_source_segment(source, node) or "")
            for node in tree.body)
        if module_marked:
            ids.append(rel)
            continue

        def visit(nodes, prefix, source=source, rel=rel):
            for node in nodes:
                if isinstance(node, ast.ClassDef):
                    visit(node.body, prefix + node.name + "::")
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                    for dec in node.decorator_list:
                        text = ast.get_source_segment(source, dec) or ""
                        if "skipif" in text and "cuda" in text:
                            ids.append(f"{rel}::{prefix}{node.name}")
                            break

        visit(tree.body, "")
    return ids
