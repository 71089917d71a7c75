"""Tipping the cube over a bottom edge on the table, before the lift: the teacher's regrasp (off by default).

A grasp of two vertical faces turns the held cube by about 1 rad (`bench turn`), while uniform goal orientations are
2.2 rad from a flat start on average; tipping it in the air stalls (task.flip, docs/benchmarks.md). Here the cube
stays on the table and turns by 90 degrees about the bottom edge of the face that must go down (t): one finger pushes
the upper part of the opposite face towards t and upwards, while the other two pinch the two side faces next to that
edge, an axle that keeps the edge from sliding. The pinched faces stay vertical while it turns, so no finger ends
under the cube. Which tips, in which order: a plan of up to three tips (each moves the cube by an edge) that leaves
the least angle beyond what the grasp turns (from a flat start, three tips leave 0.73 rad on average against 2.2).
The rules read the state alone, so a student can imitate them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task.flip import face_normals, tip_over_quat
from trifinger_s2r.task.geometry import rotation_angle_between


@dataclass(frozen=True)
class PivotConfig:
    """When and how the teacher tips the cube over an edge."""

    enabled: bool = False
    low_m: float = 0.018
    """Only a cube whose centre is below its resting height plus this is tipped (on an edge at 45 degrees it is
    13.5 mm higher; level 4's goals lie at least 2.4 cm higher)."""
    max_radius_m: float = 0.12
    """... and only within this of the arena's centre (a cube at the wall is lifted and turned as before)."""
    plan_margin_m: float = 0.0
    """Plans keep the cube within max_radius_m less this (a tipped cube slides a little; past max_radius_m the plan
    is dropped half done)."""
    radius_cost_rad_per_m: float = 0.0
    """What a plan costs per metre of its cube's distance from the centre at its end (grasps reach best there)."""
    let_go_tilt_rad: float = 0.0
    """The fingers let go of a cube being tipped onto the face it lies on once that face is tilted more than this
    from straight down (0.6: just past 45 degrees; else the next grasp's approach takes over; 0: never). Less tilted
    cubes on an edge are the grasp's to lift. Off: 0.6 gave 18.5% against 21.0% (level 4, seed 4242, N = 200)."""
    max_tips: int = 3
    """Plans look this many tips ahead (4 tips reach nothing nearer on average: 0.71 against 0.73 rad)."""
    tip_cost_rad: float = 0.1
    """What a tip costs a plan, against the angle it leaves beyond free_turn_rad."""
    free_turn_rad: float = 0.5
    """Plans count only the angle left beyond this (the grasp turns the cube by that much reliably, `bench turn`)."""
    settled_tilt_rad: float = 0.3
    """A cube whose bottom face is tilted more than this from straight down stands on an edge (being tipped)."""
    push_height_m: float = 0.02
    """The pushing finger touches the opposite face this far above the cube's centre, along its up axis."""
    push_m: float = 0.03
    """The pushing tip's target lies this far inside the face (the force with the tip stiffness)."""
    push_up_rad: float = 0.5
    """... turned upwards by this: lifting the pushed side tips the cube sooner than it slides (within the tip's
    friction cone, finger-cube friction about 1)."""
    pinch_inset_m: float = 0.02
    """The pinching tips touch the side faces this far from the pivot edge, along the face and along up."""
    pinch_squeeze_m: float = 0.03
    """The pinching tips' targets lie this far inside their faces."""
    in_place_m: float = 0.02
    """The tips push and pinch once each is within this of its contact's tip point (until then they approach)."""

    def __post_init__(self) -> None:
        if self.max_tips < 1:
            raise ValueError(f"expert.pivot.max_tips must be at least 1, got {self.max_tips}")
        if self.plan_margin_m < 0 or self.radius_cost_rad_per_m < 0 or self.plan_margin_m >= self.max_radius_m:
            raise ValueError("expert.pivot.plan_margin_m must lie in [0, max_radius_m) and radius_cost_rad_per_m must "
                             f"not be negative, got {self.plan_margin_m} and {self.radius_cost_rad_per_m}")
        for name in ("low_m", "max_radius_m", "tip_cost_rad", "free_turn_rad", "settled_tilt_rad", "push_height_m",
                     "push_m", "pinch_inset_m", "pinch_squeeze_m", "in_place_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expert.pivot.{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.push_up_rad < math.pi / 2:
            raise ValueError(f"expert.pivot.push_up_rad must lie in [0, pi/2), got {self.push_up_rad}")
        if self.pinch_inset_m >= cube.HALF_EDGE_M:
            raise ValueError(f"expert.pivot.pinch_inset_m ({self.pinch_inset_m}) must be below the cube's half edge "
                             f"({cube.HALF_EDGE_M})")


def _horizontal(v: torch.Tensor) -> torch.Tensor:
    flat = v * torch.tensor([1.0, 1.0, 0.0], dtype=v.dtype, device=v.device)
    return flat / flat.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def _tips(quat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For flat cubes (N, 4): the orientations (N, 4, 4) after each of the four tips onto a side face, those faces
    (N, 4), and their horizontal normals (N, 4, 2), the way the centre moves (by an edge)."""
    normals = face_normals(quat)
    sides = normals[..., 2].abs().argsort(dim=-1)[:, :4]
    n = len(quat)
    tipped = tip_over_quat(quat[:, None].expand(n, 4, 4).reshape(-1, 4), sides.reshape(-1))
    heading = _horizontal(normals.gather(1, sides[..., None].expand(n, 4, 3)))[..., :2]
    return tipped.reshape(n, 4, 4), sides, heading


def tip_plan(cfg: PivotConfig, flat_quat: torch.Tensor, xy_m: torch.Tensor, goal_quat: torch.Tensor,
             edge_m: float = cube.EDGE_M) -> tuple[torch.Tensor, torch.Tensor]:
    """The best sequence of at most cfg.max_tips tips over a bottom edge of flat cubes (N, 4) at xy_m (N, 2): each
    tip costs cfg.tip_cost_rad, the angle left to goal_quat (N, 4) at the end costs what it exceeds
    cfg.free_turn_rad by (what the grasp turns), its end's distance from the centre cfg.radius_cost_rad_per_m per
    metre, and a plan whose cube leaves cfg.max_radius_m - cfg.plan_margin_m of the centre after a tip (each tip moves
    it by an edge) is not made. Returns its cost (N,) and its first tip's face (index into flip.FACE_AXES; -1
    where no tip is best) (N,)."""
    n = len(flat_quat)
    cost = ((rotation_angle_between(flat_quat, goal_quat) - cfg.free_turn_rad).clamp(min=0.0)
            + cfg.radius_cost_rad_per_m * xy_m.norm(dim=-1))
    first = torch.full((n,), -1, dtype=torch.long, device=flat_quat.device)
    level, first_of_level = flat_quat[:, None], None
    xy, widest = xy_m[:, None], torch.zeros_like(xy_m[:, :1])
    for k in range(1, cfg.max_tips + 1):
        tipped, faces, heading = _tips(level.reshape(-1, 4))
        m = tipped.shape[0] // n * 4
        level = tipped.reshape(n, m, 4)
        xy = (xy.repeat_interleave(4, dim=1) + edge_m * heading.reshape(n, m, 2))
        widest = torch.maximum(widest.repeat_interleave(4, dim=1), xy.norm(dim=-1))
        first_of_level = faces.reshape(n, m) if first_of_level is None else first_of_level.repeat_interleave(4, dim=1)
        angle = rotation_angle_between(level.reshape(-1, 4), goal_quat[:, None].expand(n, m, 4).reshape(-1, 4))
        level_cost = ((angle.reshape(n, m) - cfg.free_turn_rad).clamp(min=0.0) + k * cfg.tip_cost_rad
                      + cfg.radius_cost_rad_per_m * xy.norm(dim=-1))
        too_far = widest > cfg.max_radius_m - cfg.plan_margin_m
        level_cost, best = level_cost.masked_fill(too_far, math.inf).min(dim=-1)
        better = level_cost < cost
        cost = torch.where(better, level_cost, cost)
        first = torch.where(better, first_of_level.gather(1, best[:, None])[:, 0], first)
    return cost, first


def pivot_face(cfg: PivotConfig, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor, goal_quat: torch.Tensor,
               resting_height_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which envs tip their cube over an edge (N,), and the face (index into flip.FACE_AXES) that goes down (N,): the
    first tip of the best plan (tip_plan) from the flat orientation nearest the cube's; a cube standing on an edge is
    tipped on onto the lower of its two lowest faces where the plan from it is cheaper than from the other (the face
    it is being tipped onto, before 45 degrees), else let fall: the third (N,) says which envs' fingers let go (held
    on past 45 degrees, or pulled away by the next grasp's approach, half the cubes fell back)."""
    normals = face_normals(cube_quat)
    rows = torch.arange(len(cube_quat), device=cube_quat.device)
    lowest = normals[..., 2].argsort(dim=-1)
    bottom_face, next_face = lowest[:, 0], lowest[:, 1]
    bottom_tilt_rad = torch.acos((-normals[rows, bottom_face, 2]).clamp(-1.0, 1.0))
    on_edge = bottom_tilt_rad > cfg.settled_tilt_rad
    xy = cube_pos_m[:, :2]
    cost_flat, first = tip_plan(cfg, tip_over_quat(cube_quat, bottom_face), xy, goal_quat)
    wanted, face, falling = first >= 0, first.clamp(min=0), torch.zeros_like(on_edge)
    if on_edge.any():  # only a cube on an edge needs the plan from its other low face
        cost_next, _ = tip_plan(cfg, tip_over_quat(cube_quat, next_face), xy, goal_quat)
        wanted = torch.where(on_edge, cost_next < cost_flat, wanted)
        falling = on_edge & ~wanted & (bottom_tilt_rad > cfg.let_go_tilt_rad) & (cfg.let_go_tilt_rad > 0)
        face = torch.where(on_edge, next_face, face)
    on_table = (cube_pos_m[:, 2] < resting_height_m + cfg.low_m) & (cube_pos_m[:, :2].norm(dim=-1) < cfg.max_radius_m)
    on_table = on_table & cfg.enabled
    return on_table & wanted, face, on_table & falling


ASSIGNMENTS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
"""Which finger pushes, pinches the +w face and pinches the -w face."""


def pivot_contacts(cfg: PivotConfig, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor, face: torch.Tensor,
                   rays: torch.Tensor, feasible: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   half_edge_m: float = cube.HALF_EDGE_M) -> tuple[torch.Tensor, ...]:
    """For tipping the cube over the bottom edge of face t (N,): each finger's contact point (N, 3, 3), the outward
    normal of its face (N, 3, 3), where its tip's target lies from its contact once all three are in place
    (N, 3, 3), and whether its fingers can do it (N,). One finger pushes the upper part of the face opposite t, the
    other two pinch the side faces next to the edge (w = up x t); of the six ways to give the fingers these roles,
    the one whose contacts feasible(contacts, outward normals) (both (N, 6, 3, 3)) -> (N, 6, 3) allows the most
    fingers, then whose rays point most along the faces' outward normals (each finger outside its face), wins."""
    normals = face_normals(cube_quat)
    rows = torch.arange(len(face), device=face.device)
    t = normals[rows, face]
    others = normals[..., 2].scatter(1, face[:, None], math.inf)
    up = -normals[rows, others.argmin(dim=-1)]  # past 45 degrees face t is already the lowest
    w = torch.cross(up, t, dim=-1)
    near_edge = cube_pos_m + (half_edge_m - cfg.pinch_inset_m) * (t - up)
    role_contacts = torch.stack([cube_pos_m - half_edge_m * t + cfg.push_height_m * up, near_edge + half_edge_m * w,
                                 near_edge - half_edge_m * w], dim=1)  # (N, 3 roles, 3)
    role_outward = torch.stack([-t, w, -w], dim=1)
    push_dir = math.cos(cfg.push_up_rad) * t + math.sin(cfg.push_up_rad) * up
    role_press = torch.stack([cfg.push_m * push_dir, -cfg.pinch_squeeze_m * w, cfg.pinch_squeeze_m * w], dim=1)
    # finger_role[a][f]: the role finger f has in assignment a
    finger_role = torch.tensor([[roles.index(f) for f in range(3)] for roles in ASSIGNMENTS], device=face.device)
    contacts, outward, press = (x[:, finger_role] for x in (role_contacts, role_outward, role_press))  # (N, 6, 3, 3)
    facing = (_horizontal(outward) * rays[None, None]).sum(-1).sum(-1)  # (N, 6): fingers outside their faces
    allowed = feasible(contacts, outward).sum(dim=-1)
    best = (allowed * 10.0 + facing).argmax(dim=-1)
    return contacts[rows, best], outward[rows, best], press[rows, best], allowed[rows, best] == 3
