"""DAgger from the scripted controller: a tiny run writes a checkpoint that PPO training starts from."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest
import torch

from trifinger_s2r.train.config import preset
from trifinger_s2r.train.distributed import process_group_from_env
from trifinger_s2r.train.imitation import IMITATION_FILE, ImitationConfig, _Dataset, _fit, imitate
from trifinger_s2r.train.trainer import make_runner, train


def _tiny(max_iterations: int = 1):
    cfg = preset("repose-cpu")
    env = dataclasses.replace(cfg.env, num_envs=8, num_threads=1,
                              task=dataclasses.replace(cfg.env.task, episode_length_steps=6))
    return dataclasses.replace(cfg, env=env, num_steps_per_env=4, max_iterations=max_iterations, save_interval=1)


def test_imitation_writes_a_checkpoint_that_training_starts_from(tmp_path):
    lines: list[str] = []
    checkpoint = imitate(_tiny(), ImitationConfig(rounds=2, steps_per_round=4, policy_std=0.3), tmp_path / "bc",
                         lines.append)
    record = json.loads((tmp_path / "bc" / IMITATION_FILE).read_text())
    assert [r["teacher_share"] for r in record["rounds"]] == [1.0, 0.0]
    assert record["rounds"][-1]["env_steps"] == 2 * 4 * 8 and len(lines) == 2
    saved = torch.load(checkpoint, weights_only=False)
    std = next(v for k, v in saved["actor_state_dict"].items() if k.endswith("std_param"))
    assert torch.allclose(std, torch.full_like(std, 0.3))
    last = train(dataclasses.replace(_tiny(), init_from=str(checkpoint)), tmp_path / "ppo", show_progress=False)
    assert last.name == "model_0.pt"


def test_fit_regresses_the_actor_mean_onto_the_teacher_actions():
    with tempfile.TemporaryDirectory() as run_dir:
        runner = make_runner(_tiny(), Path(run_dir), process_group_from_env())
    actor = runner.alg.actor
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(512, runner.env.num_actor_obs, generator=generator)
    actions = torch.tanh(obs[:, :9])  # a smooth function of the observation
    data = _Dataset(10_000)
    data.add(obs, actions)
    cfg = ImitationConfig(epochs=1, batch_size=128)
    optimizer = torch.optim.Adam(actor.mlp.parameters(), lr=3e-3)
    first = _fit(actor, data, cfg, optimizer, generator)
    for _ in range(30):
        last = _fit(actor, data, cfg, optimizer, generator)
    assert last < 0.3 * first


def test_dataset_keeps_only_the_latest_samples():
    data = _Dataset(max_samples=10)
    for value in range(4):
        data.add(torch.full((4, 2), float(value)), torch.zeros(4, 9))
    obs, _ = data.tensors()
    assert len(obs) == 8 and obs[0, 0] == 2.0


@pytest.mark.parametrize("field", ["rounds", "steps_per_round", "epochs", "batch_size", "max_samples"])
def test_bad_settings_name_the_field(field):
    with pytest.raises(ValueError, match=f"imitation.{field}"):
        ImitationConfig(**{field: 0})


def test_teacher_bench_judges_the_controller_through_evals_episode_loop():
    from trifinger_s2r.bench.teacher_bench import evaluate_teacher

    result = evaluate_teacher(level=3, episodes=3, seed=4)
    assert result["episodes"] == 3 and result["level"] == 3
    assert 0.0 <= result["ci80_low"] <= result["success_rate"] <= result["ci80_high"] <= 1.0
    assert 0.0 <= result["lifted_share"] <= 1.0


def test_drift_bench_accounts_for_every_drifted_episode_and_a_limp_robot_lifts_nothing():
    from trifinger_s2r.bench.grasp_drift import measure_drift

    cfg = preset("repose-cpu")
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(
        cfg.env, num_threads=1, task=dataclasses.replace(cfg.env.task, episode_length_steps=60)))
    result = measure_drift(lambda obs: torch.zeros(obs["policy"].shape[0], 9), cfg, 8, 0, 0.25)
    assert result["lifted_share"] == 0.0 and result["success_rate"] == 0.0  # zero torque lifts nothing
    assert result["drifted_share"] == pytest.approx(result["drifted_on_table_share"] + result["drifted_in_air_share"])
    assert result["drifted_in_air_share"] == 0.0 and result["lifted_without_drift_share"] == 0.0


def test_drift_bench_names_a_missing_policy_in_one_line():
    from trifinger_s2r.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["bench", "drift", "--policy", "/nonexistent/model_1.pt"])
    assert "bench drift: --policy /nonexistent/model_1.pt" in str(stop.value.code) and "\n" not in str(stop.value.code)


def test_teacher_bench_takes_config_and_controller_changes_and_records_them():
    from trifinger_s2r.bench.teacher_bench import evaluate_teacher

    result = evaluate_teacher(level=4, episodes=2, seed=4, assignments=("env.task.friction_cone=pyramidal",),
                              expert_assignments=("hold.position_npm=30",))
    assert result["set"] == ["env.task.friction_cone=pyramidal"] and result["expert"] == ["hold.position_npm=30"]
    assert result["episodes"] == 2


def test_bad_controller_changes_are_one_line_errors():
    from trifinger_s2r.cli import main

    for bad in ("nosuch=1", "hold.nosuch=1", "hold=1", "stiffness_npm=-5", "hold.position_npm=oops"):
        with pytest.raises(SystemExit) as stop:
            main(["bench", "teacher", "--episodes", "1", "--expert", bad])
        message = str(stop.value.code)
        assert message.startswith("trifinger-s2r bench teacher:") and "\n" not in message, message


def test_turn_bench_reports_every_cell_and_the_wrench_hold_turns_a_tilt_the_old_carry_cannot():
    from trifinger_s2r.bench.turn_bench import measure_turns

    new = measure_turns((0.6,), envs_per_cell=6, seed=3, seconds=2.0)["results"]
    old = measure_turns((0.6,), envs_per_cell=6, seed=3, seconds=2.0,
                        expert_assignments=("hold_above_rest_m=1.0",))["results"]
    assert set(new) == {"tilt", "yaw"} and set(new["tilt"]) == {"0.6"}
    cell = new["tilt"]["0.6"]
    assert cell["grasps"] >= 5 and 0.0 <= cell["within_tolerance_share"] <= cell["held_share"] <= 1.0
    assert new["tilt"]["0.6"]["mean_error_rad"] < old["tilt"]["0.6"]["mean_error_rad"] - 0.2


def test_turn_bench_refuses_bad_angles_in_one_line():
    from trifinger_s2r.cli import main

    for bad in ("0", "4", "x"):
        with pytest.raises(SystemExit) as stop:
            main(["bench", "turn", "--angles", bad])
        assert stop.value.code == 2  # argparse's usage error, one line on stderr
