"""`trifinger-s2r farm ...`: run the robot farm (server, workers) and use it (submit, status, results, robots,
users).

Every command takes --server URL and --token T (or S2R_FARM_URL / S2R_FARM_TOKEN) and --json for one
machine-readable JSON object on stdout. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"
TOKEN_ENV = "S2R_FARM_TOKEN"
STATE_FILE = "farm-up.json"
"""`farm up` keeps the pids of its server and workers in DATA_DIR/farm-up.json (rewritten on every restart)."""


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key}: {value}", flush=True)


def _client(args: argparse.Namespace):
    import httpx

    if not args.token:
        raise SystemExit("farm: no API token; pass --token or set S2R_FARM_TOKEN")
    return httpx.Client(base_url=args.server, headers={"Authorization": f"Bearer {args.token}"}, timeout=120.0)


def _call(args: argparse.Namespace, method: str, path: str, **kwargs):
    """One request; an unreachable server or a malformed URL is a one-line error."""
    import httpx

    try:
        with _client(args) as client:
            return client.request(method, path, **kwargs)
    except (httpx.TransportError, httpx.InvalidURL) as err:
        raise SystemExit(f"farm {args.farm_command}: cannot reach the farm server at {args.server}: "
                         f"{err or type(err).__name__}") from None


def _checked(response) -> dict:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SystemExit(f"farm: server answered {response.status_code}: {detail}")
    return response.json()


def _settings(args: argparse.Namespace):
    from trifinger_s2r.farm.api import FarmSettings
    from trifinger_s2r.farm.store import QueuePolicy

    return FarmSettings(db_url=args.db, data_dir=Path(args.data_dir), precheck=not args.no_precheck,
                        queue=QueuePolicy(lease_s=args.lease_s, robot_timeout_s=args.robot_timeout_s))


def cmd_user_add(args: argparse.Namespace) -> None:
    from trifinger_s2r.farm.store import JobStore

    try:
        token = JobStore(args.db).add_user(args.name, admin=args.admin)
    except ValueError as err:
        raise SystemExit(f"farm user add: {err}") from None
    _emit({"name": args.name, "token": token, "admin": args.admin}, args.json)


def _server(args: argparse.Namespace):
    import uvicorn

    from trifinger_s2r.farm.api import create_app

    config = uvicorn.Config(create_app(_settings(args)), host=args.host, port=args.port, log_level="warning",
                            access_log=False)  # no line per request: workers poll every second
    return uvicorn.Server(config)


def cmd_serve(args: argparse.Namespace) -> None:
    server = _server(args)
    _emit({"server": f"http://{args.host}:{args.port}", "db": args.db}, args.json)
    server.run()


def _die_with_parent() -> None:
    """In a child of `farm up`: get SIGTERM when farm up dies, even by SIGKILL (Linux), so no orphan robot or
    server outlives it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class _Child:
    """A supervised process of `farm up`: restarted when it exits, with a growing pause if it keeps dying fast."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """env: added to this process's environment (secrets go here, not into the command line `ps` shows)."""
        self.name, self.command, self.starts, self.quick_exits = name, command, 0, 0
        self.env = {**os.environ, **env} if env else None
        self.proc: subprocess.Popen | None = None
        self.started_at = self.next_start = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, env=self.env,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509 (farm up runs no thread)
        self.starts += 1
        self.started_at = time.monotonic()

    def check(self) -> bool:
        """Restart it if it exited (when its pause is over); True when it was restarted."""
        if self.proc is None or self.proc.poll() is None:
            return False
        now = time.monotonic()
        if self.next_start == 0.0:
            self.quick_exits = self.quick_exits + 1 if now - self.started_at < 10 else 0
            self.next_start = now + min(30.0, 0.5 * 2 ** max(self.quick_exits - 1, 0)) if self.quick_exits else now
            print(f"farm up: {self.name} (pid {self.proc.pid}) exited with code {self.proc.returncode}; restarting",
                  file=sys.stderr, flush=True)
        if now < self.next_start:
            return False
        self.next_start = 0.0
        self.start()
        return True

    def stop(self, timeout_s: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"farm up: {self.name} did not stop in {timeout_s:.0f} s; killed", file=sys.stderr, flush=True)
            self.proc.kill()
            self.proc.wait()


