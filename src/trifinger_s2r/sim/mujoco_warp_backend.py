"""MuJoCo Warp backend: all envs in one batched Warp model on one device, state shared with torch without copies.

The same MJCF model as the CPU backend. Per-env physical parameters live in Warp model arrays with one row per
env (`put_model(batch_sizes=...)`); observations read torch views (`wp.to_torch`) of the Warp data arrays, so on a
GPU nothing crosses to the host inside a step. On CUDA the policy step (all substeps) is captured once as a CUDA
graph and replayed. Warp's CPU device runs the same code without a GPU (slowly; the parity tests use it).
"""

from __future__ import annotations

import contextlib

import mujoco
import numpy as np
import torch

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.backend import PhysicsParams, SimState
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.sim.model import SceneIndex, load_model
from trifinger_s2r.task.geometry import matrix_to_quat, quat_rotate
from trifinger_s2r.timing import Timing

HUGE_VELOCITY = 1e4
BATCHED_FIELDS = (
    "body_mass", "body_inertia", "geom_size", "geom_aabb", "geom_rbound", "pair_friction", "jnt_range",
    "actuator_ctrlrange", "actuator_forcerange", "actuator_biasprm", "actuator_dynprm", "dof_frictionloss",
    "dof_damping", "body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0",
)
"""Model fields that hold one row per env: everything `set_params` writes and what `set_const` derives from them
(bounds, subtree masses, inverse weights: the constraint solver's regularisation depends on the latter)."""
CONTACTS_PER_ENV = 64
"""Contact slots per env (about 14 are active when three fingers hold the cube)."""
CONSTRAINTS_PER_ENV = 256


def _wxyz_to_xyzw(quat: torch.Tensor) -> torch.Tensor:
    return quat[..., [1, 2, 3, 0]]


def warp_available() -> bool:
    try:
        import mujoco_warp  # noqa: F401
        import warp  # noqa: F401
    except ImportError:
        return False
    return True


