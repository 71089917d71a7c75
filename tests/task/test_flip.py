"""Tipping the cube onto its goal's bottom face (task.flip): which face is down, the tipped orientation, the phases."""

from __future__ import annotations

import math

import pytest
import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task import expert as ex
from trifinger_s2r.task import flip
from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_from_yaw, random_quat

ON = flip.FlipConfig(enabled=True)


def _turned(axis: tuple[float, float, float], angle_rad: float, n: int = 1) -> torch.Tensor:
    return quat_from_axis_angle(torch.tensor([axis] * n), torch.full((n,), angle_rad))


def test_the_bottom_face_is_the_one_pointing_down():
    flat = quat_from_yaw(torch.tensor([0.0, 1.0]))
    assert flip.bottom_face(flat).tolist() == [5, 5]  # -z
    on_its_side = _turned((1.0, 0.0, 0.0), math.pi / 2)  # the cube's +y axis now points up, +z to -y
    assert flip.FACE_AXES[int(flip.bottom_face(on_its_side))] == (0.0, -1.0, 0.0)


def test_tipping_turns_the_chosen_face_straight_down_about_a_horizontal_axis():
    quats = random_quat(64, torch.Generator().manual_seed(3))
    face = torch.arange(64) % 6
    tipped = flip.tip_over_quat(quats, face)
    normals = flip.face_normals(tipped)[torch.arange(64), face]
    before = flip.face_normals(quats)[torch.arange(64), face]
    up = before[:, 2] > math.sqrt(1 - 0.2**2)
    # a face pointing up turns by 90 degrees first, every other one ends straight down
    assert torch.allclose(normals[~up][:, 2], torch.full_like(normals[~up][:, 2], -1.0), atol=1e-4)
    assert torch.allclose(normals[up][:, 2], torch.zeros_like(normals[up][:, 2]), atol=0.2)
    # about a horizontal axis: the face's heading is kept
    tilted = ~up & (before[:, 2] < 0.95) & (before[:, 2] > -0.95)
    assert tilted.any()


def test_a_face_pointing_up_is_tipped_onto_a_side_first():
    flat = quat_from_yaw(torch.tensor([0.3]))
    tipped = flip.tip_over_quat(flat, torch.tensor([2]))  # +z, the top
    assert abs(float(flip.face_normals(tipped)[0, 2, 2])) < 1e-5
    assert int(flip.bottom_face(tipped)) not in (2, 5)


def _phase(cube_quat, goal_quat, height_above_rest_m, cfg=ON):
    n = cube_quat.shape[0]
    rest = torch.full((n,), cube.HALF_EDGE_M)
    pos = torch.tensor([[0.12, 0.0, 0.0]] * n)
    pos[:, 2] = rest + height_above_rest_m
    return flip.flip_phase(cfg, pos, cube_quat, goal_quat, rest)


def test_a_low_cube_whose_goal_needs_another_bottom_is_tipped_near_the_centre():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((1.0, 0.0, 0.0), math.pi / 2)  # the goal's bottom is the cube's -y face
    tipping, pos, quat, releasing, raising = _phase(flat, goal, 0.0)
    assert tipping.item() and raising.item() and not releasing.item()
    assert pos[0, :2].norm() == pytest.approx(ON.max_radius_m) and pos[0, 2] == pytest.approx(
        cube.HALF_EDGE_M + ON.hold_height_m)
    assert flip.bottom_face(quat).item() == flip.bottom_face(goal).item()
    raised = _phase(flat, goal, ON.hold_height_m)
    assert raised[0].item() and not raised[4].item()  # at the height, it turns


def test_nothing_is_tipped_when_disabled_high_or_within_the_grasp_s_turn():
    flat = quat_from_yaw(torch.tensor([0.0]))
    goal = _turned((1.0, 0.0, 0.0), math.pi / 2)
    assert not _phase(flat, goal, 0.0, flip.FlipConfig())[0].item()
    assert not _phase(flat, goal, ON.low_m + 0.01)[0].item()
    small = _turned((1.0, 0.0, 0.0), 0.6)  # the goal's bottom face is the cube's own: turned in the grasp
    tipping, _, _, releasing, _ = _phase(flat, small, 0.0)
    assert not tipping.item() and not releasing.item()


def test_a_tipped_cube_is_let_go_once_it_would_fall_onto_the_goal_s_bottom():
    goal = quat_from_yaw(torch.tensor([0.0]))  # flat: its bottom is -z
    nearly = _turned((1.0, 0.0, 0.0), 0.4)  # the -z face within release_tilt_rad of straight down
    tipping, _, _, releasing, _ = _phase(nearly, goal, ON.hold_height_m)
    assert releasing.item() and not tipping.item()
    halfway = _turned((1.0, 0.0, 0.0), 0.7)  # past 45 degrees from the side, still tilted: keep tipping
    assert _phase(halfway, goal, ON.hold_height_m)[0].item()


def test_flip_settings_reach_the_config_and_are_checked():
    cfg = ex.expert_with(ex.ExpertConfig(), ["flip.enabled=true", "flip.min_tilt_rad=1.2"])
    assert cfg.flip.enabled and cfg.flip.min_tilt_rad == 1.2
    with pytest.raises(ValueError, match="flip.release_tilt_rad"):
        ex.expert_with(ex.ExpertConfig(), ["flip.release_tilt_rad=0"])
    with pytest.raises(ValueError, match="flip.hold_height_m"):
        flip.FlipConfig(hold_height_m=0.03, low_m=0.02)
