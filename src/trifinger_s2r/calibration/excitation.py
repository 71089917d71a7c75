"""A scripted excitation in place of a policy: joint sweeps, grasp-and-lift cycles, then each finger pushes the
cube; logs for calibration.

The controller is a joint-space PD with gravity compensation (MuJoCo's model of the fingers) plus seeded random
torque pulses, evaluated at 50 Hz and held for 20 robot steps like a policy's action. Sweeps move every joint
about home with its own frequency; a push plans fingertip waypoints from the tracker's cube position (behind the
cube, low, through it, up) by inverse kinematics and interpolates between them. A lift puts the three fingertips
beside the cube (each on the horizontal ray from the cube's centre towards its finger, as `sim.grasps` does), then
a Cartesian impedance controller (J^T F plus gravity compensation) squeezes, lifts, holds, lowers and lets go.
Why the lifts: a push meets the cube's mass and its table friction mostly as their product, so pushes alone leave
the mass to the contact model (PyBullet's logs fitted it 33% heavy); carrying the cube meets its weight alone.
The logs have the deployment layout (`info.json`, `episode_NNN/log.npz`, `report.json`) plus the camera's capture
time at every robot step.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from trifinger_s2r.deploy.platform import Robot
from trifinger_s2r.deploy.runner import EpisodeRecord, record_robot_step
from trifinger_s2r.deploy.session import INFO_FILE, REPORT_FILE, _write_json, write_log
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.grasps import TIP_CLEARANCE_M, face_points
from trifinger_s2r.sim.model import SceneIndex, load_model
from trifinger_s2r.timing import POLICY_RATE_HZ, ROBOT_RATE_HZ

HOME = np.array(tp.per_finger(tp.HOME_POSE_RAD))
STEPS_PER_ACTION = ROBOT_RATE_HZ // POLICY_RATE_HZ


@dataclass(frozen=True)
class ExcitationConfig:
    """The scripted excitation."""

    sweep_s: float = 6.0
    """Joint sweeps about home."""
    sweep_amplitude_rad: tuple[float, float, float] = (0.25, 0.3, 0.35)
    lifts: int = 0
    """Grasp-lift-hold-lower-release cycles after the sweeps (0, the default: none). While the cube is held the
    fingers carry its whole weight: calibration weighs it there by the joint torques (calibration.held_weight; the
    replay of `ReplayConfig.held_windows` alone fitted PyBullet's cubes 13-36% heavy, its contacts being unlike
    MuJoCo's: docs/benchmarks.md)."""
    lift_height_m: float = 0.04
    lift_approach_s: float = 0.9
    """Each of the two joint-space moves to beside the cube (over it, then down) and back."""
    lift_stages_s: tuple[float, float, float, float, float] = (0.4, 0.8, 0.6, 0.8, 0.4)
    """One cycle's grip, lift, hold, lower and release."""
    grip_clearance_m: float = 0.012
    """How far outside the cube's face each fingertip waits before gripping and after letting go."""
    grip_depth_m: float = 0.015
    """How far inside the face the impedance target lies while gripping (the grip force: depth x stiffness)."""
    grip_stiffness_npm: float = 150.0
    grip_damping_nspm: float = 3.0
    pushes_per_finger: int = 1
    push_segment_s: float = 0.8
    """Time between two fingertip waypoints of a push."""
    push_depth_m: float = 0.02
    """How far past the cube's centre the fingertip's path ends (the cube moves about 3 cm further than this)."""
    kp_nm_per_rad: float = 2.0
    kd_nms_per_rad: float = 0.02
    pulse_nm: float = 0.04
    """Random torque added to each 20 ms command (uniform in +-pulse_nm): excitation beyond the smooth paths."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sweep_s < 0 or self.push_segment_s <= 0 or self.pushes_per_finger < 0:
            raise ValueError("sweep_s must be >= 0, push_segment_s > 0 and pushes_per_finger >= 0")
        if self.lifts < 0 or self.lift_approach_s <= 0 or min(self.lift_stages_s) <= 0:
            raise ValueError("lifts must be >= 0, lift_approach_s and every lift_stages_s entry > 0")
        if not 0 < self.lift_height_m <= 0.1:
            raise ValueError(f"lift_height_m must be in (0, 0.1], got {self.lift_height_m}")

    @property
    def lift_s(self) -> float:
        """The lift phase: over and down to the cube, the cycles, up and home (0 without lifts)."""
        return (4 * self.lift_approach_s + self.lifts * sum(self.lift_stages_s)) if self.lifts else 0.0

    @property
    def duration_s(self) -> float:
        return self.sweep_s + self.lift_s + 3 * self.pushes_per_finger * 5 * self.push_segment_s


class _Kinematics:
    """Fingertip positions, inverse kinematics and gravity torques from the MuJoCo scene."""

    def __init__(self) -> None:
        self.model = load_model()
        self.data = mujoco.MjData(self.model)
        self.index = SceneIndex(self.model)

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[: tp.NUM_JOINTS] = q
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def gravity_nm(self, q: np.ndarray) -> np.ndarray:
        self._set(q)
        return self.data.qfrc_bias[: tp.NUM_JOINTS].copy()

    def tip_m(self, q: np.ndarray, finger: int) -> np.ndarray:
        self._set(q)
        return self.data.site_xpos[self.index.fingertip_sites[finger]].copy()

    def jacobian(self, q: np.ndarray, finger: int) -> np.ndarray:
        """(3, 3) d tip / d (the finger's joints)."""
        self._set(q)
        jac = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jac, None, int(self.index.fingertip_sites[finger]))
        return jac[:, 3 * finger: 3 * finger + 3].copy()

    def solve(self, q: np.ndarray, finger: int, target_m: np.ndarray, iterations: int = 60) -> np.ndarray:
        """Joints that put the finger's tip at target_m (damped least squares from q, within the soft limits)."""
        q = q.copy()
        dofs = slice(3 * finger, 3 * finger + 3)
        low, high = np.array(tp.SOFT_LIMIT_LOWER_RAD), np.array(tp.SOFT_LIMIT_UPPER_RAD)
        jac = np.zeros((3, self.model.nv))
        for _ in range(iterations):
            error = target_m - self.tip_m(q, finger)
            mujoco.mj_jacSite(self.model, self.data, jac, None, int(self.index.fingertip_sites[finger]))
            j = jac[:, dofs]
            q[dofs] = np.clip(q[dofs] + j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(3), error), low, high)
        return q


