"""Robots behind the platform seam: PyBullet (with calibration and the tracker model) and the real front end."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.deploy.fake_frontend import FakeAction, FakeFrontend
from trifinger_s2r.cli import main
from trifinger_s2r.deploy.platform import PyBulletRobot, RealRobot, RobotCalibration
from trifinger_s2r.deploy.runner import EpisodeRunner, Goal, PolicySpec
from trifinger_s2r.deploy.tracker import CONFIDENCE_THRESHOLD, TrackerConfig, TrackerModel
from trifinger_s2r.robot import cube

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def _frame(position, timestamp_s=0.0):
    pose = SimpleNamespace(position=np.asarray(position, float), orientation=IDENTITY.copy(), confidence=1.0)
    return SimpleNamespace(object_pose=pose, filtered_object_pose=pose,
                           cameras=[SimpleNamespace(timestamp=timestamp_s) for _ in range(3)])


class TestTracker:
    def test_disabled_tracker_passes_the_exact_pose(self):
        raw = _frame([0.1, 0.0, 0.0325])
        assert TrackerModel(TrackerConfig(enabled=False), np.random.default_rng(0)).observe(raw, 0) is raw

    def test_position_noise_has_the_configured_spread(self):
        tracker = TrackerModel(TrackerConfig(jitter_s=0.0), np.random.default_rng(0))
        seen = np.array([tracker.observe(_frame([0.1, 0.0, 0.0325]), t).object_pose.position for t in range(2000)])
        assert np.std(seen[:, 0]) == pytest.approx(0.002, rel=0.1)
        assert np.abs(seen.mean(axis=0) - [0.1, 0.0, 0.0325]).max() < 3e-4

    def test_low_confidence_frames_hold_the_previous_pose_with_decaying_confidence(self):
        """The robot's filter: confidence < 0.75 repeats the last pose, its confidence x0.9 per frame."""
        tracker = TrackerModel(TrackerConfig(jitter_s=0.0, low_confidence_probability=0.0), np.random.default_rng(1))
        first = tracker.observe(_frame([0.1, 0.0, 0.0325]), 0).filtered_object_pose
        tracker.cfg = TrackerConfig(jitter_s=0.0, low_confidence_probability=1.0)
        for t in (100, 200):
            observed = tracker.observe(_frame([0.0, 0.1, 0.0325]), t)
        assert observed.object_pose.confidence < CONFIDENCE_THRESHOLD
        np.testing.assert_array_equal(observed.filtered_object_pose.position, first.position)
        assert observed.filtered_object_pose.confidence == pytest.approx(first.confidence * 0.81)

    def test_jitter_delays_a_new_frame_by_at_most_its_bound(self):
        tracker = TrackerModel(TrackerConfig(jitter_s=0.02, position_noise_std_m=0.0), np.random.default_rng(2))
        tracker.observe(_frame([0.0, 0.0, 0.0325]), 0)
        new = _frame([0.1, 0.0, 0.0325])
        arrival = next(t for t in range(100, 130) if tracker.observe(new, t).object_pose.position[0] > 0.05)
        assert 100 <= arrival <= 120


