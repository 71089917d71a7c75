"""The reference recipe's PPO parts that rsl_rl lacks: reward scaling, value normalisation, the action bounds loss;
a critic warm-up for runs that start from an imitated actor; and the kickstarting term (train.kickstart).

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
TEACHER_GROUP = "teacher"
"""The observation group that holds the teacher's actions when kickstarting (train.kickstart)."""


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
                 actor_warmup_iterations: int = 0, teacher_coef: float = 0.0, teacher_decay_iterations: int = 0,
                 **kwargs) -> None:
        super().__init__(actor, critic, storage, **kwargs)
        self.reward_scale = reward_scale
        self.actor_warmup_left = actor_warmup_iterations
        self.bounds_loss_coef = bounds_loss_coef
        self.base_value_loss_coef = self.value_loss_coef
        if bounds_loss_coef > 0:
            actor.mlp.register_forward_hook(self._add_bounds_gradient)
        self.teacher_coef, self.teacher_decay_iterations = teacher_coef, teacher_decay_iterations
        self.teacher_updates, self._teacher_batch, self._teacher_losses = 0, None, []
        if teacher_coef > 0:  # kickstarting (train.kickstart)
            actor.register_forward_pre_hook(self._keep_teacher_actions)
            actor.mlp.register_forward_hook(self._add_teacher_gradient)

    def process_env_step(self, obs, rewards, dones, extras) -> None:
        super().process_env_step(obs, rewards * self.reward_scale, dones, extras)

    def update(self) -> dict[str, float]:
        if isinstance(self.critic, ValueNormalizedMLP):
            self.critic.return_normalizer.update(self.storage.returns.reshape(-1, 1))
            self.value_loss_coef = self.base_value_loss_coef / self.critic.return_scale() ** 2
        if self.actor_warmup_left <= 0:
            losses = super().update()
            if self.teacher_coef > 0:
                losses.update(self._teacher_report())
            return losses
        self.actor_warmup_left -= 1
        return self._critic_only_update()

    def _current_teacher_coef(self) -> float:
        return teacher_coefficient(self.teacher_coef, self.teacher_decay_iterations, self.teacher_updates)

    def _teacher_report(self) -> dict[str, float]:
        """The update's imitation loss and weight (logged as Loss/teacher_mse, Loss/teacher_coef); one more update."""
        mse = sum(self._teacher_losses) / max(len(self._teacher_losses), 1)
        report = {"teacher_mse": mse, "teacher_coef": self._current_teacher_coef()}
        self._teacher_losses.clear()
        self.teacher_updates += 1
        return report

    def _keep_teacher_actions(self, module, args) -> None:
        """Forward pre-hook on the actor: the teacher's actions of the observations it is given, if they have them."""
        obs = args[0] if args else None
        self._teacher_batch = obs.get(TEACHER_GROUP) if obs is not None and TEACHER_GROUP in obs.keys() else None

    def _add_teacher_gradient(self, module, inputs, mean: torch.Tensor) -> torch.Tensor | None:
        coef = self._current_teacher_coef()
        teacher = self._teacher_batch
        if not mean.requires_grad or teacher is None or coef <= 0:
            return None
        if teacher.shape != mean.shape:
            raise ValueError(f"kickstarting: teacher actions {tuple(teacher.shape)} do not match the actor's "
                             f"{tuple(mean.shape)} (symmetry augmentation does not combine with ppo.teacher_coef)")
        self._teacher_losses.append(float((mean.detach() - teacher).square().mean()))
        return TeacherLossGradient.apply(mean, teacher, coef)

    def save(self) -> dict:
        return {**super().save(), "teacher_updates": self.teacher_updates}

    def load(self, loaded_dict: dict, load_cfg: dict | None, strict: bool) -> bool:
        if load_cfg is None or load_cfg.get("optimizer"):  # a resume, not an --init-from
            self.teacher_updates = int(loaded_dict.get("teacher_updates", 0))
        return super().load(loaded_dict, load_cfg, strict)

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


def teacher_coefficient(start_coef: float, decay_iterations: int, updates_done: int) -> float:
    """The imitation term's weight after updates_done updates: linear from start_coef to 0 over decay_iterations
    (0: constant)."""
    if decay_iterations <= 0:
        return start_coef
    return start_coef * max(0.0, 1.0 - updates_done / decay_iterations)


class TeacherLossGradient(torch.autograd.Function):
    """Identity on the actor's mean whose backward adds coef * d MSE(mean, teacher) / d mean (the bounds loss's
    pattern: rsl_rl's update has no hook for an extra loss)."""

    @staticmethod
    def forward(ctx, mean: torch.Tensor, teacher: torch.Tensor, coef: float) -> torch.Tensor:
        ctx.save_for_backward(mean, teacher)
        ctx.coef = coef
        return mean.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        mean, teacher = ctx.saved_tensors
        return grad + ctx.coef * 2.0 * (mean - teacher) / mean.numel(), None, None
