"""Plots of a deployment's logs: cube position and orientation error over each episode (tracker pose)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PLOT_FILE = "errors.png"


def plot_errors(log_dir: Path) -> Path:
    """errors.png in log_dir: one line per episode, position error (cm) and orientation error (deg) vs time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log_dir = Path(log_dir)
    info = json.loads((log_dir / "info.json").read_text())
    fig, (ax_pos, ax_rot) = plt.subplots(1, 2, figsize=(11, 4))
    for episode in sorted(p for p in log_dir.glob("episode_*") if (p / "log.npz").is_file()):
        log = np.load(episode / "log.npz")
        if log["policy_t"].size == 0:
            continue
        seconds = (log["policy_t"] - log["policy_t"][0]) / 1000.0
        ax_pos.plot(seconds, 100 * log["policy_position_error_m"], lw=1)
        ax_rot.plot(seconds, np.degrees(log["policy_orientation_error_rad"]), lw=1)
    ax_pos.axhline(2.0, color="k", ls="--", lw=0.8, label="success: 2 cm")
    ax_rot.axhline(np.degrees(0.4), color="k", ls="--", lw=0.8, label="success: 22.9 deg (levels -1, 4)")
    ax_pos.set(xlabel="time (s)", ylabel="position error (cm)", title="cube position error (tracker)")
    ax_rot.set(xlabel="time (s)", ylabel="orientation error (deg)", title="cube orientation error (tracker)")
    for ax in (ax_pos, ax_rot):
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{info['policy']} on {info['robot_name']} ({info['platform']}), level {info['level']}")
    fig.tight_layout()
    path = log_dir / PLOT_FILE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
