"""A tiny-budget training run: checkpoint, resume, config round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trifinger_s2r.cli import main
from trifinger_s2r.export.checkpoint import checkpoint_policy
from trifinger_s2r.train.config import PRESETS, apply_overrides, config_keys, preset, to_rsl_rl
from trifinger_s2r.train.distributed import process_group_from_env
from trifinger_s2r.train.trainer import _initialise_from, latest_checkpoint, load_config, make_runner, new_run_dir, train


def _tiny(max_iterations: int):
    cfg = preset("push-cpu")
    env = dataclasses.replace(cfg.env, num_envs=8, num_threads=1)
    return dataclasses.replace(cfg, env=env, num_steps_per_env=4, max_iterations=max_iterations, save_interval=2)


class TestTrainResume:
    def test_train_writes_checkpoints_and_resume_continues_the_count(self, tmp_path):
        """3 iterations write model_0/model_2; resuming to 5 writes model_4 and keeps the saved config."""
        first = train(_tiny(3), tmp_path, show_progress=False)
        assert first.name == "model_2.pt"
        assert load_config(tmp_path / "config.json") == _tiny(3)
        second = train(_tiny(5), tmp_path, resume=True, show_progress=False)
        assert second.name == "model_4.pt" and latest_checkpoint(tmp_path) == second
        progress = json.loads((tmp_path / "progress.json").read_text())
        assert [p["iteration"] for p in progress] == [1, 2, 3, 4, 5]

    def test_progress_is_json_with_null_and_survives_a_killed_run(self, tmp_path):
        """progress.json is written every iteration (strict JSON: no NaN); a run resumed from an earlier checkpoint
        drops the killed run's iterations after that checkpoint."""
        train(_tiny(3), tmp_path, show_progress=False)
        text = (tmp_path / "progress.json").read_text()
        assert "NaN" not in text
        json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
        (tmp_path / "model_2.pt").unlink()  # as if killed after iteration 3, before its checkpoint
        train(_tiny(4), tmp_path, resume=True, show_progress=False)
        progress = json.loads((tmp_path / "progress.json").read_text())
        assert [p["iteration"] for p in progress] == [1, 2, 3, 4]

    def test_a_spent_wall_clock_budget_stops_with_a_checkpoint(self, tmp_path):
        """A budget shorter than one iteration ends the run after its first iteration, checkpoint saved."""
        cfg = dataclasses.replace(_tiny(50), max_minutes=1e-6)
        assert train(cfg, tmp_path, show_progress=False).name == "model_0.pt"
        progress = json.loads((tmp_path / "progress.json").read_text())
        assert len(progress) == 1 and progress[0]["env_steps"] == 8 * 4

    def test_init_from_starts_with_another_runs_networks(self, tmp_path):
        """With a zero learning rate the first checkpoint keeps the source run's MLP weights; other sizes fail."""
        import torch

        source = train(_tiny(1), tmp_path / "a", show_progress=False)
        frozen = dataclasses.replace(_tiny(1), init_from=str(source),
                                     ppo=dataclasses.replace(_tiny(1).ppo, learning_rate=0.0, schedule="fixed"))
        started = train(frozen, tmp_path / "b", show_progress=False)
        a, b = (torch.load(p, weights_only=False)["actor_state_dict"] for p in (source, started))
        weights = [k for k in a if "normalizer" not in k]
        assert weights and all(torch.equal(a[k], b[k]) for k in weights)
        other = dataclasses.replace(frozen, model=dataclasses.replace(frozen.model, actor_hidden_dims=(32,)))
        with pytest.raises(ValueError, match="do not match"):
            train(other, tmp_path / "c", show_progress=False)

    def test_init_from_starts_at_the_source_runs_lower_learning_rate_under_the_adaptive_schedule(self, tmp_path):
        """A converged run's small rate carries over (the configured one would throw its policy off at once); the
        fixed schedule keeps the configured rate."""
        base = _tiny(1)
        source = train(dataclasses.replace(base, ppo=dataclasses.replace(base.ppo, learning_rate=1e-5,
                                                                          schedule="fixed")),
                       tmp_path / "a", show_progress=False)
        for schedule, expected in (("adaptive", 1e-5), ("fixed", base.ppo.learning_rate)):
            cfg = dataclasses.replace(base, init_from=str(source), ppo=dataclasses.replace(base.ppo, schedule=schedule))
            runner = make_runner(cfg, tmp_path / schedule, process_group_from_env())
            _initialise_from(runner, source, schedule == "adaptive")
            assert runner.alg.learning_rate == pytest.approx(expected)
            assert [g["lr"] for g in runner.alg.optimizer.param_groups] == pytest.approx([expected])

    def test_init_from_can_take_the_actor_alone_and_raise_its_action_noise(self, tmp_path):
        """init_from_critic=false starts a fresh critic where the critic's input differs (training across objects),
        which a full load refuses with the field to set; init_from_min_std lifts a converged policy's noise."""
        import torch

        base = _tiny(1)
        source = train(base, tmp_path / "a", show_progress=False)
        task = base.env.task
        objects = dataclasses.replace(task, randomization=dataclasses.replace(task.randomization,
                                                                              objects=("cube", "sphere")))
        mixed = dataclasses.replace(base, env=dataclasses.replace(base.env, task=objects), init_from=str(source))
        with pytest.raises(ValueError, match="init_from_critic=false"):
            train(mixed, tmp_path / "b", show_progress=False)
        frozen = dataclasses.replace(mixed, init_from_critic=False, init_from_min_std=1.5,
                                     ppo=dataclasses.replace(base.ppo, learning_rate=0.0, schedule="fixed"))
        started = train(frozen, tmp_path / "c", show_progress=False)
        a, b = (torch.load(p, weights_only=False)["actor_state_dict"] for p in (source, started))
        weights = [k for k in a if "normalizer" not in k and "std" not in k]
        assert weights and all(torch.equal(a[k], b[k]) for k in weights)
        assert torch.all(b["distribution.std_param"] >= 1.5 - 1e-6)
        assert torch.equal(b["distribution.std_param"], a["distribution.std_param"].clamp(min=1.5))
        with pytest.raises(ValueError, match="init_from_min_std"):
            dataclasses.replace(base, init_from_min_std=-0.1)
        policy, _ = checkpoint_policy(started)  # evaluation's env has no objects: the policy is the actor alone
        from trifinger_s2r.envs.repose_env import ReposeEnv

        probe = ReposeEnv(dataclasses.replace(base.env, num_envs=2))
        assert policy(probe.get_observations()).shape == (2, 9)

    def test_resume_without_checkpoint_names_the_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=str(tmp_path)):
            train(_tiny(1), tmp_path, resume=True, show_progress=False)


