"""Fitting the physical parameters to logs (scipy's least squares on replay errors, with a robust loss so that a
few windows the model cannot replay do not drag every parameter) and the camera delay to frame arrival times; each
value with two spreads: one standard deviation from the Jacobian at the solution (the noise only) and one from a
bootstrap over windows (resampled windows, one linearised robust step from the solution each: it also reflects how
much the windows disagree, i.e. model error)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import least_squares

from trifinger_s2r.calibration.held_weight import MIN_HELD_FRAMES, HeldRows, held_rows
from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import ReplayConfig, Replayer, make_windows
from trifinger_s2r.calibration.slide_friction import MIN_SLIDE_FRAMES, SlideRows, simulator_table_friction, slide_rows
from trifinger_s2r.sim.contact import ContactModel

TYPICAL = PhysicalParams(
    torque_scale=0.1, safety_kd_scale=0.3, joint_damping_upper=0.01, joint_damping_middle=0.01,
    joint_damping_lower=0.01, joint_friction_upper_nm=0.01, joint_friction_middle_nm=0.01,
    joint_friction_lower_nm=0.01, cube_mass_kg=0.03, cube_table_friction=0.3, finger_cube_friction=0.3,
    contact_timeconst_s=0.01,
)
"""Each parameter's prior width: the fit works in units of these, and a weak prior pulls a parameter the logs say
nothing about back to its nominal value by this much per unit of residual."""
LOWER = PhysicalParams(torque_scale=0.3, safety_kd_scale=0.0, cube_mass_kg=0.01, cube_table_friction=0.01,
                       finger_cube_friction=0.01, contact_timeconst_s=0.004)
"""Bounds: a time constant below two 1 ms steps is unstable; the others must stay physical."""
UPPER = PhysicalParams(torque_scale=2.0, safety_kd_scale=5.0, joint_damping_upper=0.2, joint_damping_middle=0.2,
                       joint_damping_lower=0.2, joint_friction_upper_nm=0.1, joint_friction_middle_nm=0.1,
                       joint_friction_lower_nm=0.1, cube_mass_kg=0.5, cube_table_friction=2.0,
                       finger_cube_friction=2.0, contact_timeconst_s=0.1)
FD_STEP = 0.05
"""Finite-difference step in prior-width units."""


@dataclass(frozen=True)
class FitConfig:
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    max_evaluations: int = 12
    """Evaluations of the replay error by the least-squares solver (each Jacobian replays every window once per
    parameter, in one batch)."""
    num_threads: int = 0
    loss: str = "soft_l1"
    """scipy least_squares' loss ("linear": plain least squares)."""
    loss_scale: float = 3.0
    """Residual (in noise units) beyond which the robust loss grows linearly rather than quadratically."""
    bootstrap_samples: int = 200
    """Window resamples for the bootstrap spread (0: none, the bootstrap spread is then the Jacobian's)."""
    seed: int = 0
    finger_cube_friction_starts: tuple[float, ...] = (1.0, 0.5)
    """The solver runs once from each of these finger-cube frictions (every other parameter at the start) and the
    lowest cost wins: the replay error has a basin near each, and a solver started in one stays there (PyBullet's
    fingertips grip the cube with 0.5 against our nominal 1.0; started at 1.0 the fit ends at 1.09 with a worse
    error, docs/benchmarks.md)."""
    weigh_held_cube: bool = True
    """Where the logs show the cube held still in the air (at least MIN_HELD_FRAMES camera frames), its mass is not
    fitted by the replay but weighed by the joint torques at the other parameters (calibration.held_weight): the
    replay's contact model biased it (PyBullet: +13-36%), the force balance does not depend on one."""
    measure_table_friction: bool = True
    """Where the cube is weighed and the logs show it sliding under a pushing tip (at least MIN_SLIDE_FRAMES camera
    frames), its table friction is not fitted by the replay either but measured by the pushes' force balance
    (calibration.slide_friction), and converted to our simulator's parameter: the replay traded it against the
    finger-cube friction (PyBullet robot 1: -26%)."""

    def __post_init__(self) -> None:
        if not self.finger_cube_friction_starts:
            raise ValueError("finger_cube_friction_starts must name at least one start")
        for value in self.finger_cube_friction_starts:
            if not LOWER.finger_cube_friction < value < UPPER.finger_cube_friction:
                raise ValueError(f"finger_cube_friction_starts: {value} is outside ({LOWER.finger_cube_friction}, "
                                 f"{UPPER.finger_cube_friction})")


