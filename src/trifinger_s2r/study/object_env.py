"""The reposing env with another object in place of the cube (the robustness study), and the single-object pose
rules it shares with the PyBullet runs.

The env is ReposeEnv with `randomization.objects` set to the one object: the simulated shape, size and mass change
(sim.object_mix), starts and goals follow task.object_rules. What does not change: the policy's observation and
reward use the nominal cube's keypoints at the object's pose, as in the paper, and success is judged on the object's
position (and orientation where the level judges it).
"""

from __future__ import annotations

import dataclasses

import torch

from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
from trifinger_s2r.robot.objects import ObjectVariant, bounding_radius_m, variant
from trifinger_s2r.task import object_rules
from trifinger_s2r.task.goals import arena_factor

HOME_TIP_AXIS_DISTANCE_M = 0.0955
"""Closest approach of the fingertips to the arena's vertical axis at the home pose (tested)."""


def arena_scale(obj: ObjectVariant) -> float:
    """Factor on distances from the arena's centre that keeps the object inside the wall wherever the cube would be."""
    return arena_factor(float(bounding_radius_m(obj.shape, [obj.half_size_m])[0]))


def _one_object(obj: ObjectVariant, rows: int) -> tuple[object_rules.ObjectTable, torch.Tensor]:
    return object_rules.object_table((obj.name,), torch.zeros(rows, dtype=torch.long)), torch.arange(rows)


def start_positions(obj: ObjectVariant, pos_m: torch.Tensor, size_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """(n, 3) resting starts from the level sampler's (n, 3) (task.object_rules.start_positions)."""
    return object_rules.start_positions(*_one_object(obj, len(pos_m)), pos_m, size_scale)


def start_quats(obj: ObjectVariant, quat_xyzw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) starting orientations (task.object_rules.start_quats)."""
    return object_rules.start_quats(*_one_object(obj, len(quat_xyzw)), quat_xyzw, generator)


def goal_positions(obj: ObjectVariant, level: int, goal_pos_m: torch.Tensor) -> torch.Tensor:
    """(n, 3) goal positions for the object (task.object_rules.goal_positions)."""
    return object_rules.goal_positions(*_one_object(obj, len(goal_pos_m)), level, goal_pos_m)


class ObjectEnv(ReposeEnv):
    """ReposeEnv on the MuJoCo CPU backend with an object variant (robot.objects.VARIANTS) in place of the cube.

    Evaluation only: episodes start on the table (no grasped starts) and goals come from the level (no curriculum).
    """

    def __init__(self, cfg: EnvConfig, obj: str) -> None:
        self.object = variant(obj)
        if cfg.task.grasp_start_share > 0 or cfg.task.curriculum.enabled:
            raise ValueError("ObjectEnv evaluates: use task.config.for_evaluation (no grasped starts, no curriculum)")
        randomization = dataclasses.replace(cfg.task.randomization, objects=(obj,), whole_cube_scale=False)
        task = dataclasses.replace(cfg.task, randomization=randomization)
        super().__init__(dataclasses.replace(cfg, backend="mujoco", task=task))
