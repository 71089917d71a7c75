"""The excitation's lifts: the cube is carried off the table and set down again, the replay compares its height,
and lift windows are among the windows the fit uses."""

from __future__ import annotations

import numpy as np
import pytest

from trifinger_s2r.calibration.excitation import ExcitationConfig, ExcitationController, run_excitation_episode
from trifinger_s2r.calibration.logs import read_log
from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
from trifinger_s2r.calibration.replay import ReplayConfig, make_windows
from trifinger_s2r.deploy.session import write_log
from trifinger_s2r.robot import cube

LIFTS_ONLY = ExcitationConfig(sweep_s=1.0, pushes_per_finger=0, seed=3)


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
    """Windows start from the cube at rest; those that see it lifted count as moved and hold its height."""
    windows = make_windows([read_log(lift_log[1])], ReplayConfig(max_windows=200))
    assert windows.cube_pos_m.shape[2] == 3
    lifted = windows.cube_pos_m[:, :, 2].max(axis=1) > cube.HALF_EDGE_M + 0.01
    assert lifted.any()
    assert windows.cube_moved[lifted].all()


def test_the_duration_counts_the_lifts():
    cfg = ExcitationConfig()
    controller = ExcitationController(cfg)
    assert controller.total_steps == round(cfg.duration_s * 50)
    assert ExcitationConfig(lifts=0).duration_s == pytest.approx(cfg.duration_s - cfg.lift_s)


@pytest.mark.parametrize("field,value", [("lifts", -1), ("lift_height_m", 0.0), ("lift_approach_s", 0.0),
                                         ("lift_stages_s", (0.4, 0.0, 0.6, 0.8, 0.4))])
def test_bad_lift_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        ExcitationConfig(**{field: value})
