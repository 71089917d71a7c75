"""Training curves of one or more runs from their progress.json: success (over all goals, and over the share drawn
from level 4 itself), lift share, orientation error and the curriculum stage against env steps, and env steps
against wall-clock minutes.

    python -m trifinger_s2r.train.curves --run "PPO only=~/runs/l4_ref" --run "DAgger + PPO=~/runs/l4_bc_ppo" \
        --out docs/figures/level4-curves.png

A label may name a chain of runs, each started from the one before with `train --init-from` (a new iteration count
and env-step count): `--run "DAgger + PPO, then cube_turning=~/runs/l4_bc_ppo+~/runs/l4_turn"`; the later runs'
env steps and minutes continue from the earlier ones'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trifinger_s2r.task.curriculum import STAGES

PANELS = (
    ("success_rate", "training success rate"),
    ("success_rate_level_4_goals", "success on the level-4 goals"),
    ("lifted_share", "episodes ending lifted"),
    ("orientation_error_p50_rad", "orientation error p50 (rad)"),
    ("curriculum_stage", "curriculum stage"),
)


def load_progress(run_dir: Path) -> list[dict]:
    path = Path(run_dir).expanduser() / "progress.json"
    if not path.is_file():
        raise FileNotFoundError(f"no progress.json in {run_dir}")
    return json.loads(path.read_text())


def chain_progress(parts: list[list[dict]]) -> list[dict]:
    """One progress list of runs that continue one another: a part whose env steps start below the previous part's
    last count (a run started with --init-from) has that count added; wall_s restarts are left to
    training_minutes, as for a resumed run."""
    chained: list[dict] = []
    for part in parts:
        last_steps = chained[-1]["env_steps"] if chained else 0
        offset = last_steps if part and part[0]["env_steps"] < last_steps else 0
        chained.extend({**entry, "env_steps": entry["env_steps"] + offset} for entry in part)
    return chained


def _series(progress: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(env steps, values) of the iterations in which the key has a value (episodes ended)."""
    steps, values = [], []
    for entry in progress:
        value = entry.get(key)
        if value is None:
            continue
        steps.append(entry["env_steps"])
        values.append(STAGES.index(value) if key == "curriculum_stage" else value)
    return steps, values


def training_minutes(progress: list[dict]) -> tuple[list[float], list[int]]:
    """(cumulative training minutes, env steps) per iteration: each `train` call's clock (wall_s) starts again at
    0, so a resumed run's minutes are added to those before it."""
    minutes, steps, offset_s, last_s = [], [], 0.0, 0.0
    for entry in progress:
        wall_s = entry.get("wall_s")
        if wall_s is None:
            continue
        if wall_s < last_s:
            offset_s += last_s
        last_s = wall_s
        minutes.append((offset_s + wall_s) / 60.0)
        steps.append(entry["env_steps"])
    return minutes, steps


def plot_curves(runs: dict[str, list[dict]], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS) + 1, figsize=(4.0 * (len(PANELS) + 1), 3.4))
    for label, progress in runs.items():
        for ax, (key, name) in zip(axes, PANELS):
            steps, values = _series(progress, key)
            ax.plot(steps, values, label=label)
            ax.set_xlabel("env steps")
            ax.set_ylabel(name)
        minutes, steps = training_minutes(progress)
        axes[-1].plot(minutes, steps, label=label)
    axes[len(PANELS) - 1].set_yticks(range(len(STAGES)), STAGES)
    axes[-1].set_xlabel("wall-clock minutes (this machine)")
    axes[-1].set_ylabel("env steps")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Plot training curves of runs from their progress.json.")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR[+DIR...]",
                        help="a run folder with its label (repeat for several runs); DIR+DIR: a chain of runs, "
                             "each started from the one before")
    parser.add_argument("--out", required=True, help="image file to write (.png)")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.run:
        label, sep, folder = spec.partition("=")
        if not sep:
            parser.error(f"--run {spec!r}: expected LABEL=DIR")
        runs[label] = chain_progress([load_progress(Path(part)) for part in folder.split("+")])
    print(plot_curves(runs, Path(args.out), args.title))


if __name__ == "__main__":
    main()
