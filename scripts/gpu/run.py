"""The prepared GPU run (scripts/gpu/run.sh calls this; docs/gpu.md describes it).

On the GPU machine, from the repository root, within --minutes of wall-clock time in all:
  1. stash the wheel parts this command carried (.gpu-wheels/call<k>/) and, once all are there, install them
  2. preflight: torch, CUDA device, warp, mujoco_warp
  3. the CUDA-only tests (found in tests/ by their `skipif(not torch.cuda.is_available())`)
  4. `bench env --backend warp --device cuda` at each env count, `bench train --preset repose-gpu`
  5. train level 4 (--preset) for the time left, resuming from the committed checkpoint (checkpoints/repose-gpu/)
     when there is one and it still loads, else a fresh run, warm-started by `imitate` (DAgger from the scripted
     grasp-lift-carry controller, --imitate-rounds) when that succeeds in its share of the time
  6. export the policy (ONNX + metadata)
and writes into --out: bench.json, model.pt, config.json, progress.json, policy.onnx, metadata.json, summary.json,
log.txt (8 files, each under 16 MiB: what one device command brings back). A failed stage is logged and the stages
that do not depend on it still run; the exit status is 1 if any stage failed.

--cpu-dry-run runs the same stages on the CPU machine: no wheels (the current Python), Warp's CPU device, tiny env
counts and a fixed number of training iterations. Standard library only: it runs before the wheels are installed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import wheels
from checks import IMPORT_CHECK, PREFLIGHT, cuda_only_tests
from procs import REPO, Log
from training import TrainingStages

CHECKPOINT_DIR = Path("checkpoints/repose-gpu")
"""The committed GPU checkpoint the next window resumes from: model.pt, config.json, progress.json, summary.json."""
OUT_FILES = ("bench.json", "model.pt", "config.json", "progress.json", "policy.onnx", "metadata.json",
             "summary.json", "log.txt")
MAX_FILE_BYTES = 16 * wheels.MIB
BENCH_SCHEMA = "trifinger-s2r/gpu-bench/1"
SUMMARY_SCHEMA = "trifinger-s2r/gpu-run/1"
class Run(TrainingStages):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry = args.cpu_dry_run
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.minutes * 60.0
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUT_FILES:  # nothing stale from an earlier run into the same folder
            (self.out / name).unlink(missing_ok=True)
        self.log = Log(self.out / "log.txt")
        self.own_work = not args.work
        self.work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="s2r-gpu-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.python = args.python or sys.executable
        self.stages: dict[str, dict] = {}
        self.bench = {"schema": BENCH_SCHEMA, "mode": "cpu-dry-run" if self.dry else "gpu", "device": None,
                      "env": [], "train": None}
        self.summary: dict = {"schema": SUMMARY_SCHEMA, "mode": self.bench["mode"]}
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", GIT_PYTHON_REFRESH="quiet")
        # the carried wheels (GPU machine) first, then the project's source: no install of the project needed
        paths = ([str(Path(args.site).resolve())] if args.site else []) + [str(REPO / "src")]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        self.env["PYTHONPATH"] = os.pathsep.join(paths)

    # --- stages ------------------------------------------------------------------------------------

    def install(self) -> bool:
        t = time.monotonic()
        store = Path(self.args.wheel_store)
        copied = wheels.stash(REPO, store)
        self.log(f"[wheels] carried in this command: {', '.join(copied) or 'nothing'}; store {store}")
        check = "import json\n" + "".join(f"import {m}\n" for m in IMPORT_CHECK) + \
            "print(json.dumps({" + ", ".join(f"'{m}': str({v})" for m, v in IMPORT_CHECK.items()) + "}))"
        rc, found = self.py("wheels", check, 120)
        expected = {"warp": wheels.CARRIED["warp-lang"], "mujoco": wheels.CARRIED["mujoco"],
                    "tensordict": wheels.CARRIED["tensordict"]}
        if rc == 0 and found and all(found.get(k) == v for k, v in expected.items()):
            return self.stage("install", True, time.monotonic() - t, f"already installed: {found}")
        _, missing = wheels.missing_parts(store)
        if missing:
            return self.stage("install", False, time.monotonic() - t,
                              "wheel parts missing (the machine was restarted between the carrying calls, or a call "
                              "was skipped): " + ", ".join(missing) + "; carry them again, docs/gpu.md")
        try:
            joined = wheels.join(store, self.work / "wheels")
        except (OSError, ValueError) as err:
            return self.stage("install", False, time.monotonic() - t, f"joining the wheels failed: {err}")
        rc, _ = self.call("wheels", [self.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                                     "--no-compile", "--no-cache-dir", "--upgrade", "--target", self.args.site,
                                     *map(str, joined)], 300)
        if rc != 0:
            return self.stage("install", False, time.monotonic() - t, f"pip install exited {rc}")
        rc, lines = self.call("wheels", [self.python, "-c", check], 120)
        found = self.last_json(lines)
        ok = rc == 0 and found is not None and all(found.get(k) == v for k, v in expected.items())
        return self.stage("install", ok, time.monotonic() - t, f"installed into {self.args.site}: {found}" if found
                          else "imports fail after install: " + (lines[-1] if lines else f"exit {rc}"))

    def preflight(self) -> bool:
        t = time.monotonic()
        code = PREFLIGHT
        if shutil.which("nvidia-smi"):
            self.call("preflight", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                    "--format=csv"], 30)
        rc, info = self.py("preflight", code, 120)
        if info:
            if shutil.which("nvidia-smi"):
                smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                     check=False, capture_output=True, text=True)
                info["driver"] = smi.stdout.strip() or None
            self.bench["device"] = info
        lacking = []
        if info:
            imported = info.pop("distributions", {})
            self.summary["imported_distributions"] = imported
            accepted = set(wheels.CARRIED) | wheels.IMAGE_PROVIDES | {"trifinger-s2r"}
            lacking = sorted(top for top, dists in imported.items()
                             if not any(wheels.normalise(d) in accepted for d in dists))
        ok = (rc == 0 and info is not None and "import_error" not in info and not lacking
              and (self.dry or info["cuda_available"]))
        detail = json.dumps(info) if info else "no output"
        if info and not self.dry and not info["cuda_available"]:
            detail = "torch sees no CUDA device: " + detail
        if lacking:
            detail = (f"the project imports {lacking}, which neither the carried wheels nor the GPU image provide "
                      "(add them to CARRIED in scripts/gpu/wheels.py): " + detail)
        return self.stage("preflight", ok, time.monotonic() - t, detail)

    def cuda_tests(self) -> bool:
        t = time.monotonic()
        ids = cuda_only_tests(REPO / "tests")
        if not ids:
            return self.stage("tests", True, 0.0, "no CUDA-only tests found")
        cap = self.args.tests_timeout
        rc, lines = self.call("tests", [self.python, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                                        *ids], min(cap, self.before_train()))
        tail = next((line for line in reversed(lines) if " in " in line and ("passed" in line or "skipped" in line
                                                                             or "failed" in line)), "")
        return self.stage("tests", rc == 0, time.monotonic() - t, f"{len(ids)} test(s): {tail.strip() or rc}")

    def bench_env(self) -> bool:
        ok = True
        device = "cpu" if self.dry else "cuda"
        for n in self.args.env_counts:
            t = time.monotonic()
            rc, lines = self.call(f"bench-env-{n}", self.cli(
                "bench", "env", "--backend", "warp", "--device", device, "--num-envs", str(n),
                "--steps", str(self.args.bench_steps), "--json"), min(self.args.bench_timeout, self.before_train()))
            result = self.last_json(lines)
            if rc == 0 and result:
                self.bench["env"].append(result)
            good = rc == 0 and result is not None
            ok &= self.stage(f"bench-env-{n}", good, time.monotonic() - t, json.dumps(
                {k: result.get(k) for k in ("env_policy_steps_per_s", "raw_physics_policy_steps_per_s")})
                if good else f"exit {rc}")
        self.write_bench()
        return ok

    def bench_train(self) -> bool:
        t = time.monotonic()
        spec = {"preset": self.args.preset, "iterations": self.args.bench_train_iterations}
        if self.dry:
            sets = [s for s in self.dry_sets() if not s.startswith("env.num_envs=")]
            spec.update(num_envs=self.args.bench_train_envs, overrides=sets)
        elif self.args.bench_train_envs:
            spec["num_envs"] = self.args.bench_train_envs
        code = ("import json, sys\nfrom trifinger_s2r.bench.train_bench import TrainBenchConfig, run\n"
                "spec = json.loads(sys.argv[1])\nspec['overrides'] = tuple(spec.get('overrides', ()))\n"
                "print(json.dumps(run(TrainBenchConfig(**spec))))")
        if self.dry or "overrides" in spec:
            cmd = [self.python, "-c", code, json.dumps(spec)]
        else:  # the documented command, so that the figure has one
            cmd = self.cli("bench", "train", "--preset", spec["preset"], "--iterations", str(spec["iterations"]),
                           *(["--num-envs", str(spec["num_envs"])] if "num_envs" in spec else []), "--json")
        rc, lines = self.call("bench-train", cmd, min(self.args.bench_timeout, self.before_train()))
        result = self.last_json(lines)
        if rc == 0 and result:
            self.bench["train"] = result
        self.write_bench()
        good = rc == 0 and result is not None
        return self.stage("bench-train", good, time.monotonic() - t,
                          f"train_samples_per_s {result.get('train_samples_per_s')}" if good else f"exit {rc}")

    def write_bench(self) -> None:
        self.bench["env"].sort(key=lambda r: r.get("num_envs", 0))
        (self.out / "bench.json").write_text(json.dumps(self.bench, indent=2))

    def finish(self) -> int:
        self.write_bench()
        self.summary.update(
            date_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            device=(self.bench["device"] or {}).get("name"),
            minutes_budget=self.args.minutes, elapsed_s=round(time.monotonic() - self.t0, 1),
            preset=self.args.preset, stages=self.stages)
        previous = REPO / self.args.checkpoint_dir / "summary.json"
        windows = []
        continued = (self.summary.get("resumed_from_iteration") is not None
                     or self.summary.get("init_from_iteration") is not None)
        if continued and previous.is_file():  # the same policy's earlier windows (GPU-minutes add up)
            try:
                windows = json.loads(previous.read_text()).get("windows", [])
            except (OSError, json.JSONDecodeError):
                windows = []
        this = {k: self.summary.get(k) for k in ("date_utc", "device", "mode", "resumed_from_iteration",
                                                  "final_iteration", "iterations_this_window",
                                                  "train_seconds_this_window", "train_stage_seconds",
                                                  "env_steps_total", "last_success_rate")}
        self.summary["windows"] = windows + [this]
        for key in ("train_seconds", "train_stage_seconds"):
            per_window = key if key.endswith("stage_seconds") else key + "_this_window"
            self.summary[f"{key}_all_windows"] = round(sum(w.get(per_window) or 0.0
                                                           for w in self.summary["windows"]), 1)
        failed = [name for name, s in self.stages.items() if not s["ok"]]
        self.summary["failed_stages"] = failed
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2))
        present = sorted(p.name for p in self.out.iterdir())
        extra = [p for p in present if p not in OUT_FILES]
        big = [p.name for p in self.out.iterdir() if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
        self.log(f"files in {self.out}: {present}" + (f"; NOT EXPECTED: {extra}" if extra else "") +
                 (f"; OVER 16 MiB (will not come back): {big}" if big else ""))
        self.log(f"elapsed {time.monotonic() - self.t0:.0f}s of {self.args.minutes * 60:.0f}s; " +
                 ("all stages ok" if not failed else f"FAILED stages: {', '.join(failed)}"))
        self.log("SUMMARY " + json.dumps({k: self.summary.get(k) for k in (
            "device", "resumed_from_iteration", "final_iteration", "iterations_this_window",
            "train_seconds_this_window", "train_stage_seconds", "train_stage_seconds_all_windows",
            "last_success_rate", "failed_stages")}))
        for r in self.bench["env"]:
            self.log(f"BENCH env {r.get('num_envs')} envs: env {r.get('env_policy_steps_per_s')} / raw "
                     f"{r.get('raw_physics_policy_steps_per_s')} policy steps/s")
        if self.bench["train"]:
            self.log(f"BENCH train: {self.bench['train'].get('train_samples_per_s')} samples/s")
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if failed else 0

    def main(self) -> int:
        a = self.args
        self.log(f"scripts/gpu/run.py {'--cpu-dry-run ' if self.dry else ''}budget {a.minutes} min, out {self.out}, "
                 f"work {self.work}, python {self.python}")
        try:
            if not self.dry and not self.install():
                return self.finish()
            if not self.preflight() and not self.dry:
                return self.finish()
            if not a.skip_tests:
                self.cuda_tests()
            if not a.skip_bench:
                self.bench_env()
                self.bench_train()
            checkpoint = self.train()
            self.collect(checkpoint)  # before the export: if anything kills us now, the checkpoint is out
            if checkpoint is not None:
                self.export(checkpoint)
        except Exception as err:  # noqa: BLE001 (a bug here must still leave the files and the log)
            import traceback

            self.log(traceback.format_exc())
            self.stage("run.py", False, 0.0, f"{type(err).__name__}: {err}")
        return self.finish()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/gpu/run.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for the result files ($OUT on the GPU machine)")
    p.add_argument("--minutes", type=float, help="wall-clock budget of the whole run (default 8; dry run 10)")
    p.add_argument("--cpu-dry-run", action="store_true",
                   help="the whole run on the CPU machine: current Python, Warp's CPU device, tiny sizes")
    p.add_argument("--stash-only", action="store_true",
                   help="only stash the wheel parts this command carried (the carrying calls, docs/gpu.md)")
    p.add_argument("--preset", default="repose-gpu", help="training preset (default repose-gpu)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for a fresh training run (a resumed run keeps its saved config)")
    p.add_argument("--checkpoint-dir", default=str(CHECKPOINT_DIR),
                   help=f"the committed checkpoint to resume from (default {CHECKPOINT_DIR})")
    p.add_argument("--fresh", action="store_true", help="ignore the committed checkpoint: a fresh run")
    p.add_argument("--init-from-committed", action="store_true",
                   help="a fresh run (this preset's config, --set applies) from the committed actor and critic")
    p.add_argument("--iterations", type=int, help="train at most this many iterations (default: until the budget)")
    p.add_argument("--imitate-rounds", type=int,
                   help="DAgger rounds that warm-start a fresh run (default 30; dry run 2; 0: no warm start)")
    p.add_argument("--imitate-share", type=float, default=0.25,
                   help="largest share of the time left that the warm start may take (default 0.25)")
    p.add_argument("--actor-warmup-iterations", type=int, default=20,
                   help="critic-only PPO updates after the warm start (ppo.actor_warmup_iterations, default 20)")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--skip-bench", action="store_true")
    p.add_argument("--env-counts", help="bench env counts, comma-separated (default 4096,16384; dry run 8,16)")
    p.add_argument("--bench-steps", type=int, help="bench env timed policy steps (default 100; dry run 4)")
    p.add_argument("--bench-train-iterations", type=int, help="bench train timed iterations (default 3; dry run 1)")
    p.add_argument("--bench-train-envs", type=int, help="bench train env count (default: the preset's; dry run 8)")
    p.add_argument("--tests-timeout", type=float, default=300.0,
                   help="seconds for the CUDA-only tests (the first Warp process compiles the CUDA kernels)")
    p.add_argument("--bench-timeout", type=float, default=150.0, help="seconds for each bench command")
    p.add_argument("--export-timeout", type=float, default=120.0)
    p.add_argument("--reserve-s", type=float, help="seconds kept after training for export and files (default 60)")
    p.add_argument("--train-startup-s", type=float, default=20.0,
                   help="seconds the train command spends before its clock starts (imports)")
    p.add_argument("--train-overshoot-s", type=float, default=15.0,
                   help="seconds the trainer may run past its budget (the last iteration, the checkpoint)")
    p.add_argument("--min-train-minutes", type=float,
                   help="training time kept free of the earlier stages; less left: no training (default 1)")
    p.add_argument("--wheel-store", default="/root/gpu-wheels", help="where carried wheel parts are kept")
    p.add_argument("--site", help="where the wheels are installed (pip --target) and imported from "
                                  "(default /tmp/s2r-site; dry run: none, the Python's own packages)")
    p.add_argument("--work", help="scratch folder for the run folders (default: a new temporary folder)")
    p.add_argument("--python", help="the Python that runs the stages (default: this one)")
    p.add_argument("--dry-train-envs", type=int, default=16)
    p.add_argument("--dry-steps-per-env", type=int, default=4)
    args = p.parse_args(argv)
    dry = args.cpu_dry_run
    if not args.stash_only and not args.out:
        p.error("--out is required")
    args.minutes = args.minutes if args.minutes is not None else (10.0 if dry else 8.0)
    args.env_counts = [int(n) for n in (args.env_counts or ("8,16" if dry else "4096,16384")).split(",") if n]
    args.bench_steps = args.bench_steps or (4 if dry else 100)
    args.bench_train_iterations = args.bench_train_iterations or (1 if dry else 3)
    args.bench_train_envs = args.bench_train_envs or (8 if dry else None)
    args.site = args.site or (None if dry else "/tmp/s2r-site")
    args.reserve_s = args.reserve_s if args.reserve_s is not None else 60.0
    args.min_train_minutes = args.min_train_minutes if args.min_train_minutes is not None else 1.0
    if dry and args.iterations is None:
        args.iterations = 2
    if args.imitate_rounds is None:
        args.imitate_rounds = 2 if dry else 30
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stash_only:
        store = Path(args.wheel_store)
        copied = wheels.stash(REPO, store)
        manifest, missing = wheels.missing_parts(store)
        print(f"stashed into {store}: {', '.join(copied) or 'nothing'}")
        if manifest is None or missing:
            print(f"still missing: {', '.join(missing)}")
        else:
            print(f"all {manifest['calls']} call(s) of wheel parts are here: the run call can go")
        return 0
    return Run(args).main()


if __name__ == "__main__":
    sys.exit(main())
