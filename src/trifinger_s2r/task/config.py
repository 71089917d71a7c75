"""Typed configuration of the reposing task: observation and reward choice, weights and randomisation ranges.

Defaults reproduce the paper's set-up (shared/reference/task-spec.md) with its O-KP / R-KP agent, the real
robot's torque limit, and the extra realism the reference lacked (camera rate, delay, noise; latency; safety
damping and torque-limit variation; joint friction and damping).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.robot.objects import VARIANTS
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.task.curriculum import CurriculumConfig
from trifinger_s2r.task.goals import check_level

OBS_TYPES = ("keypoints", "pq", "keypoints_rel")
"""O-KP: cube and goal as 8 keypoints each (75 values); O-PQ: position + quaternion (41 values); O-KP-rel: O-KP plus
the rotation from cube to goal as 6 numbers (81 values)."""
REWARD_TYPES = ("keypoints", "pq")
"""R-KP: mean logistic kernel over 8 keypoint distances; R-PQ: position kernel + inverse rotation angle."""


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {list(valid)}")


@dataclass(frozen=True)
class Uniform:
    """A uniform distribution U(low, high)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"Uniform needs low <= high, got ({self.low}, {self.high})")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms (task-spec section 3); the total is their weighted sum."""

    finger_movement: float = -0.5
    """Sum over fingertips of squared tip speed (m^2/s^2)."""
    finger_reach: float = -250.0
    """Change of the summed fingertip-to-cube distances (m) since the last step."""
    keypoint_pose: float = 2000.0
    """R-KP: dt * mean over 8 corners of lgsk(distance; 30, 2)."""
    keypoint_scale: float = 1.0
    """R-KP's corners at this multiple of their distance from the cube's centre (the paper's 1: the cube's own
    corners). Larger makes the reward sharper in orientation, not in position: at 1 a 0.4 rad error earns 93% of the
    pose reward (as a 2 cm position error does) and 1 rad 68%; at 2, 76% and 31%. Observations keep the cube's own
    corners."""
    object_position: float = 2000.0
    """R-PQ: dt * lgsk(position error; 50, 2)."""
    object_orientation: float = 2000.0
    """R-PQ: dt / (3 * rotation error + orientation_epsilon)."""
    orientation_epsilon: float = 3.0
    """R-PQ's rotation denominator offset; leibnizgym's 3 (IsaacGymEnvs' 0.01 lets it swamp position)."""
    finger_reach_until_env_steps: float = 5e7
    """The reach term is active while the total env steps stay at or below this."""
    cube_turning: float = 0.0
    """dt * the cube's angular speed (rad/s); negative: a penalty on turning the cube, aimed at grasps that roll it
    out of its orientation (0: off, the paper's reward)."""

    def __post_init__(self) -> None:
        if self.keypoint_scale <= 0:
            raise ValueError(f"rewards.keypoint_scale must be positive, got {self.keypoint_scale}")


@dataclass(frozen=True)
class CameraConfig:
    """The real tracker's cube pose: 10 Hz sample-and-hold, delayed, noisy, sometimes missing."""

    enabled: bool = True
    """Off: the actor sees the exact simulator pose every policy step (the paper's training set-up)."""
    delay_s: Uniform = Uniform(0.07, 0.11)
    """Capture-to-arrival delay of each frame (~90 ms with jitter)."""
    position_noise_std_m: float = 0.002
    orientation_noise_std_rad: float = 0.03
    drop_probability: float = 0.05
    """A frame that is lost (low confidence); the last pose is held."""


@dataclass(frozen=True)
class RandomizationConfig:
    """Every randomised quantity in one place; physical parameters are resampled at each env reset."""

    enabled: bool = True
    obs_noise_std: float = 0.002
    """Gaussian noise on the scaled actor observation (normalised units), fresh every step."""
    action_noise_std: float = 0.02
    """Gaussian noise on the normalised action, fresh every step."""
    action_bias_std: float = 0.01
    """Per-episode constant action bias (normalised units)."""
    gravity_std_mps2: float = 0.4
    joint_limit_std_rad: float = 0.01
    cube_scale: Uniform = Uniform(0.97, 1.03)
    cube_mass_scale: Uniform = Uniform(0.7, 1.3)
    whole_cube_scale: bool = False
    """cube_scale scales the cube as a whole, for training across sizes (e.g. cube_scale [0.5, 2]): its mass with its
    volume (then times cube_mass_scale), its starts and goals inside the wall by move_cube's rule (starts at the
    centre where it is taller than the fingertips at home), on-table goals at its resting height. Off: only the
    collision size changes (the few-percent randomisation)."""
    objects: tuple[str, ...] = ()
    """Train across objects: each env holds one of these variants (robot.objects.VARIANTS: cube, cube_x0.5, cube_x2,
    cuboid, sphere), env i the (i mod K)-th, for the whole run, with the robustness study's start and goal rules
    (task.object_rules); cube_scale and cube_mass_scale still scale each. The policy keeps the nominal cube's
    keypoints. Empty: the cube alone. MuJoCo backend only; excludes whole_cube_scale and grasped starts."""
    cube_friction_scale: Uniform = Uniform(0.7, 1.3)
    table_friction_scale: Uniform = Uniform(0.5, 1.5)
    safety_kd_scale: Uniform = Uniform(0.9, 1.3)
    """Simulation's kd is (0.08, 0.08, 0.04); the real robot's (0.09, 0.09, 0.05) = x1.125-1.25."""
    torque_limit_scale: Uniform = Uniform(0.9, 1.0)
    """Motor torque constant and current limit variation (the limit never exceeds the robot's 0.396 N*m)."""
    joint_friction_nm: Uniform = Uniform(0.0, 0.01)
    joint_damping: Uniform = Uniform(0.0, 0.005)
    """N*m*s/rad."""
    action_lag_s: Uniform = Uniform(0.0, 0.005)
    """Action latency as the time constant (s) of a first-order lag on the motor torque: policy inference, the
    front end's hand-off and the current loop (a few ms on the robot's 1 kHz loop); applied at every physics step."""
    camera: CameraConfig = field(default_factory=CameraConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))  # a JSON config gives a list
        unknown = [name for name in self.objects if name not in VARIANTS]
        if unknown:
            raise ValueError(f"randomization.objects: unknown object variant(s) {unknown}; valid: {list(VARIANTS)}")
        if len(set(self.objects)) != len(self.objects):
            raise ValueError(f"randomization.objects lists a variant twice: {list(self.objects)}")


