"""What the real cube tracker adds to PyBullet's camera: pose noise, arrival jitter, low-confidence frames, and the
robot's confidence filter.

trifinger_simulation already captures at 10 Hz and delays each frame (90 ms by default) but returns the exact pose
with confidence 1. The real tracker solves every frame from scratch (so its error is fresh noise per frame), some
frames come back with low confidence, and `filtered_object_pose` then repeats the previous pose with its
confidence x0.9 (trifinger_object_tracking's filter, threshold 0.75).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy.spatial.transform import Rotation

from trifinger_s2r.timing import ROBOT_RATE_HZ

CONFIDENCE_THRESHOLD = 0.75
"""Below this the robot's filter keeps the previous pose (trifinger_object_tracking)."""
FILTER_CONFIDENCE_DECAY = 0.9


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker realism added on top of PyBullet's delayed camera (all zero/False: PyBullet's exact pose)."""

    enabled: bool = True
    position_noise_std_m: float = 0.002
    orientation_noise_std_rad: float = 0.03
    """Angle of a rotation about a random axis, per frame."""
    jitter_s: float = 0.02
    """Extra arrival delay per frame, uniform in [0, jitter_s] (the tracker's solve time varies)."""
    low_confidence_probability: float = 0.05
    """A frame the tracker is unsure of (confidence U(0.2, 0.75)); the filter holds the previous pose."""

    def __post_init__(self) -> None:
        if self.position_noise_std_m < 0 or self.orientation_noise_std_rad < 0 or self.jitter_s < 0:
            raise ValueError("tracker noise and jitter must be >= 0")
        if not 0.0 <= self.low_confidence_probability <= 1.0:
            raise ValueError(f"low_confidence_probability must be in [0, 1], got {self.low_confidence_probability}")


def _pose(position, orientation, confidence: float) -> SimpleNamespace:
    return SimpleNamespace(position=np.asarray(position, float), orientation=np.asarray(orientation, float),
                           confidence=float(confidence))


class TrackerModel:
    """Turns the platform's exact, delayed camera observations into tracker-like ones (same attribute names)."""

    def __init__(self, cfg: TrackerConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self._last_raw = None
        self._pending: list[tuple[int, SimpleNamespace]] = []
        self._delivered = None
        self.frames_seen = 0
        self.frames_low_confidence = 0

    def observe(self, raw, t: int):
        """The observation to show at robot step t, given the platform's current (exact) one."""
        if not self.cfg.enabled:
            return raw
        if raw is not self._last_raw:
            self._last_raw = raw
            self._pending.append((t + self._jitter_steps(), self._measure(raw)))
        if self._delivered is None:  # the tracker ran before the episode: the first frame shows at once
            self._pending[0] = (t, self._pending[0][1])
        while self._pending and self._pending[0][0] <= t:
            self._deliver(raw, self._pending.pop(0)[1])
        return self._delivered

    def _jitter_steps(self) -> int:
        return int(round(self.rng.uniform(0.0, self.cfg.jitter_s) * ROBOT_RATE_HZ))

    def _measure(self, raw) -> SimpleNamespace:
        """One tracker solve: fresh noise on the exact pose, a confidence."""
        cfg, rng = self.cfg, self.rng
        position = np.asarray(raw.object_pose.position, float) + rng.normal(0.0, cfg.position_noise_std_m, 3)
        axis = rng.normal(size=3)
        axis /= max(np.linalg.norm(axis), 1e-9)
        noise = Rotation.from_rotvec(axis * rng.normal(0.0, cfg.orientation_noise_std_rad))
        orientation = (noise * Rotation.from_quat(np.asarray(raw.object_pose.orientation, float))).as_quat()
        low = rng.random() < cfg.low_confidence_probability
        confidence = rng.uniform(0.2, CONFIDENCE_THRESHOLD) if low else rng.uniform(0.8, 1.0)
        self.frames_seen += 1
        self.frames_low_confidence += int(low)
        return _pose(position, orientation, confidence)

    def _deliver(self, raw, measured: SimpleNamespace) -> None:
        previous = self._delivered.filtered_object_pose if self._delivered is not None else None
        if measured.confidence >= CONFIDENCE_THRESHOLD or previous is None:
            filtered = measured
        else:
            filtered = _pose(previous.position, previous.orientation, previous.confidence * FILTER_CONFIDENCE_DECAY)
        observation = copy.copy(raw)
        observation.object_pose = measured
        observation.filtered_object_pose = filtered
        self._delivered = observation
