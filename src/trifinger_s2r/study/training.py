"""Agents trained at equal env-step budgets, then evaluated in our simulation and on the PyBullet TriFinger: the
machinery of the ablation and randomisation studies.

Each agent is the preset plus its own config overrides (dotted `--set` keys) plus the study's; each seed trains
`ceil(budget_steps / (num_envs * num_steps_per_env))` iterations into `runs/AGENT-seedS/` (a run that already holds
its final checkpoint is reused, so a killed study continues where it stopped). Seed s of every agent is then judged on
the same episodes (evaluation seed s): N in our simulation under the preset's randomisation with the camera model on,
the conditions closest to a robot, and N on PyBullet through the deployment runner (tracker model on). Each
judgement is kept in its run folder (`judged.json`) with what it depended on (the checkpoint's bytes, the episodes,
the judging config, the package's committed code), so a study run again with more seeds judges only the new ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

from trifinger_s2r.train.config import PRESETS, TrainConfig

JUDGED_FILE = "judged.json"
"""In each run folder: the seed's judgement and what it depended on, reused when a study is run again."""
EVAL_SEED = 0
"""Seed s of every agent is judged on the episodes of evaluation seed EVAL_SEED + s: agents are compared on the
same episodes, and pooling seeds pools distinct episodes (N = seeds x episodes), not the same ones again."""


@dataclasses.dataclass(frozen=True)
class Agent:
    """One trained configuration: a name and the config overrides that make it."""

    name: str
    overrides: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


@dataclasses.dataclass(frozen=True)
class TrainingStudyConfig:
    """Budgets and options shared by the training studies."""

    preset: str = "push-cpu"
    budget_steps: int = 1_000_000
    """Env steps per agent and seed (rounded up to whole PPO iterations)."""
    seeds: int = 2
    episodes: int = 40
    """Evaluation episodes per agent and seed, on each platform."""
    num_envs: int | None = None
    """Parallel training envs (None: the preset's)."""
    overrides: tuple[str, ...] = ()
    """Config overrides for every agent (dotted keys, as `train --set`)."""
    agents: tuple[str, ...] = ()
    """Names of the study's agents to run (empty: all of them), e.g. two agents at more seeds."""
    pybullet: bool = True
    videos: bool = True
    """Film the first seed's first evaluation episode of each agent on each platform."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {list(PRESETS)}")
        for name in ("budget_steps", "seeds", "episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.num_envs is not None and self.num_envs <= 0:
            raise ValueError(f"num-envs must be positive, got {self.num_envs}")


def select_agents(study: TrainingStudyConfig, agents: tuple[Agent, ...]) -> list[Agent]:
    """The study's agents named in study.agents, in the study's order (all of them when none is named)."""
    if not study.agents:
        return list(agents)
    valid = [a.name for a in agents]
    unknown = [name for name in study.agents if name not in valid]
    if unknown:
        raise ValueError(f"unknown agent(s) {unknown}; valid: {valid}")
    return [a for a in agents if a.name in study.agents]


def agent_config(study: TrainingStudyConfig, agent: Agent, seed: int) -> TrainConfig:
    """The training config of one agent and seed: preset, overrides, budget in whole iterations, no time limit."""
    from trifinger_s2r.train.config import apply_overrides, preset

    cfg = preset(study.preset)
    env = dataclasses.replace(cfg.env, seed=seed, num_envs=study.num_envs or cfg.env.num_envs)
    cfg = apply_overrides(dataclasses.replace(cfg, env=env), [*agent.overrides, *study.overrides])
    iterations = max(1, math.ceil(study.budget_steps / (cfg.env.num_envs * cfg.num_steps_per_env)))
    return dataclasses.replace(cfg, max_iterations=iterations, save_interval=iterations, max_minutes=0.0)


def sim_eval_config(cfg: TrainConfig, study: TrainingStudyConfig) -> TrainConfig:
    """An agent's config as our simulation judges it: the level's own goals, the preset's randomisation (on, with
    the study's overrides) with the camera model on, on the CPU MuJoCo backend."""
    from trifinger_s2r.task.config import for_evaluation

    reference = agent_config(study, Agent("reference"), 0).env.task.randomization
    randomization = dataclasses.replace(reference, enabled=True,
                                        camera=dataclasses.replace(reference.camera, enabled=True))
    task = dataclasses.replace(for_evaluation(cfg.env.task), randomization=randomization)
    return dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, task=task, backend="mujoco", device="cpu"))


class StudyInterrupted(RuntimeError):
    """An agent's training stopped before its budget (a signal asked it to): the study stops too, resumable."""


def train_agent(cfg: TrainConfig, run_dir: Path) -> Path:
    """Train (or reuse the finished run in run_dir); returns the final checkpoint."""
    from trifinger_s2r.train.trainer import latest_checkpoint, train

    final = run_dir / f"model_{cfg.max_iterations - 1}.pt"
    if final.is_file():
        return final
    checkpoint = train(cfg, run_dir, resume=latest_checkpoint(run_dir) is not None, show_progress=False)
    if Path(checkpoint) != final:  # stopped early (SIGINT/SIGTERM): judging it would judge a shorter budget
        raise StudyInterrupted(f"training of {run_dir.name} stopped at {Path(checkpoint).name} before its budget "
                               f"({final.name}); run the same study command again to continue it")
    return final


def learning_curve(run_dir: Path) -> list[tuple[int, float | None]]:
    """(env_steps, training success rate or None) per iteration, from progress.json."""
    from trifinger_s2r.train.progress import read_progress

    return [(e["env_steps"], e["success_rate"]) for e in read_progress(run_dir)]


