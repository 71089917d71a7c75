"""Dragging a far cube in towards the arena's centre before the grasp: the teacher's gather (off by default).

Level-4 cubes that start far out are never lifted, by the teacher as by its students (development seed 4242, N = 200:
22 and 26 episodes; those cubes start 12.4 cm from the centre (median) against 9.5 cm for the others,
docs/benchmarks.md): the grasp's three fingers cannot all reach around them. Here the cube stays on the table and one
finger drags it in, pressing on its top (near the wall there is no room to push it from behind). The rules read the
state alone, so a student can imitate them:
- a cube resting on the table (centre below its resting height plus low_m) farther than radius_m from the centre is
  gathered;
- the dragging finger is the one, of those that can reach the press point (on the cube's top, press_offset_m outward
  of its centre; task.reach), whose approach direction lies nearest the cube's direction from the centre;
- its tip rises first where it is low and away from that point, goes over it, comes down on it, then presses down and
  pulls towards the arena's centre (friction on the top face against the table's under the cube's weight plus the
  press); the other two tips rise clear of the cube.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task import reach
from trifinger_s2r.task.geometry import quat_to_matrix
from trifinger_s2r.task.grasp_forces import clamp_norm


@dataclass(frozen=True)
class GatherConfig:
    """When and how the teacher drags a far cube in."""

    enabled: bool = False
    radius_m: float = 0.11
    """A cube on the table farther than this from the arena's centre is dragged in first ..."""
    push_in_m: float = 0.03
    """... and, once the finger presses on it, on until it is this much nearer the centre (the grasp's approach
    would otherwise nudge it back out and the two phases take turns at the boundary)."""
    low_m: float = 0.01
    """... on the table: its centre below its resting height plus this."""
    tip_clearance_m: float = 0.008
    """Distance from a face to the fingertip point when the tip touches it."""
    press_offset_m: float = 0.015
    """The press point lies this far outward of the top face's centre (a pull at the top tips the cube inwards unless
    the press sits outward of its centre)."""
    hover_m: float = 0.03
    """The tip travels this far above the press point."""
    near_m: float = 0.015
    """A tip within this (horizontally) of the press point comes down on it; a tip over the top face (within half an
    edge of the cube's centre, horizontally) and below the press point plus this presses and drags."""
    press_m: float = 0.035
    """While dragging, the tip aims this far below itself ..."""
    drag_m: float = 0.035
    """... and this far inwards (at 60 N/m, 2.1 N each: enough for a 94 g cube on a table of friction 0.55)."""
    max_pull_m: float = 0.05
    """The tip impedance's largest pull while gathering (the teacher's own is smaller): at 60 N/m, 3 N, enough for
    the press and the pull of a 120 g cube on the table."""
    clear_height_m: float = 0.1
    """Height of the two idle tips."""

    def __post_init__(self) -> None:
        for name in ("radius_m", "low_m", "tip_clearance_m", "hover_m", "near_m", "press_m", "drag_m", "max_pull_m",
                     "clear_height_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expert.gather.{name} must be positive, got {getattr(self, name)}")
        if self.press_offset_m < 0 or not 0 <= self.push_in_m < self.radius_m:
            raise ValueError("expert.gather.press_offset_m must be >= 0 and push_in_m in [0, radius_m)")


def gather_phase(cfg: GatherConfig, tips_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                 resting_height_m: torch.Tensor, rays: torch.Tensor, margin_rad: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) whether each env's cube is being gathered (on the table beyond radius_m, or beyond radius_m - push_in_m
    while the finger drags it, and some finger can reach its press point), and the tip targets (N, 3, 3)."""
    radius_m = cube_pos_m[:, :2].norm(dim=-1)
    on_table = cube_pos_m[:, 2] < resting_height_m + cfg.low_m
    targets, feasible, dragging = gather_targets(cfg, tips_m, cube_pos_m, cube_quat, rays, margin_rad)
    far = (radius_m > cfg.radius_m) | (dragging & (radius_m > cfg.radius_m - cfg.push_in_m))
    return on_table & far & feasible, targets


def extent_m(cube_quat: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """(N,) how far the cube reaches from its centre along each unit direction (N, 3): its support function."""
    axes = quat_to_matrix(cube_quat)  # (N, 3, 3), columns are the cube's axes
    return cube.HALF_EDGE_M * (direction[:, :, None] * axes).sum(dim=1).abs().sum(dim=-1)


def outward_directions(cube_pos_m: torch.Tensor) -> torch.Tensor:
    """(N, 3) horizontal unit directions from the arena's centre towards each cube."""
    outward = torch.nn.functional.pad(cube_pos_m[:, :2], (0, 1))
    return outward / outward.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def press_points(cfg: GatherConfig, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor) -> torch.Tensor:
    """(N, 3) where the dragging tip presses: on the cube's top, press_offset_m outward of its centre."""
    up = torch.zeros_like(cube_pos_m)
    up[:, 2] = 1.0
    press = cube_pos_m + cfg.press_offset_m * outward_directions(cube_pos_m)
    press[:, 2] = cube_pos_m[:, 2] + extent_m(cube_quat, up) + cfg.tip_clearance_m
    return press


def dragging_finger(press_m: torch.Tensor, outward: torch.Tensor, rays: torch.Tensor,
                    margin_rad: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) the finger that drags (of those that reach the press point, the one whose approach direction lies
    nearest the cube's direction from the centre), and whether any can (N,)."""
    n = len(press_m)
    can_reach = reach.reachable(press_m[:, None].expand(n, 3, 3), margin_rad)
    alignment = torch.where(can_reach, outward @ rays.T, torch.full((n, 3), -2.0, dtype=press_m.dtype,
                                                                   device=press_m.device))
    return alignment.argmax(dim=-1), can_reach.any(dim=-1)


def gather_targets(cfg: GatherConfig, tips_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                   rays: torch.Tensor, margin_rad: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, 3) tip targets that drag each cube in (tips_m (N, 3, 3); rays (3, 3) the fingers' approach
    directions), whether some finger can reach the press point (N,), and whether the dragging finger is on it (N,).
    Each target lies at most cfg.max_pull_m from its tip."""
    n = len(tips_m)
    outward = outward_directions(cube_pos_m)
    up = torch.zeros_like(outward)
    up[:, 2] = 1.0
    press = press_points(cfg, cube_pos_m, cube_quat)
    finger, feasible = dragging_finger(press, outward, rays, margin_rad)
    rows = torch.arange(n)
    tip = tips_m[rows, finger]
    away_m = (tip - press)[:, :2].norm(dim=-1)
    on_top = ((tip - cube_pos_m)[:, :2].norm(dim=-1) < cube.HALF_EDGE_M) & (tip[:, 2] < press[:, 2] + cfg.near_m)
    hover = press + cfg.hover_m * up
    rise_first = (away_m >= cfg.near_m) & (tip[:, 2] < hover[:, 2] - cfg.near_m)
    straight_up = torch.cat([tip[:, :2], hover[:, 2:]], dim=-1)
    approach = torch.where(rise_first[:, None], straight_up, torch.where((away_m < cfg.near_m)[:, None], press, hover))
    drag = tip - cfg.drag_m * outward - cfg.press_m * up  # a constant press and pull while the tip is on top
    targets = tips_m.clone()
    targets[..., 2] = cfg.clear_height_m
    targets[rows, finger] = torch.where(on_top[:, None], drag, approach)
    return tips_m + clamp_norm(targets - tips_m, cfg.max_pull_m), feasible, on_top
