"""Actor observation (O-KP 75 / O-PQ 41 values) and privileged critic state, scaled to about [-1, 1].

The deployment runner builds its observation with `actor_observation` too, so training and robot see the
same numbers for the same state.
"""

from __future__ import annotations

import math

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task.geometry import keypoints, quat_conjugate, quat_mul, quat_to_matrix

OBS_CLIP = 5.0
"""Clamp of the scaled observation (the reference's clipObservations)."""
POSITION_LOW_M = (-0.3, -0.3, 0.0)
POSITION_HIGH_M = (0.3, 0.3, 0.3)
KEYPOINT_MARGIN_M = math.sqrt(2) * cube.EDGE_M
"""Keypoint bounds widen the position bounds by d = sqrt(2) * edge (leibnizgym's keypoint branch)."""

ACTOR_OBS_LAYOUT = {
    "keypoints": (("joint_pos", 9), ("joint_vel", 9), ("cube_keypoints", 24), ("goal_keypoints", 24), ("last_action", 9)),
    "keypoints_rel": (
        ("joint_pos", 9), ("joint_vel", 9), ("cube_keypoints", 24), ("goal_keypoints", 24),
        ("goal_from_cube_rotation_6d", 6), ("last_action", 9),
    ),
    "pq": (
        ("joint_pos", 9), ("joint_vel", 9), ("cube_position", 3), ("cube_quat_xyzw", 4),
        ("goal_position", 3), ("goal_quat_xyzw", 4), ("last_action", 9),
    ),
}
"""Named slices of the actor observation, in order."""
ACTOR_OBS_SIZE = {name: sum(size for _, size in layout) for name, layout in ACTOR_OBS_LAYOUT.items()}
PRIVILEGED_SIZE = 6 + 3 * 13 + 9 + 3 * 6
"""Cube velocities, fingertip states (pos, quat, lin vel, ang vel), applied torques, contact wrenches."""
CUBE_LINVEL_SCALE_MPS = 0.5
CUBE_ANGVEL_SCALE_RADPS = 5.0
TIP_VEL_SCALE_MPS = 1.0
TIP_ANGVEL_SCALE_RADPS = 10.0
WRENCH_SCALE = (5.0, 0.1)
"""Contact force (N) and torque (N*m) scales."""


def scale_to_unit(x: torch.Tensor, low, high) -> torch.Tensor:
    """2 (x - mid) / (high - low): maps [low, high] to [-1, 1]."""
    low_t = torch.as_tensor(low, dtype=x.dtype, device=x.device)
    high_t = torch.as_tensor(high, dtype=x.dtype, device=x.device)
    return 2.0 * (x - 0.5 * (low_t + high_t)) / (high_t - low_t)


def _scaled_keypoints(kp_m: torch.Tensor) -> torch.Tensor:
    d = KEYPOINT_MARGIN_M
    low = (POSITION_LOW_M[0] - d, POSITION_LOW_M[1] - d, 0.0)
    high = (POSITION_HIGH_M[0] + d, POSITION_HIGH_M[1] + d, POSITION_HIGH_M[2] + d)
    return scale_to_unit(kp_m, low, high).flatten(1)  # (N, 8*3)


def relative_rotation_6d(cube_quat: torch.Tensor, goal_quat: torch.Tensor) -> torch.Tensor:
    """(N, 6) the rotation from the cube's orientation to the goal's (goal * cube^-1, world frame) as the first two
    columns of its matrix: continuous, unlike a quaternion or an angle-axis (Zhou et al. 2019)."""
    matrix = quat_to_matrix(quat_mul(goal_quat, quat_conjugate(cube_quat)))
    return matrix[..., :, :2].transpose(-1, -2).reshape(-1, 6)


def _cube_part(obs_type: str, pos_m: torch.Tensor, quat: torch.Tensor, kp_m: torch.Tensor | None) -> torch.Tensor:
    if obs_type in ("keypoints", "keypoints_rel"):
        return _scaled_keypoints(keypoints(pos_m, quat) if kp_m is None else kp_m)
    return torch.cat([scale_to_unit(pos_m, POSITION_LOW_M, POSITION_HIGH_M), quat], dim=-1)  # (N, 3 + 4)


def actor_observation(
    obs_type: str,
    joint_pos_rad: torch.Tensor,
    joint_vel_radps: torch.Tensor,
    cube_pos_m: torch.Tensor,
    cube_quat: torch.Tensor,
    goal_pos_m: torch.Tensor,
    goal_quat: torch.Tensor,
    last_action: torch.Tensor,
    cube_kp_m: torch.Tensor | None = None,
    goal_kp_m: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled actor observation before noise: q | qdot | cube | goal | last action.

    Keypoints of the cube and goal poses may be passed in when the caller has them already; 'keypoints_rel' adds
    the rotation from cube to goal before the last action."""
    relative = [relative_rotation_6d(cube_quat, goal_quat)] if obs_type == "keypoints_rel" else []
    return torch.cat(
        [
            scale_to_unit(joint_pos_rad, tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD), tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD)),
            joint_vel_radps / tp.MAX_VELOCITY_RADPS,
            _cube_part(obs_type, cube_pos_m, cube_quat, cube_kp_m),
            _cube_part(obs_type, goal_pos_m, goal_quat, goal_kp_m),
            *relative,
            last_action,
        ],
        dim=-1,
    )


def privileged_state(
    cube_linvel_mps: torch.Tensor,
    cube_angvel_radps: torch.Tensor,
    fingertip_pos_m: torch.Tensor,
    fingertip_quat: torch.Tensor,
    fingertip_linvel_mps: torch.Tensor,
    fingertip_angvel_radps: torch.Tensor,
    applied_torque_nm: torch.Tensor,
    fingertip_wrench: torch.Tensor,
    torque_limit_nm: float,
) -> torch.Tensor:
    """(N, 72) scaled quantities a real robot does not observe but the critic may use."""
    n = cube_linvel_mps.shape[0]
    tips = torch.cat(
        [
            scale_to_unit(fingertip_pos_m, (-0.4, -0.4, 0.0), (0.4, 0.4, 0.5)),
            fingertip_quat,
            fingertip_linvel_mps / TIP_VEL_SCALE_MPS,
            fingertip_angvel_radps / TIP_ANGVEL_SCALE_RADPS,
        ],
        dim=-1,
    ).reshape(n, -1)  # (N, 3*13)
    wrench = torch.cat([fingertip_wrench[..., :3] / WRENCH_SCALE[0], fingertip_wrench[..., 3:] / WRENCH_SCALE[1]], -1)
    return torch.cat(
        [
            cube_linvel_mps / CUBE_LINVEL_SCALE_MPS,
            cube_angvel_radps / CUBE_ANGVEL_SCALE_RADPS,
            tips,
            applied_torque_nm / torque_limit_nm,
            wrench.reshape(n, -1),  # (N, 3*6)
        ],
        dim=-1,
    )


def add_noise_and_clip(obs: torch.Tensor, noise_std: float, generator: torch.Generator | None) -> torch.Tensor:
    """Add fresh Gaussian noise (normalised units) and clamp to +-OBS_CLIP."""
    if noise_std > 0:
        obs = obs + noise_std * torch.randn(obs.shape, generator=generator, device=obs.device)
    return obs.clamp(-OBS_CLIP, OBS_CLIP)
