"""Tipping the cube over a bottom edge on the table (task.pivot): the tip plan, the phase, the contacts."""

from __future__ import annotations

import math

import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task import expert as ex
from trifinger_s2r.task import pivot
from trifinger_s2r.task.flip import FACE_AXES, bottom_face, face_normals
from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_from_yaw, quat_mul

ON = pivot.PivotConfig(enabled=True)


def _turned(axis, angle_rad: float, base: torch.Tensor | None = None) -> torch.Tensor:
    turn = quat_from_axis_angle(torch.tensor([axis]), torch.tensor([angle_rad]))
    return turn if base is None else quat_mul(turn, base)


def _rest(n: int = 1) -> torch.Tensor:
    return torch.full((n,), cube.HALF_EDGE_M)


def test_a_goal_a_quarter_turn_over_an_edge_is_one_tip_onto_that_face():
    flat = quat_from_yaw(torch.tensor([0.2]))
    goal = _turned((0.0, 1.0, 0.0), math.pi / 2, flat)  # turns the cube's +x face down... about world y
    cost, first = pivot.tip_plan(ON, flat, torch.zeros(1, 2), goal)
    assert cost.item() == pytest.approx(ON.tip_cost_rad, abs=1e-4)
    down = face_normals(goal)[0, :, 2].argmin()
    assert first.item() == down.item()


def test_no_tip_where_the_grasp_can_turn_what_is_left():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((0.0, 0.0, 1.0), ON.free_turn_rad * 0.8, flat)
    cost, first = pivot.tip_plan(ON, flat, torch.zeros(1, 2), goal)
    assert first.item() == -1 and cost.item() == 0.0


def test_an_upside_down_goal_takes_two_tips_the_way_that_stays_inside_the_radius():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((1.0, 0.0, 0.0), math.pi, flat)  # two tips about x: over the +y or the -y edge, twice
    start = torch.tensor([[0.0, -0.05]])  # two tips towards +y end 8 cm out; towards -y, 18 cm
    cost, first = pivot.tip_plan(ON, flat, start, goal)
    assert cost.item() == pytest.approx(2 * ON.tip_cost_rad, abs=1e-4)
    assert FACE_AXES[first.item()] == (0.0, 1.0, 0.0)
    cost_mirrored, first_mirrored = pivot.tip_plan(ON, flat, -start, goal)
    assert FACE_AXES[first_mirrored.item()] == (0.0, -1.0, 0.0)


def test_plans_keep_the_cube_inside_the_radius():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((0.0, 1.0, 0.0), math.pi / 2, flat)  # one tip onto +x, moving the cube by an edge along +x
    _, first_centre = pivot.tip_plan(ON, flat, torch.zeros(1, 2), goal)
    assert FACE_AXES[first_centre.item()] == (1.0, 0.0, 0.0)
    near_wall = torch.tensor([[ON.max_radius_m - 0.01, 0.0]])
    _, first_wall = pivot.tip_plan(ON, flat, near_wall, goal)
    assert FACE_AXES[first_wall.item()] != (1.0, 0.0, 0.0)


def test_a_plan_margin_forbids_tips_that_end_near_the_radius():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((0.0, 1.0, 0.0), math.pi / 2, flat)  # one tip onto +x, moving the cube by an edge along +x
    start = torch.tensor([[ON.max_radius_m - cube.EDGE_M - 0.01, 0.0]])  # that tip ends 1 cm inside the radius
    _, first = pivot.tip_plan(ON, flat, start, goal)
    assert FACE_AXES[first.item()] == (1.0, 0.0, 0.0)
    _, first_margin = pivot.tip_plan(pivot.PivotConfig(enabled=True, plan_margin_m=0.02), flat, start, goal)
    assert FACE_AXES[first_margin.item()] != (1.0, 0.0, 0.0)


def test_a_radius_cost_prefers_tips_that_end_nearer_the_centre():
    """An upside-down goal: two tips over the +y edges or two over the -y edges leave the same angle; from a start
    on +y the first ends further out, so a cost per metre from the centre picks the -y tips."""
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((1.0, 0.0, 0.0), math.pi, flat)
    start = torch.tensor([[0.0, 0.02]])
    cost, _ = pivot.tip_plan(ON, flat, start, goal)
    cfg = pivot.PivotConfig(enabled=True, radius_cost_rad_per_m=2.0)
    cost_radius, first = pivot.tip_plan(cfg, flat, start, goal)
    assert FACE_AXES[first.item()] == (0.0, -1.0, 0.0)
    end_m = 2 * cube.EDGE_M - 0.02  # two edges towards -y
    assert cost_radius.item() == pytest.approx(cost.item() + 2.0 * end_m, abs=1e-4)


def test_fingers_let_go_of_a_cube_tipped_past_the_let_go_tilt_only_where_asked():
    flat = quat_from_yaw(torch.tensor([0.0]))
    pos = torch.tensor([[0.0, 0.0, cube.HALF_EDGE_M + 0.01]])
    goal = flat  # the cube's own bottom face is the goal's: a cube on an edge is let fall back, not tipped on
    tilted = _turned((0.0, 1.0, 0.0), 0.7, flat)
    tipping, _, falling = pivot.pivot_face(pivot.PivotConfig(enabled=True, let_go_tilt_rad=0.6), pos, tilted, goal,
                                           _rest())
    assert not tipping.item() and falling.item()
    assert not pivot.pivot_face(ON, pos, tilted, goal, _rest())[2].item()  # the default never lets go
    less = _turned((0.0, 1.0, 0.0), 0.5, flat)
    assert not pivot.pivot_face(pivot.PivotConfig(enabled=True, let_go_tilt_rad=0.6), pos, less, goal,
                                _rest())[2].item()


