"""`trifinger-s2r bench teacher`: the scripted controller (task.expert) judged like a policy, through eval's episode
loop: the ceiling of what imitation can give, per level."""

from __future__ import annotations

import argparse
import dataclasses

from trifinger_s2r.clitools import add_expert_argument, positive_int, print_result


def evaluate_teacher(level: int, episodes: int, seed: int, preset_name: str = "repose-cpu",
                     assignments: tuple[str, ...] = (), expert_assignments: tuple[str, ...] = ()) -> dict:
    """eval's summary (success with its 80% interval, errors, lifted share) of the teacher on `level`'s goals from
    on-table starts, with the preset's randomisation and camera (the teacher reads the true state); `assignments`
    change the preset (train --set), `expert_assignments` the controller (task.expert.expert_with). Imports stay
    inside: the CLI builds this parser for every command, farm HTTP commands included."""
    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
    from trifinger_s2r.eval.rollouts import evaluate
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.task.expert import ExpertConfig, expert_with
    from trifinger_s2r.train.config import apply_overrides, preset
    from trifinger_s2r.train.imitation import teacher_action

    cfg = apply_overrides(preset(preset_name), list(assignments))
    expert = expert_with(ExpertConfig(), list(expert_assignments))
    task = dataclasses.replace(for_evaluation(cfg.env.task), level=level)
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, task=task))
    envs: list[ReposeEnv] = []

    def make_env(env_cfg: EnvConfig) -> ReposeEnv:
        envs.append(ReposeEnv(env_cfg))
        return envs[-1]

    def policy(obs):
        return teacher_action(envs[-1], expert)

    summary = evaluate(policy, cfg, episodes, seed, make_env)
    return {"controller": "task.expert", "preset": preset_name, "seed": seed, "set": list(assignments),
            "expert": list(expert_assignments), **summary}


def _cmd(args: argparse.Namespace) -> None:
    try:
        result = evaluate_teacher(args.level, args.episodes, args.seed, args.preset, tuple(args.set),
                                  tuple(args.expert))
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r bench teacher: {err}") from None
    print_result(result, args.json)


def add_controller_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, --set and --expert: the env the controller acts in, and the controller."""
    parser.add_argument("--preset", choices=["repose-cpu", "repose-gpu"], default="repose-cpu",
                        help="the env whose randomisation, camera and physics to use (default repose-cpu)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change the preset's config as train --set does (e.g. env.task.friction_cone=pyramidal)")
    add_expert_argument(parser)


def add_teacher_parser(bench_sub: argparse._SubParsersAction) -> None:
    teacher = bench_sub.add_parser("teacher", help="the scripted grasp-lift-carry controller judged like a policy "
                                                   "(the ceiling of `imitate`)")
    teacher.add_argument("--level", type=int, choices=[1, 2, 3, 4], default=3)
    teacher.add_argument("--episodes", type=positive_int, default=200)
    teacher.add_argument("--seed", type=int, default=0)
    add_controller_arguments(teacher)
    teacher.add_argument("--json", action="store_true", help="print one JSON object")
    teacher.set_defaults(func=_cmd)
