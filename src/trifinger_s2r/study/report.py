"""What every study writes besides its figures: the results JSON with its provenance, and report.md."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

RESULTS_FILE = "study.json"
REPORT_FILE = "report.md"


def provenance(command: str) -> dict:
    """When, where and from which code a study ran."""
    return {"command": command, "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": code_commit(), "host": platform.node(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}


def code_commit() -> str | None:
    """The short commit of HEAD (None outside git)."""
    return _git("rev-parse", "--short", "HEAD") or None


REPORTING_SOURCES = ("study/report.py", "study/plots.py", "study/ablation.py", "study/randomization.py",
                     "study/robustness.py", "study/cli.py")
"""The package's files that only turn judgements into verdicts, figures and reports (or run other studies): a
change to them alone leaves every judged episode as it was."""


def code_version() -> str | None:
    """The version of the code that judges episodes: a hash of the git blobs of this package's sources at HEAD,
    except REPORTING_SOURCES. It changes with that code, not with docs, tests or the studies' reporting. None outside
    git or when those sources have uncommitted changes (then no id names the code that runs)."""
    excluded = [f":(exclude){path}" for path in REPORTING_SOURCES]
    if _git("status", "--porcelain", "--", ".", *excluded) != "":
        return None
    listing = _git("ls-tree", "-r", "--full-tree", "HEAD:./")
    if not listing:
        return None
    kept = [line for line in listing.splitlines() if line.split("\t", 1)[-1] not in REPORTING_SOURCES]
    return hashlib.sha1("\n".join(kept).encode()).hexdigest()


def _git(*args: str) -> str | None:
    """A git command's output, stripped, run in this package's folder (None when git fails or is absent)."""
    try:
        done = subprocess.run(["git", *args], check=False, capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent.parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()


def write_json(out_dir: Path, result: dict) -> Path:
    path = Path(out_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return path


def write_report(out_dir: Path, title: str, sections: Sequence[str]) -> Path:
    path = Path(out_dir) / REPORT_FILE
    path.write_text(f"# {title}\n\n" + "\n\n".join(s.strip() for s in sections if s.strip()) + "\n")
    return path


def percent_ci(summary: dict) -> str:
    """'75.0% (65.2-82.7%)': a success rate with its 80% Wilson interval."""
    return (f"{100 * summary['success_rate']:.1f}% ({100 * summary['ci80_low']:.1f}-"
            f"{100 * summary['ci80_high']:.1f}%)")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def compare(better: str, worse: str, a: dict, b: dict) -> dict:
    """Whether the 80% intervals settle 'better beats worse': reproduced when the interval of the difference a - b
    lies above zero over the pooled episodes and, with two or more seeds per agent, also over training seeds; refuted
    when both lie below zero; open otherwise. The difference's interval is the test of a difference (two agents'
    own intervals can overlap while their difference's excludes zero); requiring the seeds' one too keeps a verdict
    from resting on a few lucky training runs. `intervals_overlap` keeps the earlier rule (the agents' own 80%
    intervals overlap) for comparison with older reports."""
    low, high = difference_interval(a, b)
    over_seeds = seed_difference_interval(a.get("per_seed", []), b.get("per_seed", []))
    seeds_low, seeds_high = (low, high) if over_seeds is None else (over_seeds["ci80_low"], over_seeds["ci80_high"])
    if low > 0 and seeds_low > 0:
        verdict = "reproduced"
    elif high < 0 and seeds_high < 0:
        verdict = "refuted"
    else:
        verdict = "open"
    overlap = a["ci80_low"] <= b["ci80_high"] and b["ci80_low"] <= a["ci80_high"]
    return {"claim": f"{better} > {worse}", "verdict": verdict, "better": percent_ci(a), "worse": percent_ci(b),
            "difference": a["success_rate"] - b["success_rate"], "difference_ci80_low": low,
            "difference_ci80_high": high, "seeds_difference_ci80": over_seeds, "intervals_overlap": overlap,
            "to_decide": to_decide(a, b) if verdict == "open" else None}


VERDICT_RULE = ("reproduced: the 80% interval of the difference lies above zero, over the pooled episodes and, with "
                "two or more seeds per agent, over training seeds, which counts the spread between seeds that the "
                "pooled episodes do not see; refuted: both below zero; open: otherwise. The last column says whether "
                "the two agents' own 80% intervals overlap, the rule of the reports before 2026-12-07")
"""The rule of compare(), as the reports state it."""


def add_verdicts_by_seeds(verdicts: dict[str, list[dict]], agents: dict[str, dict]) -> None:
    """Give each verdict (per platform, of claims 'A > B' between agents) `by_seeds`: compare() on each agent's first
    k seeds, k = 1..K, each as {"seeds", "verdict", "difference", "difference_ci80_low", "difference_ci80_high",
    "seeds_ci80_low", "seeds_ci80_high"} (None where there is no interval over seeds). The study's verdict is the one
    at all K seeds; one that changes among the last k rests on a few training runs."""
    from trifinger_s2r.study.training import pool

    for where, claims in verdicts.items():
        for verdict in claims:
            names = verdict["claim"].split(" > ")
            better, worse = (agents[name]["runs"] for name in names)
            history = []
            for k in range(1, min(len(better), len(worse)) + 1):
                at_k = compare(*names, pool([r[where] for r in better[:k]]), pool([r[where] for r in worse[:k]]))
                over_seeds = at_k["seeds_difference_ci80"] or {}
                history.append({"seeds": k, "verdict": at_k["verdict"], "difference": at_k["difference"],
                                "difference_ci80_low": at_k["difference_ci80_low"],
                                "difference_ci80_high": at_k["difference_ci80_high"],
                                "seeds_ci80_low": over_seeds.get("ci80_low"),
                                "seeds_ci80_high": over_seeds.get("ci80_high")})
            verdict["by_seeds"] = history


def verdict_history(by_seeds: Sequence[dict]) -> str:
    """'open at 1-2 seeds, reproduced at 3-6, open at 7-14': a verdict's by_seeds as runs of equal verdicts."""
    runs: list[list] = []
    for row in by_seeds:
        if runs and runs[-1][0] == row["verdict"]:
            runs[-1][2] = row["seeds"]
        else:
            runs.append([row["verdict"], row["seeds"], row["seeds"]])
    parts = [f"{verdict} at {first}" + (f"-{last}" if last != first else "") for verdict, first, last in runs]
    if parts:
        parts[0] += " seed" + ("s" if runs[0][2] > 1 else "")
    return ", ".join(parts)


