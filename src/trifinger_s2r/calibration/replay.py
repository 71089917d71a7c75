"""Replaying logged torques in MuJoCo over short windows that start from logged states.

A window starts at a camera frame taken while the cube rested on the table (this frame and the one before agree
within REST_TOLERANCE_M): the fingers start at the logged joint positions and velocities, the cube flat on the
table at the frame's position and yaw (with `held_windows`, also at a frame that shows the cube still in the air:
at the frame's pose, moving with the fingertips). The logged commanded torques then drive the simulation at 1 kHz
(one physics step per robot step) and the replay is compared with the log: joints every 20 ms, the cube's position
(all three axes: the excitation's lifts carry it off the table) at every camera frame inside the window. All
windows, under every parameter set asked for, run as one `mujoco.batch` call.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams, apply_params
from trifinger_s2r.deploy.tracker import CONFIDENCE_THRESHOLD
from trifinger_s2r.robot import cube
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.sim.contact import ContactModel
from trifinger_s2r.sim.model import SceneIndex, load_model
from trifinger_s2r.sim.mujoco_cpu import MujocoCpuBackend
from trifinger_s2r.timing import ROBOT_RATE_HZ, Timing

REST_TOLERANCE_M = 0.006
"""Two frames closer than this (xy) show a resting cube: three times the tracker's 2 mm noise per axis."""
MOVED_M = 0.01
TOUCH_M = 0.006
"""A fingertip this close to the cube at a held frame's pose (three times the tracker's noise) touches it."""
HELD_ABOVE_M = 0.01
"""A frame shows the cube in the air when its centre is this much above its resting height."""
JOINT_STD_RAD = 0.002
"""Residual scales: joint positions, joint velocities, cube positions (the tracker's noise)."""
JOINT_VEL_STD_RADPS = 0.1
CUBE_STD_M = 0.002
CAMERA_PERIOD_STEPS = ROBOT_RATE_HZ // 10
"""Robot steps between two camera frames (10 Hz): a window compares the cube at the frames inside it."""


@dataclass(frozen=True)
class ReplayConfig:
    window_steps: int = 300
    """Robot steps per window (0.3 s: three camera frames)."""
    compare_every_steps: int = 20
    max_windows: int = 64
    """Windows in which the cube moves or is held in the air are kept first, then windows at rest (each group spread
    evenly over the logs where it is thinned)."""
    link_damping_per_s: float = 0.0
    """Bullet-style damping of every finger link (1/s; 0: none): a force -k (1 + |v|) m v at the link's centre of
    mass and a torque -k (1 + |w|) I w, as btMultiBody applies its linear and angular damping (trifinger_simulation
    sets 0.5 on every finger link). A known property of the robot simulator that made the logs, not a fitted
    parameter: without it the fitted cube mass and frictions absorb it."""
    held_windows: bool = False
    """Also start windows from frames that show the cube still in the air (held by the fingers, as in the
    excitation's lifts), at the frame's pose, moving with the fingertips: the fingers alone carry its weight."""
    touching_start: bool = True
    """A held window's cube starts where the fingertips that touch it (within TOUCH_M at the frame's pose) touch it
    exactly: the frame's position, moved the least that puts those tips on its faces. The joint encoders place the
    tips to a fraction of a millimetre, the tracker the cube to 2 mm, and a start that is off against squeezing
    fingers biases the fitted mass upward (docs/benchmarks.md)."""
    friction_cone: str = "pyramidal"
    impratio: float = 1.0
    """The replay's contact model (sim.contact): 'elliptic' with 10 makes friction stick as on PyBullet."""

    def __post_init__(self) -> None:
        ContactModel(self.friction_cone, self.impratio)  # validates both
        if self.window_steps <= 0 or self.window_steps % self.compare_every_steps:
            raise ValueError("window_steps must be a positive multiple of compare_every_steps")
        if self.window_steps < CAMERA_PERIOD_STEPS:
            raise ValueError(f"window_steps must be at least one camera period ({CAMERA_PERIOD_STEPS} robot steps), "
                             f"got {self.window_steps}: a window compares the cube at the camera frames inside it")
        if not self.link_damping_per_s >= 0:
            raise ValueError(f"link_damping_per_s must be >= 0, got {self.link_damping_per_s}")


