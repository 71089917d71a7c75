"""The command line contract: subcommands, flags and JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trifinger_s2r.cli import main


def test_bench_env_prints_the_documented_json(capsys):
    main(["bench", "env", "--backend", "mujoco", "--num-envs", "4", "--steps", "4", "--threads", "1", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["env_policy_steps_per_s"] > 0 and result["raw_physics_policy_steps_per_s"] > 0
    assert result["num_envs"] == 4 and result["backend"] == "mujoco"
    assert result["friction_cone"] == "pyramidal" and result["impratio"] == 1.0


def test_bench_env_runs_the_stiff_contact_model(capsys):
    main(["bench", "env", "--num-envs", "4", "--steps", "4", "--threads", "1", "--friction-cone", "elliptic",
          "--impratio", "10", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["friction_cone"] == "elliptic" and result["impratio"] == 10.0
    assert result["env_policy_steps_per_s"] > 0


def test_bench_pybullet_prints_the_documented_json(capsys):
    main(["bench", "pybullet", "--steps", "2", "--json"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["policy_steps_per_s"] > 0


def test_negative_env_count_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "trifinger_s2r.cli", "bench", "env", "--num-envs", "-3"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "positive integer" in proc.stderr


def test_unknown_backend_lists_the_choices():
    with pytest.raises(SystemExit):
        main(["bench", "env", "--backend", "physx"])


def test_bench_train_prints_samples_per_second(capsys):
    main(["bench", "train", "--num-envs", "4", "--iterations", "1", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["train_samples_per_s"] > 0 and result["iterations_timed"] == 1


def _command_paths(parser, prefix=()):
    """Every command path of the CLI's parser tree, e.g. (), ("train",), ("farm", "user", "add")."""
    import argparse

    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _command_paths(child, (*prefix, name))


def test_every_command_help_renders(capsys):
    from trifinger_s2r.cli import build_parser

    paths = list(_command_paths(build_parser()))
    assert ("train",) in paths and ("bench", "env") in paths and len(paths) > 10
    for path in paths:
        with pytest.raises(SystemExit) as stop:
            main([*path, "--help"])
        assert stop.value.code == 0, path
        assert "usage:" in capsys.readouterr().out, path


def test_farm_http_commands_do_not_load_the_training_stack():
    """`farm submit/status/results/robots` only talk HTTP: importing torch there cost ~5 s per command."""
    code = (
        "import sys\n"
        "from trifinger_s2r.cli import main\n"
        "for command in ('submit', 'status', 'results', 'robots'):\n"
        "    try:\n"
        "        main(['farm', command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'mujoco', 'rsl_rl', 'pybullet') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "HEAVY []" in out


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("success_rate", 0.7816040731078, "78.2%"), ("ci80_low", 0.5, "50.0%"),
    ("mean_position_error_m", 0.01535834139212966, "1.54 cm"),
    ("mean_orientation_error_rad", 1.5707963267948966, "1.571 rad (90.0 deg)"),
    ("env_policy_steps_per_s", 12345.678, "12,346/s"), ("episodes", 40, "40"), ("level", 4, "4"),
    ("statuses", {"ok": 2}, '{"ok": 2}'), ("env_over_raw", 0.87654321, "0.8765"),
])
def test_tables_show_numbers_as_people_read_them(key, value, shown):
    from trifinger_s2r.clitools import format_value

    assert format_value(key, value) == shown