class TestConfig:
    @pytest.mark.parametrize("name", list(PRESETS))
    def test_presets_translate_to_an_asymmetric_rsl_rl_config(self, name):
        cfg = to_rsl_rl(preset(name))
        assert cfg["obs_groups"] == {"actor": ["policy"], "critic": ["critic"]}
        assert cfg["actor"]["obs_normalization"] and cfg["critic"]["obs_normalization"]
        # Values are unnormalised (returns in the hundreds): rsl_rl's 0.2 value clipping would stall the critic.
        assert cfg["algorithm"]["use_clipped_value_loss"] is False

    def test_unknown_preset_names_the_valid_ones(self):
        with pytest.raises(ValueError, match="push-cpu"):
            preset("walk")

    def test_overrides_reach_nested_fields_with_their_types(self):
        cfg = apply_overrides(preset("push-cpu"), [
            "ppo.learning_rate=1e-3", "env.task.randomization.camera.enabled=false", "model.actor_hidden_dims=[64, 32]",
            "env.task.randomization.cube_scale.high=1.1", "env.task.obs_type=pq", "ppo.gamma=1",
        ])
        assert cfg.ppo.learning_rate == 1e-3 and cfg.ppo.gamma == 1.0 and isinstance(cfg.ppo.gamma, float)
        assert cfg.env.task.randomization.camera.enabled is False
        assert cfg.model.actor_hidden_dims == (64, 32) and cfg.env.task.obs_type == "pq"
        assert cfg.env.task.randomization.cube_scale.high == 1.1

    @pytest.mark.parametrize("assignment, message", [
        ("ppo.lr=1", "unknown key 'ppo.lr'.*ppo.learning_rate"),
        ("ppo.learning_rate=fast", "takes a float"),
        ("env.task.randomization.enabled=1", "true or false"),
        ("env.task=3", "unknown key"),
        ("learning_rate", "KEY=VALUE"),
        ("env.task.obs_type=pixels", "unknown obs_type"),
    ])
    def test_bad_overrides_name_the_problem(self, assignment, message):
        with pytest.raises(ValueError, match=message):
            apply_overrides(preset("push-cpu"), [assignment])

    def test_every_documented_key_is_settable(self):
        cfg = preset("push-cpu")
        assert "env.task.rewards.keypoint_pose" in config_keys(cfg)
        assert all(apply_overrides(cfg, [f"{key}={json.dumps(value)}"]) == cfg
                   for key, value in [("max_iterations", 2000), ("env.task.level", 1)])

    def test_cli_train_runs_a_tiny_budget_and_never_overwrites_a_run(self, tmp_path, capsys):
        command = ["train", "--preset", "push-cpu", "--num-envs", "4", "--max-iterations", "1",
                   "--run-dir", str(tmp_path), "--json"]
        main(command)
        captured = capsys.readouterr()
        out = json.loads(captured.out.strip().splitlines()[-1])
        assert out["preset"] == "push-cpu" and out["checkpoint"].endswith("model_0.pt")
        assert f"training in {tmp_path}" in captured.err  # said before training starts
        with pytest.raises(SystemExit, match=f"--resume {tmp_path}"):
            main(command)

    def test_each_new_run_gets_its_own_folder(self, tmp_path):
        first = new_run_dir(tmp_path, "push-cpu")
        first.mkdir()
        second = new_run_dir(tmp_path, "push-cpu")
        assert second != first and second.name.startswith(first.name) and first.name.startswith("push-cpu-")


