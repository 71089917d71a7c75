"""Native MuJoCo CPU backend: N simulations in one `mujoco.batch.Batch`, stepped on a C++ thread pool."""

from __future__ import annotations

import os

import mujoco
import mujoco.batch
import numpy as np
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.objects import bounding_radius_m, inertia_kgm2, variant
from trifinger_s2r.sim.backend import PhysicsParams, SimState
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.sim.model import SceneIndex, load_model
from trifinger_s2r.timing import Timing

HUGE_VELOCITY = 1e4
"""A joint or cube speed above this (rad/s, m/s) counts as a diverged simulation."""


def _wxyz_to_xyzw(quat: np.ndarray) -> np.ndarray:
    return quat[..., [1, 2, 3, 0]]


def _rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by unit quaternions (..., 4) in MuJoCo's (w, x, y, z) order."""
    w, xyz = quat_wxyz[..., :1], quat_wxyz[..., 1:]
    t = 2.0 * np.cross(xyz, vec)
    return vec + w * t + np.cross(xyz, t)


class MujocoCpuBackend:
    """TriFinger + cube in native MuJoCo, batched over envs; implements `PhysicsBackend`."""

    def __init__(
        self,
        num_envs: int,
        timing: Timing | None = None,
        collision: str = "primitive",
        num_threads: int = 0,
        obj: str = "cube",
        contact: ContactModel | None = None,
    ) -> None:
        """obj: the object in place of the cube (robot.objects.VARIANTS); `set_params` scales its size by
        cube_edge_m / 0.065 m and its mass by cube_mass_kg / 0.094 kg, so the cube's randomisation carries over."""
        if num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs}")
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.timing = timing or Timing()
        self.object = variant(obj)
        self.model = load_model(collision, self.timing, obj, contact)
        self.index = SceneIndex(self.model)
        threads = num_threads or os.cpu_count() or 1
        self.batch = mujoco.batch.Batch(self.model, num_envs, nthread=threads, persistent=True)
        self.batch.reset(keyframe=self.index.home_key)
        self._bind()

    def _bind(self) -> None:
        b = self.batch
        self._qpos = b.bind("qpos")
        self._qvel = b.bind("qvel")
        self._ctrl = b.bind("ctrl")
        self._actuator_force = b.bind("actuator_force")
        self._sensordata = b.bind("sensordata")
        self._site_xpos = b.bind("site_xpos")
        self._site_xquat = b.bind("site_xquat")
        self._cvel = b.bind("cvel")
        self._subtree_com = b.bind("subtree_com")

    # --- PhysicsBackend -------------------------------------------------------------------------

    def reset(
        self,
        env_ids: torch.Tensor,
        joint_pos_rad: torch.Tensor,
        cube_pos_m: torch.Tensor,
        cube_quat_xyzw: torch.Tensor,
    ) -> None:
        ids = np.asarray(env_ids.cpu(), dtype=np.int64)
        if ids.size == 0:
            return
        self.batch.reset(ids, keyframe=self.index.home_key, stage=mujoco.mjtStage.mjSTAGE_NONE)
        quat = cube_quat_xyzw.cpu().double().numpy()
        qpos = np.concatenate(
            [joint_pos_rad.cpu().double().numpy(), cube_pos_m.cpu().double().numpy(), quat[:, [3, 0, 1, 2]]], axis=1
        )
        self._qpos[ids] = qpos
        self._qvel[ids] = 0.0
        self._ctrl[ids] = 0.0
        self.batch.forward(ids)

    def step(self, torque_nm: torch.Tensor) -> None:
        self._ctrl[:] = torque_nm.detach().cpu().double().numpy()
        self.batch.step(nstep=self.timing.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def state(self) -> SimState:
        ix = self.index
        qpos, qvel = self._qpos, self._qvel
        cube_quat_wxyz = qpos[:, ix.cube_qpos + 3 : ix.cube_qpos + 7]
        cube_angvel_local = qvel[:, ix.cube_dof + 3 : ix.cube_dof + 6]
        tip_pos = self._site_xpos[:, ix.fingertip_sites]
        tip_quat_wxyz = self._site_xquat[:, ix.fingertip_sites]
        cvel = self._cvel[:, ix.lower_link_bodies]  # (N, 3, 6): [angular, linear] at the finger's subtree com
        lever = tip_pos - self._subtree_com[:, ix.finger_root_bodies]
        tip_angvel = cvel[..., :3]
        tip_linvel = cvel[..., 3:] + np.cross(tip_angvel, lever)
        arrays = dict(
            joint_pos_rad=qpos[:, : tp.NUM_JOINTS],
            joint_vel_radps=qvel[:, : tp.NUM_JOINTS],
            applied_torque_nm=self._actuator_force,
            cube_pos_m=qpos[:, ix.cube_qpos : ix.cube_qpos + 3],
            cube_quat_xyzw=_wxyz_to_xyzw(cube_quat_wxyz),
            cube_linvel_mps=qvel[:, ix.cube_dof : ix.cube_dof + 3],
            cube_angvel_radps=_rotate(cube_quat_wxyz, cube_angvel_local),
            fingertip_pos_m=tip_pos,
            fingertip_quat_xyzw=_wxyz_to_xyzw(tip_quat_wxyz),
            fingertip_linvel_mps=tip_linvel,
            fingertip_angvel_radps=tip_angvel,
            fingertip_wrench=self._sensordata[:, ix.contact_sensor_adr].reshape(self.num_envs, 3, 6),
        )
        return SimState(**{k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()})

    def set_params(self, env_ids: torch.Tensor, params: PhysicsParams) -> None:
        ids = np.asarray(env_ids.cpu(), dtype=np.int64)
        if ids.size == 0:
            return
        p = {k: np.asarray(v.detach().cpu(), dtype=np.float64) for k, v in vars(params).items()}
        ix, b = self.index, self.batch
        obj = self.object
        half = (p["cube_edge_m"] / 2)[:, None] * (np.asarray(obj.half_size_m) / cube.HALF_EDGE_M)  # (n, 3)
        mass = p["cube_mass_kg"] * (obj.mass_kg / cube.MASS_KG)
        b.expand("body_mass")[ids, ix.cube_body] = mass
        b.expand("body_inertia")[ids, ix.cube_body] = inertia_kgm2(obj.shape, mass, half)
        b.expand("geom_size")[ids, ix.cube_geom] = half
        b.expand("geom_aabb")[ids, ix.cube_geom, 3:] = half
        b.expand("geom_rbound")[ids, ix.cube_geom] = bounding_radius_m(obj.shape, half)
        friction = b.expand("pair_friction")
        for pairs, key in (
            (ix.finger_cube_pairs, "finger_cube_friction"),
            (ix.cube_table_pairs, "cube_table_friction"),
            (ix.finger_table_pairs, "finger_table_friction"),
        ):
            friction[np.ix_(ids, pairs, [0, 1])] = p[key][:, None, None]
        b.expand("opt.gravity")[ids] = p["gravity_mps2"]
        joint_range = b.expand("jnt_range")
        joint_range[ids, : tp.NUM_JOINTS, 0] = p["joint_lower_rad"]
        joint_range[ids, : tp.NUM_JOINTS, 1] = p["joint_upper_rad"]
        limits = np.stack([-p["torque_limit_nm"], p["torque_limit_nm"]], axis=-1)
        b.expand("actuator_ctrlrange")[ids] = limits
        b.expand("actuator_forcerange")[ids] = limits
        b.expand("actuator_biasprm")[ids, :, 2] = -p["safety_kd"]
        b.expand("dof_frictionloss")[ids, : tp.NUM_JOINTS] = p["joint_friction_nm"]
        b.expand("dof_damping")[ids, : tp.NUM_JOINTS] = p["joint_damping"]
        b.expand("actuator_dynprm")[ids, :, 0] = p["action_lag_s"][:, None]
        b.set_const(ids)

    def nonfinite_envs(self) -> torch.Tensor:
        state = np.concatenate([self._qpos, self._qvel], axis=1)
        bad = ~np.isfinite(state).all(axis=1) | (np.abs(self._qvel) > HUGE_VELOCITY).any(axis=1)
        return torch.from_numpy(bad)
