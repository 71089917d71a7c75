"""The teacher's gather: a far cube on the table is dragged in by one finger pressing on its top; nothing else is."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task import expert as ex
from trifinger_s2r.task import finger_kinematics as fk
from trifinger_s2r.task.gather import (
    GatherConfig,
    dragging_finger,
    extent_m,
    gather_phase,
    outward_directions,
    press_points,
)
from trifinger_s2r.task.geometry import quat_from_yaw
from trifinger_s2r.train.config import LEVEL_4_TASK

CFG = GatherConfig(enabled=True)


def _home_tips(n: int) -> torch.Tensor:
    home = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD), dtype=torch.float32)[None].expand(n, 9)
    return fk.fingertip_positions(home)


def _phase(cube_pos: torch.Tensor, yaw: float = 0.0, tips: torch.Tensor | None = None):
    n = len(cube_pos)
    quat = quat_from_yaw(torch.full((n,), yaw))
    tips = _home_tips(n) if tips is None else tips
    return gather_phase(CFG, tips, cube_pos, quat, torch.full((n,), cube.HALF_EDGE_M), ex.approach_directions(tips),
                        0.05)


def test_the_extent_is_half_an_edge_face_on_and_half_a_diagonal_corner_on():
    x = torch.tensor([[1.0, 0.0, 0.0]])
    assert extent_m(quat_from_yaw(torch.tensor([0.0])), x).item() == pytest.approx(cube.HALF_EDGE_M)
    assert extent_m(quat_from_yaw(torch.tensor([math.pi / 4])), x).item() == pytest.approx(
        cube.HALF_EDGE_M * math.sqrt(2), rel=1e-5)


def test_only_far_cubes_on_the_table_are_gathered():
    """Beyond radius_m on the table: gathered; nearer, or lifted: not."""
    far_flat = torch.tensor([[0.15, 0.0, cube.HALF_EDGE_M], [-0.1, 0.1, cube.HALF_EDGE_M]])
    near = torch.tensor([[0.05, 0.0, cube.HALF_EDGE_M]])
    lifted = torch.tensor([[0.15, 0.0, cube.HALF_EDGE_M + 0.03]])
    active, _ = _phase(torch.cat([far_flat, near, lifted]))
    assert active.tolist() == [True, True, False, False]


def test_one_finger_rises_then_goes_over_the_cube_while_the_others_clear_it():
    """From home, the finger best aligned with the cube's side rises first (its tip is below the hover height and
    away from the press point); the other two aim at the clear height; no target is farther than max_pull_m."""
    angle = math.atan2(0.061, 0.086)  # finger 0's home fingertip direction
    pos = torch.tensor([[0.15 * math.cos(angle), 0.15 * math.sin(angle), cube.HALF_EDGE_M]])
    tips = _home_tips(1)
    _, targets = _phase(pos, tips=tips)
    assert targets[0, 0, 2] > tips[0, 0, 2]  # up
    assert torch.allclose(targets[0, 0, :2], tips[0, 0, :2], atol=1e-6)  # straight up first
    assert torch.all(targets[0, 1:, 2] > tips[0, 1:, 2])
    assert ((targets - tips).norm(dim=-1) <= CFG.max_pull_m + 1e-6).all()


def test_a_tip_on_the_top_presses_down_and_pulls_towards_the_centre():
    pos = torch.tensor([[0.15, 0.0, cube.HALF_EDGE_M]])
    tips = _home_tips(1).clone()
    press = press_points(CFG, pos, quat_from_yaw(torch.zeros(1)))
    finger, feasible = dragging_finger(press, outward_directions(pos), ex.approach_directions(tips), 0.05)
    finger = int(finger)
    assert feasible.item()
    tips[0, finger] = torch.tensor([0.16, 0.0, 2 * cube.HALF_EDGE_M + 0.008])
    active, targets = _phase(pos, tips=tips)
    pull = targets[0, finger] - tips[0, finger]
    assert active.item() and pull[0] < -0.02 and pull[2] < -0.02


def _nearest_radius(cfg: ex.ExpertConfig, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Level 4 in MuJoCo from seeded table starts, the teacher acting: (start radius, nearest radius) per env."""
    task = dataclasses.replace(LEVEL_4_TASK, episode_length_steps=1000, grasp_start_share=0.0)
    env = ReposeEnv(EnvConfig(num_envs=64, seed=3, num_threads=1, task=task))
    start = env.state.cube_pos_m[:, :2].norm(dim=-1)
    nearest = start.clone()
    for _ in range(steps):
        s = env.state
        env.step(ex.expert_action(cfg, s, env.goal_pos_m, env.goal_quat, env.params.cube_mass_kg,
                                  env.params.torque_limit_nm, env.resting_height_m(), env.task.torque_limit_nm))
        nearest = torch.minimum(nearest, env.state.cube_pos_m[:, :2].norm(dim=-1))
    return start, nearest


def test_far_cubes_are_dragged_in_by_the_teacher():
    """Of the cubes that start beyond 12.5 cm, at least three quarters come 2 cm nearer the centre within 3 s with
    the gather, more than without it."""
    gather = ex.expert_with(ex.ExpertConfig(), ["gather.enabled=true", "gather.radius_m=0.12"])
    start, nearest = _nearest_radius(gather, 150)
    _, nearest_without = _nearest_radius(ex.ExpertConfig(), 150)
    far = start > 0.125
    assert far.sum() >= 6
    moved = (nearest[far] < start[far] - 0.02).float().mean()
    assert moved >= 0.75
    assert moved > (nearest_without[far] < start[far] - 0.02).float().mean()


def test_bad_gather_settings_name_the_field():
    with pytest.raises(ValueError, match="expert.gather.radius_m"):
        GatherConfig(radius_m=0.0)
    with pytest.raises(ValueError, match="push_in_m"):
        GatherConfig(push_in_m=0.2)
