"""A tiny exported policy for the deployment tests."""

from __future__ import annotations

import dataclasses

import pytest

from trifinger_s2r.export.policy_bundle import export_checkpoint
from trifinger_s2r.train.config import preset
from trifinger_s2r.train.trainer import train


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    cfg = preset("push-cpu")
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, num_envs=4, num_threads=1), num_steps_per_env=2,
                              max_iterations=1)
    run_dir = tmp_path_factory.mktemp("tiny_run")
    checkpoint = train(cfg, run_dir, show_progress=False)
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("tiny_bundle"))
