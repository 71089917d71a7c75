"""Training curves from progress.json: a resumed run's minutes add up, and the figure is written."""

from __future__ import annotations

import json

import pytest

from trifinger_s2r.train.curves import chain_progress, load_progress, main, training_minutes


def _entry(iteration: int, wall_s: float, stage: str = "lift", success: float | None = 0.1) -> dict:
    return {"iteration": iteration, "env_steps": 1000 * iteration, "success_rate": success, "lifted_share": success,
            "orientation_error_p50_rad": 1.0 if success is not None else None,
            "curriculum_stage": stage, "wall_s": wall_s}


def test_a_resumed_runs_minutes_continue_from_the_first_calls():
    progress = [_entry(1, 60.0), _entry(2, 120.0), _entry(3, 30.0), _entry(4, 90.0)]  # resumed after iteration 2
    minutes, steps = training_minutes(progress)
    assert minutes == [1.0, 2.0, 2.5, 3.5] and steps == [1000, 2000, 3000, 4000]


def test_the_figure_is_written_from_run_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "progress.json").write_text(json.dumps([_entry(1, 10.0, success=None), _entry(2, 20.0, "yaw")]))
    out = tmp_path / "figures" / "curves.png"
    main(["--run", f"a run={run}", "--out", str(out)])
    assert out.stat().st_size > 10_000


def test_a_folder_without_progress_is_named():
    with pytest.raises(FileNotFoundError, match="no progress.json in /nowhere"):
        load_progress("/nowhere")


def test_a_chain_of_runs_continues_in_env_steps_and_minutes():
    first = [_entry(1, 60.0), _entry(2, 120.0)]
    second = [_entry(1, 30.0), _entry(2, 60.0)]  # started from the first with --init-from: counts from 0 again
    chained = chain_progress([first, second])
    assert [e["env_steps"] for e in chained] == [1000, 2000, 3000, 4000]
    assert training_minutes(chained)[0] == [1.0, 2.0, 2.5, 3.0]
    resumed = chain_progress([first, [_entry(3, 30.0)]])  # a resumed run's counts already continue
    assert [e["env_steps"] for e in resumed] == [1000, 2000, 3000]


def test_a_chain_is_named_with_plus(tmp_path):
    for name, entries in (("a", [_entry(1, 10.0)]), ("b", [_entry(1, 10.0, "yaw")])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "progress.json").write_text(json.dumps(entries))
    out = tmp_path / "chain.png"
    main(["--run", f"chain={tmp_path / 'a'}+{tmp_path / 'b'}", "--out", str(out)])
    assert out.stat().st_size > 10_000
