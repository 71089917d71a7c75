"""Tiny-budget runs of each study write their JSON, figures and report; bad inputs are one-line errors."""

from __future__ import annotations

import dataclasses
import io
import json
from contextlib import redirect_stdout

import pytest

from trifinger_s2r.cli import main
from trifinger_s2r.study.render import render_unavailable

TINY = ["--num-envs", "8", "--budget-steps", "64", "--seeds", "1", "--episodes", "2",
        "--set", "env.task.episode_length_steps=10"]
"""One PPO iteration of 8 envs x 24 steps per agent, 10-step episodes, 2 evaluation episodes per platform."""
OBJECTS = ["cube", "cube_x0.5", "cube_x2", "cuboid", "sphere"]
RENDERS = render_unavailable() is None
"""MuJoCo videos need EGL or OSMesa; PyBullet's camera needs nothing."""
SUMMARY_KEYS = {"success_rate", "ci80_low", "ci80_high", "episodes", "mean_position_error_m",
                "mean_orientation_error_rad"}


def _run(capsys, argv: list[str]) -> dict:
    main(argv)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _is_h264(path) -> bool:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    return meta["codec"] == "h264" and frames > 0


@pytest.fixture(scope="module")
def randomization_run(tmp_path_factory):
    """The randomisation study at a tiny budget, judged in our simulation and on PyBullet, with videos."""
    out = tmp_path_factory.mktemp("randomization")
    buffer = io.StringIO()
    with redirect_stdout(buffer):  # capsys is per test; this fixture serves the module
        main(["study", "randomization", *TINY, "--out", str(out), "--json"])
    return out, json.loads(buffer.getvalue().strip().splitlines()[-1])


