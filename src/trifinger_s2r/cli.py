"""The `trifinger-s2r` command line: train, eval, export, deploy, farm, bench."""

from __future__ import annotations

import argparse
import sys

from trifinger_s2r.clitools import positive_int as _positive_int
from trifinger_s2r.clitools import print_result as _print_result
from trifinger_s2r.robot.build_model import COLLISION_VARIANTS
from trifinger_s2r.sim import BACKENDS
from trifinger_s2r.sim.contact import FRICTION_CONES
from trifinger_s2r.timing import PHYSICS_MODES


def _cmd_bench_env(args: argparse.Namespace) -> None:
    from trifinger_s2r.bench.env_bench import EnvBenchConfig, run

    cfg = EnvBenchConfig(
        backend=args.backend,
        num_envs=args.num_envs,
        policy_steps=args.steps,
        collision=args.collision,
        physics_mode=args.physics_mode,
        friction_cone=args.friction_cone,
        impratio=args.impratio,
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
    if args.calibration:
        cfg = _with_calibration(cfg, args.calibration)
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


def _with_calibration(cfg, path: str):
    """cfg with its randomisation ranges centred on the calibration file's values, and the calibration recorded."""
    import json
    from dataclasses import replace

    from trifinger_s2r.calibration.ranges import load_calibration_file, randomization_from_calibration

    try:
        calibration = load_calibration_file(path)
        task = cfg.env.task
        ranges = randomization_from_calibration(calibration, task.randomization)
    except ValueError as err:
        raise SystemExit(f"trifinger-s2r train --calibration: {err}") from None
    task = replace(task, randomization=ranges)
    return replace(cfg, env=replace(cfg.env, task=task), calibration=json.dumps(calibration, sort_keys=True))


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

    if args.platform == "pybullet":
        robot = PyBulletRobot(tracker=TrackerConfig(enabled=not args.no_tracker_noise), seed=args.seed)
    else:
        robot = RealRobot()
    if args.excitation:
        _deploy_excitation(args, robot)
        return
    try:
        policy = load_bundle_policy(args.policy)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--policy {args.policy}: {err}") from None
    cfg = DeployConfig(episodes=args.episodes, level=args.level, seed=args.seed,
                       episode_length_steps=args.episode_length)
    log_dir = Path(args.log_dir) if args.log_dir else None
    video = Path(args.video) if args.video else None
    summary = run_deployment(policy, policy.metadata, robot, cfg, log_dir, args.policy, video_path=video)
    _print_result(summary, args.json)


def _deploy_excitation(args: argparse.Namespace, robot) -> None:
    """`deploy --excitation`: the scripted excitation instead of a policy, logged for `calibrate`."""
    from pathlib import Path

    from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation

    if not args.log_dir:
        raise SystemExit("trifinger-s2r deploy --excitation: --log-dir is needed (the logs are what it makes)")
    try:
        cfg = ExcitationConfig(seed=args.seed, lifts=args.excitation_lifts)
        report = run_excitation(robot, cfg, args.episodes, Path(args.log_dir))
    except (FileExistsError, ValueError) as err:
        raise SystemExit(f"trifinger-s2r deploy --excitation: {err}") from None
    _print_result(report, args.json)


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
    train.add_argument("--calibration", metavar="FILE",
                       help="centre the randomisation ranges on a `calibrate` file's values (recorded in the config)")
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
    what = deploy.add_mutually_exclusive_group(required=True)
    what.add_argument("--policy", help="an exported policy directory or pretrained:NAME")
    what.add_argument("--excitation", action="store_true",
                      help="run the scripted excitation (joint sweeps, cube pushes) instead of a policy; needs "
                           "--log-dir (the logs are for `calibrate`)")
    deploy.add_argument("--excitation-lifts", type=int, default=0, metavar="N",
                        help="with --excitation: N grasp-lift-hold-lower cycles after the sweeps (default 0)")
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
    from trifinger_s2r.study.cli import add_study_parser

    add_study_parser(sub)
    from trifinger_s2r.train.imitation_cli import add_imitate_parser

    add_imitate_parser(sub)
    from trifinger_s2r.calibration.cli import add_parser as add_calibrate_parser

    add_calibrate_parser(sub)

    bench = sub.add_parser("bench", help="throughput benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    env = bench_sub.add_parser("env", help="full env vs bare MuJoCo, policy steps per second")
    env.add_argument("--backend", choices=BACKENDS, default="mujoco")
    env.add_argument("--num-envs", type=_positive_int, default=1024)
    env.add_argument("--steps", type=_positive_int, default=200, help="timed policy steps")
    env.add_argument("--collision", choices=COLLISION_VARIANTS, default="primitive")
    env.add_argument("--physics-mode", choices=sorted(PHYSICS_MODES), default="5ms")
    env.add_argument("--friction-cone", choices=FRICTION_CONES, default="pyramidal",
                     help="MuJoCo's friction cone (elliptic with --impratio 10: friction that sticks)")
    env.add_argument("--impratio", type=float, default=1.0, help="frictional to normal impedance ratio (>= 1)")
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
    from trifinger_s2r.bench.farm_soak_cli import add_soak_parser
    from trifinger_s2r.bench.friction_breakaway import add_friction_parser
    from trifinger_s2r.bench.grasp_drift import add_drift_parser
    from trifinger_s2r.bench.teacher_bench import add_teacher_parser
    from trifinger_s2r.bench.turn_bench import add_turn_parser

    add_soak_parser(bench_sub)
    add_teacher_parser(bench_sub)
    add_turn_parser(bench_sub)
    add_drift_parser(bench_sub)
    add_friction_parser(bench_sub)
    return parser


FARM_HTTP_COMMANDS = ("submit", "excite", "status", "robots", "results", "user")
"""farm commands that only talk HTTP (or SQL): they never load torch, MuJoCo or the training stack."""


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not (args.command == "farm" and args.farm_command in FARM_HTTP_COMMANDS):
        import torch

        torch.set_num_threads(args.torch_threads or 1)
    args.func(args)


if __name__ == "__main__":
    main()
