"""Process plumbing of the prepared GPU run (scripts/gpu/run.py): the log, subprocesses with timeouts that stop
their whole process group, the time budget and stage records. Standard library only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Log:
    """log.txt in the output folder, written line by line as the run goes; also echoed to stdout."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open for the run)
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        stamp = f"[{time.monotonic() - self.start:7.1f}s]"
        with self.lock:
            for line in str(text).splitlines() or [""]:
                self.file.write(f"{stamp} {line}\n")
                print(f"{stamp} {line}", flush=True)




class StageRunner:
    """What every stage of the run uses. The subclass sets args, dry, deadline, log, env, python, stages, summary,
    out and work in its __init__."""

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def before_train(self) -> float:
        """Seconds a stage before training may take and still leave training its minimum."""
        a = self.args
        return self.left() - a.reserve_s - a.train_startup_s - a.train_overshoot_s - a.min_train_minutes * 60

    def cli(self, *argv: str) -> list[str]:
        return [self.python, "-m", "trifinger_s2r.cli", *argv]

    def call(self, name: str, cmd: list[str], timeout: float) -> tuple[int, list[str]]:
        """Run cmd from the repository root, its output streamed into the log; kill its process group at timeout.
        Returns (exit status, output lines); 124 on timeout."""
        shown = " ".join("<python code>" if "\n" in arg else arg for arg in cmd)
        self.log(f"[{name}] $ {shown}  (timeout {timeout:.0f}s)")
        if timeout <= 1:
            self.log(f"[{name}] no time left: not started")
            return 124, []
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        lines: list[str] = []

        def pump() -> None:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                self.log(f"[{name}] {line.rstrip()}")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.log(f"[{name}] TIMEOUT after {timeout:.0f}s: stopping it")
            for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            rc = 124
        reader.join(timeout=5)
        return rc, lines

    def stage(self, name: str, ok: bool, seconds: float, detail: str = "") -> bool:
        self.stages[name] = {"ok": ok, "seconds": round(seconds, 1), "detail": detail}
        self.log(f"== stage {name}: {'ok' if ok else 'FAILED'} ({seconds:.1f}s){' - ' + detail if detail else ''}")
        return ok

    @staticmethod
    def last_json(lines: list[str]) -> dict | None:
        for line in reversed(lines):
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
        return None

    def py(self, name: str, code: str, timeout: float, *argv: str) -> tuple[int, dict | None]:
        rc, lines = self.call(name, [self.python, "-c", code, *argv], timeout)
        return rc, self.last_json(lines)
