"""The one place that turns a policy reference into a runnable policy, for eval, deploy, the farm and the studies.

A reference is a training checkpoint (`model_<it>.pt` with the run's config.json beside it), an exported bundle
folder (policy.onnx + metadata.json) or `pretrained:NAME` (a bundle shipped inside the package).
"""

from __future__ import annotations

from pathlib import Path

from trifinger_s2r.export.checkpoint import Policy, checkpoint_policy
from trifinger_s2r.export.policy_bundle import PRETRAINED_PREFIX, OnnxPolicy, bundle_dir, export_checkpoint
from trifinger_s2r.train.config import TrainConfig, config_from_dict

__all__ = ["Policy", "bundle_for", "checkpoint_policy", "is_checkpoint", "load_bundle_policy", "load_policy",
           "resolve"]


def is_checkpoint(reference: str | Path) -> bool:
    """Whether the reference names a checkpoint file (anything else must be a bundle or pretrained:NAME)."""
    return not str(reference).startswith(PRETRAINED_PREFIX) and Path(reference).is_file()


def load_policy(reference: str | Path) -> tuple[Policy, TrainConfig]:
    """A policy and the config it was trained with, from a checkpoint file, a bundle folder or `pretrained:NAME`."""
    if is_checkpoint(reference):
        return checkpoint_policy(Path(reference))
    policy = OnnxPolicy(bundle_dir(reference))
    return policy, config_from_dict(policy.metadata["train_config"])


def load_bundle_policy(reference: str | Path) -> OnnxPolicy:
    """An exported policy (its metadata is `.metadata`) from a bundle folder or `pretrained:NAME`: what a robot runs."""
    return OnnxPolicy(bundle_dir(reference))


def bundle_for(reference: str | Path, export_dir: Path) -> Path:
    """A bundle folder for any reference: a checkpoint is exported into export_dir, a bundle is used as it is."""
    if is_checkpoint(reference):
        return export_checkpoint(Path(reference), Path(export_dir))
    return bundle_dir(reference)


def resolve(reference: str | Path) -> Path:
    """The checkpoint file or bundle folder a reference names, without loading it; a bad reference raises
    FileNotFoundError or ValueError naming the problem and the fix."""
    return Path(reference) if is_checkpoint(reference) else bundle_dir(reference)
