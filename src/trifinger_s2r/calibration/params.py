"""The physical parameters calibration fits, and how they are applied to the MuJoCo backend."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.task.config import TaskConfig
from trifinger_s2r.task.randomization import nominal_physics_params

NOMINAL_CONTACT_TIMECONST_S = 0.02
"""MuJoCo's default solref time constant, the scene's contacts."""


@dataclass(frozen=True)
class PhysicalParams:
    """One robot-and-cube set of the fitted parameters (defaults: our simulation's nominal robot)."""

    torque_scale: float = 1.0
    """Motor torque per commanded torque (the torque constant relative to nominal)."""
    safety_kd_scale: float = 1.0
    """Safety damping relative to tp.SAFETY_KD."""
    joint_damping_upper: float = 0.0
    """Viscous damping (N*m*s/rad) of each finger's base->upper joint; _middle and _lower alike."""
    joint_damping_middle: float = 0.0
    joint_damping_lower: float = 0.0
    joint_friction_upper_nm: float = 0.0
    """Dry friction of each finger's base->upper joint; _middle and _lower alike."""
    joint_friction_middle_nm: float = 0.0
    joint_friction_lower_nm: float = 0.0
    cube_mass_kg: float = 0.094
    cube_table_friction: float = 0.55
    finger_cube_friction: float = 1.0
    contact_timeconst_s: float = NOMINAL_CONTACT_TIMECONST_S
    """Contact softness of the cube's contacts (MuJoCo solref time constant)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value}")

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in fields(PhysicalParams)]

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in self.names()], dtype=np.float64)

    @classmethod
    def from_vector(cls, values: np.ndarray) -> PhysicalParams:
        return cls(**{n: float(v) for n, v in zip(cls.names(), values, strict=True)})


def _per_joint(upper: float, middle: float, lower: float) -> torch.Tensor:
    return torch.tensor(tp.per_finger((upper, middle, lower)), dtype=torch.float32)


def apply_params(backend: MujocoCpuBackend, params: list[PhysicalParams]) -> np.ndarray:
    """Set one parameter set per env of the backend; returns (N, 1) torque scales to multiply commands by.

    The torque scale multiplies the command before the motor's clip, whose limit scales with it (a weaker motor
    clips the same command)."""
    if len(params) != backend.num_envs:
        raise ValueError(f"{len(params)} parameter sets for {backend.num_envs} envs")
    n, task = len(params), TaskConfig()
    physics = nominal_physics_params(n, task)
    col = {name: torch.tensor([getattr(p, name) for p in params], dtype=torch.float32) for name in PhysicalParams.names()}
    physics.cube_mass_kg = col["cube_mass_kg"]
    physics.finger_cube_friction = col["finger_cube_friction"]
    physics.cube_table_friction = col["cube_table_friction"]
    physics.torque_limit_nm = physics.torque_limit_nm * col["torque_scale"][:, None]
    physics.safety_kd = physics.safety_kd * col["safety_kd_scale"][:, None]
    physics.joint_damping = torch.stack([_per_joint(p.joint_damping_upper, p.joint_damping_middle,
                                                    p.joint_damping_lower) for p in params])
    physics.joint_friction_nm = torch.stack([_per_joint(p.joint_friction_upper_nm, p.joint_friction_middle_nm,
                                                        p.joint_friction_lower_nm) for p in params])
    ids = torch.arange(n)
    backend.set_params(ids, physics)
    ix = backend.index
    cube_pairs = np.concatenate([ix.finger_cube_pairs, ix.cube_table_pairs])
    solref = backend.batch.expand("pair_solref")
    solref[np.ix_(np.arange(n), cube_pairs, [0])] = col["contact_timeconst_s"].double().numpy()[:, None, None]
    return col["torque_scale"].double().numpy()[:, None]
