"""A fake of robot_fingers' TriFingerPlatformWithObjectFrontend that enforces the documented semantics
(robot_interfaces `doc/timeseries.rst`, shared/reference/robot-platform.md section 3.1):

- the back end idles until the first action arrives: reading anything before that is an error here;
- action a_t runs at step t and y_t is read at that step: reading an index that has not been reached (t + 1) would
  block on a real robot, so it raises here;
- only the last 1000 steps are kept; an older index raises;
- `get_camera_observation(t)` is the newest camera frame whose timestamp is <= the robot's timestamp at t;
- after an error `append_desired_action` raises.

Its "robot" is a unit-inertia integrator of the torque, enough to see actions take effect.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

HISTORY_STEPS = 1000
CAMERA_PERIOD_STEPS = 100
CAMERA_DELAY_STEPS = 90


class FakeAction(SimpleNamespace):
    def __init__(self, torque=None, position=None):
        super().__init__(torque=np.zeros(9) if torque is None else np.asarray(torque, float), position=position)


class FakeFrontend:
    def __init__(self, start_position=None, velocity_override=None):
        self.actions: list[FakeAction] = []
        self.observations: list[SimpleNamespace] = []
        self.reads: list[tuple[str, int]] = []
        self.position = np.array([0.0, 0.9, -1.7] * 3) if start_position is None else np.asarray(start_position)
        self.velocity = np.zeros(9)
        self.velocity_override = velocity_override
        self.cube_position = np.array([0.05, 0.0, 0.0325])

    # --- back end -------------------------------------------------------------------------------
    def append_desired_action(self, action) -> int:
        if action.torque is not None and not np.isfinite(np.asarray(action.torque)).all():
            raise AssertionError("a non-finite torque reached the motors")
        t = len(self.actions)
        self.actions.append(action)
        self.observations.append(SimpleNamespace(position=self.position.copy(), velocity=self.velocity.copy(),
                                                 torque=np.asarray(action.torque, float).copy(), tip_force=np.zeros(3)))
        self.velocity = self.velocity + 0.001 * np.asarray(action.torque, float)
        if self.velocity_override is not None:
            self.velocity = self.velocity_override.copy()
        self.position = self.position + 0.001 * self.velocity
        return t

    def _check(self, what: str, t: int) -> None:
        self.reads.append((what, t))
        if not self.actions:
            raise RuntimeError("the back end waits for a first action; nothing to read yet")
        if t >= len(self.actions):
            raise RuntimeError(f"{what}({t}): index not reached yet (a real robot would block)")
        if t < len(self.actions) - HISTORY_STEPS:
            raise RuntimeError(f"{what}({t}): index left the time series buffer")

    # --- front end ------------------------------------------------------------------------------
    def get_robot_observation(self, t):
        self._check("get_robot_observation", t)
        return self.observations[t]

    def get_timestamp_ms(self, t):
        self._check("get_timestamp_ms", t)
        return float(t)

    def get_camera_observation(self, t):
        self._check("get_camera_observation", t)
        arrived = max(0, (t - CAMERA_DELAY_STEPS) // CAMERA_PERIOD_STEPS * CAMERA_PERIOD_STEPS)
        pose = SimpleNamespace(position=self.cube_position.copy(), orientation=np.array([0, 0, 0, 1.0]),
                               confidence=1.0)
        return SimpleNamespace(object_pose=pose, filtered_object_pose=pose,
                               cameras=[SimpleNamespace(timestamp=arrived / 1000.0) for _ in range(3)])

    def get_desired_action(self, t):
        self._check("get_desired_action", t)
        return self.actions[t]

    def get_applied_action(self, t):
        self._check("get_applied_action", t)
        return FakeAction(torque=np.clip(self.actions[t].torque, -0.396, 0.396))

    def get_robot_status(self, t):
        self._check("get_robot_status", t)
        return SimpleNamespace(action_repetitions=0, error_status=0, error_message="")

    def get_current_timeindex(self):
        return len(self.actions) - 1


class FakeRobot:
    """A `Robot` over the fake front end (kind 'real': no true pose, judged by the tracker)."""

    kind = "real"

    def __init__(self, frontend: FakeFrontend):
        self.name, self.frontend = "fake-robot", frontend

    def start_episode(self, initial_position_m, initial_quat_xyzw):
        from trifinger_s2r.deploy.platform import _FrontendPlatform

        return _FrontendPlatform(self.frontend, FakeAction)

    def true_object_pose(self):
        return None

    def close(self):
        pass
