"""`trifinger-s2r calibrate --logs DIR [DIR ...] --out FILE [--json]`: fit the simulation to robot logs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trifinger_s2r.clitools import positive_int
from trifinger_s2r.sim.contact import FRICTION_CONES


def calibrate(log_dirs: list[Path], max_evaluations: int, command: str, progress=None,
              link_damping_per_s: float = 0.0, friction_cone: str = "pyramidal", impratio: float = 1.0,
              held_windows: bool = False, weigh_held_cube: bool = True, measure_table_friction: bool = True) -> dict:
    """Read every log under log_dirs, fit, and return the calibration (the file's content). Each parameter's
    "spread" is the bootstrap's over windows, "jacobian_spread" the noise-only one."""
    from dataclasses import asdict

    from trifinger_s2r.calibration.fit import FitConfig, fit_camera_delay, fit_physics
    from trifinger_s2r.calibration.logs import find_logs, read_log
    from trifinger_s2r.calibration.ranges import CALIBRATION_FORMAT, CALIBRATION_VERSION
    from trifinger_s2r.calibration.replay import ReplayConfig

    paths = find_logs(log_dirs)
    logs = [read_log(p) for p in paths]  # every file is checked before anything is fitted or written
    delay_s, delay_spread_s, jitter_s = fit_camera_delay(logs)
    replay = ReplayConfig(link_damping_per_s=link_damping_per_s, friction_cone=friction_cone, impratio=impratio,
                          held_windows=held_windows)
    cfg = FitConfig(replay=replay, max_evaluations=max_evaluations, weigh_held_cube=weigh_held_cube,
                    measure_table_friction=measure_table_friction)
    result = fit_physics(logs, cfg, progress=progress)
    spread, boot = asdict(result.spread), asdict(result.bootstrap_spread)
    params = {name: {"value": value, "spread": boot[name], "jacobian_spread": spread[name]}
              for name, value in asdict(result.params).items()}
    params["camera_delay_s"] = {"value": delay_s, "spread": delay_spread_s}
    params["camera_jitter_s"] = {"value": jitter_s, "spread": delay_spread_s}
    return {
        "format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, "params": params,
        "fit_error_before": result.before["normalised_rms"], "fit_error_after": result.after["normalised_rms"],
        "replay_error_before": result.before, "replay_error_after": result.after,
        "fit_starts": list(result.starts), "episodes": len(logs), "windows": result.windows,
        "windows_cube_moved": result.windows_cube_moved,
        "cube_mass_from": "held_weight" if result.held_frames else "replay", "held_frames": result.held_frames,
        "cube_table_friction_from": "push_force_balance" if result.slide_frames else "replay",
        "slide_frames": result.slide_frames, "coulomb_table_friction": result.coulomb_table_friction,
        "link_damping_per_s": link_damping_per_s, "friction_cone": friction_cone, "impratio": impratio,
        "held_windows": held_windows,
        "loss": cfg.loss, "loss_scale": cfg.loss_scale,
        "bootstrap_samples": cfg.bootstrap_samples, "logs": [str(p) for p in paths], "command": command,
    }


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from trifinger_s2r.calibration.logs import LogError

    command = " ".join(["trifinger-s2r calibrate --logs", *args.logs, "--out", args.out,
                        *(["--link-damping", str(args.link_damping)] if args.link_damping else []),
                        *(["--friction-cone", args.friction_cone, "--impratio", str(args.impratio)]
                          if args.friction_cone != "pyramidal" or args.impratio != 1.0 else []),
                        *(["--held-windows"] if args.held_windows else []),
                        *(["--replay-mass"] if args.replay_mass else []),
                        *(["--replay-friction"] if args.replay_friction else [])])

    def progress(line: str) -> None:
        if not args.json:
            print(f"calibrate: {line}", file=sys.stderr, flush=True)

    try:
        result = calibrate([Path(d) for d in args.logs], args.max_evaluations, command, progress, args.link_damping,
                           args.friction_cone, args.impratio, args.held_windows, not args.replay_mass,
                           not args.replay_friction)
    except LogError as err:
        raise SystemExit(f"trifinger-s2r calibrate: {err}") from None
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r calibrate: {err}") from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    if args.json:
        print(json.dumps(result))
    else:
        for name, p in result["params"].items():
            print(f"{name}: {p['value']:.4g} +- {p['spread']:.2g}")
        weighed = f"weighed in {result['held_frames']} held frames" if result["held_frames"] else "fitted by the replay"
        print(f"cube mass {weighed}")
        if result["slide_frames"]:
            print(f"cube-table friction measured in {result['slide_frames']} sliding frames: Coulomb "
                  f"{result['coulomb_table_friction']:.3g}, our simulator's "
                  f"{result['params']['cube_table_friction']['value']:.3g}")
        else:
            print("cube-table friction fitted by the replay")
        print(f"fit error (normalised RMS): {result['fit_error_before']:.3g} -> {result['fit_error_after']:.3g}; "
              f"{result['episodes']} episodes, {result['windows']} windows; written to {out}")


def add_parser(sub) -> None:
    """The `calibrate` subcommand."""
    cal = sub.add_parser("calibrate", help="fit the simulation's physical parameters to robot logs")
    cal.add_argument("--logs", nargs="+", required=True, metavar="DIR",
                     help="folders holding log.npz files (deployment, farm or excitation runs), searched recursively")
    cal.add_argument("--out", required=True, metavar="FILE", help="the calibration JSON (written only on success)")
    cal.add_argument("--max-evaluations", type=positive_int, default=12,
                     help="least-squares evaluations of the replay error (default 12)")
    cal.add_argument("--link-damping", type=float, default=0.0, metavar="K",
                     help="Bullet-style finger link damping (1/s) of the robot that made the logs, replayed as a known "
                          "property (trifinger_simulation's PyBullet robot: 0.5; default 0)")
    cal.add_argument("--friction-cone", default="pyramidal", choices=FRICTION_CONES,
                     help="the replay's MuJoCo friction cone (default pyramidal, the scene's)")
    cal.add_argument("--impratio", type=float, default=1.0,
                     help="the replay's frictional to normal impedance ratio (>= 1; elliptic with 10: friction that "
                          "sticks, as on PyBullet)")
    cal.add_argument("--held-windows", action="store_true",
                     help="also replay windows that start with the cube held in the air (the excitation's lifts, "
                          "`deploy --excitation --excitation-lifts N`)")
    cal.add_argument("--replay-mass", action="store_true",
                     help="fit the cube's mass by the replay even where the logs show it held in the air (default: "
                          "weigh it there by the joint torques, which needs no contact model)")
    cal.add_argument("--replay-friction", action="store_true",
                     help="fit the cube-table friction by the replay even where the pushes show the weighed cube "
                          "sliding (default: measure it there by the pushes' force balance)")
    cal.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    cal.set_defaults(func=_cmd_calibrate)
