"""Weighing a held cube with the fingers' joint torques: the cube's mass without a contact model.

While the fingers hold the cube still in the air, the forces their tips put on it add up to its weight, whatever the
contact between them is like (PyBullet's rigid point contacts, MuJoCo's soft ones, a real robot's rubber tips). Each
finger has three joints for one tip force, so the tip force follows from the motor torques less what the finger's own
dynamics need (its weight, inertia and damping, from our model of the finger's links):

    tau_applied - tau_finger = J_tip^T f_tip   =>   f_tip = J_tip^-T (tau_applied - tau_finger)

and the mass is the tips' vertical force on the cube over g plus its upward acceleration (the tips' own, which
carry it: exact from the encoders, where the camera's 2 mm would not do), averaged over the frames that show it
held. Replaying held windows instead fitted PyBullet's cubes 13-36% too heavy, because MuJoCo's soft contact does
not follow Bullet's squeezing grip for 0.3 s (docs/benchmarks.md, 2026-12-05); this balance recovers them within
about 1% given the motor's torque scale. Static joint friction is not modelled (a finger at rest holds any friction
torque up to its limit); the fitted damping and the robot's safety damping are.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import REST_TOLERANCE_M, TOUCH_M, Fingertips, fresh_frames
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp

CLEAR_OF_TABLE_M = 0.005
"""A frame shows the cube held when its lowest corner is this far above the table (2.5 times the tracker's noise):
a cube tipped onto an edge or leaning on a finger stands higher than its resting height while the table still
carries part of its weight."""
ROWS_PER_FRAME = 20
"""Robot steps sampled between two camera frames (of 100)."""
MIN_HELD_FRAMES = 5
"""Fewer held frames than this, and the mass is left to the replay."""
FAR_AWAY_M = np.array([0.0, 0.0, 5.0])
"""Where the cube is put to compute what the fingers alone need (no contact with it)."""
_CORNERS = cube.HALF_EDGE_M * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


def lowest_corner_m(position_m: np.ndarray, quat_xyzw: np.ndarray) -> float:
    """Height above the table of the cube's lowest corner at this pose."""
    return float(position_m[2] + Rotation.from_quat(quat_xyzw).apply(_CORNERS)[:, 2].min())


@dataclass(frozen=True)
class HeldRows:
    """R robot steps at which the cube is held still in the air, what each says of the cube's weight."""

    frame: np.ndarray
    """(R,) the camera frame each row belongs to (rows of one frame are averaged first)."""
    lift_per_torque: np.ndarray
    """(R, 9): the tips' upward force on the cube per unit of each joint's net torque, e_z^T J_tip^-T per finger
    (zero for a finger whose tip does not touch the cube)."""
    torque_nm: np.ndarray
    """(R, 9) commanded torques."""
    joint_vel_radps: np.ndarray
    finger_need_nm: np.ndarray
    """(R, 9) the torques the fingers alone need for their logged motion (weight, inertia; no damping)."""
    cube_accel_mps2: np.ndarray
    """(R,) the cube's mean upward acceleration over the row's frame: that of the tips that carry it."""
    gravity_mps2: float

    @property
    def frames(self) -> int:
        return len(np.unique(self.frame))

    def mass_kg(self, params: PhysicalParams) -> tuple[float, float]:
        """(mass, standard error over frames) of the cube under the robot's motor and damping parameters."""
        scale, limit = params.torque_scale, tp.MAX_TORQUE_NM * params.torque_scale
        kd = np.array(tp.per_finger(tp.SAFETY_KD)) * params.safety_kd_scale
        damping = np.array(tp.per_finger((params.joint_damping_upper, params.joint_damping_middle,
                                          params.joint_damping_lower)))
        v = self.joint_vel_radps
        applied = np.clip(np.clip(scale * self.torque_nm, -limit, limit) - kd * v, -limit, limit)
        lift_n = np.sum(self.lift_per_torque * (applied - self.finger_need_nm - damping * v), axis=1)
        frames, index = np.unique(self.frame, return_inverse=True)
        count = np.bincount(index)
        accel = np.bincount(index, self.cube_accel_mps2) / count
        per_frame_kg = np.bincount(index, lift_n) / count / (self.gravity_mps2 + accel)
        spread = per_frame_kg.std(ddof=1) / np.sqrt(len(frames)) if len(frames) > 1 else np.inf
        return float(per_frame_kg.mean()), float(spread)


def held_rows(logs: list[RobotLog]) -> HeldRows:
    """The rows of every log at which the cube is held still in the air (between two such frames)."""
    fingers = _Fingers()
    parts: list[dict] = []
    frame_id = 0
    for log in logs:
        rows, positions, quats = fresh_frames(log)
        period = round(0.1 / log.robot_dt_s)
        for i in range(1, len(rows) - 1):
            if not _held_still(positions[i - 1 : i + 2], quats[i : i + 2]) or abs(rows[i + 1] - rows[i] - period) > 5:
                continue
            lift = fingers.lift_per_torque(log.joint_pos_rad[rows[i]], positions[i], quats[i])
            if not lift.any():
                continue
            steps = np.linspace(rows[i] + 1, rows[i + 1] - 2, ROWS_PER_FRAME).astype(int)
            ends = [fingers.mean_mps(log.joint_pos_rad[r], log.joint_vel_radps[r]) for r in (rows[i], rows[i + 1])]
            accel_mps2 = (ends[1][2] - ends[0][2]) / (log.timestamp_s[rows[i + 1]] - log.timestamp_s[rows[i]])
            for r in steps:
                accel = (log.joint_vel_radps[r + 1] - log.joint_vel_radps[r - 1]) / (2 * log.robot_dt_s)
                parts.append({"frame": frame_id, "lift_per_torque": lift, "torque_nm": log.torque_nm[r],
                              "joint_vel_radps": log.joint_vel_radps[r],
                              "finger_need_nm": fingers.need_nm(log.joint_pos_rad[r], log.joint_vel_radps[r], accel),
                              "cube_accel_mps2": accel_mps2})
            frame_id += 1
    keys = ("frame", "lift_per_torque", "torque_nm", "joint_vel_radps", "finger_need_nm", "cube_accel_mps2")
    arrays = {k: np.array([p[k] for p in parts]) if parts else np.zeros((0,) if k in ("frame", "cube_accel_mps2")
                                                                         else (0, 9)) for k in keys}
    return HeldRows(**arrays, gravity_mps2=fingers.gravity_mps2)


def _held_still(positions_m: np.ndarray, quats_xyzw: np.ndarray) -> bool:
    """Three frames within REST_TOLERANCE_M of each other, the cube clear of the table in the last two."""
    still = np.all(np.linalg.norm(np.diff(positions_m, axis=0), axis=1) <= REST_TOLERANCE_M)
    clear = all(lowest_corner_m(p, q) > CLEAR_OF_TABLE_M for p, q in zip(positions_m[1:], quats_xyzw, strict=True))
    return bool(still and clear)


class _Fingers(Fingertips):
    """Our MuJoCo model of the fingers (no joint damping or friction: the fit's are applied separately): their
    inverse dynamics and the Jacobians of their tips' contact points, besides the tips' velocities."""

    def __init__(self) -> None:
        super().__init__()
        self.model.dof_damping[:] = 0.0
        self.model.dof_frictionloss[:] = 0.0
        self.gravity_mps2 = float(-self.model.opt.gravity[2])

    def need_nm(self, joint_pos_rad: np.ndarray, joint_vel_radps: np.ndarray, accel_radps2: np.ndarray) -> np.ndarray:
        d = self.data
        d.qpos[: tp.NUM_JOINTS], d.qpos[self.cube_qpos : self.cube_qpos + 3] = joint_pos_rad, FAR_AWAY_M
        d.qvel[:], d.qacc[:] = 0.0, 0.0
        d.qvel[: tp.NUM_JOINTS], d.qacc[: tp.NUM_JOINTS] = joint_vel_radps, accel_radps2
        mujoco.mj_inverse(self.model, d)
        return d.qfrc_inverse[: tp.NUM_JOINTS].copy()

    def lift_per_torque(self, joint_pos_rad: np.ndarray, position_m: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
        """(9,) e_z^T J^-T of each finger whose tip touches the cube (within TOUCH_M), at its nearest point."""
        d = self.data
        d.qpos[: tp.NUM_JOINTS], d.qpos[self.cube_qpos : self.cube_qpos + 3] = joint_pos_rad, position_m
        d.qpos[self.cube_qpos + 3 : self.cube_qpos + 7] = np.roll(quat_xyzw, 1)  # MuJoCo: w first
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)
        out, fromto = np.zeros(tp.NUM_JOINTS), np.zeros(6)
        for finger, geom in enumerate(self.tip_geoms):
            if mujoco.mj_geomDistance(self.model, d, geom, self.cube_geom, 2 * TOUCH_M, fromto) >= TOUCH_M:
                continue
            mujoco.mj_jac(self.model, d, self._jac, None, fromto[:3], int(self.model.geom_bodyid[geom]))
            joints = slice(3 * finger, 3 * finger + 3)
            # f_z = e_z^T J^-T tau = (J^-1 e_z)^T tau
            out[joints] = np.linalg.solve(self._jac[:, joints], np.array([0.0, 0.0, 1.0]))
        return out