class TestTrainingStudies:
    def test_randomization_writes_json_figures_report_and_videos(self, randomization_run):
        out, result = randomization_run
        assert result["study"] == "randomization" and set(result["agents"]) == {"with randomisation",
                                                                                 "without randomisation"}
        for agent in result["agents"].values():
            assert SUMMARY_KEYS <= set(agent["sim"]) and SUMMARY_KEYS <= set(agent["pybullet"])
            assert agent["sim"]["episodes"] == 2 and agent["runs"][0]["env_steps"] == 8 * 24
            assert agent["runs"][0]["curve"][0][0] == 8 * 24
        assert [v["verdict"] in ("reproduced", "refuted", "open") for v in result["verdicts"]["pybullet"]] == [True]
        assert json.loads((out / "study.json").read_text())["agents"].keys() == result["agents"].keys()
        assert "randomization_differences.png" in result["figures"]
        for figure in result["figures"]:
            assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({figure})" in (out / "report.md").read_text()
        videos = [v for agent in result["agents"].values() for v in agent["runs"][0]["videos"]]
        assert len(videos) == (4 if RENDERS else 2) and all(_is_h264(out / v) for v in videos)

    def test_without_randomisation_trains_without_it_and_is_judged_with_it(self, randomization_run):
        out, _ = randomization_run
        trained = json.loads((out / "runs" / "without-randomisation-seed0" / "config.json").read_text())
        assert trained["env"]["task"]["randomization"]["enabled"] is False

    def test_ablation_trains_the_four_agents_at_equal_steps(self, tmp_path, capsys):
        result = _run(capsys, ["study", "ablation", *TINY, "--no-pybullet", "--no-video", "--out", str(tmp_path),
                               "--json"])
        assert list(result["agents"]) == ["O-KP/R-KP", "O-KP/R-PQ", "O-PQ/R-KP", "O-PQ/R-PQ"]
        assert {a["runs"][0]["env_steps"] for a in result["agents"].values()} == {8 * 24}
        assert result["agents"]["O-PQ/R-KP"]["overrides"] == ["env.task.obs_type=pq", "env.task.reward_type=keypoints"]
        assert len(result["verdicts"]["sim"]) == 5 and "pybullet" not in result["verdicts"]
        for name in ("study.json", "report.md", "ablation.png", "ablation_curves.png", "ablation_differences.png"):
            assert (tmp_path / name).is_file()
        config = json.loads((tmp_path / "runs" / "o-pq-r-kp-seed0" / "config.json").read_text())
        assert config["env"]["task"]["obs_type"] == "pq" and config["env"]["task"]["reward_type"] == "keypoints"

    def test_named_agents_are_the_only_ones_trained_and_more_seeds_reuse_the_first(self, tmp_path, capsys):
        """Two of the four agents at a second seed: seed 0 is trained once and reused, only their claim is judged."""
        argv = ["study", "ablation", *TINY, "--agents", "O-PQ/R-KP,O-KP/R-KP", "--no-pybullet", "--no-video",
                "--out", str(tmp_path), "--json"]
        _run(capsys, argv)
        first = tmp_path / "runs" / "o-kp-r-kp-seed0" / "model_0.pt"
        trained_at = first.stat().st_mtime_ns
        result = _run(capsys, [*argv[:argv.index("--seeds") + 1], "2", *argv[argv.index("--seeds") + 2:]])
        assert list(result["agents"]) == ["O-KP/R-KP", "O-PQ/R-KP"]
        assert [len(a["runs"]) for a in result["agents"].values()] == [2, 2] and first.stat().st_mtime_ns == trained_at
        assert sorted(d.name for d in (tmp_path / "runs").iterdir()) == [
            "o-kp-r-kp-seed0", "o-kp-r-kp-seed1", "o-pq-r-kp-seed0", "o-pq-r-kp-seed1"]
        [verdict] = result["verdicts"]["sim"]
        assert verdict["claim"] == "O-KP/R-KP > O-PQ/R-KP"
        low, high = verdict["difference_ci80_low"], verdict["difference_ci80_high"]
        assert low <= verdict["difference"] <= high and high - low > 0 and "seeds_difference_ci80" in verdict
        assert "--agents 'O-PQ/R-KP,O-KP/R-KP'" in result["provenance"]["command"]
        assert [h["seeds"] for h in verdict["by_seeds"]] == [1, 2] and "ablation_by_seeds.png" in result["figures"]
        assert (tmp_path / "ablation_by_seeds.png").is_file() and "(ablation_by_seeds.png)" in (
            tmp_path / "report.md").read_text()

    @pytest.fixture
    def judged(self, monkeypatch):
        """(obs type, evaluation seed) of every judgement in our simulation, with the code at a fixed version."""
        from trifinger_s2r.study import episodes, report

        seen = []
        judge = episodes.run_mujoco

        def recording(policy, cfg, variant, count, seed, *args, **kwargs):
            seen.append((cfg.env.task.obs_type, seed))
            return judge(policy, cfg, variant, count, seed, *args, **kwargs)

        monkeypatch.setattr(episodes, "run_mujoco", recording)
        monkeypatch.setattr(report, "code_version", lambda: "abc1234")
        return seen

    def test_each_seed_is_judged_on_its_own_episodes_the_same_for_every_agent(self, tmp_path, judged):
        """Pooling seeds pools distinct episodes; agents are still compared on the same ones."""
        main(["study", "ablation", *TINY, "--seeds", "2", "--agents", "O-KP/R-KP,O-PQ/R-KP", "--no-pybullet",
              "--no-video", "--out", str(tmp_path)])
        assert judged == [("keypoints", 0), ("keypoints", 1), ("pq", 0), ("pq", 1)]

    def test_a_study_run_again_judges_only_what_is_new(self, tmp_path, judged, monkeypatch, capsys):
        """More seeds judge only the new seeds; other episodes, other code or uncommitted code judge again."""
        from trifinger_s2r.study import report

        argv = ["study", "ablation", *TINY, "--agents", "O-PQ/R-KP", "--no-pybullet", "--no-video",
                "--out", str(tmp_path), "--json"]
        first = _run(capsys, argv)
        again = _run(capsys, [*argv, "--seeds", "2"])
        assert judged == [("pq", 0), ("pq", 1)]
        assert [r["judgement_reused"] for r in again["agents"]["O-PQ/R-KP"]["runs"]] == [True, False]
        assert again["agents"]["O-PQ/R-KP"]["runs"][0]["sim"] == first["agents"]["O-PQ/R-KP"]["runs"][0]["sim"]
        _run(capsys, [*argv, "--seeds", "2", "--episodes", "3"])
        monkeypatch.setattr(report, "code_version", lambda: "def5678")
        _run(capsys, [*argv, "--seeds", "1"])
        assert judged == [("pq", 0), ("pq", 1), ("pq", 0), ("pq", 1), ("pq", 0)]
        monkeypatch.setattr(report, "code_version", lambda: None)  # uncommitted changes: no reuse
        _run(capsys, [*argv, "--seeds", "1"])
        _run(capsys, [*argv, "--seeds", "1"])
        assert judged[5:] == [("pq", 0), ("pq", 0)]


