"""The `trifinger-s2r` command line: train, eval, export, deploy, farm, bench."""

from __future__ import annotations

import argparse
import json
import math
import sys

from trifinger_s2r.robot.build_model import COLLISION_VARIANTS
from trifinger_s2r.sim import BACKENDS
from trifinger_s2r.timing import PHYSICS_MODES


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in result.items():
        table.add_row(key, format_value(key, value))
    Console().print(table)


def format_value(key: str, value) -> str:
    """A result value as a person reads it: rates as percentages, metres as cm, radians with degrees."""
    if isinstance(value, bool) or not isinstance(value, float):
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if key.endswith("_rate") or key.startswith("ci80_"):
        return f"{100 * value:.1f}%"
    if key.endswith("_m"):
        return f"{100 * value:.2f} cm"
    if key.endswith("_rad"):
        return f"{value:.3f} rad ({math.degrees(value):.1f} deg)"
    if key.endswith("_per_s"):
        return f"{value:,.0f}/s"
    return f"{value:.4g}"


def _cmd_bench_env(args: argparse.Namespace) -> None:
    from trifinger_s2r.bench.env_bench import EnvBenchConfig, run

    cfg = EnvBenchConfig(
        backend=args.backend,
        num_envs=args.num_envs,
        policy_steps=args.steps,
        collision=args.collision,
        physics_mode=args.physics_mode,
        num_threads=args.threads,
        device=args.device or ("cuda" if args.backend == "warp" and _cuda_available() else "cpu"),
        randomize=not args.no_randomization,
        seed=args.seed,
    )
    _print_result(run(cfg), args.json)


def _cmd_bench_train(args: argparse.Namespace) -> None:
    from trifinger_s2r.bench.train_bench import TrainBenchConfig, run

    cfg = TrainBenchConfig(preset=args.preset, iterations=args.iterations, num_envs=args.num_envs,
                           torch_threads=1 if args.torch_threads is None else args.torch_threads,
                           paper_networks=args.paper_networks,
                           overrides=tuple(args.set))
    try:
        result = run(cfg)
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r bench train: {err}") from None
    _print_result(result, args.json)


def _cmd_bench_pybullet(args: argparse.Namespace) -> None:
    from trifinger_s2r.bench.pybullet_bench import PybulletBenchConfig, run

    _print_result(run(PybulletBenchConfig(policy_steps=args.steps, seed=args.seed)), args.json)


def _default_preset() -> str:
    """repose-gpu where a GPU backend is available (MuJoCo Warp installed and a CUDA device), else push-cpu."""
    from trifinger_s2r.sim.mujoco_warp_backend import warp_available

    return "repose-gpu" if _cuda_available() and warp_available() else "push-cpu"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace
    from pathlib import Path

    from trifinger_s2r.train.config import apply_overrides, preset, with_overrides
    from trifinger_s2r.train.distributed import process_group_from_env
    from trifinger_s2r.train.trainer import holds_run, new_run_dir, train

    name = args.preset or _default_preset()
    cfg = preset(name)
    env_overrides = {k: v for k, v in {"num_envs": args.num_envs, "seed": args.seed}.items() if v is not None}
    cfg = with_overrides(
        replace(cfg, env=replace(cfg.env, **env_overrides)),
        max_iterations=args.max_iterations,
        save_interval=args.save_interval,
        max_minutes=args.max_minutes,
        init_from=args.init_from,
        torch_threads=args.torch_threads,
    )
    try:
        cfg = apply_overrides(cfg, args.set)
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r train: {err}") from None
    group = process_group_from_env()
    run_dir = Path(args.resume or args.run_dir or new_run_dir(Path("runs"), name))
    if args.resume is None and group.is_main and holds_run(run_dir):
        raise SystemExit(f"trifinger-s2r train: {run_dir} already holds a run; continue it with --resume {run_dir} "
                         "or choose another --run-dir")
    if group.is_main:
        print(f"{'resuming' if args.resume else 'training'} in {run_dir}", file=sys.stderr)
    checkpoint = train(cfg, run_dir, resume=args.resume is not None, show_progress=not args.json)
    if group.is_main:
        result = {"preset": args.preset if args.resume else name, "run_dir": str(run_dir),
                  "checkpoint": str(checkpoint), "world_size": group.world_size}
        _print_result(result, args.json)


