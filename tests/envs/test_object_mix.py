"""Training across objects (randomization.objects): one batch per variant behind the backend seam, per-env start and
goal rules, and the config's checks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.objects import variant
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.sim.object_mix import ObjectMixBackend
from trifinger_s2r.task.config import TaskConfig, for_evaluation
from trifinger_s2r.task.geometry import quat_rotate
from trifinger_s2r.task.randomization import nominal_physics_params
from trifinger_s2r.train.config import apply_overrides, config_from_dict, preset

OBJECTS = ("cube", "sphere", "cuboid", "cube_x2")


def _task(objects=OBJECTS, **kw) -> TaskConfig:
    task = TaskConfig(**{"level": 1, "episode_length_steps": 30, **kw})
    return replace(task, randomization=replace(task.randomization, objects=objects))


def _start(backend, n: int):
    ids = torch.arange(n)
    home = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD)).expand(n, 9)
    pos = torch.tensor([0.05, -0.03, 0.06]).expand(n, 3)
    quat = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4)
    backend.set_params(ids, nominal_physics_params(n, TaskConfig()))
    backend.reset(ids, home, pos, quat)


class TestBackend:
    def test_each_env_simulates_its_own_object_as_a_single_object_batch_would(self):
        """Envs 0, 2 hold the sphere, 1, 3 the cuboid: the merged state equals two separate batches stepped alike,
        also after a second reset of some envs."""
        mix = ObjectMixBackend(4, ("sphere", "cuboid"), num_threads=1)
        sphere, cuboid = MujocoCpuBackend(2, num_threads=1, obj="sphere"), MujocoCpuBackend(2, num_threads=1,
                                                                                           obj="cuboid")
        torque = 0.2 * torch.randn(20, 4, 9, generator=torch.Generator().manual_seed(0))
        for backend, n in ((mix, 4), (sphere, 2), (cuboid, 2)):
            _start(backend, n)
        for round_ in range(2):
            for t in range(20):
                mix.step(torque[t])
                sphere.step(torque[t, 0::2])
                cuboid.step(torque[t, 1::2])
            merged = mix.state()
            torch.testing.assert_close(merged.cube_pos_m[0::2], sphere.state().cube_pos_m)
            torch.testing.assert_close(merged.joint_pos_rad[1::2], cuboid.state().joint_pos_rad)
            if round_ == 0:  # reset env 1 (cuboid's first) and env 2 (sphere's second) only
                home = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD)).expand(2, 9)
                pos, quat = torch.tensor([[0.0, 0.0, 0.05]] * 2), torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2)
                mix.reset(torch.tensor([1, 2]), home, pos, quat)
                sphere.reset(torch.tensor([1]), home[:1], pos[:1], quat[:1])
                cuboid.reset(torch.tensor([0]), home[:1], pos[:1], quat[:1])
        assert not mix.nonfinite_envs().any()

    def test_needs_an_env_per_object(self):
        with pytest.raises(ValueError, match="at least the number of objects"):
            ObjectMixBackend(1, ("sphere", "cuboid"), num_threads=1)


class TestEnv:
    def test_objects_rest_at_their_own_height_with_goals_to_match(self):
        env = ReposeEnv(EnvConfig(num_envs=8, num_threads=1, seed=2, task=_task()))
        for _ in range(25):  # the dropped objects settle
            env.step(torch.zeros(8, 9))
        heights = torch.tensor([variant(name).resting_height_m for name in OBJECTS] * 2)
        scale = env.params.cube_edge_m / 0.065  # the +-3% size randomisation scales every object alike
        torch.testing.assert_close(env.state.cube_pos_m[:, 2], heights * scale, atol=2e-3, rtol=0)
        torch.testing.assert_close(env.goal_pos_m[:, 2], heights)
        x2 = torch.tensor([i % 4 == 3 for i in range(8)])
        assert (env.goal_pos_m[x2, :2].norm(dim=-1) <= tp.ARENA_RADIUS_M - 0.1126 + 1e-6).all()
        assert (env.state.cube_pos_m[x2, :2].norm(dim=-1) < 2e-3).all()  # too tall for the home pose: the centre

    def test_the_cuboid_starts_lying_after_every_reset(self):
        env = ReposeEnv(EnvConfig(num_envs=8, num_threads=1, seed=4, task=_task()))
        cuboid = torch.tensor([i % 4 == 2 for i in range(8)])
        for _ in range(2):  # the first episodes and the automatic resets after them
            long_axis = quat_rotate(env.state.cube_quat_xyzw[cuboid], torch.tensor([0.0, 1.0, 0.0]).expand(2, 3))
            assert long_axis[:, 2].abs().max() < 0.05
            for _ in range(30):
                env.step(torch.zeros(8, 9))

    def test_lifted_is_judged_from_each_objects_resting_height(self):
        """A cuboid resting on the table (centre 1 cm up) is not lifted, although a cube's half edge is 3.25 cm."""
        env = ReposeEnv(EnvConfig(num_envs=4, num_threads=1, seed=5, task=_task(("cube", "cuboid"))))
        torch.testing.assert_close(env.resting_height_m(), torch.tensor([0.0325, 0.01] * 2) * env.params.cube_edge_m
                                   / 0.065)


    def test_success_is_logged_per_object(self):
        env = ReposeEnv(EnvConfig(num_envs=4, num_threads=1, seed=6, task=_task(("cube", "sphere"), episode_length_steps=3)))
        logs = [env.step(torch.zeros(4, 9))[3]["log"] for _ in range(3)]
        assert {"Episode/success_cube", "Episode/success_sphere"} <= set(logs[-1])
        assert logs[-1]["Episode/success_cube"].shape == (2,)

    def test_the_critic_is_told_each_envs_object_and_the_actor_is_not(self):
        """The critic's last four values: 1 for the sphere, then half sizes relative to the cube's minus 1; the actor's
        observation keeps its size (the nominal cube's keypoints)."""
        env = ReposeEnv(EnvConfig(num_envs=4, num_threads=1, seed=7, task=_task(("cube", "sphere"))))
        plain = ReposeEnv(EnvConfig(num_envs=4, num_threads=1, seed=7, task=TaskConfig(level=1)))
        obs = env.get_observations()
        assert env.num_critic_obs == plain.num_critic_obs + 4 == obs["critic"].shape[-1]
        assert obs["policy"].shape[-1] == plain.get_observations()["policy"].shape[-1]
        torch.testing.assert_close(obs["critic"][:, -4:], torch.tensor([[0.0, 0, 0, 0], [1.0, 0, 0, 0]] * 2))
        cuboid = ReposeEnv(EnvConfig(num_envs=2, num_threads=1, seed=7, task=_task(("cuboid", "cube_x0.5"))))
        torch.testing.assert_close(cuboid.get_observations()["critic"][:, -4:],
                                   torch.tensor([[0.0, 0.01 / 0.0325 - 1, 0.04 / 0.0325 - 1, 0.01 / 0.0325 - 1],
                                                 [0.0, -0.5, -0.5, -0.5]]))


class TestConfig:
    def test_bad_object_lists_are_refused_with_the_field_named(self):
        with pytest.raises(ValueError, match="randomization.objects: unknown object variant"):
            _task(("cube", "pyramid"))
        with pytest.raises(ValueError, match="twice"):
            _task(("cube", "cube"))
        with pytest.raises(ValueError, match="excludes"):
            _task(level=4, grasp_start_share=0.5)
        with pytest.raises(ValueError, match="'mujoco' backend"):
            ReposeEnv(EnvConfig(num_envs=4, backend="warp", task=_task()))

    def test_evaluation_judges_the_cube_alone(self):
        assert for_evaluation(_task()).randomization.objects == ()

    def test_set_and_saved_configs_give_the_same_tuple(self):
        cfg = apply_overrides(preset("push-cpu"), ['env.task.randomization.objects=["cube", "sphere"]'])
        assert cfg.env.task.randomization.objects == ("cube", "sphere")
        import json
        from dataclasses import asdict

        assert config_from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
