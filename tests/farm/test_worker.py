"""The worker's between-jobs health check and robot calibrations."""

from __future__ import annotations

import numpy as np

from tests.deploy.fake_frontend import FakeFrontend, FakeRobot
from trifinger_s2r.deploy.platform import PyBulletRobot
from trifinger_s2r.farm.worker import calibration_for, health_check


def test_a_simulated_robot_passes_its_health_check():
    assert health_check(PyBulletRobot()) == (True, "ok")


def test_a_real_robot_is_checked_through_its_tracker():
    assert health_check(FakeRobot(FakeFrontend())) == (True, "ok")
    lifted = FakeFrontend()
    lifted.cube_position = np.array([0.0, 0.0, 0.08])
    ok, message = health_check(FakeRobot(lifted))
    assert not ok and "cube at z = 0.0800" in message


def test_fingers_away_from_home_fail_the_check():
    frontend = FakeFrontend(start_position=np.zeros(9))
    ok, message = health_check(FakeRobot(frontend))
    assert not ok and "not at home" in message


def test_simulated_robots_differ_but_are_reproducible():
    a, b = calibration_for(0), calibration_for(1)
    assert a != b and calibration_for(0) == a
    assert 0.8 <= a.cube_lateral_friction <= 1.2 and 0.92 <= a.torque_constant_scale <= 1.0
