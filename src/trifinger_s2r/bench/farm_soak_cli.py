"""`trifinger-s2r bench farm-soak`: the command line of the farm's soak test (bench.farm_soak)."""

from __future__ import annotations

import json
from pathlib import Path

from trifinger_s2r.bench.farm_soak import SoakConfig, run


def add_soak_parser(bench_sub) -> None:
    """`trifinger-s2r bench farm-soak ...` (hooked into the bench subcommand of the CLI)."""
    soak = bench_sub.add_parser("farm-soak", help="the robot farm under a sustained load with worker kills and a "
                                                  "server restart: throughput, queue wait, lost/doubled jobs")
    d = SoakConfig()
    soak.add_argument("--jobs", type=int, default=d.jobs)
    soak.add_argument("--robots", type=int, default=d.robots)
    soak.add_argument("--users", type=int, default=d.users, help="users, each submitting jobs one after another")
    soak.add_argument("--kill-worker-every", type=int, default=d.kill_worker_every,
                      help="SIGKILL a busy robot's worker each time this many more jobs finished (0: never)")
    soak.add_argument("--max-worker-kills", type=int)
    soak.add_argument("--server-restarts", type=int, default=d.server_restarts,
                      help="SIGKILL the server this many times, spread over the run (farm up restarts it)")
    soak.add_argument("--db", default=d.db, help="'sqlite' (a new file) or the URL of an empty farm database")
    soak.add_argument("--drop-existing", action="store_true",
                      help="drop the farm tables of a --db URL that holds jobs (otherwise refused)")
    soak.add_argument("--policy", default=d.policy, help="exported policy directory or pretrained:NAME")
    soak.add_argument("--episodes", type=int, default=d.episodes, help="episodes per job")
    soak.add_argument("--episode-length", type=int, default=d.episode_length,
                      help="policy steps per episode of each job (0: the policy's own)")
    soak.add_argument("--video", action="store_true", help="workers record a video of each job")
    soak.add_argument("--no-precheck", action="store_true", help="the server skips the simulation pre-check")
    soak.add_argument("--lease-s", type=float, default=d.lease_s)
    soak.add_argument("--timeout-s", type=float, default=d.timeout_s, help="the whole run")
    soak.add_argument("--work-dir", help="keep the database, data and farm up's log here")
    soak.add_argument("--nice", type=int, default=0, help="niceness of farm up and its processes")
    soak.add_argument("--json", action="store_true", help="print one JSON object")
    soak.set_defaults(func=_cmd_soak)


def _cmd_soak(args) -> None:
    try:
        cfg = SoakConfig(jobs=args.jobs, robots=args.robots, users=args.users, kill_worker_every=args.kill_worker_every,
                         max_worker_kills=args.max_worker_kills, server_restarts=args.server_restarts, db=args.db,
                         drop_existing=args.drop_existing, policy=args.policy, episodes=args.episodes,
                         episode_length=args.episode_length or None, video=args.video, precheck=not args.no_precheck,
                         lease_s=args.lease_s, timeout_s=args.timeout_s,
                         work_dir=Path(args.work_dir) if args.work_dir else None, keep=bool(args.work_dir),
                         nice=args.nice)
    except ValueError as err:
        raise SystemExit(f"bench farm-soak: {err}") from None
    result = run(cfg)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key}: {value}", flush=True)
    if not result["ok"]:
        raise SystemExit(1)