def verdict_history_lines(rows: Sequence[tuple[str, dict]]) -> str:
    """How each claim's verdict of (where, verdict) rows moved as seeds were added, as a list; '' below 2 seeds."""
    lines = [f"- {verdict['claim']}, {where}: {verdict_history(verdict['by_seeds'])}"
             for where, verdict in rows if len(verdict.get("by_seeds", [])) >= 2]
    if not lines:
        return ""
    return ("How each verdict moved as seeds were added (the verdict above is the one at all seeds; one that changes "
            "among the last seeds rests on a few training runs):\n\n" + "\n".join(lines))


def seed_difference_interval(a: list[float], b: list[float]) -> dict | None:
    """The difference of two agents' mean per-seed success rates with its 80% Welch t interval and the one-sided p
    of 'a > b': the spread between training seeds, which the pooled episodes' interval does not see. None with
    fewer than two seeds per agent or no spread at all."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if var_a + var_b == 0:
        return None
    mean = statistics.fmean(a) - statistics.fmean(b)
    dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    se = math.sqrt(var_a + var_b)
    half = float(stats.t.ppf(0.9, dof)) * se
    return {"difference": mean, "ci80_low": mean - half, "ci80_high": mean + half,
            "p_one_sided": float(stats.t.sf(mean / se, dof)), "seeds": [len(a), len(b)]}


def to_decide(a: dict, b: dict) -> dict | None:
    """For an open claim, a planning figure: how many episodes and training seeds per agent would put the 80%
    intervals of the difference clear of zero if the measured rates and the measured spread between seeds were the
    true ones (normal approximation over episodes, Welch's t over seeds; at a true effect of that size the verdict
    is then decided about half the time, so plan for more). None when the difference is zero; seeds None without
    two seeds per agent or any spread."""
    from scipy import stats

    difference = abs(a["success_rate"] - b["success_rate"])
    if difference == 0:
        return None
    rates_var = a["success_rate"] * (1 - a["success_rate"]) + b["success_rate"] * (1 - b["success_rate"])
    episodes = math.ceil(float(stats.norm.ppf(0.9)) ** 2 * rates_var / difference**2)
    per_a, per_b = a.get("per_seed", []), b.get("per_seed", [])
    seeds = None
    if len(per_a) >= 2 and len(per_b) >= 2:
        var_a, var_b = statistics.variance(per_a), statistics.variance(per_b)
        if var_a + var_b > 0:
            seeds = next(n for n in range(2, 100_000) if _welch_half_width(var_a, var_b, n) < difference)
    return {"episodes_per_agent": episodes, "seeds_per_agent": seeds, "episodes_now": [a["episodes"], b["episodes"]],
            "seeds_now": [len(per_a), len(per_b)]}


def _welch_half_width(var_a: float, var_b: float, seeds: int) -> float:
    """Half-width of the 80% Welch t interval of a difference of means with `seeds` seeds per agent."""
    from scipy import stats

    dof = (var_a + var_b) ** 2 / ((var_a**2 + var_b**2) / (seeds - 1)) if var_a**2 + var_b**2 > 0 else seeds - 1
    return float(stats.t.ppf(0.9, dof)) * math.sqrt((var_a + var_b) / seeds)


def to_decide_lines(rows: Sequence[tuple[str, dict]]) -> str:
    """What would settle each open claim of (where, verdict) rows, as a list; '' when none is open."""
    lines = []
    for where, verdict in rows:
        need = verdict.get("to_decide")
        if need is None:
            continue
        seeds = "" if need["seeds_per_agent"] is None else (
            f" and {need['seeds_per_agent']} training seeds (now {min(need['seeds_now'])})")
        lines.append(f"- {verdict['claim']}, {where}: if the measured difference ({100 * verdict['difference']:+.1f} "
                     f"points) and spread held, about {need['episodes_per_agent']:,} episodes (now "
                     f"{min(need['episodes_now']):,}){seeds} per agent would put its intervals clear of zero, half "
                     "the time: plan for more.")
    return ("What would decide the open claims:\n\n" + "\n".join(lines)) if lines else ""


def difference_interval(a: dict, b: dict) -> tuple[float, float]:
    """Interval of the difference of two success rates from their Wilson intervals, at those intervals' level (80%
    in the studies): Newcombe's hybrid score method (his method 10), which keeps its coverage at small N and at
    rates near 0 or 1 where the normal approximation does not."""
    p_a, p_b = a["success_rate"], b["success_rate"]
    low = p_a - p_b - math.hypot(p_a - a["ci80_low"], b["ci80_high"] - p_b)
    high = p_a - p_b + math.hypot(a["ci80_high"] - p_a, p_b - b["ci80_low"])
    return low, high


def percent_difference(verdict: dict) -> str:
    """'+3.8 points (-4.1 to +11.6)': a compare() difference with its 80% interval."""
    return (f"{100 * verdict['difference']:+.1f} points ({100 * verdict['difference_ci80_low']:+.1f} to "
            f"{100 * verdict['difference_ci80_high']:+.1f})")


def percent_seed_difference(verdict: dict) -> str:
    """'+3.8 points (-9.0 to +16.6), p = 0.31': the difference over training seeds, or '-' without it."""
    seeds = verdict.get("seeds_difference_ci80")
    if seeds is None:
        return "-"
    return (f"{100 * seeds['difference']:+.1f} points ({100 * seeds['ci80_low']:+.1f} to "
            f"{100 * seeds['ci80_high']:+.1f}), p = {seeds['p_one_sided']:.2f}")


def provenance_section(prov: dict) -> str:
    return (f"Command: `{prov['command']}`  \nRun {prov['date_utc']} at commit {prov['commit']} on {prov['host']} "
            f"({prov['cpu_count']} CPUs, Python {prov['python']}).")
