"""A robot in our own MuJoCo simulation with known physical parameters, behind the robot front end's interface.

It makes synthetic logs whose true parameters are known (the calibration tests fit them back): 1 kHz physics
(one step per robot step), the robot_interfaces semantics (the observation at t is the state the action at t starts
from), a 10 Hz camera whose frames arrive camera_delay_s after capture with Gaussian position noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

from trifinger_s2r.calibration.params import PhysicalParams, apply_params
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.timing import CAMERA_RATE_HZ, ROBOT_RATE_HZ, Timing


@dataclass
class MujocoRobot:
    """A `deploy.platform.Robot` simulated in MuJoCo with the given parameters (simulation: true pose known)."""

    params: PhysicalParams = field(default_factory=PhysicalParams)
    camera_delay_s: float = 0.09
    position_noise_std_m: float = 0.0
    contact: ContactModel = field(default_factory=ContactModel)
    """The scene's friction cone (MuJoCo's pyramidal default, or the stiff elliptic one)."""
    seed: int = 0
    name: str = "mujoco-0"
    kind: str = "mujoco"

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._platform: _MujocoPlatform | None = None

    def start_episode(self, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray) -> _MujocoPlatform:
        self._platform = _MujocoPlatform(self, np.asarray(initial_position_m, float),
                                         np.asarray(initial_quat_xyzw, float))
        return self._platform

    def true_object_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._platform is None:
            return None
        state = self._platform.backend.state()
        return state.cube_pos_m[0].double().numpy(), state.cube_quat_xyzw[0].double().numpy()

    def close(self) -> None:
        self._platform = None


class _MujocoPlatform:
    def __init__(self, robot: MujocoRobot, position_m: np.ndarray, quat_xyzw: np.ndarray) -> None:
        self.robot = robot
        self.backend = MujocoCpuBackend(1, Timing(physics_rate_hz=ROBOT_RATE_HZ, policy_rate_hz=ROBOT_RATE_HZ),
                                        num_threads=1, contact=robot.contact)
        self.torque_scale = apply_params(self.backend, [robot.params])[0, 0]
        home = torch.tensor([tp.per_finger(tp.HOME_POSE_RAD)], dtype=torch.float32)
        self.backend.reset(torch.tensor([0]), home, torch.as_tensor(position_m[None], dtype=torch.float32),
                           torch.as_tensor(quat_xyzw[None], dtype=torch.float32))
        self.observations: list[SimpleNamespace] = []
        self.actions: list[SimpleNamespace] = []
        self.frames: list[tuple[int, SimpleNamespace]] = []
        """(arrival step, camera observation) in capture order."""
        self.delay_steps = round(robot.camera_delay_s * ROBOT_RATE_HZ)
        self.period_steps = ROBOT_RATE_HZ // CAMERA_RATE_HZ

    def Action(self, torque: np.ndarray, position: np.ndarray | None = None) -> SimpleNamespace:
        return SimpleNamespace(torque=np.asarray(torque, float), position=position)

    def append_desired_action(self, action) -> int:
        t = len(self.actions)
        state = self.backend.state()
        self.observations.append(SimpleNamespace(
            position=state.joint_pos_rad[0].double().numpy(), velocity=state.joint_vel_radps[0].double().numpy(),
            torque=state.applied_torque_nm[0].double().numpy(), tip_force=np.zeros(3)))
        if t % self.period_steps == 0:
            self.frames.append((t + self.delay_steps, self._capture(t, state)))
        self.actions.append(action)
        command = np.clip(np.asarray(action.torque, float), -tp.MAX_TORQUE_NM, tp.MAX_TORQUE_NM)
        self.backend.step(torch.as_tensor(command[None] * self.torque_scale))
        return t

    def _capture(self, t: int, state) -> SimpleNamespace:
        noise = self.robot._rng.normal(0.0, self.robot.position_noise_std_m, 3)
        pose = SimpleNamespace(position=state.cube_pos_m[0].double().numpy() + noise,
                               orientation=state.cube_quat_xyzw[0].double().numpy(), confidence=1.0)
        return SimpleNamespace(object_pose=pose, filtered_object_pose=pose,
                               cameras=[SimpleNamespace(timestamp=t / ROBOT_RATE_HZ)] * 3)

    def get_robot_observation(self, t: int) -> SimpleNamespace:
        return self.observations[t]

    def get_camera_observation(self, t: int) -> SimpleNamespace:
        arrived = [frame for arrival, frame in self.frames if arrival <= t]
        return arrived[-1] if arrived else self.frames[0][1]  # the first frame is there at once

    def get_timestamp_ms(self, t: int) -> float:
        return 1000.0 * t / ROBOT_RATE_HZ

    def get_current_timeindex(self) -> int:
        return len(self.actions) - 1

    def get_desired_action(self, t: int) -> SimpleNamespace:
        return self.actions[t]

    def get_applied_action(self, t: int) -> SimpleNamespace:
        return self.actions[t]

    def get_robot_status(self, t: int) -> None:
        return None
