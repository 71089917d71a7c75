import numpy as np
import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.robot import cube
from trifinger_s2r.sim.grasps import Grasps, GraspSpec, holding_share, make_grasps
from trifinger_s2r.task.config import TaskConfig


def test_scripted_grasps_hold_the_cube_in_the_air():
    spec = GraspSpec()
    grasps = make_grasps(4, seed=3, spec=spec)
    assert len(grasps) == 4
    assert (grasps.cube_pos_m[:, 2] > spec.height_range_m[0] - spec.max_drift_m).all()
    assert np.allclose(np.linalg.norm(grasps.cube_quat_xyzw, axis=1), 1.0, atol=1e-4)


def test_shipped_cache_is_a_set_of_lifted_grasps():
    grasps = Grasps.load()
    assert len(grasps) >= 512
    assert grasps.cube_pos_m[:, 2].min() > cube.HALF_EDGE_M + 0.015  # well off the table
    assert np.isfinite(grasps.joint_pos_rad).all()


def test_grasped_starts_put_every_fingertip_on_the_cube_for_their_share_of_resets():
    task = TaskConfig(grasp_start_share=0.5)
    env = ReposeEnv(EnvConfig(num_envs=64, num_threads=1, task=task))
    state = env.state
    lifted = state.cube_pos_m[:, 2] > cube.HALF_EDGE_M + 0.015
    assert 0.3 < lifted.float().mean() < 0.7
    tip_to_cube_m = (state.fingertip_pos_m[lifted] - state.cube_pos_m[lifted, None]).norm(dim=-1)
    assert tip_to_cube_m.max() < cube.CIRCUMRADIUS_M + 0.01  # touching, not hovering at home
    assert torch.isfinite(env.get_observations()["policy"]).all()


def test_a_50_hz_impedance_controller_holds_fresh_grasps():
    """The physics allows holding at the policy's rate: the learnable behaviour grasped starts are meant to teach."""
    held, made = holding_share(count=5, seed=5, duration_s=1.0, control_period_s=0.02)
    assert made == 5 and held >= 4
