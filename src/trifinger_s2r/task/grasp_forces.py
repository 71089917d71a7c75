"""Contact forces that hold the cube and move it towards a pose: an object-level wrench controller.

A held cube is moved by choosing the force each fingertip presses on it, not by where the tips go: a PD law on the
cube's pose gives the wrench the cube needs (plus its weight), the grasp matrix spreads that wrench over the three
contacts by least squares, and an internal squeeze (opposing forces along the face normals, in the grasp matrix's
null space) keeps every contact inside its friction cone. The squeeze is the smallest of a few levels that meets
the cone; where no level also keeps every motor within its torque limit, the PD part is scaled down (bisection)
until one does, so the weight is always carried. Torques are then J^T f plus gravity compensation
(task.expert). Measured against moving the tips rigidly with the cube (the earlier carry), in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task.geometry import quat_conjugate, quat_mul, quat_rotate

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class HoldGains:
    """The held cube's pose controller and the force distribution's limits."""

    position_npm: float = 60.0
    position_damping_nspm: float = 4.0
    rotation_nmprad: float = 0.1
    rotation_damping_nmsprad: float = 0.008
    max_position_error_m: float = 0.03
    """The position error the PD law sees is capped at this (a bounded pull towards far goals)."""
    max_rotation_error_rad: float = 0.6
    friction_margin: float = 0.5
    """Tangential force at most this times the normal force (the finger-cube friction is 1.0 x U(0.7, 1.3))."""
    min_normal_force_n: float = 0.05
    squeeze_levels_n: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    fallback_squeeze_n: float = 1.0
    """Squeeze used where no level meets the limits (the motors then clip)."""
    torque_margin: float = 0.95
    """Share of each motor's torque limit the contact forces and gravity compensation may use."""
    bisection_steps: int = 6

    def __post_init__(self) -> None:
        object.__setattr__(self, "squeeze_levels_n", tuple(self.squeeze_levels_n))
        for name in ("position_npm", "rotation_nmprad", "max_position_error_m", "max_rotation_error_rad",
                     "friction_margin", "torque_margin"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expert.hold.{name} must be positive, got {getattr(self, name)}")
        if not self.squeeze_levels_n or min(self.squeeze_levels_n) <= 0:
            raise ValueError(f"expert.hold.squeeze_levels_n must be positive forces, got {self.squeeze_levels_n}")


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) cross-product matrices of vectors (..., 3)."""
    zero = torch.zeros_like(v[..., 0])
    rows = [zero, -v[..., 2], v[..., 1], v[..., 2], zero, -v[..., 0], -v[..., 1], v[..., 0], zero]
    return torch.stack(rows, dim=-1).reshape(*v.shape[:-1], 3, 3)


def clamp_norm(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Vectors (..., 3) shortened to at most max_norm."""
    norm = v.norm(dim=-1, keepdim=True)
    return v * torch.clamp(max_norm / norm.clamp(min=1e-9), max=1.0)


def rotation_vector(quat: torch.Tensor) -> torch.Tensor:
    """(N, 3) axis * angle of unit quaternions (N, 4), the angle in [0, pi]."""
    quat = torch.where(quat[:, 3:] < 0, -quat, quat)
    sin_half = quat[:, :3].norm(dim=-1)
    angle = 2.0 * torch.atan2(sin_half, quat[:, 3])
    return quat[:, :3] / sin_half.clamp(min=1e-9)[:, None] * angle[:, None]


def surface_points(points_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                   half_edge_m: float = cube.HALF_EDGE_M) -> torch.Tensor:
    """(N, K, 3) the cube's points nearest to K points (N, K, 3) outside it: where the fingertips touch."""
    n, k = points_m.shape[:2]
    quats = cube_quat[:, None].expand(n, k, 4).reshape(-1, 4)
    local = quat_rotate(quat_conjugate(quats), (points_m - cube_pos_m[:, None]).reshape(-1, 3))
    on_cube = quat_rotate(quats, local.clamp(-half_edge_m, half_edge_m))
    return cube_pos_m[:, None] + on_cube.reshape(n, k, 3)


