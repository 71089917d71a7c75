"""Run an exported policy on a robot platform, the way the real robot requires, and judge each episode.

Top to bottom, per episode: the robot starts at home with the cube at the episode's initial pose; a zero-torque
action goes first (the back end idles until one arrives); then every 20 robot steps (50 Hz at 1 kHz) the runner
reads the observation at t (never t + 1, which a real robot cannot give), holds the tracker's last pose between its
10 Hz updates with the quaternion sign kept continuous, builds the actor observation with the training env's own
function, runs the policy, checks the action, and holds its torque for 20 robot steps. The torque limit is the
policy's (the platform adds its own clipping and safety damping, as the robot does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from trifinger_s2r.deploy.platform import Robot, RobotPlatform, quiet_imports
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task import goals
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.task.geometry import continuous_sign, rotation_angle_between

STATUS_OK = "ok"
STATUS_NONFINITE_ACTION = "nonfinite_action"
STATUS_BAD_ACTION_SHAPE = "bad_action_shape"
STATUS_JOINT_LIMIT = "joint_limit"
STATUS_RUNAWAY_VELOCITY = "runaway_velocity"
RUNAWAY_VELOCITY_RADPS = 2.0 * tp.MAX_VELOCITY_RADPS
"""A joint this fast means the robot is out of control: the episode stops with zero torque."""
SAFE_STOP_STEPS = 100
"""Zero-torque robot steps sent after an episode is stopped (the safety damping brings the fingers to rest)."""


@dataclass(frozen=True)
class PolicySpec:
    """What the runner needs to know of a policy besides its network (from the bundle's metadata)."""

    obs_type: str
    obs_size: int
    action_size: int
    torque_scale_nm: float
    policy_rate_hz: int
    robot_rate_hz: int
    level: int
    episode_length_steps: int
    success_position_m: float
    success_orientation_rad: float

    @classmethod
    def from_metadata(cls, metadata: dict) -> PolicySpec:
        task, rates = metadata["task"], metadata["rates_hz"]
        return cls(
            obs_type=metadata["obs_type"], obs_size=metadata["obs_size"], action_size=metadata["action_size"],
            torque_scale_nm=min(metadata["action"]["scale_nm"], tp.MAX_TORQUE_NM),
            policy_rate_hz=rates["policy"], robot_rate_hz=rates["robot"], level=task["level"],
            episode_length_steps=task["episode_length_steps"], success_position_m=task["success_position_m"],
            success_orientation_rad=task["success_orientation_rad"],
        )

    @property
    def robot_steps_per_action(self) -> int:
        return self.robot_rate_hz // self.policy_rate_hz


@dataclass(frozen=True)
class Goal:
    position_m: np.ndarray
    quat_xyzw: np.ndarray
    level: int


@dataclass
class EpisodeRecord:
    """Everything an episode produced, at 1 kHz (robot) and 50 Hz (policy)."""

    robot: dict[str, list] = field(default_factory=lambda: {k: [] for k in ROBOT_KEYS})
    policy: dict[str, list] = field(default_factory=lambda: {k: [] for k in POLICY_KEYS})

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"robot_{k}": np.asarray(v) for k, v in self.robot.items()}
        out.update({f"policy_{k}": np.asarray(v) for k, v in self.policy.items()})
        return out


ROBOT_KEYS = ("t", "timestamp_ms", "position_rad", "velocity_radps", "torque_nm", "tip_force", "desired_torque_nm",
              "applied_torque_nm", "action_repetitions", "commanded_torque_nm")
"""commanded_torque_nm: the torque the runner asked for (a simulated robot's platform may report its own desired
torque, e.g. scaled by its motor's torque constant; calibration needs what was asked)."""
POLICY_KEYS = ("t", "observation", "action", "inference_s", "object_position_m", "object_quat_xyzw",
               "object_confidence", "camera_timestamp_s", "position_error_m", "orientation_error_rad")


@dataclass
class EpisodeResult:
    status: str
    message: str
    success: bool
    position_error_m: float
    orientation_error_rad: float
    judged_by: str
    """'true_pose' (simulation) or 'tracker' (the filtered camera pose, all a real robot has)."""
    policy_steps: int
    action_repetitions: int
    max_inference_s: float
    soft_limit_steps: int
    """Robot steps with a joint past its soft limit (the robot's own safety then overrides the action)."""
    fast_joint_steps: int
    """Robot steps with a joint faster than 10 rad/s."""
    lifted: bool = False
    """The object ends more than 1 cm above its height at the first step (every episode starts on the table)."""


