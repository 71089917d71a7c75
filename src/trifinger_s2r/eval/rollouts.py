"""Evaluate a policy on ReposeEnv: N full episodes, judged at their last step."""

from __future__ import annotations

import dataclasses

import torch

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.eval.metrics import success_summary
from trifinger_s2r.policies import Policy, checkpoint_policy, load_policy
from trifinger_s2r.train.config import TrainConfig

__all__ = ["MAX_PARALLEL_EPISODES", "Policy", "checkpoint_policy", "evaluate", "load_policy"]
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
