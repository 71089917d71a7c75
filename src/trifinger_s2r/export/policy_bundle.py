"""Export an rsl_rl checkpoint to a policy bundle (policy.onnx + metadata.json) and run one with ONNX Runtime.

The metadata carries everything a runner needs besides the network: observation type, layout and scaling, the
action scale and torque limits, the rates and the task the policy was trained on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

import trifinger_s2r
from trifinger_s2r.export.checkpoint import checkpoint_policy
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.task import observations as obs_fn
from trifinger_s2r.timing import ROBOT_RATE_HZ, Timing
from trifinger_s2r.train.config import TrainConfig

FORMAT_VERSION = 1
ONNX_FILE = "policy.onnx"
METADATA_FILE = "metadata.json"
REQUIRED_KEYS = ("format_version", "obs_type", "obs_size", "action_size", "obs_layout", "action", "rates_hz", "task")
PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
"""Bundles shipped inside the package: pretrained/<name>/{policy.onnx, metadata.json}."""


def pretrained_names() -> list[str]:
    """Names of the policies shipped with the package (`pretrained:NAME`)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / METADATA_FILE).is_file())


def bundle_dir(reference: str | Path) -> Path:
    """The bundle folder a policy reference names: `pretrained:NAME` or a path to an exported bundle."""
    text = str(reference)
    if text.startswith(PRETRAINED_PREFIX):
        name = text[len(PRETRAINED_PREFIX):]
        if name not in pretrained_names():
            raise ValueError(f"no pretrained policy {name!r}; shipped: {pretrained_names()}")
        return PRETRAINED_DIR / name
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"no file or folder at {path}")
    if path.is_file():
        raise ValueError(f"{path} is a file; a policy here is an exported bundle folder (policy.onnx + "
                         f"{METADATA_FILE}) or {PRETRAINED_PREFIX}NAME"
                         + (f": export the checkpoint with `trifinger-s2r export --checkpoint {path} --out DIR`"
                            if path.suffix == ".pt" else ""))
    if not (path / METADATA_FILE).is_file():
        checkpoints = sorted(path.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
        if checkpoints:
            raise ValueError(f"{path} is a training run folder, not a policy: eval takes its checkpoints (latest "
                             f"{checkpoints[-1]}); deploy and the farm take a bundle: `trifinger-s2r export "
                             f"--checkpoint {checkpoints[-1]} --out DIR`")
        raise FileNotFoundError(f"{path} is not a policy bundle (no {METADATA_FILE}); export one with "
                                f"`trifinger-s2r export` or use {PRETRAINED_PREFIX}NAME")
    return path


def policy_metadata(cfg: TrainConfig) -> dict:
    """The metadata of a policy trained with cfg."""
    task = cfg.env.task
    timing = Timing.from_mode(task.physics_mode)
    return {
        "format_version": FORMAT_VERSION,
        "package_version": trifinger_s2r.__version__,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "obs_type": task.obs_type,
        "obs_size": obs_fn.ACTOR_OBS_SIZE[task.obs_type],
        "action_size": tp.NUM_JOINTS,
        "obs_layout": [{"name": n, "size": s} for n, s in obs_fn.ACTOR_OBS_LAYOUT[task.obs_type]],
        "obs_scaling": {
            "joint_lower_rad": list(tp.per_finger(tp.SOFT_LIMIT_LOWER_RAD)),
            "joint_upper_rad": list(tp.per_finger(tp.SOFT_LIMIT_UPPER_RAD)),
            "joint_velocity_scale_radps": tp.MAX_VELOCITY_RADPS,
            "position_low_m": list(obs_fn.POSITION_LOW_M),
            "position_high_m": list(obs_fn.POSITION_HIGH_M),
            "keypoint_margin_m": obs_fn.KEYPOINT_MARGIN_M,
            "clip": obs_fn.OBS_CLIP,
        },
        "action": {"clip": 1.0, "scale_nm": task.torque_limit_nm, "torque_limit_nm": task.torque_limit_nm,
                   "safety_kd": list(tp.per_finger(task.safety_kd))},
        "rates_hz": {"robot": ROBOT_RATE_HZ, "policy": timing.policy_rate_hz, "camera": timing.camera_rate_hz},
        "task": {"level": task.level, "reward_type": task.reward_type, "episode_length_steps": task.episode_length_steps,
                 "success_position_m": task.success_position_m,
                 "success_orientation_rad": task.success_orientation_rad},
        "joint_names": list(tp.JOINT_NAMES),
        "onnx": {"file": ONNX_FILE, "input": "obs", "output": "actions"},
        "train_config": dataclasses.asdict(cfg),
    }


def export_checkpoint(checkpoint: Path, out_dir: Path) -> Path:
    """Write policy.onnx (dynamic batch) and metadata.json for an rsl_rl checkpoint; returns out_dir."""
    policy, cfg = checkpoint_policy(checkpoint)
    module = policy.as_onnx(verbose=False).to("cpu").eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), _quiet_exporter():
        torch.onnx.export(
            module, module.get_dummy_inputs(), str(out_dir / ONNX_FILE), input_names=["obs"], output_names=["actions"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=18, external_data=False,
        )
    (out_dir / METADATA_FILE).write_text(json.dumps(policy_metadata(cfg), indent=2))
    return out_dir


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx logs a warning per torchvision op it cannot register and pytree a FutureWarning: not the user's."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)


class OnnxPolicy:
    """A policy bundle run with ONNX Runtime; call it with the env's observations."""

    def __init__(self, bundle_dir: Path) -> None:
        import onnxruntime as ort

        bundle_dir = Path(bundle_dir)
        self.metadata = read_metadata(bundle_dir)
        self.session = ort.InferenceSession(str(bundle_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
        obs_input = self.session.get_inputs()[0]
        if obs_input.shape[-1] != self.metadata["obs_size"]:
            raise ValueError(
                f"{bundle_dir}: the ONNX model takes {obs_input.shape[-1]} observation values, "
                f"metadata says obs_size {self.metadata['obs_size']}"
            )

    def __call__(self, obs) -> torch.Tensor:
        policy_obs = obs["policy"] if not isinstance(obs, torch.Tensor) else obs
        actions = self.session.run(None, {"obs": policy_obs.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(actions)


def read_metadata(bundle_dir: Path) -> dict:
    """metadata.json of a bundle, checked for the keys a runner needs."""
    path = Path(bundle_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a policy bundle: no {METADATA_FILE}")
    metadata = json.loads(path.read_text())
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"{path}: metadata lacks {missing}")
    if not (Path(bundle_dir) / ONNX_FILE).is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a policy bundle: no {ONNX_FILE}")
    return metadata
