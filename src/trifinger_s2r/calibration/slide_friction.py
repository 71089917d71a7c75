"""The cube's table friction from the pushes' force balance: a measurement without a contact model.

While a fingertip pushes the cube across the table, the tips' force on it (calibration.tip_forces: from the joint
torques) balances the table's sliding friction and the cube's inertia along its direction of travel u:

    f_tips . u - m a . u = mu (m g - f_tips,z)

Summed over the frames that show the cube sliding (faster than the tracker's noise could fake, flat on the table, one
tip alone on it throughout), the ratio gives the friction coefficient, given the cube's mass (weighed by
calibration.held_weight). Replaying pushes instead fitted PyBullet robot 1's table friction 26% low, trading it
against the finger-cube friction (docs/benchmarks.md, 2026-12-06).

A simulator's friction parameter is not quite Coulomb's coefficient: MuJoCo's soft friction slides below mu N, by how
much depending on its cone. `simulator_ratio` measures our simulator with the same instrument (a noise-free MuJoCo
excitation at known parameters), so that the parameter handed to training is the one that makes our simulator slide
like the robot.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from trifinger_s2r.calibration.held_weight import CLEAR_OF_TABLE_M, lowest_corner_m
from trifinger_s2r.calibration.logs import RobotLog, read_log
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import fresh_frames
from trifinger_s2r.calibration.tip_forces import FingerModel, TipForceRows
from trifinger_s2r.sim.contact import ContactModel

MIN_SLIDE_SPEED_MPS = 0.06
"""A frame pair shows the cube sliding when the cube moved this fast across the table over two frame periods from
each of its frames: over four times the speed noise of the tracker's 2 mm per frame over 0.2 s (0.014 m/s per axis),
so a resting cube does not pass (judged over one period, 8-10 mm jumps of a resting cube passed at 0.08 m/s)."""
FLAT_TILT_RAD = 0.05
"""How far from a face-down pose the cube may be: one pushed up onto an edge is carried by that edge and the tip."""
ROWS_PER_FRAME = 20
"""Robot steps sampled between two camera frames (of 100)."""
MIN_SLIDE_FRAMES = 3
"""Fewer sliding frames than this, and the table friction is left to the replay (a grippy table slides the cube
little: PyBullet robot 1's two excitation runs show 4)."""


@dataclass(frozen=True)
class SlideRows:
    """Camera frame pairs F in which the cube slides under a pushing tip, and their robot steps."""

    tips: TipForceRows
    """The rows; tips.frame indexes the frame pairs below."""
    direction: np.ndarray
    """(F, 3) the cube's horizontal direction of travel, unit length."""
    accel_along_mps2: np.ndarray
    """(F,) the cube's acceleration along it (camera frames around the pair)."""
    gravity_mps2: float

    @property
    def frames(self) -> int:
        return len(self.direction)

    def friction(self, params: PhysicalParams) -> tuple[float, float]:
        """(Coulomb's coefficient, its standard error over frames) under the robot's motor and damping parameters
        and params.cube_mass_kg."""
        if self.frames == 0:
            raise ValueError("no frame shows the cube sliding under a pushing tip")
        force = self.tips.frame_force_n(params)
        mass = params.cube_mass_kg
        along = np.einsum("fi,fi->f", force, self.direction) - mass * self.accel_along_mps2
        normal = mass * self.gravity_mps2 - force[:, 2]
        mu = float(along.sum() / normal.sum())
        if self.frames < 2:
            return mu, float("inf")
        spread = np.sqrt(np.sum((along - mu * normal) ** 2) / (self.frames * (self.frames - 1))) / normal.mean()
        return mu, float(spread)


def slide_rows(logs: list[RobotLog]) -> SlideRows:
    """Every frame pair of the logs in which the cube slides flat on the table with a tip on it throughout."""
    fingers = FingerModel()
    parts, directions, accels = [], [], []
    for log in logs:
        rows, positions, quats = fresh_frames(log)
        times = log.timestamp_s[rows]
        period = round(0.1 / log.robot_dt_s)
        velocity = np.diff(positions, axis=0) / np.diff(times)[:, None]
        for k in range(1, len(rows) - 2):
            if (np.abs(np.diff(rows[k - 1 : k + 3]) - period) > 5).any() or not all(
                    _flat_on_table(positions[j], quats[j]) for j in (k, k + 1)):
                continue
            # over two frame periods on each side, so that one frame's tracker noise never fakes a slide
            spans = [positions[k + 1] - positions[k - 1], positions[k + 2] - positions[k]]
            if min(np.linalg.norm(d[:2]) for d in spans) < MIN_SLIDE_SPEED_MPS * 2 * (times[k + 1] - times[k]):
                continue
            travel = (spans[0] + spans[1])[:2]
            frame = _pushed_rows(fingers, log, rows[k], rows[k + 1], positions[k : k + 2], quats[k], len(directions))
            if frame is None:
                continue
            direction = np.array([*travel / np.linalg.norm(travel), 0.0])
            accel = (velocity[k + 1] - velocity[k - 1]) / (0.5 * (times[k + 2] + times[k + 1] - times[k] - times[k - 1]))
            parts.extend(frame)
            directions.append(direction)
            accels.append(float(accel @ direction))
    return SlideRows(TipForceRows.stack(parts), np.array(directions).reshape(-1, 3), np.array(accels),
                     fingers.gravity_mps2)


def _flat_on_table(position_m: np.ndarray, quat_xyzw: np.ndarray) -> bool:
    """A face down (within FLAT_TILT_RAD) and the cube on the table, not held above it."""
    axes_up = np.abs(Rotation.from_quat(quat_xyzw).as_matrix()[2])  # each body axis' vertical component
    return bool(axes_up.max() >= np.cos(FLAT_TILT_RAD) and lowest_corner_m(position_m, quat_xyzw) <= CLEAR_OF_TABLE_M)


def _pushed_rows(fingers: FingerModel, log: RobotLog, start: int, end: int, positions_m: np.ndarray,
                 quat_xyzw: np.ndarray, frame: int) -> list[dict] | None:
    """The sampled rows between two frames (the cube's position interpolated between them), or None unless one tip
    alone touches the cube in every sampled row: a push (two or more may grip it, and a gripped cube is partly
    carried)."""
    out = []
    for step in np.linspace(start + 1, end - 2, ROWS_PER_FRAME).astype(int):
        frac = (step - start) / (end - start)
        position = (1 - frac) * positions_m[0] + frac * positions_m[1]
        row = fingers.row(log, int(step), frame, position, quat_xyzw)
        if _touching_tips(row["force_per_torque"]) != 1:
            return None
        out.append(row)
    return out


def _touching_tips(force_per_torque: np.ndarray) -> int:
    return int(force_per_torque.reshape(3, 3, 3).any(axis=(0, 2)).sum())


def simulator_ratio(params: PhysicalParams, contact: ContactModel, pushes_per_finger: int = 2,
                    seed: int = 0) -> tuple[float, int]:
    """(the Coulomb coefficient measured in our MuJoCo scene over its cube_table_friction parameter, the sliding
    frames it rests on; nan where fewer than MIN_SLIDE_FRAMES): a noise-free excitation of pushes at `params`,
    measured as the robot's logs are."""
    from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation_episode
    from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
    from trifinger_s2r.deploy.session import write_log

    robot = MujocoRobot(params=params, contact=contact, seed=seed)
    arrays = run_excitation_episode(robot, ExcitationConfig(sweep_s=0.2, pushes_per_finger=pushes_per_finger,
                                                            seed=seed))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.npz"
        write_log(path, arrays)
        rows = slide_rows([read_log(path)])
    if rows.frames < MIN_SLIDE_FRAMES:
        return float("nan"), rows.frames
    return rows.friction(params)[0] / params.cube_table_friction, rows.frames


def simulator_table_friction(measured: float, params: PhysicalParams, contact: ContactModel) -> float | None:
    """Our simulator's cube_table_friction that slides the cube like Coulomb's `measured` (one correction by the
    simulator's ratio at that value), or None where our simulator's pushes do not slide the cube enough to say."""
    ratio, _ = simulator_ratio(replace(params, cube_table_friction=measured), contact)
    return None if np.isnan(ratio) else measured / ratio
