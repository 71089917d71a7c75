"""A scripted reposing controller: the teacher whose actions warm-start the policy (train.imitation).

PPO alone never discovers holding the cube within our budgets (docs/benchmarks.md, level 4). This controller reads the
simulator's true state (a teacher may) and acts in phases chosen from the state alone, so that a Markov policy can
imitate it:
- approach: each fingertip goes to a point outside its contact point, from above when it is far;
- close: once every tip is in line with (or near) its contact, the tips move gently onto the contact points;
- pick up: once every tip touches the cube, the grasp is moved rigidly by a bounded, velocity-damped step of the
  cube's pose towards the goal, squeezing each face and bearing the cube's weight (tip impedance);
- hold: once the touched cube is off the table, each tip presses the contact force an object-level wrench controller
  asks for (task.grasp_forces): the cube's weight plus a PD pull towards the goal pose, spread over the contacts
  within their friction cones and the motors' torque limits. This is what turns the cube in the grasp.
Contact points form an opposing grasp: one finger alone on a vertical face, the other two side by side on the
opposite face (vertical: whichever face the cube rests on, a dropped cube is grasped again by its sides). Of the
12 such plans, the one nearest the fingertips wins, with a penalty on a lone finger that
faces its face at an angle and on each contact or approach point its finger cannot reach inside the soft limits or
that lies at the arena's wall (task.reach) and on a plan that faces the fingers badly at the goal orientation or
grasps faces that are top or bottom there: from home that is the best-facing plan, and a plan the tips already carry
out stays chosen while the cube turns. Torques are J^T F plus gravity compensation (task.finger_kinematics), within
the torque limit. Where the goal has no orientation, give the cube's start orientation (or `upright` of the current
one): a grasp with no orientation target lets the cube turn out of it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.backend import SimState
from trifinger_s2r.task import finger_kinematics as fk
from trifinger_s2r.task import reach
from trifinger_s2r.task.expert_config import NESTED_CONFIGS, ExpertConfig, expert_with  # noqa: F401 (re-exported)
from trifinger_s2r.task.flip import flip_phase
from trifinger_s2r.task.gather import gather_phase
from trifinger_s2r.task.geometry import (
    quat_conjugate,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    quat_to_matrix,
)
from trifinger_s2r.task.grasp_forces import clamp_norm, cube_wrench, hold_forces
from trifinger_s2r.task.pivot import pivot_contacts, pivot_face

TIP_CLEARANCE_M = 0.008
"""Distance from a face to the fingertip point when the tip's rounded end touches it."""
MAX_FACE_TILT_RAD = math.radians(60.0)
"""Grasp plans use the faces whose normals lie within this of horizontal: a flat cube's four sides whichever face it
rests on, and, for a cube tilted by 30-60 degrees in the grasp, both face sets (the tips' own plan stays cheapest).
Above 54.7 degrees, so that every orientation has at least four such faces."""


def approach_directions(like: torch.Tensor) -> torch.Tensor:
    """(3, 3) unit horizontal directions from the arena centre towards each finger's home fingertip."""
    home = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD), dtype=like.dtype, device=like.device)[None]
    tips = fk.fingertip_positions(home)[0]
    heading = torch.atan2(tips[:, 1], tips[:, 0])
    return torch.stack([heading.cos(), heading.sin(), torch.zeros_like(heading)], dim=-1)


def _plan_faces(quat: torch.Tensor, rays: torch.Tensor, max_face_tilt_rad: float = MAX_FACE_TILT_RAD):
    """For the 18 plans (6 faces x the finger alone on it) at orientation quat (N, 4): the lone finger's face normal
    made horizontal (N, 18, 3), whether that face lies within max_face_tilt_rad of vertical (N, 18), the cosine
    between the lone finger's approach ray and that normal (N, 18), and which finger is alone (18,)."""
    n, dtype, device = quat.shape[0], rays.dtype, rays.device
    quats = quat[:, None].expand(n, 6, 4).reshape(-1, 4)
    axes = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0], [0, 0, -1.0]],
                        dtype=dtype, device=device)
    tilted = quat_rotate(quats, axes.repeat(n, 1)).reshape(n, 6, 3)
    side = tilted[..., 2].abs() <= math.sin(max_face_tilt_rad)  # (N, 6)
    normals = tilted * torch.tensor([1.0, 1.0, 0.0], dtype=dtype, device=device)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    face = torch.arange(6, device=device).repeat_interleave(3)
    lone = torch.arange(3, device=device).repeat(6)
    front = normals[:, face]  # (N, 18, 3)
    return front, side[:, face], (front * rays[lone][None]).sum(-1), lone


