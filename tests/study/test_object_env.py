"""The object env: the policy is given the nominal cube's keypoints at the object's pose; starts and goals follow the
object's size."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from trifinger_s2r.envs.repose_env import CUBE_DROP_HEIGHT_M, EnvConfig
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.objects import variant
from trifinger_s2r.study.object_env import ObjectEnv, arena_scale, goal_positions, start_positions, start_quats
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.geometry import keypoints, quat_rotate


def _env(obj: str, num_envs: int = 4, level: int = 1) -> ObjectEnv:
    task = TaskConfig(level=level, episode_length_steps=20)
    task = dataclasses.replace(task, randomization=dataclasses.replace(task.randomization, enabled=False))
    return ObjectEnv(EnvConfig(num_envs=num_envs, num_threads=1, task=task), obj)


class TestObservedKeypoints:
    @pytest.mark.parametrize("obj", ["cube_x2", "cuboid", "sphere"])
    def test_policy_sees_the_nominal_cube_keypoints_at_the_object_pose(self, obj):
        """The actor observation is O-KP of the object's pose with the 6.5 cm cube's corners, not the object's."""
        env = _env(obj)
        env.step(torch.zeros(env.num_envs, 9))
        state, actor = env.state, env.get_observations()["policy"]
        nominal = keypoints(state.cube_pos_m, state.cube_quat_xyzw, cube.EDGE_M)
        expected = obs_fn.actor_observation("keypoints", state.joint_pos_rad, state.joint_vel_radps, state.cube_pos_m,
                                            state.cube_quat_xyzw, env.goal_pos_m, state.cube_quat_xyzw,
                                            env.last_action, nominal)
        torch.testing.assert_close(actor, expected.clamp(-obs_fn.OBS_CLIP, obs_fn.OBS_CLIP))
        if obj == "cube_x2":  # the object's own corners would be a different observation
            own = keypoints(state.cube_pos_m, state.cube_quat_xyzw, 2 * cube.EDGE_M)
            other = obs_fn.actor_observation("keypoints", state.joint_pos_rad, state.joint_vel_radps,
                                             state.cube_pos_m, state.cube_quat_xyzw, env.goal_pos_m,
                                             state.cube_quat_xyzw, env.last_action, own)
            assert (actor[:, 18:42] - other[:, 18:42]).abs().max() > 0.05


class TestPoseRules:
    @pytest.mark.parametrize("obj", ["cube_x0.5", "cube_x2", "cuboid", "sphere"])
    def test_episodes_start_resting_and_on_table_goals_lie_at_the_resting_height(self, obj):
        env = _env(obj)
        height = variant(obj).resting_height_m
        torch.testing.assert_close(env.state.cube_pos_m[:, 2], torch.full((4,), height + CUBE_DROP_HEIGHT_M),
                                   atol=2e-4, rtol=0)
        torch.testing.assert_close(env.goal_pos_m[:, 2], torch.full((4,), height))

    def test_x2_cube_starts_at_the_centre_and_its_goals_stay_inside_the_wall(self):
        """(R - r_x2) / (R - r_cube) = (0.195 - 0.1126) / (0.195 - 0.0563) = 0.594 of the cube's goal radius."""
        x2 = variant("cube_x2")
        assert arena_scale(x2) == pytest.approx((tp.ARENA_RADIUS_M - 2 * cube.CIRCUMRADIUS_M)
                                                / (tp.ARENA_RADIUS_M - cube.CIRCUMRADIUS_M))
        far = torch.tensor([[0.1387, 0.0, 0.0325]])
        assert goal_positions(x2, 1, far)[0, 0] == pytest.approx(0.1387 * arena_scale(x2))
        assert goal_positions(x2, 1, far)[0, 0] + 2 * cube.CIRCUMRADIUS_M <= tp.ARENA_RADIUS_M + 1e-6
        assert start_positions(x2, far)[0, :2].abs().max() == 0.0
        assert start_positions(variant("sphere"), far)[0, 0] == pytest.approx(0.1387)

    def test_goals_in_the_air_are_raised_to_the_resting_height_only_where_lower(self):
        goals = torch.tensor([[0.0, 0.0, 0.04], [0.0, 0.0, 0.09]])
        assert goal_positions(variant("cube_x2"), 4, goals)[:, 2].tolist() == pytest.approx([0.065, 0.09])

    def test_cuboid_starts_lying_on_a_long_side(self):
        """Its long (body y) axis stays horizontal for every start orientation."""
        generator = torch.Generator().manual_seed(0)
        quats = start_quats(variant("cuboid"), torch.zeros(64, 4), generator)
        long_axis = quat_rotate(quats, torch.tensor([0.0, 1.0, 0.0]).expand(64, 3))
        assert long_axis[:, 2].abs().max() < 1e-6
        assert quats.norm(dim=-1).sub(1).abs().max() < 1e-6
        yaw = torch.atan2(long_axis[:, 1], long_axis[:, 0])
        assert yaw.max() - yaw.min() > math.pi  # yaws spread over the circle

    def test_cuboid_start_quats_keep_the_callers_dtype(self):
        """The PyBullet runs pass move_cube's float64 orientations."""
        quats = start_quats(variant("cuboid"), torch.zeros(3, 4, dtype=torch.float64), torch.Generator().manual_seed(1))
        assert quats.dtype == torch.float64
        assert quats.norm(dim=-1).sub(1).abs().max() < 1e-6

    def test_object_env_refuses_training_only_starts(self):
        task = TaskConfig(level=4, grasp_start_share=0.5)
        with pytest.raises(ValueError, match="for_evaluation"):
            ObjectEnv(EnvConfig(num_envs=1, num_threads=1, task=task), "sphere")