@dataclass(frozen=True)
class TaskConfig:
    """The reposing task."""

    level: int = 4
    """Goal level of the RRC's move_cube: -1, 1, 2, 3 or 4."""
    obs_type: str = "keypoints"
    """Actor observation: one of OBS_TYPES."""
    reward_type: str = "keypoints"
    """Pose reward: one of REWARD_TYPES."""
    episode_length_steps: int = 750
    """Policy steps per episode (15 s at 50 Hz)."""
    physics_mode: str = "5ms"
    """'5ms' (4 substeps per policy step) or '1ms' (20, the robot's 1 kHz)."""
    friction_cone: str = "pyramidal"
    """MuJoCo's friction cone for every contact: 'pyramidal' or 'elliptic' (sim.contact)."""
    impratio: float = 1.0
    """Frictional to normal impedance ratio; 'elliptic' with 10 makes friction stick as on PyBullet (sim.contact)."""
    torque_limit_nm: float = tp.MAX_TORQUE_NM
    """Action scale and nominal motor limit (the paper used 0.36)."""
    safety_kd: tuple[float, float, float] = tp.SAFETY_KD
    success_position_m: float = 0.02
    success_orientation_rad: float = 0.4
    rewards: RewardWeights = field(default_factory=RewardWeights)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Goal curriculum (training only: evaluation judges the level's own goals)."""
    grasp_start_share: float = 0.0
    """Share [0, 1) of training episodes that start with the cube held in the air by a simulated grasp
    (sim.grasps); the rest start on the table as on the robot. Training only."""

    def __post_init__(self) -> None:
        check_level(self.level)
        ContactModel(self.friction_cone, self.impratio)  # validates both
        if self.curriculum.enabled and self.level != 4:
            raise ValueError(f"curriculum.enabled ends at level 4's goals and needs level 4, got level {self.level}")
        if not 0.0 <= self.grasp_start_share < 1.0:
            raise ValueError(f"grasp_start_share must be in [0, 1), got {self.grasp_start_share}")
        dr = self.randomization
        if dr.objects and (dr.whole_cube_scale or self.grasp_start_share > 0):
            raise ValueError("randomization.objects excludes randomization.whole_cube_scale and grasped starts "
                             "(grasp_start_share > 0): list the sizes as objects (cube_x0.5, cube, cube_x2)")
        if self.randomization.whole_cube_scale and self.grasp_start_share > 0:
            raise ValueError("randomization.whole_cube_scale needs grasp_start_share 0: the cached grasps hold the "
                             "nominal cube")
        _check_choice("obs_type", self.obs_type, OBS_TYPES)
        _check_choice("reward_type", self.reward_type, REWARD_TYPES)
        if self.episode_length_steps <= 0:
            raise ValueError(f"episode_length_steps must be positive, got {self.episode_length_steps}")
        if self.torque_limit_nm <= 0:
            raise ValueError(f"torque_limit_nm must be positive, got {self.torque_limit_nm}")


def for_evaluation(task: TaskConfig) -> TaskConfig:
    """The task as it is judged: the level's own goals from on-table starts (no curriculum, no grasped starts), with
    the standard cube (the default size and mass randomisation) where training scaled the cube as a whole."""
    dr = replace(task.randomization, objects=())
    if dr.whole_cube_scale:
        default = RandomizationConfig()
        dr = replace(dr, cube_scale=default.cube_scale, cube_mass_scale=default.cube_mass_scale,
                     whole_cube_scale=False)
    return replace(task, curriculum=replace(task.curriculum, enabled=False), grasp_start_share=0.0, randomization=dr)
