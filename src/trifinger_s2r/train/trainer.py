"""Train with rsl_rl's OnPolicyRunner on ReposeEnv: resolved config beside the checkpoints, resume, progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Self

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.task.expert import ExpertConfig
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
from trifinger_s2r.train.kickstart import TeacherObservations
from trifinger_s2r.train.progress import EtaColumn, ProgressLog

CONFIG_FILE = "config.json"
CHECKPOINT_PATTERN = re.compile(r"model_(\d+)\.pt$")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of the highest iteration in run_dir, or None."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("model_*.pt") if (m := CHECKPOINT_PATTERN.search(p.name))]
    return max(found)[1] if found else None


def holds_run(run_dir: Path) -> bool:
    """Whether run_dir already holds a training run (its config or a checkpoint)."""
    return (run_dir / CONFIG_FILE).exists() or latest_checkpoint(run_dir) is not None


def new_run_dir(parent: Path, name: str) -> Path:
    """A fresh run folder under parent: NAME-YYYYmmdd-HHMMSS (with -2, -3... if that exists already)."""
    stem = parent / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = stem, 1
    while candidate.exists():
        n += 1
        candidate = stem.with_name(f"{stem.name}-{n}")
    return candidate


def save_config(cfg: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(cfg), indent=2))


class _OutOfTime(Exception):
    """Raised from the per-iteration hook when the wall-clock budget is spent or a stop was asked for (after that
    iteration's update)."""


class _StopOnSignal:
    """While active, SIGINT and SIGTERM ask the run to stop after the current iteration, with a checkpoint, instead
    of killing it (a second signal kills as usual)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            signal.signal(signum, self._previous[signum])
            signal.raise_signal(signum)
        self.requested = True

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
    runner = make_runner(cfg, run_dir, group)
    start = 0
    if checkpoint is None and cfg.init_from:
        _initialise_from(runner, Path(cfg.init_from), cfg.ppo.schedule == "adaptive", cfg.init_from_critic)
        _raise_action_std(runner, cfg.init_from_min_std)
    if checkpoint is not None:
        runner.load(str(checkpoint))
        start = runner.current_learning_iteration + 1
        runner.current_learning_iteration = start
    if cfg.max_iterations - start <= 0:
        end_process_group(group)
        return checkpoint
    _learn(runner, cfg, start, group, deadline_s, show_progress and group.is_main)
    agree = parameters_agree(runner.alg.actor, group)
    end_process_group(group)
    if not agree:
        raise RuntimeError("distributed training: the processes' actor weights diverged")
    return latest_checkpoint(run_dir)


def _initialise_from(runner: DistributedRunner, checkpoint: Path, adaptive_schedule: bool,
                     with_critic: bool = True) -> None:
    """Start from another run's actor and critic (or its actor alone: `with_critic` false) with their observation
    normalisers; the optimiser and the
    iteration count start fresh. Under the adaptive schedule the learning rate starts at the source run's where that
    is lower: a converged policy's action noise is small (~0.025), and one update at the configured 3e-4 moves it far
    beyond the KL target before the schedule can react (from the shipped level-4 checkpoint, training success fell from
    23-25% to 12-16%, docs/benchmarks.md 2026-12-05)."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"init_from: no checkpoint at {checkpoint}")
    try:
        runner.load(str(checkpoint), load_cfg={"actor": True, "critic": with_critic}, map_location=str(runner.device))
    except RuntimeError as err:
        hint = " (a different critic input? set init_from_critic=false)" if with_critic else ""
        raise ValueError(f"init_from {checkpoint}: its networks do not match this run's config{hint} ({err})") from None
    source_rate = _saved_learning_rate(checkpoint)
    if adaptive_schedule and source_rate is not None and source_rate < runner.alg.learning_rate:
        runner.alg.learning_rate = source_rate
        for group in runner.alg.optimizer.param_groups:
            group["lr"] = source_rate


def _raise_action_std(runner: DistributedRunner, min_std: float) -> None:
    """Lift every action dimension's noise std to at least min_std (0: unchanged)."""
    if min_std <= 0:
        return
    distribution = runner.alg.actor.distribution
    with torch.no_grad():
        if hasattr(distribution, "std_param"):
            distribution.std_param.clamp_(min=min_std)
        else:
            distribution.log_std_param.clamp_(min=math.log(min_std))


def _saved_learning_rate(checkpoint: Path) -> float | None:
    """The learning rate a checkpoint's optimiser ended with (None where it saved no optimiser)."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False).get("optimizer_state_dict")
    groups = (saved or {}).get("param_groups") or []
    return float(groups[0]["lr"]) if groups else None


def make_runner(cfg: TrainConfig, run_dir: Path, group: ProcessGroup) -> DistributedRunner:
    """The run's env and rsl_rl runner (networks, PPO), quiet."""
    env_cfg = dataclasses.replace(cfg.env, seed=cfg.env.seed + group.rank, device=device_for(cfg.env.device, group))
    torch.manual_seed(env_cfg.seed)  # network initialisation (rank 0's is broadcast) and action sampling
    env = ReposeEnv(env_cfg)
    if cfg.ppo.teacher_coef > 0:
        env = TeacherObservations(env, ExpertConfig())
    with contextlib.redirect_stdout(io.StringIO()):  # rsl_rl prints its model summary; stdout is for results
        return DistributedRunner(env, to_rsl_rl(cfg), log_dir=str(run_dir), device=env_cfg.device)


def _learn(
    runner: DistributedRunner, cfg: TrainConfig, start: int, group: ProcessGroup, deadline_s: float, show: bool
) -> None:
    """rsl_rl's learning loop under a progress bar and the wall-clock budget; rank 0 keeps progress.json."""
    steps_per_iteration = cfg.env.num_envs * cfg.num_steps_per_env * group.world_size
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), EtaColumn())
    console = Console(stderr=True)  # progress on stderr, so stdout carries only results
    with Progress(*columns, console=console, disable=not show) as progress:
        task_id = progress.add_task("starting", total=cfg.max_iterations, completed=start)
        log = ProgressLog(runner, progress, task_id, steps_per_iteration, cfg.max_iterations, deadline_s,
                          Path(runner.logger.log_dir) if group.is_main else None, start)

        def log_and_check_budget(**kwargs) -> None:
            log(**kwargs)
            if any_rank(time.monotonic() >= deadline_s or stop.requested, group, str(runner.device)):
                raise _OutOfTime

        runner.logger.log = log_and_check_budget
        try:
            with _StopOnSignal() as stop, contextlib.redirect_stdout(io.StringIO()):
                runner.learn(num_learning_iterations=cfg.max_iterations - start,
                             init_at_random_ep_len=cfg.random_episode_start)
        except _OutOfTime:
            if group.is_main:
                runner.save(str(Path(runner.logger.log_dir) / f"model_{runner.current_learning_iteration}.pt"))
            runner.logger.stop_logging_writer()


def _saved_config_or(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """On resume the run's own saved config wins over the command line's, except for the budget (max_iterations,
    max_minutes) and the machine's thread counts, which change speed, not learning."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return cfg
    saved = load_config(path)
    return dataclasses.replace(saved, max_iterations=cfg.max_iterations, max_minutes=cfg.max_minutes,
                               torch_threads=cfg.torch_threads,
                               env=dataclasses.replace(saved.env, num_threads=cfg.env.num_threads))
