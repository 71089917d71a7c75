"""Weighing a held cube by the joint torques: only frames of a cube clear of the table count, and the mass comes back
whatever the contact between the tips and the cube is like."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from trifinger_s2r.calibration.excitation import ExcitationConfig, run_excitation_episode
from trifinger_s2r.calibration.held_weight import MIN_HELD_FRAMES, held_rows, lowest_corner_m
from trifinger_s2r.calibration.logs import read_log
from trifinger_s2r.calibration.mujoco_robot import MujocoRobot
from trifinger_s2r.calibration.params import PhysicalParams
from trifinger_s2r.deploy.session import write_log
from trifinger_s2r.robot import cube

LIFTS_ONLY = ExcitationConfig(sweep_s=1.0, lifts=2, pushes_per_finger=0, seed=3)


def test_a_cube_tipped_onto_an_edge_is_not_clear_of_the_table():
    """Flat at rest: its lowest corner on the table. On an edge its centre stands 13 mm higher (more than the
    replay's 1 cm 'in the air'), yet the table still carries it."""
    flat = Rotation.identity().as_quat()
    on_edge = Rotation.from_euler("x", 45, degrees=True).as_quat()
    assert lowest_corner_m(np.array([0.0, 0.0, cube.HALF_EDGE_M]), flat) == pytest.approx(0.0, abs=1e-9)
    assert lowest_corner_m(np.array([0.0, 0.0, cube.HALF_EDGE_M * np.sqrt(2)]), on_edge) == pytest.approx(0.0,
                                                                                                           abs=1e-9)
    assert lowest_corner_m(np.array([0.0, 0.0, cube.HALF_EDGE_M + 0.02]), flat) == pytest.approx(0.02)


def _weighed(tmp_path, params: PhysicalParams) -> tuple[float, float, int]:
    robot = MujocoRobot(params=params, position_noise_std_m=0.002)
    path = tmp_path / "log.npz"
    write_log(path, run_excitation_episode(robot, LIFTS_ONLY))
    rows = held_rows([read_log(path)])
    return (*rows.mass_kg(params), rows.frames)


@pytest.mark.parametrize("contact_timeconst_s", [0.02, 0.005])
def test_a_held_cube_is_weighed_within_3_percent_under_soft_or_stiff_contacts(tmp_path, contact_timeconst_s):
    """A 120 g cube on a robot with a weaker motor (torque scale 0.95), the tracker's 2 mm noise: the tips' forces
    from the joint torques carry its weight, whether the contact is MuJoCo's default or four times stiffer."""
    params = PhysicalParams(cube_mass_kg=0.12, torque_scale=0.95, contact_timeconst_s=contact_timeconst_s)
    mass_kg, spread_kg, frames = _weighed(tmp_path, params)
    assert frames >= MIN_HELD_FRAMES
    assert mass_kg == pytest.approx(0.12, rel=0.03)
    assert 0 < spread_kg < 0.006


def test_a_weaker_motor_than_assumed_weighs_the_cube_lighter(tmp_path):
    """The balance scales the commanded torques by the motor's torque scale: assuming the motor 5% stronger than it
    is makes the tips push harder, so the cube weighs more (about 3 g per percent here)."""
    params = PhysicalParams(cube_mass_kg=0.094)
    robot = MujocoRobot(params=params, position_noise_std_m=0.0)
    path = tmp_path / "log.npz"
    write_log(path, run_excitation_episode(robot, LIFTS_ONLY))
    rows = held_rows([read_log(path)])
    right = rows.mass_kg(params)[0]
    stronger = rows.mass_kg(PhysicalParams(torque_scale=1.05))[0]
    assert right == pytest.approx(0.094, rel=0.03)
    assert stronger > right + 0.005
