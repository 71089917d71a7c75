"""`trifinger-s2r study ablation|randomization|robustness`: the paper's studies from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from trifinger_s2r.clitools import positive_int, print_result


def _cmd_study(args: argparse.Namespace) -> None:
    """Run one of the paper's studies into --out: study.json, figures, report.md, videos (trifinger_s2r.study)."""
    from pathlib import Path

    prefix = f"trifinger-s2r study {args.study}"
    video = [] if args.videos else ["--no-video"]

    def progress(line: str) -> None:
        print(f"study {args.study}: {line}", file=sys.stderr, flush=True)

    from trifinger_s2r.study.training import StudyInterrupted

    try:
        if args.study == "robustness":
            from trifinger_s2r.policies import resolve
            from trifinger_s2r.study.robustness import RobustnessConfig, run_robustness

            cfg = RobustnessConfig(policy=args.policy, platform=args.platform, episodes=args.episodes,
                                   seed=args.seed, objects=tuple(args.objects), videos=args.videos,
                                   overrides=tuple(args.set))
            resolve(cfg.policy)
            command = " ".join([prefix, "--policy", args.policy, "--platform", args.platform, "--episodes",
                                str(args.episodes), "--seed", str(args.seed), "--objects", ",".join(args.objects),
                                *(f"--set {kv}" for kv in args.set), *video, "--out", args.out])
            result = run_robustness(cfg, Path(args.out), command, progress)
            rows = {name: f"{100 * r['success_rate']:.1f}% ({100 * r['ci80_low']:.1f}-{100 * r['ci80_high']:.1f}%)"
                    for name, r in result["results"].items()}
        else:
            from trifinger_s2r.study.ablation import AGENTS as ABLATION_AGENTS
            from trifinger_s2r.study.ablation import run_ablation
            from trifinger_s2r.study.randomization import AGENTS as RANDOMIZATION_AGENTS
            from trifinger_s2r.study.randomization import run_randomization
            from trifinger_s2r.study.training import TrainingStudyConfig, agent_config, select_agents

            cfg = TrainingStudyConfig(preset=args.preset, budget_steps=args.budget_steps, seeds=args.seeds,
                                      episodes=args.episodes, num_envs=args.num_envs, overrides=tuple(args.set),
                                      agents=tuple(args.agents), pybullet=args.pybullet, videos=args.videos)
            agent_config(cfg, ABLATION_AGENTS[0], 0)  # names a bad --set key before any training
            select_agents(cfg, ABLATION_AGENTS if args.study == "ablation" else RANDOMIZATION_AGENTS)
            command = " ".join([prefix, "--preset", args.preset, "--budget-steps", str(args.budget_steps),
                                "--seeds", str(args.seeds), "--episodes", str(args.episodes),
                                *(["--num-envs", str(args.num_envs)] if args.num_envs else []),
                                *([f"--agents '{','.join(args.agents)}'"] if args.agents else []),
                                *(f"--set {kv}" for kv in args.set), *([] if args.pybullet else ["--no-pybullet"]),
                                *video, "--out", args.out])
            run = run_ablation if args.study == "ablation" else run_randomization
            result = run(cfg, Path(args.out), command, progress)
            rows = {name: f"{100 * a['sim']['success_rate']:.1f}% in our sim"
                    + (f", {100 * a['pybullet']['success_rate']:.1f}% on PyBullet" if a["pybullet"] else "")
                    for name, a in result["agents"].items()}
    except (FileNotFoundError, ValueError, StudyInterrupted) as err:
        raise SystemExit(f"{prefix}: {err}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print_result({"report": str(Path(args.out) / "report.md"), **rows}, False)


def add_study_parser(sub) -> None:
    """`study ablation|randomization|robustness`; every usage error is one line on stderr."""

    def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        def error(message: str):
            raise SystemExit(f"{parser.prog}: {message}")

        parser.error = error
        return parser

    def objects(text: str) -> list[str]:
        from trifinger_s2r.robot.objects import VARIANTS

        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown object variant(s) {unknown or [text]}; valid: {list(VARIANTS)}")
        return names

    study = one_line_errors(sub.add_parser(
        "study", help="the paper's studies: observation/reward ablation, randomisation on/off, robustness to the "
                      "object (study.json, figures, report.md, videos in --out)"))
    studies = study.add_subparsers(dest="study", required=True, metavar="{ablation,randomization,robustness}")
    parsers = {
        "ablation": "O-KP/R-KP, O-KP/R-PQ, O-PQ/R-KP, O-PQ/R-PQ at equal env steps, judged in our sim (camera model "
                    "on) and on PyBullet; bars with 80%% Wilson intervals",
        "randomization": "training with and without domain randomisation: success against env steps (mean and "
                         "spread over seeds), then judged in our sim and on PyBullet",
        "robustness": "a policy on the cube, the cube x0.5 and x2, the RRC cuboid and a sphere, in our sim or on "
                      "PyBullet (N episodes each, 80%% Wilson intervals, videos)",
    }
    def names(text: str) -> list[str]:
        listed = [n.strip() for n in text.split(",") if n.strip()]
        if not listed:
            raise argparse.ArgumentTypeError(f"no agent named in {text!r}")
        return listed

    for name, help_text in parsers.items():
        p = one_line_errors(studies.add_parser(name, help=help_text, description=help_text))
        if name == "robustness":
            p.add_argument("--policy", required=True, help="a checkpoint model_<it>.pt, an exported policy directory "
                                                           "or pretrained:NAME")
            p.add_argument("--platform", choices=["mujoco", "pybullet"], default="mujoco")
            p.add_argument("--episodes", type=positive_int, default=40, help="episodes per object (default 40)")
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--objects", type=objects, default=["cube", "cube_x0.5", "cube_x2", "cuboid", "sphere"],
                           help="comma-separated object variants (default: all five)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="evaluate in our sim under a changed config (keys as for train --set), e.g. "
                                "env.task.randomization.table_friction_scale.high=2.0")
        else:
            p.add_argument("--preset", choices=["push-cpu", "repose-cpu", "repose-gpu"], default="push-cpu")
            p.add_argument("--budget-steps", type=positive_int, default=1_000_000,
                           help="env steps per agent and seed (default 1M: about 4 minutes per agent on 2 cores)")
            p.add_argument("--seeds", type=positive_int, default=2, help="seeds per agent (default 2)")
            p.add_argument("--episodes", type=positive_int, default=40,
                           help="evaluation episodes per agent, seed and platform (default 40)")
            p.add_argument("--num-envs", type=positive_int, help="parallel training envs (default: the preset's)")
            p.add_argument("--agents", type=names, default=[], metavar="NAME,NAME",
                           help="only these of the study's agents, comma-separated (default: all), e.g. "
                                + ("'O-KP/R-KP,O-PQ/R-KP'" if name == "ablation" else "'without randomisation'"))
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="config override for every agent, as for train --set (repeatable)")
            p.add_argument("--no-pybullet", dest="pybullet", action="store_false",
                           help="judge in our simulation only")
        p.add_argument("--no-video", dest="videos", action="store_false", help="no videos")
        p.add_argument("--out", required=True, help="folder for study.json, the figures, report.md and videos/")
        p.add_argument("--json", action="store_true", help="print the results as one JSON object")
        p.set_defaults(func=_cmd_study)
