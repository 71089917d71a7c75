"""ReposeEnv: shapes, auto-reset, logging, determinism and configuration errors."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_env
from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.task.config import TaskConfig


class TestSmoke:
    @pytest.mark.parametrize("obs_type,actor_size", [("keypoints", 75), ("pq", 41)])
    @pytest.mark.parametrize("reward_type", ["keypoints", "pq"])
    @pytest.mark.parametrize("randomize", [True, False])
    def test_every_variant_steps_with_finite_outputs(self, obs_type, actor_size, reward_type, randomize):
        env = make_env(3, randomize=randomize, obs_type=obs_type, reward_type=reward_type)
        obs = env.get_observations()
        assert obs["policy"].shape == (3, actor_size) and obs["critic"].shape == (3, env.num_critic_obs)
        for _ in range(5):
            obs, rew, dones, extras = env.step(torch.rand(3, 9) * 2 - 1)
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all()
        assert rew.shape == (3,) and torch.isfinite(rew).all()
        assert extras["time_outs"].shape == (3,)

    @pytest.mark.parametrize("level", [-1, 1, 2, 3, 4])
    def test_every_level_steps(self, level):
        env = make_env(2, level=level)
        env.step(torch.zeros(2, 9))
        assert torch.isfinite(env.goal_pos_m).all()


class TestEpisodes:
    def test_time_out_resets_and_logs_success(self):
        """After episode_length steps every env times out, is reset, and success and errors are logged."""
        env = make_env(3, episode_length_steps=4)
        for _ in range(4):
            _, _, dones, extras = env.step(torch.zeros(3, 9))
        assert dones.all() and extras["time_outs"].all()
        log = extras["log"]
        assert log["Episode/success_rate"].shape == (3,)
        assert {"Episode/final_position_error_m", "Episode/final_orientation_error_rad",
                "Episode_Reward/keypoint_pose", "Episode_Reward/finger_movement"} <= set(log)
        assert torch.all(env.episode_length_buf == 0)

    def test_history_restarts_with_the_episode(self):
        """The first step of a new episode measures finger movement from the new episode's first state."""
        env = make_env(2, episode_length_steps=3, randomize=False)
        for _ in range(3):
            env.step(torch.ones(2, 9))
        assert torch.equal(env.prev_tip_pos_m, env.state.fingertip_pos_m)

    def test_nonfinite_state_resets_that_env_and_is_counted(self):
        env = make_env(3)
        env.backend._qvel[1, 0] = float("nan")
        _, rew, dones, extras = env.step(torch.zeros(3, 9))
        assert dones.tolist() == [False, True, False]
        assert not extras["time_outs"][1]
        assert torch.isfinite(rew).all()
        assert extras["log"]["Env/nonfinite_resets_total"] == 1.0
        assert not env.backend.nonfinite_envs().any()

    def test_nonfinite_action_is_refused(self):
        env = make_env(2)
        action = torch.zeros(2, 9)
        action[1, 3] = float("nan")
        with pytest.raises(ValueError, match=r"non-finite actions for envs \[1\]"):
            env.step(action)

    def test_wrong_action_shape_is_refused(self):
        with pytest.raises(ValueError, match="shape"):
            make_env(2).step(torch.zeros(2, 8))


class TestDeterminism:
    def test_seeded_runs_are_identical(self):
        def rollout(seed):
            env = make_env(3, seed=seed)
            gen = torch.Generator().manual_seed(7)
            out = []
            for _ in range(10):
                obs, rew, _, _ = env.step(torch.rand(3, 9, generator=gen) * 2 - 1)
                out.append(torch.cat([obs["critic"].flatten(), rew]))
            return torch.stack(out)

        assert torch.equal(rollout(3), rollout(3))
        assert not torch.equal(rollout(3), rollout(4))


class TestConfiguration:
    def test_unknown_level_names_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"valid levels: \[-1, 1, 2, 3, 4\]"):
            TaskConfig(level=7)

    def test_unknown_obs_type_names_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"\['keypoints', 'pq', 'keypoints_rel'\]"):
            TaskConfig(obs_type="pixels")

    def test_unknown_reward_type_names_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"\['keypoints', 'pq'\]"):
            TaskConfig(reward_type="sparse")

    def test_negative_env_count_is_refused(self):
        with pytest.raises(ValueError, match="positive integer"):
            EnvConfig(num_envs=-4)

    def test_unknown_backend_names_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"\['mujoco', 'warp'\]"):
            EnvConfig(backend="physx")

    def test_unknown_physics_mode_names_the_valid_ones(self):
        with pytest.raises(ValueError, match="1ms"):
            ReposeEnv(EnvConfig(num_envs=1, task=TaskConfig(physics_mode="2ms")))


class TestWholeCubeScale:
    def test_scaled_cubes_rest_start_and_get_goals_as_their_size_allows(self):
        from dataclasses import replace

        from trifinger_s2r.robot import cube
        from trifinger_s2r.robot import trifinger_pro as tp
        from trifinger_s2r.task.config import Uniform
        from trifinger_s2r.task.goals import HOME_TIP_LOWEST_M

        task = TaskConfig(level=1)
        task = replace(task, randomization=replace(task.randomization, cube_scale=Uniform(0.5, 2.0),
                                                   whole_cube_scale=True))
        env = ReposeEnv(EnvConfig(num_envs=64, task=task, seed=3))
        start_xy = env.state.cube_pos_m[:, :2].clone()
        for _ in range(25):  # the dropped cubes settle
            env.step(torch.zeros(64, 9))
        edge = env.params.cube_edge_m
        state = env.state
        radius = cube.CIRCUMRADIUS_M * edge / cube.EDGE_M
        assert torch.allclose(state.cube_pos_m[:, 2], edge / 2, atol=2e-3)  # resting on the table
        assert torch.allclose(env.goal_pos_m[:, 2], edge / 2)  # on-table goals at the resting height
        assert (env.goal_pos_m[:, :2].norm(dim=-1) <= tp.ARENA_RADIUS_M - radius + 1e-6).all()
        tall = edge > HOME_TIP_LOWEST_M
        assert tall.any() and (~tall).any()
        assert (start_xy[tall].norm(dim=-1) < 1e-6).all() and (start_xy[~tall].norm(dim=-1) > 1e-3).all()
