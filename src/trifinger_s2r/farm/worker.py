"""A robot's worker: talks to the farm server over HTTP only, runs the deployment runner on its robot.

Loop: health check (at start and between jobs; a failing robot tries to recover, see FarmWorker.check_health) ->
poll (reports the health; the server may assign a job to a healthy robot) -> download the policy -> start -> run
the episodes while a thread heartbeats (a refused heartbeat means the job was taken away: stop) -> plots, video,
report -> upload the results as one zip (retried while the server is away). A failure inside the job is reported
with its reason; a worker that is stopped (SIGTERM) hands its job back after the current episode; a worker that
dies simply stops heartbeating and the server re-queues the job (or, restarted in time, it starts the job over).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from trifinger_s2r.deploy.platform import PyBulletRobot, RealRobot, RobotCalibration
from trifinger_s2r.deploy.plots import plot_errors
from trifinger_s2r.deploy.session import DeployConfig, DeploymentStopped, run_deployment
from trifinger_s2r.deploy.tracker import CONFIDENCE_THRESHOLD, TrackerConfig
from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE
from trifinger_s2r.farm.archive import zip_folder
from trifinger_s2r.policies import load_bundle_policy
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp

log = logging.getLogger("trifinger_s2r.farm.worker")
HEALTH_STEPS = 300
"""Robot steps of the between-jobs check (0.3 s at 1 kHz)."""
RECOVERY_SETTLE_STEPS = 2000
"""Robot steps of a recovery's re-homing (2 s at 1 kHz)."""
HOME_TOLERANCE_RAD = 0.1
"""A healthy robot holds home within 0.016 rad under its position controller (0.015 nominal; the weakest farm
calibration, torque_constant_scale 0.92, 0.016)."""


@dataclass(frozen=True)
class WorkerConfig:
    server_url: str
    token: str
    robot_name: str
    calibration: RobotCalibration = field(default_factory=RobotCalibration)
    work_dir: Path = Path("farm-worker")
    poll_interval_s: float = 1.0
    heartbeat_interval_s: float = 2.0
    video: bool = True
    seed: int = 0
    platform: str = "pybullet"
    """'pybullet' (a simulated robot with this calibration) or 'real' (robot_fingers' front end on this computer)."""
    upload_retry_s: float = 300.0
    """How long a finished job's upload is retried while the server does not answer (a restart)."""


class JobLost(RuntimeError):
    """The server refused a heartbeat: the job is no longer this robot's."""


def health_check(robot, settle_steps: int = HEALTH_STEPS) -> tuple[bool, str]:
    """Reset the cube to the centre (a simulated robot places it; a real one uses it where it lies), hold the home
    pose under the platform's position control for settle_steps, and check the cube rests on the table at half
    its edge (the exact pose in simulation, the tracker's confident pose on a real robot) and the fingers are home:
    the farm's between-jobs self test."""
    platform = robot.start_episode(np.array([0.0, 0.0, cube.HALF_EDGE_M + 0.002]), np.array([0.0, 0.0, 0.0, 1.0]))
    home = np.array(tp.per_finger(tp.HOME_POSE_RAD))
    t = 0
    for _ in range(settle_steps):
        t = platform.append_desired_action(platform.Action(torque=np.zeros(tp.NUM_JOINTS), position=home))
    joints = np.asarray(platform.get_robot_observation(t).position)
    true_pose = robot.true_object_pose()
    if true_pose is not None:
        position = true_pose[0]
    else:
        tracked = platform.get_camera_observation(t).filtered_object_pose
        if tracked.confidence < CONFIDENCE_THRESHOLD:
            return False, f"the tracker does not see the cube (confidence {tracked.confidence:.2f})"
        position = np.asarray(tracked.position)
    if robot.kind == "pybullet":
        robot.close()
    if abs(position[2] - cube.HALF_EDGE_M) > 0.003:
        return False, f"cube at z = {position[2]:.4f} m after reset, expected {cube.HALF_EDGE_M:.4f} m"
    if np.abs(joints - home).max() > HOME_TOLERANCE_RAD:
        return False, f"fingers not at home after reset: {joints.round(2).tolist()}"
    return True, "ok"


def make_robot(cfg: WorkerConfig):
    """The robot this worker drives: a fresh simulated platform object, or a fresh connection to the real one."""
    if cfg.platform == "real":
        return RealRobot(name=cfg.robot_name)
    if cfg.platform == "pybullet":
        return PyBulletRobot(name=cfg.robot_name, calibration=cfg.calibration, tracker=TrackerConfig(), seed=cfg.seed)
    raise ValueError(f"unknown platform {cfg.platform!r}; valid: ['pybullet', 'real']")


