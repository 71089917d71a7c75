import math

import pytest
import torch

from trifinger_s2r.task import curriculum as cur
from trifinger_s2r.task import goals
from trifinger_s2r.task.config import TaskConfig, for_evaluation
from trifinger_s2r.task.geometry import quat_conjugate, quat_mul, random_quat, rotation_angle_between


@pytest.mark.parametrize(
    ("field", "value"),
    [("promote_success", 0.0), ("promote_success", 1.5), ("stages", ("lift", "spin")), ("stages", ("yaw", "lift")),
     ("stages", ()), ("growth", 1.0), ("window_episodes", 0), ("initial_tilt_rad", 4.0), ("initial_yaw_rad", 0.0),
     ("full_difficulty_share", 1.0), ("lift_min_height_m", 0.2), ("promote_decay", 0.0), ("promote_decay", 1.2)],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"curriculum.{field}"):
        cur.CurriculumConfig(**{field: value})


def test_curriculum_needs_level_4():
    with pytest.raises(ValueError, match="level 4"):
        TaskConfig(level=3, curriculum=cur.CurriculumConfig(enabled=True))


def test_evaluation_turns_training_only_starts_off():
    task = TaskConfig(curriculum=cur.CurriculumConfig(enabled=True), grasp_start_share=0.5)
    judged = for_evaluation(task)
    assert not judged.curriculum.enabled and judged.grasp_start_share == 0.0 and judged.level == 4


