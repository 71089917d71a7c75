"""The forces the fingertips put on the cube, from the logged joint torques: a measurement without a contact model.

Each finger has three joints for one tip force, so the tip's force on the cube follows from the motor torques less
what the finger's own dynamics need (its weight, inertia and damping, from our model of the finger's links):

    tau_applied - tau_finger = J_tip^T f_tip   =>   f_tip = J_tip^-T (tau_applied - tau_finger)

The fingers' joint damping and the robot's safety damping and torque scale are applied per parameter set
(`TipForceRows.force_n`), so that a fit can weigh or measure at its current motor parameters without recomputing the
kinematics. Static joint friction is not modelled (a finger at rest holds any friction torque up to its limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import TOUCH_M, Fingertips
from trifinger_s2r.robot import trifinger_pro as tp

FAR_AWAY_M = np.array([0.0, 0.0, 5.0])
"""Where the cube is put to compute what the fingers alone need (no contact with it)."""


@dataclass(frozen=True)
class TipForceRows:
    """R robot steps, each with what turns the joints' net torque into the touching tips' total force on the cube."""

    frame: np.ndarray
    """(R,) the camera frame (or other group) each row belongs to."""
    force_per_torque: np.ndarray
    """(R, 3, 9): the touching tips' summed force on the cube (world frame) per unit of each joint's net torque,
    J_tip^-T per finger (zero columns for a finger whose tip does not touch the cube)."""
    torque_nm: np.ndarray
    """(R, 9) commanded torques."""
    joint_vel_radps: np.ndarray
    finger_need_nm: np.ndarray
    """(R, 9) the torques the fingers alone need for their logged motion (weight, inertia; no damping)."""

    @staticmethod
    def stack(rows: list[dict]) -> TipForceRows:
        """From per-row dicts with this class's keys (none: zero rows)."""
        shapes = {"frame": (0,), "force_per_torque": (0, 3, tp.NUM_JOINTS), "torque_nm": (0, tp.NUM_JOINTS),
                  "joint_vel_radps": (0, tp.NUM_JOINTS), "finger_need_nm": (0, tp.NUM_JOINTS)}
        empty = {k: np.zeros(s, dtype=int if k == "frame" else float) for k, s in shapes.items()}
        return TipForceRows(**{k: np.array([r[k] for r in rows]) if rows else empty[k] for k in shapes})

    def force_n(self, params: PhysicalParams) -> np.ndarray:
        """(R, 3) the tips' total force on the cube under the robot's motor and damping parameters."""
        scale, limit = params.torque_scale, tp.MAX_TORQUE_NM * params.torque_scale
        kd = np.array(tp.per_finger(tp.SAFETY_KD)) * params.safety_kd_scale
        damping = np.array(tp.per_finger((params.joint_damping_upper, params.joint_damping_middle,
                                          params.joint_damping_lower)))
        v = self.joint_vel_radps
        applied = np.clip(np.clip(scale * self.torque_nm, -limit, limit) - kd * v, -limit, limit)
        return np.einsum("rij,rj->ri", self.force_per_torque, applied - self.finger_need_nm - damping * v)

    def frame_force_n(self, params: PhysicalParams) -> np.ndarray:
        """(F, 3) the tips' mean force on the cube per frame (frames numbered 0..F-1, each with at least one row)."""
        frames = int(self.frame.max()) + 1 if len(self.frame) else 0
        count = np.bincount(self.frame, minlength=frames)
        return np.stack([np.bincount(self.frame, f, frames) for f in self.force_n(params).T], 1) / count[:, None]


class FingerModel(Fingertips):
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

    def force_per_torque(self, joint_pos_rad: np.ndarray, position_m: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
        """(3, 9) J^-T of each finger whose tip touches the cube (within TOUCH_M) at its nearest point."""
        d = self.data
        d.qpos[: tp.NUM_JOINTS], d.qpos[self.cube_qpos : self.cube_qpos + 3] = joint_pos_rad, position_m
        d.qpos[self.cube_qpos + 3 : self.cube_qpos + 7] = np.roll(quat_xyzw, 1)  # MuJoCo: w first
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)
        out, fromto = np.zeros((3, tp.NUM_JOINTS)), np.zeros(6)
        for finger, geom in enumerate(self.tip_geoms):
            if mujoco.mj_geomDistance(self.model, d, geom, self.cube_geom, 2 * TOUCH_M, fromto) >= TOUCH_M:
                continue
            mujoco.mj_jac(self.model, d, self._jac, None, fromto[:3], int(self.model.geom_bodyid[geom]))
            joints = slice(3 * finger, 3 * finger + 3)
            out[:, joints] = np.linalg.inv(self._jac[:, joints].T)
        return out

    def row(self, log: RobotLog, step: int, frame: int, position_m: np.ndarray, quat_xyzw: np.ndarray,
            force_per_torque: np.ndarray | None = None) -> dict:
        """One TipForceRows row at a robot step, the cube at the given pose (force_per_torque: reuse one)."""
        accel = (log.joint_vel_radps[step + 1] - log.joint_vel_radps[step - 1]) / (2 * log.robot_dt_s)
        if force_per_torque is None:
            force_per_torque = self.force_per_torque(log.joint_pos_rad[step], position_m, quat_xyzw)
        return {"frame": frame, "force_per_torque": force_per_torque, "torque_nm": log.torque_nm[step],
                "joint_vel_radps": log.joint_vel_radps[step],
                "finger_need_nm": self.need_nm(log.joint_pos_rad[step], log.joint_vel_radps[step], accel)}
