"""A cache of simulated three-finger grasps of the lifted cube: start states for training episodes.

PPO on level 3-4 goals does not discover grasp-and-lift from the on-table start within our budgets (the reference's
runs took billions of steps); starting a share of episodes with the cube already held in the air puts the policy in
the states it must learn to keep (Hora's grasp cache, OmniReset's resets). Each grasp is made in MuJoCo by a scripted
controller: the cube is placed in the air, each fingertip is put on the cube by inverse kinematics along its
finger's approach direction, a Cartesian impedance controller (J^T F plus gravity compensation, within the motor
torque limit) squeezes for `settle_s`, and the state is kept if the cube is still held high and nearly still.
`python -m trifinger_s2r.sim.grasps` regenerates the shipped file.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.build_model import ASSET_DIR
from trifinger_s2r.sim.model import SceneIndex, load_model

GRASPS_FILE = ASSET_DIR / "grasps.npz"
TIP_CLEARANCE_M = 0.008
"""Distance from the cube face to the fingertip site when the tip touches (the tip's rounded end)."""


def face_points(pos_m: np.ndarray, rot: np.ndarray, approach_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the horizontal ray from the cube's centre pos_m (rotation matrix rot) towards each finger (its angle
    about z, approach_rad) leaves the cube, (F, 3), and the rays, (F, 3)."""
    rays = np.stack([np.cos(approach_rad), np.sin(approach_rad), np.zeros(len(approach_rad))], axis=-1)
    local = rays @ rot  # each ray in the cube frame
    distance = np.min(cube.HALF_EDGE_M / np.maximum(np.abs(local), 1e-9), axis=-1)
    return pos_m + distance[:, None] * rays, rays


@dataclass(frozen=True)
class GraspSpec:
    """How grasps are made and which are kept."""

    height_range_m: tuple[float, float] = (0.06, 0.09)
    xy_radius_m: float = 0.05
    squeeze_depth_m: float = 0.015
    """How far inside the face the impedance controller's target lies (sets the grip force with the stiffness)."""
    stiffness_npm: float = 150.0
    damping_nspm: float = 3.0
    settle_s: float = 0.6
    max_drift_m: float = 0.02
    max_tilt_rad: float = 0.35


@dataclass(frozen=True)
class Grasps:
    """Held states: joint positions (M, 9) rad, cube positions (M, 3) m and orientations (M, 4) xyzw."""

    joint_pos_rad: np.ndarray
    cube_pos_m: np.ndarray
    cube_quat_xyzw: np.ndarray

    def __len__(self) -> int:
        return len(self.joint_pos_rad)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, joint_pos_rad=self.joint_pos_rad, cube_pos_m=self.cube_pos_m,
                            cube_quat_xyzw=self.cube_quat_xyzw)

    @staticmethod
    def load(path: Path = GRASPS_FILE) -> Grasps:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no grasp cache at {path}; make it with: python -m trifinger_s2r.sim.grasps")
        with np.load(path) as raw:
            return Grasps(raw["joint_pos_rad"], raw["cube_pos_m"], raw["cube_quat_xyzw"])


