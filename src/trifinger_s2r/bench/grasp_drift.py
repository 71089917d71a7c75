"""`trifinger-s2r bench drift`: where a policy loses the cube's orientation on the way to a level-4 goal.

The policy runs the goal curriculum's first `yaw` step (level-4 heights, the goal the start orientation turned by at
most --yaw-rad about the vertical), so keeping the cube's own orientation is nearly all the orientation it needs. An
episode "drifts" when the cube first turns by more than the success tolerance (0.4 rad) from its start orientation;
the drift is "on the table" when the cube is then not yet lifted (no more than 1 cm above its resting height).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from trifinger_s2r.clitools import positive_int, print_result


def measure_drift(policy: Callable, cfg, episodes: int, seed: int, yaw_rad: float) -> dict:
    """Drift statistics of `episodes` parallel episodes of policy (obs -> action) under cfg (a TrainConfig). Imports
    stay inside: the CLI builds this parser for every command, farm HTTP commands included."""
    import torch

    from trifinger_s2r.envs.repose_env import ReposeEnv
    from trifinger_s2r.task import curriculum
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.task.geometry import rotation_angle_between
    from trifinger_s2r.task.goals import LIFTED_M

    stages = dataclasses.replace(cfg.env.task.curriculum, enabled=True, full_difficulty_share=0.0)
    task = dataclasses.replace(for_evaluation(cfg.env.task), level=4, curriculum=stages)
    env = ReposeEnv(dataclasses.replace(cfg.env, task=task, num_envs=episodes, seed=seed))
    env.curriculum_state = curriculum.CurriculumState(stage_index=curriculum.STAGES.index("yaw"), yaw_rad=yaw_rad)
    env.reset()
    obs, start_quat = env.get_observations(), env.state.cube_quat_xyzw.clone()
    table_m = env.params.cube_edge_m / 2 + LIFTED_M
    first = torch.full((episodes,), -1, dtype=torch.long)
    on_table = torch.zeros(episodes, dtype=torch.bool)
    lifted = torch.zeros(episodes, dtype=torch.bool)
    with torch.inference_mode():
        for step in range(env.max_episode_length):
            state = env.state
            turned = rotation_angle_between(state.cube_quat_xyzw, start_quat) > task.success_orientation_rad
            low = state.cube_pos_m[:, 2] <= table_m
            new = turned & (first < 0)
            first[new], on_table[new] = step, low[new]
            lifted |= ~low
            obs, _, _, extras = env.step(policy(obs))
    drifted = first >= 0
    return {
        "episodes": episodes, "seed": seed, "yaw_rad": yaw_rad,
        "success_rate": float(extras["log"]["Episode/success_rate"].mean()),
        "drifted_share": float(drifted.float().mean()),
        "drifted_on_table_share": float((drifted & on_table).float().mean()),
        "drifted_in_air_share": float((drifted & ~on_table).float().mean()),
        "median_first_drift_step": int(first[drifted].median()) if drifted.any() else None,
        "lifted_share": float(lifted.float().mean()),
        "lifted_without_drift_share": float((lifted & ~drifted).float().mean()),
    }


def _cmd(args: argparse.Namespace) -> None:
    from trifinger_s2r.policies import load_policy

    try:
        policy, cfg = load_policy(args.policy)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"bench drift: --policy {args.policy}: {err}") from None
    result = measure_drift(policy, cfg, args.episodes, args.seed, args.yaw_rad)
    print_result({"policy": args.policy, **result}, args.json)


def add_drift_parser(bench_sub: argparse._SubParsersAction) -> None:
    drift = bench_sub.add_parser("drift", help="where a policy turns the cube out of its orientation (level-4 "
                                               "heights, near-kept orientation goals): on the table or in the air")
    drift.add_argument("--policy", required=True, help="a checkpoint, an exported policy directory or pretrained:NAME")
    drift.add_argument("--episodes", type=positive_int, default=128)
    drift.add_argument("--seed", type=int, default=0)
    drift.add_argument("--yaw-rad", type=float, default=0.25, help="largest goal yaw from the start orientation")
    drift.add_argument("--json", action="store_true", help="print one JSON object")
    drift.set_defaults(func=_cmd)
