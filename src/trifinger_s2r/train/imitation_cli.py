"""`trifinger-s2r imitate`: DAgger from the scripted controller into a checkpoint that `train --init-from` takes."""

from __future__ import annotations

import argparse
import sys

from trifinger_s2r.clitools import add_expert_argument, positive_int, print_result

PRESETS = ("push-cpu", "repose-cpu", "repose-gpu")


def _cmd_imitate(args: argparse.Namespace) -> None:
    from dataclasses import replace
    from pathlib import Path

    from trifinger_s2r.task.expert import ExpertConfig, expert_with
    from trifinger_s2r.train.config import apply_overrides, preset, with_overrides
    from trifinger_s2r.train.imitation import ImitationConfig, imitate
    from trifinger_s2r.train.trainer import holds_run

    cfg = preset(args.preset)
    env_overrides = {k: v for k, v in {"num_envs": args.num_envs, "seed": args.seed}.items() if v is not None}
    cfg = with_overrides(replace(cfg, env=replace(cfg.env, **env_overrides)), torch_threads=args.torch_threads)
    try:
        cfg = apply_overrides(cfg, args.set)
        imitation = ImitationConfig(rounds=args.rounds, steps_per_round=args.steps_per_round,
                                    policy_std=args.policy_std, max_minutes=args.max_minutes,
                                    expert=expert_with(ExpertConfig(), args.expert))
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r imitate: {err}") from None
    run_dir = Path(args.run_dir)
    if holds_run(run_dir):
        raise SystemExit(f"trifinger-s2r imitate: {run_dir} already holds a run; choose another --run-dir")

    def report(line: str) -> None:
        print(f"imitate: {line}", file=sys.stderr, flush=True)

    checkpoint = imitate(cfg, imitation, run_dir, report)
    print_result({"preset": args.preset, "run_dir": str(run_dir), "checkpoint": str(checkpoint),
                  "next": f"trifinger-s2r train --preset {args.preset} --init-from {checkpoint} "
                          "--set ppo.actor_warmup_iterations=20"}, args.json)


def add_imitate_parser(sub: argparse._SubParsersAction) -> None:
    imitate = sub.add_parser(
        "imitate", help="warm-start a policy by DAgger from the scripted grasp-lift-carry controller (then train "
                        "--init-from the checkpoint)")
    imitate.add_argument("--preset", choices=PRESETS, default="repose-cpu",
                         help="the training preset whose env and networks to use (default repose-cpu)")
    imitate.add_argument("--run-dir", required=True, help="folder for config.json, imitation.json and model_0.pt")
    imitate.add_argument("--rounds", type=positive_int, default=40, help="DAgger rounds (default 40)")
    imitate.add_argument("--steps-per-round", type=positive_int, default=48,
                         help="policy steps each env takes per round (default 48)")
    imitate.add_argument("--policy-std", type=float, default=0.2,
                         help="action noise of the saved actor, PPO's exploration from there (default 0.2)")
    imitate.add_argument("--max-minutes", type=float, default=0.0,
                         help="wall-clock budget: no round starts after it, the checkpoint is written (0: none)")
    imitate.add_argument("--num-envs", type=positive_int)
    imitate.add_argument("--seed", type=int)
    imitate.add_argument("--torch-threads", type=int, help="learner threads (default 1)")
    imitate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config field as train --set does")
    add_expert_argument(imitate)
    imitate.add_argument("--json", action="store_true", help="print one JSON object")
    imitate.set_defaults(func=_cmd_imitate)
