"""Where objects other than the cube start and where their goals go, per env (randomization.objects, the robustness
study), the same rules in MuJoCo and on PyBullet:
- starts lie on the table at the object's resting height (the cuboid on a long side: random yaw times one of its
  four lying face-up orientations); an object taller than the fingertips' lowest point at the home pose (6.9 cm:
  only the x2 cube, 13 cm) would start inside a finger, so it starts at the arena's centre, where its corners
  (9.2 cm from the axis) stay clear of the tips (9.55 cm);
- on-table goals (levels -1, 1) lie at the object's resting height; goals in the air are raised to it where lower;
- goal (and start) distances from the centre shrink by (R - r_object) / (R - r_cube), with R the arena radius and r
  the bounding radius, the rule move_cube uses for the cube, so that a larger object stays inside the wall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot.objects import ObjectVariant, bounding_radius_m, variant
from trifinger_s2r.task.geometry import quat_from_yaw, quat_mul
from trifinger_s2r.task.goals import FACE_UP_QUATS, object_goals, object_starts


@dataclass(frozen=True)
class ObjectTable:
    """The variants a batch of envs holds, and which one each env holds."""

    variants: tuple[ObjectVariant, ...]
    env_object: torch.Tensor
    """(N,) index into variants of each env's object (fixed for the env's lifetime: the backend builds it)."""
    bounding_radius_m: torch.Tensor
    """(K,) per variant."""
    resting_height_m: torch.Tensor
    """(K,) per variant."""
    features: torch.Tensor
    """(K, OBJECT_FEATURE_SIZE) per variant: what the privileged critic is told about the object (object_features)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)


def object_table(names: tuple[str, ...], env_object: torch.Tensor) -> ObjectTable:
    """The table over the named variants (robot.objects.VARIANTS); env_object (N,) indexes names per env (the
    backend's assignment)."""
    if not names:
        raise ValueError("object_table needs at least one object variant")
    variants = tuple(variant(n) for n in names)
    device = env_object.device
    radius = [float(bounding_radius_m(v.shape, [v.half_size_m])[0]) for v in variants]
    return ObjectTable(
        variants=variants,
        env_object=env_object,
        bounding_radius_m=torch.tensor(radius, device=device),
        resting_height_m=torch.tensor([v.resting_height_m for v in variants], device=device),
        features=torch.stack([object_features(v) for v in variants]).to(device),
    )


OBJECT_FEATURE_SIZE = 4


def object_features(v: ObjectVariant) -> torch.Tensor:
    """(4,) the object for the privileged critic: 1 for a sphere (0 for a box), then its half sizes along the body's
    x, y, z relative to the cube's minus 1 (0 for the nominal cube). The actor never sees them (the paper's set-up:
    the policy is given the nominal cube's keypoints), but a critic blind to the object must average the values of
    a rolling sphere and a 752 g cube seen in the same state."""
    half = torch.tensor(v.half_size_m, dtype=torch.float32) / cube.HALF_EDGE_M - 1.0
    return torch.cat([torch.tensor([1.0 if v.shape == "sphere" else 0.0]), half])


def start_positions(table: ObjectTable, env_ids: torch.Tensor, pos_m: torch.Tensor,
                    size_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """(n, 3) resting starts for envs env_ids from the level sampler's (n, 3): inside the wall, at the centre for an
    object taller than the fingertips at home, at the resting height (times the randomised size scale)."""
    k = table.env_object[env_ids]
    pos = object_starts(pos_m, table.bounding_radius_m[k], table.resting_height_m[k])
    pos[:, 2] = table.resting_height_m[k] * size_scale
    return pos


def start_quats(table: ObjectTable, env_ids: torch.Tensor, quat_xyzw: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
    """(n, 4) starting orientations, in quat_xyzw's dtype (PyBullet's episodes pass float64): the sampled ones where
    every face-up orientation rests alike (cube, sphere); for an object that must lie (the cuboid) a random yaw times
    one of its lying face-up orientations."""
    quat, device = quat_xyzw.clone(), quat_xyzw.device
    k = table.env_object[env_ids]
    for index, v in enumerate(table.variants):
        rows = (k == index).nonzero().flatten()
        if len(v.lying_face_up_indices) == len(FACE_UP_QUATS) or len(rows) == 0:
            continue
        allowed = torch.tensor(v.lying_face_up_indices, device=device)
        pick = torch.randint(0, len(allowed), (len(rows),), generator=generator, device=device)
        yaw = 2 * math.pi * torch.rand(len(rows), generator=generator, device=device)
        quat[rows] = quat_mul(quat_from_yaw(yaw), FACE_UP_QUATS.to(device)[allowed[pick]]).to(quat.dtype)
    return quat


def goal_positions(table: ObjectTable, env_ids: torch.Tensor, level: int, goal_pos_m: torch.Tensor) -> torch.Tensor:
    """(n, 3) goal positions for envs env_ids: inside the wall, on-table goals at the resting height, goals in the air
    no lower."""
    k = table.env_object[env_ids]
    return object_goals(level, goal_pos_m, table.bounding_radius_m[k], table.resting_height_m[k])


def resting_height_m(table: ObjectTable, size_scale: torch.Tensor) -> torch.Tensor:
    """(N,) every env's resting height at its randomised size scale (N,)."""
    return table.resting_height_m[table.env_object] * size_scale