def _cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from trifinger_s2r.export.policy_bundle import export_checkpoint

    try:
        out = export_checkpoint(Path(args.checkpoint), Path(args.out))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"trifinger-s2r export: {err}") from None
    _print_result({"out": str(out), "files": sorted(p.name for p in out.iterdir())}, args.json)


def _cmd_eval(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from trifinger_s2r.eval.rollouts import evaluate
    from trifinger_s2r.policies import load_policy
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.train.config import apply_overrides

    try:
        policy, cfg = load_policy(args.policy)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--policy {args.policy}: {err}") from None
    cfg = replace(cfg, env=replace(cfg.env, task=for_evaluation(cfg.env.task)))  # --set may turn them back on
    if cfg.env.device.startswith("cuda") and not _cuda_available():
        print("eval: no CUDA device here; evaluating on native MuJoCo on the CPU", file=sys.stderr)
        cfg = replace(cfg, env=replace(cfg.env, backend="mujoco", device="cpu"))
    if args.level is not None:
        cfg = replace(cfg, env=replace(cfg.env, task=replace(cfg.env.task, level=args.level)))
    try:
        cfg = apply_overrides(cfg, args.set)
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r eval: {err}") from None
    _print_result(evaluate(policy, cfg, args.episodes, args.seed), args.json)


def _cmd_deploy(args: argparse.Namespace) -> None:
    from pathlib import Path

    from trifinger_s2r.deploy.platform import PyBulletRobot, RealRobot
    from trifinger_s2r.deploy.session import DeployConfig, run_deployment
    from trifinger_s2r.deploy.tracker import TrackerConfig
    from trifinger_s2r.policies import load_bundle_policy

    try:
        policy = load_bundle_policy(args.policy)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--policy {args.policy}: {err}") from None
    if args.platform == "pybullet":
        robot = PyBulletRobot(tracker=TrackerConfig(enabled=not args.no_tracker_noise), seed=args.seed)
    else:
        robot = RealRobot()
    cfg = DeployConfig(episodes=args.episodes, level=args.level, seed=args.seed,
                       episode_length_steps=args.episode_length)
    log_dir = Path(args.log_dir) if args.log_dir else None
    video = Path(args.video) if args.video else None
    summary = run_deployment(policy, policy.metadata, robot, cfg, log_dir, args.policy, video_path=video)
    _print_result(summary, args.json)


def _cmd_study(args: argparse.Namespace) -> None:
    """Run one of the paper's studies into --out: study.json, figures, report.md, videos (trifinger_s2r.study)."""
    from pathlib import Path

    prefix = f"trifinger-s2r study {args.study}"
    video = [] if args.videos else ["--no-video"]

    def progress(line: str) -> None:
        print(f"study {args.study}: {line}", file=sys.stderr, flush=True)

    try:
        if args.study == "robustness":
            from trifinger_s2r.policies import resolve
            from trifinger_s2r.study.robustness import RobustnessConfig, run_robustness

            cfg = RobustnessConfig(policy=args.policy, platform=args.platform, episodes=args.episodes,
                                   seed=args.seed, objects=tuple(args.objects), videos=args.videos)
            resolve(cfg.policy)
            command = " ".join([prefix, "--policy", args.policy, "--platform", args.platform, "--episodes",
                                str(args.episodes), "--seed", str(args.seed), "--objects", ",".join(args.objects),
                                *video, "--out", args.out])
            result = run_robustness(cfg, Path(args.out), command, progress)
            rows = {name: f"{100 * r['success_rate']:.1f}% ({100 * r['ci80_low']:.1f}-{100 * r['ci80_high']:.1f}%)"
                    for name, r in result["results"].items()}
        else:
            from trifinger_s2r.study.ablation import AGENTS as ABLATION_AGENTS
            from trifinger_s2r.study.ablation import run_ablation
            from trifinger_s2r.study.randomization import run_randomization
            from trifinger_s2r.study.training import TrainingStudyConfig, agent_config

            cfg = TrainingStudyConfig(preset=args.preset, budget_steps=args.budget_steps, seeds=args.seeds,
                                      episodes=args.episodes, num_envs=args.num_envs, overrides=tuple(args.set),
                                      pybullet=args.pybullet, videos=args.videos)
            agent_config(cfg, ABLATION_AGENTS[0], 0)  # names a bad --set key before any training
            command = " ".join([prefix, "--preset", args.preset, "--budget-steps", str(args.budget_steps),
                                "--seeds", str(args.seeds), "--episodes", str(args.episodes),
                                *(["--num-envs", str(args.num_envs)] if args.num_envs else []),
                                *(f"--set {kv}" for kv in args.set), *([] if args.pybullet else ["--no-pybullet"]),
                                *video, "--out", args.out])
            run = run_ablation if args.study == "ablation" else run_randomization
            result = run(cfg, Path(args.out), command, progress)
            rows = {name: f"{100 * a['sim']['success_rate']:.1f}% in our sim"
                    + (f", {100 * a['pybullet']['success_rate']:.1f}% on PyBullet" if a["pybullet"] else "")
                    for name, a in result["agents"].items()}
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"{prefix}: {err}") from None
    if args.json:
        print(json.dumps(result))
    else:
        _print_result({"report": str(Path(args.out) / "report.md"), **rows}, False)


