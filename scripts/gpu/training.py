"""The level-4 training stages of the prepared GPU run (scripts/gpu/run.py): resume the committed checkpoint (or
start fresh, warm-started by imitate), train for the time left, export the policy, collect the files that let the
next GPU window continue. Standard library only."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from procs import REPO, StageRunner


class TrainingStages(StageRunner):
    def dry_overrides(self) -> dict:
        """The dry run's config changes: Warp's CPU device, tiny rollouts, one PPO epoch of one mini-batch."""
        return {"env.device": "cpu", "env.num_envs": self.args.dry_train_envs,
                "num_steps_per_env": self.args.dry_steps_per_env, "ppo.num_learning_epochs": 1,
                "ppo.num_mini_batches": 1}

    def dry_sets(self) -> tuple[str, ...]:
        return tuple(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in self.dry_overrides().items())

    def committed(self) -> tuple[Path | None, int | None, str]:
        """Prepare the committed checkpoint as a run folder to resume: (run folder, its iteration, why not)."""
        src = (REPO / self.args.checkpoint_dir).resolve()
        if not (src / "model.pt").is_file() or not (src / "config.json").is_file():
            return None, None, f"no committed checkpoint in {self.args.checkpoint_dir} (model.pt + config.json)"
        run_dir = self.work / "run-resumed"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        config = json.loads((src / "config.json").read_text())
        if self.dry:  # the committed GPU run, on Warp's CPU device and tiny: checks that it still loads here
            for key, value in self.dry_overrides().items():
                *parents, leaf = key.split(".")
                node = config
                for part in parents:
                    node = node[part]
                node[leaf] = value
        (run_dir / "config.json").write_text(json.dumps(config, indent=2))
        code = ("import json, sys, torch\nfrom trifinger_s2r.train.config import load_config\n"
                "out = {}\n"
                "try:\n"
                "    load_config(sys.argv[1])\n"
                "except Exception as err:\n"
                "    out['error'] = f'config.json no longer loads with this code ({type(err).__name__}: {err})'\n"
                "if 'error' not in out:\n"
                "    try:\n"
                "        ck = torch.load(sys.argv[2], map_location='cpu', weights_only=False)\n"
                "        out['iter'] = int(ck['iter'])\n"
                "        target = sys.argv[3].replace('ITER', str(out['iter']))\n"
                "        if sys.argv[4] == 'cpu':\n"
                "            torch.save(ck, target)\n"
                "        else:\n"
                "            import shutil; shutil.copyfile(sys.argv[2], target)\n"
                "    except Exception as err:\n"
                "        out['error'] = f'model.pt does not load ({type(err).__name__}: {err})'\n"
                "print(json.dumps(out))\n")
        rc, out = self.py("checkpoint", code, 120, str(run_dir / "config.json"), str(src / "model.pt"),
                          str(run_dir / "model_ITER.pt"), "cpu" if self.dry else "keep")
        if rc != 0 or not out or "error" in out:
            reason = (out or {}).get("error", f"checking it exited {rc}")
            return None, None, f"the committed checkpoint in {self.args.checkpoint_dir} cannot be resumed: {reason}"
        if (src / "progress.json").is_file():
            shutil.copyfile(src / "progress.json", run_dir / "progress.json")
        return run_dir, out["iter"], ""

    def imitate(self) -> Path | None:
        """The warm start of a fresh run: `imitate` into the work folder within --imitate-share of the time left;
        its checkpoint, or None (then the fresh run starts from random weights)."""
        if self.args.imitate_rounds <= 0:
            return None
        t = time.monotonic()
        folder = self.work / "imitate"
        if folder.exists():
            shutil.rmtree(folder)
        budget_s = max(self.left() * self.args.imitate_share, 30.0)
        cmd = self.cli("imitate", "--preset", self.args.preset, "--run-dir", str(folder), "--rounds",
                       str(self.args.imitate_rounds), "--max-minutes", f"{budget_s / 90.0:.3f}", "--json")
        if self.dry:
            cmd += ["--steps-per-round", "8"]
        for s in (*(self.dry_sets() if self.dry else ()), *self.args.set):
            if not s.startswith(("num_steps_per_env=", "ppo.")):
                cmd += ["--set", s]
        rc, _ = self.call("imitate", cmd, budget_s)  # rounds stop at 2/3 of it; the rest is start-up and saving
        checkpoint = folder / "model_0.pt"
        ok = rc == 0 and checkpoint.is_file()
        self.summary["imitation"] = {"rounds": self.args.imitate_rounds, "exit": rc, "used": ok,
                                     "seconds": round(time.monotonic() - t, 1)}
        record = folder / "imitation.json"
        if ok and record.is_file():
            self.summary["imitation"]["last_round"] = json.loads(record.read_text())["rounds"][-1]
        self.stage("imitate", ok, time.monotonic() - t, f"{self.args.imitate_rounds} rounds" if ok else
                   f"exit {rc}: the fresh run starts from random weights")
        return checkpoint if ok else None

    def train_budget(self) -> tuple[float, float]:
        """(max_minutes for the trainer, hard timeout in seconds) from the time left."""
        left = self.left() - self.args.reserve_s
        minutes = max(0.0, (left - self.args.train_startup_s - self.args.train_overshoot_s) / 60.0)
        return minutes, left

    def train(self) -> Path | None:
        t = time.monotonic()
        if self.args.fresh:
            run_dir, start, why = None, None, "--fresh"
        else:
            run_dir, start, why = self.committed()
        if self.args.init_from_committed and run_dir is not None:
            self.log(f"[train] --init-from-committed: a fresh run (iteration 0, this preset's config) starting "
                     f"from the committed actor and critic (iteration {start})")
            self.summary["init_from_iteration"], start = start, None
            why = "--init-from-committed"
        self.summary["resumed_from_iteration"] = start
        if start is None:
            self.log(f"[train] {why}; starting a fresh run")
            self.summary["fresh_because"] = why
        elif self.args.set:
            self.log(f"[train] note: resuming, so the run's saved config wins over --set {self.args.set}")
        # each attempt falls back to the next only if it wrote no new checkpoint
        attempts = [("resume", run_dir, None)] if start is not None else []
        if self.args.init_from_committed and run_dir is not None:
            attempts.append(("init-from", self.work / "run-init", latest_checkpoint(run_dir)))
        attempts.append(("fresh", self.work / "run-fresh", None))
        for kind, folder, init_from in attempts:
            minutes, timeout = self.train_budget()
            if minutes < self.args.min_train_minutes and not (self.dry and self.args.iterations):
                self.stage("train", False, time.monotonic() - t, f"only {minutes:.2f} min left to train: skipped")
                return None
            if kind == "resume":
                cmd = self.cli("train", "--resume", str(folder))
                first = start + 1
            else:
                if folder.exists():
                    shutil.rmtree(folder)
                cmd = self.cli("train", "--preset", self.args.preset, "--run-dir", str(folder))
                first = 0
                if kind == "fresh" and init_from is None:
                    init_from = self.imitate()
                    if init_from is not None:
                        cmd += ["--set", f"ppo.actor_warmup_iterations={self.args.actor_warmup_iterations}"]
                if init_from is not None:
                    cmd += ["--init-from", str(init_from)]
                if self.dry:
                    for s in self.dry_sets():
                        cmd += ["--set", s]
                for s in self.args.set:
                    cmd += ["--set", s]
            if self.args.iterations:
                cmd += ["--max-iterations", str(first + self.args.iterations)]
            elif kind == "resume":
                cmd += ["--max-iterations", str(first + 10**6)]
            cmd += ["--max-minutes", f"{max(minutes, 0.01):.3f}", "--json"]
            self.log(f"[train] {kind}: {minutes:.2f} min of training budget (hard stop in {timeout:.0f}s)")
            rc, _ = self.call(f"train-{kind}", cmd, timeout)
            latest = latest_checkpoint(folder)
            progressed = latest is not None and checkpoint_iteration(latest) >= first
            self.summary["train_run"] = {"kind": kind, "exit": rc, "checkpoint": latest.name if latest else None}
            self.summary["train_stage_seconds"] = round(time.monotonic() - t, 1)
            if rc == 0 and progressed:
                self.stage("train", True, time.monotonic() - t, f"{kind}: {latest.name}")
                return latest
            if progressed:  # failed or stopped late, but with new checkpoints: keep the newest
                self.stage("train", False, time.monotonic() - t, f"{kind} exited {rc}; keeping {latest.name}")
                return latest
            if kind != "fresh":  # a crash worth a look, though a fresh run follows
                self.stage(f"train-{kind}", False, time.monotonic() - t,
                           f"exited {rc} without a new checkpoint (see the log); trying the next way")
                self.summary["fresh_because"] = f"{kind} from {self.args.checkpoint_dir} failed (exit {rc})"
                if kind == "resume":
                    self.summary["resumed_from_iteration"] = None
                else:
                    self.summary.pop("init_from_iteration", None)
        self.stage("train", False, time.monotonic() - t, "no checkpoint")
        return None

    def export(self, checkpoint: Path) -> bool:
        """Export on a copy of the run whose config builds its one-env probe on the MuJoCo CPU backend (the probe
        only gives the observation shapes), so that exporting never needs CUDA; metadata keeps the real config."""
        t = time.monotonic()
        src = self.work / "export-src"
        dst = self.work / "export"
        for d in (src, dst):
            if d.exists():
                shutil.rmtree(d)
        src.mkdir(parents=True)
        config = json.loads((checkpoint.parent / "config.json").read_text())
        probe = json.loads(json.dumps(config))
        probe["env"].update(backend="mujoco", device="cpu")
        (src / "config.json").write_text(json.dumps(probe, indent=2))
        shutil.copyfile(checkpoint, src / checkpoint.name)
        rc, _ = self.call("export", self.cli("export", "--checkpoint", str(src / checkpoint.name),
                                                 "--out", str(dst), "--json"),
                              min(self.args.export_timeout, max(self.left(), 30)))
        ok = rc == 0 and (dst / "policy.onnx").is_file() and (dst / "metadata.json").is_file()
        if ok:
            metadata = json.loads((dst / "metadata.json").read_text())
            metadata["train_config"] = config
            (dst / "metadata.json").write_text(json.dumps(metadata, indent=2))
            for name in ("policy.onnx", "metadata.json"):
                shutil.copyfile(dst / name, self.out / name)
        return self.stage("export", ok, time.monotonic() - t, f"from {checkpoint.name}" if ok else f"exit {rc}")

    def collect(self, checkpoint: Path | None) -> None:
        if checkpoint is None:
            return
        shutil.copyfile(checkpoint, self.out / "model.pt")
        shutil.copyfile(checkpoint.parent / "config.json", self.out / "config.json")
        source = checkpoint.parent / "progress.json"
        progress = json.loads(source.read_text()) if source.is_file() else []
        # a trainer stopped hard leaves iterations past its last checkpoint: the next window resumes from that
        # checkpoint, so progress.json ends there too (entry "iteration" counts from 1, checkpoints from 0)
        progress = [p for p in progress if p.get("iteration", 0) <= checkpoint_iteration(checkpoint) + 1]
        (self.out / "progress.json").write_text(json.dumps(progress))
        start = self.summary.get("resumed_from_iteration")
        this = [p for p in progress if start is None or p.get("iteration", 0) > start + 1]
        self.summary["final_iteration"] = checkpoint_iteration(checkpoint)
        self.summary["iterations_this_window"] = len(this)
        self.summary["env_steps_total"] = progress[-1].get("env_steps") if progress else None
        self.summary["train_seconds_this_window"] = round(this[-1].get("wall_s", 0.0), 1) if this else 0.0
        self.summary["last_success_rate"] = progress[-1].get("success_rate") if progress else None


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = [(checkpoint_iteration(p), p) for p in run_dir.glob("model_*.pt")] if run_dir.is_dir() else []
    found = [f for f in found if f[0] >= 0]
    return max(found)[1] if found else None


def checkpoint_iteration(path: Path) -> int:
    stem = path.stem
    try:
        return int(stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1
