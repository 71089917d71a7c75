"""The robot-platform seam: the real TriFinger front end's method names and semantics, and robots that provide it.

A `RobotPlatform` is what the runner drives during one episode. Its methods are those of robot_fingers'
`TriFingerPlatformWithObjectFrontend` (and of trifinger_simulation's `TriFingerPlatform`, which copies them):
`append_desired_action(action) -> t` (the index at which the action runs), `get_robot_observation(t)`
(position, velocity, torque, tip_force), `get_camera_observation(t)` (the newest camera observation not newer than
robot step t, with `object_pose` and `filtered_object_pose`), `get_timestamp_ms(t)`, `get_current_timeindex()`,
`get_desired_action(t)`, `get_applied_action(t)`, and `get_robot_status(t)` (None where a platform has none).

A `Robot` hands out one platform per episode and says what it is: the PyBullet simulation (a fresh platform with
the cube where the episode wants it) or a real robot (one front end; the fingers go home between episodes).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from trifinger_s2r.deploy.tracker import TrackerConfig, TrackerModel
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.timing import ROBOT_RATE_HZ


@contextlib.contextmanager
def quiet_imports():
    """Silence what imported libraries print (Python warnings, and stdout/stderr at the file-descriptor level, where
    C extensions write) while they load; errors still raise."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


class RobotPlatform(Protocol):
    """The real front end's interface (robot_interfaces semantics: read at t, never t + 1)."""

    def Action(self, torque: np.ndarray, position: np.ndarray | None = None) -> Any: ...  # noqa: N802 (front end's)

    def append_desired_action(self, action: Any) -> int: ...

    def get_robot_observation(self, t: int) -> Any: ...

    def get_camera_observation(self, t: int) -> Any: ...

    def get_timestamp_ms(self, t: int) -> float: ...

    def get_current_timeindex(self) -> int: ...

    def get_applied_action(self, t: int) -> Any: ...

    def get_robot_status(self, t: int) -> Any | None: ...