class TestDifferenceInterval:
    @staticmethod
    def _summary(wins: int, episodes: int) -> dict:
        from trifinger_s2r.eval.metrics import wilson_interval

        low, high = wilson_interval(wins, episodes, 0.8)
        return {"success_rate": wins / episodes, "ci80_low": low, "ci80_high": high}

    def test_equal_rates_straddle_zero_symmetrically(self):
        from trifinger_s2r.study.report import difference_interval

        low, high = difference_interval(self._summary(20, 40), self._summary(20, 40))
        assert low < 0 < high and low == pytest.approx(-high)

    def test_swapping_the_agents_negates_the_interval(self):
        from trifinger_s2r.study.report import difference_interval

        a, b = self._summary(35, 80), self._summary(38, 80)
        low, high = difference_interval(a, b)
        assert difference_interval(b, a) == pytest.approx((-high, -low))

    def test_newcombe_reference_value(self):
        """Newcombe (1998), Table II example (a): 56/70 against 48/80; his 95% method-10 interval is 0.0524 to
        0.3339 (the function takes whichever level its Wilson intervals have)."""
        from trifinger_s2r.eval.metrics import wilson_interval
        from trifinger_s2r.study.report import difference_interval

        z95 = [wilson_interval(w, n, 0.95) for w, n in ((56, 70), (48, 80))]
        a, b = ({"success_rate": w / n, "ci80_low": lo, "ci80_high": hi}
                for (w, n), (lo, hi) in zip(((56, 70), (48, 80)), z95, strict=True))
        assert difference_interval(a, b) == pytest.approx((0.0524, 0.3339), abs=5e-4)

    def test_over_seeds_the_interval_counts_the_spread_between_seeds(self):
        """The 6-seed ablation of 2026-12-07 in our simulation (per-seed rates of O-KP/R-KP and O-PQ/R-KP)."""
        from trifinger_s2r.study.report import seed_difference_interval

        kp = [0.525, 0.425, 0.475, 0.40, 0.45, 0.50]
        pq = [0.425, 0.375, 0.25, 0.35, 0.475, 0.45]
        seeds = seed_difference_interval(kp, pq)
        assert seeds["difference"] == pytest.approx(0.075)
        assert (seeds["ci80_low"], seeds["ci80_high"]) == pytest.approx((0.021, 0.129), abs=1e-3)
        assert seeds["p_one_sided"] == pytest.approx(0.044, abs=1e-3) and seeds["seeds"] == [6, 6]
        wider = seed_difference_interval([0.2, 0.8, 0.2, 0.8, 0.2, 0.8], [0.5] * 6)
        assert wider["ci80_low"] < -0.1 < 0.1 < wider["ci80_high"]

    def test_over_seeds_needs_two_seeds_and_some_spread(self):
        from trifinger_s2r.study.report import compare, seed_difference_interval

        assert seed_difference_interval([0.5], [0.4, 0.3]) is None
        assert seed_difference_interval([0.5, 0.5], [0.4, 0.4]) is None
        summary = {"success_rate": 0.5, "ci80_low": 0.4, "ci80_high": 0.6, "per_seed": [0.5]}
        assert compare("a", "b", summary, summary)["seeds_difference_ci80"] is None