@dataclass(frozen=True)
class _LiftPlan:
    """Joint waypoints home -> over the cube -> beside it, and the fingertips' impedance targets (3, 3) beside the
    cube and inside its faces."""

    waypoints: tuple[np.ndarray, np.ndarray, np.ndarray]
    beside_m: np.ndarray
    inside_m: np.ndarray


class ExcitationController:
    """The 50 Hz commanded torque of the excitation: `torque(step, q, qd, cube_position_m, cube_quat_xyzw)` -> (9,)
    N*m. Phases: sweeps, lifts, pushes."""

    def __init__(self, cfg: ExcitationConfig) -> None:
        self.cfg = cfg
        self.kin = _Kinematics()
        self.rng = np.random.default_rng(cfg.seed)
        self.sweep_steps = round(cfg.sweep_s * POLICY_RATE_HZ)
        self.lift_steps = round(cfg.lift_s * POLICY_RATE_HZ)
        self.approach_steps = round(cfg.lift_approach_s * POLICY_RATE_HZ)
        self.stage_steps = np.cumsum([0, *(round(t * POLICY_RATE_HZ) for t in cfg.lift_stages_s)])
        self.segment_steps = round(cfg.push_segment_s * POLICY_RATE_HZ)
        self.total_steps = self.sweep_steps + self.lift_steps + 3 * cfg.pushes_per_finger * 5 * self.segment_steps
        self.frequencies_hz = self.rng.uniform(0.3, 1.2, tp.NUM_JOINTS)
        self.phases_rad = self.rng.uniform(0, 2 * np.pi, tp.NUM_JOINTS)
        home_tips = np.stack([self.kin.tip_m(HOME, f) for f in range(3)])
        self.approach_rad = np.arctan2(home_tips[:, 1], home_tips[:, 0])
        self.waypoints: list[np.ndarray] = []
        self.lift: _LiftPlan | None = None

    def target_rad(self, step: int, cube_position_m: np.ndarray) -> np.ndarray:
        """The joint-space PD's target in the sweep and push phases."""
        if step < self.sweep_steps:
            t_s = step / POLICY_RATE_HZ
            ramp = min(1.0, t_s, (self.sweep_steps - step) / POLICY_RATE_HZ)  # start and end at home
            amplitude = np.array(tp.per_finger(self.cfg.sweep_amplitude_rad))
            return HOME + ramp * amplitude * np.sin(2 * np.pi * self.frequencies_hz * t_s + self.phases_rad)
        push_step = step - self.sweep_steps - self.lift_steps
        push, within = divmod(push_step, 5 * self.segment_steps)
        if within == 0:
            self.waypoints = self._plan(push % 3, cube_position_m)
        segment, frac = divmod(within, self.segment_steps)
        return _lerp(self.waypoints[segment], self.waypoints[segment + 1], frac / self.segment_steps)

    def _plan(self, finger: int, cube_position_m: np.ndarray) -> list[np.ndarray]:
        """Joint waypoints: home, above behind the cube, low behind it, through it, up, home."""
        tip = self.kin.tip_m(HOME, finger)
        direction = -tip[:2] / np.linalg.norm(tip[:2])  # from the finger's side across the arena
        centre = np.asarray(cube_position_m[:2], float)
        behind = centre - (cube.HALF_EDGE_M + 0.03) * direction
        through = centre + self.cfg.push_depth_m * direction
        tips = [np.r_[behind, 0.09], np.r_[behind, 0.03], np.r_[through, 0.03], np.r_[through, 0.09]]
        waypoints, q = [HOME], HOME
        for target in tips:
            q = self.kin.solve(q, finger, target)
            waypoints.append(q)
        return [*waypoints, HOME]

    def _plan_lift(self, cube_position_m: np.ndarray, cube_quat_xyzw: np.ndarray) -> _LiftPlan:
        """Fingertips beside the cube on each finger's ray from the cube's centre (at its resting height), and the
        joints that put them there and 5 cm above."""
        cfg = self.cfg
        centre = np.array([cube_position_m[0], cube_position_m[1], cube.HALF_EDGE_M])
        faces, rays = face_points(centre, Rotation.from_quat(cube_quat_xyzw).as_matrix(), self.approach_rad)
        beside = faces + (TIP_CLEARANCE_M + cfg.grip_clearance_m) * rays
        inside = faces - cfg.grip_depth_m * rays
        over = HOME.copy()
        for finger in range(3):  # each solve moves one finger's joints only
            over = self.kin.solve(over, finger, beside[finger] + np.array([0.0, 0.0, 0.05]))
        at = over.copy()
        for finger in range(3):
            at = self.kin.solve(at, finger, beside[finger])
        return _LiftPlan((HOME, over, at), beside, inside)

    def _lift_torque(self, lift_step: int, q: np.ndarray, qd: np.ndarray, cube_position_m: np.ndarray,
                     cube_quat_xyzw: np.ndarray) -> np.ndarray:
        """Joint PD over and down to the cube, impedance cycles, joint PD back up and home."""
        a, cycles = self.approach_steps, self.cfg.lifts * int(self.stage_steps[-1])
        if lift_step == 0:
            self.lift = self._plan_lift(cube_position_m, cube_quat_xyzw)
        home, over, at = self.lift.waypoints
        if lift_step < 2 * a:
            segment, within = divmod(lift_step, a)
            return self._pd(_lerp((home, over)[segment], (over, at)[segment], within / a), q, qd)
        if lift_step >= 2 * a + cycles:
            segment, within = divmod(lift_step - 2 * a - cycles, a)
            return self._pd(_lerp((at, over)[segment], (over, home)[segment], within / a), q, qd)
        return self._impedance(self._grip_targets((lift_step - 2 * a) % int(self.stage_steps[-1])), q, qd)

    def _grip_targets(self, cycle_step: int) -> np.ndarray:
        """(3, 3) fingertip targets at a step of one cycle: grip, lift, hold, lower, release."""
        grip_at = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
        height_at = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
        grip, height = np.interp(cycle_step, self.stage_steps, grip_at), np.interp(cycle_step, self.stage_steps,
                                                                                      height_at)
        lift = self.lift
        return _lerp(lift.beside_m, lift.inside_m, grip) + np.array([0.0, 0.0, height * self.cfg.lift_height_m])

    def _pd(self, target_rad: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        return cfg.kp_nm_per_rad * (target_rad - q) - cfg.kd_nms_per_rad * qd + self.kin.gravity_nm(q)

    def _impedance(self, targets_m: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """J^T F towards each fingertip's target plus gravity compensation."""
        cfg, torque = self.cfg, self.kin.gravity_nm(q)
        for finger in range(3):
            dofs = slice(3 * finger, 3 * finger + 3)
            jac = self.kin.jacobian(q, finger)
            force = (cfg.grip_stiffness_npm * (targets_m[finger] - self.kin.tip_m(q, finger))
                     - cfg.grip_damping_nspm * jac @ qd[dofs])
            torque[dofs] += jac.T @ force
        return torque

    def torque(self, step: int, q: np.ndarray, qd: np.ndarray, cube_position_m: np.ndarray,
               cube_quat_xyzw: np.ndarray | None = None) -> np.ndarray:
        """The command at a 50 Hz step from the robot's joints and the tracker's cube pose (default: unturned)."""
        cfg = self.cfg
        lift_step = step - self.sweep_steps
        if 0 <= lift_step < self.lift_steps:
            quat = np.array([0.0, 0.0, 0.0, 1.0]) if cube_quat_xyzw is None else cube_quat_xyzw
            command = self._lift_torque(lift_step, q, qd, cube_position_m, quat)
        else:
            command = self._pd(self.target_rad(step, cube_position_m), q, qd)
        pulse = self.rng.uniform(-cfg.pulse_nm, cfg.pulse_nm, tp.NUM_JOINTS)
        return np.clip(command + pulse, -tp.MAX_TORQUE_NM, tp.MAX_TORQUE_NM)


def _lerp(start: np.ndarray, end: np.ndarray, frac: float) -> np.ndarray:
    return (1 - frac) * start + frac * end


def run_excitation_episode(robot: Robot, cfg: ExcitationConfig) -> dict[str, np.ndarray]:
    """One excitation run on the robot from the cube at the centre; the log's arrays (deployment keys plus
    robot_camera_timestamp_s)."""
    controller = ExcitationController(cfg)
    platform = robot.start_episode(np.array([0.0, 0.0, cube.HALF_EDGE_M]), np.array([0.0, 0.0, 0.0, 1.0]))
    record, counters = EpisodeRecord(), {"soft_limit_steps": 0, "fast_joint_steps": 0, "action_repetitions": 0}
    camera_s: list[float] = []
    t = platform.append_desired_action(platform.Action(torque=np.zeros(tp.NUM_JOINTS)))
    for step in range(controller.total_steps):
        observation, camera = platform.get_robot_observation(t), platform.get_camera_observation(t)
        pose = camera.filtered_object_pose
        for key, value in (("t", t), ("object_position_m", np.asarray(pose.position, float)),
                           ("object_quat_xyzw", np.asarray(pose.orientation, float)),
                           ("object_confidence", float(pose.confidence)),
                           ("camera_timestamp_s", float(camera.cameras[0].timestamp or 0.0))):
            record.policy[key].append(value)
        torque = controller.torque(step, np.asarray(observation.position), np.asarray(observation.velocity),
                                   np.asarray(pose.position), np.asarray(pose.orientation))
        action = platform.Action(torque=torque)
        for _ in range(STEPS_PER_ACTION):
            t = platform.append_desired_action(action)
            record_robot_step(record, platform, t, counters, torque)
            camera_s.append(float(platform.get_camera_observation(t).cameras[0].timestamp or 0.0))
    arrays = {f"robot_{k}": np.asarray(v) for k, v in record.robot.items()}
    arrays.update({f"policy_{k}": np.asarray(v) for k, v in record.policy.items() if v})
    arrays["robot_camera_timestamp_s"] = np.asarray(camera_s)
    return arrays


def run_excitation(robot: Robot, cfg: ExcitationConfig, episodes: int, log_dir: Path) -> dict:
    """`episodes` excitation runs (seeds cfg.seed, cfg.seed + 1, ...) into log_dir; returns the report."""
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    log_dir = Path(log_dir)
    if (log_dir / REPORT_FILE).exists():
        raise FileExistsError(f"{log_dir} holds a finished run already (report.json); choose a new folder")
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    _write_json(log_dir / INFO_FILE, {"policy": "excitation", "platform": robot.kind, "robot_name": robot.name,
                                      "excitation": asdict(cfg), "episodes": episodes, "started_utc": started})
    for index in range(episodes):
        arrays = run_excitation_episode(robot, ExcitationConfig(**{**asdict(cfg), "seed": cfg.seed + index}))
        folder = log_dir / f"episode_{index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_log(folder / "log.npz", arrays)
    robot.close()
    report = {"kind": "excitation", "platform": robot.kind, "robot": robot.name, "episodes": episodes,
              "duration_s_per_episode": cfg.duration_s,
              "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    _write_json(log_dir / REPORT_FILE, report)
    return report
