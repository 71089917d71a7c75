"""Behaviour cloning with DAgger from the scripted controller (task.expert): a warm start for PPO.

PPO from scratch never learns to hold the cube within our budgets (docs/benchmarks.md, level 4). Here the actor
first imitates the scripted grasp-lift-carry controller: each round rolls the envs out under a mix of teacher and
student actions (the teacher's share falls from 1 to 0 over the rounds, DAgger), labels every visited state with the
teacher's action, and fits the actor's mean to the aggregate by mean squared error. The student sees only its own
observation (the delayed, noisy camera pose), the teacher the true state. The result is a checkpoint of the run's
own networks, so `train --init-from` continues from it with PPO.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tensordict import TensorDict

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.task.expert import ExpertConfig, expert_action, upright
from trifinger_s2r.task.goals import orientation_matters
from trifinger_s2r.train.config import TrainConfig

IMITATION_FILE = "imitation.json"


@dataclass(frozen=True)
class ImitationConfig:
    """DAgger settings."""

    rounds: int = 16
    steps_per_round: int = 48
    """Policy steps each env takes per round."""
    teacher_share_end: float = 0.0
    """The teacher acts in a share of envs that falls linearly from 1 (round 0) to this (last round)."""
    epochs: int = 3
    """Passes over the aggregate dataset after each round."""
    batch_size: int = 4096
    learning_rate: float = 1e-3
    max_samples: int = 1_500_000
    """The aggregate keeps the latest samples up to this many."""
    policy_std: float = 0.2
    """The actor's action noise in the saved checkpoint (PPO explores with it from there)."""
    max_minutes: float = 0.0
    """Wall-clock budget (0: none): no round starts after it; the checkpoint is written all the same."""
    expert: ExpertConfig = field(default_factory=ExpertConfig)

    def __post_init__(self) -> None:
        for name in ("rounds", "steps_per_round", "epochs", "batch_size", "max_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"imitation.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.teacher_share_end <= 1.0:
            raise ValueError(f"imitation.teacher_share_end must be in [0, 1], got {self.teacher_share_end}")
        if self.max_minutes < 0:
            raise ValueError(f"imitation.max_minutes must be >= 0 (0: none), got {self.max_minutes}")
        if self.learning_rate <= 0 or self.policy_std <= 0:
            raise ValueError("imitation.learning_rate and imitation.policy_std must be positive")


def teacher_action(env: ReposeEnv, cfg: ExpertConfig) -> torch.Tensor:
    """The scripted controller's action for every env's current true state and goal. Its orientation target: the
    goal's where the task has one (level 4, and the curriculum, whose position-only goals keep the cube's start
    orientation), else the flat orientation nearest the cube's."""
    s = env.state
    task = env.task
    oriented = orientation_matters(task.level) or task.curriculum.enabled
    goal_quat = env.goal_quat if oriented else upright(s.cube_quat_xyzw)
    if not oriented and (cfg.flip.enabled or cfg.pivot.enabled):  # a flat goal has nothing to tip the cube to
        cfg = replace(cfg, flip=replace(cfg.flip, enabled=False), pivot=replace(cfg.pivot, enabled=False))
    return expert_action(cfg, s, env.goal_pos_m, goal_quat, env.params.cube_mass_kg, env.params.torque_limit_nm,
                         env.resting_height_m(), task.torque_limit_nm)


class _Dataset:
    """The DAgger aggregate: observations and teacher actions, the oldest dropped beyond max_samples."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.obs: list[torch.Tensor] = []
        self.actions: list[torch.Tensor] = []

    def add(self, obs: torch.Tensor, actions: torch.Tensor) -> None:
        self.obs.append(obs)
        self.actions.append(actions)
        while sum(len(o) for o in self.obs) > self.max_samples:
            self.obs.pop(0)
            self.actions.pop(0)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.obs), torch.cat(self.actions)


def _rollout(env: ReposeEnv, actor, cfg: ImitationConfig, teacher_share: float, data: _Dataset,
             generator: torch.Generator) -> dict[str, float]:
    """One round of mixed-control steps; returns the round's episode statistics."""
    obs = env.get_observations()
    use_teacher = (torch.rand(env.num_envs, generator=generator) < teacher_share).to(env.device)
    seen_obs, labels, ended = [], [], {"success": [], "lifted": []}
    for _ in range(cfg.steps_per_round):
        teacher = teacher_action(env, cfg.expert)
        actor.update_normalization(obs)
        with torch.no_grad():
            student = actor(obs)
        seen_obs.append(obs["policy"].clone())
        labels.append(teacher)
        obs, _, _, extras = env.step(torch.where(use_teacher[:, None], teacher, student))
        log = extras["log"]
        if "Episode/success_rate" in log:
            ended["success"].append(log["Episode/success_rate"])
            ended["lifted"].append(log["Episode/lifted_at_end"])
    data.add(torch.cat(seen_obs), torch.cat(labels))
    stats: dict[str, float | None] = {k: float(torch.cat(v).mean()) if v else None for k, v in ended.items()}
    stats["episodes"] = float(sum(len(v) for v in ended["success"]))
    return stats


def _fit(actor, data: _Dataset, cfg: ImitationConfig, optimizer: torch.optim.Optimizer,
         generator: torch.Generator) -> float:
    """cfg.epochs passes of mean-squared-error regression of the actor's mean; returns the last epoch's loss."""
    obs, actions = data.tensors()
    loss_sum, batches = 0.0, 0
    for _ in range(cfg.epochs):
        order = torch.randperm(len(obs), generator=generator).to(obs.device)
        loss_sum, batches = 0.0, 0
        for start in range(0, len(obs), cfg.batch_size):
            pick = order[start: start + cfg.batch_size]
            predicted = actor(TensorDict({"policy": obs[pick]}, batch_size=[len(pick)]))
            loss = torch.nn.functional.mse_loss(predicted, actions[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
    return loss_sum / max(batches, 1)


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _set_std(actor, std: float) -> None:
    distribution = actor.distribution
    with torch.no_grad():
        if hasattr(distribution, "std_param"):
            distribution.std_param.fill_(std)
        else:
            distribution.log_std_param.fill_(float(torch.log(torch.tensor(std))))


def imitate(train_cfg: TrainConfig, cfg: ImitationConfig, run_dir: Path, report=print) -> Path:
    """DAgger into run_dir (config.json, imitation.json with each round's figures, model_0.pt); returns the
    checkpoint, which `train --init-from` takes."""
    from trifinger_s2r.train.distributed import process_group_from_env
    from trifinger_s2r.train.trainer import make_runner, save_config

    torch.set_num_threads(train_cfg.torch_threads or 1)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(train_cfg, run_dir)
    runner = make_runner(train_cfg, run_dir, process_group_from_env())
    env, actor = runner.env, runner.alg.actor
    generator = torch.Generator().manual_seed(train_cfg.env.seed)
    optimizer = torch.optim.Adam(actor.mlp.parameters(), lr=cfg.learning_rate)
    data = _Dataset(cfg.max_samples)
    rounds: list[dict] = []
    deadline = time.monotonic() + cfg.max_minutes * 60.0 if cfg.max_minutes else float("inf")
    for round_index in range(cfg.rounds):
        if time.monotonic() >= deadline:
            report(f"--max-minutes reached after {round_index} rounds")
            break
        share = 1.0 + (cfg.teacher_share_end - 1.0) * round_index / max(cfg.rounds - 1, 1)
        started = time.monotonic()
        stats = _rollout(env, actor, cfg, share, data, generator)
        loss = _fit(actor, data, cfg, optimizer, generator)
        rounds.append({"round": round_index, "teacher_share": share, "bc_loss": loss, "env_steps": env.total_env_steps,
                       "seconds": time.monotonic() - started, **stats})
        (run_dir / IMITATION_FILE).write_text(json.dumps({"config": asdict(cfg), "rounds": rounds}, indent=1,
                                                         allow_nan=False))
        report(f"round {round_index}: teacher share {share:.2f}, episodes {stats['episodes']:.0f}, success "
               f"{_fmt(stats['success'])}, lifted {_fmt(stats['lifted'])}, bc loss {loss:.4f}, "
               f"{time.monotonic() - started:.0f} s")
    _set_std(actor, cfg.policy_std)
    checkpoint = run_dir / "model_0.pt"
    runner.save(str(checkpoint))
    return checkpoint
