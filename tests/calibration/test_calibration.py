"""Calibration: synthetic MuJoCo logs with known parameters are fitted back; bad logs are one line and write
nothing; a calibration file becomes training's randomisation ranges and is recorded in the config."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation
from trifinger_s2r.calibration.fit import FitConfig, fit_camera_delay, fit_physics
from trifinger_s2r.calibration.held_weight import MIN_HELD_FRAMES
from trifinger_s2r.calibration.logs import LogError, find_logs, read_log
from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.ranges import randomization_from_calibration
from trifinger_s2r.calibration.replay import ReplayConfig
from trifinger_s2r.calibration.slide_friction import MIN_SLIDE_FRAMES
from trifinger_s2r.cli import main

TRUE = PhysicalParams(torque_scale=0.9, safety_kd_scale=1.2, joint_damping_upper=0.005, joint_damping_middle=0.003,
                      joint_damping_lower=0.002, joint_friction_upper_nm=0.004, joint_friction_middle_nm=0.003,
                      joint_friction_lower_nm=0.002, cube_mass_kg=0.11, cube_table_friction=0.7,
                      finger_cube_friction=0.5)
"""The fingertips grip with 0.5, as PyBullet's do (0.5 x the cube's 1.0), against our nominal 1.0."""
TRUE_DELAY_S = 0.083


@pytest.fixture(scope="module")
def synthetic_logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    robot = MujocoRobot(params=TRUE, camera_delay_s=TRUE_DELAY_S, position_noise_std_m=0.002)
    run_excitation(robot, ExcitationConfig(), 1, folder)
    return folder


class TestFitRecoversKnownParameters:
    def test_a_synthetic_mujoco_log_is_fitted_back_within_tolerance(self, synthetic_logs):
        """Torque scale within 5%, safety damping, cube mass, cube-table and finger-cube friction within 20%, and the
        replay error falls. The finger-cube friction is half the nominal: a solver started at the nominal stays in
        the basin near it (0.89 on this log), the second start at 0.5 finds it."""
        logs = [read_log(p) for p in find_logs([synthetic_logs])]
        result = fit_physics(logs, FitConfig(replay=ReplayConfig(max_windows=40)))
        assert result.params.finger_cube_friction == pytest.approx(TRUE.finger_cube_friction, rel=0.2)
        assert [s["finger_cube_friction_start"] for s in result.starts] == [1.0, 0.5]
        assert result.params.torque_scale == pytest.approx(TRUE.torque_scale, rel=0.05)
        assert result.params.safety_kd_scale == pytest.approx(TRUE.safety_kd_scale, rel=0.2)
        assert result.params.cube_mass_kg == pytest.approx(TRUE.cube_mass_kg, rel=0.2)
        assert result.params.cube_table_friction == pytest.approx(TRUE.cube_table_friction, rel=0.2)
        assert result.after["normalised_rms"] < 0.5 * result.before["normalised_rms"]
        assert result.windows_cube_moved > 0
        assert result.held_frames == 0  # no lifts: the replay fits the mass
        assert result.slide_frames == 0 and result.coulomb_table_friction is None  # and, unweighed, the friction

    def test_lifts_separate_a_cube_mass_far_from_the_prior_from_its_table_friction(self, tmp_path):
        """A push meets the cube's mass and table friction as their product, so the fit's prior decides the split
        (pushes alone: 0.104 kg for a 0.14 kg cube, docs/benchmarks.md); with the excitation's lifts and held-cube
        windows the mass is weighed (calibration.held_weight) within 5%, and the table friction measured by the pushes'
    force balance at that mass (calibration.slide_friction) within 20%."""
        true = PhysicalParams(**{**asdict(TRUE), "cube_mass_kg": 0.14, "cube_table_friction": 0.5,
                                 "finger_cube_friction": 1.0})
        robot = MujocoRobot(params=true, camera_delay_s=TRUE_DELAY_S, position_noise_std_m=0.002)
        run_excitation(robot, ExcitationConfig(lifts=2), 1, tmp_path)
        logs = [read_log(p) for p in find_logs([tmp_path])]
        result = fit_physics(logs, FitConfig(replay=ReplayConfig(max_windows=40, held_windows=True)))
        assert result.held_frames >= MIN_HELD_FRAMES
        assert result.slide_frames >= MIN_SLIDE_FRAMES
        assert result.params.cube_mass_kg == pytest.approx(true.cube_mass_kg, rel=0.05)
        assert result.params.cube_table_friction == pytest.approx(true.cube_table_friction, rel=0.2)
        assert result.params.torque_scale == pytest.approx(true.torque_scale, rel=0.05)

    def test_the_camera_delay_is_the_smallest_arrival_lag(self, synthetic_logs):
        """Frames arrive 83 ms after capture: recovered within 1 ms."""
        delay_s, spread_s, jitter_s = fit_camera_delay([read_log(p) for p in find_logs([synthetic_logs])])
        assert delay_s == pytest.approx(TRUE_DELAY_S, abs=0.001)
        assert spread_s <= 0.001 and jitter_s == pytest.approx(0.0, abs=1e-9)


def _copy_log(src, dst, **changes) -> None:
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, **arrays)


class TestBadLogsAreOneLine:
    @pytest.fixture
    def log(self, synthetic_logs):
        return find_logs([synthetic_logs])[0]

    def _refused(self, tmp_path, capsys, logs, expected: str) -> None:
        out = tmp_path / "cal.json"
        with pytest.raises(SystemExit) as err:
            main(["calibrate", "--logs", str(logs), "--out", str(out)])
        message = str(err.value)
        assert expected in message and "\n" not in message
        assert not out.exists()

    def test_a_missing_folder(self, tmp_path, capsys):
        self._refused(tmp_path, capsys, tmp_path / "nowhere", "nowhere: no such folder")

    def test_a_truncated_file(self, tmp_path, capsys, log):
        bad = tmp_path / "logs" / "episode_000" / "log.npz"
        bad.parent.mkdir(parents=True)
        bad.write_bytes(log.read_bytes()[:5000])
        self._refused(tmp_path, capsys, tmp_path / "logs", f"{bad}: not a readable npz file")

    def test_another_format_version(self, tmp_path, capsys, log):
        bad = tmp_path / "logs" / "log.npz"
        _copy_log(log, bad, format_version=None)
        self._refused(tmp_path, capsys, tmp_path / "logs", f"{bad}: log format version none (version 1)")

    def test_non_finite_values(self, tmp_path, capsys, log):
        bad = tmp_path / "logs" / "log.npz"
        with np.load(log) as data:
            position = data["robot_position_rad"].copy()
        position[100, 3] = np.nan
        _copy_log(log, bad, robot_position_rad=position)
        self._refused(tmp_path, capsys, tmp_path / "logs", f"{bad}: robot_position_rad holds non-finite values")

    def test_a_short_log(self, tmp_path, log):
        bad = tmp_path / "log.npz"
        with np.load(log) as data:
            cut = {k: data[k][:100] for k in data.files if k.startswith("robot_")}
        _copy_log(log, bad, **cut)
        with pytest.raises(LogError, match="100 robot steps"):
            read_log(bad)


CALIBRATION = {
    "format": "trifinger-s2r-calibration", "version": 1, "fit_error_before": 10.0, "fit_error_after": 1.0,
    "episodes": 1,
    "params": {**{n: {"value": v, "spread": 0.0} for n, v in asdict(PhysicalParams(
        torque_scale=0.9, safety_kd_scale=1.5, joint_damping_upper=0.01, joint_damping_middle=0.01,
        joint_damping_lower=0.01, cube_mass_kg=0.12, cube_table_friction=0.3, finger_cube_friction=0.8)).items()},
        "camera_delay_s": {"value": 0.08, "spread": 0.001}, "camera_jitter_s": {"value": 0.02, "spread": 0.001}},
}


class TestCalibrationToTraining:
    def test_ranges_are_centred_on_the_fitted_values(self):
        """Mass 0.12 kg -> scale centred on 0.12 / 0.094; the cube material 2 * 0.8 - 1 = 0.6; the table's
        (2 * 0.3 - 0.6) / 0.1 = 0 -> clamped to 0.05; camera delay from 79 ms to 80 + 20 + 1 ms."""
        from trifinger_s2r.task.config import RandomizationConfig

        dr = randomization_from_calibration(CALIBRATION, RandomizationConfig())
        mid = lambda u: 0.5 * (u.low + u.high)
        assert mid(dr.cube_mass_scale) == pytest.approx(0.12 / 0.094)
        assert mid(dr.cube_friction_scale) == pytest.approx(0.6)
        assert mid(dr.safety_kd_scale) == pytest.approx(1.5)
        assert mid(dr.joint_damping) == pytest.approx(0.01)
        assert dr.torque_limit_scale.high <= 1.0
        assert dr.camera.delay_s.low == pytest.approx(0.079) and dr.camera.delay_s.high == pytest.approx(0.101)

    def test_train_records_the_calibration_in_its_config(self, tmp_path):
        """The config saved with a run (and exported with its policy) round-trips the calibration and ranges."""
        from trifinger_s2r.cli import _with_calibration
        from trifinger_s2r.train.config import config_from_dict, preset

        path = tmp_path / "cal.json"
        path.write_text(json.dumps(CALIBRATION))
        cfg = _with_calibration(preset("push-cpu"), str(path))
        again = config_from_dict(json.loads(json.dumps(asdict(cfg))))
        assert again == cfg
        assert json.loads(again.calibration)["params"]["cube_mass_kg"]["value"] == 0.12
        mass = again.env.task.randomization.cube_mass_scale
        assert mass.low < 0.12 / 0.094 < mass.high

    def test_a_bad_calibration_file_is_one_line(self, tmp_path):
        from trifinger_s2r.cli import _with_calibration
        from trifinger_s2r.train.config import preset

        path = tmp_path / "cal.json"
        path.write_text(json.dumps(replace_version(CALIBRATION, 7)))
        with pytest.raises(SystemExit, match="calibration version 7, expected 1"):
            _with_calibration(preset("push-cpu"), str(path))


def replace_version(calibration: dict, version: int) -> dict:
    return {**calibration, "version": version}
