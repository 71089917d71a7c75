"""Fitting the physical parameters to logs (scipy's least squares on replay errors, with a robust loss so that a
few windows the model cannot replay do not drag every parameter) and the camera delay to frame arrival times; each
value with two spreads: one standard deviation from the Jacobian at the solution (the noise only) and one from a
bootstrap over windows (resampled windows, one linearised robust step from the solution each: it also reflects how
much the windows disagree, i.e. model error)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from trifinger_s2r.calibration.logs import RobotLog
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import ReplayConfig, Replayer, make_windows

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


def fit_physics(logs: list[RobotLog], cfg: FitConfig | None = None, start: PhysicalParams | None = None,
                progress=None) -> FitResult:
    """Least-squares fit of every PhysicalParams field to the logs' replay windows, starting at `start` (also the
    prior's centre; default our nominal robot)."""
    cfg, start = cfg or FitConfig(), start or PhysicalParams()
    windows = make_windows(logs, cfg.replay)
    single = Replayer(windows, 1, cfg.replay, cfg.num_threads)
    window_of_row = _window_of_row(windows)
    names = PhysicalParams.names()
    many = Replayer(windows, len(names), cfg.replay, cfg.num_threads)
    typical, x0 = TYPICAL.vector(), start.vector()

    def to_params(z: np.ndarray) -> PhysicalParams:
        return PhysicalParams.from_vector(x0 + z * typical)

    def residuals(z: np.ndarray) -> np.ndarray:
        return np.concatenate([single.residuals([to_params(z)])[0], z])

    def jacobian(z: np.ndarray) -> np.ndarray:
        base = residuals(z)
        steps = [z + FD_STEP * np.eye(len(z))[i] for i in range(len(z))]
        upper = (UPPER.vector() - x0) / typical
        steps = [np.where(s > upper, z - FD_STEP * np.eye(len(z))[i], s) for i, s in enumerate(steps)]
        data = many.residuals([to_params(s) for s in steps])
        cols = [(np.concatenate([data[i], steps[i]]) - base) / (steps[i][i] - z[i]) for i in range(len(z))]
        if progress is not None:
            progress(f"cost {0.5 * float(base @ base):.1f} at {to_params(z)}")
        return np.stack(cols, axis=1)

    before = single.error_summary(start)
    lower, upper = (LOWER.vector() - x0) / typical, (UPPER.vector() - x0) / typical
    friction = names.index("finger_cube_friction")
    runs = []
    for friction_start in cfg.finger_cube_friction_starts:
        z_start = np.zeros(len(names))
        z_start[friction] = (friction_start - x0[friction]) / typical[friction]
        z_start = np.clip(z_start, lower + 0.2, upper - 0.2)  # inside the bounds: a solver started on one
        # truncates every step that points at it
        solution = least_squares(residuals, z_start, jac=jacobian, bounds=(lower, upper), x_scale=1.0,
                                 max_nfev=cfg.max_evaluations, method="trf", loss=cfg.loss, f_scale=cfg.loss_scale)
        if progress is not None:
            progress(f"least_squares from finger-cube friction {friction_start}: {solution.message} "
                     f"({solution.nfev} evaluations, cost {solution.cost:.1f})")
        runs.append((friction_start, solution))
    solution = min((s for _, s in runs), key=lambda s: s.cost)
    starts = tuple({"finger_cube_friction_start": f, "finger_cube_friction": float(to_params(s.x).finger_cube_friction),
                    "cost": float(s.cost)} for f, s in runs)
    params = to_params(solution.x)
    raw_jac = jacobian(solution.x)  # least_squares' own is rescaled by the robust loss
    weights = _loss_weights(solution.fun, cfg.loss, cfg.loss_scale)
    spread = _spread(raw_jac * np.sqrt(weights)[:, None], solution.fun * np.sqrt(weights), typical)
    boot = _bootstrap_spread(raw_jac, solution.fun, weights, window_of_row, len(windows), solution.x,
                             (lower, upper), typical, cfg) if cfg.bootstrap_samples > 0 else spread
    return FitResult(params=params, spread=PhysicalParams.from_vector(spread),
                     bootstrap_spread=PhysicalParams.from_vector(boot), before=before,
                     after=single.error_summary(params), windows=len(windows),
                     windows_cube_moved=int(windows.cube_moved.sum()), starts=starts)


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
