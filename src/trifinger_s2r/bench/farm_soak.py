"""The farm under a sustained load with faults: `farm up` with N simulated robots, U users each submitting short jobs
one after another, a worker SIGKILLed mid-job every K finished jobs, the server SIGKILLed (and restarted by
`farm up`) R times; then an audit of the database.

Figures: jobs per hour per robot, queue wait (submission to first assignment: median, max), job run time, jobs lost
(failed, stuck or vanished), duplicated (a second job for one submission) or doubled (a job whose runs reached
completion twice), recovery after each fault (a worker kill: until its robot is back, healthy, with a new worker,
and until the interrupted job runs again; a server restart: until the API answers and until the next job event),
each robot's jobs and any time it was seen unhealthy. `ok` is True when every job succeeded exactly once, every
robot ran at least 2 jobs and stayed healthy, and the faults asked for happened; `problems` says what went wrong
otherwise.

Every process the soak starts is in one process group (farm up's), killed at the end whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trifinger_s2r.bench.farm_soak_audit import FINISHED, audit, parse_utc


@dataclass(frozen=True)
class SoakConfig:
    jobs: int = 100
    robots: int = 3
    users: int = 5
    kill_worker_every: int = 20
    """SIGKILL the worker of a robot running a job each time this many more jobs have finished (0: never)."""
    max_worker_kills: int | None = None
    """At most this many worker kills (None: as many as kill_worker_every gives)."""
    server_restarts: int = 1
    """SIGKILL the server this many times, evenly spread over the run (farm up restarts it)."""
    db: str = "sqlite"
    """'sqlite' (a new file in the work folder) or a SQLAlchemy URL of an empty farm database."""
    drop_existing: bool = False
    """Drop the farm's tables of a database URL that holds jobs already (otherwise the soak refuses it)."""
    policy: str = "pretrained:push"
    episodes: int = 1
    episode_length: int | None = 50
    """Policy steps per episode of each job (None: the policy's own)."""
    video: bool = False
    precheck: bool = True
    lease_s: float = 15.0
    robot_timeout_s: float = 10.0
    poll_interval_s: float = 0.5
    heartbeat_interval_s: float = 1.0
    job_timeout_s: float = 900.0
    """One job, submission to its end, before the soak calls it stuck."""
    timeout_s: float = 3 * 3600.0
    """The whole run."""
    work_dir: Path | None = None
    """Database file, farm data and logs (default: a temporary folder, removed unless keep)."""
    keep: bool = False
    nice: int = 0
    """Niceness of farm up and everything it starts (their CPU share on a shared machine)."""

    def __post_init__(self) -> None:
        for name in ("jobs", "robots", "users"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kill_worker_every < 0 or self.server_restarts < 0:
            raise ValueError("kill_worker_every and server_restarts must be >= 0")
        if self.episode_length is not None and self.episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.episode_length}")


