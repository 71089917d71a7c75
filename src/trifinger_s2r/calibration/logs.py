"""Reading and checking robot logs (`log.npz` of a deployment, a farm job or an excitation run) for calibration.

A log holds 1 kHz robot data (`robot_*`: step index, timestamp, joint positions and velocities, the torque the
controller commanded) and 50 Hz reads of the cube tracker (`policy_*`: step index of the read, the filtered pose, its
confidence and its capture timestamp); an excitation log adds `robot_camera_timestamp_s`, the capture timestamp of
the newest camera frame at every robot step. Everything calibration needs is checked here, so that a bad file is one
line naming the file and the problem.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trifinger_s2r.deploy.session import LOG_FORMAT_VERSION
from trifinger_s2r.robot import trifinger_pro as tp

LOG_FILE = "log.npz"
REQUIRED_KEYS = {
    "robot_t": (None,), "robot_timestamp_ms": (None,), "robot_position_rad": (None, tp.NUM_JOINTS),
    "robot_velocity_radps": (None, tp.NUM_JOINTS), "robot_commanded_torque_nm": (None, tp.NUM_JOINTS),
    "policy_t": (None,), "policy_object_position_m": (None, 3), "policy_object_quat_xyzw": (None, 4),
    "policy_object_confidence": (None,), "policy_camera_timestamp_s": (None,),
}
"""Each key's shape; None: any length (robot_* rows share one length, policy_* rows another)."""
OPTIONAL_KEYS = {"robot_camera_timestamp_s": (None,)}
MIN_ROBOT_STEPS = 500
"""A log shorter than this (0.5 s) has nothing to fit."""


class LogError(ValueError):
    """A log calibration cannot use; the message names the file and the problem."""


@dataclass(frozen=True)
class RobotLog:
    """One episode's log, checked: robot arrays (T, ...) at 1 kHz and tracker reads (P, ...)."""

    path: Path
    timestamp_s: np.ndarray
    """(T,) robot step times."""
    joint_pos_rad: np.ndarray
    """(T, 9)."""
    joint_vel_radps: np.ndarray
    """(T, 9)."""
    torque_nm: np.ndarray
    """(T, 9) the torque the controller commanded at each step (before the robot's clipping and damping)."""
    read_index: np.ndarray
    """(P,) robot row of each tracker read."""
    object_position_m: np.ndarray
    """(P, 3) filtered cube position at each read."""
    object_quat_xyzw: np.ndarray
    """(P, 4)."""
    object_confidence: np.ndarray
    """(P,)."""
    camera_timestamp_s: np.ndarray
    """(P,) capture time of the frame shown at each read."""
    camera_timestamp_per_step_s: np.ndarray | None
    """(T,) capture time of the newest frame at every robot step (excitation logs), else None."""

    @property
    def robot_dt_s(self) -> float:
        return float(np.median(np.diff(self.timestamp_s)))


def find_logs(dirs: list[Path]) -> list[Path]:
    """Every log.npz in or under the given folders (a folder that holds none is an error), sorted."""
    found: list[Path] = []
    for folder in map(Path, dirs):
        if not folder.exists():
            raise LogError(f"{folder}: no such folder")
        logs = [folder] if folder.is_file() else sorted(folder.rglob(LOG_FILE))
        if not logs:
            raise LogError(f"{folder}: holds no {LOG_FILE}")
        found.extend(logs)
    return found


def read_log(path: Path) -> RobotLog:
    """Load and check one log; raises LogError naming the file and the problem."""
    path = Path(path)
    arrays = _load(path)
    version = arrays.get("format_version")
    if version is None or int(np.asarray(version)) != LOG_FORMAT_VERSION:
        found = "none (version 1)" if version is None else int(np.asarray(version))
        raise LogError(f"{path}: log format version {found}, calibration reads version {LOG_FORMAT_VERSION}")
    _check_shapes(path, arrays)
    robot_t = arrays["robot_t"].astype(np.int64)
    read_index = np.searchsorted(robot_t, arrays["policy_t"].astype(np.int64))
    if (read_index >= robot_t.size).any():
        read_index = np.minimum(read_index, robot_t.size - 1)
    return RobotLog(
        path=path, timestamp_s=arrays["robot_timestamp_ms"] / 1000.0, joint_pos_rad=arrays["robot_position_rad"],
        joint_vel_radps=arrays["robot_velocity_radps"], torque_nm=arrays["robot_commanded_torque_nm"],
        read_index=read_index, object_position_m=arrays["policy_object_position_m"],
        object_quat_xyzw=arrays["policy_object_quat_xyzw"], object_confidence=arrays["policy_object_confidence"],
        camera_timestamp_s=arrays["policy_camera_timestamp_s"],
        camera_timestamp_per_step_s=arrays.get("robot_camera_timestamp_s"),
    )


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise LogError(f"{path}: not a readable npz file (truncated or corrupt: {err})") from None


def _check_shapes(path: Path, arrays: dict[str, np.ndarray]) -> None:
    missing = sorted(set(REQUIRED_KEYS) - set(arrays))
    if missing:
        raise LogError(f"{path}: missing arrays {missing}")
    lengths = {"robot": arrays["robot_t"].shape[0], "policy": arrays["policy_t"].shape[0]}
    for key, shape in {**REQUIRED_KEYS, **{k: v for k, v in OPTIONAL_KEYS.items() if k in arrays}}.items():
        value = arrays[key]
        expected = (lengths[key.split("_")[0]], *shape[1:])
        if value.shape != expected:
            raise LogError(f"{path}: {key} has shape {value.shape}, expected {expected}")
        if not np.issubdtype(value.dtype, np.number):
            raise LogError(f"{path}: {key} is not numeric ({value.dtype})")
        if not np.isfinite(value).all():
            raise LogError(f"{path}: {key} holds non-finite values")
    if lengths["robot"] < MIN_ROBOT_STEPS:
        raise LogError(f"{path}: {lengths['robot']} robot steps, at least {MIN_ROBOT_STEPS} needed (truncated?)")
    if lengths["policy"] < 2:
        raise LogError(f"{path}: {lengths['policy']} tracker reads, at least 2 needed")
    if (np.diff(arrays["robot_t"]) <= 0).any():
        raise LogError(f"{path}: robot_t is not increasing")
