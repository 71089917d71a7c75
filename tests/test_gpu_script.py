"""The prepared GPU run (scripts/gpu/run.sh) as a CPU dry run on Warp's CPU device: it leaves every file the GPU
window brings back, a second run resumes from the first's checkpoint and continues its iteration count, a committed
checkpoint that no longer loads falls back to a fresh run, and the wheel parts split and join byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trifinger_s2r.sim.mujoco_warp_backend import warp_available

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "gpu"))
import run as gpu_run  # noqa: E402
import wheels  # noqa: E402

needs_warp = pytest.mark.skipif(not warp_available(), reason="warp-lang / mujoco-warp not installed")


def _dry_run(out: Path, work: Path, checkpoint_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["bash", "scripts/gpu/run.sh", "--cpu-dry-run", "--out", str(out), "--work", str(work),
           "--checkpoint-dir", str(checkpoint_dir), *extra]
    done = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Path:
    """One dry run of every stage (one bench env count, to keep CI short), from no committed checkpoint."""
    tmp = tmp_path_factory.mktemp("gpu_dry_run")
    _dry_run(tmp / "out", tmp / "work", tmp / "no-checkpoint", "--env-counts", "8")
    return tmp / "out"


@needs_warp
def test_dry_run_leaves_every_file_with_its_keys(first):
    assert sorted(p.name for p in first.iterdir()) == sorted(gpu_run.OUT_FILES)
    assert all(p.stat().st_size < gpu_run.MAX_FILE_BYTES for p in first.iterdir())

    bench = json.loads((first / "bench.json").read_text())
    assert bench["schema"] == gpu_run.BENCH_SCHEMA and bench["mode"] == "cpu-dry-run"
    assert bench["device"]["name"].startswith("cpu") and bench["device"]["warp"]
    (env,) = bench["env"]
    assert env["num_envs"] == 8 and env["backend"] == "warp" and env["device"] == "cpu"
    assert env["env_policy_steps_per_s"] > 0 and env["raw_physics_policy_steps_per_s"] > 0
    assert bench["train"]["preset"] == "repose-gpu" and bench["train"]["train_samples_per_s"] > 0

    progress = json.loads((first / "progress.json").read_text())
    assert [p["iteration"] for p in progress] == [1, 2]
    checkpoint = torch.load(first / "model.pt", map_location="cpu", weights_only=False)
    assert checkpoint["iter"] == 1 and "actor_state_dict" in checkpoint
    config = json.loads((first / "config.json").read_text())
    assert config["env"]["backend"] == "warp" and config["env"]["task"]["level"] == 4

    import numpy as np
    import onnxruntime as ort

    from trifinger_s2r.export.policy_bundle import REQUIRED_KEYS

    metadata = json.loads((first / "metadata.json").read_text())
    assert set(REQUIRED_KEYS) <= set(metadata)
    assert metadata["train_config"] == config  # the run's own config, not the export's CPU probe
    session = ort.InferenceSession(str(first / "policy.onnx"), providers=["CPUExecutionProvider"])
    actions = session.run(None, {"obs": np.zeros((3, metadata["obs_size"]), np.float32)})[0]
    assert actions.shape == (3, metadata["action_size"]) and np.isfinite(actions).all()

    summary = json.loads((first / "summary.json").read_text())
    assert summary["failed_stages"] == [] and summary["resumed_from_iteration"] is None
    assert set(summary["stages"]) == {"preflight", "tests", "bench-env-8", "bench-train", "imitate", "train",
                                      "export"}
    assert summary["imitation"]["used"] and summary["imitation"]["last_round"]["round"] == 1
    assert json.loads((first / "config.json").read_text())["ppo"]["actor_warmup_iterations"] == 20
    log = (first / "log.txt").read_text()
    assert "== stage train: ok" in log and "test_gpu_state_is_shared_with_torch_without_copies" in log


@needs_warp
def test_second_run_resumes_from_the_first_runs_checkpoint(first, tmp_path):
    committed = tmp_path / "committed"
    committed.mkdir()
    for name in ("model.pt", "config.json", "progress.json", "summary.json"):
        shutil.copyfile(first / name, committed / name)
    out = tmp_path / "out"
    _dry_run(out, tmp_path / "work", committed, "--skip-tests", "--skip-bench")

    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_iteration"] == 1 and summary["final_iteration"] == 3
    assert [w["final_iteration"] for w in summary["windows"]] == [1, 3]
    assert [p["iteration"] for p in json.loads((out / "progress.json").read_text())] == [1, 2, 3, 4]
    assert torch.load(out / "model.pt", map_location="cpu", weights_only=False)["iter"] == 3
    assert (out / "policy.onnx").is_file() and json.loads((out / "bench.json").read_text())["env"] == []


@needs_warp
def test_a_committed_config_that_no_longer_loads_means_a_fresh_run(first, tmp_path):
    committed = tmp_path / "committed"
    committed.mkdir()
    shutil.copyfile(first / "model.pt", committed / "model.pt")
    config = json.loads((first / "config.json").read_text())
    config["ppo"]["a_field_this_code_does_not_know"] = 1
    (committed / "config.json").write_text(json.dumps(config))
    run = gpu_run.Run(gpu_run.parse_args(["--cpu-dry-run", "--out", str(tmp_path / "out"), "--work",
                                          str(tmp_path / "work"), "--checkpoint-dir", str(committed),
                                          "--python", sys.executable]))
    run_dir, iteration, why = run.committed()
    assert run_dir is None and iteration is None and "no longer loads" in why


def test_the_cuda_only_tests_are_found():
    found = gpu_run.cuda_only_tests(REPO / "tests")
    assert "tests/sim/test_mujoco_warp.py::test_gpu_state_is_shared_with_torch_without_copies" in found
    assert not any("test_trajectories_agree" in node for node in found)


def test_wheels_split_across_calls_and_join_byte_for_byte(tmp_path):
    downloads = tmp_path / "download"
    downloads.mkdir()
    sizes = {"small-1.0-py3-none-any.whl": 5_000, "mid-1.0-py3-none-any.whl": 30_000,
             "big-1.0-cp312-cp312-manylinux_2_28_x86_64.whl": 100_000}
    for name, size in sizes.items():
        (downloads / name).write_bytes(os.urandom(size))
    repo = tmp_path / "tree"
    (repo / ".gpu-wheels").mkdir(parents=True)
    assert wheels.plan(downloads, repo / ".gpu-wheels", REPO, margin_mib=0, part_mib=40_000 / wheels.MIB) == 0
    calls = sorted(p.name for p in (repo / ".gpu-wheels").iterdir())
    assert calls == ["call1", "call2", "call3", "call4"]  # 135,000 bytes in commands of at most 40,000
    for call in calls:
        assert sum(p.stat().st_size for p in (repo / ".gpu-wheels" / call).iterdir()
                   if p.name != wheels.MANIFEST) <= 40_000

    store = tmp_path / "store"
    shutil.move(str(repo / ".gpu-wheels" / "call2"), str(tmp_path / "later"))
    wheels.stash(repo, store)  # calls 1, 3 and 4 arrived, call 2 did not
    _, missing = wheels.missing_parts(store)
    assert missing and all("(call 2)" in m for m in missing)
    with pytest.raises(FileNotFoundError, match="call 2"):
        wheels.join(store, tmp_path / "joined")
    shutil.rmtree(repo / ".gpu-wheels")
    (repo / ".gpu-wheels").mkdir()
    shutil.move(str(tmp_path / "later"), str(repo / ".gpu-wheels" / "call2"))
    wheels.stash(repo, store)
    joined = wheels.join(store, tmp_path / "joined")
    assert sorted(p.name for p in joined) == sorted(sizes)
    for path in joined:
        assert path.read_bytes() == (downloads / path.name).read_bytes()


def test_wheel_tags_for_the_gpu_image():
    assert wheels.tags_ok(wheels.wheel_name(Path("warp_lang-1.19.0-py3-none-manylinux_2_28_x86_64.whl"))[2])
    assert wheels.tags_ok(wheels.wheel_name(Path(
        "mujoco_core-4.0.0-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"))[2])
    assert not wheels.tags_ok(wheels.wheel_name(Path("mujoco_core-4.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"))[2])
    assert not wheels.tags_ok(wheels.wheel_name(Path("warp_lang-1.19.0-py3-none-manylinux_2_28_aarch64.whl"))[2])
