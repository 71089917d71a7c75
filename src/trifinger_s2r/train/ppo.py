"""The reference recipe's PPO parts that rsl_rl lacks: reward scaling, value normalisation, the action bounds loss;
and a critic warm-up for runs that start from an imitated actor.

The reference (rl_games, shared/reference/sixdof-learning.md section 2.1) scales rewards by 0.01
(`scale_value`), learns the value in units normalised by running return statistics (`normalize_value`) and adds
a bounds loss on the action means (`bounds_loss_coef` 1e-4, soft bound 1.1). Here:
- `ValueNormalizedMLP` is the critic: its MLP predicts the normalised value and its output is de-normalised, so
  rsl_rl's GAE sees values in return units;
- `ReferencePPO` scales rewards, updates the return statistics before each update and divides the value loss by
  the return variance, which makes rsl_rl's (R - V)^2 exactly the normalised ((R - mu) / sigma - v_hat)^2;
  the bounds loss enters as an identity on the actor's mean whose backward adds the loss term's gradient.
"""

from __future__ import annotations

import torch
from rsl_rl.algorithms import PPO
from rsl_rl.models import MLPModel
from rsl_rl.modules import EmpiricalNormalization

SOFT_ACTION_BOUND = 1.1
"""rl_games' soft bound on action means; actions are in [-1, 1]."""


class ValueNormalizedMLP(MLPModel):
    """rsl_rl's MLP critic whose output is de-normalised by running statistics of the returns."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.return_normalizer = EmpiricalNormalization(1)

    def forward(self, obs, masks=None, hidden_state=None, stochastic_output: bool = False) -> torch.Tensor:
        normalised = super().forward(obs, masks, hidden_state, stochastic_output)
        norm = self.return_normalizer
        return normalised * (norm._std + norm.eps) + norm._mean

    def return_scale(self) -> float:
        """sigma of the de-normalisation (the value loss is divided by its square)."""
        return float(self.return_normalizer._std + self.return_normalizer.eps)


def bounds_loss(mean: torch.Tensor) -> torch.Tensor:
    """rl_games' bounds loss: per sample, the squared excess of each action mean beyond +-1.1, summed; then averaged."""
    high = (mean - SOFT_ACTION_BOUND).clamp(min=0.0)
    low = (mean + SOFT_ACTION_BOUND).clamp(max=0.0)
    return (high.square() + low.square()).sum(dim=-1).mean()


class ReferencePPO(PPO):
    """rsl_rl's PPO with the reference's reward scale, value normalisation and bounds loss (each optional)."""

    def __init__(self, actor, critic, storage, reward_scale: float = 1.0, bounds_loss_coef: float = 0.0,
                 actor_warmup_iterations: int = 0, **kwargs) -> None:
        super().__init__(actor, critic, storage, **kwargs)
        self.reward_scale = reward_scale
        self.actor_warmup_left = actor_warmup_iterations
        self.bounds_loss_coef = bounds_loss_coef
        self.base_value_loss_coef = self.value_loss_coef
        if bounds_loss_coef > 0:
            actor.mlp.register_forward_hook(self._add_bounds_gradient)

    def process_env_step(self, obs, rewards, dones, extras) -> None:
        super().process_env_step(obs, rewards * self.reward_scale, dones, extras)

    def update(self) -> dict[str, float]:
        if isinstance(self.critic, ValueNormalizedMLP):
            self.critic.return_normalizer.update(self.storage.returns.reshape(-1, 1))
            self.value_loss_coef = self.base_value_loss_coef / self.critic.return_scale() ** 2
        if self.actor_warmup_left <= 0:
            return super().update()
        self.actor_warmup_left -= 1
        return self._critic_only_update()

    def _critic_only_update(self) -> dict[str, float]:
        """An update with the actor frozen (its surrogate loss then has no gradient; the KL is 0, so the adaptive
        learning rate stays)."""
        trainable = [p for p in self.actor.parameters() if p.requires_grad]
        for p in trainable:
            p.requires_grad_(False)
        try:
            return super().update()
        finally:
            for p in trainable:
                p.requires_grad_(True)

    def _add_bounds_gradient(self, module, inputs, mean: torch.Tensor) -> torch.Tensor | None:
        """Forward hook: the actor's mean, passed through unchanged, whose gradient gains the bounds loss's."""
        if mean.requires_grad:
            return _BoundsLossGradient.apply(mean, self.bounds_loss_coef)
        return None


class _BoundsLossGradient(torch.autograd.Function):
    """Identity whose backward adds coef * d bounds_loss / d mean. (A tensor hook closing over the mean made a
    reference cycle that kept every forward's graph alive until Python's garbage collector ran: with symmetry
    augmentation's extra, never-backpropagated actor forward that grew by ~0.4 GB per iteration at 256 envs.)"""

    @staticmethod
    def forward(ctx, mean: torch.Tensor, coef: float) -> torch.Tensor:
        ctx.save_for_backward(mean)
        ctx.coef = coef
        return mean.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mean,) = ctx.saved_tensors
        return grad + ctx.coef * _bounds_loss_gradient(mean), None


def _bounds_loss_gradient(mean: torch.Tensor) -> torch.Tensor:
    """d bounds_loss / d mean."""
    high = (mean - SOFT_ACTION_BOUND).clamp(min=0.0)
    low = (mean + SOFT_ACTION_BOUND).clamp(max=0.0)
    return 2.0 * (high + low) / mean.shape[0]
