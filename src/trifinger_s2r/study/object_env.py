"""The reposing env with another object in place of the cube (the robustness study), and the pose rules it shares
with the PyBullet runs.

What changes with the object: the simulated shape, size and mass (a generated MuJoCo scene, sim.model.object_scene)
and three pose rules, the same in MuJoCo and on PyBullet:
- starts lie on the table at the object's resting height (the cuboid on a long side: random yaw times one of its
  four lying face-up orientations); an object taller than the fingertips' lowest point at the home pose (6.9 cm:
  only the x2 cube, 13 cm) would start inside a finger, so it starts at the arena's centre, where its corners
  (9.2 cm from the axis) stay clear of the tips (9.55 cm);
- on-table goals (levels -1, 1) lie at the object's resting height, so that "on the table at (x, y)" stays
  reachable; goals in the air are raised to it where lower;
- goal (and start) distances from the centre shrink by (R - r_object) / (R - r_cube), with R the arena radius and r
  the bounding radius, the rule move_cube uses for the cube, so that a larger object's goal stays inside the wall.
What does not change: the policy's observation and reward use the nominal cube's keypoints at the object's pose, as
in the paper, and success is judged on the object's position (and orientation where the level judges it).
"""

from __future__ import annotations

import math

import torch

from trifinger_s2r.envs.repose_env import CUBE_DROP_HEIGHT_M, EnvConfig, ReposeEnv
from trifinger_s2r.robot import cube
from trifinger_s2r.robot.objects import ObjectVariant, bounding_radius_m, variant
from trifinger_s2r.task.geometry import quat_from_yaw, quat_mul
from trifinger_s2r.task.goals import FACE_UP_QUATS, arena_factor, object_goals, object_starts

HOME_TIP_AXIS_DISTANCE_M = 0.0955
"""Closest approach of the fingertips to the arena's vertical axis at the home pose (tested)."""


def arena_scale(obj: ObjectVariant) -> float:
    """Factor on distances from the arena's centre that keeps the object inside the wall wherever the cube would be."""
    return arena_factor(_bounding_radius_m(obj))


def _bounding_radius_m(obj: ObjectVariant) -> float:
    return float(bounding_radius_m(obj.shape, [obj.half_size_m])[0])


def start_positions(obj: ObjectVariant, pos_m: torch.Tensor, size_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """(n, 3) starting positions from the level sampler's (n, 3): at the resting height (times the randomised size
    scale), inside the wall, and at the centre for an object taller than the fingertips at home."""
    pos = object_starts(pos_m, _bounding_radius_m(obj), obj.resting_height_m)
    pos[:, 2] = obj.resting_height_m * size_scale
    return pos


def start_quats(obj: ObjectVariant, quat_xyzw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) starting orientations: the sampled ones where every face-up orientation rests alike (cube, sphere);
    for the cuboid a random yaw times one of its lying face-up orientations."""
    if len(obj.lying_face_up_indices) == len(FACE_UP_QUATS):
        return quat_xyzw
    n, device = len(quat_xyzw), quat_xyzw.device
    allowed = torch.tensor(obj.lying_face_up_indices, device=device)
    faces = FACE_UP_QUATS.to(device)[allowed[torch.randint(0, len(allowed), (n,), generator=generator, device=device)]]
    yaw = 2 * math.pi * torch.rand(n, generator=generator, device=device)
    return quat_mul(quat_from_yaw(yaw), faces)


def goal_positions(obj: ObjectVariant, level: int, goal_pos_m: torch.Tensor) -> torch.Tensor:
    """(n, 3) goal positions for the object: inside the wall, on-table goals at its resting height, goals in the air
    no lower."""
    return object_goals(level, goal_pos_m, _bounding_radius_m(obj), obj.resting_height_m)


class ObjectEnv(ReposeEnv):
    """ReposeEnv on the MuJoCo CPU backend with an object variant (robot.objects.VARIANTS) in place of the cube.

    Evaluation only: episodes start on the table (no grasped starts) and goals come from the level (no curriculum).
    """

    def __init__(self, cfg: EnvConfig, obj: str) -> None:
        from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
        from trifinger_s2r.timing import Timing

        self.object = variant(obj)
        if cfg.task.grasp_start_share > 0 or cfg.task.curriculum.enabled:
            raise ValueError("ObjectEnv evaluates: use task.config.for_evaluation (no grasped starts, no curriculum)")
        timing = Timing.from_mode(cfg.task.physics_mode)
        backend = MujocoCpuBackend(cfg.num_envs, timing, cfg.collision, cfg.num_threads, obj=obj)
        super().__init__(cfg, backend)

    # The two overrides below adjust what ReposeEnv samples and pass on anything else it returns (its private
    # methods change with the training work; tests/study pins the behaviour).
    def _initial_states(self, n: int, cube_edge_m: torch.Tensor):
        joint_pos, pos, quat, *rest = super()._initial_states(n, cube_edge_m)
        pos = start_positions(self.object, pos, cube_edge_m / cube.EDGE_M)  # the cube's size randomisation, alike
        pos[:, 2] += CUBE_DROP_HEIGHT_M
        return joint_pos, pos, start_quats(self.object, quat, self.generator), *rest

    def _sample_goals(self, cube_quat: torch.Tensor):
        pos, *rest = super()._sample_goals(cube_quat)
        return goal_positions(self.object, self.task.level, pos), *rest
