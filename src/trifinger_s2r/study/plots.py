"""The studies' figures in the paper's form: success rates with 80% Wilson intervals as bars, success against env
steps as mean and spread over seeds."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

_VERDICT_COLOURS = {"reproduced": "tab:green", "refuted": "tab:red", "open": "tab:grey"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    return plt


def success_bars(path: Path, groups: Sequence[str], series: dict[str, Sequence[dict]], title: str,
                 target: float | None = None, points: dict[str, Sequence[Sequence[float]]] | None = None) -> Path:
    """Grouped bars: one group per name in groups, one bar per series (e.g. platform), each bar a summary with
    success_rate, ci80_low, ci80_high and episodes; error bars are the 80% Wilson intervals. points: per series, per
    group, extra values drawn as dots (e.g. each seed's success)."""
    plt = _pyplot()
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(groups) * max(1, len(series)) + 2.0), 3.8))
    for k, (name, summaries) in enumerate(series.items()):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        rates = [s["success_rate"] for s in summaries]
        errors = [[r - s["ci80_low"] for r, s in zip(rates, summaries)],
                  [s["ci80_high"] - r for r, s in zip(rates, summaries)]]
        bars = ax.bar(xs, rates, width, yerr=errors, capsize=4, label=name, alpha=0.85)
        for x, rate, s in zip(xs, rates, summaries):
            ax.annotate(f"{100 * rate:.0f}%\nN={s['episodes']}", (x, 0.0), textcoords="offset points",
                        xytext=(0, 3), ha="center", va="bottom", fontsize=7,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.8, "lw": 0})
        for x, values in zip(xs, (points or {}).get(name, [])):
            ax.scatter([x] * len(values), values, color="black", s=10, zorder=3)
        bars.set_label(name)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {100 * target:.0f}%")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("success rate (80% Wilson CI)")
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    return _save(plt, fig, path)


def learning_curves(path: Path, curves: dict[str, Sequence[Sequence[tuple[int, float | None]]]], title: str) -> Path:
    """Training success against env steps: per label, the mean over its seeds' curves (lists of (env_steps,
    success_rate or None)) with the min-max band; iterations where no episode ended are skipped."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for label, runs in curves.items():
        length = min(len(run) for run in runs) if runs else 0
        steps, mean, low, high = [], [], [], []
        for i in range(length):
            values = [run[i][1] for run in runs if run[i][1] is not None and not math.isnan(run[i][1])]
            if not values:
                continue
            steps.append(runs[0][i][0])
            mean.append(sum(values) / len(values))
            low.append(min(values))
            high.append(max(values))
        line, = ax.plot(steps, mean, marker="o" if len(steps) < 20 else None,
                        label=f"{label} (mean of {len(runs)} seed{'s' if len(runs) > 1 else ''})")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("env steps")
    ax.set_ylabel("training success rate")
    ax.set_ylim(0, 1.02)
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def difference_intervals(path: Path, rows: Sequence[tuple[str, dict]], title: str) -> Path:
    """One row per (label, compare() verdict): the difference in points with its 80% interval over the pooled
    episodes (thick) and over training seeds (thin, where there is one), against the zero line the verdict is read
    from; the verdict is written at the right."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.55 * max(1, len(rows))))
    for y, (label, verdict) in enumerate(reversed(rows)):
        colour = _VERDICT_COLOURS.get(verdict["verdict"], "black")
        low, high = 100 * verdict["difference_ci80_low"], 100 * verdict["difference_ci80_high"]
        ax.plot([low, high], [y + 0.1, y + 0.1], color=colour, linewidth=5, alpha=0.6, solid_capstyle="butt")
        seeds = verdict.get("seeds_difference_ci80")
        if seeds is not None:
            ax.plot([100 * seeds["ci80_low"], 100 * seeds["ci80_high"]], [y - 0.15, y - 0.15], color=colour,
                    linewidth=1.5)
        ax.plot([100 * verdict["difference"]], [y], marker="o", color="black", markersize=4)
        ax.annotate(verdict["verdict"], (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    color=colour)
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [label for label, _ in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("difference in success rate, points: 80% interval over episodes (thick), over training seeds "
                  "(thin)", fontsize=8)
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    return _save(plt, fig, path)


def differences_by_seeds(path: Path, rows: Sequence[tuple[str, Sequence[dict]]], title: str) -> Path:
    """One panel per (label, report.add_verdicts_by_seeds history): the difference in points against the number of
    seeds pooled, its 80% interval over episodes (band) and over training seeds (dashed), the zero line, and each
    point coloured by the verdict at that many seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), 1, figsize=(6.5, 0.6 + 1.7 * len(rows)), sharex=True, squeeze=False)
    for ax, (label, history) in zip(axes[:, 0], rows):
        seeds = [h["seeds"] for h in history]
        ax.fill_between(seeds, [100 * h["difference_ci80_low"] for h in history],
                        [100 * h["difference_ci80_high"] for h in history], color="tab:blue", alpha=0.2, linewidth=0)
        for bound in ("seeds_ci80_low", "seeds_ci80_high"):
            ax.plot(seeds, [math.nan if h[bound] is None else 100 * h[bound] for h in history], color="tab:blue",
                    linestyle="--", linewidth=1)
        ax.plot(seeds, [100 * h["difference"] for h in history], color="black", linewidth=1)
        ax.scatter(seeds, [100 * h["difference"] for h in history], zorder=3, s=18,
                   c=[_VERDICT_COLOURS.get(h["verdict"], "black") for h in history])
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
        ax.set_ylabel("points", fontsize=8)
        ax.set_title(label.replace("\n", ", "), fontsize=8)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("training seeds pooled per agent\nband: 80% interval over episodes; dashed: over seeds; "
                           "dot: the verdict (green reproduced, grey open, red refuted)", fontsize=7)
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(textwrap.fill(title, 80), fontsize=9)
    return _save(plt, fig, path)


def claim_figures(out_dir: Path, stem: str, rows: Sequence[tuple[str, dict]], about: str, by_seeds: bool) -> None:
    """A study's claims as figures: STEM_differences.png (difference_intervals) and, where by_seeds, STEM_by_seeds.png
    (differences_by_seeds) of (label, compare() verdict with its by_seeds) rows; about says what was run."""
    if not rows:
        return
    difference_intervals(out_dir / f"{stem}_differences.png", rows, f"The claims as differences, {about}")
    if by_seeds:
        differences_by_seeds(out_dir / f"{stem}_by_seeds.png", [(label, v["by_seeds"]) for label, v in rows],
                             f"The claims' differences as seeds were added, {about}")


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
