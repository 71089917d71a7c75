"""torchrun with 2 CPU processes (gloo): gradients are averaged, rank 0 alone writes, budgets stop every rank."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trifinger_s2r.train.distributed import ProcessGroup, device_for, process_group_from_env


def _torchrun(tmp_path, *train_args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "trifinger_s2r.cli", "train", "--num-envs", "4", "--save-interval", "2", "--run-dir", str(tmp_path),
        "--json", "--set", "env.num_threads=1", "--set", "num_steps_per_env=4", *train_args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_two_cpu_processes_train_in_step(tmp_path):
    """Ranks step different envs (seed + rank); the run checks their weights still agree at the end (it raises
    otherwise), so finishing means the gloo all-reduce kept them in step."""
    proc = _torchrun(tmp_path, "--max-iterations", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1, "only rank 0 prints"
    assert results[0]["world_size"] == 2 and results[0]["checkpoint"].endswith("model_2.pt")
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress[-1]["env_steps"] == 3 * 2 * 4 * 4  # iterations x ranks x envs x steps


def test_a_spent_budget_stops_every_rank_together(tmp_path):
    proc = _torchrun(tmp_path, "--max-iterations", "50", "--max-minutes", "1e-6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("model_*.pt")) == ["model_0.pt"]


def test_torchrun_environment_is_read_and_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    group = process_group_from_env()
    assert group == ProcessGroup(world_size=2, rank=1, local_rank=1) and not group.is_main
    assert device_for("cuda", group) == "cuda:1" and device_for("cpu", group) == "cpu"
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="inconsistent torchrun"):
        process_group_from_env()
