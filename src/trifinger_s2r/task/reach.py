"""Which points a fingertip can reach with its joints inside the soft limits: a voxel map of one finger's workspace.

The three fingers are the same chain turned about the vertical axis through the holder (task.finger_kinematics), so
one map (finger 0's) answers for all: a point is turned by minus the finger's yaw before the look-up. The map is
filled by the fingertip positions of a dense grid of joint angles, then grown by one voxel so that the grid's spacing
leaves no holes; a margin inside the soft limits keeps reachable points away from a limit's stop.
"""

from __future__ import annotations

import functools

import torch

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task import finger_kinematics as fk

VOXEL_M = 0.005
LOW_M = (-0.4, -0.4, -0.05)
CELLS = (160, 160, 110)
JOINT_STEP_RAD = 0.02


@functools.lru_cache(maxsize=4)
def workspace_map(margin_rad: float) -> torch.Tensor:
    """(X, Y, Z) bool voxel map of finger 0's fingertip positions with every joint at least margin_rad inside its
    soft limits (cached: a pure function of the robot's geometry)."""
    axes = [torch.arange(lo + margin_rad, hi - margin_rad + 1e-9, JOINT_STEP_RAD, dtype=torch.float64)
            for lo, hi in zip(tp.SOFT_LIMIT_LOWER_RAD, tp.SOFT_LIMIT_UPPER_RAD)]
    if any(len(a) == 0 for a in axes):
        raise ValueError(f"reach: a margin of {margin_rad} rad leaves no room inside the soft limits")
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    tips = fk.fingertip_positions(grid.repeat(1, 3))[:, 0]
    cells = _cells(tips)
    inside = _inside(cells)
    occupied = torch.zeros(CELLS, dtype=torch.float32)
    occupied[tuple(cells[inside].T)] = 1.0
    grown = torch.nn.functional.max_pool3d(occupied[None, None], kernel_size=3, stride=1, padding=1)[0, 0]
    return grown > 0.5


def _cells(points_m: torch.Tensor) -> torch.Tensor:
    low = torch.tensor(LOW_M, dtype=points_m.dtype, device=points_m.device)
    return torch.floor((points_m - low) / VOXEL_M).long()


def _inside(cells: torch.Tensor) -> torch.Tensor:
    size = torch.tensor(CELLS, device=cells.device)
    return ((cells >= 0) & (cells < size)).all(dim=-1)


def reachable(points_m: torch.Tensor, margin_rad: float = 0.05) -> torch.Tensor:
    """(..., 3 fingers) whether each finger's fingertip can reach its point (points_m (..., 3 fingers, 3), world)."""
    yaw = torch.tensor(fk.FINGER_YAW_RAD, dtype=points_m.dtype, device=points_m.device)
    c, s = torch.cos(-yaw), torch.sin(-yaw)
    x, y = points_m[..., 0], points_m[..., 1]
    local = torch.stack([c * x - s * y, s * x + c * y, points_m[..., 2]], dim=-1)
    cells = _cells(local)
    inside = _inside(cells)
    grid = workspace_map(float(margin_rad)).to(points_m.device)
    clipped = torch.minimum(cells.clamp(min=0), torch.tensor(CELLS, device=cells.device) - 1)
    return inside & grid[clipped[..., 0], clipped[..., 1], clipped[..., 2]]


def within_arena(points_m: torch.Tensor, margin_m: float) -> torch.Tensor:
    """(...) whether each point (..., 3) lies at least margin_m inside the arena's wall (horizontally)."""
    return points_m[..., :2].norm(dim=-1) <= tp.ARENA_RADIUS_M - margin_m


def unreachable_points(contacts_m: torch.Tensor, outward: torch.Tensor, clearance_m: float, approach_m: float,
                       margin_rad: float, wall_margin_m: float) -> torch.Tensor:
    """(..., 3 fingers) how many of each finger's two fingertip points for a contact (contacts_m and their outward
    normals (..., 3 fingers, 3)) it cannot reach margin_rad inside its soft limits or lie within wall_margin_m of the
    arena's wall: the tip touching the contact (clearance_m out) and its approach point (approach_m further out)."""
    points = [contacts_m + clearance_m * outward, contacts_m + (clearance_m + approach_m) * outward]
    return sum((~reachable(p, margin_rad) | ~within_arena(p, wall_margin_m)).long() for p in points)
