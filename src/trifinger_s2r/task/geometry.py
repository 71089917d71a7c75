"""Quaternion and keypoint maths on batched tensors; quaternions are (x, y, z, w)."""

from __future__ import annotations

import functools
import math

import torch

from trifinger_s2r.robot import cube


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of (..., 4) quaternions."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        dim=-1,
    )


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([-q[..., :3], q[..., 3:]], dim=-1)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    xyz, w = q[..., :3], q[..., 3:]
    t = 2.0 * torch.cross(xyz, v, dim=-1)
    return v + w * t + torch.cross(xyz, t, dim=-1)


def quat_from_axis_angle(axis: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    """Quaternions for rotations by angle_rad (...,) about unit axes (..., 3)."""
    half = 0.5 * angle_rad.unsqueeze(-1)
    return torch.cat([axis * torch.sin(half), torch.cos(half)], dim=-1)


def quat_from_yaw(yaw_rad: torch.Tensor) -> torch.Tensor:
    axis = torch.zeros(*yaw_rad.shape, 3, dtype=yaw_rad.dtype, device=yaw_rad.device)
    axis[..., 2] = 1.0
    return quat_from_axis_angle(axis, yaw_rad)


def random_quat(n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """n quaternions uniform on SO(3): normalised 4-D Gaussians."""
    q = torch.randn(n, 4, generator=generator, device=device)
    return q / q.norm(dim=-1, keepdim=True)


def rotation_angle_between(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Angle (rad, in [0, pi]) of the rotation taking q2 to q1: 2 asin(|vec(q1 q2*)|)."""
    diff = quat_mul(q1, quat_conjugate(q2))
    return 2.0 * torch.asin(diff[..., :3].norm(dim=-1).clamp(max=1.0))


def continuous_sign(q: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """q or -q, whichever is nearer reference: keeps a quaternion stream free of sign flips."""
    flip = (q * reference).sum(dim=-1, keepdim=True) < 0
    return torch.where(flip, -q, q)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices of unit quaternions (..., 4)."""
    x, y, z, w = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


@functools.lru_cache(maxsize=16)
def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4) xyzw of rotation matrices (..., 3, 3), w >= 0 (Shepperd's branch-free form)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    w = 0.5 * torch.sqrt((1 + m00 + m11 + m22).clamp(min=0))
    x = 0.5 * torch.sqrt((1 + m00 - m11 - m22).clamp(min=0)).copysign(m[..., 2, 1] - m[..., 1, 2])
    y = 0.5 * torch.sqrt((1 - m00 + m11 - m22).clamp(min=0)).copysign(m[..., 0, 2] - m[..., 2, 0])
    z = 0.5 * torch.sqrt((1 - m00 - m11 + m22).clamp(min=0)).copysign(m[..., 1, 0] - m[..., 0, 1])
    q = torch.stack([x, y, z, w], dim=-1)
    return q / q.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _offsets(edge_m: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(cube.corner_signs(), dtype=dtype, device=device) * (edge_m / 2)


def keypoint_offsets(edge_m: float = cube.EDGE_M) -> torch.Tensor:
    """(8, 3) corner offsets in the cube frame, in the reference's order (corner i is -1 on axis k if bit k of i)."""
    return _offsets(edge_m, torch.device("cpu"), torch.float32).clone()


def keypoints(pos_m: torch.Tensor, quat: torch.Tensor, edge_m: float = cube.EDGE_M) -> torch.Tensor:
    """(N, 8, 3) world positions of the 8 corners of a cube of edge edge_m at poses (N, 3), (N, 4)."""
    offsets = _offsets(edge_m, pos_m.device, pos_m.dtype)
    return pos_m.unsqueeze(1) + offsets @ quat_to_matrix(quat).transpose(-1, -2)


def sample_disc_xy(n: int, radius_m: float, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 2) points uniform in a disc: r = R sqrt(U), theta = 2 pi U."""
    r = radius_m * torch.sqrt(torch.rand(n, generator=generator, device=device))
    theta = 2 * math.pi * torch.rand(n, generator=generator, device=device)
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)
