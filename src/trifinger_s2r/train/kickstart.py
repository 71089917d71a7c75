"""Kickstarting (Schmitt et al. 2018): PPO with an imitation term towards the scripted teacher, fading out.

DAgger alone gives a student at a small fraction of its teacher's level-4 success, and PPO from it ends at about half
the teacher's (docs/benchmarks.md). Here PPO keeps a second loss, the mean squared error between the actor's mean and
the teacher's action for the same state, weighted by `ppo.teacher_coef`, which falls linearly to 0 over
`ppo.teacher_decay_iterations` updates (0: stays). `TeacherObservations` adds the teacher's action to every
observation as the group "teacher", so that rsl_rl's rollout storage keeps it beside the transition and hands it back
in each mini-batch; the actor reads only its own group. `ReferencePPO` (train.ppo) adds the term's gradient and saves how many updates it has made, so that
`--resume` continues the decay.
"""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.task.expert import ExpertConfig
from trifinger_s2r.train.imitation import teacher_action
from trifinger_s2r.train.ppo import TEACHER_GROUP


class TeacherObservations(VecEnv):
    """A ReposeEnv whose observations also hold the teacher's action for the env's current true state."""

    def __init__(self, env: ReposeEnv, expert: ExpertConfig) -> None:
        self.env = env
        self.expert = expert

    def __getattr__(self, name: str):
        return getattr(self.__dict__["env"], name)

    def _with_teacher(self, obs: TensorDict) -> TensorDict:
        obs[TEACHER_GROUP] = teacher_action(self.env, self.expert)
        return obs

    def reset(self) -> tuple[TensorDict, dict]:
        obs, extras = self.env.reset()
        return self._with_teacher(obs), extras

    def get_observations(self) -> TensorDict:
        return self._with_teacher(self.env.get_observations())

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        obs, rewards, dones, extras = self.env.step(actions)
        return self._with_teacher(obs), rewards, dones, extras
