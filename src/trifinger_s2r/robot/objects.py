"""Objects in place of the cube: the RRC cube v2 and the paper's robustness variants (facts only, no simulator).

Every variant has the cube v2's density (0.094 kg / 0.065^3 m^3 = 342 kg/m^3), so mass follows volume: the cube
scaled x0.5 weighs 1/8 of it, x2 weighs 8 times it. The cuboid is the RRC's 2 x 8 x 2 cm one (long axis along its
y, as in trifinger_simulation's move_cuboid) and starts lying on a long side (centre 1 cm above the table); the
sphere has the cube's edge as diameter (6.5 cm). A policy is still given the nominal cube's keypoints at the
object's pose (the paper's set-up), so only the physics changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trifinger_s2r.robot import cube

CUBE_VOLUME_M3 = 8.0 * math.prod((cube.HALF_EDGE_M,) * 3)
DENSITY_KG_PER_M3 = cube.MASS_KG / CUBE_VOLUME_M3
"""The cube v2's density (342 kg/m^3), shared by every variant."""
SHAPES = ("box", "sphere")


@dataclass(frozen=True)
class ObjectVariant:
    """A rigid object that replaces the cube: its shape, size, mass and how it rests on the table."""

    name: str
    shape: str
    """'box' or 'sphere'."""
    half_size_m: tuple[float, float, float]
    """Box half extents along the body's x, y, z; a sphere's radius three times."""
    description: str
    lying_face_up_indices: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    """Which of the six face-up base orientations (task.goals.FACE_UP_QUATS) the object may start in: all for a cube
    or a sphere; for the cuboid only those with its long y axis horizontal (0, 2, 4, 5), so that it lies."""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; valid: {list(SHAPES)}")

    @property
    def volume_m3(self) -> float:
        if self.shape == "sphere":
            return 4.0 / 3.0 * math.pi * self.half_size_m[0] ** 3
        return 8.0 * math.prod(self.half_size_m)

    @property
    def mass_kg(self) -> float:
        """At the cube v2's density (the nominal cube's is exactly cube.MASS_KG)."""
        return cube.MASS_KG * (self.volume_m3 / CUBE_VOLUME_M3)

    @property
    def resting_height_m(self) -> float:
        """Height of the centre above the table when the object rests in one of its starting orientations."""
        if self.shape == "sphere":
            return self.half_size_m[0]
        # Every allowed face-up orientation puts the body's z or x axis vertical; both are equal for our variants.
        return self.half_size_m[2]

    @property
    def scale_to_cube(self) -> float:
        """Size relative to the nominal cube (largest half extent over the cube's half edge)."""
        return max(self.half_size_m) / cube.HALF_EDGE_M


def inertia_kgm2(shape: str, mass_kg: np.ndarray, half_size_m: np.ndarray) -> np.ndarray:
    """(N, 3) principal moments of inertia of N solid boxes or spheres: mass (N,), half sizes (N, 3)."""
    mass = np.asarray(mass_kg, dtype=np.float64)[:, None]
    half = np.asarray(half_size_m, dtype=np.float64)
    if shape == "sphere":
        return 0.4 * mass * half[:, :1] ** 2 * np.ones((1, 3))
    sq = half**2
    return mass / 3.0 * np.stack([sq[:, 1] + sq[:, 2], sq[:, 0] + sq[:, 2], sq[:, 0] + sq[:, 1]], axis=-1)


def bounding_radius_m(shape: str, half_size_m: np.ndarray) -> np.ndarray:
    """(N,) radius of the sphere around the centre that holds each object (MuJoCo's geom_rbound)."""
    half = np.asarray(half_size_m, dtype=np.float64)
    return half[:, 0] if shape == "sphere" else np.linalg.norm(half, axis=-1)


_H = cube.HALF_EDGE_M
VARIANTS: dict[str, ObjectVariant] = {
    v.name: v
    for v in (
        ObjectVariant("cube", "box", (_H, _H, _H), "the RRC cube v2: 6.5 cm, 94 g"),
        ObjectVariant("cube_x0.5", "box", (_H / 2, _H / 2, _H / 2), "the cube scaled x0.5: 3.25 cm, 11.75 g"),
        ObjectVariant("cube_x2", "box", (2 * _H, 2 * _H, 2 * _H), "the cube scaled x2: 13 cm, 752 g"),
        ObjectVariant("cuboid", "box", (0.01, 0.04, 0.01), "the RRC cuboid: 2 x 8 x 2 cm, 11 g, lying on a long side",
                      lying_face_up_indices=(0, 2, 4, 5)),
        ObjectVariant("sphere", "sphere", (_H, _H, _H), "a sphere of 6.5 cm diameter, 49 g"),
    )
}
"""Every object a study can use, by name; 'cube' is the nominal one."""


def variant(name: str) -> ObjectVariant:
    """The variant of that name; an unknown name lists the valid ones."""
    if name not in VARIANTS:
        raise ValueError(f"unknown object variant {name!r}; valid: {list(VARIANTS)}")
    return VARIANTS[name]