def cube_wrench(gains: HoldGains, cube_pos_m, cube_quat, cube_linvel_mps, cube_angvel_radps, target_pos_m,
                target_quat) -> torch.Tensor:
    """(N, 6) force (N) and torque (N*m) about the centre that pull the cube towards the target pose."""
    position_error = clamp_norm(target_pos_m - cube_pos_m, gains.max_position_error_m)
    force = gains.position_npm * position_error - gains.position_damping_nspm * cube_linvel_mps
    rotation_error = clamp_norm(rotation_vector(quat_mul(target_quat, quat_conjugate(cube_quat))),
                                gains.max_rotation_error_rad)
    torque = gains.rotation_nmprad * rotation_error - gains.rotation_damping_nmsprad * cube_angvel_radps
    return torch.cat([force, torque], dim=-1)


def _grasp_pseudo_inverse(contacts_m: torch.Tensor, cube_pos_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The grasp matrix G (N, 6, 9) of three point contacts, and its pseudo-inverse (N, 9, 6)."""
    n = contacts_m.shape[0]
    arms = contacts_m - cube_pos_m[:, None]
    identity = torch.eye(3, dtype=arms.dtype, device=arms.device).expand(n, 3, 3, 3)
    grasp = torch.cat([torch.cat(identity.unbind(1), dim=-1), torch.cat(_skew(arms).unbind(1), dim=-1)], dim=1)
    regulariser = 1e-8 * torch.eye(6, dtype=arms.dtype, device=arms.device)
    return grasp, grasp.transpose(1, 2) @ torch.linalg.inv(grasp @ grasp.transpose(1, 2) + regulariser)


def hold_forces(gains: HoldGains, tips_m: torch.Tensor, normals: torch.Tensor, wrench: torch.Tensor,
                cube_mass_kg: torch.Tensor, jacobians: torch.Tensor, gravity_torque_nm: torch.Tensor,
                torque_limit_nm: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) the force each fingertip should press on the cube: the cube's weight and as much of `wrench` (N, 6)
    as the friction cones (contact outward `normals` (N, 3, 3)) and the motors' torque limits (N, 9) allow."""
    n = tips_m.shape[0]
    grasp, pinv = _grasp_pseudo_inverse(surface_points(tips_m, cube_pos_m, cube_quat), cube_pos_m)
    weight = torch.zeros_like(wrench)
    weight[:, 2] = cube_mass_kg * GRAVITY_MPS2
    sharing = ((normals[:, :, None] * normals[:, None]).sum(-1) > 0.9).sum(dim=-1, keepdim=True)
    squeeze = (-normals / sharing).reshape(n, 9)
    null_squeeze = squeeze - (pinv @ (grasp @ squeeze[..., None])).squeeze(-1)
    carry = (pinv @ weight[..., None]).squeeze(-1)
    pull = (pinv @ wrench[..., None]).squeeze(-1)

    def feasible(scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which envs meet every limit at this share of the PD wrench, and their forces (smallest squeeze)."""
        forces, found = None, torch.zeros(n, dtype=torch.bool, device=tips_m.device)
        for level in gains.squeeze_levels_n:
            f = (carry + scale[:, None] * pull + level * null_squeeze).reshape(n, 3, 3)
            normal = -(f * normals).sum(-1)
            tangential = (f + normal[..., None] * normals).norm(dim=-1)
            torque = (jacobians.transpose(-1, -2) @ f[..., None]).squeeze(-1).reshape(n, -1) + gravity_torque_nm
            ok = ((normal > gains.min_normal_force_n) & (tangential <= gains.friction_margin * normal)).all(-1)
            ok &= (torque.abs() <= gains.torque_margin * torque_limit_nm).all(-1)
            forces = f if forces is None else torch.where((ok & ~found)[:, None, None], f, forces)
            found |= ok
        return found, forces

    low, high = torch.zeros(n, device=tips_m.device), torch.ones(n, device=tips_m.device)
    full_ok, full = feasible(high)
    none_ok, none = feasible(low)
    best = torch.where(full_ok[:, None, None], full, none)
    searching = ~full_ok & none_ok
    for _ in range(gains.bisection_steps):
        middle = 0.5 * (low + high)
        ok, forces = feasible(middle)
        best = torch.where((searching & ok)[:, None, None], forces, best)
        low, high = torch.where(searching & ok, middle, low), torch.where(searching & ~ok, middle, high)
    fallback = (carry + pull + gains.fallback_squeeze_n * null_squeeze).reshape(n, 3, 3)
    return torch.where((full_ok | none_ok)[:, None, None], best, fallback)