def _write_state(path: Path, url: str, server: _Child, workers: dict[str, _Child]) -> None:
    def entry(child: _Child) -> dict:
        return {"pid": child.proc.pid if child.proc else None, "starts": child.starts}

    state = {"pid": os.getpid(), "server": {"url": url, **entry(server)},
             "robots": {name: entry(child) for name, child in workers.items()}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def _wait_until_serving(url: str, server: _Child, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"farm up: the server did not start on {url} (exit code {server.proc.returncode}; is "
                             "the port in use?)")
        try:
            if httpx.get(f"{url}/api/jobs", timeout=5).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop(10)
    raise SystemExit(f"farm up: the server did not answer on {url} within {timeout_s:.0f} s")


def cmd_up(args: argparse.Namespace) -> None:
    """Server plus N simulated robot workers on this machine, each a supervised process (one that dies is
    restarted), in the foreground until SIGINT/SIGTERM."""
    from trifinger_s2r.farm.store import JobStore

    if args.robots < 0:
        raise SystemExit(f"farm up: --robots must be >= 0, got {args.robots}")
    try:
        store = JobStore(args.db)
        robot_token = store.add_user(f"robots-{secrets.token_hex(4)}", admin=True)
        store.engine.dispose()
    except Exception as err:  # a bad URL or an unreachable database: one line
        raise SystemExit(f"farm up: cannot use the database {args.db}: {str(err).splitlines()[0]}") from None
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{args.host}:{args.port}"
    cli = [sys.executable, "-m", "trifinger_s2r.cli", "farm"]
    server = _Child("the server", [*cli, "serve", "--db", args.db, "--port", str(args.port), "--host", args.host,
                                   "--data-dir", str(data_dir), "--lease-s", str(args.lease_s),
                                   "--robot-timeout-s", str(args.robot_timeout_s),
                                   *(["--no-precheck"] if args.no_precheck else [])])
    names = [f"sim-robot-{i}" for i in range(args.robots)]
    workers = {name: _Child(f"{name}'s worker", [
        *cli, "worker", "--server", url, "--robot", name, "--calibration-index", str(index),
        "--work-dir", str(data_dir / "workers" / name), "--poll-interval-s", str(args.poll_interval_s),
        "--heartbeat-interval-s", str(args.heartbeat_interval_s), *(["--no-video"] if args.no_video else [])],
        env={TOKEN_ENV: robot_token})  # by environment: a command line is visible to every user in `ps`
        for index, name in enumerate(names)}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    state_path = data_dir / STATE_FILE
    server.start()
    try:
        _wait_until_serving(url, server)
        for child in workers.values():
            child.start()
        _write_state(state_path, url, server, workers)
        _emit({"server": url, "robots": names, "db": args.db, "state_file": str(state_path)}, args.json)
        while not stop.wait(0.5):
            if sum(child.check() for child in [server, *workers.values()]):
                _write_state(state_path, url, server, workers)
    finally:
        for child in workers.values():  # a stopped worker hands its job back after the current episode
            if child.proc is not None and child.proc.poll() is None:
                child.proc.terminate()
        for child in workers.values():
            child.stop(args.stop_timeout_s)
        server.stop(30)


def cmd_worker(args: argparse.Namespace) -> None:
    import logging

    from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig, calibration_for, load_calibration

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll and heartbeat
    if not args.token:
        raise SystemExit(f"farm worker: no robot token; set {TOKEN_ENV} (or pass --token)")
    calibration = calibration_for(args.calibration_index) if args.calibration_index is not None \
        else load_calibration(args.calibration)
    cfg = WorkerConfig(server_url=args.server, token=args.token, robot_name=args.robot, calibration=calibration,
                       work_dir=Path(args.work_dir), poll_interval_s=args.poll_interval_s,
                       heartbeat_interval_s=args.heartbeat_interval_s, video=not args.no_video and args.platform != "real",
                       platform=args.platform)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # hand the job back after the current episode, then exit
        signal.signal(sig, lambda *_: stop.set())
    FarmWorker(cfg).run_forever(stop)


def cmd_submit(args: argparse.Namespace) -> None:
    from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE, bundle_dir

    try:
        folder = bundle_dir(args.policy)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"farm submit: {err}") from None
    data = {"episodes": str(args.episodes), "seed": str(args.seed)}
    if args.level is not None:
        data["level"] = str(args.level)
    if args.episode_length is not None:
        data["episode_length"] = str(args.episode_length)
    files = {"policy": (ONNX_FILE, (folder / ONNX_FILE).read_bytes(), "application/octet-stream"),
             "metadata": (METADATA_FILE, (folder / METADATA_FILE).read_bytes(), "application/json")}
    result = _checked(_call(args, "POST", "/api/jobs", data=data, files=files))
    _emit({"job_id": result["job_id"], "status": result["status"]}, args.json)


def cmd_excite(args: argparse.Namespace) -> None:
    data = {"episodes": str(args.episodes), "seed": str(args.seed), "lifts": str(args.lifts)}
    result = _checked(_call(args, "POST", "/api/jobs/excitation", data=data))
    _emit({"job_id": result["job_id"], "status": result["status"]}, args.json)


def cmd_status(args: argparse.Namespace) -> None:
    job = _checked(_call(args, "GET", f"/api/jobs/{args.job}"))
    if args.json:
        _emit(job, True)
        return
    events = job.pop("events", [])
    _emit({k: v for k, v in job.items() if v is not None or k == "status"}, False)
    for e in events:
        print(f"  {e['at']}  {e['event']:<17} {e['robot'] or '-':<14} {e['detail']}", flush=True)


def cmd_robots(args: argparse.Namespace) -> None:
    robots = _checked(_call(args, "GET", "/api/robots"))["robots"]
    if args.json:
        _emit({"robots": robots}, True)
        return
    if not robots:
        print("no robot has connected to the farm yet", flush=True)
    for r in robots:
        job = f" job {r['job_id'][:12]}" if r["job_id"] else ""
        health = "" if r["health_message"] in ("", "ok") else f"  ({r['health_message']})"
        print(f"{r['name']}: {r['status']}{job}, {r['jobs_run']} jobs run, last heard from {r['seen_s_ago']:.0f} s "
              f"ago{health}", flush=True)


