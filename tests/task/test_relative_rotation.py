import math

import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_mul, quat_to_matrix, random_quat


def test_relative_rotation_is_identity_for_equal_orientations():
    q = random_quat(16, torch.Generator().manual_seed(0))
    identity_columns = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).expand(16, 6)
    assert torch.allclose(obs_fn.relative_rotation_6d(q, q), identity_columns, atol=1e-5)


def test_relative_rotation_holds_the_rotation_that_takes_cube_to_goal():
    g = torch.Generator().manual_seed(1)
    cube = random_quat(16, g)
    turn = quat_from_axis_angle(torch.tensor([0.0, 0.0, 1.0]).expand(16, 3), torch.full((16,), math.pi / 2))
    goal = quat_mul(turn, cube)
    columns = quat_to_matrix(turn)[..., :, :2].transpose(-1, -2).reshape(16, 6)
    assert torch.allclose(obs_fn.relative_rotation_6d(cube, goal), columns, atol=1e-5)


def test_env_observation_variant_with_relative_rotation():
    env = ReposeEnv(EnvConfig(num_envs=4, num_threads=1, task=TaskConfig(obs_type="keypoints_rel")))
    obs = env.get_observations()["policy"]
    assert obs.shape == (4, obs_fn.ACTOR_OBS_SIZE["keypoints_rel"]) == (4, 81)
    assert env.num_critic_obs == env.get_observations()["critic"].shape[1]
