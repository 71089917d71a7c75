"""Quaternions and keypoints."""

from __future__ import annotations

import math

import numpy as np
import torch

from trifinger_s2r.task import geometry as g


class TestKeypoints:
    def test_identity_pose_keypoints_are_the_cube_corners(self):
        """At the identity pose the 8 keypoints are (+-0.0325, +-0.0325, +-0.0325), in the reference's order."""
        kp = g.keypoints(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 0.0, 1.0]]))[0]
        h = 0.0325
        expected = [[h, h, h], [-h, h, h], [h, -h, h], [-h, -h, h], [h, h, -h], [-h, h, -h], [h, -h, -h], [-h, -h, -h]]
        np.testing.assert_allclose(kp, expected, atol=1e-7)

    def test_keypoints_match_trifinger_simulation_corners(self, generator):
        """For random poses our keypoints are the same point set as move_cube.get_cube_corner_positions."""
        from trifinger_simulation.tasks import move_cube

        pos = torch.rand(5, 3, generator=generator) * 0.1
        quat = g.random_quat(5, generator)
        ours = g.keypoints(pos, quat).numpy()
        for i in range(5):
            theirs = move_cube.get_cube_corner_positions(move_cube.Pose(pos[i].numpy(), quat[i].numpy()))
            np.testing.assert_allclose(np.sort(ours[i], axis=0), np.sort(theirs, axis=0), atol=1e-6)

    def test_translation_moves_every_keypoint(self):
        identity = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
        shift = torch.tensor([[0.1, -0.05, 0.02]])
        diff = g.keypoints(shift, identity) - g.keypoints(torch.zeros(1, 3), identity)
        np.testing.assert_allclose(diff[0], shift.expand(8, 3), atol=1e-7)


class TestQuaternions:
    def test_rotation_angle_of_a_quarter_yaw(self):
        q = g.quat_from_yaw(torch.tensor([math.pi / 2]))
        angle = g.rotation_angle_between(q, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
        np.testing.assert_allclose(angle, [math.pi / 2], atol=1e-6)

    def test_angle_ignores_quaternion_sign(self, generator):
        q = g.random_quat(10, generator)
        np.testing.assert_allclose(g.rotation_angle_between(q, -q), 0.0, atol=1e-3)

    def test_rotate_matches_matrix(self, generator):
        q = g.random_quat(10, generator)
        v = torch.randn(10, 3, generator=generator)
        np.testing.assert_allclose(g.quat_rotate(q, v), (g.quat_to_matrix(q) @ v.unsqueeze(-1)).squeeze(-1), atol=1e-5)

    def test_continuous_sign_flips_to_the_reference_hemisphere(self):
        q = torch.tensor([[0.0, 0.0, 0.1, -0.995]])
        ref = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
        assert g.continuous_sign(q, ref)[0, 3] > 0
