"""Validation (1) of issue 15: recover the farm's hidden robot calibrations from their excitation logs.

For the nominal PyBullet robot and each simulated farm robot (`farm.worker.calibration_for`), run the scripted
excitation on PyBullet (tracker noise on), calibrate from its logs, and compare with the hidden calibration. PyBullet's
cube friction multiplies its contacts' coefficients (the table's is 1.0) and its torque constant is a scale: both are
compared absolutely (`*_error_abs`) and relative to the nominal robot's fit (`*_error_rel`: what the fit says about
this robot against a reference robot); camera delay is compared absolutely. The cube mass is given both ways:
absolutely, and relative to the nominal robot's fit times its known 94 g (where the replay fits it, our contact model
needs a heavier cube to follow PyBullet's, a bias a reference robot cancels; with `--lifts` the held cube is weighed
by the joint torques instead, unless `--replay-mass`, and the table friction measured by the pushes' force balance,
unless `--replay-friction`). Every fit replays trifinger_simulation's finger link damping
(0.5 1/s, `--link-damping`) as a known property of the PyBullet robot.

Run `python -m trifinger_s2r.bench.farm_calibration --robots 3 --out DIR --json`; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from trifinger_s2r.calibration.cli import calibrate
from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation
from trifinger_s2r.deploy.platform import PyBulletRobot, RobotCalibration
from trifinger_s2r.deploy.tracker import TrackerConfig
from trifinger_s2r.farm.worker import calibration_for
from trifinger_s2r.sim.contact import FRICTION_CONES


def _value(calibration: dict, name: str) -> float:
    return calibration["params"][name]["value"]


def robot_row(name: str, hidden: RobotCalibration, fitted: dict, nominal: dict) -> dict:
    """Hidden vs recovered values and their errors for one robot."""
    torque_rel = _value(fitted, "torque_scale") / _value(nominal, "torque_scale")
    friction_rel = _value(fitted, "cube_table_friction") / _value(nominal, "cube_table_friction")
    mass = _value(fitted, "cube_mass_kg")
    mass_rel = mass / _value(nominal, "cube_mass_kg") * RobotCalibration().cube_mass_kg
    delay = _value(fitted, "camera_delay_s")
    return {
        "robot": name, "hidden": asdict(hidden),
        "spreads": {k: fitted["params"][k]["spread"] for k in ("torque_scale", "cube_mass_kg", "cube_table_friction",
                                                                 "camera_delay_s")},
        "torque_scale_fitted": _value(fitted, "torque_scale"), "torque_scale_rel_nominal": torque_rel,
        "torque_error_rel": torque_rel / hidden.torque_constant_scale - 1,
        "torque_error_abs": _value(fitted, "torque_scale") / hidden.torque_constant_scale - 1,
        "cube_mass_kg_fitted": mass, "mass_error_rel": mass / hidden.cube_mass_kg - 1,
        "cube_mass_kg_rel_nominal": mass_rel, "mass_error_rel_nominal": mass_rel / hidden.cube_mass_kg - 1,
        "cube_table_friction_fitted": _value(fitted, "cube_table_friction"),
        "friction_rel_nominal": friction_rel, "friction_error_rel": friction_rel / hidden.cube_lateral_friction - 1,
        "friction_error_abs": _value(fitted, "cube_table_friction") / hidden.cube_lateral_friction - 1,
        "camera_delay_s_fitted": delay, "delay_error_s": delay - hidden.camera_delay_s,
        "coulomb_table_friction": fitted.get("coulomb_table_friction"),
        "cube_table_friction_from": fitted.get("cube_table_friction_from", "replay"),
        "fit_error_before": fitted["fit_error_before"], "fit_error_after": fitted["fit_error_after"],
    }


def run(robots: int, out: Path, episodes: int, max_evaluations: int, link_damping_per_s: float = 0.5,
        friction_cone: str = "pyramidal", impratio: float = 1.0, lifts: int = 0, held_windows: bool = False,
        weigh_held_cube: bool = True, measure_table_friction: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    hidden = {"nominal": RobotCalibration(), **{f"sim-robot-{i}": calibration_for(i) for i in range(robots)}}
    fitted = {}
    for name, calibration in hidden.items():
        logs = out / name / "logs"
        if not (logs / "report.json").exists():
            robot = PyBulletRobot(name=name, calibration=calibration, tracker=TrackerConfig(), seed=1)
            run_excitation(robot, ExcitationConfig(seed=100, lifts=lifts), episodes, logs)
        target = out / name / "calibration.json"
        if not target.exists():
            result = calibrate([logs], max_evaluations, f"farm_calibration {name}",
                               link_damping_per_s=link_damping_per_s, friction_cone=friction_cone, impratio=impratio,
                               held_windows=held_windows, weigh_held_cube=weigh_held_cube,
                               measure_table_friction=measure_table_friction)
            target.write_text(json.dumps(result, indent=2))
        fitted[name] = json.loads(target.read_text())
    rows = [robot_row(n, hidden[n], fitted[n], fitted["nominal"]) for n in hidden if n != "nominal"]
    return {"robots": rows, "nominal_fit": fitted["nominal"]["params"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=2, help="excitation runs per robot")
    parser.add_argument("--max-evaluations", type=int, default=12)
    parser.add_argument("--link-damping", type=float, default=0.5,
                        help="finger link damping (1/s) replayed as known (trifinger_simulation: 0.5)")
    parser.add_argument("--friction-cone", default="pyramidal", choices=FRICTION_CONES)
    parser.add_argument("--impratio", type=float, default=1.0)
    parser.add_argument("--lifts", type=int, default=0, help="grasp-lift cycles in each excitation run")
    parser.add_argument("--held-windows", action="store_true", help="replay windows of the cube held in the air")
    parser.add_argument("--replay-mass", action="store_true", help="fit the mass by the replay, not by weighing")
    parser.add_argument("--replay-friction", action="store_true",
                        help="fit the table friction by the replay, not by the pushes' force balance")
    parser.add_argument("--out", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.robots, Path(args.out), args.episodes, args.max_evaluations, args.link_damping,
                 args.friction_cone, args.impratio, args.lifts, args.held_windows, not args.replay_mass,
                 not args.replay_friction)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