def test_a_cube_on_an_edge_is_tipped_on_before_45_degrees_and_let_fall_after():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((0.0, 1.0, 0.0), math.pi / 2, flat)  # +x down
    pos = torch.tensor([[0.0, 0.0, cube.HALF_EDGE_M + 0.01]])
    before = _turned((0.0, 1.0, 0.0), math.radians(30), flat)
    tipping, face, _ = pivot.pivot_face(ON, pos, before, goal, _rest())
    assert tipping.item() and FACE_AXES[face.item()] == (1.0, 0.0, 0.0)
    after = _turned((0.0, 1.0, 0.0), math.radians(60), flat)  # +x is now the lowest face
    assert bottom_face(after).item() == face.item()
    assert not pivot.pivot_face(ON, pos, after, goal, _rest())[0].item()


def test_nothing_is_tipped_when_disabled_lifted_or_far_out():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((0.0, 1.0, 0.0), math.pi / 2, flat)
    on_table = torch.tensor([[0.0, 0.0, cube.HALF_EDGE_M]])
    assert pivot.pivot_face(ON, on_table, flat, goal, _rest())[0].item()
    assert not pivot.pivot_face(pivot.PivotConfig(), on_table, flat, goal, _rest())[0].item()
    lifted = on_table + torch.tensor([0.0, 0.0, ON.low_m + 0.005])
    assert not pivot.pivot_face(ON, lifted, flat, goal, _rest())[0].item()
    far = torch.tensor([[ON.max_radius_m + 0.01, 0.0, cube.HALF_EDGE_M]])
    assert not pivot.pivot_face(ON, far, flat, goal, _rest())[0].item()


def test_the_contacts_lie_on_the_pushed_and_pinched_faces_and_press_inwards():
    quat = quat_from_yaw(torch.tensor([0.3]))
    pos = torch.tensor([[0.01, -0.02, cube.HALF_EDGE_M]])
    face = torch.tensor([0])  # tip onto +x
    rays = ex.approach_directions(pos)
    contacts, outward, press, ok = pivot.pivot_contacts(ON, pos, quat, face, rays,
                                                        lambda c, o: torch.ones(c.shape[:-1], dtype=torch.bool))
    assert ok.item()
    t = face_normals(quat)[0, 0]
    assert torch.allclose(ex.surface_distance_m(contacts, pos, quat), torch.zeros(1, 3), atol=1e-6)
    pushing = (outward[0] @ t).argmin()
    assert torch.allclose(outward[0, pushing], -t, atol=1e-6)
    pinching = [f for f in range(3) if f != pushing]
    assert torch.allclose(outward[0, pinching[0]], -outward[0, pinching[1]], atol=1e-6)
    assert all(abs(float(outward[0, f] @ t)) < 1e-6 for f in pinching)
    assert all(float(press[0, f] @ outward[0, f]) < 0 for f in range(3))  # every tip presses into its face
    assert float(press[0, pushing, 2]) > 0  # the push lifts
    assert (contacts[0, pinching, 2] < pos[0, 2]).all()  # the pinch is low, near the edge
    # each finger lies outside its own face: its ray points along the face's outward normal
    assert all(float(outward[0, f, :2] @ rays[f, :2]) > 0 for f in range(3))


def test_a_pivot_that_no_finger_assignment_can_reach_is_not_feasible():
    quat = quat_from_yaw(torch.tensor([0.0]))
    pos = torch.tensor([[0.0, 0.0, cube.HALF_EDGE_M]])
    nowhere = pivot.pivot_contacts(ON, pos, quat, torch.tensor([1]), ex.approach_directions(pos),
                                   lambda c, o: torch.zeros(c.shape[:-1], dtype=torch.bool))
    assert not nowhere[3].item()


def test_the_pivot_config_is_validated_and_set_through_expert_with():
    cfg = ex.expert_with(ex.ExpertConfig(), ["pivot.enabled=true", "pivot.max_tips=2"])
    assert cfg.pivot.enabled and cfg.pivot.max_tips == 2
    with pytest.raises(ValueError, match="expert.pivot.max_tips"):
        pivot.PivotConfig(max_tips=0)
    with pytest.raises(ValueError, match="expert.pivot.pinch_inset_m"):
        pivot.PivotConfig(pinch_inset_m=0.04)
    with pytest.raises(ValueError, match="expert.pivot.push_up_rad"):
        pivot.PivotConfig(push_up_rad=2.0)
    with pytest.raises(ValueError, match="expert.pivot.plan_margin_m"):
        pivot.PivotConfig(plan_margin_m=0.2)
    with pytest.raises(ValueError, match="radius_cost_rad_per_m"):
        pivot.PivotConfig(radius_cost_rad_per_m=-1.0)
    with pytest.raises(ValueError, match="pivot.nonsense"):
        ex.expert_with(ex.ExpertConfig(), ["pivot.nonsense=1"])
