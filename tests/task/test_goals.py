"""Goals and initial poses follow the RRC's move_cube levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trifinger_s2r.task import goals
from trifinger_s2r.task.geometry import rotation_angle_between


class TestGoalLevels:
    @pytest.mark.parametrize("level", goals.LEVELS)
    def test_goals_pass_trifinger_simulation_validation(self, level, generator):
        """Every sampled goal passes move_cube.validate_goal (inside the arena, 0.0325-0.1 m, no corner below 0)."""
        from trifinger_simulation.tasks import move_cube

        pos, quat = goals.sample_goal(level, 500, generator)
        # float32 0.0325 is 2e-9 below the validator's strict bound: compare at 1 um.
        for p, q in zip(np.round(pos.double().numpy(), 6), quat.double().numpy()):
            move_cube.validate_goal(move_cube.Pose(p, q / np.linalg.norm(q)))

    def test_level_1_is_on_the_table_without_rotation(self, generator):
        pos, quat = goals.sample_goal(1, 200, generator)
        np.testing.assert_allclose(pos[:, 2], 0.0325)
        np.testing.assert_allclose(quat, torch.tensor([[0, 0, 0, 1.0]]).expand(200, 4))
        assert pos[:, :2].norm(dim=-1).max() <= goals.MAX_COM_DISTANCE_M + 1e-6
        assert pos[:, :2].norm(dim=-1).max() > 0.1  # the disc is used, not a point

    def test_level_2_is_the_fixed_point(self, generator):
        pos, _ = goals.sample_goal(2, 3, generator)
        np.testing.assert_allclose(pos, torch.tensor([[0, 0, 0.0825]]).expand(3, 3), atol=1e-7)

    def test_level_3_heights_span_the_range(self, generator):
        pos, _ = goals.sample_goal(3, 500, generator)
        assert pos[:, 2].min() >= 0.0325 and pos[:, 2].max() <= 0.1
        assert pos[:, 2].max() - pos[:, 2].min() > 0.05

    def test_level_4_orientations_are_spread_over_so3(self, generator):
        pos, quat = goals.sample_goal(4, 2000, generator)
        assert pos[:, 2].min() >= 0.065 * 3**0.5 / 2 - 1e-6
        angles = rotation_angle_between(quat, torch.tensor([[0, 0, 0, 1.0]]).expand(2000, 4))
        # uniform rotations: P(angle < pi/2) = (pi/2 - 1)/pi = 0.182
        assert 0.15 < (angles < np.pi / 2).float().mean() < 0.22

    def test_initial_pose_rests_on_a_face(self, generator):
        """Initial poses are level -1: on the table with one face down (a corner at z = 0)."""
        from trifinger_s2r.task.geometry import keypoints

        pos, quat = goals.sample_initial_pose(100, generator)
        np.testing.assert_allclose(keypoints(pos, quat)[..., 2].min(dim=1).values, 0.0, atol=1e-6)

    def test_unknown_level_names_the_valid_ones(self, generator):
        with pytest.raises(ValueError, match=r"valid levels: \[-1, 1, 2, 3, 4\]"):
            goals.sample_goal(5, 1, generator)
