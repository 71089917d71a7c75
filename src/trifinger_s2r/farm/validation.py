"""What an upload must be before it may queue for a robot: data only (ONNX + JSON), consistent shapes, complete
metadata, and a policy that behaves in simulation (finite actions, no slamming into the limits)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE, REQUIRED_KEYS
from trifinger_s2r.robot import trifinger_pro as tp

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
PRECHECK_ENVS = 4
PRECHECK_STEPS = 100
SATURATION_LIMIT = 0.9
"""A policy whose actions sit at the torque limit on every joint in more than this fraction of steps is
banging against the motors' limit and is refused."""


class UploadError(ValueError):
    """A rejected upload: HTTP status and a detail that names the problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def check_size(name: str, data: bytes, limit: int = MAX_UPLOAD_BYTES) -> None:
    if len(data) > limit:
        raise UploadError(413, f"{name} is {len(data)} bytes; the limit is {limit} bytes")
    if not data:
        raise UploadError(400, f"{name} is empty")


def parse_metadata(data: bytes) -> dict:
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UploadError(400, f"{METADATA_FILE} is not valid JSON: {err}") from None
    if not isinstance(metadata, dict):
        raise UploadError(400, f"{METADATA_FILE} must hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise UploadError(422, f"{METADATA_FILE} lacks {missing}")
    if metadata["action_size"] != tp.NUM_JOINTS:
        raise UploadError(422, f"{METADATA_FILE}: action_size {metadata['action_size']}, the robot has "
                               f"{tp.NUM_JOINTS} joints")
    task = metadata["task"]
    for key in ("level", "episode_length_steps", "success_position_m", "success_orientation_rad"):
        if key not in task:
            raise UploadError(422, f"{METADATA_FILE}: task lacks {key!r}")
    return metadata


def check_onnx(data: bytes, metadata: dict) -> None:
    """The model parses, takes (batch, obs_size) float input and returns (batch, action_size)."""
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnx raises several unrelated types for a corrupt file
        raise UploadError(400, f"{ONNX_FILE} is not a valid ONNX model: {str(err)[:300]}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise UploadError(422, f"{ONNX_FILE} must have one input and an action output, has {len(inputs)} inputs")
    obs_size, action_size = metadata["obs_size"], metadata["action_size"]
    if inputs[0].shape[-1] != obs_size:
        raise UploadError(422, f"{ONNX_FILE} takes {inputs[0].shape[-1]} observation values, metadata says "
                               f"obs_size {obs_size}")
    try:
        actions = session.run(None, {inputs[0].name: np.zeros((2, obs_size), np.float32)})[0]
    except Exception as err:
        raise UploadError(422, f"{ONNX_FILE} fails on a (2, {obs_size}) input: {str(err)[:300]}") from None
    if actions.shape != (2, action_size):
        raise UploadError(422, f"{ONNX_FILE} returns shape {list(actions.shape[1:])} per observation, metadata says "
                               f"action_size {action_size}")


@dataclass(frozen=True)
class PrecheckResult:
    ok: bool
    reason: str
    saturated_fraction: float
    steps: int


def simulation_precheck(bundle: Path, steps: int = PRECHECK_STEPS) -> PrecheckResult:
    """Run the policy in the MuJoCo env of its task before any robot time: refuse non-finite actions, joints
    past the robot's hard limits or running away, and actions pinned at the torque limit."""
    import torch

    from trifinger_s2r.envs.repose_env import EnvConfig, ReposeEnv
    from trifinger_s2r.policies import load_bundle_policy
    from trifinger_s2r.task.config import for_evaluation
    from trifinger_s2r.train.config import config_from_dict

    policy = load_bundle_policy(bundle)
    train_cfg = config_from_dict(policy.metadata["train_config"])
    task = for_evaluation(train_cfg.env.task)  # the episodes a robot runs: on-table starts, the level's goals
    env = ReposeEnv(EnvConfig(num_envs=PRECHECK_ENVS, num_threads=1, seed=0, task=task))
    low = torch.tensor(tp.per_finger(tp.HARD_LIMIT_LOWER_RAD))
    high = torch.tensor(tp.per_finger(tp.HARD_LIMIT_UPPER_RAD))
    obs, saturated = env.get_observations(), 0

    def fraction(done_steps: int) -> float:
        return saturated / max(done_steps * PRECHECK_ENVS, 1)

    for step in range(steps):
        actions = policy(obs)
        if not torch.isfinite(actions).all():
            return PrecheckResult(False, f"the policy emits non-finite actions (step {step} in simulation)",
                                  fraction(step), step)
        saturated += int((actions.abs() >= 0.999).all(dim=1).sum())
        obs, *_ = env.step(actions)
        q, qd = env.state.joint_pos_rad, env.state.joint_vel_radps
        if ((q < low) | (q > high)).any():
            return PrecheckResult(False, f"the policy drives joints past the hard limits (step {step} in "
                                         f"simulation)", fraction(step + 1), step + 1)
        if (qd.abs() > 2 * tp.MAX_VELOCITY_RADPS).any():
            return PrecheckResult(False, f"the policy spins joints beyond {2 * tp.MAX_VELOCITY_RADPS:.0f} rad/s "
                                         f"(step {step} in simulation)", fraction(step + 1), step + 1)
    if fraction(steps) > SATURATION_LIMIT:
        return PrecheckResult(False, f"the policy slams into the torque limit: every joint saturated in "
                                     f"{fraction(steps):.0%} of steps", fraction(steps), steps)
    return PrecheckResult(True, "", fraction(steps), steps)


def validate_bundle_files(onnx_bytes: bytes, metadata_bytes: bytes, limit: int = MAX_UPLOAD_BYTES) -> dict:
    """Size, JSON and ONNX checks of an upload; returns the metadata."""
    check_size(ONNX_FILE, onnx_bytes, limit)
    check_size(METADATA_FILE, metadata_bytes, limit)
    metadata = parse_metadata(metadata_bytes)
    if "train_config" not in metadata:
        raise UploadError(422, f"{METADATA_FILE} lacks 'train_config' (export the policy with trifinger-s2r export)")
    check_onnx(onnx_bytes, metadata)
    return metadata
