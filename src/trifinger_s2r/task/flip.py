"""Tipping the cube onto the face its goal has at the bottom, before the lift: the teacher's regrasp.

A grasp of two vertical faces turns the held cube by about 1 rad (docs/benchmarks.md, `bench turn`), while uniform
goal orientations need a tilt of 90 degrees from a flat start on average. So where the face that is lowest at the
goal (its bottom) is not the cube's bottom now, the teacher holds the cube just above the table and tips it about a
horizontal axis until that face is down, and lets go once the cube would fall onto it (`releasing`): the cube lands
on its goal's bottom face and is grasped again, leaving a turn of at most 55 degrees of tilt plus the yaw. A bottom
face opposite the goal's takes two tips. The rules read the state alone, with the cube's height as the memory: level
4's goals lie higher than the tipping happens (goals.py), so a cube held low is being tipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_mul, quat_rotate

FACE_AXES = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
"""The cube's outward face normals in its own frame."""


@dataclass(frozen=True)
class FlipConfig:
    """When and how the teacher tips the cube."""

    enabled: bool = False
    hold_height_m: float = 0.019
    """The tipped cube's centre is held this far above its resting height: its edges clear the table at 45 degrees
    (by 0.4 x the half edge: 6 mm), and the wrench holds it (task.expert: above 1 cm)."""
    raised_tolerance_m: float = 0.004
    """The cube is raised first and turned only once within this of that height (turning sooner, its edge meets the
    table, and the wrench, scaled to the motors' limits, lifts it no further)."""
    low_m: float = 0.0235
    """A cube whose centre is below its resting height plus this may be tipped or let go (level 4's goals are at
    least 2.4 cm above a resting cube)."""
    max_radius_m: float = 0.08
    """The tipped cube is carried to within this of the arena's centre, where every grasp is in reach."""
    min_tilt_rad: float = 1.0
    """Tip only where the goal's bottom face must turn by more than this to its angle at the goal (less is turned in
    the grasp: about 1 rad works, `bench turn`)."""
    release_tilt_rad: float = 0.5
    """Let go once the goal's bottom face is within this of straight down: the cube then falls onto it."""
    goal_tilt_margin_rad: float = 0.25
    """... and only while it is tilted this much more than at the goal (a goal balanced on an edge is carried)."""

    def __post_init__(self) -> None:
        for name in ("hold_height_m", "raised_tolerance_m", "low_m", "max_radius_m", "min_tilt_rad", "release_tilt_rad",
                     "goal_tilt_margin_rad"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expert.flip.{name} must be positive, got {getattr(self, name)}")
        if self.hold_height_m >= self.low_m:
            raise ValueError(f"expert.flip.hold_height_m ({self.hold_height_m}) must be below expert.flip.low_m "
                             f"({self.low_m})")


def face_normals(quat: torch.Tensor) -> torch.Tensor:
    """(N, 6, 3) the world-frame outward normals of the cube's faces (FACE_AXES order) at orientations (N, 4)."""
    axes = torch.tensor(FACE_AXES, dtype=quat.dtype, device=quat.device)
    n = quat.shape[0]
    return quat_rotate(quat[:, None].expand(n, 6, 4), axes[None].expand(n, 6, 3))


def bottom_face(quat: torch.Tensor) -> torch.Tensor:
    """(N,) the index (FACE_AXES) of the face whose normal points most downwards."""
    return face_normals(quat)[..., 2].argmin(dim=-1)


def _tilt_from_down(normal: torch.Tensor) -> torch.Tensor:
    """(N,) angle between normals (N, 3) and straight down."""
    return torch.acos((-normal[:, 2]).clamp(-1.0, 1.0))


def tip_over_quat(cube_quat: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """(N, 4) the cube's orientation turned about a horizontal axis so that face (N,) points straight down; a face
    pointing up is turned by 90 degrees (about the horizontal axis of the cube's most x-facing side), a first tip."""
    return _tip_over(cube_quat, face_normals(cube_quat), face)


def _tip_over(cube_quat: torch.Tensor, normals: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """tip_over_quat given the cube's face normals (N, 6, 3) at cube_quat."""
    rows = torch.arange(len(face), device=face.device)
    target = normals[rows, face]
    down = torch.zeros_like(target)
    down[:, 2] = -1.0
    axis = torch.cross(target, down, dim=-1)
    angle = torch.atan2(axis.norm(dim=-1), (target * down).sum(-1))
    upwards = (axis.norm(dim=-1) < 0.2) & (target[:, 2] > 0)  # no axis to tip about: a first tip
    side = normals[:, :, 0] * (normals[..., 2].abs() < 0.5)
    fallback = normals[rows, side.argmax(dim=-1)] * torch.tensor([1.0, 1.0, 0.0], dtype=axis.dtype,
                                                                  device=axis.device)
    axis = torch.where(upwards[:, None], fallback, axis)
    angle = torch.where(upwards, torch.full_like(angle, math.pi / 2), angle)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return quat_mul(quat_from_axis_angle(axis, angle), cube_quat)


def flip_phase(cfg: FlipConfig, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor, goal_quat: torch.Tensor,
               resting_height_m: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Which envs tip the cube (N,), the pose their grasp is chosen for and carried to (N, 3) m and (N, 4), which
    let it go (N,), and which of the tipping ones raise it before turning it (N,): their carry keeps the cube's
    orientation. Nothing tips or lets go where cfg is disabled."""
    cube_normals, goal_normals = face_normals(cube_quat), face_normals(goal_quat)
    goal_bottom = goal_normals[..., 2].argmin(dim=-1)
    rows = torch.arange(len(goal_bottom), device=goal_bottom.device)
    tilt_now = _tilt_from_down(cube_normals[rows, goal_bottom])
    tilt_at_goal = _tilt_from_down(goal_normals[rows, goal_bottom])
    low = cube_pos_m[:, 2] < resting_height_m + cfg.low_m
    on_it = cube_normals[..., 2].argmin(dim=-1) == goal_bottom
    beyond_goal = tilt_now > tilt_at_goal + cfg.goal_tilt_margin_rad
    releasing = low & on_it & beyond_goal & (tilt_now <= cfg.release_tilt_rad) & cfg.enabled
    far = tilt_now > tilt_at_goal + cfg.min_tilt_rad
    tipping = low & ((~on_it & far) | (on_it & beyond_goal & (tilt_now > cfg.release_tilt_rad))) & cfg.enabled
    target_pos = cube_pos_m.clone()
    radius = target_pos[:, :2].norm(dim=-1, keepdim=True)
    target_pos[:, :2] *= (cfg.max_radius_m / radius.clamp(min=1e-9)).clamp(max=1.0)
    target_pos[:, 2] = resting_height_m + cfg.hold_height_m
    raising = tipping & (cube_pos_m[:, 2] < resting_height_m + cfg.hold_height_m - cfg.raised_tolerance_m)
    return tipping, target_pos, _tip_over(cube_quat, cube_normals, goal_bottom), releasing, raising
