"""`trifinger-s2r calibrate --logs DIR [DIR ...] --out FILE [--json]`: fit the simulation to robot logs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trifinger_s2r.clitools import positive_int


def calibrate(log_dirs: list[Path], max_evaluations: int, command: str, progress=None) -> dict:
    """Read every log under log_dirs, fit, and return the calibration (the file's content)."""
    from dataclasses import asdict

    from trifinger_s2r.calibration.fit import FitConfig, fit_camera_delay, fit_physics
    from trifinger_s2r.calibration.logs import find_logs, read_log
    from trifinger_s2r.calibration.ranges import CALIBRATION_FORMAT, CALIBRATION_VERSION

    paths = find_logs(log_dirs)
    logs = [read_log(p) for p in paths]  # every file is checked before anything is fitted or written
    delay_s, delay_spread_s, jitter_s = fit_camera_delay(logs)
    result = fit_physics(logs, FitConfig(max_evaluations=max_evaluations), progress=progress)
    spread = asdict(result.spread)
    params = {name: {"value": value, "spread": spread[name]} for name, value in asdict(result.params).items()}
    params["camera_delay_s"] = {"value": delay_s, "spread": delay_spread_s}
    params["camera_jitter_s"] = {"value": jitter_s, "spread": delay_spread_s}
    return {
        "format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, "params": params,
        "fit_error_before": result.before["normalised_rms"], "fit_error_after": result.after["normalised_rms"],
        "replay_error_before": result.before, "replay_error_after": result.after,
        "episodes": len(logs), "windows": result.windows, "windows_cube_moved": result.windows_cube_moved,
        "logs": [str(p) for p in paths], "command": command,
    }


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from trifinger_s2r.calibration.logs import LogError

    command = " ".join(["trifinger-s2r calibrate --logs", *args.logs, "--out", args.out])

    def progress(line: str) -> None:
        if not args.json:
            print(f"calibrate: {line}", file=sys.stderr, flush=True)

    try:
        result = calibrate([Path(d) for d in args.logs], args.max_evaluations, command, progress)
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
    cal.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    cal.set_defaults(func=_cmd_calibrate)