def _candidate_plans(cube_pos_m: torch.Tensor, cube_quat: torch.Tensor, rays: torch.Tensor, spread_m: float,
                     contact_height_m: float, half_edge_m: float):
    """The 18 opposing grasps (6 faces x the finger alone on it): contacts (N, 18, 3, 3), outward normals
    (N, 18, 3, 3) made horizontal, which finger is alone (N, 18, 3), the cosine between its approach and its face
    normal (N, 18), and which plans grasp faces within MAX_FACE_TILT_RAD of vertical (N, 18): a flat cube's four
    sides, whichever face it rests on (a dropped cube often lands on another)."""
    n, dtype, device = cube_pos_m.shape[0], rays.dtype, rays.device
    front, on_sides, cosine, lone = _plan_faces(cube_quat, rays)
    tangent = torch.stack([-front[..., 1], front[..., 0], torch.zeros_like(front[..., 0])], dim=-1)
    side_of_face = torch.sign((rays[None, None] * tangent[:, :, None]).sum(-1))  # which half of the back face suits
    is_lone = torch.nn.functional.one_hot(lone, 3).bool()[None].expand(n, 18, 3)
    outward = torch.where(is_lone[..., None], front[:, :, None], -front[:, :, None])
    lateral = torch.where(is_lone, torch.zeros_like(side_of_face), side_of_face * spread_m)
    up = torch.tensor([0.0, 0.0, contact_height_m], dtype=dtype, device=device)
    contacts = cube_pos_m[:, None, None] + half_edge_m * outward + lateral[..., None] * tangent[:, :, None] + up
    return contacts, outward, is_lone, cosine, on_sides


