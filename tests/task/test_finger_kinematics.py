"""The torch kinematics of the TriFinger Pro against MuJoCo's kinematics of our robot model."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.model import SceneIndex, load_model
from trifinger_s2r.task import finger_kinematics as fk


@pytest.fixture(scope="module")
def mujoco_at():
    model = load_model("primitive")
    data, index = mujoco.MjData(model), SceneIndex(model)

    def at(q: np.ndarray):
        data.qpos[: tp.NUM_JOINTS] = q
        data.qvel[:] = 0.0
        mujoco.mj_forward(model, data)
        jac = np.zeros((3, 3, 3))
        full = np.zeros((3, model.nv))
        for f in range(3):
            mujoco.mj_jacSite(model, data, full, None, int(index.fingertip_sites[f]))
            jac[f] = full[:, 3 * f: 3 * f + 3]
        return data.site_xpos[index.fingertip_sites].copy(), jac, data.qfrc_bias[: tp.NUM_JOINTS].copy()

    return at


def _random_poses(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    low, high = np.array(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD)), np.array(tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD))
    return rng.uniform(low, high, size=(count, tp.NUM_JOINTS))


def test_fingertips_jacobians_and_gravity_torques_match_mujoco(mujoco_at):
    poses = _random_poses(5)
    q = torch.tensor(poses)
    tips, jacobians, gravity = fk.fingertip_positions(q), fk.fingertip_jacobians(q), fk.gravity_torques(q)
    for i, pose in enumerate(poses):
        want_tips, want_jac, want_bias = mujoco_at(pose)
        np.testing.assert_allclose(tips[i].numpy(), want_tips, atol=1e-6)
        np.testing.assert_allclose(jacobians[i].numpy(), want_jac, atol=1e-6)
        np.testing.assert_allclose(gravity[i].numpy(), want_bias, atol=5e-4)  # link masses rounded to 0.1 g


def test_home_pose_tips_are_the_three_fingers_turned_by_120_degrees():
    tips = fk.fingertip_positions(torch.tensor([tp.per_finger(tp.HOME_POSE_RAD)], dtype=torch.float64))[0]
    radius = tips[:, :2].norm(dim=-1)
    heading = torch.atan2(tips[:, 1], tips[:, 0])
    assert torch.allclose(radius, radius[0].expand(3), atol=1e-9)
    gaps = torch.remainder(heading - heading.roll(1), 2 * torch.pi)
    assert torch.allclose(gaps, gaps[0].expand(3), atol=1e-9)
    assert abs(float(torch.cos(gaps[0])) + 0.5) < 1e-9  # 120 degrees apart
