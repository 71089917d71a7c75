"""Goal and initial poses exactly as the Real Robot Challenge's `move_cube.sample_goal` levels."""

from __future__ import annotations

import math

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task.geometry import quat_from_yaw, quat_mul, random_quat, sample_disc_xy

LEVELS = (-1, 1, 2, 3, 4)
"""-1: on the table, random face up and yaw (RRC initialisation); 1: table xy, identity; 2: fixed (0, 0, 0.0825),
identity; 3: xy and z in [0.0325, 0.1], identity; 4: xy, z in [0.0563, 0.1], uniform orientation."""
MAX_COM_DISTANCE_M = tp.ARENA_RADIUS_M - cube.CIRCUMRADIUS_M
MIN_HEIGHT_M = cube.HALF_EDGE_M
MAX_HEIGHT_M = 0.1
LIFTED_M = 0.01
"""An object whose centre ends more than this above its resting height counts as lifted (level-4 diagnostics)."""
LEVEL_2_HEIGHT_M = MIN_HEIGHT_M + 0.05

ON_TABLE_LEVELS = (-1, 1)
"""Levels whose goals lie on the table (z = the cube's half edge)."""
HOME_TIP_LOWEST_M = 0.069
"""Lowest point of the fingertips at the home pose (MuJoCo model, tested): a taller object would start inside them."""

_S = 1 / math.sqrt(2)
FACE_UP_QUATS = torch.tensor(
    [[0, 0, 0, 1], [_S, 0, 0, _S], [1, 0, 0, 0], [-_S, 0, 0, _S], [0, -_S, 0, _S], [0, _S, 0, _S]],
    dtype=torch.float32,
)
"""Base orientations with each of the six faces up (move_cube's order)."""


def check_level(level: int) -> int:
    if level not in LEVELS:
        raise ValueError(f"unknown goal level {level!r}; valid levels: {list(LEVELS)}")
    return level


def orientation_matters(level: int) -> bool:
    """Whether success and reward judge orientation: levels -1 (random yaw) and 4 (6-DoF); 1-3 are position-only."""
    return check_level(level) in (-1, 4)


def judged_goal_quat(level: int, goal_quat: torch.Tensor, cube_quat: torch.Tensor) -> torch.Tensor:
    """The goal orientation a policy sees and is judged against: position-only levels take the cube's own."""
    return goal_quat if orientation_matters(level) else cube_quat


def _face_up_yaw(n: int, generator: torch.Generator, device) -> torch.Tensor:
    faces = FACE_UP_QUATS.to(device)[torch.randint(0, 6, (n,), generator=generator, device=device)]
    yaw = 2 * math.pi * torch.rand(n, generator=generator, device=device)
    return quat_mul(quat_from_yaw(yaw), faces)


def sample_goal(
    level: int, n: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """n goal poses of a level: positions (n, 3) m and quaternions (n, 4) xyzw."""
    check_level(level)
    identity = torch.tensor([0.0, 0.0, 0.0, 1.0], device=device).expand(n, 4).clone()
    pos = torch.zeros(n, 3, device=device)
    if level == 2:
        pos[:, 2] = LEVEL_2_HEIGHT_M
        return pos, identity
    pos[:, :2] = sample_disc_xy(n, MAX_COM_DISTANCE_M, generator, device)
    if level in (-1, 1):
        pos[:, 2] = MIN_HEIGHT_M
        return pos, (_face_up_yaw(n, generator, device) if level == -1 else identity)
    low = MIN_HEIGHT_M if level == 3 else cube.CIRCUMRADIUS_M
    pos[:, 2] = low + (MAX_HEIGHT_M - low) * torch.rand(n, generator=generator, device=device)
    return pos, (random_quat(n, generator, device) if level == 4 else identity)


def sample_initial_pose(
    n: int, generator: torch.Generator, device: torch.device | str = "cpu", lift_m: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial cube poses on the table (the RRC's level -1: random xy, face up and yaw), raised by lift_m."""
    pos, quat = sample_goal(-1, n, generator, device)
    pos[:, 2] += lift_m
    return pos, quat


def arena_factor(bounding_radius_m: torch.Tensor | float) -> torch.Tensor | float:
    """Factor on distances from the arena's centre that keeps an object of this bounding radius inside the wall
    wherever the cube would be (move_cube's rule: the centre stays within R - r of the centre)."""
    factor = (tp.ARENA_RADIUS_M - bounding_radius_m) / (tp.ARENA_RADIUS_M - cube.CIRCUMRADIUS_M)
    return factor.clamp(max=1.0) if isinstance(factor, torch.Tensor) else min(1.0, factor)


def _per_row(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand(like.shape[0])


def object_starts(start_pos_m: torch.Tensor, bounding_radius_m: torch.Tensor | float,
                  resting_height_m: torch.Tensor | float) -> torch.Tensor:
    """(n, 3) on-table starts for objects (one, or one per row) other than the cube: inside the wall, and at the
    arena's centre where the object is taller than the fingertips at home (it would start inside them); heights are
    left as given."""
    pos = start_pos_m.clone()
    factor = _per_row(arena_factor(bounding_radius_m), pos)
    tall = 2 * _per_row(resting_height_m, pos) > HOME_TIP_LOWEST_M
    pos[:, :2] *= torch.where(tall, torch.zeros_like(factor), factor)[:, None]
    return pos


def object_goals(level: int, goal_pos_m: torch.Tensor, bounding_radius_m: torch.Tensor | float,
                 resting_height_m: torch.Tensor | float) -> torch.Tensor:
    """(n, 3) a level's goals for objects (one, or one per row) other than the cube: inside the wall, on-table goals
    at the resting height, goals in the air no lower."""
    pos = goal_pos_m.clone()
    pos[:, :2] *= _per_row(arena_factor(bounding_radius_m), pos)[:, None]
    resting = _per_row(resting_height_m, pos)
    pos[:, 2] = resting if level in ON_TABLE_LEVELS else torch.maximum(pos[:, 2], resting)
    return pos


def cube_bounding_radius_m(edge_m: torch.Tensor) -> torch.Tensor:
    """(n,) circumradius of cubes of edge edge_m (n,)."""
    return cube.CIRCUMRADIUS_M * edge_m / cube.EDGE_M
