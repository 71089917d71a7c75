"""`bench friction`: the force that slides a resting object, in our model and on PyBullet (physical facts)."""

from __future__ import annotations

import pytest

from trifinger_s2r.bench.friction_breakaway import (
    GRAVITY_MPS2,
    MOVED_M,
    breakaway,
    mujoco_displacements_m,
    pybullet_displacements_m,
)
from trifinger_s2r.robot import cube
from trifinger_s2r.sim.contact import ContactModel

WEIGHT_N = cube.MASS_KG * GRAVITY_MPS2


def test_mujoco_cube_slides_near_the_pairs_friction_and_not_far_below():
    """Our cube-table pair has friction 0.55: at 30% of the weight the cube stays (it creeps by about a millimetre),
    at 70% it slides."""
    mass, moved = mujoco_displacements_m("cube", [0.0, 0.3 * WEIGHT_N, 0.7 * WEIGHT_N])
    assert mass == pytest.approx(cube.MASS_KG)
    assert abs(moved[0]) < 1e-4 and abs(moved[1]) < MOVED_M and moved[2] > 0.05
    assert 0.4 < breakaway(mass, [0.3 * WEIGHT_N, 0.7 * WEIGHT_N], moved[1:])["effective_friction"] <= 0.7


def test_stiff_contacts_stop_the_creep_below_the_friction_limit():
    """The same pair (friction 0.55) pushed at 50% of the weight: the soft pyramidal cone lets it creep millimetres
    in 1 s, an elliptic cone with impratio 10 holds it to a fraction of a millimetre; above the limit both slide."""
    forces = [0.5 * WEIGHT_N, 0.7 * WEIGHT_N]
    _, soft = mujoco_displacements_m("cube", forces)
    _, stiff = mujoco_displacements_m("cube", forces, ContactModel("elliptic", 10.0))
    assert soft[0] > 0.004 and stiff[0] < 0.001
    assert stiff[1] > 0.05


def test_pybullet_cube_sticks_until_about_its_weight():
    """trifinger_simulation's cube on its table: friction about 1 (no creep below it)."""
    mass, moved = pybullet_displacements_m("cube", [0.8 * WEIGHT_N, 1.2 * WEIGHT_N])
    assert mass == pytest.approx(cube.MASS_KG)
    assert abs(moved[0]) < 1e-3 and moved[1] > 0.05


def test_breakaway_reports_none_when_nothing_slid():
    assert breakaway(0.1, [0.1, 0.2], [0.0, 0.001])["breakaway_force_n"] is None
