"""Named reward terms over batched tensors, and their weighted sum (task-spec section 3)."""

from __future__ import annotations

import torch

from trifinger_s2r.task.config import RewardWeights
from trifinger_s2r.task.geometry import rotation_angle_between


def lgsk(x: torch.Tensor, scale: float, eps: float) -> torch.Tensor:
    """Logistic kernel 1 / (e^{a x} + b + e^{-a x}); lgsk(0) = 1 / (2 + b)."""
    return 1.0 / (torch.exp(scale * x) + eps + torch.exp(-scale * x))


def finger_movement(tip_pos_m: torch.Tensor, prev_tip_pos_m: torch.Tensor, dt_s: float) -> torch.Tensor:
    """(N,) sum over the 3 fingertips of squared speed (m^2/s^2)."""
    return (((tip_pos_m - prev_tip_pos_m) / dt_s) ** 2).sum(dim=(-1, -2))


def finger_reach(
    tip_pos_m: torch.Tensor, prev_tip_pos_m: torch.Tensor, cube_pos_m: torch.Tensor, prev_cube_pos_m: torch.Tensor
) -> torch.Tensor:
    """(N,) change of the summed fingertip-to-cube distances (m); negative when the fingers approach."""
    now = (tip_pos_m - cube_pos_m.unsqueeze(1)).norm(dim=-1).sum(-1)
    before = (prev_tip_pos_m - prev_cube_pos_m.unsqueeze(1)).norm(dim=-1).sum(-1)
    return now - before


def keypoint_pose(cube_kp_m: torch.Tensor, goal_kp_m: torch.Tensor, dt_s: float) -> torch.Tensor:
    """(N,) R-KP: dt * mean over corners of lgsk(|kp - goal kp|; 30, 2)."""
    return dt_s * lgsk((cube_kp_m - goal_kp_m).norm(dim=-1), 30.0, 2.0).mean(-1)


def scaled_keypoints(kp_m: torch.Tensor, centre_m: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, 8, 3) keypoints moved away from their centre (N, 3) by a factor: rotations move them scale times as far,
    translations as far as before."""
    if scale == 1.0:
        return kp_m
    centre = centre_m.unsqueeze(1)
    return centre + scale * (kp_m - centre)


def object_position(cube_pos_m: torch.Tensor, goal_pos_m: torch.Tensor, dt_s: float) -> torch.Tensor:
    """(N,) R-PQ position part: dt * lgsk(|p - goal|; 50, 2)."""
    return dt_s * lgsk((cube_pos_m - goal_pos_m).norm(dim=-1), 50.0, 2.0)


def object_orientation(cube_quat: torch.Tensor, goal_quat: torch.Tensor, dt_s: float, epsilon: float) -> torch.Tensor:
    """(N,) R-PQ rotation part: dt / (3 theta + epsilon)."""
    return dt_s / (3.0 * rotation_angle_between(cube_quat, goal_quat) + epsilon)


def cube_turning(cube_angvel_radps: torch.Tensor, dt_s: float) -> torch.Tensor:
    """(N,) dt * the cube's angular speed (rad/s)."""
    return dt_s * cube_angvel_radps.norm(dim=-1)


def compute_rewards(
    reward_type: str,
    weights: RewardWeights,
    dt_s: float,
    total_env_steps: int,
    tip_pos_m: torch.Tensor,
    prev_tip_pos_m: torch.Tensor,
    cube_pos_m: torch.Tensor,
    prev_cube_pos_m: torch.Tensor,
    cube_quat: torch.Tensor,
    goal_pos_m: torch.Tensor,
    goal_quat: torch.Tensor,
    cube_kp_m: torch.Tensor,
    goal_kp_m: torch.Tensor,
    cube_angvel_radps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total reward (N,) and the weighted terms by name; orientation terms get the goal the level judges."""
    reach_weight = weights.finger_reach if total_env_steps <= weights.finger_reach_until_env_steps else 0.0
    terms = {
        "finger_movement": weights.finger_movement * finger_movement(tip_pos_m, prev_tip_pos_m, dt_s),
        "finger_reach": reach_weight * finger_reach(tip_pos_m, prev_tip_pos_m, cube_pos_m, prev_cube_pos_m),
    }
    if reward_type == "keypoints":
        cube_kp = scaled_keypoints(cube_kp_m, cube_pos_m, weights.keypoint_scale)
        goal_kp = scaled_keypoints(goal_kp_m, goal_pos_m, weights.keypoint_scale)
        terms["keypoint_pose"] = weights.keypoint_pose * keypoint_pose(cube_kp, goal_kp, dt_s)
    else:
        terms["object_position"] = weights.object_position * object_position(cube_pos_m, goal_pos_m, dt_s)
        terms["object_orientation"] = weights.object_orientation * object_orientation(
            cube_quat, goal_quat, dt_s, weights.orientation_epsilon
        )
    if weights.cube_turning != 0.0:
        if cube_angvel_radps is None:
            raise ValueError("rewards.cube_turning needs the cube's angular velocity")
        terms["cube_turning"] = weights.cube_turning * cube_turning(cube_angvel_radps, dt_s)
    return torch.stack(list(terms.values())).sum(0), terms
