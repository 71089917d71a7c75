"""The paper's observation/reward ablation (its Fig. 3): O-KP/R-KP, O-KP/R-PQ, O-PQ/R-KP and O-PQ/R-PQ, each trained
K seeds at equal env steps and judged on N episodes per seed in our simulation (camera model on) and on PyBullet.

The paper's finding (real robot, N = 40, 80% intervals): keypoints in either the observation or the reward beat
position+quaternion, and keypoints in both are best. Each of those orderings is reported as reproduced, refuted or
open by the 80% intervals of the difference, over the pooled episodes and over training seeds
(report.compare).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trifinger_s2r.study import report
from trifinger_s2r.study.plots import claim_figures, learning_curves, success_bars
from trifinger_s2r.study.training import Agent, TrainingStudyConfig, run_agents, select_agents

AGENTS = (
    Agent("O-KP/R-KP", ("env.task.obs_type=keypoints", "env.task.reward_type=keypoints")),
    Agent("O-KP/R-PQ", ("env.task.obs_type=keypoints", "env.task.reward_type=pq")),
    Agent("O-PQ/R-KP", ("env.task.obs_type=pq", "env.task.reward_type=keypoints")),
    Agent("O-PQ/R-PQ", ("env.task.obs_type=pq", "env.task.reward_type=pq")),
)
CLAIMS = (
    ("O-KP/R-KP", "O-KP/R-PQ"), ("O-KP/R-KP", "O-PQ/R-KP"), ("O-KP/R-KP", "O-PQ/R-PQ"),
    ("O-KP/R-PQ", "O-PQ/R-PQ"), ("O-PQ/R-KP", "O-PQ/R-PQ"),
)
"""(better, worse) pairs of the paper's Fig. 3."""


def run_ablation(study: TrainingStudyConfig, out_dir: Path, command: str = "",
                 progress: Callable[[str], None] | None = None) -> dict:
    """Train and judge the four agents into out_dir (study.json, figures, report.md, runs/, videos/)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = report.provenance(command)  # when it started, at which commit
    selected = select_agents(study, AGENTS)
    agents = run_agents(study, selected, out_dir, progress)
    platforms = ["sim"] + (["pybullet"] if study.pybullet else [])
    claims = [(a, b) for a, b in CLAIMS if a in agents and b in agents]
    verdicts = {p: [report.compare(a, b, agents[a][p], agents[b][p]) for a, b in claims] for p in platforms}
    report.add_verdicts_by_seeds(verdicts, agents)
    by_seeds = bool(claims) and study.seeds >= 2
    result = {"study": "ablation", "preset": study.preset, "budget_steps": study.budget_steps, "seeds": study.seeds,
              "episodes": study.episodes, "overrides": list(study.overrides), "agents": agents, "verdicts": verdicts,
              "figures": ["ablation.png", "ablation_curves.png"] + (["ablation_differences.png"] if claims else [])
              + (["ablation_by_seeds.png"] if by_seeds else []),
              "provenance": provenance}
    report.write_json(out_dir, result)
    names = [a.name for a in selected]
    series = {_platform_name(p): [agents[n][p] for n in names] for p in platforms}
    points = {_platform_name(p): [agents[n][p]["per_seed"] for n in names] for p in platforms}
    success_bars(out_dir / "ablation.png", names, series, f"Observation/reward ablation on {study.preset}: "
                 f"{study.seeds} seed(s) x {study.budget_steps:,} env steps, N = {study.episodes} per seed", points=points)
    learning_curves(out_dir / "ablation_curves.png", {n: [r["curve"] for r in agents[n]["runs"]] for n in names},
                    f"Training success, {study.preset}")
    claim_figures(out_dir, "ablation", [(f"{v['claim']}\n{_platform_name(p)}", v) for p in platforms for v in verdicts[p]],
                  f"{study.preset}: {study.seeds} seed(s) x {study.budget_steps:,} env steps, N = {study.episodes} per "
                  "seed", by_seeds)
    _write_report(out_dir, result, platforms)
    return result


def _platform_name(platform: str) -> str:
    return "our sim (camera model on)" if platform == "sim" else "PyBullet TriFinger"


def _write_report(out_dir: Path, result: dict, platforms: list[str]) -> None:
    rows = []
    for name, agent in result["agents"].items():
        rows.append([name, *(report.percent_ci(agent[p]) for p in platforms),
                     ", ".join(f"{100 * r['sim']['success_rate']:.1f}%" for r in agent["runs"])])
    verdict_rows = [[_platform_name(p), v["claim"], v["verdict"], v["better"], v["worse"], report.percent_difference(v),
                     report.percent_seed_difference(v), "yes" if v.get("intervals_overlap") else "no"]
                    for p in platforms for v in result["verdicts"][p]]
    sections = [
        (f"Preset `{result['preset']}`, {result['seeds']} seed(s) per agent, {result['budget_steps']:,} env steps "
         f"each, N = {result['episodes']} evaluation episodes per seed and platform (pooled over seeds below)."),
        report.provenance_section(result["provenance"]),
        report.table(["agent", *(f"success, {_platform_name(p)}" for p in platforms), "per seed (our sim)"], rows),
        "![success per agent](ablation.png)\n\n![training success](ablation_curves.png)",
        *(["![the orderings as differences](ablation_differences.png)"] if verdict_rows else []),
        f"The paper's ordering, claim by claim ({report.VERDICT_RULE}):\n\n"
        + report.table(["where", "claim", "verdict", "better", "worse", "difference (80% interval)",
                        "over training seeds (80% Welch interval, one-sided p)",
                        "agents' intervals overlap"], verdict_rows),
        report.to_decide_lines([(_platform_name(p), v) for p in platforms for v in result["verdicts"][p]]),
        report.verdict_history_lines([(_platform_name(p), v) for p in platforms for v in result["verdicts"][p]]),
        *(["![the differences as seeds were added](ablation_by_seeds.png)"]
          if "ablation_by_seeds.png" in result["figures"] else []),
    ]
    report.write_report(out_dir, "Observation/reward ablation", sections)