class MujocoWarpBackend:
    """TriFinger + cube in MuJoCo Warp, batched over envs; implements `PhysicsBackend`."""

    def __init__(self, num_envs: int, timing: Timing | None = None, collision: str = "primitive",
                 device: str = "cuda:0", contact: ContactModel | None = None) -> None:
        import mujoco_warp as mjw
        import warp as wp

        if num_envs <= 0:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs}")
        self._wp, self._mjw = wp, mjw
        wp.config.quiet = True
        wp.init()
        self.num_envs = num_envs
        self.timing = timing or Timing()
        self.wp_device = wp.get_device(device)
        self.device = torch.device("cuda", self.wp_device.ordinal) if self.wp_device.is_cuda else torch.device("cpu")
        if contact is not None and contact.cone != "pyramidal":
            raise ValueError("friction_cone 'elliptic' is not supported on the warp backend: MuJoCo Warp's elliptic "
                             "cone ends 6-8 mm away from native MuJoCo's after 0.4 s of pushes (pyramidal: 0.01 mm); "
                             "use the mujoco backend")
        self.mj_model = load_model(collision, self.timing, contact=contact)
        # MJWarp has no auto-reset to disable (a diverged world keeps its non-finite state; the env resets it)
        self.mj_model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_AUTORESET)
        self.index = SceneIndex(self.mj_model)
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(self.mj_model, batch_sizes={name: num_envs for name in BATCHED_FIELDS})
            self.m.opt.gravity = wp.array(np.tile(self.mj_model.opt.gravity, (num_envs, 1)), dtype=wp.vec3)
            self.d = mjw.make_data(self.mj_model, nworld=num_envs, nconmax=CONTACTS_PER_ENV,
                                   njmax=CONSTRAINTS_PER_ENV)
            self._bind()
            home = torch.as_tensor(self.mj_model.key_qpos[self.index.home_key], dtype=torch.float32)
            self._qpos[:] = home.to(self.device)
        with self._warp_scope():
            mjw.forward(self.m, self.d)
        self._graph = None
        self._state_ids = tuple(torch.as_tensor(ids, device=self.device) for ids in (
            self.index.fingertip_sites, self.index.lower_link_bodies, self.index.finger_root_bodies,
            self.index.contact_sensor_adr))
        """Index tensors state() gathers with, made once (on a GPU each would be a host-to-device copy per step)."""

    @contextlib.contextmanager
    def _warp_scope(self):
        """Warp on this backend's device and, on CUDA, on torch's current stream: torch's writes (torques, resets,
        parameters) are ordered before Warp's kernels and Warp's results before torch's reads, without syncs."""
        wp = self._wp
        with wp.ScopedDevice(self.wp_device):
            if not self.wp_device.is_cuda:
                yield
                return
            with wp.ScopedStream(wp.stream_from_torch(torch.cuda.current_stream(self.device))):
                yield

    def _bind(self) -> None:
        view = self._wp.to_torch
        d, m = self.d, self.m
        self._qpos, self._qvel, self._ctrl, self._act = view(d.qpos), view(d.qvel), view(d.ctrl), view(d.act)
        self._actuator_force, self._sensordata = view(d.actuator_force), view(d.sensordata)
        self._site_xpos, self._site_xmat = view(d.site_xpos), view(d.site_xmat)
        self._cvel, self._subtree_com = view(d.cvel), view(d.subtree_com)
        self._fields = {name: view(getattr(m, name)) for name in BATCHED_FIELDS}
        self._gravity = view(m.opt.gravity)

    # --- PhysicsBackend -------------------------------------------------------------------------

    def reset(self, env_ids: torch.Tensor, joint_pos_rad: torch.Tensor, cube_pos_m: torch.Tensor,
              cube_quat_xyzw: torch.Tensor) -> None:
        if env_ids.numel() == 0:
            return
        ids = env_ids.to(self.device)
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        mask[ids] = True
        with self._warp_scope():
            self._mjw.reset_data(self.m, self.d, reset=self._wp.from_torch(mask))
            quat_wxyz = cube_quat_xyzw.to(self.device)[:, [3, 0, 1, 2]]
            self._qpos[ids] = torch.cat([joint_pos_rad.to(self.device), cube_pos_m.to(self.device), quat_wxyz], 1)
            self._qvel[ids] = 0.0
            self._ctrl[ids] = 0.0
            if self._act.numel():
                self._act[ids] = 0.0
            self._mjw.forward(self.m, self.d)

    def step(self, torque_nm: torch.Tensor) -> None:
        self._ctrl.copy_(torque_nm.to(self.device, torch.float32))
        wp = self._wp
        with self._warp_scope():
            if not self.wp_device.is_cuda:
                self._substeps()
                return
            if self._graph is None:
                with wp.ScopedCapture() as capture:
                    self._substeps()
                self._graph = capture.graph
            wp.capture_launch(self._graph)

    def _substeps(self) -> None:
        for _ in range(self.timing.substeps):
            self._mjw.step(self.m, self.d)
        # positions and velocities of the new state (site poses, com velocities), as the CPU backend's
        # mjSTAGE_VEL: step() leaves them at the start of the last substep
        self._mjw.fwd_position(self.m, self.d)
        self._mjw.fwd_velocity(self.m, self.d)

    def state(self) -> SimState:
        ix = self.index
        qpos, qvel = self._qpos, self._qvel
        cube_quat = _wxyz_to_xyzw(qpos[:, ix.cube_qpos + 3: ix.cube_qpos + 7])
        tips, links, roots, wrench_adr = self._state_ids
        tip_pos = self._site_xpos[:, tips]
        cvel = self._cvel[:, links]  # [angular, linear] at the finger's subtree com
        tip_angvel = cvel[..., :3]
        tip_linvel = cvel[..., 3:] + torch.cross(tip_angvel, tip_pos - self._subtree_com[:, roots], dim=-1)
        return SimState(
            joint_pos_rad=qpos[:, : tp.NUM_JOINTS].clone(),
            joint_vel_radps=qvel[:, : tp.NUM_JOINTS].clone(),
            applied_torque_nm=self._actuator_force.clone(),
            cube_pos_m=qpos[:, ix.cube_qpos: ix.cube_qpos + 3].clone(),
            cube_quat_xyzw=cube_quat.clone(),
            cube_linvel_mps=qvel[:, ix.cube_dof: ix.cube_dof + 3].clone(),
            cube_angvel_radps=quat_rotate(cube_quat, qvel[:, ix.cube_dof + 3: ix.cube_dof + 6]),
            fingertip_pos_m=tip_pos.clone(),
            fingertip_quat_xyzw=matrix_to_quat(self._site_xmat[:, tips]),
            fingertip_linvel_mps=tip_linvel,
            fingertip_angvel_radps=tip_angvel.clone(),
            fingertip_wrench=self._sensordata[:, wrench_adr].reshape(self.num_envs, 3, 6),
        )

    def set_params(self, env_ids: torch.Tensor, params: PhysicsParams) -> None:
        if env_ids.numel() == 0:
            return
        ids, ix, f = env_ids.to(self.device), self.index, self._fields
        p = {k: v.to(self.device, torch.float32) for k, v in vars(params).items()}
        f["body_mass"][ids, ix.cube_body] = p["cube_mass_kg"]
        f["body_inertia"][ids, ix.cube_body] = (p["cube_mass_kg"] * p["cube_edge_m"] ** 2 / 6)[:, None]
        f["geom_size"][ids, ix.cube_geom] = (p["cube_edge_m"] / 2)[:, None]
        for pairs, key in ((ix.finger_cube_pairs, "finger_cube_friction"), (ix.cube_table_pairs, "cube_table_friction"),
                           (ix.finger_table_pairs, "finger_table_friction")):
            rows, cols = ids[:, None], torch.as_tensor(pairs, device=self.device)[None, :]
            for k in (0, 1):  # both tangential directions
                f["pair_friction"][rows, cols, k] = p[key][:, None]
        self._gravity[ids] = p["gravity_mps2"]
        f["jnt_range"][ids, : tp.NUM_JOINTS, 0] = p["joint_lower_rad"]
        f["jnt_range"][ids, : tp.NUM_JOINTS, 1] = p["joint_upper_rad"]
        limits = torch.stack([-p["torque_limit_nm"], p["torque_limit_nm"]], dim=-1)
        f["actuator_ctrlrange"][ids] = limits
        f["actuator_forcerange"][ids] = limits
        f["actuator_biasprm"][ids, :, 2] = -p["safety_kd"]
        f["dof_frictionloss"][ids, : tp.NUM_JOINTS] = p["joint_friction_nm"]
        f["dof_damping"][ids, : tp.NUM_JOINTS] = p["joint_damping"]
        f["actuator_dynprm"][ids, :, 0] = p["action_lag_s"][:, None]
        with self._warp_scope():
            self._mjw.set_const(self.m, self.d)  # inertia-derived constants and the cube's bounds

    def nonfinite_envs(self) -> torch.Tensor:
        state = torch.cat([self._qpos, self._qvel], dim=1)
        return ~torch.isfinite(state).all(dim=1) | (self._qvel.abs() > HUGE_VELOCITY).any(dim=1)
