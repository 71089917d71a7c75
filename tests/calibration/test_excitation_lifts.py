"""The excitation's lifts: the cube is carried off the table and set down again, the replay compares its height,
and lift windows are among the windows the fit uses."""

from __future__ import annotations

import numpy as np
import pytest

from trifinger_s2r.calibration.excitation import ExcitationConfig, ExcitationController, run_excitation_episode
from trifinger_s2r.calibration.logs import read_log
from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.replay import (
    CUBE_STD_M,
    HELD_ABOVE_M,
    Fingertips,
    ReplayConfig,
    Replayer,
    fresh_frames,
    make_windows,
)
from trifinger_s2r.deploy.session import write_log
from trifinger_s2r.robot import cube

LIFTS_ONLY = ExcitationConfig(sweep_s=1.0, lifts=2, pushes_per_finger=0, seed=3)
HELD = ReplayConfig(max_windows=400, held_windows=True)


@pytest.fixture(scope="module")
def lift_log(tmp_path_factory):
    """One excitation of sweeps and two lifts on MuJoCo with the exact cube pose (no tracker noise)."""
    arrays = run_excitation_episode(MujocoRobot(position_noise_std_m=0.0), LIFTS_ONLY)
    path = tmp_path_factory.mktemp("lift") / "log.npz"
    write_log(path, arrays)
    return arrays, path


def _lift_heights_m(arrays) -> np.ndarray:
    """The cube's height above its resting height at each 50 Hz step of the lift phase."""
    controller = ExcitationController(LIFTS_ONLY)
    z = arrays["policy_object_position_m"][:, 2]
    return z[controller.sweep_steps: controller.sweep_steps + controller.lift_steps] - cube.HALF_EDGE_M


def test_each_lift_carries_the_cube_clear_of_the_table_and_sets_it_down(lift_log):
    """Two separate excursions above 2 cm (the target is 4 cm; the grip sags under the weight), the cube back on
    the table at the end of the phase."""
    heights = _lift_heights_m(lift_log[0])
    above = heights > 0.02
    starts = np.flatnonzero(np.diff(above.astype(int)) == 1)
    assert len(starts) == LIFTS_ONLY.lifts
    assert heights.max() < LIFTS_ONLY.lift_height_m + 0.01
    assert abs(heights[-1]) < 0.003


def test_the_replay_compares_the_cube_height_and_keeps_lift_windows(lift_log):
    """Windows that start with the cube on the table and see it lifted count as moved and hold its height."""
    windows = make_windows([read_log(lift_log[1])], ReplayConfig(max_windows=400))
    assert windows.cube_pos_m.shape[2] == 3
    from_table = windows.cube_pos0_m[:, 2] == cube.HALF_EDGE_M
    lifted = from_table & (windows.cube_pos_m[:, :, 2].max(axis=1) > cube.HALF_EDGE_M + 0.01)
    assert lifted.any()
    assert windows.cube_moved[lifted].all()


def test_the_duration_counts_the_lifts():
    cfg = ExcitationConfig(lifts=2)
    controller = ExcitationController(cfg)
    assert controller.total_steps == round(cfg.duration_s * 50)
    assert ExcitationConfig().duration_s == pytest.approx(cfg.duration_s - cfg.lift_s)
    assert ExcitationConfig().lift_s == 0.0


def test_without_held_windows_every_window_starts_on_the_table(lift_log):
    windows = make_windows([read_log(lift_log[1])], ReplayConfig(max_windows=400))
    assert np.all(windows.cube_pos0_m[:, 2] == cube.HALF_EDGE_M)


@pytest.mark.parametrize("field,value", [("lifts", -1), ("lift_height_m", 0.0), ("lift_approach_s", 0.0),
                                         ("lift_stages_s", (0.4, 0.0, 0.6, 0.8, 0.4))])
def test_bad_lift_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        ExcitationConfig(**{field: value})


def test_held_windows_start_at_the_frame_pose_moving_with_the_fingertips(lift_log):
    """A MuJoCo log replayed in MuJoCo with its own parameters: windows that start with the cube in the air (where
    the fingertips touch it) follow it within a few millimetres, and a cube 60% heavier falls measurably behind."""
    windows = make_windows([read_log(lift_log[1])], HELD)
    held = windows.cube_pos0_m[:, 2] > cube.HALF_EDGE_M + 0.01
    assert held.sum() >= 4
    assert np.abs(windows.cube_vel0_mps[~held]).max() == 0.0
    true, heavy = PhysicalParams(), PhysicalParams(cube_mass_kg=1.6 * PhysicalParams().cube_mass_kg)
    residuals = Replayer(windows, 2, HELD).residuals([true, heavy])
    n, k = len(windows), windows.joint_pos_rad.shape[1]
    cube_err_m = residuals[:, 2 * n * k * 9:].reshape(2, n, -1, 3)[:, held] * CUBE_STD_M
    rms_m = np.sqrt((cube_err_m**2).mean(axis=(1, 2, 3)))
    assert rms_m[0] < 0.004
    assert rms_m[1] > 1.5 * rms_m[0]


def test_a_held_cube_starts_where_the_fingertips_touch_it(lift_log):
    """Held frames of a noise-free log: the exact pose is kept (within 0.3 mm), and poses given 2 mm of tracker
    noise per axis are moved back towards it, less than half as far off in the median."""
    log = read_log(lift_log[1])
    rows, positions, quats = fresh_frames(log)
    held = np.flatnonzero(positions[:, 2] > cube.HALF_EDGE_M + HELD_ABOVE_M)
    assert len(held) >= 4
    tips, rng = Fingertips(), np.random.default_rng(0)
    kept, noisy, corrected = [], [], []
    for i in held:
        q = log.joint_pos_rad[rows[i]]
        kept.append(np.linalg.norm(tips.touching_position_m(q, positions[i], quats[i]) - positions[i]))
        for _ in range(4):
            off = positions[i] + rng.normal(0.0, 0.002, 3)
            noisy.append(np.linalg.norm(off - positions[i]))
            corrected.append(np.linalg.norm(tips.touching_position_m(q, off, quats[i]) - positions[i]))
    assert max(kept) < 3e-4
    assert np.median(corrected) < 0.5 * np.median(noisy)


def test_windows_of_a_held_cube_are_kept_before_windows_at_rest(lift_log):
    """A held cube that does not move still carries its weight on the fingers, the mass's evidence: under a window
    limit, held and moving windows are kept first; thinned, they still span the log from its first to its last."""
    log = [read_log(lift_log[1])]
    every = make_windows(log, HELD)
    informative = every.cube_held | every.cube_moved
    assert (every.cube_held & ~every.cube_moved).any() and (~informative).any()
    limit = int(informative.sum()) + 2
    chosen = make_windows(log, ReplayConfig(max_windows=limit, held_windows=True))
    assert len(chosen) == limit
    assert chosen.cube_held.sum() == every.cube_held.sum()
    assert (chosen.cube_held | chosen.cube_moved).sum() == informative.sum()
    thinned = make_windows(log, ReplayConfig(max_windows=4, held_windows=True))
    assert (thinned.cube_held | thinned.cube_moved).all()
    first, last = np.flatnonzero(informative)[[0, -1]]
    np.testing.assert_array_equal(thinned.torque_nm[[0, -1]], every.torque_nm[[first, last]])
