"""Export: ONNX Runtime and torch agree; the bundle evaluates; bad bundles are named."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from trifinger_s2r.cli import main
from trifinger_s2r.eval.rollouts import checkpoint_policy
from trifinger_s2r.export.policy_bundle import METADATA_FILE, OnnxPolicy, bundle_dir, export_checkpoint, read_metadata
from trifinger_s2r.train.config import preset
from trifinger_s2r.train.trainer import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = preset("push-cpu")
    task = dataclasses.replace(cfg.env.task, episode_length_steps=5)
    env = dataclasses.replace(cfg.env, num_envs=8, num_threads=1, task=task)
    cfg = dataclasses.replace(cfg, env=env, num_steps_per_env=4, max_iterations=2, save_interval=1)
    return train(cfg, tmp_path_factory.mktemp("run"), show_progress=False)


class TestExport:
    def test_onnx_runtime_and_torch_agree(self, checkpoint, tmp_path):
        """The exported actor (with its normaliser) gives torch's actions to 1e-5 on the same observations."""
        bundle = export_checkpoint(checkpoint, tmp_path / "bundle")
        torch_policy, cfg = checkpoint_policy(checkpoint)
        obs = torch.randn(16, 75, generator=torch.Generator().manual_seed(0))
        from tensordict import TensorDict

        expected = torch_policy(TensorDict({"policy": obs}, batch_size=[16])).detach().numpy()
        np.testing.assert_allclose(OnnxPolicy(bundle)(obs).numpy(), expected, atol=1e-5)

    def test_metadata_describes_the_policy(self, checkpoint, tmp_path):
        meta = read_metadata(export_checkpoint(checkpoint, tmp_path / "bundle"))
        assert meta["obs_type"] == "keypoints" and meta["obs_size"] == 75 and meta["action_size"] == 9
        assert sum(item["size"] for item in meta["obs_layout"]) == 75
        assert meta["rates_hz"] == {"robot": 1000, "policy": 50, "camera": 10}
        assert meta["action"]["torque_limit_nm"] == pytest.approx(0.396)
        assert meta["task"]["level"] == 1

    def test_cli_export_then_eval_of_the_bundle(self, checkpoint, tmp_path, capsys):
        main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "b"), "--json"])
        assert json.loads(capsys.readouterr().out)["files"] == ["metadata.json", "policy.onnx"]
        main(["eval", "--policy", str(tmp_path / "b"), "--episodes", "2", "--json"])
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 2

    def test_mismatched_metadata_is_named(self, checkpoint, tmp_path):
        bundle = export_checkpoint(checkpoint, tmp_path / "bundle")
        meta = json.loads((bundle / METADATA_FILE).read_text())
        meta["obs_size"] = 41
        (bundle / METADATA_FILE).write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="takes 75 observation values, metadata says obs_size 41"):
            OnnxPolicy(bundle)

    def test_folder_without_metadata_is_not_a_bundle(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="not a policy bundle"):
            read_metadata(tmp_path)


class TestPretrained:
    def test_shipped_policies_are_complete_bundles(self):
        from trifinger_s2r.export.policy_bundle import bundle_dir, pretrained_names

        assert {"objects", "push", "repose"} <= set(pretrained_names())
        for name in pretrained_names():
            meta = read_metadata(bundle_dir(f"pretrained:{name}"))
            assert meta["obs_size"] == OnnxPolicy(bundle_dir(f"pretrained:{name}")).session.get_inputs()[0].shape[-1]

    def test_eval_runs_a_shipped_policy(self, capsys):
        main(["eval", "--policy", "pretrained:push", "--episodes", "2", "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["episodes"] == 2 and out["level"] == 1

    def test_the_shipped_level_4_policy_is_judged_on_level_4(self, capsys):
        from trifinger_s2r.export.policy_bundle import bundle_dir

        meta = read_metadata(bundle_dir("pretrained:repose"))
        assert meta["task"]["level"] == 4 and meta["obs_type"] == "keypoints_rel" and meta["obs_size"] == 81
        main(["eval", "--policy", "pretrained:repose", "--episodes", "2", "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["episodes"] == 2 and out["level"] == 4

    def test_the_shipped_objects_policy_is_level_1_across_all_five_objects(self, capsys):
        """pretrained:objects is judged on level 1 (its own 15 s episodes) and was trained on every study object."""
        from trifinger_s2r.export.policy_bundle import bundle_dir
        from trifinger_s2r.study.robustness import OBJECTS

        meta = read_metadata(bundle_dir("pretrained:objects"))
        task = meta["train_config"]["env"]["task"]
        assert meta["task"]["level"] == 1 and meta["obs_type"] == "keypoints_rel" and meta["obs_size"] == 81
        assert tuple(task["randomization"]["objects"]) == OBJECTS and task["episode_length_steps"] == 750
        main(["eval", "--policy", "pretrained:objects", "--episodes", "2", "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["episodes"] == 2 and out["level"] == 1

    def test_an_unknown_pretrained_name_lists_the_shipped_ones(self):
        with pytest.raises(SystemExit, match="shipped: .*push"):
            main(["eval", "--policy", "pretrained:walk"])


class TestWrongPolicyReferences:
    """Each wrong reference names its actual problem."""

    def test_a_missing_path(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no file or folder"):
            bundle_dir(tmp_path / "nowhere")

    def test_a_checkpoint_file_says_how_to_export_it(self, tmp_path):
        checkpoint = tmp_path / "model_3.pt"
        checkpoint.write_bytes(b"")
        with pytest.raises(ValueError, match=f"export --checkpoint {checkpoint}"):
            bundle_dir(checkpoint)

    def test_a_run_folder_names_its_latest_checkpoint(self, tmp_path):
        for it in (2, 10):
            (tmp_path / f"model_{it}.pt").write_bytes(b"")
        with pytest.raises(ValueError, match="training run folder.*model_10.pt"):
            bundle_dir(tmp_path)

    def test_an_empty_folder_is_not_a_bundle(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="not a policy bundle"):
            bundle_dir(tmp_path)


def test_export_prints_no_exporter_notices(tmp_path):
    """torch.onnx's per-op torchvision warnings and pytree's FutureWarning are not for the user's terminal."""
    import subprocess
    import sys
    from pathlib import Path

    checkpoint = next((Path(__file__).parents[2] / "checkpoints" / "repose-cpu").glob("model_*.pt"))
    command = [sys.executable, "-m", "trifinger_s2r.cli", "export", "--checkpoint", str(checkpoint), "--out",
               str(tmp_path / "bundle"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "torchvision" not in done.stderr and "FutureWarning" not in done.stderr
    assert (tmp_path / "bundle" / METADATA_FILE).is_file()
