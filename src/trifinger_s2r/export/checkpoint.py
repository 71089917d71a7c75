"""The deterministic actor of an rsl_rl training checkpoint, with the config of its run."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import torch
from tensordict import TensorDict

from trifinger_s2r.train.config import TrainConfig

Policy = Callable[[TensorDict], torch.Tensor]
"""Observations (TensorDict with a 'policy' group, N rows) -> actions (N, 9) in [-1, 1]."""


def checkpoint_policy(checkpoint: Path) -> tuple[Policy, TrainConfig]:
    """The deterministic actor of an rsl_rl checkpoint and its run's config (config.json beside it)."""
    from rsl_rl.runners import OnPolicyRunner

    from trifinger_s2r.envs.repose_env import ReposeEnv
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.train.config import to_rsl_rl
    from trifinger_s2r.train.trainer import CONFIG_FILE, load_config

    checkpoint = Path(checkpoint)
    config_path = checkpoint.parent / CONFIG_FILE
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    if not config_path.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} has no {CONFIG_FILE} beside it")
    cfg = load_config(config_path)
    # the probe only gives rsl_rl the observation shapes: native MuJoCo on the CPU whatever the run trained on
    probe_env = dataclasses.replace(cfg.env, num_envs=1, num_threads=1, backend="mujoco", device="cpu",
                                    task=for_evaluation(cfg.env.task))
    probe = ReposeEnv(probe_env)
    with contextlib.redirect_stdout(io.StringIO()):  # rsl_rl prints its model summary
        runner = OnPolicyRunner(probe, to_rsl_rl(cfg), log_dir=None, device="cpu")
    # the actor alone: a run across objects gave its critic the object's features, which evaluation's env lacks
    runner.load(str(checkpoint), load_cfg={"actor": True}, map_location="cpu")
    return runner.get_inference_policy("cpu"), cfg
