"""The scripted reposing controller's settings (task.expert): gains, thresholds and its optional phases, and how
`--expert FIELD=VALUE` changes them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from trifinger_s2r.task.flip import FlipConfig
from trifinger_s2r.task.gather import GatherConfig
from trifinger_s2r.task.grasp_forces import HoldGains
from trifinger_s2r.task.pivot import PivotConfig

NESTED_CONFIGS = {"hold": HoldGains, "flip": FlipConfig, "pivot": PivotConfig, "gather": GatherConfig}
"""ExpertConfig's nested sections (set as 'SECTION.FIELD=value')."""


@dataclass(frozen=True)
class ExpertConfig:
    """Gains and thresholds of the scripted controller."""

    stiffness_npm: float = 60.0
    damping_nspm: float = 0.0
    """Tip damping (N*s/m) on top of the motors' safety damping; at 50 Hz, 3 N*s/m already makes the light lower
    link chatter."""
    carry_squeeze_m: float = 0.03
    """How far inside the cube, towards its vertical axis, the carried tips aim (the grip force with the stiffness)."""
    weight_offset_m: float = 0.007
    """Carried tips aim this far higher: at the stiffness, each finger then bears about a third of the cube's
    weight without first sliding down by that much."""
    touch_squeeze_m: float = 0.005
    """Closing in aims this far inside the faces: the tips arrive without shoving the cube; the grip comes in carry."""
    pregrasp_offset_m: float = 0.03
    """Approach point's distance outside the contact point."""
    above_m: float = 0.05
    """A tip far horizontally from its approach point aims this far above it: fully beyond 2 far_m, rising linearly
    from far_m (no step in the target, so none in the action)."""
    far_m: float = 0.03
    aligned_m: float = 0.02
    """A tip closer than this to the line through its contact point (along the approach) may close in."""
    near_m: float = 0.02
    """A tip within this of its contact point (beyond the tip's clearance) stays closing in, whatever its line."""
    touching_m: float = 0.006
    """A tip whose end is within this of the cube's surface touches it (carry starts when all three do)."""
    spread_m: float = 0.018
    """The two fingers that share a face touch it this far either side of its centre."""
    contact_height_m: float = -0.005
    """Contacts lie this far above the cube's centre (negative: below; 5 mm below lifted more cubes than 5 or 12 mm
    above)."""
    carry_step_m: float = 0.015
    """Largest translation of the cube's target pose per policy step."""
    cube_damping_s: float = 0.06
    """The carried cube's target moves back by its velocity times this (damps the carry)."""
    carry_step_rad: float = 0.1
    """Largest rotation of the cube's target pose per policy step (pick-up)."""
    max_pull_m: float = 0.03
    """The tip impedance pulls towards a point at most this far away: where the phase changes, the force changes by at
    most stiffness x this (smoother actions: a student fits them about twice as well)."""
    plan_geometry_weight_m: float = 0.5
    """Grasp plans cost the summed tip-to-contact distance plus this times (1 - cosine) between the lone finger's
    approach and its face normal."""
    goal_geometry_weight_m: float = 0.1
    """Grasp plans also cost this times (1 - cosine) between the lone finger's approach and its face normal at the
    goal orientation, and infeasible_cost_m where the plan's faces would be top or bottom there: the grasp from which
    the turn to the goal is shortest for the fingers (0: chosen by the cube's current pose alone; 0.1 against 0:
    level 4 25.5% against 20.0% and 27.5% against 23.0% on two seeds, N = 200, docs/benchmarks.md)."""
    infeasible_cost_m: float = 1.0
    """Grasp plans also cost this for each fingertip point of theirs (contact and approach point) that the finger
    cannot reach with its joints reach_margin_rad inside the soft limits, or that lies within wall_margin_m of the
    arena's wall: near the wall, such plans leave a finger stuck at a joint limit or against the wall."""
    reach_margin_rad: float = 0.05
    wall_margin_m: float = 0.012
    hold_above_rest_m: float = 0.01
    """The wrench controller holds a touched cube once its centre is this far above its resting height."""
    hold: HoldGains = field(default_factory=HoldGains)
    flip: FlipConfig = field(default_factory=FlipConfig)
    """Tipping the cube onto its goal's bottom face first, held in the air (task.flip)."""
    pivot: PivotConfig = field(default_factory=PivotConfig)
    """... or over an edge on the table (task.pivot)."""
    gather: GatherConfig = field(default_factory=GatherConfig)
    """Pushing a far cube in towards the centre before the grasp (task.gather)."""

    def __post_init__(self) -> None:
        for name, kind in NESTED_CONFIGS.items():
            if isinstance(getattr(self, name), dict):  # a JSON config
                object.__setattr__(self, name, kind(**getattr(self, name)))
        for name in ("stiffness_npm", "carry_squeeze_m", "touch_squeeze_m", "pregrasp_offset_m", "aligned_m", "near_m",
                     "touching_m", "carry_step_m", "carry_step_rad", "hold_above_rest_m", "max_pull_m",
                     "wall_margin_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expert.{name} must be positive, got {getattr(self, name)}")
        for name in ("infeasible_cost_m", "reach_margin_rad"):
            if getattr(self, name) < 0:
                raise ValueError(f"expert.{name} must be >= 0, got {getattr(self, name)}")


def expert_with(cfg: ExpertConfig, assignments: list[str]) -> ExpertConfig:
    """cfg with each 'field=value' applied (values are JSON; the hold gains as 'hold.FIELD=value', the tipping's as
    'flip.FIELD=value' and 'pivot.FIELD=value', the gather's as 'gather.FIELD=value')."""
    raw = asdict(cfg)
    nested = NESTED_CONFIGS
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        *parent, leaf = key.split(".")
        node = raw[parent[0]] if len(parent) == 1 and parent[0] in nested else raw if not parent else None
        if not sep or node is None or leaf not in node or (not parent and leaf in nested):
            valid = [f.name for f in fields(ExpertConfig) if f.name not in nested] + [
                f"{name}.{f.name}" for name, kind in nested.items() for f in fields(kind)]
            raise ValueError(f"--expert {assignment!r}: expected FIELD=VALUE with FIELD one of {', '.join(valid)}")
        try:
            node[leaf] = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"--expert {key}: {text!r} is not a JSON value") from None
    return ExpertConfig(**raw)
