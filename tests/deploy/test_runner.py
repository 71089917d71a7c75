"""The deployment runner: same observation as training, real-robot timing semantics, safety, logs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.conftest import make_env
from tests.deploy.fake_frontend import FakeFrontend, FakeRobot
from trifinger_s2r.deploy.runner import (
    STATUS_BAD_ACTION_SHAPE,
    STATUS_JOINT_LIMIT,
    STATUS_NONFINITE_ACTION,
    STATUS_OK,
    STATUS_RUNAWAY_VELOCITY,
    EpisodeRunner,
    Goal,
    HeldPose,
    PolicySpec,
    actor_observation,
)
from trifinger_s2r.deploy.session import REPORT_FILE, DeployConfig, run_deployment


def _spec(**overrides) -> PolicySpec:
    values = dict(obs_type="keypoints", obs_size=75, action_size=9, torque_scale_nm=0.396, policy_rate_hz=50,
                  robot_rate_hz=1000, level=1, episode_length_steps=10, success_position_m=0.02,
                  success_orientation_rad=0.4)
    return PolicySpec(**{**values, **overrides})


def _constant(action):
    return lambda obs: torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)


GOAL = Goal(np.array([0.05, 0.0, 0.0325]), np.array([0.0, 0.0, 0.0, 1.0]), level=1)


def _run(policy, frontend=None, steps=5, spec=None):
    frontend = frontend or FakeFrontend()
    runner = EpisodeRunner(policy, spec or _spec(), FakeRobot(frontend))
    result, record = runner.run(GOAL, np.zeros(3), np.array([0, 0, 0, 1.0]), steps)
    return result, record, frontend


class TestObservationParity:
    @pytest.mark.parametrize("obs_type", ["keypoints", "pq"])
    @pytest.mark.parametrize("level", [1, 4])
    def test_runner_builds_the_env_observation_for_the_same_state(self, obs_type, level):
        """Without noise or camera model, the env's actor observation equals the runner's, value for value."""
        env = make_env(num_envs=3, randomize=False, level=level, obs_type=obs_type)
        generator = torch.Generator().manual_seed(3)
        for _ in range(5):
            obs, *_ = env.step(torch.rand(3, 9, generator=generator) * 2 - 1)
        state, spec = env.state, _spec(obs_type=obs_type, obs_size=obs["policy"].shape[1], level=level)
        for i in range(3):
            robot_obs = SimpleNamespace(position=state.joint_pos_rad[i].numpy(), velocity=state.joint_vel_radps[i].numpy())
            pose = HeldPose()
            pose.quat_xyzw = env.camera.held_quat[i].numpy()
            camera = SimpleNamespace(
                filtered_object_pose=SimpleNamespace(position=state.cube_pos_m[i].numpy(),
                                                     orientation=state.cube_quat_xyzw[i].numpy(), confidence=1.0),
                cameras=[SimpleNamespace(timestamp=0.0)])
            pose.update(camera)
            goal = Goal(env.goal_pos_m[i].numpy(), env.goal_quat[i].numpy(), level)
            runner_obs = actor_observation(spec, level, robot_obs, pose, goal, env.last_action[i].numpy())
            torch.testing.assert_close(runner_obs[0], obs["policy"][i], atol=1e-6, rtol=0)


class TestRobotSemantics:
    def test_zero_torque_first_then_each_action_held_for_twenty_steps(self):
        result, record, frontend = _run(_constant([0.5] * 9), steps=4)
        assert result.status == STATUS_OK and result.policy_steps == 4
        torques = np.array([a.torque for a in frontend.actions])
        assert np.all(torques[0] == 0.0), "the first action is zero torque"
        assert len(torques) == 1 + 4 * 20
        assert np.allclose(torques[1:], 0.5 * 0.396)
        assert record.arrays()["robot_t"].tolist() == list(range(1, 81))

    def test_never_reads_an_index_ahead_of_the_last_action(self):
        """The fake raises on t + 1; also every policy step reads the robot at the index of its last action."""
        _, record, frontend = _run(_constant([0.1] * 9), steps=3)
        policy_reads = [t for what, t in frontend.reads if what == "get_camera_observation"]
        assert policy_reads == [0, 20, 40]
        assert record.arrays()["policy_t"].tolist() == [0, 20, 40]

    def test_held_pose_keeps_the_quaternion_sign_continuous(self):
        pose = HeldPose()
        for quat in ([0, 0, 0.1, 0.995], [0, 0, -0.1, -0.995]):
            pose.update(SimpleNamespace(
                filtered_object_pose=SimpleNamespace(position=np.zeros(3), orientation=np.array(quat), confidence=1),
                cameras=[SimpleNamespace(timestamp=0.1)]))
        assert pose.quat_xyzw[3] > 0


class TestSafety:
    @pytest.mark.parametrize("bad, status", [([np.nan] + [0.0] * 8, STATUS_NONFINITE_ACTION),
                                              ([0.1] * 7, STATUS_BAD_ACTION_SHAPE)])
    def test_a_bad_action_never_reaches_the_motors(self, bad, status):
        """The fake front end raises if a non-finite torque arrives; the episode ends with zero torque."""
        result, _, frontend = _run(_constant(bad), steps=5)
        assert result.status == status and not result.success and result.policy_steps == 0
        assert bad[0] != bad[0] or "shape" in result.message
        assert all(np.all(a.torque == 0.0) for a in frontend.actions)

    def test_a_joint_past_the_hard_limit_stops_the_episode(self):
        start = np.array([0.0, 0.9, -1.7] * 3)
        start[4] = 1.8  # finger 120's upper_to_middle joint beyond 1.67 rad
        result, _, frontend = _run(_constant([0.2] * 9), FakeFrontend(start_position=start), steps=5)
        assert result.status == STATUS_JOINT_LIMIT and "[4]" in result.message
        assert all(np.all(a.torque == 0.0) for a in frontend.actions)

    def test_a_runaway_joint_stops_the_episode(self):
        frontend = FakeFrontend(velocity_override=np.array([0.0] * 8 + [25.0]))
        result, _, _ = _run(_constant([0.2] * 9), frontend, steps=5)
        assert result.status == STATUS_RUNAWAY_VELOCITY and result.policy_steps == 1

    def test_an_object_raised_during_the_episode_ends_lifted(self):
        frontend = FakeFrontend()

        def raising(obs):
            frontend.cube_position = frontend.cube_position + np.array([0.0, 0.0, 0.005])
            return torch.zeros(1, 9)

        resting, _, _ = _run(_constant([0.0] * 9), steps=5)
        raised, _, _ = _run(raising, frontend, steps=5)
        assert not resting.lifted and raised.lifted

    def test_torque_is_clipped_to_the_policy_scale(self):
        _, _, frontend = _run(_constant([3.0] * 9), steps=1)
        assert np.allclose(frontend.actions[-1].torque, 0.396)


METADATA = {"obs_type": "keypoints", "obs_size": 75, "action_size": 9, "action": {"scale_nm": 0.396},
            "rates_hz": {"policy": 50, "robot": 1000},
            "task": {"level": 1, "episode_length_steps": 3, "success_position_m": 0.02, "success_orientation_rad": 0.4}}


class TestDeploymentLogs:
    def test_logs_and_report_written_with_the_eval_keys(self, tmp_path):
        summary = run_deployment(_constant([0.0] * 9), METADATA, FakeRobot(FakeFrontend()),
                                 DeployConfig(episodes=2, seed=1), tmp_path, policy_name="zero")
        assert {"success_rate", "ci80_low", "ci80_high", "episodes", "mean_position_error_m",
                "mean_orientation_error_rad", "lifted_share"} <= set(summary)
        assert summary["episodes"] == 2 and summary["judged_by"] == "tracker"
        report = json.loads((tmp_path / REPORT_FILE).read_text())
        assert [r["status"] for r in report["episode_results"]] == ["ok", "ok"]
        info = json.loads((tmp_path / "info.json").read_text())
        assert info["robot_name"] == "fake-robot" and info["seed"] == 1 and info["versions"]["trifinger-s2r"]
        goal = json.loads((tmp_path / "episode_001" / "goal.json").read_text())
        assert goal["difficulty"] == 1 and len(goal["goal"]["position"]) == 3
        log = np.load(tmp_path / "episode_000" / "log.npz")
        assert log["robot_position_rad"].shape == (60, 9) and log["policy_observation"].shape == (3, 75)
        assert (tmp_path / REPORT_FILE).stat().st_mtime >= (tmp_path / "episode_001" / "log.npz").stat().st_mtime

    def test_a_finished_log_folder_is_not_overwritten(self, tmp_path):
        (tmp_path / REPORT_FILE).write_text("{}")
        with pytest.raises(FileExistsError, match="report.json"):
            run_deployment(_constant([0.0] * 9), METADATA, FakeRobot(FakeFrontend()), DeployConfig(episodes=1), tmp_path)
