"""Control and physics timing, derived from rates so that no period is typed twice."""

from __future__ import annotations

from dataclasses import dataclass

ROBOT_RATE_HZ = 1000
"""The real robot's control loop (robot_interfaces back end)."""
POLICY_RATE_HZ = 50
"""One policy action is held for 20 ms (the paper and the RRC's 20-step stride)."""
CAMERA_RATE_HZ = 10
"""Cube pose updates from the tracker."""

PHYSICS_MODES = {"10ms": 100, "5ms": 200, "1ms": 1000}
"""Physics rate per mode: 10 ms x 2 substeps (cheapest; a level-4 candidate), 5 ms x 4 (the paper's PhysX set-up)
or 1 ms x 20 (the robot's 1 kHz)."""


@dataclass(frozen=True)
class Timing:
    """Rates of the simulated robot; periods and substep counts are derived."""

    physics_rate_hz: int = PHYSICS_MODES["5ms"]
    """Physics steps per second."""
    policy_rate_hz: int = POLICY_RATE_HZ
    """Policy actions per second."""
    camera_rate_hz: int = CAMERA_RATE_HZ
    """Camera pose updates per second."""

    def __post_init__(self) -> None:
        if self.physics_rate_hz % self.policy_rate_hz:
            raise ValueError(
                f"physics_rate_hz ({self.physics_rate_hz}) must be a multiple of policy_rate_hz ({self.policy_rate_hz})"
            )

    @classmethod
    def from_mode(cls, mode: str) -> Timing:
        """Timing for a named physics mode: one of PHYSICS_MODES."""
        if mode not in PHYSICS_MODES:
            raise ValueError(f"unknown physics mode {mode!r}; valid: {sorted(PHYSICS_MODES)}")
        return cls(physics_rate_hz=PHYSICS_MODES[mode])

    @property
    def physics_dt_s(self) -> float:
        return 1.0 / self.physics_rate_hz

    @property
    def policy_dt_s(self) -> float:
        return 1.0 / self.policy_rate_hz

    @property
    def substeps(self) -> int:
        """Physics steps per policy step."""
        return self.physics_rate_hz // self.policy_rate_hz

    @property
    def policy_steps_per_camera_frame(self) -> float:
        return self.policy_rate_hz / self.camera_rate_hz
