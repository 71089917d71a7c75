"""`trifinger-s2r bench turn`: how far the scripted controller (task.expert) turns a cube it holds.

From the shipped cache of lifted-cube grasps (sim.grasps), each env asks the controller to keep the cube where it is
but turned by an angle about a horizontal axis (tilt, a random heading per env) or the vertical (yaw, either sense),
and judges it after a few seconds: the share still held, the share within the success tolerance of the turned
orientation, and the mean error left. This isolates in-grasp reorientation from grasping and carrying.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from trifinger_s2r.bench.teacher_bench import add_controller_arguments
from trifinger_s2r.clitools import positive_int, print_result

HELD_ABOVE_M = 0.045
"""A cube whose centre is above this is still held (cached grasps hold it at 6-9 cm)."""


def measure_turns(angles_rad: tuple[float, ...], envs_per_cell: int, seed: int, seconds: float = 3.0,
                  preset_name: str = "repose-cpu", assignments: tuple[str, ...] = (),
                  expert_assignments: tuple[str, ...] = ()) -> dict:
    """Per axis kind ('tilt', 'yaw') and angle: `held_share`, `within_tolerance_share` (the task's success
    orientation, 0.4 rad) and `mean_error_rad`, over envs_per_cell grasps each."""
    import torch

    from trifinger_s2r.envs.repose_env import ReposeEnv
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.task.expert import ExpertConfig, expert_with
    from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_mul, rotation_angle_between
    from trifinger_s2r.train.config import apply_overrides, preset
    from trifinger_s2r.train.imitation import teacher_action

    cfg = apply_overrides(preset(preset_name), list(assignments))
    expert = expert_with(ExpertConfig(), list(expert_assignments))
    task = dataclasses.replace(for_evaluation(cfg.env.task), level=4, grasp_start_share=0.999,
                               episode_length_steps=10**6)
    cells = [(kind, angle) for kind in ("tilt", "yaw") for angle in angles_rad]
    n = len(cells) * envs_per_cell
    env = ReposeEnv(dataclasses.replace(cfg.env, num_envs=n, seed=seed, task=task))
    generator = torch.Generator().manual_seed(seed)
    heading = 2 * math.pi * torch.rand(n, generator=generator)
    sense = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    is_yaw = torch.tensor([kind == "yaw" for kind, _ in cells]).repeat_interleave(envs_per_cell)
    angle = torch.tensor([a for _, a in cells]).repeat_interleave(envs_per_cell)
    horizontal = torch.stack([heading.cos(), heading.sin(), torch.zeros(n)], dim=-1)
    vertical = torch.stack([torch.zeros(n), torch.zeros(n), sense], dim=-1)
    start = env.state
    held_at_start = start.cube_pos_m[:, 2] > HELD_ABOVE_M
    env.goal_pos_m[:] = start.cube_pos_m
    env.goal_quat[:] = quat_mul(quat_from_axis_angle(torch.where(is_yaw[:, None], vertical, horizontal), angle),
                                start.cube_quat_xyzw)
    with torch.inference_mode():
        for _ in range(round(seconds * env.timing.policy_rate_hz)):
            env.step(teacher_action(env, expert))
    end = env.state
    error = rotation_angle_between(end.cube_quat_xyzw, env.goal_quat)
    held = (end.cube_pos_m[:, 2] > HELD_ABOVE_M) & held_at_start
    results = {}
    for index, (kind, cell_angle) in enumerate(cells):
        rows = slice(index * envs_per_cell, (index + 1) * envs_per_cell)
        counted = held_at_start[rows]
        results.setdefault(kind, {})[f"{cell_angle:g}"] = {
            "grasps": int(counted.sum()),
            "held_share": float(held[rows][counted].float().mean()),
            "within_tolerance_share": float((held[rows] & (error[rows] <= task.success_orientation_rad))[counted]
                                            .float().mean()),
            "mean_error_rad": float(error[rows][counted].mean()),
        }
    return {"controller": "task.expert", "preset": preset_name, "seed": seed, "seconds": seconds,
            "set": list(assignments), "expert": list(expert_assignments), "results": results}


def _angles(text: str) -> tuple[float, ...]:
    try:
        angles = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated angles in rad, got {text!r}") from None
    if not angles or any(not 0.0 < a <= math.pi for a in angles):
        raise argparse.ArgumentTypeError(f"angles must be in (0, pi] rad, got {text!r}")
    return angles


def _cmd(args: argparse.Namespace) -> None:
    try:
        result = measure_turns(args.angles, args.envs_per_cell, args.seed, args.seconds, args.preset, tuple(args.set),
                               tuple(args.expert))
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r bench turn: {err}") from None
    print_result(result, args.json)


def add_turn_parser(bench_sub: argparse._SubParsersAction) -> None:
    turn = bench_sub.add_parser("turn", help="how far the scripted controller turns a cube it holds (tilt and yaw)")
    turn.add_argument("--angles", type=_angles, default=(0.3, 0.6, 0.9, 1.2), help="rad, comma-separated")
    turn.add_argument("--envs-per-cell", type=positive_int, default=24)
    turn.add_argument("--seconds", type=float, default=3.0)
    turn.add_argument("--seed", type=int, default=0)
    add_controller_arguments(turn)
    turn.add_argument("--json", action="store_true", help="print one JSON object")
    turn.set_defaults(func=_cmd)
