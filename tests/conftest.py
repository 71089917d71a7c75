"""Shared factories for the tests."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.export.policy_bundle import export_checkpoint
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.train.config import preset
from trifinger_s2r.train.trainer import train

torch.set_num_threads(1)


def make_env(num_envs: int = 4, seed: int = 0, randomize: bool = True, **task_overrides) -> ReposeEnv:
    """A small env on the MuJoCo CPU backend."""
    task = TaskConfig(**task_overrides)
    if not randomize:
        task = replace(task, randomization=replace(task.randomization, enabled=False))
    return ReposeEnv(EnvConfig(num_envs=num_envs, seed=seed, num_threads=1, task=task))


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """An exported policy after one tiny training iteration (push-cpu's task, 250-step episodes)."""
    cfg = preset("push-cpu")
    cfg = replace(cfg, env=replace(cfg.env, num_envs=4, num_threads=1), num_steps_per_env=2, max_iterations=1)
    checkpoint = train(cfg, tmp_path_factory.mktemp("tiny_run"), show_progress=False)
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("tiny_bundle"))
