"""The object-level wrench controller: the contact forces it asks for, and that in MuJoCo it turns a held cube."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.robot import cube
from trifinger_s2r.task import expert as ex
from trifinger_s2r.task import finger_kinematics as fk
from trifinger_s2r.task import grasp_forces as gf
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_mul, rotation_angle_between

GAINS = gf.HoldGains()
STIFF = {"friction_cone": "elliptic", "impratio": 10.0}


def _opposing_grasp(n: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tips (n, 3, 3) of a lone finger on the cube's +x face and two on its -x face, their outward normals, and the
    cube's pose (at 6 cm, unrotated)."""
    pos = torch.tensor([[0.0, 0.0, 0.06]]).expand(n, 3)
    quat = torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(n, 4)
    reach = cube.HALF_EDGE_M + ex.TIP_CLEARANCE_M
    local = torch.tensor([[reach, 0.0, 0.0], [-reach, 0.018, 0.0], [-reach, -0.018, 0.0]])
    normals = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    return pos[:, None] + local, normals.expand(n, 3, 3), pos, quat


def _wrench_of(forces: torch.Tensor, tips: torch.Tensor, pos: torch.Tensor, quat: torch.Tensor) -> torch.Tensor:
    arms = gf.surface_points(tips, pos, quat) - pos[:, None]
    return torch.cat([forces.sum(1), torch.cross(arms, forces, dim=-1).sum(1)], dim=-1)


def _no_motor_limits(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Jacobians and gravity torques that never bind (zero), and a torque limit."""
    return torch.zeros(n, 3, 3, 3), torch.zeros(n, 9), torch.full((n, 9), 0.396)


def test_the_forces_carry_the_weight_and_the_wrench_inside_the_friction_cones():
    tips, normals, pos, quat = _opposing_grasp()
    mass = torch.tensor([0.094])
    wrench = torch.tensor([[0.2, -0.1, 0.1, 0.002, -0.003, 0.004]])
    forces = gf.hold_forces(GAINS, tips, normals, wrench, mass, *_no_motor_limits(1), pos, quat)
    expected = wrench.clone()
    expected[0, 2] += 0.094 * gf.GRAVITY_MPS2
    torch.testing.assert_close(_wrench_of(forces, tips, pos, quat), expected, atol=1e-5, rtol=0)
    normal = -(forces * normals).sum(-1)
    tangential = (forces + normal[..., None] * normals).norm(dim=-1)
    assert (normal > 0).all() and (tangential <= GAINS.friction_margin * normal + 1e-6).all()


def test_the_squeeze_is_the_smallest_level_that_meets_the_cone():
    tips, normals, pos, quat = _opposing_grasp()
    light, heavy = (gf.hold_forces(GAINS, tips, normals, torch.zeros(1, 6), torch.tensor([m]), *_no_motor_limits(1),
                                   pos, quat) for m in (0.02, 0.2))
    squeeze = [float(-(f[0, 0] * normals[0, 0]).sum()) for f in (light, heavy)]
    assert squeeze[0] < squeeze[1]  # a heavier cube needs a firmer grip against slipping


def test_the_pull_is_scaled_down_to_keep_the_motors_within_their_limit():
    tips, normals, pos, quat = _opposing_grasp()
    joint_pos = torch.tensor([[0.0, 0.9, -1.7] * 3])
    jac, gravity = fk.fingertip_jacobians(joint_pos), fk.gravity_torques(joint_pos)
    mass = torch.tensor([0.094])
    huge = torch.tensor([[30.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    forces = gf.hold_forces(GAINS, tips, normals, huge, mass, jac, gravity, torch.full((1, 9), 0.396), pos, quat)
    torque = (jac.transpose(-1, -2) @ forces[..., None]).squeeze(-1).reshape(1, 9) + gravity
    assert (torque.abs() <= GAINS.torque_margin * 0.396 + 1e-6).all()
    achieved = _wrench_of(forces, tips, pos, quat)
    assert 0.0 <= float(achieved[0, 0]) < 30.0  # part of the pull, in its direction
    assert abs(float(achieved[0, 2]) - 0.094 * gf.GRAVITY_MPS2) < 1e-4  # the weight is always carried


def test_the_pd_wrench_points_at_the_target_pose():
    pos, quat = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    target_quat = quat_from_axis_angle(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0.3]))
    wrench = gf.cube_wrench(GAINS, pos, quat, torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[0.1, 0.0, 0.0]]),
                            target_quat)
    torch.testing.assert_close(wrench[0, :3], torch.tensor([GAINS.position_npm * GAINS.max_position_error_m, 0, 0]))
    torch.testing.assert_close(wrench[0, 3:], torch.tensor([0.0, GAINS.rotation_nmprad * 0.3, 0.0]), atol=1e-6,
                               rtol=1e-5)


def _turn_held_cubes(axis_world: torch.Tensor, angle_rad: float, steps: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    """From cached grasps, ask the teacher to turn each held cube by angle_rad about axis_world (N, 3) in place;
    returns the final orientation error and whether the cube is still up."""
    task = dataclasses.replace(TaskConfig(level=4, episode_length_steps=1000, **STIFF), grasp_start_share=0.99)
    env = ReposeEnv(EnvConfig(num_envs=len(axis_world), seed=5, num_threads=1, task=task))
    start = env.state
    env.goal_pos_m[:] = start.cube_pos_m
    env.goal_quat[:] = quat_mul(quat_from_axis_angle(axis_world, torch.full((len(axis_world),), angle_rad)),
                                start.cube_quat_xyzw)
    cfg = ex.ExpertConfig()
    for _ in range(steps):
        s = env.state
        env.step(ex.expert_action(cfg, s, env.goal_pos_m, env.goal_quat, env.params.cube_mass_kg,
                                  env.params.torque_limit_nm, env.resting_height_m(), env.task.torque_limit_nm))
    end = env.state
    return rotation_angle_between(end.cube_quat_xyzw, env.goal_quat), end.cube_pos_m[:, 2] > 0.045


@pytest.mark.parametrize("vertical", [False, True], ids=["tilt", "yaw"])
def test_a_held_cube_is_turned_in_the_grasp(vertical: bool):
    n = 12
    heading = torch.linspace(0.0, 2 * math.pi, n + 1)[:-1]
    axis = torch.stack([heading.cos(), heading.sin(), torch.zeros(n)], dim=-1)
    if vertical:
        axis = torch.tensor([[0.0, 0.0, 1.0]]).expand(n, 3)
    angle = 0.5
    error, up = _turn_held_cubes(axis, angle)
    assert up.float().mean() >= 0.8
    assert (error[up] < 0.3).float().mean() >= 0.7  # from 0.5 rad away, most end within 0.3 rad
