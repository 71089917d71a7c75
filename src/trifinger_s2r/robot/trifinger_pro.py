"""TriFinger Pro: joint order, limits (rad), torques (N*m) and arena geometry (m).

Sources: robot_fingers `config/trifingerpro.yml`, trifinger_simulation `trifingerpro_limits.py`
(see shared/reference/robot-platform.md section 2).
"""

from __future__ import annotations

FINGER_NAMES = ("0", "120", "240")
"""Finger suffixes in DOF order."""
JOINTS_PER_FINGER = 3
NUM_JOINTS = 9
JOINT_NAMES = tuple(
    f"finger_{part}_joint_{finger}"
    for finger in FINGER_NAMES
    for part in ("base_to_upper", "upper_to_middle", "middle_to_lower")
)
"""The 9 joints in the robot's DOF order: finger 0, 120, 240, each base->upper, upper->middle, middle->lower."""
LOWER_LINK_NAMES = tuple(f"finger_lower_link_{f}" for f in FINGER_NAMES)
FINGERTIP_OFFSET_M = (0.019, 0.0, -0.16)
"""Fingertip frame (`finger_tip_link_*` origin) in the lower link's frame, from the URDF."""

SOFT_LIMIT_LOWER_RAD = (-0.33, 0.0, -2.7)
SOFT_LIMIT_UPPER_RAD = (1.0, 1.57, 0.0)
HARD_LIMIT_LOWER_RAD = (-1.0, -1.67, -2.8)
HARD_LIMIT_UPPER_RAD = (1.5, 1.67, 2.8)
"""Beyond these the real robot stops with an error (robot_fingers configuration)."""
HOME_POSE_RAD = (0.0, 0.9, -1.7)
"""Initial position of the real robot, per finger."""
MAX_VELOCITY_RADPS = 10.0

MAX_TORQUE_NM = 0.396
"""max_current 2.2 A x torque constant 0.02 N*m/A x gear ratio 9."""
PAPER_MAX_TORQUE_NM = 0.36
"""The limit the paper's simulation used (from the old rrc_simulation)."""
SAFETY_KD = (0.08, 0.08, 0.04)
"""Safety damping (N*m*s/rad) per finger joint in simulation; the real robot uses (0.09, 0.09, 0.05)."""
REAL_ROBOT_SAFETY_KD = (0.09, 0.09, 0.05)

ARENA_RADIUS_M = 0.195
"""Inner radius of the high circular boundary."""
BOUNDARY_HEIGHT_M = 0.175
TABLE_Z_M = 0.0
HOLDER_Z_M = 0.29
"""Height of the upper holder, where the three fingers hang."""


def per_finger(values: tuple[float, float, float]) -> tuple[float, ...]:
    """Repeat a per-finger triple for all 9 joints."""
    return tuple(values) * len(FINGER_NAMES)