class TestPyBulletRobot:
    def test_a_released_cube_rests_on_the_table_at_half_its_edge(self):
        robot = PyBulletRobot(tracker=TrackerConfig(enabled=False))
        platform = robot.start_episode(np.array([0.05, 0.05, cube.HALF_EDGE_M + 0.01]), IDENTITY)
        for _ in range(500):
            platform.append_desired_action(platform.Action(torque=np.zeros(9)))
        position, _ = robot.true_object_pose()
        assert position[2] == pytest.approx(cube.HALF_EDGE_M, abs=1e-3)
        robot.close()

    def test_calibration_sets_cube_mass_and_scales_the_torque(self):
        import pybullet

        robot = PyBulletRobot(calibration=RobotCalibration(cube_mass_kg=0.12, torque_constant_scale=0.5))
        platform = robot.start_episode(np.array([0.0, 0.0, cube.HALF_EDGE_M]), IDENTITY)
        t = platform.append_desired_action(platform.Action(torque=np.full(9, 0.2)))
        np.testing.assert_allclose(platform.get_desired_action(t).torque, 0.1)
        mass = pybullet.getDynamicsInfo(robot._platform.cube._object_id, -1,
                                        physicsClientId=robot.pybullet_client_id)[0]
        assert mass == pytest.approx(0.12)
        robot.close()

    def test_bad_calibration_is_named(self):
        with pytest.raises(ValueError, match="cube_mass_kg"):
            RobotCalibration(cube_mass_kg=-1.0)

    def test_tracker_noise_reaches_the_camera_observation(self):
        robot = PyBulletRobot(tracker=TrackerConfig(position_noise_std_m=0.01), seed=3)
        platform = robot.start_episode(np.array([0.0, 0.0, cube.HALF_EDGE_M]), IDENTITY)
        t = platform.append_desired_action(platform.Action(torque=np.zeros(9)))
        seen = platform.get_camera_observation(t).object_pose.position
        assert 1e-4 < np.linalg.norm(seen - robot.true_object_pose()[0]) < 0.06
        robot.close()


class TestRealRobot:
    def test_without_the_robot_software_the_error_says_what_to_use(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "robot_fingers", None)
        with pytest.raises(RuntimeError, match="--platform pybullet"):
            RealRobot().start_episode(np.zeros(3), IDENTITY)

    def test_drives_the_front_end_and_goes_home_between_episodes(self, monkeypatch):
        frontend = FakeFrontend()
        monkeypatch.setitem(sys.modules, "robot_fingers",
                            SimpleNamespace(TriFingerPlatformWithObjectFrontend=lambda: frontend))
        monkeypatch.setitem(sys.modules, "robot_interfaces", SimpleNamespace(trifinger=SimpleNamespace(Action=FakeAction)))
        spec = PolicySpec("keypoints", 75, 9, 0.396, 50, 1000, 1, 2, 0.02, 0.4)
        robot = RealRobot()
        runner = EpisodeRunner(lambda obs: torch.zeros(1, 9), spec, robot)
        goal = Goal(np.array([0.0, 0.0, 0.0325]), IDENTITY, 1)
        first, _ = runner.run(goal, np.zeros(3), IDENTITY, 2)
        second, _ = runner.run(goal, np.zeros(3), IDENTITY, 2)
        assert first.status == second.status == "ok" and first.judged_by == "tracker"
        homing = [a for a in frontend.actions if a.position is not None]
        assert len(homing) == 1000 and np.allclose(homing[0].position, [0.0, 0.9, -1.7] * 3)


class TestDeployCommand:
    def test_deploy_on_pybullet_prints_the_eval_keys_and_renders_a_video(self, tiny_bundle, tmp_path, capsys):
        import cv2

        video = tmp_path / "episode.mp4"
        main(["deploy", "--policy", str(tiny_bundle), "--platform", "pybullet", "--episodes", "2",
              "--episode-length", "10", "--log-dir", str(tmp_path / "logs"), "--video", str(video), "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert {"success_rate", "ci80_low", "ci80_high", "episodes", "mean_position_error_m",
                "mean_orientation_error_rad"} <= set(out)
        assert out["episodes"] == 2 and out["judged_by"] == "true_pose" and out["platform"] == "pybullet"
        capture = cv2.VideoCapture(str(video))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
        assert fourcc in ("avc1", "h264")  # H.264: what browsers play
        assert (tmp_path / "logs" / "report.json").is_file()

    def test_deploy_of_a_folder_that_is_not_a_bundle_names_it(self, tmp_path):
        with pytest.raises(SystemExit, match="not a policy bundle"):
            main(["deploy", "--policy", str(tmp_path), "--episodes", "1"])


def test_deploy_prints_no_library_notices():
    """Gym's deprecation notice and PyBullet's build banner are not for the user's terminal."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "trifinger_s2r.cli", "deploy", "--policy", "pretrained:push", "--episodes", "1",
               "--episode-length", "5", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "Gym" not in done.stderr and "build time" not in done.stderr + done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1])["episodes"] == 1