def run_agents(study: TrainingStudyConfig, agents: list[Agent], out_dir: Path,
               progress: Callable[[str], None] | None = None) -> dict:
    """Train every agent and seed, evaluate each, pool the seeds; returns {agent name: results}. progress(line)
    hears of each agent and seed as it finishes."""
    results = {}
    for agent in agents:
        runs = []
        for seed in range(study.seeds):
            runs.append(_run_seed(study, agent, seed, out_dir))
            if progress is not None:
                pybullet = runs[-1]["pybullet"]
                progress(f"{agent.name}, seed {seed}: {runs[-1]['env_steps']:,} env steps, our sim "
                         f"{100 * runs[-1]['sim']['success_rate']:.1f}%"
                         + (f", PyBullet {100 * pybullet['success_rate']:.1f}%" if pybullet else ""))
        results[agent.name] = {"overrides": list(agent.overrides), "runs": runs,
                               "sim": pool([r["sim"] for r in runs]),
                               "pybullet": pool([r["pybullet"] for r in runs]) if study.pybullet else None}
    return results


def _run_seed(study: TrainingStudyConfig, agent: Agent, seed: int, out_dir: Path) -> dict:
    from trifinger_s2r.export.checkpoint import checkpoint_policy
    from trifinger_s2r.study.episodes import run_mujoco, run_pybullet

    cfg = agent_config(study, agent, seed)
    run_dir = out_dir / "runs" / f"{agent.slug}-seed{seed}"
    checkpoint = train_agent(cfg, run_dir)
    curve = learning_curve(run_dir)
    run = {"seed": seed, "run_dir": str(run_dir.relative_to(out_dir)), "checkpoint": checkpoint.name,
           "env_steps": curve[-1][0] if curve else None, "final_training_success": _last_rate(curve),
           "curve": curve, "sim": None, "pybullet": None, "videos": [], "judgement_reused": False}
    film = study.videos and seed == 0
    key = _judgement_key(study, seed, checkpoint)
    cached = None if film or key is None else _cached_judgement(run_dir, key)
    if cached is not None:
        return {**run, **cached, "judgement_reused": True}
    policy, trained_cfg = checkpoint_policy(checkpoint)
    sim_video = out_dir / "videos" / f"{agent.slug}_sim.mp4" if film and _can_render() else None
    run["sim"] = _summary(run_mujoco(policy, sim_eval_config(trained_cfg, study), "cube", study.episodes,
                                     EVAL_SEED + seed, sim_video, f"{agent.name}, our sim"))
    if sim_video is not None:
        run["videos"].append(str(sim_video.relative_to(out_dir)))
    if study.pybullet:
        from trifinger_s2r.export.policy_bundle import OnnxPolicy, export_checkpoint

        bundle = OnnxPolicy(export_checkpoint(checkpoint, run_dir / "bundle"))
        pb_video = out_dir / "videos" / f"{agent.slug}_pybullet.mp4" if film else None
        run["pybullet"] = _summary(run_pybullet(bundle, bundle.metadata, "cube", study.episodes, EVAL_SEED + seed,
                                                pb_video, f"{agent.name}, PyBullet"))
        if pb_video is not None:
            run["videos"].append(str(pb_video.relative_to(out_dir)))
    if key is not None:
        (run_dir / JUDGED_FILE).write_text(json.dumps({"key": key, "sim": run["sim"], "pybullet": run["pybullet"]}))
    return run


def _judgement_key(study: TrainingStudyConfig, seed: int, checkpoint: Path) -> dict | None:
    """Everything a seed's judgement depends on: the checkpoint's bytes, the episodes, the judging config and the
    code (None, so nothing is cached, when the package has uncommitted changes or is not in git)."""
    from trifinger_s2r.study.report import code_version

    version = code_version()
    if version is None:
        return None
    return {"code_version": version, "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            "preset": study.preset, "overrides": list(study.overrides), "episodes": study.episodes,
            "eval_seed": EVAL_SEED + seed, "pybullet": study.pybullet}


def _cached_judgement(run_dir: Path, key: dict) -> dict | None:
    """A seed's judgement from an earlier run of a study, if it judged the same checkpoint in the same way: a study
    run again with more seeds (or a run copied from another study with the same training config) judges only
    what is new."""
    try:
        cached = json.loads((run_dir / JUDGED_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("key") != key:
        return None
    return {"sim": cached["sim"], "pybullet": cached["pybullet"]}


def _can_render() -> bool:
    from trifinger_s2r.study.render import render_unavailable

    return render_unavailable() is None


def _summary(summary: dict) -> dict:
    keys = ("success_rate", "ci80_low", "ci80_high", "episodes", "mean_position_error_m", "mean_orientation_error_rad")
    return {k: summary[k] for k in keys}


def _last_rate(curve: list[tuple[int, float | None]]) -> float | None:
    rates = [rate for _, rate in curve if rate is not None]
    return rates[-1] if rates else None


def pool(summaries: list[dict]) -> dict:
    """Several seeds' evaluations as one: successes and episodes summed, the 80% Wilson interval of the total, mean
    errors weighted by episodes."""
    from trifinger_s2r.eval.metrics import wilson_interval

    episodes = sum(s["episodes"] for s in summaries)
    wins = sum(round(s["success_rate"] * s["episodes"]) for s in summaries)
    low, high = wilson_interval(wins, episodes, 0.8)
    mean = {k: sum(s[k] * s["episodes"] for s in summaries) / episodes
            for k in ("mean_position_error_m", "mean_orientation_error_rad")}
    return {"success_rate": wins / episodes, "ci80_low": low, "ci80_high": high, "episodes": episodes, **mean,
            "per_seed": [s["success_rate"] for s in summaries]}