class HeldPose:
    """The tracker's filtered pose, held between updates, with the quaternion sign kept continuous."""

    def __init__(self) -> None:
        self.position_m: np.ndarray | None = None
        self.quat_xyzw: np.ndarray | None = None
        self.confidence = 0.0
        self.timestamp_s = float("nan")

    def update(self, camera_observation) -> None:
        pose = camera_observation.filtered_object_pose
        quat = np.asarray(pose.orientation, dtype=np.float64)
        if self.quat_xyzw is not None:
            quat = continuous_sign(torch.as_tensor(quat), torch.as_tensor(self.quat_xyzw)).numpy()
        self.position_m, self.quat_xyzw = np.asarray(pose.position, dtype=np.float64), quat
        self.confidence = float(pose.confidence)
        self.timestamp_s = float(camera_observation.cameras[0].timestamp or 0.0)


def actor_observation(
    spec: PolicySpec, level: int, robot_observation, pose: HeldPose, goal: Goal, last_action: np.ndarray
) -> torch.Tensor:
    """(1, obs_size) actor observation: the training env's functions on the robot's numbers."""

    def row(x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)

    cube_quat = row(pose.quat_xyzw)
    obs = obs_fn.actor_observation(
        spec.obs_type, row(robot_observation.position), row(robot_observation.velocity), row(pose.position_m),
        cube_quat, row(goal.position_m), goals.judged_goal_quat(level, row(goal.quat_xyzw), cube_quat),
        row(last_action),
    )
    return obs_fn.add_noise_and_clip(obs, 0.0, None)


def check_action(action: np.ndarray, spec: PolicySpec) -> tuple[str, str]:
    """(status, message) of a policy output: the wrong shape or a non-finite value never reaches the motors."""
    if action.shape != (spec.action_size,):
        return STATUS_BAD_ACTION_SHAPE, f"policy returned shape {action.shape}, expected ({spec.action_size},)"
    if not np.isfinite(action).all():
        return STATUS_NONFINITE_ACTION, f"policy returned a non-finite action {action.tolist()}"
    return STATUS_OK, ""


def check_joints(robot_observation) -> tuple[str, str]:
    """(status, message): stop on a joint past the robot's hard limits or moving out of control."""
    position = np.asarray(robot_observation.position)
    low, high = np.array(tp.per_finger(tp.HARD_LIMIT_LOWER_RAD)), np.array(tp.per_finger(tp.HARD_LIMIT_UPPER_RAD))
    beyond = np.nonzero((position < low) | (position > high))[0]
    if beyond.size:
        return STATUS_JOINT_LIMIT, f"joints {beyond.tolist()} past the hard limits at {position[beyond].round(3)}"
    speed = np.abs(np.asarray(robot_observation.velocity))
    if speed.max() > RUNAWAY_VELOCITY_RADPS:
        return STATUS_RUNAWAY_VELOCITY, f"joint {int(speed.argmax())} at {speed.max():.1f} rad/s"
    return STATUS_OK, ""