@dataclass(frozen=True)
class FitResult:
    params: PhysicalParams
    spread: PhysicalParams
    """One standard deviation from the Jacobian (noise only)."""
    bootstrap_spread: PhysicalParams
    """One standard deviation over window resamples."""
    before: dict
    after: dict
    windows: int
    windows_cube_moved: int
    starts: tuple[dict, ...] = ()
    """Each solver run: its finger-cube friction at the start, where it ended, and its final cost."""
    held_frames: int = 0
    """Camera frames that weighed the held cube (0: the mass was fitted by the replay)."""
    slide_frames: int = 0
    """Camera frames whose force balance measured the table friction (0: it was fitted by the replay)."""
    coulomb_table_friction: float | None = None
    """The measured Coulomb coefficient of the cube on the table (params holds our simulator's value for it)."""


CUBE_CONTACT = ("cube_table_friction", "finger_cube_friction", "contact_timeconst_s")
"""What the second stage refits once the held cube is weighed (the fingers' own parameters and the mass fixed); the
table friction too unless the pushes measured it."""


def fit_physics(logs: list[RobotLog], cfg: FitConfig | None = None, start: PhysicalParams | None = None,
                progress=None) -> FitResult:
    """Least-squares fit of every PhysicalParams field to the logs' replay windows, starting at `start` (also the
    prior's centre; default our nominal robot). Where the logs show the cube held (cfg.weigh_held_cube), a second
    stage weighs it at the first stage's motor parameters and refits the cube's contact parameters with that mass:
    a mass tied to the torque scale inside one fit let the replay's bias on the mass move the torque scale instead
    (+5-7% on PyBullet, docs/benchmarks.md). Where the pushes also show the cube sliding (cfg.measure_table_friction),
    its table friction is measured by their force balance at that mass and the second stage leaves it alone."""
    cfg, start = cfg or FitConfig(), start or PhysicalParams()
    windows = make_windows(logs, cfg.replay)
    held = held_rows(logs) if cfg.weigh_held_cube else None
    held = held if held is not None and held.frames >= MIN_HELD_FRAMES else None
    names = PhysicalParams.names()
    problem = _Problem(windows, cfg, start, progress)
    before = problem.single.error_summary(start)
    runs = [problem.solve(np.zeros(len(names)), list(range(len(names))), f) for f in cfg.finger_cube_friction_starts]
    solution = min(runs, key=lambda r: r[1].cost)
    starts = tuple({"finger_cube_friction_start": f,
                    "finger_cube_friction": float(problem.to_params(z).finger_cube_friction), "cost": float(sol.cost)}
                   for f, (z, sol) in zip(cfg.finger_cube_friction_starts, runs, strict=True))
    z = solution[0]
    measured: _Measured | None = None
    if held is not None:
        z, measured = _measure_cube(problem, z, held, logs, cfg)
        contact = [n for n in CUBE_CONTACT if measured is None or n != "cube_table_friction"]
        z, _ = problem.solve(z, [names.index(n) for n in contact], None)
    params = problem.to_params(z)
    fun = problem.residuals(z)
    raw_jac = problem.jacobian(z, list(range(len(names))))
    weights = _loss_weights(fun, cfg.loss, cfg.loss_scale)
    spread = _spread(raw_jac * np.sqrt(weights)[:, None], fun * np.sqrt(weights), problem.typical)
    boot = _bootstrap_spread(raw_jac, fun, weights, _window_of_row(windows), len(windows), z, problem.bounds,
                             problem.typical, cfg) if cfg.bootstrap_samples > 0 else spread
    if held is not None:
        mass = names.index("cube_mass_kg")
        spread[mass] = _weighed_mass_spread_kg(held, params, spread[names.index("torque_scale")])
        boot[mass] = _weighed_mass_spread_kg(held, params, boot[names.index("torque_scale")])
    if measured is not None:
        table = names.index("cube_table_friction")
        spread[table], boot[table] = measured.spread(params, spread[mass]), measured.spread(params, boot[mass])
    return FitResult(params=params, spread=PhysicalParams.from_vector(spread),
                     bootstrap_spread=PhysicalParams.from_vector(boot), before=before,
                     after=problem.single.error_summary(params), windows=len(windows),
                     windows_cube_moved=int(windows.cube_moved.sum()), starts=starts,
                     held_frames=held.frames if held is not None else 0,
                     slide_frames=measured.rows.frames if measured is not None else 0,
                     coulomb_table_friction=measured.coulomb if measured is not None else None)


@dataclass(frozen=True)
class _Measured:
    """The table friction measured by the pushes' force balance."""

    rows: SlideRows
    coulomb: float
    coulomb_spread: float
    simulator_value: float

    def spread(self, params: PhysicalParams, mass_spread_kg: float) -> float:
        """The simulator value's spread: the balance's over frames and what the mass's spread moves it by (the
        coefficient goes as one over the mass)."""
        relative = np.hypot(self.coulomb_spread / self.coulomb, mass_spread_kg / params.cube_mass_kg)
        return float(self.simulator_value * relative)


