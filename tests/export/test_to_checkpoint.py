"""A checkpoint rebuilt from a policy bundle acts as the bundle does."""

import pytest
import torch
from tensordict import TensorDict

from trifinger_s2r.export.to_checkpoint import bundle_to_checkpoint
from trifinger_s2r.policies import load_policy


def test_rebuilt_checkpoint_acts_as_the_bundle(tmp_path):
    """pretrained:push rebuilt as model_0.pt gives the same deterministic actions as its ONNX (within 1e-4)."""
    checkpoint = bundle_to_checkpoint("pretrained:push", tmp_path / "run", policy_std=0.25)
    rebuilt, cfg = load_policy(checkpoint)
    bundle, bundle_cfg = load_policy("pretrained:push")
    assert cfg == bundle_cfg
    obs = torch.randn(32, 75, generator=torch.Generator().manual_seed(0)) * 2
    a = rebuilt(TensorDict({"policy": obs}, batch_size=[32]))
    b = bundle(TensorDict({"policy": obs}, batch_size=[32]))
    assert torch.allclose(a, b, atol=1e-4)
    saved = torch.load(checkpoint, weights_only=False)
    assert torch.allclose(saved["actor_state_dict"]["distribution.std_param"], torch.full((9,), 0.25))


def test_refuses_a_folder_that_holds_a_run(tmp_path):
    """A folder that already holds a run is not overwritten."""
    bundle_to_checkpoint("pretrained:push", tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        bundle_to_checkpoint("pretrained:push", tmp_path / "run")
