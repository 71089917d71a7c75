import math
import time

from rich.progress import Progress

from trifinger_s2r.train.progress import EtaColumn, ProgressLog


def _log(max_iterations: int, budget_s: float) -> ProgressLog:
    log = ProgressLog.__new__(ProgressLog)
    log.max_iterations, log.deadline_s = max_iterations, time.monotonic() + budget_s
    log.history = [{"collect_s": 4.0, "learn_s": 1.0}] * 3
    return log


def test_eta_is_the_wall_clock_budget_when_it_ends_first():
    assert 170 < _log(max_iterations=5000, budget_s=180)._eta_s(it=3, seconds=5.0) <= 180


def test_eta_counts_iterations_when_they_end_first():
    assert _log(max_iterations=13, budget_s=float("inf"))._eta_s(it=3, seconds=5.0) == 50.0


def test_eta_column_renders_hours_minutes_seconds():
    with Progress(EtaColumn(), disable=True) as progress:
        task = progress.add_task("x", total=10, eta_s=3725.0)
        assert EtaColumn().render(progress.tasks[task]).plain == "eta 1:02:05"
        progress.update(task, eta_s=math.inf)
        assert EtaColumn().render(progress.tasks[task]).plain == "eta -:--:--"