class TestVerdict:
    @staticmethod
    def _pooled(per_seed: list[float], episodes_per_seed: int = 40) -> dict:
        from trifinger_s2r.study.training import pool

        return pool([{"success_rate": r, "ci80_low": 0.0, "ci80_high": 1.0, "episodes": episodes_per_seed,
                      "mean_position_error_m": 0.0, "mean_orientation_error_rad": 0.0} for r in per_seed])

    def test_a_difference_whose_interval_excludes_zero_is_reproduced_though_the_agents_intervals_overlap(self):
        """The 6-seed ablation of 2026-12-07 in our simulation: 46.2% against 38.8% of 240 episodes each."""
        from trifinger_s2r.study.report import compare

        kp = self._pooled([0.525, 0.425, 0.475, 0.40, 0.45, 0.50])
        pq = self._pooled([0.425, 0.375, 0.25, 0.35, 0.475, 0.45])
        verdict = compare("kp", "pq", kp, pq)
        assert verdict["intervals_overlap"] and verdict["difference_ci80_low"] > 0
        assert verdict["verdict"] == "reproduced"
        assert compare("pq", "kp", pq, kp)["verdict"] == "refuted"

    def test_seeds_that_disagree_leave_it_open(self):
        """The same pooled rates, but the seeds swing widely: the episodes alone would say reproduced."""
        from trifinger_s2r.study.report import compare

        kp = self._pooled([0.9, 0.05, 0.85, 0.05, 0.85, 0.075])
        pq = self._pooled([0.425, 0.375, 0.25, 0.35, 0.475, 0.45])
        verdict = compare("kp", "pq", kp, pq)
        assert verdict["difference_ci80_low"] > 0 and verdict["seeds_difference_ci80"]["ci80_low"] < 0
        assert verdict["verdict"] == "open"

    def test_one_seed_is_judged_on_its_episodes(self):
        from trifinger_s2r.study.report import compare

        assert compare("a", "b", self._pooled([0.8], 80), self._pooled([0.5], 80))["verdict"] == "reproduced"
        assert compare("a", "b", self._pooled([0.55], 80), self._pooled([0.5], 80))["verdict"] == "open"

    def test_an_open_claim_says_what_would_decide_it(self):
        """The 6-seed PyBullet figures of 2026-12-07 (27.9% against 23.3%): at the planned numbers the intervals
        just clear zero if the measured rates and spread held, and one fewer does not."""
        from scipy import stats

        from trifinger_s2r.study.report import _welch_half_width, compare, to_decide_lines

        kp = self._pooled([0.30, 0.10, 0.425, 0.20, 0.225, 0.425])
        pq = self._pooled([0.30, 0.25, 0.175, 0.10, 0.35, 0.225])
        verdict = compare("kp", "pq", kp, pq)
        need = verdict["to_decide"]
        assert verdict["verdict"] == "open" and need["episodes_now"] == [240, 240] and need["seeds_now"] == [6, 6]
        rates_var = sum(p * (1 - p) for p in (kp["success_rate"], pq["success_rate"]))
        z = stats.norm.ppf(0.9)
        episodes = need["episodes_per_agent"]
        assert z * (rates_var / episodes) ** 0.5 < verdict["difference"] <= z * (rates_var / (episodes - 1)) ** 0.5
        assert need["episodes_per_agent"] > 240
        var_kp, var_pq = (stats.tvar(kp["per_seed"]), stats.tvar(pq["per_seed"]))
        seeds = need["seeds_per_agent"]
        assert seeds > 6
        assert _welch_half_width(var_kp, var_pq, seeds) < verdict["difference"]
        assert _welch_half_width(var_kp, var_pq, seeds - 1) >= verdict["difference"]
        assert f"{need['episodes_per_agent']:,} episodes (now 240) and {seeds} training seeds (now 6)" in \
            to_decide_lines([("PyBullet", verdict)])

    def test_a_decided_claim_needs_nothing_more(self):
        from trifinger_s2r.study.report import compare, to_decide_lines

        verdict = compare("a", "b", self._pooled([0.8], 80), self._pooled([0.5], 80))
        assert verdict["to_decide"] is None and to_decide_lines([("sim", verdict)]) == ""


class TestVerdictsBySeeds:
    @staticmethod
    def _runs(per_seed: list[float]) -> list[dict]:
        return [{"sim": {"success_rate": r, "ci80_low": 0.0, "ci80_high": 1.0, "episodes": 40,
                         "mean_position_error_m": 0.0, "mean_orientation_error_rad": 0.0}} for r in per_seed]

    def test_each_prefix_of_seeds_is_judged_and_the_last_is_the_studys_verdict(self):
        """The 10-seed ablation of 2026-12-07 in our simulation: reproduced at 3-6 seeds, open once seeds 6-9 came."""
        from trifinger_s2r.study.report import add_verdicts_by_seeds, compare, verdict_history
        from trifinger_s2r.study.training import pool

        kp = self._runs([0.525, 0.425, 0.475, 0.40, 0.45, 0.50, 0.25, 0.225, 0.40, 0.175])
        pq = self._runs([0.425, 0.375, 0.25, 0.35, 0.475, 0.45, 0.50, 0.20, 0.45, 0.55])
        agents = {"kp": {"runs": kp}, "pq": {"runs": pq}}
        verdict = compare("kp", "pq", pool([r["sim"] for r in kp]), pool([r["sim"] for r in pq]))
        verdicts = {"sim": [verdict]}
        add_verdicts_by_seeds(verdicts, agents)
        history = verdict["by_seeds"]
        assert [h["seeds"] for h in history] == list(range(1, 11))
        assert history[-1]["verdict"] == verdict["verdict"] == "open"
        assert history[-1]["difference_ci80_low"] == verdict["difference_ci80_low"]
        assert history[0]["seeds_ci80_low"] is None and history[1]["seeds_ci80_low"] is not None
        assert history[5]["verdict"] == compare("kp", "pq", pool([r["sim"] for r in kp[:6]]),
                                                pool([r["sim"] for r in pq[:6]]))["verdict"] == "reproduced"
        assert verdict_history(history) == "open at 1-2 seeds, reproduced at 3-6, open at 7-10"

    def test_the_history_reads_as_runs_of_verdicts(self):
        from trifinger_s2r.study.report import verdict_history, verdict_history_lines

        assert verdict_history([{"seeds": 1, "verdict": "open"}]) == "open at 1 seed"
        rows = [{"seeds": k, "verdict": v} for k, v in enumerate(["reproduced", "open", "open", "refuted"], 1)]
        assert verdict_history(rows) == "reproduced at 1 seed, open at 2-3, refuted at 4"
        assert verdict_history_lines([("sim", {"claim": "a > b", "by_seeds": rows[:1]})]) == ""
        assert "- a > b, sim: reproduced at 1 seed, open at 2-3, refuted at 4" in verdict_history_lines(
            [("sim", {"claim": "a > b", "by_seeds": rows})])


