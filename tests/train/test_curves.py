"""Training curves from progress.json: a resumed run's minutes add up, and the figure is written."""

from __future__ import annotations

import json

import pytest

from trifinger_s2r.train.curves import load_progress, main, training_minutes


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
