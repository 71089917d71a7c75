"""Full env vs bare MuJoCo throughput on the same model, measured in one run."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, replace

import mujoco
import mujoco.batch
import numpy as np
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.task.config import TaskConfig


@dataclass(frozen=True)
class EnvBenchConfig:
    backend: str = "mujoco"
    num_envs: int = 1024
    policy_steps: int = 200
    """Timed policy steps (after warm-up)."""
    warmup_steps: int = 20
    collision: str = "primitive"
    physics_mode: str = "5ms"
    friction_cone: str = "pyramidal"
    impratio: float = 1.0
    num_threads: int = 0
    device: str = "cpu"
    """The env's device; the warp backend runs there (cuda or Warp's CPU device)."""
    randomize: bool = True
    seed: int = 0


def machine_info() -> dict:
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def make_env(cfg: EnvBenchConfig) -> ReposeEnv:
    task = TaskConfig(physics_mode=cfg.physics_mode, friction_cone=cfg.friction_cone, impratio=cfg.impratio)
    if not cfg.randomize:
        task = replace(task, randomization=replace(task.randomization, enabled=False))
    return ReposeEnv(
        EnvConfig(num_envs=cfg.num_envs, backend=cfg.backend, collision=cfg.collision,
                  num_threads=cfg.num_threads, seed=cfg.seed, device=cfg.device, task=task)
    )


def _time_env(env: ReposeEnv, steps: int, gen: torch.Generator) -> float:
    actions = [(torch.rand(env.num_envs, 9, generator=gen) * 2 - 1).to(env.device) for _ in range(8)]
    _synchronize(env)
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % len(actions)])
    _synchronize(env)
    return time.perf_counter() - start


def _synchronize(env: ReposeEnv) -> None:
    if env.device.type == "cuda":
        torch.cuda.synchronize(env.device)


def _time_raw_physics(env: ReposeEnv, steps: int, rng: np.random.Generator) -> float:
    """Bare physics on the env's own simulation (same model, per-env parameters and states): write torques, step."""
    if env.cfg.backend != "mujoco":
        return _time_backend_steps(env, steps)
    batch = env.backend.batch
    ctrl = batch.bind("ctrl")
    limit = env.task.torque_limit_nm
    start = time.perf_counter()
    for _ in range(steps):
        ctrl[:] = rng.uniform(-limit, limit, size=(env.num_envs, 9))
        batch.step(nstep=env.timing.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)
    return time.perf_counter() - start


def _time_backend_steps(env: ReposeEnv, steps: int) -> float:
    """The backend's own step with torques drawn on its device (MuJoCo Warp: one captured graph per step)."""
    limit = env.task.torque_limit_nm
    torques = [(torch.rand(env.num_envs, 9, device=env.device) * 2 - 1) * limit for _ in range(8)]
    _synchronize(env)
    start = time.perf_counter()
    for i in range(steps):
        env.backend.step(torques[i % len(torques)])
    _synchronize(env)
    return time.perf_counter() - start


def measure(cfg: EnvBenchConfig, rounds: int = 4) -> tuple[float, float]:
    """(env, raw physics) policy steps/s; the two alternate in rounds so that machine noise hits both alike."""
    env = make_env(cfg)
    gen, rng = torch.Generator().manual_seed(cfg.seed), np.random.default_rng(cfg.seed)
    _time_env(env, cfg.warmup_steps, gen)
    _time_raw_physics(env, cfg.warmup_steps, rng)
    per_round = max(1, cfg.policy_steps // rounds)
    env_s = raw_s = 0.0
    for _ in range(rounds):
        env_s += _time_env(env, per_round, gen)
        raw_s += _time_raw_physics(env, per_round, rng)
    steps = cfg.num_envs * per_round * rounds
    return steps / env_s, steps / raw_s


def run(cfg: EnvBenchConfig) -> dict:
    env, raw = measure(cfg)
    return {
        "backend": cfg.backend,
        "num_envs": cfg.num_envs,
        "physics_mode": cfg.physics_mode,
        "friction_cone": cfg.friction_cone,
        "impratio": cfg.impratio,
        "collision": cfg.collision,
        "randomize": cfg.randomize,
        "policy_steps_timed": cfg.policy_steps,
        "raw_physics": ("mujoco.batch.Batch.step on the env's own batch" if cfg.backend == "mujoco" else
                        "the MuJoCo Warp backend's step (captured graph on CUDA)") + " (same per-env parameters)",
        "device": cfg.device,
        "env_policy_steps_per_s": round(env, 1),
        "raw_physics_policy_steps_per_s": round(raw, 1),
        "env_over_raw": round(env / raw, 3),
        **machine_info(),
    }