class FarmWorker:
    def __init__(self, cfg: WorkerConfig, client: httpx.Client | None = None,
                 robot_factory: Callable[[], object] | None = None) -> None:
        """robot_factory: makes the robot, at start and again when a recovery recreates it (default make_robot)."""
        self.cfg = cfg
        self.client = client or httpx.Client(base_url=cfg.server_url, timeout=60.0)
        self._auth = {"Authorization": f"Bearer {cfg.token}"}
        self._make_robot = robot_factory or (lambda: make_robot(cfg))
        self.robot = self._make_robot()
        self.health: tuple[bool, str] | None = None
        """The last health check's verdict and message, reported with every poll (None: not checked yet)."""
        self.jobs_done = 0
        self.recoveries = 0
        self.stop = threading.Event()
        """Set (SIGTERM): the running job is handed back after its current episode, and run_forever returns."""

    def _url(self, path: str) -> str:
        return f"/api/robots/{self.cfg.robot_name}{path}"

    def run_forever(self, stop: threading.Event | None = None) -> None:
        if stop is not None:
            self.stop = stop
        while not self.stop.is_set():
            try:
                if not self.run_once():
                    self.stop.wait(self.cfg.poll_interval_s)
            except httpx.HTTPError as err:
                log.warning("server unreachable (%s); retrying", err)
                self.stop.wait(self.cfg.poll_interval_s)

    def run_once(self) -> bool:
        """One poll (after the first health check); runs the job if one was assigned. True when a job ran."""
        if self.health is None:
            self.check_health()
        healthy, message = self.health
        response = self.client.post(self._url("/poll"), headers=self._auth, json={
            "healthy": healthy, "message": message,
            "info": {"platform": self.robot.kind, "calibration": asdict(self.cfg.calibration), "pid": os.getpid(),
                     "host": socket.gethostname(), "jobs_done": self.jobs_done, "recoveries": self.recoveries}})
        response.raise_for_status()
        job = response.json()["job"]
        if job is None or not healthy:
            return False
        self._run_job(job)
        self.check_health()
        return True

    def check_health(self) -> tuple[bool, str]:
        """The between-jobs check; a failing robot tries to recover before it gives up: (1) re-home with a longer
        settle, (2) recreate the robot (a new simulated platform; a new front-end connection on a real robot) and
        check again. The verdict's message says what failed and what was tried; a recovered robot is healthy and
        says how it recovered. Sets and returns self.health."""
        ok, message = self._checked(self.robot, HEALTH_STEPS)
        if ok:
            self.health = (True, "ok")
            return self.health
        log.warning("%s failed its health check (%s); re-homing with a longer settle", self.cfg.robot_name, message)
        settle = f"re-homing with a {RECOVERY_SETTLE_STEPS / 1000:.0f} s settle"
        ok, rehomed = self._checked(self.robot, RECOVERY_SETTLE_STEPS)
        if ok:
            self.recoveries += 1
            self.health = (True, f"recovered by {settle} after: {message}")
            return self.health
        log.warning("%s still fails (%s); recreating the robot", self.cfg.robot_name, rehomed)
        recreate = "recreating the simulated platform" if self.robot.kind == "pybullet" else "reconnecting"
        try:
            self.robot.close()
            self.robot = self._make_robot()
            ok, recreated = self._checked(self.robot, RECOVERY_SETTLE_STEPS)
        except Exception as err:  # a robot that cannot even be made is unhealthy, with the reason
            ok, recreated = False, f"{type(err).__name__}: {err}"
        if ok:
            self.recoveries += 1
            self.health = (True, f"recovered by {recreate} after: {message}; {settle} did not help: {rehomed}")
        else:
            reason = f"unhealthy: {message}; {settle} failed: {rehomed}; {recreate} failed: {recreated}"
            self.health = (False, reason)
            log.error("%s gives up: %s", self.cfg.robot_name, self.health[1])
        return self.health

    @staticmethod
    def _checked(robot, settle_steps: int) -> tuple[bool, str]:
        try:
            return health_check(robot, settle_steps)
        except Exception as err:  # a check that crashes is a failed check, with the reason
            return False, f"the check raised {type(err).__name__}: {err}"

    def _run_job(self, job: dict) -> None:
        job_id = job["job_id"]
        run_id = uuid.uuid4().hex
        work = Path(self.cfg.work_dir) / job_id
        shutil.rmtree(work, ignore_errors=True)
        response = self.client.post(self._url(f"/jobs/{job_id}/start"), headers=self._auth, json={"run_id": run_id})
        if response.status_code == 409:  # taken away between the poll and now
            log.warning("job %s is no longer %s's; not started", job_id, self.cfg.robot_name)
            return
        response.raise_for_status()
        settings = job["settings"]
        log.info("%s: job %s started (%s episodes, level %s)", self.cfg.robot_name, job_id, settings["episodes"],
                 settings["level"])
        lost = threading.Event()
        beating = threading.Event()
        beater = threading.Thread(target=self._heartbeat, args=(job_id, beating, lost), daemon=True)
        beater.start()
        try:
            archive, summary = self._execute(job, work, lost)
            self._upload(job_id, run_id, archive)
            self.jobs_done += 1
            if "success_rate" in summary:
                log.info("%s: job %s finished: success %.0f%% of %d episodes", self.cfg.robot_name, job_id,
                         100 * summary["success_rate"], summary["episodes"])
            else:
                log.info("%s: job %s finished: %d excitation runs", self.cfg.robot_name, job_id, summary["episodes"])
        except JobLost:
            if self.stop.is_set() and not lost.is_set():
                log.warning("worker stopping: job %s handed back", job_id)
                self._post_quietly(f"/jobs/{job_id}/release", {"reason": "its worker was stopped"})
            else:
                log.warning("job %s was taken away from %s; dropped", job_id, self.cfg.robot_name)
        except Exception as err:  # report any failure of the job itself with its reason
            reason = f"{type(err).__name__}: {err}"
            log.error("job %s failed: %s\n%s", job_id, reason, traceback.format_exc())
            self._post_quietly(f"/jobs/{job_id}/fail", {"reason": reason})
        finally:
            beating.set()
            beater.join()
            shutil.rmtree(work, ignore_errors=True)

    def _upload(self, job_id: str, run_id: str, archive: bytes) -> None:
        """Upload the results; while the server does not answer (a restart), retry for upload_retry_s (the
        heartbeat thread keeps trying too, so the lease is renewed as soon as it is back)."""
        deadline = time.monotonic() + self.cfg.upload_retry_s
        while True:
            try:
                response = self.client.post(self._url(f"/jobs/{job_id}/complete"), headers=self._auth,
                                            data={"run_id": run_id},
                                            files={"results": ("results.zip", archive, "application/zip")})
            except httpx.TransportError as err:
                if time.monotonic() > deadline:
                    raise
                log.warning("upload of job %s failed (%s); retrying", job_id, err)
                time.sleep(min(2.0, self.cfg.poll_interval_s * 2))
                continue
            if response.status_code == 409:
                raise JobLost(job_id)  # taken away meanwhile: its results are not wanted
            response.raise_for_status()
            return

    def _post_quietly(self, path: str, body: dict) -> None:
        try:
            self.client.post(self._url(path), headers=self._auth, json=body)
        except httpx.HTTPError as err:
            log.warning("could not tell the server (%s %s): %s", path, body, err)

    def _heartbeat(self, job_id: str, done: threading.Event, lost: threading.Event) -> None:
        while not done.wait(self.cfg.heartbeat_interval_s):
            try:
                if self.client.post(self._url(f"/jobs/{job_id}/heartbeat"), headers=self._auth).status_code == 409:
                    lost.set()
                    return
            except httpx.HTTPError as err:
                log.warning("heartbeat failed (%s)", err)

    def _execute(self, job: dict, work: Path, lost: threading.Event) -> tuple[bytes, dict]:
        """Run the job; its results as a zip archive, and the summary."""
        if job["settings"].get("kind") == "excitation":
            return self._excite(job, work)
        policy_dir = work / "policy"
        policy_dir.mkdir(parents=True)
        for name in (ONNX_FILE, METADATA_FILE):
            response = self.client.get(self._url(f"/jobs/{job['job_id']}/policy/{name}"), headers=self._auth)
            response.raise_for_status()
            (policy_dir / name).write_bytes(response.content)
        policy = load_bundle_policy(policy_dir)
        settings = job["settings"]
        cfg = DeployConfig(episodes=settings["episodes"], level=settings["level"], seed=settings["seed"],
                           episode_length_steps=settings.get("episode_length_steps"))
        results = work / "results"
        try:
            summary = run_deployment(policy, policy.metadata, self.robot, cfg, results, policy_name=f"job {job['job_id']}",
                           video_path=results / "video.mp4" if self.cfg.video else None,
                           should_stop=lambda: lost.is_set() or self.stop.is_set())
        except DeploymentStopped:
            raise JobLost(job["job_id"]) from None
        plot_errors(results)
        return zip_folder(results), summary


    def _excite(self, job: dict, work: Path) -> tuple[bytes, dict]:
        """An excitation job: the scripted excitation's logs (for `trifinger-s2r calibrate`) instead of a policy's."""
        from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation

        settings, results = job["settings"], work / "results"
        cfg = ExcitationConfig(seed=settings["seed"], lifts=settings.get("lifts", 0))  # jobs from before lifts: 0
        report = run_excitation(self.robot, cfg, settings["episodes"], results)
        return zip_folder(results), report


def calibration_for(index: int, seed: int = 0) -> RobotCalibration:
    """A simulated robot's own calibration: robots of a farm differ as real ones do (deterministic per index)."""
    rng = np.random.default_rng([seed, index])
    return RobotCalibration(
        cube_lateral_friction=float(rng.uniform(0.8, 1.2)), cube_mass_kg=float(0.094 * rng.uniform(0.9, 1.1)),
        camera_delay_s=float(rng.uniform(0.075, 0.098)), torque_constant_scale=float(rng.uniform(0.92, 1.0)),
    )


def load_calibration(text: str | None) -> RobotCalibration:
    """A calibration from JSON text (keys of RobotCalibration), or the nominal one."""
    return RobotCalibration(**json.loads(text)) if text else RobotCalibration()
