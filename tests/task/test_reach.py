"""The fingertip workspace map (task.reach) and the teacher's use of it: plans a finger cannot carry out lose."""

from __future__ import annotations

import math

import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task import expert as ex
from trifinger_s2r.task import finger_kinematics as fk
from trifinger_s2r.task import reach
from trifinger_s2r.task.geometry import quat_from_yaw


def _random_joints(n: int, low, high, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low_t, high_t = torch.tensor(tp.per_finger(low)), torch.tensor(tp.per_finger(high))
    return low_t + (high_t - low_t) * torch.rand(n, tp.NUM_JOINTS, generator=g)


def test_every_finger_reaches_its_tip_positions_inside_the_soft_limits():
    """Each finger's own fingertip positions at angles inside the limits (less the margin) are reachable: the one
    map of finger 0, turned by each finger's yaw, covers all three fingers."""
    margin = 0.05
    low = tuple(v + margin for v in tp.SOFT_LIMIT_LOWER_RAD)
    high = tuple(v - margin for v in tp.SOFT_LIMIT_UPPER_RAD)
    tips = fk.fingertip_positions(_random_joints(500, low, high))
    assert reach.reachable(tips, margin).all()


def test_points_beyond_the_upper_joints_limit_or_out_of_reach_are_not_reachable():
    """The upper joint alone sets the plane a finger's tip moves in, so a tip at an upper angle past its soft limit
    has no other solution; points farther than the links' length from the holder have none at all."""
    q = torch.tensor(tp.HOME_POSE_RAD).repeat(3)[None].repeat(2, 1)
    q[0, 0::3] = tp.SOFT_LIMIT_LOWER_RAD[0] - 0.3
    q[1, 0::3] = tp.SOFT_LIMIT_UPPER_RAD[0] + 0.3
    assert not reach.reachable(fk.fingertip_positions(q)).any()
    far = torch.tensor([[0.0, 0.0, tp.HOLDER_Z_M - 0.4]]).repeat(3, 1)[None]
    assert not reach.reachable(far).any()
    home = fk.fingertip_positions(torch.tensor(tp.HOME_POSE_RAD).repeat(3)[None])
    assert reach.reachable(home).all()


def test_points_at_the_wall_are_outside_the_arena():
    inside = torch.tensor([[tp.ARENA_RADIUS_M - 0.02, 0.0, 0.03]])
    at_wall = torch.tensor([[0.0, tp.ARENA_RADIUS_M - 0.005, 0.03]])
    assert reach.within_arena(inside, 0.012).all() and not reach.within_arena(at_wall, 0.012).any()


def _cubes_near_the_wall(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    angle = torch.linspace(0.0, 2 * math.pi, n + 1)[:-1]
    radius = 0.13
    pos = torch.stack([radius * angle.cos(), radius * angle.sin(), torch.full_like(angle, cube.HALF_EDGE_M)], dim=-1)
    return pos, quat_from_yaw(angle * 1.7)


def test_the_teacher_prefers_plans_its_fingers_can_carry_out_near_the_wall():
    """For cubes near the wall, the feasibility cost never picks a plan with more infeasible points than the plain
    cost's choice, and picks fewer in some: where a feasible plan exists, it is chosen."""
    pos, quat = _cubes_near_the_wall(48)
    rays = ex.approach_directions(pos)
    home = fk.fingertip_positions(torch.tensor(tp.HOME_POSE_RAD).repeat(3)[None]).expand(len(pos), 3, 3)
    cfg = ex.ExpertConfig()

    def infeasible(plan) -> torch.Tensor:
        contacts, normals, _ = plan
        return ex.infeasibility_cost(cfg, contacts[:, None], normals[:, None])[:, 0] / cfg.infeasible_cost_m

    plain = ex.contact_points(pos, quat, rays, cfg.spread_m, cfg.contact_height_m, home, cfg.plan_geometry_weight_m)
    costed = ex.contact_points(pos, quat, rays, cfg.spread_m, cfg.contact_height_m, home, cfg.plan_geometry_weight_m,
                               plan_cost=lambda c, o: ex.infeasibility_cost(cfg, c, o))
    contacts_all, outward_all, _, _, on_sides = ex._candidate_plans(pos, quat, rays, cfg.spread_m,
                                                                    cfg.contact_height_m, cube.HALF_EDGE_M)
    points = ex.infeasibility_cost(cfg, contacts_all, outward_all) / cfg.infeasible_cost_m
    fewest = torch.where(on_sides, points, torch.inf).min(dim=-1).values
    assert (infeasible(costed) <= infeasible(plain)).all()
    assert (infeasible(costed) < infeasible(plain)).any()
    assert torch.equal(infeasible(costed)[fewest == 0], torch.zeros(int((fewest == 0).sum())))


def test_negative_feasibility_settings_are_refused_by_name():

    for name in ("infeasible_cost_m", "reach_margin_rad"):
        with pytest.raises(ValueError, match=f"expert.{name}"):
            ex.ExpertConfig(**{name: -0.1})
