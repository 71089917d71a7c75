"""Typed training configuration, its presets, and the one translation into rsl_rl's config dict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from trifinger_s2r.envs.repose_env import EnvConfig
from trifinger_s2r.task.config import CameraConfig, RandomizationConfig, RewardWeights, TaskConfig, Uniform
from trifinger_s2r.task.curriculum import CurriculumConfig


@dataclass(frozen=True)
class PPOConfig:
    """rsl_rl PPO hyper-parameters (the paper's values where rsl_rl has the same knob)."""

    learning_rate: float = 3e-4
    schedule: str = "adaptive"
    """'adaptive' (KL-driven, rsl_rl) or 'fixed'."""
    desired_kl: float = 0.016
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.0
    max_grad_norm: float = 1.0
    use_clipped_value_loss: bool = False
    """rsl_rl's value clipping keeps each value within clip_param (0.2) of its previous estimate per update. Our
    returns are in the hundreds (unnormalised paper rewards) and the paper normalised values; clipping them in
    raw units stalls the critic: push-cpu reached 71% training success at 2.2M steps without it, 29% at 2.95M with it
    (docs/benchmarks.md)."""
    reward_scale: float = 1.0
    """Factor on every reward before PPO sees it (the reference's rl_games `scale_value` 0.01)."""
    value_normalization: bool = False
    """Learn the value in units normalised by running return statistics (the reference's `normalize_value`)."""
    bounds_loss_coef: float = 0.0
    """Weight of rl_games' bounds loss on action means beyond +-1.1 (the reference's 1e-4)."""
    actor_warmup_iterations: int = 0
    """The first this many updates train only the critic (the actor frozen): after a warm start (`imitate`, then
    `--init-from`), a fresh critic's advantages would otherwise undo the imitated actor."""
    symmetry_augmentation: bool = False
    """Add each sample's scene turned by 120 and 240 degrees to every mini-batch (task.symmetry; the update then
    costs about 3x)."""
    teacher_coef: float = 0.0
    """Kickstarting (train.kickstart): weight of the mean squared error between the actor's mean and the scripted
    teacher's action for the same state, added to PPO's loss (0: off; the imitation's own loss is about 0.05-0.09)."""
    teacher_decay_iterations: int = 0
    """The kickstarting weight falls linearly to 0 over this many updates (0: it stays)."""

    def __post_init__(self) -> None:
        if self.reward_scale <= 0:
            raise ValueError(f"ppo.reward_scale must be positive, got {self.reward_scale}")
        if self.actor_warmup_iterations < 0:
            raise ValueError(f"ppo.actor_warmup_iterations must be >= 0, got {self.actor_warmup_iterations}")
        if self.bounds_loss_coef < 0:
            raise ValueError(f"ppo.bounds_loss_coef must be >= 0, got {self.bounds_loss_coef}")
        if self.teacher_coef < 0 or self.teacher_decay_iterations < 0:
            raise ValueError(f"ppo.teacher_coef and ppo.teacher_decay_iterations must be >= 0, got {self.teacher_coef} "
                             f"and {self.teacher_decay_iterations}")
        if self.teacher_coef > 0 and self.symmetry_augmentation:
            raise ValueError("ppo.teacher_coef does not combine with ppo.symmetry_augmentation (the turned samples "
                             "have no teacher actions)")
        if self.value_normalization and self.use_clipped_value_loss:
            raise ValueError("ppo.value_normalization and ppo.use_clipped_value_loss do not combine: rsl_rl clips "
                             "values in return units")


@dataclass(frozen=True)
class ModelConfig:
    """Actor and critic MLPs (the paper's sizes) with running observation normalisation inside the models."""

    actor_hidden_dims: tuple[int, ...] = (256, 256, 128, 128)
    critic_hidden_dims: tuple[int, ...] = (512, 512, 256, 128)
    activation: str = "elu"
    init_noise_std: float = 1.0
    obs_normalization: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    num_steps_per_env: int = 24
    """Policy steps each env contributes per PPO iteration."""
    max_iterations: int = 1000
    save_interval: int = 50
    """Iterations between checkpoints (a killed run loses at most this many)."""
    init_from: str = ""
    """A checkpoint whose actor and critic (with their normalisers) start this run; optimiser and iteration count
    start fresh (a curriculum: e.g. exact cube pose first, then the camera model). Empty: random initialisation."""
    init_from_critic: bool = True
    """Take init_from's critic too; false: only its actor, the critic starts fresh (needed where the critic's input
    differs, e.g. training across objects adds the object's features; pair it with ppo.actor_warmup_iterations)."""
    init_from_min_std: float = 0.0
    """Raise init_from's action noise std to at least this (0: keep it): a converged policy's noise (~0.02-0.2)
    explores too little to learn what its source run never met (other objects, another task)."""
    random_episode_start: bool = False
    """Start the first episodes at random points of their length, so that episode ends (and resets) spread over
    iterations instead of all falling on the same one (rsl_rl's init_at_random_ep_len)."""
    max_minutes: float = 0.0
    """Wall-clock budget of one `train` call (0: none): the run stops after the iteration that crosses it and saves
    a checkpoint; `--resume` continues from there."""
    calibration: str = ""
    """The calibration (`trifinger-s2r calibrate`'s JSON, as text) that `train --calibration` centred the
    randomisation ranges on; recorded here so the run's config.json and the exported metadata carry it. Empty: none."""
    torch_threads: int = 1
    """Learner threads (0: all cores). One: a multi-threaded PPO update collapses when anything else wants a core
    (2 threads: 9.8K samples/s alone, 2.1K with one core busy; 1 thread: 7.8K and 6.2K, the simulation keeping all
    cores; docs/benchmarks.md); on a quiet machine all cores are ~1.26x faster."""

    def __post_init__(self) -> None:
        for name in ("num_steps_per_env", "max_iterations", "save_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0 (0: no limit), got {self.max_minutes}")
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0 (0: all cores), got {self.torch_threads}")
        if self.init_from_min_std < 0:
            raise ValueError(f"init_from_min_std must be >= 0 (0: keep the source's), got {self.init_from_min_std}")


CPU_MODEL = ModelConfig(actor_hidden_dims=(256, 128, 64), critic_hidden_dims=(256, 256, 128))
"""Networks sized for a CPU learner: the paper's MLPs make the PPO update 3x slower on 2 cores."""


def _preset_push_cpu() -> TrainConfig:
    # The camera model is off here: with it, the same 9-minute budget reached 24% success instead of 46%
    # (docs/benchmarks.md); the deployment benchmarks measure what that costs on PyBullet's delayed camera.
    camera_off = RandomizationConfig(camera=CameraConfig(enabled=False))
    task = TaskConfig(level=1, episode_length_steps=250, randomization=camera_off)
    return TrainConfig(env=EnvConfig(num_envs=512, task=task), model=CPU_MODEL, max_iterations=2000, save_interval=25,
                       max_minutes=30.0)


LEVEL_4_CURRICULUM = CurriculumConfig(enabled=False, promote_success=0.3, promote_decay=0.85, window_episodes=1024,
                                      initial_yaw_rad=0.5, growth=2.0)
"""The goal curriculum of the earlier level-4 run (pretrained:repose until the later 2026-12-02 session), off in the
preset: promote at 30% success (x0.85 per promotion), 1,024-episode windows, yaw from 0.5 rad and tilt from 0.5 rad,
doubling per promotion (docs/benchmarks.md, 2026-12-02). `--set env.task.curriculum.enabled=true` brings it back;
the shipped run trained on level 4's own goals after DAgger (README, level 4), which did better."""
LEVEL_4_TASK = TaskConfig(level=4, curriculum=LEVEL_4_CURRICULUM, grasp_start_share=0.25,
                          obs_type="keypoints_rel", friction_cone="elliptic", impratio=10.0)
"""Level 4 as we train it: level 4's own goals (the curriculum off), a quarter of the episodes starting from a
grasped, lifted cube, the rotation from cube to goal beside the keypoints in the actor's observation
(`keypoints_rel`: at equal env steps it doubled the lift stage's success and gave the first level-4 successes), and
friction that sticks (MuJoCo's elliptic cone, impratio 10: with the soft default a held cube creeps down through the
fingers, and the scripted teacher lifts and keeps about half as many cubes; PyBullet's contacts stick too);
docs/benchmarks.md, level-4 sections. Evaluation judges level 4 from the table."""
REFERENCE_PPO = PPOConfig(reward_scale=0.01, value_normalization=True, bounds_loss_coef=1e-4, value_loss_coef=4.0)
"""The reference's (rl_games) reward scale, value normalisation, bounds loss and critic coefficient."""
LEVEL_4_PPO = replace(REFERENCE_PPO, teacher_coef=10.0, teacher_decay_iterations=500)
"""The reference's PPO parts with kickstarting towards the scripted teacher (train.kickstart), fading out over 500
updates: after the same DAgger start, level-4 training success at 12M env steps was 25% with it against 14% without
(docs/benchmarks.md, 2026-12-04)."""


def _preset_repose_cpu() -> TrainConfig:
    env = EnvConfig(num_envs=1024, task=LEVEL_4_TASK)
    return TrainConfig(env=env, ppo=LEVEL_4_PPO, model=CPU_MODEL, max_iterations=5000, save_interval=50)


def _preset_repose_gpu() -> TrainConfig:
    # MuJoCo Warp's elliptic cone does not match native MuJoCo's, so the warp backend refuses it (sim.contact): the
    # GPU recipe keeps the soft pyramidal cone.
    task = replace(LEVEL_4_TASK, friction_cone="pyramidal", impratio=1.0)
    return TrainConfig(
        env=EnvConfig(num_envs=16384, backend="warp", device="cuda", task=task),
        num_steps_per_env=8,
        ppo=replace(LEVEL_4_PPO, num_mini_batches=8, num_learning_epochs=4),
        max_iterations=20000,
        save_interval=100,
    )


PRESETS = {
    "push-cpu": _preset_push_cpu,
    "repose-cpu": _preset_repose_cpu,
    "repose-gpu": _preset_repose_gpu,
}
"""push-cpu: level 1 (push on the table), 5 s episodes, 512 envs, CPU-sized networks, exact cube pose (camera model
off), 30 minutes, for a 2-core CPU;
repose-cpu: level 4 (6-DoF) on its own goals, a quarter of the episodes from grasped starts, the reference's PPO
parts, 1024 envs, the largest sensible on CPU (start it from `imitate`'s actor: README, level 4); repose-gpu: the same recipe at the paper's scale (16,384 envs, 8-step horizon, the paper's
network sizes)."""


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {list(PRESETS)}")
    return PRESETS[name]()


def with_overrides(cfg: TrainConfig, **overrides) -> TrainConfig:
    """A copy with top-level fields replaced (None values are ignored)."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def load_config(path: Path) -> TrainConfig:
    """Rebuild a TrainConfig from its saved JSON."""
    return config_from_dict(json.loads(Path(path).read_text()))


def config_from_dict(raw: dict) -> TrainConfig:
    """Rebuild a TrainConfig from `dataclasses.asdict` output."""
    raw = json.loads(json.dumps(raw))  # a deep copy we may edit
    dr = raw["env"]["task"]["randomization"]
    camera = dr.pop("camera")
    camera["delay_s"] = Uniform(**camera["delay_s"])
    uniforms = {k: Uniform(**v) if isinstance(v, dict) else v for k, v in dr.items()}
    task = raw["env"]["task"]
    task["safety_kd"] = tuple(task["safety_kd"])
    task["rewards"] = RewardWeights(**task["rewards"])
    task["randomization"] = RandomizationConfig(camera=CameraConfig(**camera), **uniforms)
    task["curriculum"] = CurriculumConfig(**task.get("curriculum", {}))  # runs saved before it existed: off
    env = dict(raw["env"], task=TaskConfig(**task))
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["model"].items()}
    return TrainConfig(
        env=EnvConfig(**env),
        ppo=PPOConfig(**raw["ppo"]),
        model=ModelConfig(**model),
        **{k: v for k, v in raw.items() if k not in ("env", "ppo", "model")},
    )


def config_keys(cfg: TrainConfig) -> list[str]:
    """Every settable dotted key of cfg (the names `train --set` accepts)."""

    def walk(node: dict, prefix: str) -> list[str]:
        keys = []
        for name, value in node.items():
            key = f"{prefix}{name}"
            keys += walk(value, key + ".") if isinstance(value, dict) else [key]
        return keys

    return walk(asdict(cfg), "")


def _parse_value(key: str, text: str, current):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} takes true or false, got {text!r}")
    elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif isinstance(current, (list, tuple)):
        if not isinstance(value, list):
            raise ValueError(f"{key} takes a JSON list like {json.dumps(list(current))}, got {text!r}")
    elif type(value) is not type(current):
        raise ValueError(f"{key} takes a {type(current).__name__}, got {text!r}")
    return value


def apply_overrides(cfg: TrainConfig, assignments: list[str]) -> TrainConfig:
    """cfg with each 'dotted.key=value' applied (values are JSON: 3e-4, true, [256, 128], or a bare string)."""
    raw = asdict(cfg)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep:
            raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. ppo.learning_rate=1e-3")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node or isinstance(node[leaf], dict):
            raise ValueError(f"--set: unknown key {key!r}; valid keys: {', '.join(config_keys(cfg))}")
        node[leaf] = _parse_value(key, text, node[leaf])
    return config_from_dict(raw)


def to_rsl_rl(cfg: TrainConfig) -> dict:
    """The rsl_rl 5.5 OnPolicyRunner config for cfg: asymmetric actor-critic through observation groups."""
    ppo, model = asdict(cfg.ppo), cfg.model
    value_normalization = ppo.pop("value_normalization")
    if ppo.pop("symmetry_augmentation"):
        ppo["symmetry_cfg"] = {"use_data_augmentation": True, "use_mirror_loss": False,
                               "data_augmentation_func": "trifinger_s2r.task.symmetry:augment"}
    distribution = {"class_name": "GaussianDistribution", "init_std": model.init_noise_std, "std_type": "scalar"}
    return {
        "num_steps_per_env": cfg.num_steps_per_env,
        "save_interval": cfg.save_interval,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "algorithm": {"class_name": "trifinger_s2r.train.ppo:ReferencePPO", **ppo},
        "actor": {
            "class_name": "MLPModel",
            "hidden_dims": list(model.actor_hidden_dims),
            "activation": model.activation,
            "obs_normalization": model.obs_normalization,
            "distribution_cfg": distribution,
        },
        "critic": {
            "class_name": "trifinger_s2r.train.ppo:ValueNormalizedMLP" if value_normalization else "MLPModel",
            "hidden_dims": list(model.critic_hidden_dims),
            "activation": model.activation,
            "obs_normalization": model.obs_normalization,
        },
        "logger": "tensorboard",
        "check_for_nan": True,
        "multi_gpu": None,
    }