@dataclass(frozen=True)
class Windows:
    """W windows of S robot steps, stacked."""

    joint_pos0_rad: np.ndarray
    """(W, 9)."""
    joint_vel0_radps: np.ndarray
    cube_pos0_m: np.ndarray
    """(W, 3)."""
    cube_quat0_xyzw: np.ndarray
    cube_vel0_mps: np.ndarray
    """(W, 3): zero on the table; for a held cube the mean of the fingertips' velocities (it moves with them)."""
    torque_nm: np.ndarray
    """(W, S, 9) commanded torques."""
    joint_pos_rad: np.ndarray
    """(W, K, 9) logged joints at every compare_every_steps step."""
    joint_vel_radps: np.ndarray
    cube_pos_m: np.ndarray
    """(W, F, 3) logged cube position at the frames inside the window; F = S // camera period."""
    cube_moved: np.ndarray
    """(W,) bool: the cube moved (or was lifted) more than MOVED_M within the window."""
    cube_held: np.ndarray
    """(W,) bool: the window starts with the cube in the air, held by the fingers."""

    def __len__(self) -> int:
        return len(self.torque_nm)


def fresh_frames(log: RobotLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each confident camera frame once: (capture row, position (3,), quat (4,)), in capture order."""
    stamps = log.camera_timestamp_s
    first = np.r_[True, np.diff(stamps) != 0]
    keep = first & (log.object_confidence >= CONFIDENCE_THRESHOLD)
    rows = np.searchsorted(log.timestamp_s, stamps[keep] - 0.5 * log.robot_dt_s)
    return rows, log.object_position_m[keep], log.object_quat_xyzw[keep]


def _rest_pose(position_m: np.ndarray, quat_xyzw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cube flat on the table at the frame's position and yaw."""
    yaw = Rotation.from_quat(quat_xyzw).as_euler("xyz")[2]
    return np.array([position_m[0], position_m[1], cube.HALF_EDGE_M]), Rotation.from_euler("z", yaw).as_quat()


def make_windows(logs: list[RobotLog], cfg: ReplayConfig) -> Windows:
    """Every replay window of the logs, at most cfg.max_windows of them."""
    period = CAMERA_PERIOD_STEPS
    frames_per_window = cfg.window_steps // period
    rows: list[dict] = []
    tips = Fingertips() if cfg.held_windows else None  # a MuJoCo model, only where held windows need it
    for log in logs:
        frame_rows, positions, quats = fresh_frames(log)
        for i in range(1, len(frame_rows) - frames_per_window):
            k = int(frame_rows[i])
            later = frame_rows[i + 1 : i + 1 + frames_per_window]
            if k + cfg.window_steps >= len(log.timestamp_s) or not np.array_equal(later - k, period * np.arange(
                    1, frames_per_window + 1)):
                continue  # a missed (low-confidence) frame inside the window
            still = np.linalg.norm(positions[i] - positions[i - 1]) <= REST_TOLERANCE_M
            on_table = abs(positions[i, 2] - cube.HALF_EDGE_M) <= 0.005
            held = cfg.held_windows and positions[i, 2] > cube.HALF_EDGE_M + HELD_ABOVE_M
            if not still or not (on_table or held):
                continue
            pos0, quat0 = _rest_pose(positions[i], quats[i]) if on_table else (positions[i], quats[i])
            if held and cfg.touching_start:
                pos0 = tips.touching_position_m(log.joint_pos_rad[k], pos0, quat0)
            vel0 = np.zeros(3) if on_table else tips.mean_mps(log.joint_pos_rad[k], log.joint_vel_radps[k])
            rows.append(_window(log, k, pos0, quat0, vel0, positions[i + 1 : i + 1 + frames_per_window], held, cfg))
    if not rows:
        raise ValueError("the logs hold no replay window (the cube never rested on the table between two frames)")
    return _select(rows, cfg.max_windows)


def _window(log: RobotLog, k: int, pos0: np.ndarray, quat0: np.ndarray, vel0: np.ndarray, later: np.ndarray,
            held: bool, cfg: ReplayConfig) -> dict:
    compare = k + np.arange(cfg.compare_every_steps, cfg.window_steps + 1, cfg.compare_every_steps)
    return {"joint_pos0_rad": log.joint_pos_rad[k], "joint_vel0_radps": log.joint_vel_radps[k], "cube_pos0_m": pos0,
            "cube_quat0_xyzw": quat0, "cube_vel0_mps": vel0, "torque_nm": log.torque_nm[k : k + cfg.window_steps],
            "joint_pos_rad": log.joint_pos_rad[compare], "joint_vel_radps": log.joint_vel_radps[compare],
            "cube_pos_m": later[:, :3],
            "cube_moved": bool(np.linalg.norm(later[:, :3] - pos0, axis=1).max() > MOVED_M), "cube_held": bool(held)}


def _spread_evenly(rows: list[dict], count: int) -> list[dict]:
    if count <= 0:
        return []
    if count >= len(rows):
        return rows
    return [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, count).astype(int))]


