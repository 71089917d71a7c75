"""`trifinger-s2r farm ...`: run the robot farm (server, workers) and use it (submit, status, results, users).

Every command takes --server URL and --token T (or S2R_FARM_URL / S2R_FARM_TOKEN) and --json for one
machine-readable JSON object on stdout.
"""

from __future__ import annotations

import argparse
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

    config = uvicorn.Config(create_app(_settings(args)), host=args.host, port=args.port, log_level="warning")
    return uvicorn.Server(config)


def cmd_serve(args: argparse.Namespace) -> None:
    server = _server(args)
    _emit({"server": f"http://{args.host}:{args.port}", "db": args.db}, args.json)
    server.run()


def cmd_up(args: argparse.Namespace) -> None:
    """Server plus N simulated robot workers on this machine, in the foreground until SIGINT/SIGTERM."""
    from trifinger_s2r.farm.store import JobStore

    robot_token = JobStore(args.db).add_user(f"robots-{secrets.token_hex(4)}", admin=True)
    server = _server(args)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"farm up: the server did not start on port {args.port}")
        time.sleep(0.05)
    url = f"http://{args.host}:{args.port}"
    names = [f"sim-robot-{i}" for i in range(args.robots)]
    workers = [_spawn_worker(url, robot_token, name, index, args) for index, name in enumerate(names)]
    _emit({"server": url, "robots": names, "db": args.db}, args.json)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        for index, proc in enumerate(workers):  # a robot's computer that crashed is restarted
            if proc.poll() is not None:
                workers[index] = _spawn_worker(url, robot_token, names[index], index, args)
    for proc in workers:
        proc.terminate()
    for proc in workers:
        proc.wait(timeout=30)
    server.should_exit = True
    thread.join(timeout=10)


def _spawn_worker(url: str, token: str, name: str, index: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [sys.executable, "-m", "trifinger_s2r.cli", "farm", "worker", "--server", url, "--token", token,
               "--robot", name, "--calibration-index", str(index), "--work-dir", str(Path(args.data_dir) / "workers")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def cmd_worker(args: argparse.Namespace) -> None:
    import logging

    from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig, calibration_for, load_calibration

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.token:
        raise SystemExit("farm worker: no robot token; pass --token or set S2R_FARM_TOKEN")
    calibration = calibration_for(args.calibration_index) if args.calibration_index is not None \
        else load_calibration(args.calibration)
    cfg = WorkerConfig(server_url=args.server, token=args.token, robot_name=args.robot, calibration=calibration,
                       work_dir=Path(args.work_dir), poll_interval_s=args.poll_interval_s,
                       heartbeat_interval_s=args.heartbeat_interval_s, video=not args.no_video and args.platform != "real",
                       platform=args.platform)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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
    files = {"policy": (ONNX_FILE, (folder / ONNX_FILE).read_bytes(), "application/octet-stream"),
             "metadata": (METADATA_FILE, (folder / METADATA_FILE).read_bytes(), "application/json")}
    with _client(args) as client:
        result = _checked(client.post("/api/jobs", data=data, files=files))
    _emit({"job_id": result["job_id"], "status": result["status"]}, args.json)


def cmd_status(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _emit(_checked(client.get(f"/api/jobs/{args.job}")), args.json)


def cmd_results(args: argparse.Namespace) -> None:
    import io

    with _client(args) as client:
        response = client.get(f"/api/jobs/{args.job}/results")
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
    common.add_argument("--token", default=os.environ.get("S2R_FARM_TOKEN"), help="API token (env S2R_FARM_TOKEN)")
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
    submit.set_defaults(func=cmd_submit)
    status = fsub.add_parser("status", parents=[common], help="a job's status (and results when finished)")
    status.add_argument("job")
    status.set_defaults(func=cmd_status)
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
