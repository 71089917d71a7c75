"""Shared factories for the tests."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.task.config import TaskConfig

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
