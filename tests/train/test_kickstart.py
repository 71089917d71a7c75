"""Kickstarting (train.kickstart): PPO with a fading imitation term towards the scripted teacher."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.task.expert import ExpertConfig
from trifinger_s2r.train.config import PPOConfig, preset
from trifinger_s2r.train.distributed import process_group_from_env
from trifinger_s2r.train.imitation import teacher_action
from trifinger_s2r.train.kickstart import TeacherObservations
from trifinger_s2r.train.ppo import TEACHER_GROUP, ReferencePPO, teacher_coefficient
from trifinger_s2r.train.trainer import make_runner, train


def test_the_weight_falls_linearly_to_zero_and_stays_without_a_decay():
    assert teacher_coefficient(0.5, 100, 0) == 0.5
    assert teacher_coefficient(0.5, 100, 50) == pytest.approx(0.25)
    assert teacher_coefficient(0.5, 100, 100) == 0.0 and teacher_coefficient(0.5, 100, 400) == 0.0
    assert teacher_coefficient(0.5, 0, 10_000) == 0.5


def test_the_gradient_hook_equals_adding_the_imitation_loss():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 9)
    x, teacher = torch.randn(32, 4), torch.rand(32, 9) * 2 - 1
    coef = 0.7

    def surrogate(out):
        return (out * torch.linspace(-1, 1, 9)).sum(dim=1).mean()

    explicit = surrogate(layer(x)) + coef * torch.nn.functional.mse_loss(layer(x), teacher)
    expected = torch.autograd.grad(explicit, layer.weight)[0]
    owner = SimpleNamespace(_teacher_batch=teacher, _teacher_losses=[], _current_teacher_coef=lambda: coef)
    handle = layer.register_forward_hook(lambda m, i, o: ReferencePPO._add_teacher_gradient(owner, m, i, o))
    hooked = torch.autograd.grad(surrogate(layer(x)), layer.weight)[0]
    handle.remove()
    assert torch.allclose(hooked, expected, atol=1e-6)
    explicit_mse = float(torch.nn.functional.mse_loss(layer(x).detach(), teacher))
    assert owner._teacher_losses[0] == pytest.approx(explicit_mse, rel=1e-5)


def test_mismatched_teacher_actions_are_refused_with_the_shapes():
    owner = SimpleNamespace(_teacher_batch=torch.zeros(8, 9), _teacher_losses=[], _current_teacher_coef=lambda: 1.0)
    mean = torch.zeros(24, 9, requires_grad=True)
    with pytest.raises(ValueError, match=r"teacher actions \(8, 9\) do not match"):
        ReferencePPO._add_teacher_gradient(owner, None, None, mean)


def _tiny(max_iterations: int, coef: float = 1.0, decay: int = 10):
    cfg = preset("repose-cpu")
    task = dataclasses.replace(cfg.env.task, episode_length_steps=6)
    env = dataclasses.replace(cfg.env, num_envs=8, num_threads=1, task=task)
    ppo = dataclasses.replace(cfg.ppo, teacher_coef=coef, teacher_decay_iterations=decay, actor_warmup_iterations=0)
    return dataclasses.replace(cfg, env=env, ppo=ppo, num_steps_per_env=4, max_iterations=max_iterations,
                               save_interval=1)


def test_observations_hold_the_teachers_action_for_the_current_state():
    cfg = _tiny(1)
    env = ReposeEnv(cfg.env)
    wrapped = TeacherObservations(env, ExpertConfig())
    obs, _ = wrapped.reset()
    assert torch.equal(obs[TEACHER_GROUP], teacher_action(env, ExpertConfig()))
    obs, *_ = wrapped.step(torch.zeros(env.num_envs, env.num_actions))
    assert torch.equal(obs[TEACHER_GROUP], teacher_action(env, ExpertConfig()))
    assert obs[TEACHER_GROUP].shape == (8, 9) and obs[TEACHER_GROUP].abs().max() <= 1.0
    assert wrapped.num_envs == env.num_envs and wrapped.task is env.task


def _distance_to_teacher_after(tmp_path, coef: float, iterations: int = 4) -> tuple[float, float]:
    torch.manual_seed(0)
    runner = make_runner(_tiny(iterations, coef=coef, decay=0), tmp_path, process_group_from_env())
    obs = TeacherObservations(runner.env.env, ExpertConfig()).get_observations().clone()

    def distance() -> float:
        with torch.no_grad():
            return float((runner.alg.actor(obs) - obs[TEACHER_GROUP]).square().mean())

    before = distance()
    runner.learn(num_learning_iterations=iterations)
    return before, distance()


def test_a_kickstarted_run_pulls_the_actor_towards_the_teacher_and_resume_continues_the_decay(tmp_path):
    """With a large weight the imitation term dominates PPO's: the actor's mean moves towards the teacher's actions,
    unlike without it; the number of updates (which sets the weight) is saved and a resumed run counts on from it."""
    before, kicked = _distance_to_teacher_after(tmp_path / "kicked", coef=50.0)
    with pytest.raises(AttributeError):  # without kickstarting the env is not wrapped and has no teacher group
        _distance_to_teacher_after(tmp_path / "plain", coef=0.0)
    assert kicked < 0.75 * before
    first = train(_tiny(2), tmp_path / "run", show_progress=False)
    assert torch.load(first, weights_only=False)["teacher_updates"] == 2
    train(_tiny(3), tmp_path / "run", resume=True, show_progress=False)
    assert torch.load(tmp_path / "run" / "model_2.pt", weights_only=False)["teacher_updates"] == 3


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"teacher_coef": -0.1}, "ppo.teacher_coef"),
    ({"teacher_decay_iterations": -1}, "ppo.teacher_decay_iterations"),
    ({"teacher_coef": 0.5, "symmetry_augmentation": True}, "does not combine"),
])
def test_bad_kickstart_settings_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kwargs)


def test_actor_ignores_the_teacher_group():
    """The exported actor reads only its own group: an observation with teacher actions gives the same action."""
    obs = TensorDict({"policy": torch.randn(4, 3)}, batch_size=[4])
    with_teacher = obs.clone()
    with_teacher[TEACHER_GROUP] = torch.ones(4, 9)
    actor = MLPModel(obs, {"actor": ["policy"]}, "actor", 9, hidden_dims=[8])
    assert torch.equal(actor(obs), actor(with_teacher))