class Robot(Protocol):
    """A robot that runs episodes: hands out the platform of each."""

    name: str
    kind: str
    """'pybullet' or 'real'."""

    def start_episode(self, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray) -> RobotPlatform:
        """A platform whose robot is at home and whose cube is at the given pose (a real robot cannot place the
        cube: it uses the cube where it lies)."""
        ...

    def true_object_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The exact cube pose (simulation only; None on a real robot)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RobotCalibration:
    """How one simulated robot differs from the nominal one, as real robots of a farm do."""

    cube_lateral_friction: float = 1.0
    """trifinger_simulation's cube default."""
    cube_mass_kg: float = 0.094
    camera_delay_s: float = 0.09
    """Capture-to-arrival delay of the tracker (trifinger_simulation's 90 steps at 1 kHz)."""
    torque_constant_scale: float = 1.0
    """Motor torque per commanded torque (a weaker motor < 1)."""

    def __post_init__(self) -> None:
        for name in ("cube_lateral_friction", "cube_mass_kg", "torque_constant_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.camera_delay_s < 0.1:
            raise ValueError(f"camera_delay_s must be in [0, 0.1) s (one camera period), got {self.camera_delay_s}")


class _CalibratedPlatform:
    """trifinger_simulation's TriFingerPlatform seen through a robot calibration and the tracker model."""

    def __init__(self, platform, calibration: RobotCalibration, tracker: TrackerModel) -> None:
        self._platform, self._calibration, self._tracker = platform, calibration, tracker
        self.get_robot_observation = platform.get_robot_observation
        self.get_timestamp_ms = platform.get_timestamp_ms
        self.get_current_timeindex = platform.get_current_timeindex
        self.get_desired_action = platform.get_desired_action
        self.get_applied_action = platform.get_applied_action

    def Action(self, torque: np.ndarray, position: np.ndarray | None = None):  # noqa: N802
        if position is None:
            return self._platform.Action(torque=np.asarray(torque, dtype=float))
        return self._platform.Action(torque=np.asarray(torque, dtype=float), position=np.asarray(position, float))

    def append_desired_action(self, action) -> int:
        scale = self._calibration.torque_constant_scale
        if scale != 1.0:
            # A weaker motor scales all the torque it makes, the position controller's too: keep the position
            # target and scale its gains. (Rebuilding the action from its torque alone dropped the position command,
            # so a position-controlled robot went limp: every farm robot failed its between-jobs home check.)
            simfinger = self._platform.simfinger
            scaled = self._platform.Action(torque=np.asarray(action.torque, float) * scale,
                                           position=np.asarray(action.position, float))
            kp, kd = np.asarray(action.position_kp, float), np.asarray(action.position_kd, float)
            scaled.position_kp = np.where(np.isnan(kp), simfinger.position_gains, kp) * scale
            scaled.position_kd = np.where(np.isnan(kd), simfinger.velocity_gains, kd) * scale
            action = scaled
        return self._platform.append_desired_action(action)

    def get_camera_observation(self, t: int):
        return self._tracker.observe(self._platform.get_camera_observation(t), t)

    def get_robot_status(self, t: int) -> None:
        return None  # trifinger_simulation has no status (no action repetitions in simulation)


@dataclass
class PyBulletRobot:
    """The official PyBullet TriFinger simulation (trifinger_simulation.TriFingerPlatform) at 1 kHz."""

    name: str = "pybullet-0"
    calibration: RobotCalibration = field(default_factory=RobotCalibration)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    seed: int = 0
    kind: str = "pybullet"

    def __post_init__(self) -> None:
        self._platform = None
        self._rng = np.random.default_rng(self.seed)

    def start_episode(self, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray) -> RobotPlatform:
        with quiet_imports():  # trifinger_simulation imports the unmaintained gym, pybullet prints its build time
            from trifinger_simulation.tasks import move_cube
            from trifinger_simulation.trifinger_platform import TriFingerPlatform

        self.close()
        pose = move_cube.Pose(position=np.asarray(initial_position_m, float),
                              orientation=np.asarray(initial_quat_xyzw, float))
        delay_steps = round(self.calibration.camera_delay_s * ROBOT_RATE_HZ)
        self._platform = TriFingerPlatform(
            visualization=False, initial_robot_position=np.array(tp.per_finger(tp.HOME_POSE_RAD)),
            initial_object_pose=pose, time_step_s=1.0 / ROBOT_RATE_HZ, camera_delay_steps=delay_steps,
        )
        self._apply_calibration()
        tracker = TrackerModel(self.tracker, np.random.default_rng(self._rng.integers(2**63)))
        return _CalibratedPlatform(self._platform, self.calibration, tracker)

    def _apply_calibration(self) -> None:
        import pybullet

        cube = self._platform.cube
        pybullet.changeDynamics(
            cube._object_id, -1, mass=self.calibration.cube_mass_kg,
            lateralFriction=self.calibration.cube_lateral_friction, physicsClientId=cube._pybullet_client_id,
        )

    def true_object_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._platform is None:
            return None
        position, orientation = self._platform.cube.get_state()
        return np.asarray(position, float), np.asarray(orientation, float)

    @property
    def pybullet_client_id(self) -> int:
        """The PyBullet client of the current episode (for rendering)."""
        return self._platform.simfinger._pybullet_client_id

    def close(self) -> None:
        if self._platform is not None:
            self._platform.simfinger._disconnect_from_pybullet()
            self._platform = None


HOME_STEPS = 1000
"""Robot steps of the position command that takes a real robot home between episodes (1 s)."""


class _FrontendPlatform:
    """robot_fingers' TriFingerPlatformWithObjectFrontend with robot_interfaces' Action."""

    def __init__(self, frontend, action_type) -> None:
        self._frontend, self._action_type = frontend, action_type
        for name in ("append_desired_action", "get_robot_observation", "get_camera_observation", "get_timestamp_ms",
                     "get_current_timeindex", "get_desired_action", "get_applied_action", "get_robot_status"):
            setattr(self, name, getattr(frontend, name))

    def Action(self, torque: np.ndarray, position: np.ndarray | None = None):  # noqa: N802
        if position is None:
            return self._action_type(torque=np.asarray(torque, dtype=float))
        return self._action_type(torque=np.asarray(torque, dtype=float), position=np.asarray(position, float))

    def go_home(self) -> None:
        home = np.array(tp.per_finger(tp.HOME_POSE_RAD))
        for _ in range(HOME_STEPS):
            self._frontend.append_desired_action(self._action_type(position=home))


@dataclass
class RealRobot:
    """A real TriFinger through robot_fingers' front end (the back end and data node must be running)."""

    name: str = "trifingerpro"
    kind: str = "real"

    def __post_init__(self) -> None:
        self._platform: _FrontendPlatform | None = None

    def start_episode(self, initial_position_m: np.ndarray, initial_quat_xyzw: np.ndarray) -> RobotPlatform:
        if self._platform is None:
            try:
                import robot_fingers
                import robot_interfaces
            except ImportError as err:
                raise RuntimeError(
                    "the real-robot platform needs robot_fingers and robot_interfaces (the TriFinger robot "
                    "software); on a machine without a robot use --platform pybullet"
                ) from err
            self._platform = _FrontendPlatform(
                robot_fingers.TriFingerPlatformWithObjectFrontend(), robot_interfaces.trifinger.Action
            )
        else:
            self._platform.go_home()
        return self._platform

    def true_object_pose(self) -> None:
        return None

    def close(self) -> None:
        self._platform = None
