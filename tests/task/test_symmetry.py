import math

import pytest
import torch
from tensordict import TensorDict

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task import symmetry
from trifinger_s2r.task.config import RandomizationConfig, TaskConfig
from trifinger_s2r.task.geometry import quat_from_yaw, quat_mul

OBS_TYPES = ("keypoints", "pq", "keypoints_rel")


def _env(obs_type: str, n: int = 4) -> ReposeEnv:
    task = TaskConfig(obs_type=obs_type, randomization=RandomizationConfig(enabled=False))
    return ReposeEnv(EnvConfig(num_envs=n, num_threads=1, seed=3, task=task))


def _quaternion_columns(obs_type: str, group: str) -> list[int]:
    """Columns holding quaternions (a turn by 360 degrees gives -q: the same rotation)."""
    columns, start = [], 0
    for name, size in obs_fn.ACTOR_OBS_LAYOUT[obs_type]:
        columns += list(range(start, start + size)) if "quat" in name else []
        start += size
    if group == "critic":
        tips = start + 6  # after the cube's velocities: per finger pos (3), quat (4), velocities (6)
        columns += [tips + 13 * f + 3 + k for f in range(3) for k in range(4)]
    return columns


def _canonical(obs_type: str, group: str, x: torch.Tensor) -> torch.Tensor:
    """x with each quaternion's sign chosen so that w >= 0 (q and -q are the same rotation)."""
    x = x.clone()
    columns = _quaternion_columns(obs_type, group)
    for start in columns[::4]:
        block = x[:, start: start + 4]
        x[:, start: start + 4] = torch.where(block[:, 3:4] < 0, -block, block)
    return x


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_three_turns_are_the_identity(obs_type):
    env = _env(obs_type)
    obs = env.get_observations()
    turned = {"policy": obs["policy"], "critic": obs["critic"]}
    actions = torch.randn(4, 9)
    for _ in range(3):
        turned["policy"] = symmetry.turn_actor_observation(obs_type, turned["policy"])
        turned["critic"] = symmetry.turn_critic_observation(obs_type, turned["critic"])
        actions = symmetry.turn_actions(actions)
    for group, x in turned.items():
        quats = _quaternion_columns(obs_type, group)
        x[:, quats] = -x[:, quats]
        assert torch.allclose(x, obs[group], atol=1e-5), group
    assert not torch.allclose(symmetry.turn_actor_observation(obs_type, obs["policy"]), obs["policy"])


def _centre_cube(env: ReposeEnv) -> None:
    """Rest the cube at the arena's centre, clear of the fingers at home."""
    ids, state = torch.arange(env.num_envs), env.state
    cube_pos = torch.tensor([0.0, 0.0, 0.0325]).expand(env.num_envs, 3)
    env.backend.reset(ids, state.joint_pos_rad, cube_pos, state.cube_quat_xyzw)
    env._state = env.backend.state()
    env._start_history(ids, env._state)
    env._obs = env._observe(env._state)


def _turn_scene(env: ReposeEnv, source: ReposeEnv) -> None:
    """Put env in source's scene turned by +120 degrees (state, goal) and observe it."""
    state, ids = source.state, torch.arange(env.num_envs)
    turn = quat_from_yaw(torch.full((env.num_envs,), 2 * math.pi / 3))
    joints = symmetry.turn_actions(state.joint_pos_rad)
    cube_pos = symmetry._turn_vectors(state.cube_pos_m)
    env.backend.reset(ids, joints, cube_pos, quat_mul(turn, state.cube_quat_xyzw))
    env.goal_pos_m[:] = symmetry._turn_vectors(source.goal_pos_m)
    env.goal_quat[:] = quat_mul(turn, source.goal_quat)
    env._state = env.backend.state()
    env._start_history(ids, env._state)
    env._obs = env._observe(env._state)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_a_turned_scene_is_observed_as_the_turned_observation(obs_type):
    """Simulate a scene and the same scene turned by 120 degrees side by side (turned actions): after each step
    the turned scene's observations equal the transformed observations of the original."""
    original, turned = _env(obs_type), _env(obs_type)
    _centre_cube(original)  # contacts away from the fingers: contact solutions are not exactly turn-invariant
    _turn_scene(turned, original)
    generator = torch.Generator().manual_seed(0)
    for step in range(6):
        expected = symmetry.augment(original, original.get_observations())[0]
        got = turned.get_observations()
        for group in ("policy", "critic"):
            want, have = (_canonical(obs_type, group, x) for x in (expected[group][4:8], got[group]))
            if group == "critic":  # the cube settling on the table: a yawed box's contact differs in float noise
                cube_velocity = slice(obs_fn.ACTOR_OBS_SIZE[obs_type], obs_fn.ACTOR_OBS_SIZE[obs_type] + 6)
                assert torch.allclose(want[:, cube_velocity], have[:, cube_velocity], atol=0.03), step
                want[:, cube_velocity] = have[:, cube_velocity]
            assert torch.allclose(want, have, atol=5e-3), (group, step)
        actions = 0.3 * torch.randn(4, 9, generator=generator)
        original.step(actions)
        turned.step(symmetry.turn_actions(actions))


def test_augment_stacks_the_two_turns_after_the_originals():
    env = _env("keypoints", n=2)
    obs = env.get_observations()
    actions = torch.arange(18.0).reshape(2, 9)
    obs_aug, actions_aug = symmetry.augment(env, TensorDict(dict(obs.items()), batch_size=[2]), actions)
    assert obs_aug.batch_size[0] == 6 and actions_aug.shape == (6, 9)
    assert torch.equal(actions_aug[:2], actions)
    assert torch.equal(actions_aug[2:4], symmetry.turn_actions(actions))
    assert torch.equal(actions_aug[4, :3], actions[0, 6:9])  # two turns: finger 0 holds what finger 240 held
