"""A robot's worker: talks to the farm server over HTTP only, runs the deployment runner on its robot.

Loop: health check (between jobs) -> poll (the server may assign a job to this robot) -> download the policy ->
start -> run the episodes while a thread heartbeats (a refused heartbeat means the job was taken away: stop) ->
plots, video, report -> upload the results as one zip. A failure inside the job is reported with its reason; a
worker that dies simply stops heartbeating and the server re-queues the job.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from trifinger_s2r.deploy.platform import PyBulletRobot, RealRobot, RobotCalibration
from trifinger_s2r.deploy.plots import plot_errors
from trifinger_s2r.deploy.session import DeployConfig, DeploymentStopped, run_deployment
from trifinger_s2r.deploy.tracker import CONFIDENCE_THRESHOLD, TrackerConfig
from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE, OnnxPolicy
from trifinger_s2r.farm.archive import zip_folder
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp

log = logging.getLogger("trifinger_s2r.farm.worker")
HEALTH_STEPS = 300
"""Robot steps of the between-jobs check (0.3 s at 1 kHz)."""
HOME_TOLERANCE_RAD = 0.1


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


class JobLost(RuntimeError):
    """The server refused a heartbeat: the job is no longer this robot's."""


def health_check(robot) -> tuple[bool, str]:
    """Reset the cube to the centre (a simulated robot places it; a real one uses it where it lies), hold zero
    torque, and check the cube rests on the table at half its edge (the exact pose in simulation, the tracker's
    confident pose on a real robot) and the fingers hold the home pose under the platform's position control: the
    farm's between-jobs self test."""
    platform = robot.start_episode(np.array([0.0, 0.0, cube.HALF_EDGE_M + 0.002]), np.array([0.0, 0.0, 0.0, 1.0]))
    home = np.array(tp.per_finger(tp.HOME_POSE_RAD))
    t = 0
    for _ in range(HEALTH_STEPS):
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


class FarmWorker:
    def __init__(self, cfg: WorkerConfig, client: httpx.Client | None = None) -> None:
        self.cfg = cfg
        self.client = client or httpx.Client(base_url=cfg.server_url, timeout=60.0)
        self._auth = {"Authorization": f"Bearer {cfg.token}"}
        if cfg.platform == "real":
            self.robot = RealRobot(name=cfg.robot_name)
        elif cfg.platform == "pybullet":
            self.robot = PyBulletRobot(name=cfg.robot_name, calibration=cfg.calibration, tracker=TrackerConfig(),
                                       seed=cfg.seed)
        else:
            raise ValueError(f"unknown platform {cfg.platform!r}; valid: ['pybullet', 'real']")
        self.health: tuple[bool, str] = (True, "")
        """The last health check's verdict and message, reported with every poll."""
        self.jobs_done = 0

    def _url(self, path: str) -> str:
        return f"/api/robots/{self.cfg.robot_name}{path}"

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(self.cfg.poll_interval_s)
            except httpx.HTTPError as err:
                log.warning("server unreachable (%s); retrying", err)
                stop.wait(self.cfg.poll_interval_s)

    def run_once(self) -> bool:
        """One poll; runs the job if one was assigned. True when a job ran."""
        response = self.client.post(self._url("/poll"), headers=self._auth, json={
            "healthy": self.health[0], "message": self.health[1],
            "info": {"platform": self.robot.kind, "calibration": asdict(self.cfg.calibration)}})
        response.raise_for_status()
        job = response.json()["job"]
        if job is None:
            return False
        self._run_job(job)
        self.health = health_check(self.robot)
        return True

    def _run_job(self, job: dict) -> None:
        job_id = job["job_id"]
        work = Path(self.cfg.work_dir) / job_id
        shutil.rmtree(work, ignore_errors=True)
        if job["status"] == "assigned":
            self.client.post(self._url(f"/jobs/{job_id}/start"), headers=self._auth).raise_for_status()
        lost = threading.Event()
        beating = threading.Event()
        beater = threading.Thread(target=self._heartbeat, args=(job_id, beating, lost), daemon=True)
        beater.start()
        try:
            archive = self._execute(job, work, lost)
            self.client.post(self._url(f"/jobs/{job_id}/complete"), headers=self._auth,
                             files={"results": ("results.zip", archive, "application/zip")}).raise_for_status()
            self.jobs_done += 1
        except JobLost:
            log.warning("job %s was taken away from %s; dropped", job_id, self.cfg.robot_name)
        except Exception as err:  # report any failure of the job itself with its reason
            reason = f"{type(err).__name__}: {err}"
            log.error("job %s failed: %s\n%s", job_id, reason, traceback.format_exc())
            self.client.post(self._url(f"/jobs/{job_id}/fail"), headers=self._auth, json={"reason": reason})
        finally:
            beating.set()
            beater.join()
            shutil.rmtree(work, ignore_errors=True)

    def _heartbeat(self, job_id: str, done: threading.Event, lost: threading.Event) -> None:
        while not done.wait(self.cfg.heartbeat_interval_s):
            try:
                if self.client.post(self._url(f"/jobs/{job_id}/heartbeat"), headers=self._auth).status_code == 409:
                    lost.set()
                    return
            except httpx.HTTPError as err:
                log.warning("heartbeat failed (%s)", err)

    def _execute(self, job: dict, work: Path, lost: threading.Event) -> bytes:
        policy_dir = work / "policy"
        policy_dir.mkdir(parents=True)
        for name in (ONNX_FILE, METADATA_FILE):
            response = self.client.get(self._url(f"/jobs/{job['job_id']}/policy/{name}"), headers=self._auth)
            response.raise_for_status()
            (policy_dir / name).write_bytes(response.content)
        policy = OnnxPolicy(policy_dir)
        settings = job["settings"]
        cfg = DeployConfig(episodes=settings["episodes"], level=settings["level"], seed=settings["seed"])
        results = work / "results"
        try:
            run_deployment(policy, policy.metadata, self.robot, cfg, results, policy_name=f"job {job['job_id']}",
                           video_path=results / "video.mp4" if self.cfg.video else None,
                           should_stop=lost.is_set)
        except DeploymentStopped:
            raise JobLost(job["job_id"]) from None
        plot_errors(results)
        return zip_folder(results)


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
