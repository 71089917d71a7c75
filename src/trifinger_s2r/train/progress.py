"""What a training run shows and keeps of its progress: the progress bar and progress.json, per iteration."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from pathlib import Path

import torch
from rich.progress import Progress, ProgressColumn, Task
from rich.text import Text

from trifinger_s2r.task import curriculum

PROGRESS_FILE = "progress.json"


class EtaColumn(ProgressColumn):
    """Time left: to max_iterations at the recent pace, or to the wall-clock budget if that comes first."""

    def render(self, task: Task) -> Text:
        remaining = task.fields.get("eta_s")
        if remaining is None or not math.isfinite(remaining):
            return Text("eta -:--:--", style="progress.remaining")
        hours, rest = divmod(int(remaining), 3600)
        return Text(f"eta {hours}:{rest // 60:02d}:{rest % 60:02d}", style="progress.remaining")


def read_progress(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / PROGRESS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def write_progress(run_dir: Path, entries: list[dict]) -> None:
    """progress.json, replaced atomically (a killed run leaves a whole file); NaN is written as null."""
    path = Path(run_dir) / PROGRESS_FILE
    clean = [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in e.items()} for e in entries]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean))
    os.replace(tmp, path)


class ProgressLog:
    """Wraps the rsl_rl logger's per-iteration `log`: silences its console block, records the iteration (appended to
    progress.json as training goes, when `run_dir` is given) and drives the progress bar."""

    def __init__(self, runner, progress: Progress, task_id, steps_per_iteration: int, max_iterations: int,
                 deadline_s: float, run_dir: Path | None, start: int = 0) -> None:
        self.runner, self.progress, self.task_id = runner, progress, task_id
        self.steps_per_iteration, self.max_iterations = steps_per_iteration, max_iterations
        self.deadline_s, self.run_dir = deadline_s, run_dir
        self.original = runner.logger.log
        # a resumed run continues from its checkpoint: later iterations of the killed run are done again
        self.earlier = [e for e in read_progress(run_dir) if e["iteration"] <= start] if run_dir is not None else []
        self.history: list[dict] = []
        self.started_s = time.monotonic()
        self.last_success: tuple[int, float] | None = None

    def __call__(self, **kwargs) -> None:
        rate = self._episode_mean("Episode/success_rate")
        position_error_m = self._episode_mean("Episode/final_position_error_m")
        diagnostics = self._diagnostics(kwargs["it"])
        with contextlib.redirect_stdout(io.StringIO()):
            self.original(**kwargs)
        it = kwargs["it"] + 1
        seconds = kwargs["collect_time"] + kwargs["learn_time"]
        self.history.append({
            "iteration": it, "env_steps": it * self.steps_per_iteration, "success_rate": rate,
            "final_position_error_m": position_error_m,
            **diagnostics,
            "steps_per_s": self.steps_per_iteration / seconds,
            "collect_s": kwargs["collect_time"], "learn_s": kwargs["learn_time"],
            "wall_s": time.monotonic() - self.started_s,
        })
        if self.run_dir is not None:
            write_progress(self.run_dir, self.earlier + self.history)
        if math.isfinite(rate):
            self.last_success = (it, rate)
        self.progress.update(self.task_id, completed=it, description=self._describe(it, seconds),
                             eta_s=self._eta_s(it, seconds))

    def _describe(self, it: int, seconds: float) -> str:
        success = "-" if self.last_success is None else f"{self.last_success[1]:.0%} (episodes ended by it " \
            f"{self.last_success[0]})"
        stage = self.history[-1].get("curriculum_stage")
        return (f"it {it} | {it * self.steps_per_iteration / 1e6:.2f}M steps | "
                f"{self.steps_per_iteration / seconds:,.0f} steps/s | success {success}"
                + (f" | stage {stage}" if stage else ""))

    def _eta_s(self, it: int, seconds: float) -> float:
        recent = [h["collect_s"] + h["learn_s"] for h in self.history[-10:]] or [seconds]
        by_iterations = (self.max_iterations - it) * sum(recent) / len(recent)
        return min(by_iterations, max(0.0, self.deadline_s - time.monotonic()))

    def _episode_values(self, key: str) -> torch.Tensor:
        """An episode-end statistic of every episode that ended this iteration (empty if none did)."""
        values = [torch.as_tensor(e[key]).reshape(-1).float() for e in self.runner.logger.ep_extras if key in e]
        return torch.cat(values) if values else torch.empty(0)

    def _episode_mean(self, key: str) -> float:
        """Mean of an episode-end statistic over the episodes that ended this iteration (nan if none did)."""
        values = self._episode_values(key)
        return float(values.mean()) if values.numel() else float("nan")

    def _diagnostics(self, it: int) -> dict:
        """Level-4 learning diagnostics of this iteration: lift share, orientation error percentiles, level-4 success
        and the curriculum's state (nan where no episode ended); the percentiles also go to TensorBoard."""
        orientation = self._episode_values("Episode/final_orientation_error_rad")
        found = orientation.numel() > 0
        p50, p90 = (torch.quantile(orientation, torch.tensor([0.5, 0.9])).tolist() if found else [float("nan")] * 2)
        writer = self.runner.logger.writer
        if writer is not None and found:
            writer.add_scalar("Episode/orientation_error_p50_rad", p50, it)
            writer.add_scalar("Episode/orientation_error_p90_rad", p90, it)
        return {
            "lifted_share": self._episode_mean("Episode/lifted_at_end"),
            "orientation_error_p50_rad": p50, "orientation_error_p90_rad": p90,
            "success_rate_level_4_goals": self._episode_mean("Episode/success_level_4_goals"),
            **self._curriculum(),
        }

    def _curriculum(self) -> dict:
        """The env's curriculum at the end of this iteration (nothing when it is off)."""
        env = self.runner.env
        cfg, state = env.task.curriculum, env.curriculum_state
        if not cfg.enabled:
            return {}
        return {"curriculum_stage": curriculum.stage_name(cfg, state),
                "curriculum_difficulty": curriculum.difficulty(cfg, state),
                "curriculum_max_tilt_rad": state.tilt_rad, "curriculum_max_yaw_rad": state.yaw_rad,
                "curriculum_promote_success": curriculum.promotion_threshold(cfg, state)}
