"""Training with and without domain randomisation (the paper's Fig. 4): success against env steps (mean and spread
over seeds), then both agents judged in our simulation (the preset's randomisation with the camera model on, the
conditions closest to a robot) and on PyBullet.

The paper's findings: randomisation hardly changes success in simulation after initial training, and it is what
lets the policy transfer. Here "with > without" is reported per platform as reproduced, refuted or open by the 80% intervals of
the difference (report.compare).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trifinger_s2r.study import report
from trifinger_s2r.study.plots import claim_figures, learning_curves, success_bars
from trifinger_s2r.study.training import Agent, TrainingStudyConfig, run_agents, select_agents

AGENTS = (
    Agent("with randomisation", ("env.task.randomization.enabled=true",)),
    Agent("without randomisation", ("env.task.randomization.enabled=false",)),
)


def run_randomization(study: TrainingStudyConfig, out_dir: Path, command: str = "",
                      progress: Callable[[str], None] | None = None) -> dict:
    """Train and judge both agents into out_dir (study.json, figures, report.md, runs/, videos/)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = report.provenance(command)  # when it started, at which commit
    selected = select_agents(study, AGENTS)
    agents = run_agents(study, selected, out_dir, progress)
    platforms = ["sim"] + (["pybullet"] if study.pybullet else [])
    with_dr, without_dr = (a.name for a in AGENTS)
    both = with_dr in agents and without_dr in agents
    verdicts = {p: [report.compare(with_dr, without_dr, agents[with_dr][p], agents[without_dr][p])] if both else []
                for p in platforms}
    report.add_verdicts_by_seeds(verdicts, agents)
    by_seeds = both and study.seeds >= 2
    result = {"study": "randomization", "preset": study.preset, "budget_steps": study.budget_steps,
              "seeds": study.seeds, "episodes": study.episodes, "overrides": list(study.overrides),
              "agents": agents, "verdicts": verdicts, "figures": ["randomization_curves.png", "randomization.png"]
              + (["randomization_differences.png"] if both else []) + (["randomization_by_seeds.png"] if by_seeds else []),
              "provenance": provenance}
    report.write_json(out_dir, result)
    names = [a.name for a in selected]
    learning_curves(out_dir / "randomization_curves.png", {n: [r["curve"] for r in agents[n]["runs"]] for n in names},
                    f"Training success with and without randomisation, {study.preset} ({study.seeds} seed(s))")
    series = {_platform_name(p): [agents[n][p] for n in names] for p in platforms}
    points = {_platform_name(p): [agents[n][p]["per_seed"] for n in names] for p in platforms}
    success_bars(out_dir / "randomization.png", names, series, f"Randomisation on/off, {study.preset}: "
                 f"{study.budget_steps:,} env steps, N = {study.episodes} per seed", points=points)
    claim_figures(out_dir, "randomization", [(f"with > without\n{_platform_name(p)}", v) for p in platforms
                                             for v in verdicts[p]],
                  f"{study.preset}: {study.seeds} seed(s) x {study.budget_steps:,} env steps, N = {study.episodes} per "
                  "seed", by_seeds)
    _write_report(out_dir, result, platforms)
    return result


def _platform_name(platform: str) -> str:
    return "our sim (randomised, camera model on)" if platform == "sim" else "PyBullet TriFinger"


def _write_report(out_dir: Path, result: dict, platforms: list[str]) -> None:
    rows = [[name, *(report.percent_ci(agent[p]) for p in platforms),
             ", ".join("-" if r["final_training_success"] is None else f"{100 * r['final_training_success']:.0f}%"
                       for r in agent["runs"])]
            for name, agent in result["agents"].items()]
    verdict_rows = [[_platform_name(p), v["claim"], v["verdict"], v["better"], v["worse"], report.percent_difference(v),
                     report.percent_seed_difference(v), "yes" if v.get("intervals_overlap") else "no"]
                    for p in platforms for v in result["verdicts"][p]]
    sections = [
        (f"Preset `{result['preset']}`, {result['seeds']} seed(s) per agent, {result['budget_steps']:,} env steps "
         f"each, N = {result['episodes']} evaluation episodes per seed and platform (pooled over seeds below)."),
        report.provenance_section(result["provenance"]),
        "![training success](randomization_curves.png)",
        report.table(["agent", *(f"success, {_platform_name(p)}" for p in platforms),
                      "final training success per seed"], rows),
        "![success per agent](randomization.png)",
        f"With against without randomisation ({report.VERDICT_RULE}):\n\n"
        + report.table(["where", "claim", "verdict", "with", "without", "difference (80% interval)",
                        "over training seeds (80% Welch interval, one-sided p)",
                        "agents' intervals overlap"], verdict_rows),
        report.to_decide_lines([(_platform_name(p), v) for p in platforms for v in result["verdicts"][p]]),
        *(["![with against without as a difference](randomization_differences.png)"] if verdict_rows else []),
        report.verdict_history_lines([(_platform_name(p), v) for p in platforms for v in result["verdicts"][p]]),
        *(["![the difference as seeds were added](randomization_by_seeds.png)"]
          if "randomization_by_seeds.png" in result["figures"] else []),
    ]
    report.write_report(out_dir, "Domain randomisation on and off", sections)