class _GraspMaker:
    def __init__(self, spec: GraspSpec) -> None:
        self.spec = spec
        self.model = load_model("primitive")
        self.data = mujoco.MjData(self.model)
        self.ix = SceneIndex(self.model)
        mujoco.mj_resetDataKeyframe(self.model, self.data, self.ix.home_key)
        mujoco.mj_forward(self.model, self.data)
        home_tips = self.data.site_xpos[self.ix.fingertip_sites]
        self.approach_rad = np.arctan2(home_tips[:, 1], home_tips[:, 0])
        self.home = np.asarray(tp.per_finger(tp.HOME_POSE_RAD))

    def make(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        pos, quat_wxyz = self._cube_pose(rng)
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, quat_wxyz)
        rot = rot.reshape(3, 3)
        contacts, outward = self._contact_points(pos, rot)
        qpos = self._inverse_kinematics(pos, quat_wxyz, contacts + TIP_CLEARANCE_M * outward)
        if qpos is None:
            return None
        return self._settle(qpos, pos, contacts - self.spec.squeeze_depth_m * outward)

    def _cube_pose(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r = self.spec.xy_radius_m * math.sqrt(rng.random())
        heading = 2 * math.pi * rng.random()
        z = rng.uniform(*self.spec.height_range_m)
        yaw = 2 * math.pi * rng.random()
        return np.array([r * math.cos(heading), r * math.sin(heading), z]), np.array(
            [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])

    def _contact_points(self, pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return face_points(pos, rot, self.approach_rad)

    def _set(self, qpos_fingers: np.ndarray, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        d, ix = self.data, self.ix
        d.qpos[: tp.NUM_JOINTS] = qpos_fingers
        d.qpos[ix.cube_qpos: ix.cube_qpos + 3] = pos
        d.qpos[ix.cube_qpos + 3: ix.cube_qpos + 7] = quat_wxyz
        d.qvel[:] = 0.0
        d.act[:] = 0.0 if self.model.na else d.act

    def _inverse_kinematics(self, pos: np.ndarray, quat: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        """Damped least squares on each finger's 3 joints; None when a target is out of reach."""
        m, d, sites = self.model, self.data, self.ix.fingertip_sites
        q = self.home.copy()
        low, high = np.array(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD)), np.array(tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD))
        jac = np.zeros((3, m.nv))
        for _ in range(100):
            self._set(q, pos, quat)
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            error = targets - d.site_xpos[sites]
            if np.abs(error).max() < 1e-4:
                break
            for f in range(3):
                mujoco.mj_jacSite(m, d, jac, None, int(sites[f]))
                j = jac[:, 3 * f: 3 * f + 3]
                q[3 * f: 3 * f + 3] += j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(3), error[f])
            q = np.clip(q, low, high)
        return q if np.abs(error).max() < 2e-3 else None

    def _impedance_torque(self, squeeze_targets: np.ndarray) -> np.ndarray:
        """J^T F towards the squeeze targets, plus gravity compensation, within the motor limit."""
        m, d, spec, sites = self.model, self.data, self.spec, self.ix.fingertip_sites
        jac = np.zeros((3, m.nv))
        torque = d.qfrc_bias[: tp.NUM_JOINTS].copy()
        for f in range(3):
            mujoco.mj_jacSite(m, d, jac, None, int(sites[f]))
            j = jac[:, 3 * f: 3 * f + 3]
            tip_vel = j @ d.qvel[3 * f: 3 * f + 3]
            force = spec.stiffness_npm * (squeeze_targets[f] - d.site_xpos[sites[f]]) - spec.damping_nspm * tip_vel
            torque[3 * f: 3 * f + 3] += j.T @ force
        return np.clip(torque, -tp.MAX_TORQUE_NM, tp.MAX_TORQUE_NM)

    def hold(self, duration_s: float, control_period_s: float) -> bool:
        """Whether the current grasp keeps the cube above 5 cm for duration_s under the impedance controller run
        every control_period_s (a policy's rate), squeezing 1.5 cm towards the cube's centre."""
        m, d, ix = self.model, self.data, self.ix
        tips = d.site_xpos[ix.fingertip_sites].copy()
        centre = d.qpos[ix.cube_qpos: ix.cube_qpos + 3].copy()
        inward = (centre - tips) / np.linalg.norm(centre - tips, axis=1, keepdims=True)
        targets = tips + self.spec.squeeze_depth_m * inward
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)
        every = max(1, round(control_period_s / m.opt.timestep))
        for step in range(round(duration_s / m.opt.timestep)):
            if step % every == 0:
                d.ctrl[:] = self._impedance_torque(targets)
            mujoco.mj_step(m, d)
        return bool(d.qpos[ix.cube_qpos + 2] > 0.05)

    def _settle(self, qpos: np.ndarray, pos: np.ndarray, squeeze_targets: np.ndarray):
        m, d, spec = self.model, self.data, self.spec
        quat = d.qpos[self.ix.cube_qpos + 3: self.ix.cube_qpos + 7].copy()
        self._set(qpos, pos, quat)
        mujoco.mj_forward(m, d)
        for _ in range(int(spec.settle_s / m.opt.timestep)):
            d.ctrl[:] = self._impedance_torque(squeeze_targets)
            mujoco.mj_step(m, d)
        cube_pos = d.qpos[self.ix.cube_qpos: self.ix.cube_qpos + 3].copy()
        cube_quat = d.qpos[self.ix.cube_qpos + 3: self.ix.cube_qpos + 7].copy()
        tilt = 2 * math.acos(min(1.0, math.sqrt(cube_quat[0] ** 2 + cube_quat[3] ** 2)))
        held = (np.linalg.norm(cube_pos - pos) <= spec.max_drift_m and tilt <= spec.max_tilt_rad
                and np.isfinite(d.qpos).all() and np.linalg.norm(d.qvel[self.ix.cube_dof: self.ix.cube_dof + 3]) < 0.05)
        if not held:
            return None
        return d.qpos[: tp.NUM_JOINTS].copy(), cube_pos, np.roll(cube_quat, -1)  # wxyz -> xyzw


def make_grasps(count: int, seed: int = 0, spec: GraspSpec = GraspSpec(), max_tries: int | None = None) -> Grasps:
    """`count` held grasps (fewer if max_tries attempts do not yield them)."""
    maker, rng = _GraspMaker(spec), np.random.default_rng(seed)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(max_tries or 20 * count):
        if len(found) == count:
            break
        grasp = maker.make(rng)
        if grasp is not None:
            found.append(grasp)
    if not found:
        raise RuntimeError("no grasp held: check the grasp spec against the model")
    q, p, r = (np.stack(parts).astype(np.float32) for parts in zip(*found))
    return Grasps(q, p, r)


def holding_share(count: int, seed: int, duration_s: float, control_period_s: float) -> tuple[int, int]:
    """(held, made): of `count` fresh grasps, how many the impedance controller at control_period_s keeps up."""
    maker, rng = _GraspMaker(GraspSpec()), np.random.default_rng(seed)
    made = held = 0
    while made < count:
        if maker.make(rng) is not None:
            made += 1
            held += maker.hold(duration_s, control_period_s)
    return held, made


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the shipped cache of lifted-cube grasps.")
    parser.add_argument("--count", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=GRASPS_FILE)
    parser.add_argument("--check-hold", action="store_true",
                        help="instead: how many of --count fresh grasps a 50 Hz impedance controller holds for 2 s")
    args = parser.parse_args()
    if args.check_hold:
        held, made = holding_share(args.count, args.seed, duration_s=2.0, control_period_s=0.02)
        print(f"{held} of {made} grasps held for 2 s by the impedance controller at 50 Hz")
        return
    grasps = make_grasps(args.count, args.seed)
    grasps.save(args.out)
    print(f"{len(grasps)} grasps -> {args.out}")


if __name__ == "__main__":
    main()