class TestCodeVersion:
    LISTING = ("100644 blob {}\t__init__.py", "100644 blob {}\ttrain/trainer.py", "100644 blob {}\tstudy/report.py")

    def _version(self, monkeypatch, blobs: tuple[str, str, str], status: str = "") -> str | None:
        from trifinger_s2r.study import report

        listing = "\n".join(line.format(blob) for line, blob in zip(self.LISTING, blobs, strict=True))
        monkeypatch.setattr(report, "_git", lambda *args: status if args[0] == "status" else listing)
        return report.code_version()

    def test_only_the_judging_code_versions_a_judgement(self, monkeypatch):
        base = self._version(monkeypatch, ("a1", "b1", "c1"))
        assert base is not None
        assert self._version(monkeypatch, ("a1", "b1", "c2")) == base  # the report's wording changed
        assert self._version(monkeypatch, ("a1", "b2", "c1")) != base  # the trainer changed

    def test_uncommitted_judging_code_has_no_version(self, monkeypatch):
        assert self._version(monkeypatch, ("a1", "b1", "c1"), status=" M train/trainer.py") is None


class TestRobustness:
    def test_mujoco_prints_the_documented_json_and_films_each_object(self, randomization_run, tmp_path, capsys):
        runs, _ = randomization_run
        checkpoint = runs / "runs" / "with-randomisation-seed0" / "model_0.pt"
        result = _run(capsys, ["study", "robustness", "--policy", str(checkpoint), "--episodes", "2",
                               "--out", str(tmp_path), "--json"])
        assert {"study", "policy", "platform", "level", "results"} <= set(result)
        assert result["study"] == "robustness" and result["platform"] == "mujoco" and result["level"] == 1
        assert list(result["results"]) == OBJECTS
        assert all(SUMMARY_KEYS <= set(r) and r["episodes"] == 2 for r in result["results"].values())
        if RENDERS:
            assert all(_is_h264(tmp_path / v) for v in result["videos"].values()) and len(result["videos"]) == 5
        else:  # no headless OpenGL on this machine: the study says so instead of filming
            assert result["videos"] == {} and "OpenGL" in result["video_note"]
        assert (tmp_path / "robustness.png").read_bytes()[:4] == b"\x89PNG"
        assert "](robustness.png)" in (tmp_path / "report.md").read_text()

    def test_pybullet_runs_the_bundle_on_each_object(self, randomization_run, tmp_path, capsys):
        runs, _ = randomization_run
        bundle = runs / "runs" / "with-randomisation-seed0" / "bundle"
        result = _run(capsys, ["study", "robustness", "--policy", str(bundle), "--platform", "pybullet",
                               "--episodes", "1", "--objects", "cube_x2,cuboid,sphere", "--no-video", "--out", str(tmp_path),
                               "--json"])
        assert result["platform"] == "pybullet" and list(result["results"]) == ["cube_x2", "cuboid", "sphere"]
        assert all(r["statuses"] == {"ok": 1} for r in result["results"].values())

    def test_set_changes_the_judged_config_and_is_recorded(self, randomization_run, tmp_path, capsys):
        """With a 1 m success radius every episode succeeds, so the override reached the judged env."""
        runs, _ = randomization_run
        checkpoint = runs / "runs" / "with-randomisation-seed0" / "model_0.pt"
        setting = "env.task.success_position_m=1.0"
        result = _run(capsys, ["study", "robustness", "--policy", str(checkpoint), "--episodes", "2", "--objects",
                               "cube,sphere", "--set", setting, "--no-video", "--out", str(tmp_path), "--json"])
        assert all(r["success_rate"] == 1.0 for r in result["results"].values())
        assert result["overrides"] == [setting]
        assert f"--set {setting}" in result["provenance"]["command"]
        assert f"evaluated with `--set {setting}`" in (tmp_path / "report.md").read_text()

    def test_evaluation_config_keeps_evaluation_rules_under_overrides(self):
        from trifinger_s2r.policies import load_policy
        from trifinger_s2r.study.robustness import evaluation_config

        _, train_cfg = load_policy("pretrained:push")
        cfg = evaluation_config(train_cfg, ("env.task.randomization.table_friction_scale.high=2.0",))
        assert cfg.env.task.randomization.table_friction_scale.high == 2.0
        assert cfg.env.task.grasp_start_share == 0 and not cfg.env.task.curriculum.enabled

    def test_nominal_cube_in_our_sim_is_exactly_eval(self, randomization_run):
        """The robustness study's cube row is what `trifinger-s2r eval` gives for the same seed."""
        from trifinger_s2r.eval.rollouts import evaluate
        from trifinger_s2r.policies import load_policy
        from trifinger_s2r.study.episodes import run_mujoco
        from trifinger_s2r.task.config import for_evaluation

        runs, _ = randomization_run
        policy, cfg = load_policy(runs / "runs" / "with-randomisation-seed0" / "model_0.pt")
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, task=for_evaluation(cfg.env.task),
                                                                num_threads=1))
        assert run_mujoco(policy, cfg, "cube", 3, seed=5) == evaluate(policy, cfg, 3, seed=5)