class EpisodeRunner:
    """One episode of a policy on a robot; `on_policy_step(step)` is called after each action (video frames)."""

    def __init__(self, policy: Callable[[torch.Tensor], torch.Tensor], spec: PolicySpec, robot: Robot,
                 on_policy_step: Callable[[int], None] | None = None) -> None:
        self.policy, self.spec, self.robot = policy, spec, robot
        self.on_policy_step = on_policy_step

    def run(self, goal: Goal, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray,
            episode_length_steps: int) -> tuple[EpisodeResult, EpisodeRecord]:
        platform = self.robot.start_episode(initial_position_m, initial_quat_xyzw)
        record, pose = EpisodeRecord(), HeldPose()
        counters = {"soft_limit_steps": 0, "fast_joint_steps": 0, "action_repetitions": 0}
        last_action = np.zeros(self.spec.action_size)
        status, message, step = STATUS_OK, "", 0
        t = platform.append_desired_action(platform.Action(torque=np.zeros(tp.NUM_JOINTS)))
        start_height_m = float("inf")
        for step in range(episode_length_steps):  # noqa: B007 (step is reported after the loop)
            robot_observation = platform.get_robot_observation(t)
            pose.update(platform.get_camera_observation(t))
            if step == 0:
                start_height_m = self._object_pose(pose)[0][2]
            status, message = check_joints(robot_observation)
            if status != STATUS_OK:
                break
            obs = actor_observation(self.spec, goal.level, robot_observation, pose, goal, last_action)
            started = time.perf_counter()
            with torch.inference_mode():
                action = np.asarray(self.policy(obs), dtype=np.float64).reshape(-1)
            inference_s = time.perf_counter() - started
            status, message = check_action(action, self.spec)
            if status != STATUS_OK:
                break
            last_action = np.clip(action, -1.0, 1.0)
            self._record_policy_step(record, t, obs, last_action, inference_s, pose, goal)
            commanded = last_action * self.spec.torque_scale_nm
            torque = platform.Action(torque=commanded)
            for _ in range(self.spec.robot_steps_per_action):
                t = platform.append_desired_action(torque)
                record_robot_step(record, platform, t, counters, commanded)
            if self.on_policy_step is not None:
                self.on_policy_step(step)
        else:
            step = episode_length_steps
        if status != STATUS_OK:
            self._safe_stop(platform)
        return self._judge(status, message, step, pose, goal, record, counters, start_height_m), record

    def _record_policy_step(self, record: EpisodeRecord, t: int, obs: torch.Tensor, action: np.ndarray,
                            inference_s: float, pose: HeldPose, goal: Goal) -> None:
        pos_err, rot_err = _errors(pose.position_m, pose.quat_xyzw, goal)
        for key, value in (("t", t), ("observation", obs.numpy().reshape(-1)), ("action", action),
                           ("inference_s", inference_s), ("object_position_m", pose.position_m),
                           ("object_quat_xyzw", pose.quat_xyzw), ("object_confidence", pose.confidence),
                           ("camera_timestamp_s", pose.timestamp_s), ("position_error_m", pos_err),
                           ("orientation_error_rad", rot_err)):
            record.policy[key].append(value)

    def _object_pose(self, pose: HeldPose) -> tuple[np.ndarray, np.ndarray]:
        """The object's pose as judged: the simulator's true pose where there is one, else the tracker's."""
        true_pose = self.robot.true_object_pose()
        return true_pose if true_pose is not None else (pose.position_m, pose.quat_xyzw)

    @staticmethod
    def _safe_stop(platform: RobotPlatform) -> None:
        zero = platform.Action(torque=np.zeros(tp.NUM_JOINTS))
        for _ in range(SAFE_STOP_STEPS):
            platform.append_desired_action(zero)

    def _judge(self, status: str, message: str, steps: int, pose: HeldPose, goal: Goal, record: EpisodeRecord,
               counters: dict, start_height_m: float) -> EpisodeResult:
        position, quat = self._object_pose(pose)
        judged_by = "true_pose" if self.robot.true_object_pose() is not None else "tracker"
        pos_err, rot_err = _errors(position, quat, goal)
        success = status == STATUS_OK and pos_err <= self.spec.success_position_m
        if goals.orientation_matters(goal.level):
            success = success and rot_err <= self.spec.success_orientation_rad
        inference = record.policy["inference_s"]
        return EpisodeResult(
            status=status, message=message, success=bool(success), position_error_m=pos_err,
            orientation_error_rad=rot_err, judged_by=judged_by, policy_steps=steps,
            action_repetitions=counters["action_repetitions"], max_inference_s=max(inference, default=0.0),
            soft_limit_steps=counters["soft_limit_steps"], fast_joint_steps=counters["fast_joint_steps"],
            lifted=bool(position[2] > start_height_m + goals.LIFTED_M),
        )


def record_robot_step(record: EpisodeRecord, platform: RobotPlatform, t: int, counters: dict,
                      commanded_torque_nm: np.ndarray) -> None:
    """Append robot step t to the record (and count repetitions, soft-limit and fast-joint steps)."""
    observation = platform.get_robot_observation(t)
    status = platform.get_robot_status(t)
    repetitions = int(getattr(status, "action_repetitions", 0)) if status is not None else 0
    counters["action_repetitions"] = max(counters["action_repetitions"], repetitions)
    position, velocity = np.asarray(observation.position), np.asarray(observation.velocity)
    soft_low, soft_high = tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD), tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD)
    counters["soft_limit_steps"] += int(((position < soft_low) | (position > soft_high)).any())
    counters["fast_joint_steps"] += int((np.abs(velocity) > tp.MAX_VELOCITY_RADPS).any())
    values = (t, platform.get_timestamp_ms(t), position, velocity, np.asarray(observation.torque),
              np.asarray(observation.tip_force), np.asarray(platform.get_desired_action(t).torque),
              np.asarray(platform.get_applied_action(t).torque), repetitions, np.asarray(commanded_torque_nm, float))
    for key, value in zip(ROBOT_KEYS, values, strict=True):
        record.robot[key].append(value)


def _errors(position_m: np.ndarray, quat_xyzw: np.ndarray, goal: Goal) -> tuple[float, float]:
    pos_err = float(np.linalg.norm(np.asarray(position_m) - goal.position_m))
    rot_err = float(rotation_angle_between(torch.as_tensor(quat_xyzw).reshape(1, 4),
                                           torch.as_tensor(goal.quat_xyzw).reshape(1, 4)))
    return pos_err, rot_err


def sample_episode_poses(level: int, episodes: int, seed: int) -> list[tuple[Goal, np.ndarray, np.ndarray]]:
    """Goal and initial cube pose of each episode from the challenge's own sampler (trifinger_simulation's
    move_cube, seeded): an independent check on our goal sampler."""
    with quiet_imports():
        from trifinger_simulation.tasks import move_cube

    move_cube.seed(seed)
    poses = []
    for _ in range(episodes):
        initial = move_cube.sample_goal(-1)
        goal = move_cube.sample_goal(level)
        poses.append((Goal(np.asarray(goal.position, float), np.asarray(goal.orientation, float), level),
                      np.asarray(initial.position, float), np.asarray(initial.orientation, float)))
    return poses
