"""A training checkpoint rebuilt from an exported policy bundle, so that `train --init-from` can fine-tune a policy
whose run folder is gone (the shipped `pretrained:` bundles carry only policy.onnx and metadata.json).

The actor's MLP weights and its observation normaliser come from the ONNX graph; the critic and its normaliser are
fresh (the bundle has none), so fine-tune with `--set ppo.actor_warmup_iterations=N` to teach the critic before
the actor moves. The action noise (not exported) is set to `policy_std`.

`python -m trifinger_s2r.export.to_checkpoint --policy pretrained:push --out DIR [--policy-std S]` writes
DIR/config.json (the bundle's training config) and DIR/model_0.pt.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from trifinger_s2r.export.policy_bundle import ONNX_FILE, bundle_dir, read_metadata
from trifinger_s2r.train.config import config_from_dict

NORMALISER_MEAN = "obs_normalizer._mean"
NORMALISER_COUNT = 10_000_000
"""Samples the rebuilt normaliser claims to have seen: its statistics then move little during a fine-tune."""


def onnx_actor_tensors(onnx_path: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(the MLP's state dict, the normaliser's denominator (1, obs) = std + eps) read from an exported actor."""
    graph = onnx.load(str(onnx_path)).graph
    tensors = {t.name: torch.from_numpy(np.array(numpy_helper.to_array(t))) for t in graph.initializer}
    mlp = {name.removeprefix("mlp."): value for name, value in tensors.items() if name.startswith("mlp.")}
    others = [name for name in tensors if not name.startswith("mlp.") and name != NORMALISER_MEAN]
    if NORMALISER_MEAN not in tensors or len(others) != 1:
        raise ValueError(f"{onnx_path}: expected the MLP, {NORMALISER_MEAN} and one denominator, found {sorted(tensors)}")
    return {**mlp, "_mean": tensors[NORMALISER_MEAN]}, tensors[others[0]]


def bundle_to_checkpoint(reference: str | Path, out_dir: Path, policy_std: float = 0.3) -> Path:
    """out_dir/model_0.pt (with config.json beside it) holding the bundle's actor; returns the checkpoint path."""
    from trifinger_s2r.train.distributed import process_group_from_env
    from trifinger_s2r.train.trainer import holds_run, make_runner, save_config

    folder = bundle_dir(reference)
    cfg = config_from_dict(read_metadata(folder)["train_config"])
    out_dir = Path(out_dir)
    if holds_run(out_dir):
        raise ValueError(f"{out_dir} already holds a run")
    save_config(cfg, out_dir)
    with contextlib.redirect_stdout(io.StringIO()):
        small = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, num_envs=1, num_threads=1))
        runner = make_runner(small, out_dir, process_group_from_env())
    actor = runner.alg.actor
    weights, denominator = onnx_actor_tensors(folder / ONNX_FILE)
    mean = weights.pop("_mean")
    actor.mlp.load_state_dict(weights)
    normaliser = actor.obs_normalizer
    with torch.no_grad():
        std = (denominator - normaliser.eps).clamp_min(0.0)
        normaliser._mean.copy_(mean)
        normaliser._std.copy_(std)
        normaliser._var.copy_(std**2)
        normaliser.count.fill_(NORMALISER_COUNT)
        distribution = actor.distribution
        if hasattr(distribution, "std_param"):
            distribution.std_param.fill_(policy_std)
        else:
            distribution.log_std_param.fill_(float(np.log(policy_std)))
    checkpoint = out_dir / "model_0.pt"
    runner.save(str(checkpoint))
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="a bundle folder or pretrained:NAME")
    parser.add_argument("--out", required=True, help="a new run folder")
    parser.add_argument("--policy-std", type=float, default=0.3, help="the action noise of the rebuilt actor")
    args = parser.parse_args()
    checkpoint = bundle_to_checkpoint(args.policy, Path(args.out), args.policy_std)
    print(json.dumps({"checkpoint": str(checkpoint)}))


if __name__ == "__main__":
    main()
