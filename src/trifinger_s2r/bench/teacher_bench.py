"""`trifinger-s2r bench teacher`: the scripted controller (task.expert) judged like a policy, through eval's episode
loop: the ceiling of what imitation can give, per level."""

from __future__ import annotations

import argparse
import dataclasses

from trifinger_s2r.clitools import positive_int, print_result


def evaluate_teacher(level: int, episodes: int, seed: int, preset_name: str = "repose-cpu") -> dict:
    """eval's summary (success with its 80% interval, errors, lifted share) of the teacher on `level`'s goals from
    on-table starts, with the preset's randomisation and camera (the teacher reads the true state). Imports stay
    inside: the CLI builds this parser for every command, farm HTTP commands included."""
    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
    from trifinger_s2r.eval.rollouts import evaluate
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.task.expert import ExpertConfig
    from trifinger_s2r.train.config import preset
    from trifinger_s2r.train.imitation import teacher_action

    cfg = preset(preset_name)
    task = dataclasses.replace(for_evaluation(cfg.env.task), level=level)
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, task=task))
    envs: list[ReposeEnv] = []

    def make_env(env_cfg: EnvConfig) -> ReposeEnv:
        envs.append(ReposeEnv(env_cfg))
        return envs[-1]

    def policy(obs):
        return teacher_action(envs[-1], ExpertConfig())

    summary = evaluate(policy, cfg, episodes, seed, make_env)
    return {"controller": "task.expert", "preset": preset_name, "seed": seed, **summary}


def _cmd(args: argparse.Namespace) -> None:
    print_result(evaluate_teacher(args.level, args.episodes, args.seed), args.json)


def add_teacher_parser(bench_sub: argparse._SubParsersAction) -> None:
    teacher = bench_sub.add_parser("teacher", help="the scripted grasp-lift-carry controller judged like a policy "
                                                   "(the ceiling of `imitate`)")
    teacher.add_argument("--level", type=int, choices=[1, 2, 3, 4], default=3)
    teacher.add_argument("--episodes", type=positive_int, default=200)
    teacher.add_argument("--seed", type=int, default=0)
    teacher.add_argument("--json", action="store_true", help="print one JSON object")
    teacher.set_defaults(func=_cmd)