def _feed(cfg, state, success_rate, episodes, batch=64):
    for _ in range(episodes // batch):
        state = cur.record_episodes(cfg, state, round(success_rate * batch), batch)
    return state


def test_promotion_follows_the_success_stream():
    cfg = cur.CurriculumConfig(enabled=True, promote_success=0.5, window_episodes=256, initial_tilt_rad=1.0,
                               growth=2.0)
    state = _feed(cfg, cur.initial_state(cfg), 0.3, 5000)
    assert cur.stage_name(cfg, state) == "lift" and state.promotions == 0  # never promoted below the threshold
    seen = []
    for _ in range(6):
        state = _feed(cfg, state, 0.7, 256)
        seen.append((cur.stage_name(cfg, state), state.tilt_rad))
    assert seen == [("yaw", 1.0), ("tilt", 1.0), ("tilt", 2.0), ("tilt", math.pi), ("so3", math.pi), ("so3", math.pi)]
    assert cur.is_final(cfg, state) and state.promotions == 5
    assert cur.stage_name(cfg, _feed(cfg, state, 1.0, 4096)) == "so3"
    assert cur.difficulty(cfg, state) == 3.0


def test_a_decaying_threshold_promotes_harder_stages_at_lower_success():
    cfg = cur.CurriculumConfig(enabled=True, promote_success=0.4, promote_decay=0.5, window_episodes=256,
                               initial_tilt_rad=1.0, growth=4.0)
    state = cur.initial_state(cfg)
    assert cur.promotion_threshold(cfg, state) == 0.4
    state = _feed(cfg, state, 0.3, 2048)
    assert state.promotions == 0  # 30% is below the first threshold
    state = _feed(cfg, state, 0.45, 256)
    assert (cur.stage_name(cfg, state), cur.promotion_threshold(cfg, state)) == ("yaw", 0.2)
    state = _feed(cfg, state, 0.25, 256)  # enough now: 0.2
    assert cur.stage_name(cfg, state) == "tilt" and cur.promotion_threshold(cfg, state) == pytest.approx(0.1)
    state = _feed(cfg, state, 0.05, 4096)
    assert cur.stage_name(cfg, state) == "tilt" and state.tilt_rad == 1.0  # 5% stays below 10%


def test_the_yaw_range_grows_before_the_tilt_stage():
    cfg = cur.CurriculumConfig(enabled=True, promote_success=0.5, window_episodes=256, initial_yaw_rad=1.0,
                               initial_tilt_rad=1.0, growth=2.0)
    state = cur.initial_state(cfg)
    seen = []
    for _ in range(5):
        state = _feed(cfg, state, 0.7, 256)
        seen.append((cur.stage_name(cfg, state), state.yaw_rad))
    assert seen == [("yaw", 1.0), ("yaw", 2.0), ("yaw", math.pi), ("tilt", math.pi), ("tilt", math.pi)]
    assert state.tilt_rad == 2.0 and state.promotions == 5
    assert cur.difficulty(cfg, cur.CurriculumState(stage_index=1, yaw_rad=math.pi / 2)) == 1.5


def test_states_saved_before_the_yaw_range_existed_load_with_any_yaw():
    old = {"stage_index": 1, "tilt_rad": 0.5, "window_successes": 3, "window_episodes": 10, "promotions": 1}
    assert cur.CurriculumState.from_dict(old).yaw_rad == math.pi
    state = cur.CurriculumState(stage_index=1, yaw_rad=0.7)
    assert cur.CurriculumState.from_dict(state.to_dict()) == state


def test_promotion_starts_a_fresh_window():
    cfg = cur.CurriculumConfig(enabled=True, promote_success=0.5, window_episodes=100)
    state = cur.record_episodes(cfg, cur.initial_state(cfg), 60, 100)
    assert (state.stage_index, state.window_successes, state.window_episodes) == (1, 0, 0)


def test_a_window_below_threshold_keeps_half_its_evidence():
    cfg = cur.CurriculumConfig(enabled=True, promote_success=0.5, window_episodes=100)
    state = cur.record_episodes(cfg, cur.initial_state(cfg), 40, 100)
    assert (state.window_successes, state.window_episodes, state.stage_index) == (20, 50, 0)


def test_stages_can_be_skipped():
    cfg = cur.CurriculumConfig(enabled=True, stages=("lift", "so3"), window_episodes=10)
    state = cur.record_episodes(cfg, cur.initial_state(cfg), 10, 10)
    assert cur.stage_name(cfg, state) == "so3"


def _goals(stage: str, tilt_rad: float = 0.5, n: int = 4000, share: float = 0.0, lift_min_m: float = goals.MIN_HEIGHT_M,
           yaw_rad: float = math.pi):
    cfg = cur.CurriculumConfig(enabled=True, full_difficulty_share=share, lift_min_height_m=lift_min_m)
    state = cur.CurriculumState(stage_index=cur.STAGES.index(stage), tilt_rad=tilt_rad, yaw_rad=yaw_rad)
    g = torch.Generator().manual_seed(0)
    cube_quat = random_quat(n, g)
    pos, quat, full = cur.sample_goals(cfg, state, cube_quat, g)
    return cube_quat, pos, quat, full


def _tilt_of(relative: torch.Tensor) -> torch.Tensor:
    """Angle between the world's z axis and z rotated by a relative rotation."""
    x, y = relative[:, 0], relative[:, 1]
    return torch.arccos((1 - 2 * (x * x + y * y)).clamp(-1, 1))


def test_lift_goals_keep_the_cube_orientation_at_level_3_positions():
    cube_quat, pos, quat, full = _goals("lift")
    assert torch.allclose(quat, cube_quat) and not full.any()
    assert pos[:, 2].min() >= goals.MIN_HEIGHT_M - 1e-6 and pos[:, 2].max() <= goals.MAX_HEIGHT_M + 1e-6
    assert pos[:, :2].norm(dim=-1).max() <= goals.MAX_COM_DISTANCE_M + 1e-6


def test_yaw_goals_rotate_about_the_vertical_only():
    cube_quat, pos, quat, _ = _goals("yaw")
    relative = quat_mul(quat, quat_conjugate(cube_quat))
    assert _tilt_of(relative).max() < 1e-3
    assert rotation_angle_between(quat, cube_quat).max() > 3.0  # the whole yaw range is used
    assert pos[:, 2].min() >= goals.sample_goal(4, 1, torch.Generator())[0][0, 2].new_tensor(0.0563) - 1e-4


@pytest.mark.parametrize("yaw_rad", [0.25, 1.5])
def test_yaw_goals_stay_within_the_stage_range(yaw_rad):
    cube_quat, _, quat, _ = _goals("yaw", yaw_rad=yaw_rad)
    angle = rotation_angle_between(quat, cube_quat)
    assert angle.max() <= yaw_rad + 1e-3 and angle.max() > 0.95 * yaw_rad


@pytest.mark.parametrize("tilt_rad", [0.3, 1.2])
def test_tilt_goals_stay_within_the_stage_range(tilt_rad):
    cube_quat, _, quat, _ = _goals("tilt", tilt_rad)
    tilt = _tilt_of(quat_mul(quat, quat_conjugate(cube_quat)))
    assert tilt.max() <= tilt_rad + 1e-3 and tilt.max() > 0.9 * tilt_rad


def test_so3_goals_are_level_4_and_all_count_as_level_4():
    cube_quat, _, quat, full = _goals("so3")
    assert full.all()
    assert abs(rotation_angle_between(quat, cube_quat).mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.05


def test_a_share_of_goals_comes_from_level_4():
    cube_quat, _, quat, full = _goals("lift", share=0.25)
    assert 0.2 < full.float().mean() < 0.3
    assert torch.allclose(quat[~full], cube_quat[~full])
    assert rotation_angle_between(quat[full], cube_quat[full]).mean() > 1.5


def test_lift_goals_can_be_all_above_the_resting_cube():
    _, pos, _, _ = _goals("lift", lift_min_m=0.0563)
    assert pos[:, 2].min() >= 0.0563 and pos[:, 2].max() <= goals.MAX_HEIGHT_M


def test_goals_near_a_start_stay_within_the_radius_and_the_workspace():
    g = torch.Generator().manual_seed(0)
    start = torch.tensor([[0.0, 0.0, 0.07], [0.13, 0.0, 0.06]]).repeat(500, 1)
    near = cur.goals_near(start, 0.03, g)
    assert ((near - start).norm(dim=-1) <= 0.03 + 1e-6)[::2].all()  # the centred start needs no clipping
    assert near[:, :2].norm(dim=-1).max() <= goals.MAX_COM_DISTANCE_M + 1e-6
    assert near[:, 2].min() >= 0.0563 - 1e-4 and near[:, 2].max() <= goals.MAX_HEIGHT_M + 1e-6


def test_grasped_starts_in_the_lift_stage_get_goals_near_the_held_cube():
    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv

    task = TaskConfig(grasp_start_share=0.5, curriculum=cur.CurriculumConfig(
        enabled=True, grasp_goal_radius_m=0.02, full_difficulty_share=0.0))
    env = ReposeEnv(EnvConfig(num_envs=64, num_threads=1, task=task))
    grasped = env.state.cube_pos_m[:, 2] > 0.05
    distance = (env.goal_pos_m - env.state.cube_pos_m).norm(dim=-1)
    assert grasped.any() and (distance[grasped] < 0.03).all()  # 2 cm plus the cube's settling since reset
    assert (distance[~grasped] > 0.03).float().mean() > 0.5  # table starts keep the stage's own goals