@pytest.mark.parametrize(("argv", "message"), [
    (["study", "sweep"], "invalid choice: 'sweep'"),
    (["study", "robustness", "--policy", "pretrained:push", "--objects", "cube,cone", "--out", "x"],
     "unknown object variant(s) ['cone']"),
    (["study", "ablation", "--preset", "push-gpu", "--out", "x"], "invalid choice: 'push-gpu'"),
    (["study", "ablation", "--budget-steps", "0", "--out", "x"], "must be a positive integer, got 0"),
    (["study", "randomization", "--seeds", "0", "--out", "x"], "must be a positive integer, got 0"),
    (["study", "robustness", "--policy", "pretrained:none", "--out", "x"], "no pretrained policy 'none'"),
    (["study", "ablation", "--set", "env.task.nonsense=1", "--out", "x"], "unknown key 'env.task.nonsense'"),
    (["study", "ablation", "--agents", "O-KP/R-KP,O-XX/R-KP", "--out", "x"], "unknown agent(s) ['O-XX/R-KP']"),
    (["study", "randomization", "--agents", " , ", "--out", "x"], "no agent named in ' , '"),
    (["study", "robustness", "--out", "x"], "the following arguments are required: --policy"),
    (["study", "robustness", "--policy", "pretrained:push", "--set", "env.task.nonsense=1", "--out", "x"],
     "unknown key 'env.task.nonsense'"),
    (["study", "robustness", "--policy", "pretrained:push", "--platform", "pybullet", "--set",
      "env.task.level=1", "--out", "x"], "PyBullet TriFinger's physics are its own"),
])
def test_bad_input_is_one_line_error(argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    text = str(stop.value.code)
    assert message in text and "\n" not in text and text.startswith("trifinger-s2r study")


def test_an_agent_stopped_before_its_budget_stops_the_study_unjudged(tmp_path, monkeypatch):
    """A signal stops training after an iteration with a checkpoint; the study must not judge that shorter run."""
    from trifinger_s2r.train import trainer

    def stopped_early(cfg, run_dir, resume=False, show_progress=True):
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir / "model_0.pt"

    monkeypatch.setattr(trainer, "train", stopped_early)
    out = tmp_path / "study"
    with pytest.raises(SystemExit) as stop:
        main(["study", "ablation", *TINY, "--budget-steps", "400", "--no-pybullet", "--out", str(out)])
    text = str(stop.value.code)
    assert "stopped at model_0.pt before its budget" in text and "run the same study command again" in text
    assert "\n" not in text and not (out / "study.json").exists()