@dataclass
class _Submitted:
    user: str
    job_id: str
    submitted_at: float
    final: dict = field(default_factory=dict)
    error: str | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Soak:
    def __init__(self, cfg: SoakConfig) -> None:
        self.cfg = cfg
        self._tmp = None if cfg.work_dir else tempfile.TemporaryDirectory(prefix="farm-soak-")
        self.dir = Path(cfg.work_dir or self._tmp.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{self.dir / 'farm.db'}" if cfg.db == "sqlite" else cfg.db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.up: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.submitted: list[_Submitted] = []
        self.finished = 0
        self.stop = threading.Event()
        self.worker_kills: list[dict] = []
        self.idle_kills: list[dict] = []
        """Kills that came just after the job ended (not counted: another kill follows)."""
        self.server_kills: list[dict] = []
        self.samples: list[tuple[float, list[dict]]] = []
        self.unhealthy_seen: list[dict] = []
        self.notes: list[str] = []

    # --- setup ----------------------------------------------------------------------------------

    def _prepare_db(self):
        from trifinger_s2r.farm.store import Base, JobStore

        if self.cfg.db != "sqlite":
            from sqlalchemy import create_engine, inspect, text

            engine = create_engine(self.db)
            if inspect(engine).has_table("jobs"):
                with engine.connect() as c:
                    count = c.execute(text("SELECT COUNT(*) FROM jobs")).scalar()
                if count and not self.cfg.drop_existing:
                    raise SystemExit(f"farm soak: {self.db} holds {count} jobs; the soak needs an empty farm "
                                     "database (pass --drop-existing to drop its farm tables)")
                Base.metadata.drop_all(engine)
            engine.dispose()
        store = JobStore(self.db)
        self.admin = store.add_user(f"soak-admin-{uuid.uuid4().hex[:6]}", admin=True)
        self.tokens = {f"soak-user-{i}": store.add_user(f"soak-user-{i}-{uuid.uuid4().hex[:6]}")
                       for i in range(self.cfg.users)}
        store.engine.dispose()

    def _policy_files(self) -> dict:
        from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE, bundle_dir

        folder = bundle_dir(self.cfg.policy)
        return {"policy": (ONNX_FILE, (folder / ONNX_FILE).read_bytes()),
                "metadata": (METADATA_FILE, (folder / METADATA_FILE).read_bytes())}

    def _start_farm(self) -> None:
        cfg = self.cfg
        command = [sys.executable, "-m", "trifinger_s2r.cli", "farm", "up", "--db", self.db, "--port",
                   str(self.port), "--robots", str(cfg.robots), "--data-dir", str(self.dir / "data"), "--lease-s",
                   str(cfg.lease_s), "--robot-timeout-s", str(cfg.robot_timeout_s), "--poll-interval-s",
                   str(cfg.poll_interval_s), "--heartbeat-interval-s", str(cfg.heartbeat_interval_s),
                   "--stop-timeout-s", "30", "--json"]
        command += [] if cfg.video else ["--no-video"]
        command += [] if cfg.precheck else ["--no-precheck"]
        if cfg.nice:
            command = ["nice", "-n", str(cfg.nice), *command]
        self.log_path = self.dir / "farm-up.log"
        from trifinger_s2r.farm.cli import _die_with_parent

        # its own process group (killed whole at the end); SIGTERM to it if this process dies first
        self._log = self.log_path.open("wb")  # closed in _shutdown
        self.up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                   start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.up.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=300)
        if not line or not line[0].strip():
            raise RuntimeError(f"farm up did not start within 300 s (exit code {self.up.poll()}); its log: "
                               f"{self._log_tail()}")
        started = json.loads(line[0])
        self.robot_names, self.state_file = started["robots"], Path(started["state_file"])

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- the load -------------------------------------------------------------------------------

    def _get(self, path: str, token: str | None = None, timeout: float = 10.0) -> dict | None:
        """GET as JSON; None while the server does not answer (a restart)."""
        try:
            response = httpx.get(self.url + path, headers={"Authorization": f"Bearer {token or self.admin}"},
                                 timeout=timeout)
        except httpx.TransportError:
            return None
        if response.status_code >= 500:
            return None
        response.raise_for_status()
        return response.json()

    def _user(self, name: str, count: int, files: dict) -> None:
        token = self.tokens[name]
        data = {"episodes": str(self.cfg.episodes)}
        if self.cfg.episode_length is not None:
            data["episode_length"] = str(self.cfg.episode_length)
        for _ in range(count):
            if self.stop.is_set():
                return
            request_id = uuid.uuid4().hex
            deadline = time.monotonic() + self.cfg.job_timeout_s
            job_id = None
            while job_id is None and time.monotonic() < deadline and not self.stop.is_set():
                try:  # the same request_id when retried: one job even if an answer was lost
                    response = httpx.post(f"{self.url}/api/jobs", headers={"Authorization": f"Bearer {token}"},
                                          data={**data, "request_id": request_id}, files=files, timeout=300)
                except httpx.TransportError:
                    time.sleep(1.0)
                    continue
                if response.status_code >= 500:
                    time.sleep(1.0)
                    continue
                if response.status_code != 201:
                    with self.lock:
                        self.notes.append(f"{name}: submission refused: {response.status_code} {response.text}")
                    return
                job_id = response.json()["job_id"]
            if job_id is None:
                return
            entry = _Submitted(name, job_id, time.time())
            with self.lock:
                self.submitted.append(entry)
            while time.monotonic() < deadline and not self.stop.is_set():
                job = self._get(f"/api/jobs/{job_id}", token)
                if job is not None and job["status"] in FINISHED:
                    entry.final = job
                    break
                time.sleep(0.5)
            else:
                entry.error = f"not finished {self.cfg.job_timeout_s:.0f} s after its submission"
            with self.lock:
                self.finished += 1

    # --- faults and observation -------------------------------------------------------------------

    def _observe(self) -> None:
        """Sample the robots about once a second: health (any unhealthy sighting is a problem) and worker pids."""
        while not self.stop.wait(1.0):
            answer = self._get("/api/robots")
            if answer is None:
                continue
            now = time.time()
            with self.lock:
                self.samples.append((now, answer["robots"]))
                for r in answer["robots"]:
                    if r["online"] and not r["healthy"]:
                        self.unhealthy_seen.append({"at": now, "robot": r["name"], "message": r["health_message"]})

    def _kill_a_worker(self) -> bool:
        """SIGKILL the worker of a robot whose job is running; True when one was killed."""
        answer = self._get("/api/robots")
        for robot in (answer or {}).get("robots", []):
            pid = robot["info"].get("pid")
            if not robot["busy"] or not pid:
                continue
            job = self._get(f"/api/jobs/{robot['job_id']}")
            if job is None or job["status"] != "running" or job["robot"] != robot["name"]:
                continue
            killed_at = time.time()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kill = {"at": killed_at, "robot": robot["name"], "pid": pid, "job_id": robot["job_id"],
                    "after_jobs": self.finished}
            time.sleep(1.0)
            after = self._get(f"/api/jobs/{robot['job_id']}")
            finished = parse_utc(after.get("finished_at")) if after else None
            if finished is not None and finished < killed_at:  # it ended just before the kill: not mid-job
                with self.lock:
                    self.idle_kills.append(kill)
                return False
            with self.lock:
                self.worker_kills.append(kill)
            return True
        return False

    def _kill_the_server(self) -> None:
        state = json.loads(self.state_file.read_text())
        pid = state["server"]["pid"]
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        back = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/jobs", timeout=2).status_code == 401:
                    back = time.time()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        with self.lock:
            self.server_kills.append({"at": killed_at, "pid": pid, "after_jobs": self.finished,
                                      "api_back_s": round(back - killed_at, 2) if back else None})

    def _faults(self) -> None:
        cfg = self.cfg
        restart_points = [round(cfg.jobs * (k + 1) / (cfg.server_restarts + 1)) for k in range(cfg.server_restarts)]
        next_kill = cfg.kill_worker_every if cfg.kill_worker_every else None
        max_kills = cfg.max_worker_kills if cfg.max_worker_kills is not None else cfg.jobs
        while not self.stop.wait(0.2):
            finished = self.finished
            if restart_points and finished >= restart_points[0]:
                restart_points.pop(0)
                self._kill_the_server()
            elif (next_kill is not None and next_kill <= finished < cfg.jobs and len(self.worker_kills) < max_kills
                  and self._kill_a_worker()):
                next_kill += cfg.kill_worker_every

    # --- run and audit --------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        started = time.time()
        try:
            self._prepare_db()
            files = self._policy_files()
            self._start_farm()
            farm_ready = time.time()
            shares = [cfg.jobs // cfg.users + (1 if i < cfg.jobs % cfg.users else 0) for i in range(cfg.users)]
            users = [threading.Thread(target=self._user, args=(name, n, files), daemon=True)
                     for name, n in zip(self.tokens, shares, strict=True)]
            helpers = [threading.Thread(target=self._observe, daemon=True),
                       threading.Thread(target=self._faults, daemon=True)]
            for t in [*helpers, *users]:
                t.start()
            deadline = time.monotonic() + cfg.timeout_s
            for t in users:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            timed_out = any(t.is_alive() for t in users)
            load_s = time.time() - farm_ready
            time.sleep(2 * cfg.poll_interval_s + 1.5)  # a last robot sample after the last job
            self.stop.set()
            for t in helpers:
                t.join(timeout=30)
            robots_end = (self._get("/api/robots") or {}).get("robots", [])
            self._shutdown()
            result = audit(self, load_s, timed_out, robots_end)
            result["wall_s"] = round(time.time() - started, 1)
            return result
        finally:
            self.stop.set()
            self._shutdown(force=True)
            if self._tmp is not None and not cfg.keep:
                self._tmp.cleanup()

    def _shutdown(self, force: bool = False) -> None:
        if self.up is None:
            return
        if not force and self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.notes.append("farm up did not stop within 120 s of SIGTERM; killed")
        try:
            os.killpg(self.up.pid, signal.SIGKILL)  # farm up's group: its server and every worker it started
        except (ProcessLookupError, PermissionError):
            pass
        self.up.wait()
        self.up.stdout.close()
        self._log.close()


def run(cfg: SoakConfig) -> dict:
    return _Soak(cfg).run()