def goal_facing_cost(cfg: ExpertConfig, goal_quat: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
    """(N, 18) what each plan costs at the goal orientation: cfg.goal_geometry_weight_m * (1 - cosine between the
    lone finger's approach ray and its face normal there), and cfg.infeasible_cost_m where its faces would be more
    than MAX_FACE_TILT_RAD from vertical there: the grasp that turns the cube to the goal without the fingers
    wrapping round it."""
    _, on_sides, cosine, _ = _plan_faces(goal_quat, rays)
    return cfg.goal_geometry_weight_m * (1.0 - cosine) + torch.where(on_sides, 0.0, cfg.infeasible_cost_m)


def contact_points(
    cube_pos_m: torch.Tensor, cube_quat: torch.Tensor, rays: torch.Tensor, spread_m: float, contact_height_m: float,
    tips_m: torch.Tensor | None = None, geometry_weight_m: float = 0.5, half_edge_m: float = cube.HALF_EDGE_M,
    plan_cost: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An opposing grasp of the cube's vertical faces: one finger alone on a face's centre, the other two on the
    opposite face, spread_m either side of its centre, each on the side nearer to it; all contact_height_m above the
    centre's height. Of the plans on faces within MAX_FACE_TILT_RAD of vertical (12 for a flat cube, up to 18) the
    cheapest wins: the summed distance of the fingertips (tips_m, (N, 3, 3); none: 0) to their contacts plus
    geometry_weight_m * (1 - cosine between the lone finger's approach ray and its face normal) plus
    plan_cost(contacts (N, 18, 3, 3), outward normals (N, 18, 3, 3)) -> (N, 18), if given.
    Returns contacts (N, 3, 3), each contact's outward face normal (N, 3, 3), and which finger is
    alone on its face (N, 3)."""
    contacts, outward, is_lone, cosine, on_sides = _candidate_plans(cube_pos_m, cube_quat, rays, spread_m,
                                                                    contact_height_m, half_edge_m)
    cost = geometry_weight_m * (1.0 - cosine) + torch.where(on_sides, 0.0, math.inf)
    if tips_m is not None:
        cost = cost + (tips_m[:, None] - contacts - TIP_CLEARANCE_M * outward).norm(dim=-1).sum(dim=-1)
    if plan_cost is not None:
        cost = cost + plan_cost(contacts, outward)
    best = cost.argmin(dim=-1)
    rows = torch.arange(len(best), device=best.device)
    return contacts[rows, best], outward[rows, best], is_lone[rows, best]


def surface_distance_m(points_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                       half_edge_m: float = cube.HALF_EDGE_M) -> torch.Tensor:
    """(N, K) distance from each of K points (N, K, 3) to the cube (0 inside)."""
    n, k = points_m.shape[:2]
    quats = quat_conjugate(cube_quat)[:, None].expand(n, k, 4).reshape(-1, 4)
    local = quat_rotate(quats, (points_m - cube_pos_m[:, None]).reshape(-1, 3)).reshape(n, k, 3)
    return (local.abs() - half_edge_m).clamp(min=0.0).norm(dim=-1)


def upright(cube_quat: torch.Tensor) -> torch.Tensor:
    """(N, 4) the flat orientation nearest the cube's: the smallest rotation that makes its most vertical axis
    vertical, applied to it. The carry phase's orientation target where the goal has none (levels 1-3): a grasp
    without an orientation target lets the cube turn out of it."""
    columns = quat_to_matrix(cube_quat).transpose(-1, -2)  # (N, 3 axes, 3)
    best = columns[..., 2].abs().argmax(dim=-1)
    axis_up = columns[torch.arange(len(best)), best] * columns[torch.arange(len(best)), best, 2:].sign()
    up = torch.zeros_like(axis_up)
    up[:, 2] = 1.0
    turn_axis = torch.cross(axis_up, up, dim=-1)
    angle = torch.atan2(turn_axis.norm(dim=-1), (axis_up * up).sum(dim=-1))
    turn_axis = turn_axis / turn_axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return quat_mul(quat_from_axis_angle(turn_axis, angle), cube_quat)


def _bounded_rotation(cube_quat: torch.Tensor, goal_quat: torch.Tensor, max_rad: float) -> torch.Tensor:
    """(N, 4) the rotation from cube to goal orientation (world frame), its angle capped at max_rad."""
    delta = quat_mul(goal_quat, quat_conjugate(cube_quat))
    delta = torch.where(delta[:, 3:] < 0, -delta, delta)
    angle = 2.0 * torch.atan2(delta[:, :3].norm(dim=-1), delta[:, 3])
    scale = torch.clamp(max_rad / angle.clamp(min=1e-9), max=1.0)
    half = 0.5 * angle * scale
    axis = delta[:, :3] / delta[:, :3].norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return torch.cat([axis * half.sin()[:, None], half.cos()[:, None]], dim=-1)


def infeasibility_cost(cfg: ExpertConfig, contacts: torch.Tensor, outward: torch.Tensor) -> torch.Tensor:
    """(N, P) cfg.infeasible_cost_m per fingertip point of each plan (contacts and outward (N, P, 3 fingers, 3)) that
    its finger cannot reach inside the soft limits or that lies too near the arena's wall: the contact's tip point
    and the approach point."""
    return cfg.infeasible_cost_m * _unreachable(cfg, contacts, outward).sum(dim=-1).to(contacts.dtype)


def _unreachable(cfg: ExpertConfig, contacts: torch.Tensor, outward: torch.Tensor) -> torch.Tensor:
    return reach.unreachable_points(contacts, outward, TIP_CLEARANCE_M, cfg.pregrasp_offset_m, cfg.reach_margin_rad,
                                    cfg.wall_margin_m)


def tip_targets(cfg: ExpertConfig, tips_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                cube_vel_mps: torch.Tensor, goal_pos_m: torch.Tensor, goal_quat: torch.Tensor,
                carry_quat: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 3, 3) where each fingertip's impedance pulls it, by the phase the state is in (approach, close, pick up);
    the grasp is chosen for goal_quat and picked up towards carry_quat (default: goal_quat)."""
    rays = approach_directions(tips_m)
    feasibility = functools.partial(infeasibility_cost, cfg) if cfg.infeasible_cost_m > 0 else None
    if cfg.goal_geometry_weight_m > 0:
        at_goal = goal_facing_cost(cfg, goal_quat, rays)
        reach_cost = feasibility
        feasibility = (lambda c, o: at_goal + reach_cost(c, o)) if reach_cost is not None else (lambda c, o: at_goal)
    contacts, normals, _ = contact_points(cube_pos_m, cube_quat, rays, cfg.spread_m, cfg.contact_height_m, tips_m,
                                          cfg.plan_geometry_weight_m, plan_cost=feasibility)
    targets = _approach_targets(cfg, tips_m, contacts, normals)
    touching = touching_cube(cfg, tips_m, cube_pos_m, cube_quat)
    carry = _carry(cfg, tips_m, cube_pos_m, cube_quat, goal_pos_m, goal_quat if carry_quat is None else carry_quat,
                   cube_vel_mps)
    targets = torch.where(touching[:, None, None], carry, targets)
    return tips_m + clamp_norm(targets - tips_m, cfg.max_pull_m)


def _approach_targets(cfg: ExpertConfig, tips_m: torch.Tensor, contacts: torch.Tensor,
                      normals: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) tip targets that approach contacts (N, 3, 3) from outside along their outward normals, from above
    when far, and close in once every tip is in line with (or near) its contact."""
    offset = tips_m - contacts
    along = (offset * normals).sum(dim=-1)
    sideways = (offset - along[..., None] * normals).norm(dim=-1)
    pregrasp = contacts + (TIP_CLEARANCE_M + cfg.pregrasp_offset_m) * normals
    rise = ((tips_m - pregrasp)[..., :2].norm(dim=-1) / cfg.far_m - 1.0).clamp(0.0, 1.0)
    up = torch.tensor([0.0, 0.0, cfg.above_m], dtype=tips_m.dtype, device=tips_m.device)
    approach = pregrasp + rise[..., None] * up
    in_place = ((sideways < cfg.aligned_m) | (offset.norm(dim=-1) < TIP_CLEARANCE_M + cfg.near_m)) & (along > -0.01)
    close = contacts - cfg.touch_squeeze_m * normals
    return torch.where(in_place.all(dim=-1)[:, None, None], close, approach)


def pivot_targets(cfg: ExpertConfig, tips_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor,
                  face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 3) tip targets that tip the cube over the bottom edge of face (N,) (task.pivot): approach and close
    onto the pivot's contacts, then push and pinch once every tip is at its contact; and whether the fingers can
    reach those contacts (N,)."""
    contacts, outward, press, feasible = pivot_contacts(cfg.pivot, cube_pos_m, cube_quat, face,
                                                       approach_directions(tips_m),
                                                       lambda c, o: _unreachable(cfg, c, o) == 0)
    targets = _approach_targets(cfg, tips_m, contacts, outward)
    tip_points = contacts + TIP_CLEARANCE_M * outward
    in_place = ((tips_m - tip_points).norm(dim=-1) < cfg.pivot.in_place_m).all(dim=-1)
    targets = torch.where(in_place[:, None, None], tip_points + press, targets)
    return tips_m + clamp_norm(targets - tips_m, cfg.max_pull_m), feasible


def held_face_normals(tips_m: torch.Tensor, cube_pos_m: torch.Tensor, cube_quat: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) outward normal of the cube face nearest each fingertip, world frame."""
    n = tips_m.shape[0]
    quats = cube_quat[:, None].expand(n, 3, 4).reshape(-1, 4)
    local = quat_rotate(quat_conjugate(quats), (tips_m - cube_pos_m[:, None]).reshape(-1, 3))
    axis = local.abs().argmax(dim=-1)
    normal = torch.nn.functional.one_hot(axis, 3).to(local.dtype) * local.gather(1, axis[:, None]).sign()
    return quat_rotate(quats, normal).reshape(n, 3, 3)


def _carry(cfg: ExpertConfig, tips_m, cube_pos_m, cube_quat, goal_pos_m, goal_quat, cube_vel_mps) -> torch.Tensor:
    """Pick-up tip targets that move the touched grasp by a bounded step of the cube's pose towards the goal: each tip
    squeezes along its face's normal, fingers sharing a face sharing its squeeze (equal force on opposite faces),
    and all carry a share of the cube's weight."""
    n = tips_m.shape[0]
    shift = goal_pos_m - cube_pos_m
    shift = shift * torch.clamp(cfg.carry_step_m / shift.norm(dim=-1, keepdim=True).clamp(min=1e-9), max=1.0)
    shift = shift - cfg.cube_damping_s * cube_vel_mps
    turn = _bounded_rotation(cube_quat, goal_quat, cfg.carry_step_rad)[:, None].expand(n, 3, 4).reshape(-1, 4)
    arms = quat_rotate(turn, (tips_m - cube_pos_m[:, None]).reshape(-1, 3)).reshape(n, 3, 3)
    normals = held_face_normals(tips_m, cube_pos_m, cube_quat)
    sharing = ((normals[:, :, None] * normals[:, None]).sum(-1) > 0.9).sum(dim=-1, keepdim=True)  # (N, 3, 1)
    inward = -quat_rotate(turn, normals.reshape(-1, 3)).reshape(n, 3, 3) * cfg.carry_squeeze_m / sharing
    lift = torch.tensor([0.0, 0.0, cfg.weight_offset_m], dtype=tips_m.dtype, device=tips_m.device)
    return cube_pos_m[:, None] + shift[:, None] + arms + inward + lift


def touching_cube(cfg: ExpertConfig, tips_m: torch.Tensor, cube_pos_m: torch.Tensor,
                  cube_quat: torch.Tensor) -> torch.Tensor:
    """(N,) whether every fingertip's rounded end is within cfg.touching_m of the cube."""
    return (surface_distance_m(tips_m, cube_pos_m, cube_quat) - TIP_CLEARANCE_M < cfg.touching_m).all(dim=-1)


def expert_action(
    cfg: ExpertConfig, state: SimState, goal_pos_m: torch.Tensor, goal_quat: torch.Tensor, cube_mass_kg: torch.Tensor,
    torque_limit_nm: torch.Tensor, resting_height_m: torch.Tensor, action_scale_nm: float,
) -> torch.Tensor:
    """(N, 9) the controller's action in the policy's units (torque / action_scale_nm, within [-1, 1]) for the true
    state, given each env's cube mass (N,), motor torque limits (N, 9) and the cube's resting height (N,)."""
    s = state
    tips = s.fingertip_pos_m
    carry_quat, releasing = goal_quat, None
    if cfg.flip.enabled:  # off by default: the teacher's hot path skips it
        tipping, tip_pos, tip_quat, releasing, raising = flip_phase(cfg.flip, s.cube_pos_m, s.cube_quat_xyzw,
                                                                    goal_quat, resting_height_m)
        goal_pos_m = torch.where(tipping[:, None], tip_pos, goal_pos_m)
        goal_quat = torch.where(tipping[:, None], tip_quat, goal_quat)
        carry_quat = torch.where(raising[:, None], s.cube_quat_xyzw, goal_quat)
    targets = tip_targets(cfg, tips, s.cube_pos_m, s.cube_quat_xyzw, s.cube_linvel_mps, goal_pos_m, goal_quat,
                          carry_quat)
    pivoting = None
    if cfg.pivot.enabled:  # off by default, like the tipping
        pivoting, face, falling = pivot_face(cfg.pivot, s.cube_pos_m, s.cube_quat_xyzw, goal_quat, resting_height_m)
        releasing = falling if releasing is None else releasing | falling
        if pivoting.any():
            pivoted, feasible = pivot_targets(cfg, tips, s.cube_pos_m, s.cube_quat_xyzw, face)
            pivoting = pivoting & feasible
            targets = torch.where(pivoting[:, None, None], pivoted, targets)
    touching = touching_cube(cfg, tips, s.cube_pos_m, s.cube_quat_xyzw)
    if cfg.gather.enabled:  # off by default
        far, gathered = gather_phase(cfg.gather, tips, s.cube_pos_m, s.cube_quat_xyzw, resting_height_m,
                                     approach_directions(tips), cfg.reach_margin_rad)
        far = far & ~touching  # a grasp under way goes on
        targets = torch.where(far[:, None, None], gathered, targets)
    normals = held_face_normals(tips, s.cube_pos_m, s.cube_quat_xyzw)
    if releasing is not None:
        targets = torch.where(releasing[:, None, None], tips + cfg.max_pull_m * normals, targets)
    tip_force = cfg.stiffness_npm * (targets - tips) - cfg.damping_nspm * s.fingertip_linvel_mps  # (N, 3, 3)
    jac = fk.fingertip_jacobians(s.joint_pos_rad)  # (N, 3 fingers, 3 xyz, 3 joints)
    gravity = fk.gravity_torques(s.joint_pos_rad)
    held = touching & (
        s.cube_pos_m[:, 2] > resting_height_m + cfg.hold_above_rest_m)
    if releasing is not None:
        held = held & ~releasing
    if pivoting is not None:
        held = held & ~pivoting
    if held.any():
        wrench = cube_wrench(cfg.hold, s.cube_pos_m, s.cube_quat_xyzw, s.cube_linvel_mps, s.cube_angvel_radps,
                             goal_pos_m, carry_quat)
        pressed = hold_forces(cfg.hold, tips, normals, wrench, cube_mass_kg, jac, gravity, torque_limit_nm,
                              s.cube_pos_m, s.cube_quat_xyzw)
        tip_force = torch.where(held[:, None, None], pressed, tip_force)
    torque = (jac.transpose(-1, -2) @ tip_force[..., None]).squeeze(-1).reshape(-1, tp.NUM_JOINTS) + gravity
    return (torque / action_scale_nm).clamp(-1.0, 1.0)
