"""Batched kinematics of the TriFinger Pro in torch: fingertip positions, fingertip Jacobians, gravity torques.

A finger is a 3-joint chain hanging from the holder (robot_properties_fingers' URDF, as in our MJCF): the upper
link turns about its y axis, the middle and lower links about their x axes. The three fingers are the same chain
turned about the vertical by 0, -120 and +120 degrees. tests/task/test_finger_kinematics.py checks every number
here against MuJoCo's own kinematics of the robot model.
"""

from __future__ import annotations

import math

import torch

from trifinger_s2r.robot import trifinger_pro as tp

FINGER_YAW_RAD = (0.0, -2.0 * math.pi / 3.0, 2.0 * math.pi / 3.0)
"""Each finger's base turned about the world z axis, in DOF order (fingers 0, 120, 240)."""
UPPER_ORIGIN_M = (0.0, 0.0, tp.HOLDER_Z_M)
MIDDLE_IN_UPPER_M = (0.0168, 0.0505, 0.0)
LOWER_IN_MIDDLE_M = (0.0502, 0.0, -0.16)
LINK_MASS_KG = (0.2669, 0.2716, 0.0649)
"""Upper, middle and lower link masses."""
LINK_COM_M = ((0.006, 0.122, 0.0), (0.0394, -0.0001, -0.0867), (0.0167, 0.0, -0.0572))
"""Each link's centre of mass in its own frame."""
GRAVITY_MPS2 = 9.81


def _rot_x(angle: torch.Tensor) -> torch.Tensor:
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([o, z, z, z, c, -s, z, s, c], dim=-1).reshape(*angle.shape, 3, 3)


def _rot_y(angle: torch.Tensor) -> torch.Tensor:
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, z, s, z, o, z, -s, z, c], dim=-1).reshape(*angle.shape, 3, 3)


def _base_rotations(like: torch.Tensor) -> torch.Tensor:
    """(3, 3, 3) each finger's base rotation about z."""
    yaw = torch.tensor(FINGER_YAW_RAD, dtype=like.dtype, device=like.device)
    c, s, o, z = yaw.cos(), yaw.sin(), torch.ones_like(yaw), torch.zeros_like(yaw)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=-1).reshape(3, 3, 3)


def _vec(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def link_frames(joint_pos_rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (N, 3 fingers, 3 links, 3, 3) and origins (N, 3, 3, 3) of the upper, middle, lower links."""
    q = joint_pos_rad.reshape(-1, 3, 3)
    base = _base_rotations(q)
    r_upper = base @ _rot_y(q[..., 0])
    r_middle = r_upper @ _rot_x(q[..., 1])
    r_lower = r_middle @ _rot_x(q[..., 2])
    p_upper = _vec(UPPER_ORIGIN_M, q).expand(q.shape[0], 3, 3)
    p_middle = p_upper + r_upper @ _vec(MIDDLE_IN_UPPER_M, q)
    p_lower = p_middle + r_middle @ _vec(LOWER_IN_MIDDLE_M, q)
    return torch.stack([r_upper, r_middle, r_lower], dim=2), torch.stack([p_upper, p_middle, p_lower], dim=2)


def _joint_axes(rotations: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3 joints, 3) world axes: the upper joint's local y, the others' local x."""
    return torch.stack([rotations[:, :, 0, :, 1], rotations[:, :, 1, :, 0], rotations[:, :, 2, :, 0]], dim=2)


def fingertip_positions(joint_pos_rad: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) fingertip positions (the finger_tip_link origins), world frame."""
    rotations, origins = link_frames(joint_pos_rad)
    return origins[:, :, 2] + rotations[:, :, 2] @ _vec(tp.FINGERTIP_OFFSET_M, joint_pos_rad)


def fingertip_jacobians(joint_pos_rad: torch.Tensor) -> torch.Tensor:
    """(N, 3 fingers, 3 xyz, 3 joints): d tip / d q of each finger's own joints."""
    rotations, origins = link_frames(joint_pos_rad)
    tips = origins[:, :, 2] + rotations[:, :, 2] @ _vec(tp.FINGERTIP_OFFSET_M, joint_pos_rad)
    axes = _joint_axes(rotations)
    columns = torch.cross(axes, tips[:, :, None, :] - origins, dim=-1)  # (N, 3, 3 joints, 3)
    return columns.transpose(-1, -2)


def gravity_torques(joint_pos_rad: torch.Tensor) -> torch.Tensor:
    """(N, 9) joint torques (N*m) that hold the fingers still against gravity."""
    rotations, origins = link_frames(joint_pos_rad)
    com = origins + (rotations @ _vec(LINK_COM_M, joint_pos_rad)[None, None, :, :, None]).squeeze(-1)
    weight = _vec(LINK_MASS_KG, joint_pos_rad)[:, None] * _vec((0.0, 0.0, -GRAVITY_MPS2), joint_pos_rad)
    axes = _joint_axes(rotations)
    torque = torch.zeros(origins.shape[:3], dtype=joint_pos_rad.dtype, device=joint_pos_rad.device)
    for joint in range(3):
        arms = com[:, :, joint:] - origins[:, :, joint: joint + 1]  # links downstream of the joint
        moments = torch.cross(arms, weight[joint:].expand_as(arms), dim=-1).sum(dim=2)
        torque[:, :, joint] = -(moments * axes[:, :, joint]).sum(dim=-1)
    return torque.reshape(-1, tp.NUM_JOINTS)
