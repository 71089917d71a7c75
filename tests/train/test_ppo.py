"""The reference recipe's PPO parts: value normalisation, bounds loss, reward scale; and the level-4 curriculum
through a real (tiny) training run, resumed."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch
from tensordict import TensorDict

from trifinger_s2r.task.curriculum import CurriculumConfig
from trifinger_s2r.train.config import PPOConfig, preset
from trifinger_s2r.train.ppo import ReferencePPO, ValueNormalizedMLP, bounds_loss
from trifinger_s2r.train.trainer import train


def test_normalised_value_loss_equals_rsl_rls_loss_divided_by_the_return_variance():
    torch.manual_seed(0)
    obs = TensorDict({"critic": torch.randn(64, 5)}, batch_size=[64])
    critic = ValueNormalizedMLP(obs, {"critic": ["critic"]}, "critic", 1, hidden_dims=[16])
    returns = 300.0 + 50.0 * torch.randn(64, 1)
    critic.return_normalizer.update(returns)
    norm = critic.return_normalizer
    sigma = critic.return_scale()
    assert abs(norm.mean.item() - returns.mean().item()) < 1e-3 and sigma > 40
    values = critic(obs)
    normalised_output = torch.nn.Sequential.forward(critic.mlp, critic.get_latent(obs))
    assert torch.allclose(values, normalised_output * sigma + norm.mean, atol=1e-3)
    rsl_rl_loss = (returns - values).pow(2).mean() / sigma**2
    reference_loss = ((returns - norm.mean) / sigma - normalised_output).pow(2).mean()
    assert torch.allclose(rsl_rl_loss, reference_loss, rtol=1e-4)


def test_bounds_gradient_hook_equals_adding_the_bounds_loss():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    x = 3.0 * torch.randn(32, 4)
    coef = 0.5

    def surrogate(out):
        return (out * torch.linspace(-1, 1, 3)).sum(dim=1).mean()

    explicit = surrogate(layer(x)) + coef * bounds_loss(layer(x))
    expected = torch.autograd.grad(explicit, layer.weight)[0]
    handle = layer.register_forward_hook(lambda m, i, o: ReferencePPO._add_bounds_gradient(
        SimpleNamespace(bounds_loss_coef=coef), m, i, o))
    hooked = torch.autograd.grad(surrogate(layer(x)), layer.weight)[0]
    handle.remove()
    assert bounds_loss(layer(x)) > 0  # the test exercises the bound
    assert torch.allclose(hooked, expected, atol=1e-6)


def test_bounds_gradient_hook_keeps_no_graph_alive_without_a_backward_pass():
    """A forward that is never backpropagated (rsl_rl's symmetry loss, logged only) frees its graph at once: the
    earlier tensor hook made a reference cycle that leaked memory every iteration."""
    import gc
    import weakref

    layer = torch.nn.Linear(4, 3)
    layer.register_forward_hook(lambda m, i, o: ReferencePPO._add_bounds_gradient(
        SimpleNamespace(bounds_loss_coef=0.5), m, i, o))
    gc.disable()
    try:
        out = layer(3.0 * torch.randn(8, 4))
        alive = weakref.ref(out)
        del out
        assert alive() is None
    finally:
        gc.enable()


def test_bounds_loss_is_zero_inside_the_soft_bound():
    assert bounds_loss(torch.tensor([[1.1, -1.1, 0.0]])) == 0
    assert bounds_loss(torch.tensor([[1.6, -2.1, 0.0]])).item() == pytest.approx(0.25 + 1.0)


@pytest.mark.parametrize(("field", "value"), [("reward_scale", 0.0), ("bounds_loss_coef", -1.0)])
def test_bad_ppo_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"ppo.{field}"):
        PPOConfig(**{field: value})


def test_value_normalization_refuses_value_clipping():
    with pytest.raises(ValueError, match="do not combine"):
        PPOConfig(value_normalization=True, use_clipped_value_loss=True)


def _tiny_level_4(max_iterations: int, symmetry: bool = False):
    cfg = preset("repose-cpu")
    task = dataclasses.replace(
        cfg.env.task, episode_length_steps=4, grasp_start_share=0.5,
        curriculum=CurriculumConfig(enabled=True, window_episodes=10_000, full_difficulty_share=0.0),
    )
    ppo = dataclasses.replace(cfg.ppo, value_normalization=True, bounds_loss_coef=1e-4, reward_scale=0.01,
                              value_loss_coef=4.0, symmetry_augmentation=symmetry,
                              teacher_coef=0.0 if symmetry else cfg.ppo.teacher_coef)
    env = dataclasses.replace(cfg.env, num_envs=8, num_threads=1, task=task)
    return dataclasses.replace(cfg, env=env, ppo=ppo, num_steps_per_env=4, max_iterations=max_iterations,
                               save_interval=1)


def test_reference_recipe_with_curriculum_trains_and_resume_restores_the_curriculum(tmp_path):
    """Each iteration ends 8 curriculum episodes; a resumed run continues the curriculum's episode window and the
    env-step count from the checkpoint instead of starting them again."""
    first = train(_tiny_level_4(2), tmp_path, show_progress=False)
    saved = torch.load(first, weights_only=False)
    assert any("return_normalizer" in key for key in saved["critic_state_dict"])
    state = saved["infos"]["env"]
    assert state["curriculum"]["window_episodes"] == 16 and state["total_env_steps"] == 2 * 8 * 4
    train(_tiny_level_4(3), tmp_path, resume=True, show_progress=False)
    resumed = torch.load(tmp_path / "model_2.pt", weights_only=False)["infos"]["env"]
    assert resumed["curriculum"]["window_episodes"] == 24 and resumed["total_env_steps"] == 3 * 8 * 4
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert [p["curriculum_stage"] for p in progress] == ["lift"] * 3
    assert all(0.0 <= p["lifted_share"] <= 1.0 for p in progress)


def test_symmetry_augmentation_trains(tmp_path):
    last = train(_tiny_level_4(1, symmetry=True), tmp_path, show_progress=False)
    assert last.name == "model_0.pt"


def test_actor_warmup_trains_only_the_critic_for_its_iterations(tmp_path):
    """With actor_warmup_iterations=1, the first update leaves every actor weight as it was and changes the critic;
    the second changes the actor."""
    from trifinger_s2r.train.distributed import process_group_from_env
    from trifinger_s2r.train.trainer import make_runner

    cfg = _tiny_level_4(2)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, actor_warmup_iterations=1))
    runner = make_runner(cfg, tmp_path, process_group_from_env())

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def changed(before, module):
        return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))

    for iteration in range(2):
        actor, critic = snapshot(runner.alg.actor), snapshot(runner.alg.critic)
        runner.learn(num_learning_iterations=1)
        assert changed(critic, runner.alg.critic)
        assert changed(actor, runner.alg.actor) == (iteration == 1)
        assert all(p.requires_grad for p in runner.alg.actor.parameters())


def test_negative_actor_warmup_is_refused():
    with pytest.raises(ValueError, match="ppo.actor_warmup_iterations"):
        PPOConfig(actor_warmup_iterations=-1)
