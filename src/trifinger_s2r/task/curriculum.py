"""A success-driven goal curriculum for 6-DoF reposing: pure functions over a small state.

Stages, easiest first: 'lift' (3-D goal positions of level 3, optionally only the higher ones, the cube keeping its
own orientation), 'yaw' (level-4 heights, the goal a rotation about the vertical of the cube's orientation, whose
largest angle grows by `growth` per promotion from `initial_yaw_rad` until it reaches pi), 'tilt' (any yaw plus a
tilt about a random horizontal axis whose largest angle grows the same way from `initial_tilt_rad`) and 'so3'
(level 4 itself: uniform orientations). A stage is left when the success rate over its recent episodes reaches
`promote_success` (times `promote_decay` per promotion so far).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch

from trifinger_s2r.robot import cube
from trifinger_s2r.task import goals
from trifinger_s2r.task.geometry import quat_from_axis_angle, quat_from_yaw, quat_mul, random_quat

STAGES = ("lift", "yaw", "tilt", "so3")


@dataclass(frozen=True)
class CurriculumConfig:
    """Goal curriculum settings (off by default: the paper trains on level-4 goals from the start)."""

    enabled: bool = False
    stages: tuple[str, ...] = STAGES
    """The stages to pass through, in the order of STAGES; the last is trained on until the end."""
    promote_success: float = 0.6
    """Success rate (0, 1] over the stage's recent episodes that promotes to the next stage or tilt range."""
    promote_decay: float = 1.0
    """Each promotion multiplies the threshold by this (0, 1]: harder stages promote at a lower success rate (the
    decaying threshold of MyoChallenge 2022's reorientation winner); 1: the same threshold throughout."""
    window_episodes: int = 2048
    """Episodes whose mean success is compared with promote_success; a stage is judged only once it has this many."""
    initial_yaw_rad: float = math.pi
    """Largest yaw of the first 'yaw' step (pi: any yaw at once)."""
    initial_tilt_rad: float = 0.5
    """Largest tilt of the first 'tilt' step."""
    growth: float = 1.5
    """Factor (> 1) by which the largest yaw (tilt) grows at each promotion within 'yaw' ('tilt')."""
    lift_min_height_m: float = goals.MIN_HEIGHT_M
    """Lowest goal height of the 'lift' stage (its goals are level 3's, from here to level 3's top): the cube's
    resting height lets pushing on the table succeed; level 4's lowest height (0.0563) makes every goal a lift."""
    grasp_goal_radius_m: float = 0.0
    """In the 'lift' stage, episodes that start from a grasped cube get their goal within this distance of the cube's
    start (a reverse curriculum: hold it, then carry it a little); 0: the stage's own goals."""
    full_difficulty_share: float = 0.1
    """Share [0, 1) of goals drawn from level 4 itself at every stage (keeps the hardest goals in view and measures
    level-4 success during training)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise ValueError("curriculum.stages must name at least one stage")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"curriculum.stages: unknown stage(s) {unknown}; valid: {list(STAGES)}")
        if list(self.stages) != sorted(self.stages, key=STAGES.index) or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"curriculum.stages must be distinct and in the order {list(STAGES)}, got "
                             f"{list(self.stages)}")
        if not 0.0 < self.promote_success <= 1.0:
            raise ValueError(f"curriculum.promote_success must be in (0, 1], got {self.promote_success}")
        if not 0.0 < self.promote_decay <= 1.0:
            raise ValueError(f"curriculum.promote_decay must be in (0, 1], got {self.promote_decay}")
        if self.window_episodes <= 0:
            raise ValueError(f"curriculum.window_episodes must be positive, got {self.window_episodes}")
        if not 0.0 < self.initial_yaw_rad <= math.pi:
            raise ValueError(f"curriculum.initial_yaw_rad must be in (0, pi], got {self.initial_yaw_rad}")
        if not 0.0 < self.initial_tilt_rad <= math.pi:
            raise ValueError(f"curriculum.initial_tilt_rad must be in (0, pi], got {self.initial_tilt_rad}")
        if self.growth <= 1.0:
            raise ValueError(f"curriculum.growth must be > 1, got {self.growth}")
        if not goals.MIN_HEIGHT_M <= self.lift_min_height_m <= goals.MAX_HEIGHT_M:
            raise ValueError(f"curriculum.lift_min_height_m must be in [{goals.MIN_HEIGHT_M}, {goals.MAX_HEIGHT_M}] m, "
                             f"got {self.lift_min_height_m}")
        if not 0.0 <= self.grasp_goal_radius_m <= 0.2:
            raise ValueError(f"curriculum.grasp_goal_radius_m must be in [0, 0.2] m, got {self.grasp_goal_radius_m}")
        if not 0.0 <= self.full_difficulty_share < 1.0:
            raise ValueError(f"curriculum.full_difficulty_share must be in [0, 1), got {self.full_difficulty_share}")


@dataclass(frozen=True)
class CurriculumState:
    """Where training stands: the stage (index into cfg.stages), the largest tilt and yaw, and the current window."""

    stage_index: int = 0
    tilt_rad: float = 0.0
    window_successes: int = 0
    window_episodes: int = 0
    promotions: int = 0
    yaw_rad: float = math.pi
    """Largest yaw of the 'yaw' stage (states saved before it existed had any yaw: pi)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(raw: dict) -> CurriculumState:
        return CurriculumState(**raw)


