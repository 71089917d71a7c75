"""Measuring the cube's table friction by the pushes' force balance: only frames of a cube sliding flat under one tip
count, and the coefficient comes back from the joint torques given the cube's mass."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation_episode
from trifinger_s2r.calibration.logs import read_log
from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.calibration.slide_friction import MIN_SLIDE_FRAMES, simulator_table_friction, slide_rows
from trifinger_s2r.deploy.session import write_log
from trifinger_s2r.sim.contact import ContactModel

STICKY = ContactModel("elliptic", 10.0)
"""Friction that sticks: MuJoCo closest to Coulomb's law (PyBullet's and a real table's)."""
PUSHES_ONLY = ExcitationConfig(sweep_s=1.0, pushes_per_finger=2, seed=3)


def _slides(tmp_path, params: PhysicalParams, cfg: ExcitationConfig = PUSHES_ONLY, contact: ContactModel = STICKY):
    robot = MujocoRobot(params=params, contact=contact, position_noise_std_m=0.002)
    path = tmp_path / "log.npz"
    write_log(path, run_excitation_episode(robot, cfg))
    return slide_rows([read_log(path)])


@pytest.mark.parametrize("table_friction", [0.5, 1.0])
def test_a_pushed_cube_is_measured_near_its_table_friction(tmp_path, table_friction):
    """With the tracker's 2 mm noise and a motor 5% weak (known here), the force balance of the frames in which the
    cube slides finds Coulomb's coefficient within 12% of the parameter (MuJoCo's sticky friction still slides a
    little below mu N), and measuring our simulator the same way turns it back into the parameter within 8%."""
    params = PhysicalParams(cube_table_friction=table_friction, torque_scale=0.95)
    rows = _slides(tmp_path, params)
    assert rows.frames >= MIN_SLIDE_FRAMES
    coulomb, spread = rows.friction(params)
    assert coulomb == pytest.approx(table_friction, rel=0.12)
    assert 0 < spread < 0.1 * table_friction
    assert simulator_table_friction(coulomb, params, STICKY) == pytest.approx(table_friction, rel=0.08)


def test_a_cube_assumed_heavier_is_measured_less_grippy(tmp_path):
    """The same push force over a larger weight: the coefficient goes down as one over the assumed mass."""
    params = PhysicalParams(cube_table_friction=0.7)
    rows = _slides(tmp_path, params)
    right = rows.friction(params)[0]
    heavier = rows.friction(replace(params, cube_mass_kg=1.25 * params.cube_mass_kg))[0]
    assert heavier == pytest.approx(right / 1.25, rel=0.03)


def test_a_held_or_resting_cube_never_counts_as_sliding(tmp_path):
    """Sweeps (the cube at rest) and grasp-lift cycles (the cube gripped by three tips, carried, dropped back) give no
    sliding frame, and there is then nothing to measure."""
    rows = _slides(tmp_path, PhysicalParams(), ExcitationConfig(sweep_s=2.0, lifts=2, pushes_per_finger=0, seed=3))
    assert rows.frames == 0
    with pytest.raises(ValueError, match="sliding"):
        rows.friction(PhysicalParams())
