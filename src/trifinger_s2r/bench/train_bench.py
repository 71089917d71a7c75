"""End-to-end training throughput: env + policy inference + PPO updates, in samples (env steps) per second."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from trifinger_s2r.bench.env_bench import machine_info
from trifinger_s2r.train.config import ModelConfig, apply_overrides, preset
from trifinger_s2r.train.trainer import train


@dataclass(frozen=True)
class TrainBenchConfig:
    preset: str = "push-cpu"
    iterations: int = 4
    """Timed iterations; one more runs first as warm-up."""
    num_envs: int | None = None
    torch_threads: int = 1
    """As training's default; 0: all cores."""
    paper_networks: bool = False
    """Use the paper's MLP sizes instead of the preset's."""
    overrides: tuple[str, ...] = ()
    """'dotted.key=value' config overrides, as `train --set` takes them (e.g. env.device=cpu for repose-gpu on
    Warp's CPU device: scripts/gpu/run.sh --cpu-dry-run)."""


def run(cfg: TrainBenchConfig) -> dict:
    train_cfg = preset(cfg.preset)
    if cfg.num_envs:
        train_cfg = dataclasses.replace(train_cfg, env=dataclasses.replace(train_cfg.env, num_envs=cfg.num_envs))
    if cfg.paper_networks:
        train_cfg = dataclasses.replace(train_cfg, model=ModelConfig())
    if cfg.overrides:
        train_cfg = apply_overrides(train_cfg, list(cfg.overrides))
    train_cfg = dataclasses.replace(
        train_cfg, max_iterations=cfg.iterations + 1, save_interval=10**9, torch_threads=cfg.torch_threads
    )
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as run_dir:  # TensorBoard may still flush
        train(train_cfg, Path(run_dir), show_progress=False)
        timed = json.loads((Path(run_dir) / "progress.json").read_text())[1:]
    import torch

    return {
        "preset": cfg.preset,
        "num_envs": train_cfg.env.num_envs,
        "num_steps_per_env": train_cfg.num_steps_per_env,
        "actor_hidden_dims": list(train_cfg.model.actor_hidden_dims),
        "critic_hidden_dims": list(train_cfg.model.critic_hidden_dims),
        "iterations_timed": len(timed),
        "train_samples_per_s": round(mean(p["steps_per_s"] for p in timed), 1),
        "collect_s_per_iteration": round(mean(p["collect_s"] for p in timed), 3),
        "learn_s_per_iteration": round(mean(p["learn_s"] for p in timed), 3),
        **machine_info(),
        "torch_threads": torch.get_num_threads(),
    }