def _add_study_parser(sub) -> None:
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
    for name, help_text in parsers.items():
        p = one_line_errors(studies.add_parser(name, help=help_text, description=help_text))
        if name == "robustness":
            p.add_argument("--policy", required=True, help="a checkpoint model_<it>.pt, an exported policy directory "
                                                           "or pretrained:NAME")
            p.add_argument("--platform", choices=["mujoco", "pybullet"], default="mujoco")
            p.add_argument("--episodes", type=_positive_int, default=40, help="episodes per object (default 40)")
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--objects", type=objects, default=["cube", "cube_x0.5", "cube_x2", "cuboid", "sphere"],
                           help="comma-separated object variants (default: all five)")
        else:
            p.add_argument("--preset", choices=["push-cpu", "repose-cpu", "repose-gpu"], default="push-cpu")
            p.add_argument("--budget-steps", type=_positive_int, default=1_000_000,
                           help="env steps per agent and seed (default 1M: about 4 minutes per agent on 2 cores)")
            p.add_argument("--seeds", type=_positive_int, default=2, help="seeds per agent (default 2)")
            p.add_argument("--episodes", type=_positive_int, default=40,
                           help="evaluation episodes per agent, seed and platform (default 40)")
            p.add_argument("--num-envs", type=_positive_int, help="parallel training envs (default: the preset's)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="config override for every agent, as for train --set (repeatable)")
            p.add_argument("--no-pybullet", dest="pybullet", action="store_false",
                           help="judge in our simulation only")
        p.add_argument("--no-video", dest="videos", action="store_false", help="no videos")
        p.add_argument("--out", required=True, help="folder for study.json, the figures, report.md and videos/")
        p.add_argument("--json", action="store_true", help="print the results as one JSON object")
        p.set_defaults(func=_cmd_study)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trifinger-s2r", description=__doc__)
    parser.add_argument("--torch-threads", type=_positive_int,
                        help="torch intra-op threads (default 1: a multi-threaded update collapses when a core is busy)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a PPO policy (rsl_rl) on the reposing task")
    train.add_argument("--preset", choices=["push-cpu", "repose-cpu", "repose-gpu"],
                       help="default: repose-gpu where a GPU backend is available, else push-cpu")
    train.add_argument("--run-dir", help="where checkpoints, config.json, progress.json and TensorBoard logs go "
                       "(default: a new runs/PRESET-YYYYmmdd-HHMMSS); a folder holding a run is refused (use --resume)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    train.add_argument("--num-envs", type=_positive_int)
    train.add_argument("--max-iterations", type=_positive_int)
    train.add_argument("--save-interval", type=_positive_int)
    train.add_argument("--seed", type=int)
    train.add_argument("--init-from", metavar="CHECKPOINT",
                       help="start from another run's actor and critic (fresh optimiser and iteration count)")
    train.add_argument("--max-minutes", type=float,
                       help="wall-clock budget: stop after the iteration that crosses it, with a checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field by its dotted name, e.g. ppo.learning_rate=1e-3 or "
                            "env.task.randomization.camera.enabled=false (repeatable; see config.json for the keys)")
    train.add_argument("--json", action="store_true", help="no progress bar; print one JSON object at the end")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("eval", help="success rate (80%% Wilson interval) and final errors over N episodes")
    evaluate.add_argument("--policy", required=True,
                          help="a checkpoint model_<it>.pt (config.json beside it), an exported policy directory, "
                               "or pretrained:NAME (a policy shipped with the package)")
    evaluate.add_argument("--level", type=int, choices=[-1, 1, 2, 3, 4], help="goal level (default: the run's)")
    evaluate.add_argument("--episodes", type=_positive_int, default=40)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="evaluate under a changed config, e.g. env.task.randomization.camera.enabled=true "
                               "or env.task.randomization.enabled=false (keys as for train --set)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_cmd_eval)

    deploy = sub.add_parser("deploy", help="run an exported policy through the robot interface (1 kHz robot, "
                                           "50 Hz policy, 10 Hz camera) on PyBullet or a real TriFinger")
    deploy.add_argument("--policy", required=True, help="an exported policy directory or pretrained:NAME")
    deploy.add_argument("--platform", choices=["pybullet", "real"], default="pybullet",
                        help="pybullet: trifinger_simulation's TriFingerPlatform; real: robot_fingers' front end")
    deploy.add_argument("--level", type=int, choices=[-1, 1, 2, 3, 4], help="goal level (default: the policy's)")
    deploy.add_argument("--episodes", type=_positive_int, default=40)
    deploy.add_argument("--seed", type=int, default=0)
    deploy.add_argument("--episode-length", type=_positive_int, help="policy steps (default: the policy's)")
    deploy.add_argument("--no-tracker-noise", action="store_true",
                        help="PyBullet's exact (delayed) cube pose: no tracker noise, jitter or low-confidence frames")
    deploy.add_argument("--log-dir", help="write info.json, per-episode logs and report.json (last) here")
    deploy.add_argument("--video", metavar="FILE", help="render the first episode to FILE (.mp4), keypoints drawn")
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    deploy.set_defaults(func=_cmd_deploy)

    export = sub.add_parser("export", help="write the actor as ONNX with metadata.json (a policy bundle)")
    export.add_argument("--checkpoint", required=True, help="a checkpoint model_<it>.pt (config.json beside it)")
    export.add_argument("--out", required=True, help="folder to write policy.onnx and metadata.json into")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(func=_cmd_export)

    from trifinger_s2r.farm.cli import add_farm_parser

    add_farm_parser(sub)
    _add_study_parser(sub)

    bench = sub.add_parser("bench", help="throughput benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    env = bench_sub.add_parser("env", help="full env vs bare MuJoCo, policy steps per second")
    env.add_argument("--backend", choices=BACKENDS, default="mujoco")
    env.add_argument("--num-envs", type=_positive_int, default=1024)
    env.add_argument("--steps", type=_positive_int, default=200, help="timed policy steps")
    env.add_argument("--collision", choices=COLLISION_VARIANTS, default="primitive")
    env.add_argument("--physics-mode", choices=sorted(PHYSICS_MODES), default="5ms")
    env.add_argument("--threads", type=int, default=0, help="simulation threads (0: all cores)")
    env.add_argument("--device", help="env device (default: cuda for --backend warp where a GPU exists, else cpu)")
    env.add_argument("--no-randomization", action="store_true")
    env.add_argument("--seed", type=int, default=0)
    env.add_argument("--json", action="store_true", help="print one JSON object")
    env.set_defaults(func=_cmd_bench_env)
    tr = bench_sub.add_parser("train", help="end-to-end training samples per second (env + inference + PPO)")
    tr.add_argument("--preset", choices=["push-cpu", "repose-cpu", "repose-gpu"], default="push-cpu")
    tr.add_argument("--iterations", type=_positive_int, default=4, help="timed iterations (after one warm-up)")
    tr.add_argument("--num-envs", type=_positive_int)
    tr.add_argument("--paper-networks", action="store_true", help="the paper's MLP sizes instead of the preset's")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field as train --set does (e.g. env.device=cpu)")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.set_defaults(func=_cmd_bench_train)
    pyb = bench_sub.add_parser("pybullet", help="the official PyBullet TriFinger platform, policy steps per second")
    pyb.add_argument("--steps", type=_positive_int, default=100, help="timed policy steps")
    pyb.add_argument("--seed", type=int, default=0)
    pyb.add_argument("--json", action="store_true", help="print one JSON object")
    pyb.set_defaults(func=_cmd_bench_pybullet)
    from trifinger_s2r.bench.farm_soak import add_soak_parser

    add_soak_parser(bench_sub)
    return parser


FARM_HTTP_COMMANDS = ("submit", "status", "robots", "results", "user")
"""farm commands that only talk HTTP (or SQL): they never load torch, MuJoCo or the training stack."""


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not (args.command == "farm" and args.farm_command in FARM_HTTP_COMMANDS):
        import torch

        torch.set_num_threads(args.torch_threads or 1)
    args.func(args)


if __name__ == "__main__":
    main()
