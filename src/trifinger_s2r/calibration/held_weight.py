"""Weighing a held cube with the fingers' joint torques: the cube's mass without a contact model.

While the fingers hold the cube still in the air, the forces their tips put on it (calibration.tip_forces: the motor
torques less what the fingers' own links need, through J_tip^-T) add up to its weight, whatever the contact between
them is like (PyBullet's rigid point contacts, MuJoCo's soft ones, a real robot's rubber tips). The mass is the tips'
vertical force on the cube over g plus its upward acceleration (the tips' own, which carry it: exact from the
encoders, where the camera's 2 mm would not do), averaged over the frames that show it held. Replaying held windows
instead fitted PyBullet's cubes 13-36% too heavy, because MuJoCo's soft contact does not follow Bullet's squeezing
grip for 0.3 s (docs/benchmarks.md, 2026-12-05); this balance recovers them within about 1% given the motor's torque
scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import REST_TOLERANCE_M, fresh_frames
from trifinger_s2r.calibration.tip_forces import FingerModel, TipForceRows
from trifinger_s2r.robot import cube

CLEAR_OF_TABLE_M = 0.005
"""A frame shows the cube held when its lowest corner is this far above the table (2.5 times the tracker's noise):
a cube tipped onto an edge or leaning on a finger stands higher than its resting height while the table still
carries part of its weight."""
ROWS_PER_FRAME = 20
"""Robot steps sampled between two camera frames (of 100)."""
MIN_HELD_FRAMES = 5
"""Fewer held frames than this, and the mass is left to the replay."""
_CORNERS = cube.HALF_EDGE_M * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


def lowest_corner_m(position_m: np.ndarray, quat_xyzw: np.ndarray) -> float:
    """Height above the table of the cube's lowest corner at this pose."""
    return float(position_m[2] + Rotation.from_quat(quat_xyzw).apply(_CORNERS)[:, 2].min())


@dataclass(frozen=True)
class HeldRows:
    """Robot steps at which the cube is held still in the air, what each says of the cube's weight."""

    tips: TipForceRows
    """The rows (grouped by camera frame: rows of one frame are averaged first)."""
    cube_accel_mps2: np.ndarray
    """(F,) the cube's mean upward acceleration over each frame: that of the tips that carry it."""
    gravity_mps2: float

    @property
    def frames(self) -> int:
        return len(self.cube_accel_mps2)

    def mass_kg(self, params: PhysicalParams) -> tuple[float, float]:
        """(mass, standard error over frames) of the cube under the robot's motor and damping parameters."""
        per_frame_kg = self.tips.frame_force_n(params)[:, 2] / (self.gravity_mps2 + self.cube_accel_mps2)
        spread = per_frame_kg.std(ddof=1) / np.sqrt(self.frames) if self.frames > 1 else np.inf
        return float(per_frame_kg.mean()), float(spread)


def held_rows(logs: list[RobotLog]) -> HeldRows:
    """The rows of every log at which the cube is held still in the air (between two such frames)."""
    fingers = FingerModel()
    parts: list[dict] = []
    accels: list[float] = []
    for log in logs:
        rows, positions, quats = fresh_frames(log)
        period = round(0.1 / log.robot_dt_s)
        for i in range(1, len(rows) - 1):
            if not _held_still(positions[i - 1 : i + 2], quats[i : i + 2]) or abs(rows[i + 1] - rows[i] - period) > 5:
                continue
            force_per_torque = fingers.force_per_torque(log.joint_pos_rad[rows[i]], positions[i], quats[i])
            if not force_per_torque.any():
                continue
            ends = [fingers.mean_mps(log.joint_pos_rad[r], log.joint_vel_radps[r]) for r in (rows[i], rows[i + 1])]
            accel_mps2 = (ends[1][2] - ends[0][2]) / (log.timestamp_s[rows[i + 1]] - log.timestamp_s[rows[i]])
            for r in np.linspace(rows[i] + 1, rows[i + 1] - 2, ROWS_PER_FRAME).astype(int):
                parts.append(fingers.row(log, r, len(accels), positions[i], quats[i], force_per_torque))
            accels.append(accel_mps2)
    return HeldRows(TipForceRows.stack(parts), np.array(accels), fingers.gravity_mps2)


def _held_still(positions_m: np.ndarray, quats_xyzw: np.ndarray) -> bool:
    """Three frames within REST_TOLERANCE_M of each other, the cube clear of the table in the last two."""
    still = np.all(np.linalg.norm(np.diff(positions_m, axis=0), axis=1) <= REST_TOLERANCE_M)
    clear = all(lowest_corner_m(p, q) > CLEAR_OF_TABLE_M for p, q in zip(positions_m[1:], quats_xyzw, strict=True))
    return bool(still and clear)
