"""Calibration files, and training's randomisation ranges centred on a calibration's fitted values.

Each range is the fitted value +- max(2 spreads, a floor) (the floor keeps some randomisation where a fit claims
more certainty than a model error allows). Fields the env's randomisation has no knob for are left as they are and
named in `unmapped` (contact softness; the torque scale maps onto the motor's torque limit only, which is how the env
models a weaker motor).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from trifinger_s2r.robot import cube
from trifinger_s2r.task.config import RandomizationConfig, Uniform
from trifinger_s2r.task.randomization import CUBE_FRICTION, ROBOT_FRICTION, TABLE_FRICTION

CALIBRATION_FORMAT = "trifinger-s2r-calibration"
CALIBRATION_VERSION = 1
RELATIVE_FLOOR = 0.05
"""Smallest half-width of a range, relative to its centre."""
UNMAPPED = ("contact_timeconst_s",)


def load_calibration_file(path: Path) -> dict:
    """A calibration written by `trifinger-s2r calibrate`; a one-line ValueError naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such calibration file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a calibration file (not JSON: {err})") from None
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{path}: not a calibration file (no format {CALIBRATION_FORMAT!r})")
    if data.get("version") != CALIBRATION_VERSION:
        raise ValueError(f"{path}: calibration version {data.get('version')}, expected {CALIBRATION_VERSION}")
    return data


def _range(value: float, spread: float, low_limit: float = 0.0, high_limit: float = float("inf")) -> Uniform:
    half = max(2.0 * spread, RELATIVE_FLOOR * abs(value))
    return Uniform(max(low_limit, value - half), min(high_limit, value + half))


def _value(params: dict, name: str) -> tuple[float, float]:
    if name not in params:
        raise ValueError(f"the calibration lacks {name!r}")
    return float(params[name]["value"]), float(params[name]["spread"])


def _mean(params: dict, names: list[str]) -> tuple[float, float]:
    values = [_value(params, n) for n in names]
    return sum(v for v, _ in values) / len(values), max(s for _, s in values)


def randomization_from_calibration(calibration: dict, base: RandomizationConfig) -> RandomizationConfig:
    """base with the physical ranges centred on the calibration's values.

    Our contacts average two materials (randomization._contact_frictions), so the fitted finger-cube and cube-table
    coefficients give the cube's and table's material scales."""
    p = calibration["params"]
    mass, mass_spread = _value(p, "cube_mass_kg")
    finger_cube, finger_cube_spread = _value(p, "finger_cube_friction")
    cube_table, cube_table_spread = _value(p, "cube_table_friction")
    cube_material = max(0.05, 2 * finger_cube - ROBOT_FRICTION)
    table_material = max(0.005, 2 * cube_table - cube_material)
    torque, torque_spread = _value(p, "torque_scale")
    kd, kd_spread = _value(p, "safety_kd_scale")
    damping = _mean(p, ["joint_damping_upper", "joint_damping_middle", "joint_damping_lower"])
    friction = _mean(p, ["joint_friction_upper_nm", "joint_friction_middle_nm", "joint_friction_lower_nm"])
    delay, delay_spread = _value(p, "camera_delay_s")
    jitter = float(p.get("camera_jitter_s", {"value": 0.0})["value"])
    return replace(
        base,
        cube_mass_scale=_range(mass / cube.MASS_KG, mass_spread / cube.MASS_KG, 0.05),
        cube_friction_scale=_range(cube_material / CUBE_FRICTION, 2 * finger_cube_spread / CUBE_FRICTION, 0.01),
        table_friction_scale=_range(table_material / TABLE_FRICTION, 2 * cube_table_spread / TABLE_FRICTION, 0.01),
        torque_limit_scale=_range(torque, torque_spread, 0.1, 1.0),
        safety_kd_scale=_range(kd, kd_spread, 0.0),
        joint_damping=_range(damping[0], damping[1], 0.0),
        joint_friction_nm=_range(friction[0], friction[1], 0.0),
        camera=replace(base.camera, delay_s=Uniform(max(0.0, delay - delay_spread), delay + jitter + delay_spread)),
    )