def initial_state(cfg: CurriculumConfig) -> CurriculumState:
    return CurriculumState(tilt_rad=cfg.initial_tilt_rad, yaw_rad=cfg.initial_yaw_rad)


def stage_name(cfg: CurriculumConfig, state: CurriculumState) -> str:
    return cfg.stages[state.stage_index]


def difficulty(cfg: CurriculumConfig, state: CurriculumState) -> float:
    """One number for plots: the stage's position in STAGES, plus the yaw (tilt) progress within 'yaw' ('tilt')
    (0 .. 3)."""
    name = stage_name(cfg, state)
    largest = {"yaw": state.yaw_rad, "tilt": state.tilt_rad}.get(name, 0.0)
    return STAGES.index(name) + min(largest / math.pi, 1.0)


def is_final(cfg: CurriculumConfig, state: CurriculumState) -> bool:
    return state.stage_index == len(cfg.stages) - 1


def promotion_threshold(cfg: CurriculumConfig, state: CurriculumState) -> float:
    """The success rate that promotes from where the state stands: promote_success x promote_decay ^ promotions."""
    return cfg.promote_success * cfg.promote_decay ** state.promotions


def record_episodes(cfg: CurriculumConfig, state: CurriculumState, successes: int, episodes: int) -> CurriculumState:
    """The state after `episodes` more curriculum episodes, `successes` of them successful; promotes when due."""
    won, seen = state.window_successes + successes, state.window_episodes + episodes
    if seen < cfg.window_episodes or is_final(cfg, state):
        return replace(state, window_successes=won, window_episodes=seen)
    if won / seen < promotion_threshold(cfg, state):
        # a sliding judgement: keep the newer half of the window's evidence
        return replace(state, window_successes=won // 2, window_episodes=seen // 2)
    return _promoted(cfg, state)


def _promoted(cfg: CurriculumConfig, state: CurriculumState) -> CurriculumState:
    fresh = replace(state, window_successes=0, window_episodes=0, promotions=state.promotions + 1)
    name = stage_name(cfg, state)
    if name == "yaw" and state.yaw_rad < math.pi:
        return replace(fresh, yaw_rad=min(state.yaw_rad * cfg.growth, math.pi))
    if name == "tilt" and state.tilt_rad < math.pi:
        return replace(fresh, tilt_rad=min(state.tilt_rad * cfg.growth, math.pi))
    return replace(fresh, stage_index=state.stage_index + 1)


def sample_goals(
    cfg: CurriculumConfig,
    state: CurriculumState,
    cube_quat: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Goals for envs whose cube starts at orientation cube_quat (n, 4): positions (n, 3), quaternions (n, 4), and
    which goals were drawn from level 4 itself (the full-difficulty share)."""
    n, device = cube_quat.shape[0], cube_quat.device
    name = stage_name(cfg, state)
    pos, quat = goals.sample_goal(3 if name == "lift" else 4, n, generator, device)
    if name == "lift":
        quat = cube_quat.clone()
        low = cfg.lift_min_height_m
        pos[:, 2] = low + (goals.MAX_HEIGHT_M - low) * torch.rand(n, generator=generator, device=device)
    elif name == "yaw":
        quat = quat_mul(_random_yaw(n, state.yaw_rad, generator, device), cube_quat)
    elif name == "tilt":
        quat = quat_mul(_random_tilt(n, state.tilt_rad, generator, device),
                        quat_mul(_random_yaw(n, math.pi, generator, device), cube_quat))
    full = torch.rand(n, generator=generator, device=device) < cfg.full_difficulty_share
    if name != "so3" and full.any():
        full_pos, _ = goals.sample_goal(4, n, generator, device)
        pos = torch.where(full[:, None], full_pos, pos)
        quat = torch.where(full[:, None], random_quat(n, generator, device), quat)
    return pos, quat, full | (name == "so3")


def _random_yaw(n: int, max_rad: float, generator: torch.Generator, device) -> torch.Tensor:
    return quat_from_yaw(max_rad * (2 * torch.rand(n, generator=generator, device=device) - 1))


def _random_tilt(n: int, max_rad: float, generator: torch.Generator, device) -> torch.Tensor:
    """Rotations by an angle uniform in [0, max_rad] about a uniformly random horizontal axis."""
    heading = 2 * math.pi * torch.rand(n, generator=generator, device=device)
    axis = torch.stack([heading.cos(), heading.sin(), torch.zeros_like(heading)], dim=-1)
    return quat_from_axis_angle(axis, max_rad * torch.rand(n, generator=generator, device=device))


def goals_near(start_pos_m: torch.Tensor, radius_m: float, generator: torch.Generator) -> torch.Tensor:
    """Goal positions (n, 3) uniform in the ball of radius_m around start_pos_m, kept inside level 4's workspace
    (arena disc, heights between level 4's lowest and highest)."""
    n, device = start_pos_m.shape[0], start_pos_m.device
    direction = torch.randn(n, 3, generator=generator, device=device)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    distance = radius_m * torch.rand(n, 1, generator=generator, device=device) ** (1 / 3)
    goal = start_pos_m + distance * direction
    xy_norm = goal[:, :2].norm(dim=-1, keepdim=True).clamp(min=1e-9)
    goal[:, :2] = goal[:, :2] * (goals.MAX_COM_DISTANCE_M / xy_norm).clamp(max=1.0)
    goal[:, 2] = goal[:, 2].clamp(cube.CIRCUMRADIUS_M, goals.MAX_HEIGHT_M)
    return goal
