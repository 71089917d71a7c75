"""Evaluate a policy on ReposeEnv: N full episodes, judged at their last step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.eval.metrics import lifted_summary, success_summary
from trifinger_s2r.policies import Policy, checkpoint_policy, load_policy
from trifinger_s2r.train.config import TrainConfig

__all__ = ["MAX_PARALLEL_EPISODES", "Policy", "checkpoint_policy", "evaluate", "load_policy"]
MAX_PARALLEL_EPISODES = 256


class RoundRecorder(Protocol):
    """Films an evaluation round: called after each step but the last, then told the outcome of its env 0."""

    def __call__(self, step: int) -> None: ...

    def finish(self, success: bool, position_error_m: float) -> None: ...


def evaluate(policy: Policy, cfg: TrainConfig, episodes: int, seed: int = 0,
             make_env: Callable[[EnvConfig], ReposeEnv] = ReposeEnv,
             recorder: Callable[[ReposeEnv], RoundRecorder] | None = None) -> dict:
    """Run `episodes` episodes of cfg's task (in rounds of at most 256 parallel envs made by make_env, the first one
    filmed by `recorder(env)` if given) and summarise them; beside the eval contract, `lifted_share` (the share of
    episodes whose object ends more than 1 cm above the cube's resting height), `success_rate_lifted` and
    `median_orientation_error_lifted_rad` (over those episodes; None where none ended lifted)."""
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    success, pos_err, rot_err, lifted = [], [], [], []
    remaining, round_index = episodes, 0
    while remaining > 0:
        n = min(remaining, MAX_PARALLEL_EPISODES)
        env = make_env(dataclasses.replace(cfg.env, num_envs=n, seed=seed + 1000 * round_index))
        log = _run_round(policy, env, recorder(env) if recorder is not None and round_index == 0 else None)
        success.append(log["Episode/success_rate"])
        pos_err.append(log["Episode/final_position_error_m"])
        rot_err.append(log["Episode/final_orientation_error_rad"])
        lifted.append(log["Episode/lifted_at_end"])
        remaining -= n
        round_index += 1
    wins, rot_err_rad = torch.cat(success).bool().tolist(), torch.cat(rot_err).tolist()
    summary = success_summary(wins, torch.cat(pos_err).tolist(), rot_err_rad, cfg.env.task.level)
    return {**summary, **lifted_summary(wins, rot_err_rad, torch.cat(lifted).bool().tolist())}


def _run_round(policy: Policy, env: ReposeEnv, recorder: RoundRecorder | None = None) -> dict:
    """One synchronised episode in every env; returns the episode log of its final step."""
    obs = env.get_observations()
    with torch.inference_mode():
        for step in range(env.max_episode_length):
            obs, _, dones, extras = env.step(policy(obs))
            if recorder is not None and step < env.max_episode_length - 1:  # the last step has reset the envs
                recorder(step)
    if not dones.all() or "Episode/success_rate" not in extras["log"]:
        raise RuntimeError("evaluation episodes did not all end together (a simulation diverged?)")
    log = extras["log"]
    if recorder is not None:
        recorder.finish(bool(log["Episode/success_rate"][0]), float(log["Episode/final_position_error_m"][0]))
    return log