def _select(rows: list[dict], limit: int) -> Windows:
    """Windows that see the cube move or held in the air first (they carry what the fit is after: its mass and
    frictions), then windows at rest; each group spread evenly over the logs where it must be thinned."""
    informative = [r for r in rows if r["cube_moved"] or r["cube_held"]]
    rest = [r for r in rows if not (r["cube_moved"] or r["cube_held"])]
    chosen = _spread_evenly(informative, limit)
    chosen = chosen + _spread_evenly(rest, limit - len(chosen))
    return Windows(**{key: np.stack([r[key] for r in chosen]) for key in rows[0]})


class Replayer:
    """Replays the windows under C parameter sets at once (W * C envs); `residuals(params)` -> (C, R)."""

    def __init__(self, windows: Windows, candidates: int, cfg: ReplayConfig, num_threads: int = 0) -> None:
        self.windows, self.cfg, self.candidates = windows, cfg, candidates
        self.backend = MujocoCpuBackend(len(windows) * candidates, Timing(ROBOT_RATE_HZ, ROBOT_RATE_HZ),
                                        num_threads=num_threads,
                                        contact=ContactModel(cfg.friction_cone, cfg.impratio))
        self._qvel = self.backend.batch.bind("qvel")
        self._link_damping = _LinkDamping(self.backend) if cfg.link_damping_per_s > 0 else None

    def residuals(self, params: list[PhysicalParams]) -> np.ndarray:
        """(C, R) normalised replay errors of each parameter set: joints, joint velocities, cube positions."""
        if len(params) != self.candidates:
            raise ValueError(f"{len(params)} parameter sets for a replayer of {self.candidates}")
        w, cfg, backend = self.windows, self.cfg, self.backend
        n = len(w)
        scale = apply_params(backend, [p for p in params for _ in range(n)])  # (C * W, 1)
        tile = lambda a: torch.as_tensor(np.tile(a, (self.candidates, 1)), dtype=torch.float32)
        backend.reset(torch.arange(backend.num_envs), tile(w.joint_pos0_rad), tile(w.cube_pos0_m),
                      tile(w.cube_quat0_xyzw))
        self._qvel[:, : tp.NUM_JOINTS] = np.tile(w.joint_vel0_radps, (self.candidates, 1))
        cube_dof = backend.index.cube_dof
        self._qvel[:, cube_dof: cube_dof + 3] = np.tile(w.cube_vel0_mps, (self.candidates, 1))
        backend.batch.forward()
        torque = np.tile(np.clip(w.torque_nm, -tp.MAX_TORQUE_NM, tp.MAX_TORQUE_NM), (self.candidates, 1, 1))
        joints, velocities, cubes = [], [], []
        period = CAMERA_PERIOD_STEPS
        for step in range(cfg.window_steps):
            if self._link_damping is not None:
                self._link_damping.apply(cfg.link_damping_per_s)
            backend.step(torch.from_numpy(torque[:, step] * scale))
            if (step + 1) % cfg.compare_every_steps == 0:
                state = backend.state()
                joints.append(state.joint_pos_rad.double().numpy())
                velocities.append(state.joint_vel_radps.double().numpy())
                if (step + 1) % period == 0:
                    cubes.append(state.cube_pos_m.double().numpy())
        c = self.candidates
        joint_err = (np.stack(joints, 1).reshape(c, n, -1, 9) - w.joint_pos_rad) / JOINT_STD_RAD
        vel_err = (np.stack(velocities, 1).reshape(c, n, -1, 9) - w.joint_vel_radps) / JOINT_VEL_STD_RADPS
        cube_err = (np.stack(cubes, 1).reshape(c, n, -1, 3) - w.cube_pos_m) / CUBE_STD_M
        parts = [joint_err.reshape(c, -1), vel_err.reshape(c, -1), cube_err.reshape(c, -1)]
        return np.nan_to_num(np.concatenate(parts, axis=1), nan=1e3, posinf=1e3, neginf=-1e3)

    def error_summary(self, params: PhysicalParams) -> dict:
        """RMS replay errors of one parameter set (needs a replayer of one candidate), in physical units."""
        r = self.residuals([params])[0]
        n, k = len(self.windows), self.windows.joint_pos_rad.shape[1]
        joints, rest = r[: n * k * 9], r[n * k * 9 :]
        vel, cubes = rest[: n * k * 9], rest[n * k * 9 :]
        return {"joint_position_rms_rad": float(np.sqrt(np.mean(joints**2))) * JOINT_STD_RAD,
                "joint_velocity_rms_radps": float(np.sqrt(np.mean(vel**2))) * JOINT_VEL_STD_RADPS,
                "cube_position_rms_m": float(np.sqrt(np.mean(cubes**2))) * CUBE_STD_M,
                "normalised_rms": float(np.sqrt(np.mean(r**2)))}


