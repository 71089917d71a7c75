"""A deployment: N episodes of an exported policy on one robot, with the farm's log layout.

Layout of `log_dir` (the robot farm of the challenge wrote the same files per job):
- `info.json`: policy, platform, robot name, seed, package versions, start time (written first);
- `episode_NNN/goal.json` (RRC format: difficulty and goal pose), `episode_NNN/result.json`,
  `episode_NNN/log.npz` (compressed: robot data at 1 kHz, policy data at 50 Hz);
- `report.json`: every episode's result and the summary, written last: its presence means the run finished.
"""

from __future__ import annotations

import datetime
import json
import platform as host
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from trifinger_s2r.deploy.platform import Robot
from trifinger_s2r.deploy.runner import EpisodeResult, EpisodeRunner, Goal, PolicySpec, sample_episode_poses
from trifinger_s2r.eval.metrics import lifted_summary, success_summary

INFO_FILE = "info.json"
REPORT_FILE = "report.json"
LOG_FORMAT_VERSION = 2
"""`format_version` in every log.npz: 2 added it and `robot_commanded_torque_nm` (trifinger_s2r.calibration reads
version 2 only)."""


class DeploymentStopped(RuntimeError):
    """should_stop() asked the deployment to end before its last episode."""


@dataclass(frozen=True)
class DeployConfig:
    episodes: int = 40
    level: int | None = None
    """Goal level (None: the policy's)."""
    seed: int = 0
    episode_length_steps: int | None = None
    """Policy steps per episode (None: the policy's training episode length)."""

    def __post_init__(self) -> None:
        if self.episodes <= 0:
            raise ValueError(f"episodes must be positive, got {self.episodes}")
        if self.episode_length_steps is not None and self.episode_length_steps <= 0:
            raise ValueError(f"episode_length_steps must be positive, got {self.episode_length_steps}")


def _versions() -> dict:
    names = ("trifinger-s2r", "trifinger-simulation", "pybullet", "onnxruntime", "torch", "numpy")
    found = {}
    for name in names:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = None
    return found


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)  # a reader never sees half a file


def goal_json(goal: Goal) -> dict:
    """The challenge's goal.json: {"difficulty": level, "goal": {"position": [...], "orientation": [...]}}."""
    return {"difficulty": goal.level,
            "goal": {"position": goal.position_m.tolist(), "orientation": goal.quat_xyzw.tolist()}}


def run_deployment(
    policy: Callable,
    metadata: dict,
    robot: Robot,
    cfg: DeployConfig,
    log_dir: Path | None = None,
    policy_name: str = "",
    video_path: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Run cfg.episodes episodes; returns the summary (eval's JSON keys) with per-episode results.

    video_path: render the first episode there (PyBullet only); should_stop: checked before each episode (raises
    DeploymentStopped; no report is written)."""
    spec = PolicySpec.from_metadata(metadata)
    level = spec.level if cfg.level is None else cfg.level
    length = cfg.episode_length_steps or spec.episode_length_steps
    if log_dir is not None:
        if (Path(log_dir) / REPORT_FILE).exists():
            raise FileExistsError(f"{log_dir} holds a finished run already (report.json); choose a new folder")
        _write_json(Path(log_dir) / INFO_FILE, {
            "policy": policy_name, "platform": robot.kind, "robot_name": robot.name, "seed": cfg.seed,
            "level": level, "episodes": cfg.episodes, "episode_length_steps": length,
            "versions": _versions(), "host": host.node(),
            "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        })
    results: list[EpisodeResult] = []
    for index, (goal, initial_pos, initial_quat) in enumerate(sample_episode_poses(level, cfg.episodes, cfg.seed)):
        if should_stop is not None and should_stop():
            robot.close()
            raise DeploymentStopped(f"stopped before episode {index}")
        video = _video(video_path, robot, goal, spec) if index == 0 and video_path is not None else None
        runner = EpisodeRunner(policy, spec, robot, on_policy_step=video)
        try:
            result, record = runner.run(goal, initial_pos, initial_quat, length)
        finally:
            if video is not None:
                video.close()
        results.append(result)
        if log_dir is not None:
            _write_episode(Path(log_dir) / f"episode_{index:03d}", goal, result, record.arrays())
    robot.close()
    summary = success_summary([r.success for r in results], [r.position_error_m for r in results],
                              [r.orientation_error_rad for r in results], level)
    summary.update(platform=robot.kind, robot=robot.name, statuses=dict(Counter(r.status for r in results)),
                   judged_by=results[0].judged_by,
                   max_action_repetitions=max(r.action_repetitions for r in results))
    summary.update(lifted_summary([r.success for r in results], [r.orientation_error_rad for r in results],
                                  [r.lifted for r in results]))
    if log_dir is not None:
        _write_json(Path(log_dir) / REPORT_FILE, {
            **summary, "episode_results": [asdict(r) for r in results],
            "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        })
    return summary


def _video(path: Path, robot: Robot, goal: Goal, spec: PolicySpec):
    if robot.kind != "pybullet":
        raise ValueError("--video renders PyBullet episodes only (a real robot's cameras log their own images)")
    from trifinger_s2r.deploy.video import PyBulletVideo

    return PyBulletVideo(path, robot, goal, spec.policy_rate_hz)


def _write_episode(folder: Path, goal: Goal, result: EpisodeResult, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "goal.json", goal_json(goal))
    write_log(folder / "log.npz", arrays)
    _write_json(folder / "result.json", asdict(result))


def write_log(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """One episode's log.npz (compressed), with its format version."""
    np.savez_compressed(path, format_version=np.int64(LOG_FORMAT_VERSION), **arrays)