def _measure_cube(problem: _Problem, z: np.ndarray, held: HeldRows, logs: list[RobotLog],
                  cfg: FitConfig) -> tuple[np.ndarray, _Measured | None]:
    """z with the cube's mass weighed at the first stage's motor parameters and, where the pushes show enough
    sliding, its table friction measured at that mass."""
    names = PhysicalParams.names()
    mass = names.index("cube_mass_kg")
    z = z.copy()
    z[mass] = (_weighed_mass_kg(held, problem.to_params(z)) - problem.x0[mass]) / problem.typical[mass]
    if not cfg.measure_table_friction:
        return z, None
    slides = slide_rows(logs)
    if slides.frames < MIN_SLIDE_FRAMES:
        return z, None
    params = problem.to_params(z)
    coulomb, coulomb_spread = slides.friction(params)
    value = simulator_table_friction(coulomb, params, ContactModel(cfg.replay.friction_cone, cfg.replay.impratio))
    if value is None:
        return z, None
    table = names.index("cube_table_friction")
    value = float(np.clip(value, LOWER.cube_table_friction, UPPER.cube_table_friction))
    z[table] = (value - problem.x0[table]) / problem.typical[table]
    return z, _Measured(slides, coulomb, coulomb_spread, value)


class _Problem:
    """The replay error in prior-width units z (z = 0: the start), solved over a subset of the parameters."""

    def __init__(self, windows, cfg: FitConfig, start: PhysicalParams, progress) -> None:
        self.windows, self.cfg, self.progress = windows, cfg, progress
        self.single = Replayer(windows, 1, cfg.replay, cfg.num_threads)
        self._many: dict[int, Replayer] = {}
        self.typical, self.x0 = TYPICAL.vector(), start.vector()
        self.bounds = ((LOWER.vector() - self.x0) / self.typical, (UPPER.vector() - self.x0) / self.typical)

    def to_params(self, z: np.ndarray) -> PhysicalParams:
        return PhysicalParams.from_vector(self.x0 + z * self.typical)

    def residuals(self, z: np.ndarray) -> np.ndarray:
        return np.concatenate([self.single.residuals([self.to_params(z)])[0], z])

    def jacobian(self, z: np.ndarray, free: list[int]) -> np.ndarray:
        """(R, len(free)) forward differences (backward at the upper bound), all in one batch."""
        if len(free) not in self._many:
            self._many[len(free)] = Replayer(self.windows, len(free), self.cfg.replay, self.cfg.num_threads)
        base = self.residuals(z)
        eye = np.eye(len(z))
        steps = [np.where(z + FD_STEP * eye[i] > self.bounds[1], z - FD_STEP * eye[i], z + FD_STEP * eye[i])
                 for i in free]
        data = self._many[len(free)].residuals([self.to_params(s) for s in steps])
        cols = [(np.concatenate([d, s]) - base) / (s[i] - z[i]) for i, d, s in zip(free, data, steps, strict=True)]
        if self.progress is not None:
            self.progress(f"cost {0.5 * float(base @ base):.1f} at {self.to_params(z)}")
        return np.stack(cols, axis=1)

    def solve(self, z0: np.ndarray, free: list[int], finger_cube_friction: float | None):
        """least_squares over the `free` entries of z from z0 (its finger-cube friction set first where given);
        returns (z, scipy's result)."""
        lower, upper = self.bounds
        z0 = z0.copy()
        if finger_cube_friction is not None:
            i = PhysicalParams.names().index("finger_cube_friction")
            z0[i] = (finger_cube_friction - self.x0[i]) / self.typical[i]
        # inside the bounds: a solver started on one truncates every step that points at it
        z0[free] = np.clip(z0[free], lower[free] + 0.2, upper[free] - 0.2)

        def full(zf: np.ndarray) -> np.ndarray:
            z = z0.copy()
            z[free] = zf
            return z

        solution = least_squares(lambda zf: self.residuals(full(zf)), z0[free],
                                 jac=lambda zf: self.jacobian(full(zf), free), bounds=(lower[free], upper[free]),
                                 x_scale=1.0, max_nfev=self.cfg.max_evaluations, method="trf", loss=self.cfg.loss,
                                 f_scale=self.cfg.loss_scale)
        if self.progress is not None:
            names = [PhysicalParams.names()[i] for i in free] if len(free) < len(z0) else "every parameter"
            self.progress(f"least_squares over {names} from finger-cube friction {finger_cube_friction}: "
                          f"{solution.message} ({solution.nfev} evaluations, cost {solution.cost:.1f})")
        return full(solution.x), solution


