"""Reward terms, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trifinger_s2r.task import rewards
from trifinger_s2r.task.config import RewardWeights
from trifinger_s2r.task.geometry import keypoints

IDENTITY = torch.tensor([[0.0, 0.0, 0.0, 1.0]])


class TestKernel:
    def test_lgsk_peak_and_half_height(self):
        """lgsk(0; a, 2) = 0.25 and it halves at acosh(3)/a (0.0588 m for a = 30)."""
        assert float(rewards.lgsk(torch.tensor(0.0), 30, 2)) == 0.25
        half = torch.tensor(math.acosh(3) / 30)
        np.testing.assert_allclose(float(rewards.lgsk(half, 30, 2)), 0.125, rtol=1e-5)


class TestTerms:
    def test_finger_movement_is_summed_squared_tip_speed(self):
        prev = torch.zeros(1, 3, 3)
        now = prev.clone()
        now[0, 0, 0] = 0.002  # 2 mm in 20 ms = 0.1 m/s
        np.testing.assert_allclose(rewards.finger_movement(now, prev, 0.02), [0.01], rtol=1e-5)

    def test_finger_reach_is_the_change_in_summed_distance(self):
        prev_tips = torch.tensor([[[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]])
        tips = prev_tips * 0.5
        cube = torch.zeros(1, 3)
        np.testing.assert_allclose(rewards.finger_reach(tips, prev_tips, cube, cube), [-0.15], rtol=1e-5)

    def test_keypoint_reward_rises_as_the_cube_nears_the_goal(self):
        goal_kp = keypoints(torch.tensor([[0.0, 0.0, 0.05]]), IDENTITY)
        values = [
            float(rewards.keypoint_pose(keypoints(torch.tensor([[d, 0.0, 0.05]]), IDENTITY), goal_kp, 0.02))
            for d in (0.2, 0.1, 0.05, 0.02, 0.0)
        ]
        assert values == sorted(values)
        np.testing.assert_allclose(values[-1], 0.02 * 0.25, rtol=1e-6)

    def test_orientation_term_prefers_smaller_rotation_errors(self):
        near = torch.tensor([[0.0, 0.0, math.sin(0.05), math.cos(0.05)]])
        far = torch.tensor([[0.0, 0.0, math.sin(0.5), math.cos(0.5)]])
        assert rewards.object_orientation(near, IDENTITY, 0.02, 3.0) > rewards.object_orientation(far, IDENTITY, 0.02, 3.0)


class TestCombination:
    def _call(self, reward_type: str, total_env_steps: int = 0):
        tips = torch.rand(2, 3, 3)
        pos = torch.rand(2, 3)
        quat = IDENTITY.expand(2, 4)
        return rewards.compute_rewards(
            reward_type, RewardWeights(), 0.02, total_env_steps, tips, tips * 0.9, pos, pos, quat, pos, quat,
            keypoints(pos, quat), keypoints(pos, quat),
        )

    def test_terms_are_named_and_summed(self):
        total, terms = self._call("keypoints")
        assert set(terms) == {"finger_movement", "finger_reach", "keypoint_pose"}
        np.testing.assert_allclose(total, sum(terms.values()), rtol=1e-6)
        _, pq_terms = self._call("pq")
        assert set(pq_terms) == {"finger_movement", "finger_reach", "object_position", "object_orientation"}

    def test_reach_term_switches_off_after_its_budget(self):
        _, terms = self._call("keypoints", total_env_steps=int(1e8))
        assert torch.all(terms["finger_reach"] == 0)

    def test_cube_turning_penalises_the_cube_angular_speed_when_weighted(self):
        from dataclasses import replace

        pos, quat = torch.zeros(2, 3), IDENTITY.expand(2, 4)
        angvel = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])  # still, and turning at 5 rad/s
        args = ("keypoints", replace(RewardWeights(), cube_turning=-10.0), 0.02, 0, torch.zeros(2, 3, 3),
                torch.zeros(2, 3, 3), pos, pos, quat, pos, quat, keypoints(pos, quat), keypoints(pos, quat))
        _, terms = rewards.compute_rewards(*args, cube_angvel_radps=angvel)
        np.testing.assert_allclose(terms["cube_turning"], [0.0, -10.0 * 0.02 * 5.0], rtol=1e-6)
        assert "cube_turning" not in self._call("keypoints")[1]  # off by default: the paper's reward


class TestKeypointScale:
    @staticmethod
    def _pose_reward(scale: float, cube_pos: torch.Tensor, cube_quat: torch.Tensor) -> float:
        goal_pos = torch.tensor([[0.0, 0.0, 0.1]])
        weights = RewardWeights(keypoint_scale=scale)
        tips = torch.zeros(1, 3, 3)
        _, terms = rewards.compute_rewards(
            "keypoints", weights, 0.02, 0, tips, tips, cube_pos, cube_pos, cube_quat, goal_pos, IDENTITY,
            keypoints(cube_pos, cube_quat), keypoints(goal_pos, IDENTITY),
        )
        return float(terms["keypoint_pose"])

    def test_a_larger_scale_sharpens_orientation_and_leaves_translation_alone(self):
        turned = torch.tensor([[0.0, 0.0, math.sin(0.2), math.cos(0.2)]])  # 0.4 rad about z
        at_goal, shifted = torch.tensor([[0.0, 0.0, 0.1]]), torch.tensor([[0.02, 0.0, 0.1]])
        assert self._pose_reward(2.0, at_goal, turned) < self._pose_reward(1.0, at_goal, turned)
        np.testing.assert_allclose(self._pose_reward(2.0, shifted, IDENTITY), self._pose_reward(1.0, shifted, IDENTITY),
                                   rtol=1e-6)
        np.testing.assert_allclose(self._pose_reward(2.0, at_goal, IDENTITY), 2000 * 0.02 * 0.25, rtol=1e-6)

    def test_scaled_corners_lie_scale_times_as_far_from_the_centre(self):
        pos = torch.tensor([[0.1, -0.05, 0.2]])
        kp = keypoints(pos, IDENTITY)
        scaled = rewards.scaled_keypoints(kp, pos, 1.5)
        np.testing.assert_allclose((scaled - pos.unsqueeze(1)).norm(dim=-1), 1.5 * (kp - pos.unsqueeze(1)).norm(dim=-1),
                                   rtol=1e-6)

    def test_a_non_positive_scale_is_refused_by_name(self):
        with pytest.raises(ValueError, match="rewards.keypoint_scale"):
            RewardWeights(keypoint_scale=0.0)
