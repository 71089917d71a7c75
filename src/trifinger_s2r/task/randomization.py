"""Domain randomisation as data: sample per-env physical parameters and noise from RandomizationConfig."""

from __future__ import annotations

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.backend import PhysicsParams
from trifinger_s2r.task.config import RandomizationConfig, TaskConfig, Uniform

GRAVITY_MPS2 = (0.0, 0.0, -9.81)
CUBE_FRICTION = 1.0
TABLE_FRICTION = 0.1
"""The paper's materials; a contact's coefficient is the average of its two materials, as PhysX combines them."""
ROBOT_FRICTION = 1.0


def _uniform(dist: Uniform, shape, generator: torch.Generator, device) -> torch.Tensor:
    return dist.low + (dist.high - dist.low) * torch.rand(shape, generator=generator, device=device)


def _contact_frictions(cube_friction: torch.Tensor, table_friction: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "finger_cube_friction": 0.5 * (ROBOT_FRICTION + cube_friction),
        "cube_table_friction": 0.5 * (cube_friction + table_friction),
        "finger_table_friction": 0.5 * (ROBOT_FRICTION + table_friction),
    }


def nominal_physics_params(n: int, task: TaskConfig, device="cpu") -> PhysicsParams:
    """Parameters without randomisation: the nominal robot and cube."""
    ones = torch.ones(n, device=device)
    joints = torch.ones(n, tp.NUM_JOINTS, device=device)
    return PhysicsParams(
        cube_mass_kg=cube.MASS_KG * ones,
        cube_edge_m=cube.EDGE_M * ones,
        **_contact_frictions(CUBE_FRICTION * ones, TABLE_FRICTION * ones),
        gravity_mps2=torch.tensor(GRAVITY_MPS2, device=device).expand(n, 3).clone(),
        joint_lower_rad=joints * torch.tensor(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD), device=device),
        joint_upper_rad=joints * torch.tensor(tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD), device=device),
        torque_limit_nm=joints * task.torque_limit_nm,
        safety_kd=joints * torch.tensor(tp.per_finger(task.safety_kd), device=device),
        joint_friction_nm=0.0 * joints,
        joint_damping=0.0 * joints,
        action_lag_s=0.0 * ones,
    )


def sample_physics_params(
    n: int, task: TaskConfig, generator: torch.Generator, device="cpu"
) -> PhysicsParams:
    """n independent draws of every randomised physical parameter (nominal values when randomisation is off)."""
    params = nominal_physics_params(n, task, device)
    dr: RandomizationConfig = task.randomization
    if not dr.enabled:
        return params

    def u(dist: Uniform, *shape: int) -> torch.Tensor:
        return _uniform(dist, (n, *shape), generator, device)

    joint_noise = dr.joint_limit_std_rad * torch.randn(n, tp.NUM_JOINTS, generator=generator, device=device)
    frictions = _contact_frictions(CUBE_FRICTION * u(dr.cube_friction_scale), TABLE_FRICTION * u(dr.table_friction_scale))
    gravity_noise = dr.gravity_std_mps2 * torch.randn(n, 3, generator=generator, device=device)
    size_scale = u(dr.cube_scale)
    mass_scale = u(dr.cube_mass_scale) * (size_scale**3 if dr.whole_cube_scale else 1.0)
    return PhysicsParams(
        cube_mass_kg=params.cube_mass_kg * mass_scale,
        cube_edge_m=params.cube_edge_m * size_scale,
        **frictions,
        gravity_mps2=params.gravity_mps2 + gravity_noise,
        joint_lower_rad=params.joint_lower_rad + joint_noise,
        joint_upper_rad=params.joint_upper_rad + joint_noise,
        torque_limit_nm=params.torque_limit_nm * u(dr.torque_limit_scale, 1),
        safety_kd=params.safety_kd * u(dr.safety_kd_scale, 1),
        joint_friction_nm=u(dr.joint_friction_nm, tp.NUM_JOINTS),
        joint_damping=u(dr.joint_damping, tp.NUM_JOINTS),
        action_lag_s=u(dr.action_lag_s),
    )


def params_vector(params: PhysicsParams, task: TaskConfig) -> torch.Tensor:
    """(N, 10) randomised parameters relative to nominal, for the privileged critic state."""
    return torch.stack(
        [
            params.cube_mass_kg / cube.MASS_KG - 1.0,
            params.cube_edge_m / cube.EDGE_M - 1.0,
            params.finger_cube_friction - 1.0,
            params.cube_table_friction - 0.55,
            params.gravity_mps2[:, 0] / 9.81,
            params.gravity_mps2[:, 1] / 9.81,
            params.gravity_mps2[:, 2] / 9.81 + 1.0,
            params.torque_limit_nm[:, 0] / task.torque_limit_nm - 1.0,
            params.safety_kd[:, 0] / task.safety_kd[0] - 1.0,
            params.action_lag_s / 0.005,
        ],
        dim=-1,
    )


PARAMS_VECTOR_SIZE = 10


def sample_action_bias(n: int, dr: RandomizationConfig, generator: torch.Generator, device="cpu") -> torch.Tensor:
    """(n, 9) per-episode constant action bias (normalised units)."""
    if not dr.enabled:
        return torch.zeros(n, tp.NUM_JOINTS, device=device)
    return dr.action_bias_std * torch.randn(n, tp.NUM_JOINTS, generator=generator, device=device)


def noisy_action(
    action: torch.Tensor, bias: torch.Tensor, dr: RandomizationConfig, generator: torch.Generator
) -> torch.Tensor:
    """The reference's action pipeline: clamp to [-1, 1], add noise and bias, clamp again."""
    action = action.clamp(-1.0, 1.0)
    if dr.enabled:
        action = action + bias + dr.action_noise_std * torch.randn(action.shape, generator=generator, device=action.device)
    return action.clamp(-1.0, 1.0)