def _weighed_mass_kg(held: HeldRows, params: PhysicalParams) -> float:
    """The held cube's weighed mass, kept inside the fit's bounds."""
    return float(np.clip(held.mass_kg(params)[0], LOWER.cube_mass_kg, UPPER.cube_mass_kg))


def _weighed_mass_spread_kg(held: HeldRows, params: PhysicalParams, torque_scale_spread: float) -> float:
    """The weighed mass's standard error over frames and what the torque scale's spread moves it by."""
    mass_kg, frames_spread = held.mass_kg(params)
    shifted = held.mass_kg(replace(params, torque_scale=params.torque_scale + torque_scale_spread))[0]
    return float(np.hypot(frames_spread, shifted - mass_kg))


def _window_of_row(windows) -> np.ndarray:
    """The window each data residual belongs to (Replayer.residuals' order: joints, velocities, cube), -1 for the
    prior's rows that follow."""
    n, k, f = len(windows), windows.joint_pos_rad.shape[1], windows.cube_pos_m.shape[1]
    rows = [np.repeat(np.arange(n), k * 9), np.repeat(np.arange(n), k * 9), np.repeat(np.arange(n), f * 3)]
    return np.concatenate([*rows, np.full(len(PhysicalParams.names()), -1)])


def _loss_weights(fun: np.ndarray, loss: str, scale: float) -> np.ndarray:
    """Iteratively-reweighted-least-squares weights of the robust loss at the residuals: rho'((f/C)^2)."""
    z = (fun / scale) ** 2
    if loss == "linear":
        return np.ones_like(fun)
    if loss == "soft_l1":
        return 1 / np.sqrt(1 + z)
    if loss == "huber":
        return np.where(z <= 1, 1.0, 1 / np.sqrt(np.maximum(z, 1e-12)))
    if loss == "cauchy":
        return 1 / (1 + z)
    raise ValueError(f"loss {loss!r}: the bootstrap knows 'linear', 'soft_l1', 'huber' and 'cauchy'")


def _bootstrap_spread(jac: np.ndarray, fun: np.ndarray, weights: np.ndarray, window_of_row: np.ndarray,
                      windows: int, z: np.ndarray, bounds: tuple[np.ndarray, np.ndarray], typical: np.ndarray,
                      cfg: FitConfig) -> np.ndarray:
    """Standard deviation (physical units) of one weighted Gauss-Newton step from the solution on each resample of
    the windows (drawn with replacement; the prior's rows always count once), the step kept inside the bounds."""
    rng = np.random.default_rng(cfg.seed)
    estimates = []
    for _ in range(cfg.bootstrap_samples):
        counts = np.bincount(rng.integers(0, windows, windows), minlength=windows).astype(float)
        m = np.where(window_of_row < 0, 1.0, counts[np.maximum(window_of_row, 0)]) * weights
        jtm = jac.T * m
        step = -np.linalg.lstsq(jtm @ jac, jtm @ fun, rcond=None)[0]
        estimates.append(np.clip(z + step, *bounds))
    return np.std(np.stack(estimates), axis=0) * typical


def _spread(jac: np.ndarray, fun: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """One standard deviation per parameter: (J^T J)^-1 scaled by the residual variance (at least 1: residuals
    are in units of their noise), in physical units."""
    dof = max(1, len(fun) - jac.shape[1])
    variance = max(1.0, float(fun @ fun) / dof)
    covariance = np.linalg.pinv(jac.T @ jac) * variance
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None)) * typical


def fit_camera_delay(logs: list[RobotLog]) -> tuple[float, float, float]:
    """(delay_s, spread_s, jitter_s) of the camera: each frame's arrival is the first robot step (or read) that
    shows its capture timestamp; the fixed delay is the smallest arrival lag (less half the read period, the
    arrival's uncertainty), the jitter the range of the lags above it."""
    lags, periods = [], []
    for log in logs:
        if log.camera_timestamp_per_step_s is not None:
            times, stamps = log.timestamp_s, log.camera_timestamp_per_step_s
        else:
            times, stamps = log.timestamp_s[log.read_index], log.camera_timestamp_s
        new = np.nonzero(np.diff(stamps) != 0)[0] + 1  # the first frame (already there at the start) is skipped
        lags.append(times[new] - stamps[new])
        periods.append(float(np.median(np.diff(times))))
    all_lags = np.concatenate(lags)
    if all_lags.size == 0:
        raise ValueError("the logs hold no camera frame that arrived during the run")
    half_period = 0.5 * max(periods)
    delay = float(all_lags.min()) - half_period
    return delay, half_period, float(all_lags.max() - all_lags.min())
