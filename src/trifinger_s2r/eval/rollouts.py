"""Evaluate a policy on ReposeEnv: N full episodes, judged at their last step."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import torch
from tensordict import TensorDict

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.eval.metrics import success_summary
from trifinger_s2r.train.config import TrainConfig

Policy = Callable[[TensorDict], torch.Tensor]
MAX_PARALLEL_EPISODES = 256


def evaluate(policy: Policy, cfg: TrainConfig, episodes: int, seed: int = 0) -> dict:
    """Run `episodes` episodes of cfg's task (in rounds of at most 256 parallel envs) and summarise them."""
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    success, pos_err, rot_err = [], [], []
    remaining, round_index = episodes, 0
    while remaining > 0:
        n = min(remaining, MAX_PARALLEL_EPISODES)
        env_cfg = dataclasses.replace(cfg.env, num_envs=n, seed=seed + 1000 * round_index)
        log = _run_round(policy, ReposeEnv(env_cfg))
        success.append(log["Episode/success_rate"])
        pos_err.append(log["Episode/final_position_error_m"])
        rot_err.append(log["Episode/final_orientation_error_rad"])
        remaining -= n
        round_index += 1
    return success_summary(
        torch.cat(success).bool().tolist(), torch.cat(pos_err).tolist(), torch.cat(rot_err).tolist(),
        cfg.env.task.level,
    )


def _run_round(policy: Policy, env: ReposeEnv) -> dict:
    """One synchronised episode in every env; returns the episode log of its final step."""
    obs = env.get_observations()
    with torch.inference_mode():
        for _ in range(env.max_episode_length):
            obs, _, dones, extras = env.step(policy(obs))
    if not dones.all() or "Episode/success_rate" not in extras["log"]:
        raise RuntimeError("evaluation episodes did not all end together (a simulation diverged?)")
    return extras["log"]


def checkpoint_policy(checkpoint: Path) -> tuple[Policy, TrainConfig]:
    """The deterministic actor of an rsl_rl checkpoint and its run's config (config.json beside it)."""
    from rsl_rl.runners import OnPolicyRunner

    from trifinger_s2r.train.config import to_rsl_rl
    from trifinger_s2r.train.trainer import CONFIG_FILE, load_config

    checkpoint = Path(checkpoint)
    config_path = checkpoint.parent / CONFIG_FILE
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    if not config_path.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} has no {CONFIG_FILE} beside it")
    cfg = load_config(config_path)
    probe = ReposeEnv(dataclasses.replace(cfg.env, num_envs=1))
    with contextlib.redirect_stdout(io.StringIO()):  # rsl_rl prints its model summary
        runner = OnPolicyRunner(probe, to_rsl_rl(cfg), log_dir=None, device="cpu")
    runner.load(str(checkpoint), map_location="cpu")
    return runner.get_inference_policy("cpu"), cfg


def load_policy(reference: str) -> tuple[Policy, TrainConfig]:
    """A policy and the config it was trained with, from a checkpoint file, a bundle folder or `pretrained:NAME`."""
    from trifinger_s2r.export.policy_bundle import PRETRAINED_PREFIX, OnnxPolicy, bundle_dir
    from trifinger_s2r.train.config import config_from_dict

    if not reference.startswith(PRETRAINED_PREFIX) and Path(reference).is_file():
        return checkpoint_policy(Path(reference))
    policy = OnnxPolicy(bundle_dir(reference))
    return policy, config_from_dict(policy.metadata["train_config"])