class TestEvaluate:
    def test_eval_of_a_checkpoint_prints_the_documented_keys(self, tmp_path, capsys):
        """A 1-iteration checkpoint evaluates over 3 short episodes with the eval JSON contract."""
        import dataclasses

        cfg = _tiny(1)
        task = dataclasses.replace(cfg.env.task, episode_length_steps=5)
        checkpoint = train(dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, task=task)), tmp_path,
                           show_progress=False)
        main(["eval", "--policy", str(checkpoint), "--episodes", "3", "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert {"success_rate", "ci80_low", "ci80_high", "episodes", "mean_position_error_m",
                "mean_orientation_error_rad"} <= set(out)
        assert out["episodes"] == 3 and out["ci80_low"] <= out["success_rate"] <= out["ci80_high"]
        main(["eval", "--policy", str(checkpoint), "--episodes", "2", "--json",
              "--set", "env.task.randomization.camera.enabled=true", "--set", "env.task.level=4"])
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["level"] == 4
        with pytest.raises(SystemExit, match="unknown key"):
            main(["eval", "--policy", str(checkpoint), "--set", "env.camera=1"])


class TestDeterminism:
    def test_seeded_runs_give_identical_weights(self, tmp_path):
        """Two 2-iteration runs with seed 0 end with the same actor; seed 1 differs."""
        import torch

        def weights(seed, folder):
            cfg = _tiny(2)
            cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, seed=seed))
            return torch.load(train(cfg, tmp_path / folder, show_progress=False), weights_only=False)["actor_state_dict"]

        a, b, c = weights(0, "a"), weights(0, "b"), weights(1, "c")
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not all(torch.equal(a[k], c[k]) for k in a)


def test_sigterm_stops_after_the_iteration_with_a_checkpoint(tmp_path):
    """A run told to stop (SIGTERM, or Ctrl-C's SIGINT) finishes its iteration, saves it and exits cleanly."""
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "trifinger_s2r.cli", "train", "--preset", "push-cpu", "--num-envs", "8",
               "--max-iterations", "100000", "--save-interval", "100000", "--run-dir", str(tmp_path), "--json",
               "--set", "env.num_threads=1", "--set", "num_steps_per_env=4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_progress(tmp_path)) < 3:
            time.sleep(0.5)
        assert len(_progress(tmp_path)) >= 3, "training did not start"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])["checkpoint"]
    iterations = len(_progress(tmp_path))
    assert last.endswith(f"model_{iterations - 1}.pt") and iterations >= 3


def _progress(run_dir) -> list:
    try:
        return json.loads((run_dir / "progress.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_a_gpu_runs_checkpoint_evaluates_on_a_cpu_machine(tmp_path, capsys):
    """A checkpoint whose config names the Warp backend on CUDA loads and evaluates here (native MuJoCo, CPU)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    checkpoint = train(_tiny(1), tmp_path, show_progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["env"].update(backend="warp", device="cuda")
    (tmp_path / "config.json").write_text(json.dumps(saved))
    main(["eval", "--policy", str(checkpoint), "--episodes", "2", "--set", "env.task.episode_length_steps=5",
          "--json"])
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["episodes"] == 2
    assert "native MuJoCo on the CPU" in captured.err