def cmd_results(args: argparse.Namespace) -> None:
    import io

    response = _call(args, "GET", f"/api/jobs/{args.job}/results")
    if response.status_code >= 400:
        _checked(response)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(out)
        names = archive.namelist()
    _emit({"job_id": args.job, "out": str(out), "files": sorted(names)}, args.json)


def add_farm_parser(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=os.environ.get("S2R_FARM_URL", DEFAULT_SERVER),
                        help="farm server URL (env S2R_FARM_URL)")
    common.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                        help=f"API token (better: env {TOKEN_ENV}; a command line shows in `ps`)")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    serving = argparse.ArgumentParser(add_help=False)
    serving.add_argument("--db", default="sqlite:///farm.db", help="SQLAlchemy URL: sqlite:///FILE or postgresql://")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--data-dir", default="farm-data", help="uploaded policies and results")
    serving.add_argument("--lease-s", type=float, default=30.0, help="a worker silent this long loses its job")
    serving.add_argument("--robot-timeout-s", type=float, default=15.0,
                         help="a robot not heard from this long is not offered jobs")
    serving.add_argument("--no-precheck", action="store_true", help="skip the simulation pre-check of uploads")

    farm = sub.add_parser("farm", help="the robot farm: server, workers, submit, status, results, users")
    fsub = farm.add_subparsers(dest="farm_command", required=True)
    up = fsub.add_parser("up", parents=[common, serving], help="server + N simulated robots, in the foreground")
    up.add_argument("--robots", type=int, default=2)
    up.add_argument("--no-video", action="store_true", help="the workers record no video")
    up.add_argument("--poll-interval-s", type=float, default=1.0, help="workers' poll interval")
    up.add_argument("--heartbeat-interval-s", type=float, default=2.0, help="workers' heartbeat interval")
    up.add_argument("--stop-timeout-s", type=float, default=90.0,
                    help="on SIGTERM, how long a worker may take to hand its job back before it is killed")
    up.set_defaults(func=cmd_up)
    fsub.add_parser("serve", parents=[common, serving], help="the farm server alone").set_defaults(func=cmd_serve)
    worker = fsub.add_parser("worker", parents=[common], help="one robot's worker (HTTP only)")
    worker.add_argument("--robot", required=True, help="this robot's name")
    worker.add_argument("--platform", choices=["pybullet", "real"], default="pybullet",
                        help="a simulated robot (default) or the real robot_fingers front end on this computer")
    worker.add_argument("--calibration", help="JSON of RobotCalibration fields (default nominal)")
    worker.add_argument("--calibration-index", type=int, help="use simulated robot number I's calibration")
    worker.add_argument("--work-dir", default="farm-worker")
    worker.add_argument("--poll-interval-s", type=float, default=1.0)
    worker.add_argument("--heartbeat-interval-s", type=float, default=2.0)
    worker.add_argument("--no-video", action="store_true")
    worker.set_defaults(func=cmd_worker)
    submit = fsub.add_parser("submit", parents=[common], help="upload a policy; prints the job id")
    submit.add_argument("policy", help="an exported policy directory or pretrained:NAME")
    submit.add_argument("--episodes", type=int, default=10)
    submit.add_argument("--level", type=int, choices=[-1, 1, 2, 3, 4])
    submit.add_argument("--seed", type=int, default=0)
    submit.add_argument("--episode-length", type=int, help="policy steps per episode (default: the policy's)")
    submit.set_defaults(func=cmd_submit)
    excite = fsub.add_parser("excite", parents=[common],
                             help="queue a scripted excitation (no policy): logs for `trifinger-s2r calibrate`")
    excite.add_argument("--episodes", type=int, default=1, help="excitation runs (about 18 s each)")
    excite.add_argument("--seed", type=int, default=0)
    excite.add_argument("--lifts", type=int, default=0,
                        help="grasp-lift-hold-lower cycles after the sweeps (0-10; for calibrate --held-windows)")
    excite.set_defaults(func=cmd_excite)
    status = fsub.add_parser("status", parents=[common], help="a job's status (and results when finished)")
    status.add_argument("job")
    status.set_defaults(func=cmd_status)
    robots = fsub.add_parser("robots", parents=[common], help="the robots: status, health and why, jobs run")
    robots.set_defaults(func=cmd_robots)
    results = fsub.add_parser("results", parents=[common], help="download a finished job's results")
    results.add_argument("job")
    results.add_argument("--out", required=True)
    results.set_defaults(func=cmd_results)
    user = fsub.add_parser("user", help="user administration (on the database directly)")
    usub = user.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", parents=[common], help="create a user; prints its token")
    add.add_argument("name")
    add.add_argument("--db", default="sqlite:///farm.db")
    add.add_argument("--admin", action="store_true", help="an admin (robot worker) account")
    add.set_defaults(func=cmd_user_add)