class Fingertips:
    """The fingertips at logged joint states (MuJoCo's kinematics): their mean velocity, and where a held cube
    touches them."""

    def __init__(self) -> None:
        self.model = load_model()
        self.data = mujoco.MjData(self.model)
        index = SceneIndex(self.model)
        self.sites, self.tip_geoms = index.fingertip_sites, [int(g) for g in index.fingertip_geoms]
        self.cube_geom, self.cube_qpos = index.cube_geom, index.cube_qpos
        self._jac = np.zeros((3, self.model.nv))

    def mean_mps(self, joint_pos_rad: np.ndarray, joint_vel_radps: np.ndarray) -> np.ndarray:
        self.data.qpos[: tp.NUM_JOINTS] = joint_pos_rad
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        velocities = []
        for site in self.sites:
            mujoco.mj_jacSite(self.model, self.data, self._jac, None, int(site))
            velocities.append(self._jac[:, : tp.NUM_JOINTS] @ joint_vel_radps)
        return np.mean(velocities, axis=0)

    def touching_position_m(self, joint_pos_rad: np.ndarray, position_m: np.ndarray, quat_xyzw: np.ndarray,
                            iterations: int = 3) -> np.ndarray:
        """The cube position nearest position_m at which every tip within TOUCH_M of the cube (at position_m) lies on
        its surface (least squares along the faces' normals, the least move where they leave it free; the
        orientation kept)."""
        rotation = Rotation.from_quat(quat_xyzw)
        self.data.qpos[: tp.NUM_JOINTS] = joint_pos_rad
        self.data.qpos[self.cube_qpos + 3 : self.cube_qpos + 7] = np.roll(quat_xyzw, 1)  # MuJoCo: w first
        position = np.asarray(position_m, float).copy()
        touching = [geom for geom, gap, _ in self._gaps(position) if gap < TOUCH_M]
        for _ in range(iterations if touching else 0):
            normals, gaps = [], []
            for geom, gap, tip_point in self._gaps(position):
                if geom in touching:
                    local = rotation.inv().apply(tip_point - position)
                    axis = int(np.argmax(np.abs(local)))
                    normals.append(rotation.apply(np.eye(3)[axis] * np.sign(local[axis])))  # outward, towards the tip
                    gaps.append(gap)
            # moving the cube by d along a face's outward normal closes that face's gap by d
            position = position + np.linalg.lstsq(np.array(normals), np.array(gaps), rcond=None)[0]
        return position

    def _gaps(self, position_m: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
        """(tip geom, signed distance to the cube, the tip's nearest point) for each fingertip."""
        self.data.qpos[self.cube_qpos : self.cube_qpos + 3] = position_m
        mujoco.mj_kinematics(self.model, self.data)
        fromto, out = np.zeros(6), []
        for geom in self.tip_geoms:
            gap = mujoco.mj_geomDistance(self.model, self.data, geom, self.cube_geom, 2 * TOUCH_M, fromto)
            out.append((geom, gap, fromto[:3].copy()))
        return out


class _LinkDamping:
    """btMultiBody's link damping on the finger links of a MuJoCo backend, written to xfrc_applied before a step."""

    def __init__(self, backend: MujocoCpuBackend) -> None:
        model, b = backend.model, backend.batch
        roots = set(backend.index.finger_root_bodies.tolist())
        self.links = np.array([i for i in range(model.nbody) if model.body_rootid[i] in roots])
        self.roots = model.body_rootid[self.links]
        self.mass_kg = model.body_mass[self.links][None, :, None]  # (1, L, 1)
        self.inertia_kgm2 = model.body_inertia[self.links][None]  # (1, L, 3) principal, in the ximat frame
        self._xfrc, self._cvel = b.bind("xfrc_applied"), b.bind("cvel")
        self._xipos, self._ximat, self._subtree_com = b.bind("xipos"), b.bind("ximat"), b.bind("subtree_com")

    def apply(self, k_per_s: float) -> None:
        cvel = self._cvel[:, self.links]  # (N, L, 6): [angular, linear at the tree's centre of mass]
        angular = cvel[..., :3]
        lever = self._xipos[:, self.links] - self._subtree_com[:, self.roots]
        linear = cvel[..., 3:] + np.cross(angular, lever)  # at the link's centre of mass
        force = -k_per_s * (1 + np.linalg.norm(linear, axis=-1, keepdims=True)) * self.mass_kg * linear
        rot = self._ximat[:, self.links].reshape(*angular.shape[:2], 3, 3)
        local = np.einsum("nlji,nlj->nli", rot, angular)  # R^T w
        torque_local = -k_per_s * (1 + np.linalg.norm(angular, axis=-1, keepdims=True)) * self.inertia_kgm2 * local
        self._xfrc[:, self.links, :3] = force
        self._xfrc[:, self.links, 3:] = np.einsum("nlij,nlj->nli", rot, torque_local)
