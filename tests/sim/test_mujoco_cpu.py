"""Physical facts of the MuJoCo CPU backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.randomization import nominal_physics_params
from trifinger_s2r.timing import Timing

HOME = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD))
IDENTITY = torch.tensor([0.0, 0.0, 0.0, 1.0])


def _backend(n: int = 2, mode: str = "5ms", **kwargs) -> MujocoCpuBackend:
    backend = MujocoCpuBackend(n, Timing.from_mode(mode), num_threads=1, **kwargs)
    backend.set_params(torch.arange(n), nominal_physics_params(n, TaskConfig()))
    return backend


def _hold_home(backend: MujocoCpuBackend) -> torch.Tensor:
    """PD torques that keep the fingers at the home pose, out of the cube's way."""
    s = backend.state()
    return 2.0 * (HOME - s.joint_pos_rad) - 0.05 * s.joint_vel_radps


class TestCubeOnTable:
    @pytest.mark.parametrize("mode", ["5ms", "1ms"])
    @pytest.mark.parametrize("collision", ["primitive", "mesh"])
    def test_released_cube_rests_at_half_its_edge(self, mode, collision):
        """A cube dropped from 3 cm comes to rest with its centre at 0.0325 m (within 0.5 mm)."""
        backend = _backend(2, mode, collision=collision)
        drop = torch.tensor([[0.0, 0.0, 0.065], [0.05, -0.05, 0.08]])
        backend.reset(torch.arange(2), HOME.expand(2, 9), drop, IDENTITY.expand(2, 4))
        for _ in range(100):  # 2 s
            backend.step(_hold_home(backend))
        state = backend.state()
        np.testing.assert_allclose(state.cube_pos_m[:, 2], cube.HALF_EDGE_M, atol=5e-4)
        assert state.cube_linvel_mps.norm(dim=-1).max() < 1e-3


class TestSafetyPipeline:
    def test_over_limit_torque_is_clipped(self):
        """A 10 N*m command applies at most the 0.396 N*m limit."""
        backend = _backend(1)
        backend.step(torch.full((1, 9), 10.0))
        applied = backend.state().applied_torque_nm
        assert applied.abs().max() <= tp.MAX_TORQUE_NM + 1e-6
        assert applied.max() > 0.3

    def test_randomized_torque_limit_clips_lower(self):
        backend = _backend(1)
        params = nominal_physics_params(1, TaskConfig())
        params.torque_limit_nm[:] = 0.2
        backend.set_params(torch.arange(1), params)
        backend.step(torch.full((1, 9), -10.0))
        assert backend.state().applied_torque_nm.abs().max() <= 0.2 + 1e-6

    def test_safety_damping_opposes_velocity(self):
        """With zero command, the applied torque is -kd * qdot on a moving joint."""
        backend = _backend(1, mode="1ms")
        push = torch.zeros(1, 9)
        push[0, [0, 3, 6]] = 0.3
        for _ in range(3):
            backend.step(push)
        backend.step(torch.zeros(1, 9))
        state = backend.state()
        qdot, applied = state.joint_vel_radps[0], state.applied_torque_nm[0]
        kd = torch.tensor(tp.per_finger(tp.SAFETY_KD))
        moving = qdot.abs() > 0.5
        assert moving.any()
        assert (applied[moving] * qdot[moving] < 0).all()
        np.testing.assert_allclose(applied[moving], -kd[moving] * qdot[moving], rtol=0.1)


class TestParameters:
    def test_per_env_masses_reach_the_simulation(self):
        backend = _backend(3)
        params = nominal_physics_params(3, TaskConfig())
        params.cube_mass_kg[:] = torch.tensor([0.07, 0.094, 0.12])
        backend.set_params(torch.arange(3), params)
        masses = backend.batch.expanded("body_mass")[:, backend.index.cube_body]
        np.testing.assert_allclose(masses, [0.07, 0.094, 0.12])

    def test_bigger_cube_rests_higher(self):
        backend = _backend(1)
        params = nominal_physics_params(1, TaskConfig())
        params.cube_edge_m[:] = 0.08
        backend.set_params(torch.arange(1), params)
        backend.reset(torch.arange(1), HOME.expand(1, 9), torch.tensor([[0.0, 0.0, 0.06]]), IDENTITY.expand(1, 4))
        for _ in range(75):
            backend.step(_hold_home(backend))
        np.testing.assert_allclose(backend.state().cube_pos_m[0, 2], 0.04, atol=5e-4)


class TestDivergence:
    def test_nonfinite_state_is_reported_for_that_env_only(self):
        backend = _backend(3)
        backend._qvel[1, 0] = np.nan
        backend.step(torch.zeros(3, 9))
        assert backend.nonfinite_envs().tolist() == [False, True, False]

    def test_negative_env_count_is_rejected(self):
        with pytest.raises(ValueError, match="positive"):
            MujocoCpuBackend(-2)


class TestActionLag:
    def test_lagged_motor_responds_more_slowly(self):
        """With a 10 ms torque lag a joint gains less speed in one 20 ms step than without lag."""
        backend = _backend(2, mode="1ms")
        params = nominal_physics_params(2, TaskConfig())
        params.action_lag_s[:] = torch.tensor([0.0, 0.01])
        backend.set_params(torch.arange(2), params)
        backend.reset(torch.arange(2), HOME.expand(2, 9), torch.tensor([[0.5, 0.5, 0.0325]]).expand(2, 3),
                      IDENTITY.expand(2, 4))
        torque = torch.zeros(2, 9)
        torque[:, 0] = 0.3
        backend.step(torque)
        speed = backend.state().joint_vel_radps[:, 0]
        assert 0 < speed[1] < 0.8 * speed[0]

    def test_zero_lag_applies_the_command_in_the_same_step(self):
        backend = _backend(1, mode="1ms")
        backend.batch.bind("ctrl")[:] = 0.2
        backend.batch.step(nstep=1)
        np.testing.assert_allclose(backend.batch.bind("actuator_force")[0], 0.2, atol=1e-9)


def test_contact_model_reaches_the_simulator_and_is_validated():
    import mujoco

    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
    from trifinger_s2r.sim.contact import ContactModel
    from trifinger_s2r.task.config import TaskConfig

    env = ReposeEnv(EnvConfig(num_envs=2, num_threads=1, task=TaskConfig(level=1, friction_cone="elliptic",
                                                                           impratio=10.0)))
    assert env.backend.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and env.backend.model.opt.impratio == 10.0
    assert ReposeEnv(EnvConfig(num_envs=2, num_threads=1)).backend.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
    with pytest.raises(ValueError, match="unknown friction cone 'cubic'"):
        TaskConfig(friction_cone="cubic")
    with pytest.raises(ValueError, match="impratio must be >= 1"):
        ContactModel("elliptic", 0.5)
