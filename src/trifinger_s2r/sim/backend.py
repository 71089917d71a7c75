"""The physics-backend seam: batched TriFinger + cube simulation behind one narrow interface.

Quaternions at this seam are (x, y, z, w), the convention of the robot software, PyBullet and the paper;
a backend converts from its simulator's own order in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import torch


@dataclass
class SimState:
    """Batched state after a policy step; every tensor has num_envs rows."""

    joint_pos_rad: torch.Tensor
    """(N, 9) joint positions in the robot's DOF order."""
    joint_vel_radps: torch.Tensor
    """(N, 9) joint velocities."""
    applied_torque_nm: torch.Tensor
    """(N, 9) torque the motors applied in the last physics step (after the safety pipeline)."""
    cube_pos_m: torch.Tensor
    """(N, 3) cube centre, world frame."""
    cube_quat_xyzw: torch.Tensor
    """(N, 4) cube orientation."""
    cube_linvel_mps: torch.Tensor
    """(N, 3) cube linear velocity, world frame."""
    cube_angvel_radps: torch.Tensor
    """(N, 3) cube angular velocity, world frame."""
    fingertip_pos_m: torch.Tensor
    """(N, 3, 3) fingertip positions (the URDF's finger_tip_link origins)."""
    fingertip_quat_xyzw: torch.Tensor
    """(N, 3, 4) fingertip orientations."""
    fingertip_linvel_mps: torch.Tensor
    """(N, 3, 3) fingertip linear velocities, world frame."""
    fingertip_angvel_radps: torch.Tensor
    """(N, 3, 3) fingertip angular velocities, world frame."""
    fingertip_wrench: torch.Tensor
    """(N, 3, 6) net contact force (N) and torque (N*m) of each finger's lower link on the cube, world frame."""

    def select(self, env_ids: torch.Tensor) -> SimState:
        """The rows of env_ids."""
        return SimState(**{f.name: getattr(self, f.name)[env_ids] for f in fields(self)})


@dataclass
class PhysicsParams:
    """Per-env physical parameters a backend applies; each tensor has one row per env it is set for."""

    cube_mass_kg: torch.Tensor
    """(N,) cube mass; the inertia follows mass and size."""
    cube_edge_m: torch.Tensor
    """(N,) cube edge length (collision size; keypoints keep the nominal cube)."""
    finger_cube_friction: torch.Tensor
    """(N,) sliding friction of finger-cube contacts."""
    cube_table_friction: torch.Tensor
    """(N,) sliding friction of the cube on the table."""
    finger_table_friction: torch.Tensor
    """(N,) sliding friction of the fingers on the table."""
    gravity_mps2: torch.Tensor
    """(N, 3) gravity vector."""
    joint_lower_rad: torch.Tensor
    """(N, 9) joint lower limits."""
    joint_upper_rad: torch.Tensor
    """(N, 9) joint upper limits."""
    torque_limit_nm: torch.Tensor
    """(N, 9) motor torque limit (both clips of the safety pipeline)."""
    safety_kd: torch.Tensor
    """(N, 9) safety damping gain (N*m*s/rad)."""
    joint_friction_nm: torch.Tensor
    """(N, 9) dry friction at each joint."""
    joint_damping: torch.Tensor
    """(N, 9) viscous damping at each joint (N*m*s/rad)."""
    action_lag_s: torch.Tensor
    """(N,) time constant of the first-order lag between commanded and motor torque (0: none)."""

    def select(self, env_ids: torch.Tensor) -> PhysicsParams:
        return PhysicsParams(**{f.name: getattr(self, f.name)[env_ids] for f in fields(self)})


class PhysicsBackend(Protocol):
    """N TriFinger + cube simulations stepped together at the policy rate."""

    num_envs: int
    device: torch.device

    def reset(
        self,
        env_ids: torch.Tensor,
        joint_pos_rad: torch.Tensor,
        cube_pos_m: torch.Tensor,
        cube_quat_xyzw: torch.Tensor,
    ) -> None:
        """Place the robot (at rest) and cube (at rest) of the listed envs; (n,), (n, 9), (n, 3), (n, 4)."""

    def step(self, torque_nm: torch.Tensor) -> None:
        """Hold the desired torques (N, 9) for one policy step; the safety pipeline applies per physics step."""

    def state(self) -> SimState:
        """The current batched state."""

    def set_params(self, env_ids: torch.Tensor, params: PhysicsParams) -> None:
        """Apply per-env physical parameters (rows of params match env_ids)."""

    def nonfinite_envs(self) -> torch.Tensor:
        """Bool (N,): envs whose state became non-finite or whose solver failed in the last step."""
