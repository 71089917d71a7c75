"""The MuJoCo Warp backend: parity with the native MuJoCo backend (on Warp's CPU device, so it runs in CI),
per-env parameters, selective resets; GPU-only checks skip without CUDA."""

from __future__ import annotations

import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.sim.mujoco_warp_backend import warp_available
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.randomization import nominal_physics_params, sample_physics_params
from trifinger_s2r.timing import Timing

pytestmark = pytest.mark.skipif(not warp_available(), reason="warp-lang / mujoco-warp not installed")

HOME = torch.tensor(tp.per_finger(tp.HOME_POSE_RAD))
N = 3


def _warp(n: int = N, device: str = "cpu"):
    from trifinger_s2r.sim.mujoco_warp_backend import MujocoWarpBackend

    return MujocoWarpBackend(n, Timing(), device=device)


@pytest.fixture(scope="module")
def pair():
    """The two backends with the same randomised parameters and the same initial states."""
    params = sample_physics_params(N, TaskConfig(), torch.Generator().manual_seed(0))
    cpu, warp = MujocoCpuBackend(N, Timing(), num_threads=1), _warp()
    for backend in (cpu, warp):
        backend.set_params(torch.arange(N), params)
    return cpu, warp


def _reset_both(cpu, warp):
    cube_pos = torch.tensor([[0.05, 0.0, cube.HALF_EDGE_M], [0.0, 0.08, cube.HALF_EDGE_M],
                             [-0.06, -0.03, cube.HALF_EDGE_M]])
    quat = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.3826834, 0.9238795], [0.0, 0.0, -0.7071068, 0.7071068]])
    joints = HOME.expand(N, 9) + torch.linspace(-0.1, 0.1, 9)
    for backend in (cpu, warp):
        backend.reset(torch.arange(N), joints, cube_pos, quat)


def _push_both(cpu, warp, generator: torch.Generator) -> None:
    """One policy step of the same random torques (up to 0.15 N*m) on both backends."""
    torque = (torch.rand(N, 9, generator=generator) * 2 - 1) * 0.15
    cpu.step(torque)
    warp.step(torque)


def test_trajectories_agree_with_the_native_backend(pair):
    """Same states and randomised parameters, same torques, 20 policy steps (0.4 s, the fingers push the cubes):
    joints within 0.1 mrad, cube within 0.1 mm (float32 Warp against float64 MuJoCo agree to about 1e-6)."""
    cpu, warp = pair
    _reset_both(cpu, warp)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        _push_both(cpu, warp, generator)
        a, b = cpu.state(), warp.state()
        torch.testing.assert_close(b.joint_pos_rad, a.joint_pos_rad, atol=1e-4, rtol=0)
        torch.testing.assert_close(b.cube_pos_m, a.cube_pos_m, atol=1e-4, rtol=0)
    torch.testing.assert_close(b.fingertip_pos_m, a.fingertip_pos_m, atol=1e-3, rtol=0)
    torch.testing.assert_close(b.applied_torque_nm, a.applied_torque_nm, atol=5e-3, rtol=0)
    dots = (b.fingertip_quat_xyzw * a.fingertip_quat_xyzw).sum(-1).abs()
    assert dots.min() > 1 - 1e-4


def test_released_cube_rests_at_half_its_edge():
    warp = _warp(1)
    warp.set_params(torch.arange(1), nominal_physics_params(1, TaskConfig()))
    warp.reset(torch.arange(1), HOME.expand(1, 9), torch.tensor([[0.0, 0.0, 0.06]]), torch.tensor([[0, 0, 0, 1.0]]))
    for _ in range(60):
        warp.step(torch.zeros(1, 9))
    assert warp.state().cube_pos_m[0, 2].item() == pytest.approx(cube.HALF_EDGE_M, abs=5e-4)


def test_over_limit_torque_is_clipped():
    warp = _warp(1)
    warp.set_params(torch.arange(1), nominal_physics_params(1, TaskConfig()))
    warp.step(torch.full((1, 9), 10.0))
    applied = warp.state().applied_torque_nm
    assert applied.abs().max() <= tp.MAX_TORQUE_NM + 1e-5 and applied.max() > 0.3


def test_parameters_and_resets_are_per_env(pair):
    _, warp = pair
    params = nominal_physics_params(N, TaskConfig())
    params.cube_mass_kg[:] = torch.tensor([0.05, 0.1, 0.2])
    warp.set_params(torch.arange(N), params)
    masses = warp._fields["body_mass"][:, warp.index.cube_body]
    torch.testing.assert_close(masses.cpu(), torch.tensor([0.05, 0.1, 0.2]))
    before = warp.state().joint_pos_rad.clone()
    warp.reset(torch.tensor([1]), HOME.expand(1, 9) * 0.5, torch.tensor([[0.0, 0.0, 0.0325]]),
               torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    after = warp.state().joint_pos_rad
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    torch.testing.assert_close(after[1], HOME * 0.5)


def test_env_runs_on_the_warp_backend():
    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv

    env = ReposeEnv(EnvConfig(num_envs=2, backend="warp", device="cpu", task=TaskConfig(level=4)))
    for _ in range(3):
        obs, rewards, dones, _ = env.step(torch.zeros(2, 9))
    assert obs["policy"].shape == (2, 75) and torch.isfinite(obs["critic"]).all() and torch.isfinite(rewards).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_state_is_shared_with_torch_without_copies():
    import warp as wp

    warp = _warp(4, device="cuda:0")
    assert warp._qpos.data_ptr() == wp.to_torch(warp.d.qpos).data_ptr()
    warp.step(torch.zeros(4, 9, device="cuda"))
    state = warp.state()
    assert state.joint_pos_rad.device.type == "cuda" and torch.isfinite(state.cube_pos_m).all()


def test_bench_env_and_training_run_on_the_warp_backend(tmp_path, capsys):
    import json

    from trifinger_s2r.cli import main

    main(["bench", "env", "--backend", "warp", "--num-envs", "2", "--steps", "4", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["backend"] == "warp" and result["device"] == "cpu" and result["env_policy_steps_per_s"] > 0
    main(["train", "--num-envs", "2", "--max-iterations", "1", "--run-dir", str(tmp_path), "--json",
          "--set", "env.backend=warp", "--set", "num_steps_per_env=2"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["checkpoint"].endswith("model_0.pt")


def test_contact_models_on_warp():
    """A stiffer pyramidal cone (impratio 10) reaches MuJoCo Warp and matches native MuJoCo with it (same pushes,
    0.4 s, 0.1 mm); the elliptic cone, whose Warp solution differs from native MuJoCo's, is refused by name."""
    from trifinger_s2r.sim.contact import ContactModel
    from trifinger_s2r.sim.mujoco_warp_backend import MujocoWarpBackend

    contact = ContactModel("pyramidal", 10.0)
    cpu = MujocoCpuBackend(N, Timing(), num_threads=1, contact=contact)
    warp = MujocoWarpBackend(N, Timing(), device="cpu", contact=contact)
    assert warp.mj_model.opt.impratio == 10.0
    _reset_both(cpu, warp)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        _push_both(cpu, warp, generator)
    torch.testing.assert_close(warp.state().cube_pos_m, cpu.state().cube_pos_m, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="friction_cone 'elliptic' is not supported on the warp backend"):
        MujocoWarpBackend(N, Timing(), device="cpu", contact=ContactModel("elliptic", 10.0))
