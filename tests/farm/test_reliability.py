"""The farm as separate processes talking HTTP: a worker killed mid-job, a server restart, 50 concurrent uploads."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.farm.conftest import auth, upload_files
from trifinger_s2r.farm.store import JobStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Farm:
    """A farm server and its workers as subprocesses (the CLI), on SQLite in a temporary folder."""

    def __init__(self, tmp_path, extra_args=()):
        self.tmp, self.port = tmp_path, _free_port()
        self.db = f"sqlite:///{tmp_path / 'farm.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args, self.server, self.workers = list(extra_args), None, {}
        self.robot_token = JobStore(self.db).add_user("robots", admin=True)

    def _cli(self, *args):
        return [sys.executable, "-m", "trifinger_s2r.cli", "farm", *args]

    def start_server(self):
        self.server = subprocess.Popen(self._cli(
            "serve", "--db", self.db, "--port", str(self.port), "--data-dir", str(self.tmp / "data"),
            "--lease-s", "3", "--robot-timeout-s", "2", *self.extra_args), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/jobs").status_code == 401:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("farm server did not start")

    def stop_server(self):
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)

    def start_worker(self, name: str):
        self.workers[name] = subprocess.Popen(self._cli(
            "worker", "--server", self.url, "--robot", name, "--work-dir", str(self.tmp / name),
            "--poll-interval-s", "0.3", "--heartbeat-interval-s", "0.5", "--no-video"),
            env={**os.environ, "S2R_FARM_TOKEN": self.robot_token}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def close(self):
        for proc in [*self.workers.values(), self.server]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def make_farm(tmp_path):
    farms = []

    def make(*extra_args):
        farms.append(Farm(tmp_path, extra_args))
        return farms[-1]

    yield make
    for farm in farms:
        farm.close()


def _wait_for(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _submit(url, token, bundle, episodes=1):
    response = httpx.post(f"{url}/api/jobs", headers=auth(token), files=upload_files(bundle),
                          data={"episodes": str(episodes)}, timeout=120)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def _job(url, token, job_id):
    return httpx.get(f"{url}/api/jobs/{job_id}", headers=auth(token)).json()


def test_a_worker_killed_mid_job_loses_nothing(make_farm, tiny_bundle):
    """kill -9 the robot running a job: its lease lapses, the job is re-queued and finishes on the other robot."""
    farm = make_farm()
    farm.start_server()
    token = JobStore(farm.db).add_user("ada")
    farm.start_worker("robot-a")
    farm.start_worker("robot-b")
    job_id = _submit(farm.url, token, tiny_bundle, episodes=2)
    running = _wait_for(lambda: (j := _job(farm.url, token, job_id))["status"] == "running" and j, 90, "a start")
    first_robot = running["robot"]
    os.kill(farm.workers[first_robot].pid, signal.SIGKILL)
    done = _wait_for(lambda: (j := _job(farm.url, token, job_id))["status"] in ("succeeded", "failed") and j,
                     240, "the job to finish")
    assert done["status"] == "succeeded", done
    assert done["robot"] != first_robot and done["attempts"] == 2
    assert done["success_rate"] is not None and done["episodes"] == 2


def test_a_restarted_server_finds_its_queue_intact(make_farm, tiny_bundle):
    farm = make_farm()
    farm.start_server()
    token = JobStore(farm.db).add_user("ada")
    ids = [_submit(farm.url, token, tiny_bundle) for _ in range(3)]
    farm.stop_server()
    farm.start_server()
    jobs = httpx.get(f"{farm.url}/api/jobs", headers=auth(token)).json()["jobs"]
    assert sorted(j["job_id"] for j in jobs) == sorted(ids) and {j["status"] for j in jobs} == {"queued"}


def test_fifty_concurrent_submissions_none_lost_or_duplicated(make_farm, tiny_bundle):
    farm = make_farm("--no-precheck")
    farm.start_server()
    token = JobStore(farm.db).add_user("ada")
    ids, errors = [], []

    def submit():
        try:
            ids.append(_submit(farm.url, token, tiny_bundle))
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    jobs = httpx.get(f"{farm.url}/api/jobs", headers=auth(token)).json()["jobs"]
    assert len(ids) == len(set(ids)) == 50 and sorted(j["job_id"] for j in jobs) == sorted(ids)


def test_the_cli_contract(make_farm, tmp_path):
    """`farm user add`, `submit` (pretrained:NAME), `status` and `results` with --json and S2R_FARM_* variables."""
    farm = make_farm()
    farm.start_server()
    cli = [sys.executable, "-m", "trifinger_s2r.cli", "farm"]

    def run(*args, env=None):
        proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, **(env or {})})
        return proc.returncode, proc.stdout, proc.stderr

    code, out, _ = run("user", "add", "ada", "--db", farm.db, "--json")
    token = json.loads(out)["token"]
    assert code == 0 and token
    env = {"S2R_FARM_URL": farm.url, "S2R_FARM_TOKEN": token}
    code, out, err = run("submit", "pretrained:push", "--episodes", "1", "--json", env=env)
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    code, out, _ = run("status", job_id, "--json", env=env)
    status = json.loads(out)
    assert code == 0 and status["status"] == "queued"
    assert status["waiting_reason"] == "no healthy robot: no robot has connected to the farm yet"
    code, out, _ = run("status", job_id, env=env)
    assert code == 0 and "waiting_reason: no healthy robot: no robot has connected to the farm yet" in out
    code, out, _ = run("robots", "--json", env=env)
    assert code == 0 and json.loads(out) == {"robots": []}
    code, out, _ = run("robots", env=env)
    assert code == 0 and out.strip() == "no robot has connected to the farm yet"
    code, out, err = run("robots", "--server", f"http://127.0.0.1:{_free_port()}", "--token", token)
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("farm robots: cannot reach the farm server at http://127.0.0.1:")
    code, _, err = run("robots", "--server", "not a url", "--token", token)
    assert code != 0 and len(err.strip().splitlines()) == 1 and err.startswith("farm robots: cannot reach")
    code, _, err = run("results", job_id, "--out", str(tmp_path / "r"), "--json", env=env)
    assert code != 0 and "no results yet" in err
    code, _, err = run("status", job_id, "--json", "--server", farm.url, "--token", "wrong")
    assert code != 0 and "401" in err


def test_farm_up_runs_a_job_end_to_end_and_stops_on_sigterm(tmp_path):
    """`farm up` (server + 2 simulated robots) runs a submitted pretrained policy; results come back; SIGTERM ends
    it and its workers. Its workers get their token by environment, not on the command line (`ps` shows that);
    its terminal has the job's lines, not a line per poll or request."""
    port, db = _free_port(), f"sqlite:///{tmp_path / 'farm.db'}"
    token = JobStore(db).add_user("ada")
    log_path = tmp_path / "farm-up.log"
    with open(log_path, "w") as log:
        up = subprocess.Popen([sys.executable, "-m", "trifinger_s2r.cli", "farm", "up", "--db", db, "--port",
                               str(port), "--robots", "2", "--data-dir", str(tmp_path / "data"), "--json"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        started = json.loads(up.stdout.readline())
        assert started["robots"] == ["sim-robot-0", "sim-robot-1"]
        url = started["server"]
        response = httpx.post(f"{url}/api/jobs", headers=auth(token), timeout=120, data={"episodes": "1"},
                              files=upload_files(tmp_path, *_pretrained_push_files()))
        job_id = response.json()["job_id"]
        done = _wait_for(lambda: (j := _job(url, token, job_id))["status"] in ("succeeded", "failed") and j, 240,
                         "the job")
        assert done["status"] == "succeeded" and done["robot"] in started["robots"]
        robots = _wait_for(lambda: (r := httpx.get(f"{url}/api/robots", headers=auth(token)).json()["robots"])
                           and len(r) == 2 and r, 120, "both robots")
        assert all(r["healthy"] and r["health_message"] == "ok" for r in robots), robots
        state = json.loads(Path(started["state_file"]).read_text())
        pids = [state["server"]["pid"], *(r["pid"] for r in state["robots"].values())]
        store = JobStore(db)
        for pid in pids[1:]:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            environ = dict(line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_bytes().decode()
                           .split("\0") if "=" in line)
            robot_token = environ["S2R_FARM_TOKEN"]
            assert store.user_for_token(robot_token).is_admin
            assert "--token" not in command and robot_token not in command
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=150) == 0
    for pid in pids:  # the server and the workers stopped with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    lines = log_path.read_text().splitlines()
    assert any(f"job {job_id} started" in line for line in lines), lines
    assert any(f"job {job_id} finished: success" in line for line in lines), lines
    noise = [line for line in lines if "HTTP Request" in line or "HTTP/1.1" in line]
    assert not noise, noise[:5]


def _pretrained_push_files():
    from trifinger_s2r.export.policy_bundle import bundle_dir

    folder = bundle_dir("pretrained:push")
    return (folder / "policy.onnx").read_bytes(), (folder / "metadata.json").read_bytes()
