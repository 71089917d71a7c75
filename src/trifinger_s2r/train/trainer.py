"""Train with rsl_rl's OnPolicyRunner on ReposeEnv: resolved config beside the checkpoints, resume, progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rsl_rl.runners import OnPolicyRunner

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.task import curriculum
from trifinger_s2r.train.config import TrainConfig, load_config, to_rsl_rl
from trifinger_s2r.train.distributed import (
    DistributedRunner,
    ProcessGroup,
    any_rank,
    device_for,
    end_process_group,
    parameters_agree,
    process_group_from_env,
)

CONFIG_FILE = "config.json"
CHECKPOINT_PATTERN = re.compile(r"model_(\d+)\.pt$")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of the highest iteration in run_dir, or None."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("model_*.pt") if (m := CHECKPOINT_PATTERN.search(p.name))]
    return max(found)[1] if found else None


def save_config(cfg: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(cfg), indent=2))


class _OutOfTime(Exception):
    """Raised from the per-iteration hook when the wall-clock budget is spent (after that iteration's update)."""


class _ProgressLog:
    """Wraps the rsl_rl logger's per-iteration `log`: silences its console block, drives a progress bar, and ends
    the run when its wall-clock budget is spent."""

    def __init__(
        self,
        runner: OnPolicyRunner,
        progress: Progress,
        task_id,
        steps_per_iteration: int,
        deadline_s: float,
        group: ProcessGroup,
    ) -> None:
        self.runner, self.progress, self.task_id = runner, progress, task_id
        self.steps_per_iteration = steps_per_iteration
        self.deadline_s, self.group = deadline_s, group
        self.original = runner.logger.log
        self.history: list[dict] = []
        self.started_s = time.monotonic()

    def __call__(self, **kwargs) -> None:
        rate = self._episode_mean("Episode/success_rate")
        position_error_m = self._episode_mean("Episode/final_position_error_m")
        diagnostics = self._diagnostics(kwargs["it"])
        with contextlib.redirect_stdout(io.StringIO()):
            self.original(**kwargs)
        it = kwargs["it"] + 1
        seconds = kwargs["collect_time"] + kwargs["learn_time"]
        self.history.append({
            "iteration": it, "env_steps": it * self.steps_per_iteration, "success_rate": rate,
            "final_position_error_m": position_error_m,
            **diagnostics,
            "steps_per_s": self.steps_per_iteration / seconds,
            "collect_s": kwargs["collect_time"], "learn_s": kwargs["learn_time"],
            "wall_s": time.monotonic() - self.started_s,
        })
        self.progress.update(
            self.task_id,
            completed=it,
            description=(
                f"it {it} | {it * self.steps_per_iteration / 1e6:.2f}M steps | "
                f"{self.steps_per_iteration / seconds:,.0f} steps/s | success "
                + ("-" if rate != rate else f"{rate:.0%}")
            ),
        )
        if any_rank(time.monotonic() >= self.deadline_s, self.group, str(self.runner.device)):
            raise _OutOfTime

    def _episode_values(self, key: str) -> torch.Tensor:
        """An episode-end statistic of every episode that ended this iteration (empty if none did)."""
        values = [torch.as_tensor(e[key]).reshape(-1).float() for e in self.runner.logger.ep_extras if key in e]
        return torch.cat(values) if values else torch.empty(0)

    def _episode_mean(self, key: str) -> float:
        """Mean of an episode-end statistic over the episodes that ended this iteration (nan if none did)."""
        values = self._episode_values(key)
        return float(values.mean()) if values.numel() else float("nan")

    def _diagnostics(self, it: int) -> dict[str, float]:
        """Level-4 learning diagnostics of this iteration: lift share, orientation error percentiles, level-4 success
        and the curriculum's state (nan where no episode ended); the percentiles also go to TensorBoard."""
        orientation = self._episode_values("Episode/final_orientation_error_rad")
        found = orientation.numel() > 0
        p50, p90 = (torch.quantile(orientation, torch.tensor([0.5, 0.9])).tolist() if found else [float("nan")] * 2)
        writer = self.runner.logger.writer
        if writer is not None and found:
            writer.add_scalar("Episode/orientation_error_p50_rad", p50, it)
            writer.add_scalar("Episode/orientation_error_p90_rad", p90, it)
        return {
            "lifted_share": self._episode_mean("Episode/lifted_at_end"),
            "orientation_error_p50_rad": p50, "orientation_error_p90_rad": p90,
            "success_rate_level_4_goals": self._episode_mean("Episode/success_level_4_goals"),
            **self._curriculum(),
        }

    def _curriculum(self) -> dict:
        """The env's curriculum at the end of this iteration (nothing when it is off)."""
        env = self.runner.env
        cfg, state = env.task.curriculum, env.curriculum_state
        if not cfg.enabled:
            return {}
        return {"curriculum_stage": curriculum.stage_name(cfg, state),
                "curriculum_difficulty": curriculum.difficulty(cfg, state),
                "curriculum_max_tilt_rad": state.tilt_rad}


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> Path:
    """Run (or continue) training into run_dir; returns the final checkpoint's path.

    Under torchrun every process runs this: each steps its own envs (seed + rank), gradients are averaged, and
    only rank 0 writes the config, checkpoints, logs and progress.
    """
    deadline_s = time.monotonic() + cfg.max_minutes * 60.0 if cfg.max_minutes else float("inf")
    group = process_group_from_env()
    torch.set_num_threads(cfg.torch_threads or max(1, (os.cpu_count() or 1) // group.world_size))
    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise FileNotFoundError(f"--resume: no model_*.pt checkpoint in {run_dir}")
    if resume:
        cfg = _saved_config_or(cfg, run_dir)
    if group.is_main:
        save_config(cfg, run_dir)
    runner = _make_runner(cfg, run_dir, group)
    start = 0
    if checkpoint is None and cfg.init_from:
        _initialise_from(runner, Path(cfg.init_from))
    if checkpoint is not None:
        runner.load(str(checkpoint))
        start = runner.current_learning_iteration + 1
        runner.current_learning_iteration = start
    if cfg.max_iterations - start <= 0:
        end_process_group(group)
        return checkpoint
    history = _learn(runner, cfg, start, group, deadline_s, show_progress and group.is_main)
    agree = parameters_agree(runner.alg.actor, group)
    end_process_group(group)
    if not agree:
        raise RuntimeError("distributed training: the processes' actor weights diverged")
    if group.is_main:
        _write_progress(run_dir, history, appended=checkpoint is not None)
    return latest_checkpoint(run_dir)


def _initialise_from(runner: DistributedRunner, checkpoint: Path) -> None:
    """Start from another run's actor and critic (weights and observation normalisers), nothing else."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"init_from: no checkpoint at {checkpoint}")
    try:
        runner.load(str(checkpoint), load_cfg={"actor": True, "critic": True}, map_location=str(runner.device))
    except RuntimeError as err:
        raise ValueError(f"init_from {checkpoint}: its networks do not match this run's config ({err})") from None


def _make_runner(cfg: TrainConfig, run_dir: Path, group: ProcessGroup) -> DistributedRunner:
    env_cfg = dataclasses.replace(cfg.env, seed=cfg.env.seed + group.rank, device=device_for(cfg.env.device, group))
    torch.manual_seed(env_cfg.seed)  # network initialisation (rank 0's is broadcast) and action sampling
    env = ReposeEnv(env_cfg)
    with contextlib.redirect_stdout(io.StringIO()):  # rsl_rl prints its model summary; stdout is for results
        return DistributedRunner(env, to_rsl_rl(cfg), log_dir=str(run_dir), device=env_cfg.device)


def _learn(
    runner: DistributedRunner, cfg: TrainConfig, start: int, group: ProcessGroup, deadline_s: float, show: bool
) -> list[dict]:
    """rsl_rl's learning loop under a progress bar and the wall-clock budget; the per-iteration history."""
    steps_per_iteration = cfg.env.num_envs * cfg.num_steps_per_env * group.world_size
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    console = Console(stderr=True)  # progress on stderr, so stdout carries only results
    with Progress(*columns, console=console, disable=not show) as progress:
        task_id = progress.add_task("starting", total=cfg.max_iterations, completed=start)
        log = _ProgressLog(runner, progress, task_id, steps_per_iteration, deadline_s, group)
        runner.logger.log = log
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runner.learn(num_learning_iterations=cfg.max_iterations - start,
                             init_at_random_ep_len=cfg.random_episode_start)
        except _OutOfTime:
            if group.is_main:
                runner.save(str(Path(runner.logger.log_dir) / f"model_{runner.current_learning_iteration}.pt"))
            runner.logger.stop_logging_writer()
    return log.history


def _write_progress(run_dir: Path, history: list[dict], appended: bool) -> None:
    """progress.json: one entry per iteration, a resumed run's entries after its predecessors'."""
    path = run_dir / "progress.json"
    earlier = json.loads(path.read_text()) if appended and path.exists() else []
    path.write_text(json.dumps(earlier + history))


def _saved_config_or(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """On resume the run's own saved config wins over the command line's (only max_iterations may grow)."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return cfg
    return dataclasses.replace(load_config(path), max_iterations=cfg.max_iterations, max_minutes=cfg.max_minutes)
