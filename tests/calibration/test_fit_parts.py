"""The replay's Bullet-style link damping opposes motion; the robust loss's weights and the window bootstrap give
the textbook answers on problems whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trifinger_s2r.calibration.fit import FitConfig, _bootstrap_spread, _loss_weights
from trifinger_s2r.calibration.replay import ReplayConfig, _LinkDamping
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.timing import ROBOT_RATE_HZ, Timing


def _moving_backend(joint_vel: np.ndarray) -> MujocoCpuBackend:
    backend = MujocoCpuBackend(1, Timing(ROBOT_RATE_HZ, ROBOT_RATE_HZ), num_threads=1)
    home = torch.tensor([tp.per_finger(tp.HOME_POSE_RAD)], dtype=torch.float32)
    backend.reset(torch.tensor([0]), home, torch.tensor([[0.0, 0.0, 0.0325]]), torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    backend.batch.bind("qvel")[0, : tp.NUM_JOINTS] = joint_vel
    backend.batch.forward()
    return backend


class TestLinkDamping:
    def test_the_damping_wrench_does_negative_work_on_moving_links(self):
        """Joints moving at 2 rad/s: each finger link's damping force and torque oppose its velocity (negative
        power), and the joint-space effect opposes the joint velocity."""
        vel = np.full(tp.NUM_JOINTS, 2.0)
        backend = _moving_backend(vel)
        damping = _LinkDamping(backend)
        damping.apply(0.5)
        xfrc = damping._xfrc[0, damping.links]
        assert len(damping.links) == 9
        cvel = damping._cvel[0, damping.links]
        lever = damping._xipos[0, damping.links] - damping._subtree_com[0, damping.roots]
        linear = cvel[:, 3:] + np.cross(cvel[:, :3], lever)
        power = np.sum(xfrc[:, :3] * linear, axis=1) + np.sum(xfrc[:, 3:] * cvel[:, :3], axis=1)
        assert np.all(power < 0)
        before = backend.state().joint_vel_radps.numpy().copy()
        backend.step(torch.zeros(1, tp.NUM_JOINTS))
        with_damping = backend.state().joint_vel_radps.numpy()
        free = _moving_backend(vel)
        free.step(torch.zeros(1, tp.NUM_JOINTS))
        assert np.sum((with_damping - free.state().joint_vel_radps.numpy()) * before) < 0

    def test_a_resting_robot_feels_none(self):
        """At rest the wrench is zero."""
        backend = _moving_backend(np.zeros(tp.NUM_JOINTS))
        damping = _LinkDamping(backend)
        damping.apply(0.5)
        assert np.abs(damping._xfrc[0]).max() == pytest.approx(0.0, abs=1e-12)

    def test_a_negative_damping_is_refused(self):
        with pytest.raises(ValueError, match="link_damping_per_s"):
            ReplayConfig(link_damping_per_s=-0.1)

    def test_a_window_shorter_than_a_camera_period_is_refused(self):
        """It would hold no camera frame to compare the cube with (it crashed inside make_windows before)."""
        with pytest.raises(ValueError, match="at least one camera period"):
            ReplayConfig(window_steps=60)
        assert ReplayConfig(window_steps=100).window_steps == 100


class TestReplayContactModel:
    def test_the_replay_simulates_with_the_configured_friction_cone(self):
        """A replay configured for stiff friction simulates with the elliptic cone and impratio 10 (the default: the
        scene's pyramidal cone); a bad cone is refused by name."""
        import mujoco

        from trifinger_s2r.calibration.replay import Replayer, Windows

        home = np.array([tp.per_finger(tp.HOME_POSE_RAD)])
        window = Windows(joint_pos0_rad=home, joint_vel0_radps=np.zeros((1, 9)), cube_pos0_m=np.array([[0, 0, 0.0325]]),
                         cube_quat0_xyzw=np.array([[0.0, 0.0, 0.0, 1.0]]), cube_vel0_mps=np.zeros((1, 3)),
                         torque_nm=np.zeros((1, 300, 9)),
                         joint_pos_rad=np.zeros((1, 15, 9)), joint_vel_radps=np.zeros((1, 15, 9)),
                         cube_pos_m=np.zeros((1, 3, 3)), cube_moved=np.array([False]),
                         cube_held=np.array([False]))
        stiff = Replayer(window, 1, ReplayConfig(friction_cone="elliptic", impratio=10.0), num_threads=1)
        assert stiff.backend.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and stiff.backend.model.opt.impratio == 10
        soft = Replayer(window, 1, ReplayConfig(), num_threads=1)
        assert soft.backend.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
        with pytest.raises(ValueError, match="unknown friction cone 'cubic'"):
            ReplayConfig(friction_cone="cubic")


class TestRobustLossAndBootstrap:
    def test_soft_l1_weights(self):
        """rho'(z) of soft_l1: 1 at zero residual, 1/sqrt(2) at the scale, about C/|f| far out."""
        w = _loss_weights(np.array([0.0, 3.0, 300.0]), "soft_l1", 3.0)
        assert w == pytest.approx([1.0, 1 / np.sqrt(2), 3.0 / np.sqrt(300.0**2 + 9)])
        assert _loss_weights(np.array([5.0]), "linear", 3.0) == pytest.approx([1.0])

    def test_the_bootstrap_of_a_mean_is_its_standard_error(self):
        """One parameter, one residual per window (r_i = x - y_i, prior row weightless): the bootstrap spread of the
        fitted x is std(y)/sqrt(n) within 15%."""
        rng = np.random.default_rng(1)
        n = 400
        y = rng.normal(0.0, 2.0, n)
        fun = np.r_[y.mean() - y, 0.0]
        jac = np.ones((n + 1, 1))
        weights = np.r_[np.ones(n), 0.0]
        window_of_row = np.r_[np.arange(n), -1]
        spread = _bootstrap_spread(jac, fun, weights, window_of_row, n, np.zeros(1), (np.full(1, -1e9),
                                   np.full(1, 1e9)), np.ones(1), FitConfig(bootstrap_samples=400))
        assert spread[0] == pytest.approx(y.std() / np.sqrt(n), rel=0.15)


class TestFrictionStarts:
    @pytest.mark.parametrize("starts, message", [((), "at least one start"), ((1.0, 2.5), "2.5 is outside")])
    def test_bad_starts_are_refused_by_name(self, starts, message):
        with pytest.raises(ValueError, match=f"finger_cube_friction_starts.*{message}|{message}"):
            FitConfig(finger_cube_friction_starts=starts)
