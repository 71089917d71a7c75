"""Throughput of the official PyBullet TriFinger platform (trifinger_simulation) per 50 Hz policy step."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from trifinger_s2r.bench.env_bench import machine_info
from trifinger_s2r.deploy.platform import quiet_imports
from trifinger_s2r.robot import trifinger_pro as tp
from trifinger_s2r.timing import ROBOT_RATE_HZ, Timing


@dataclass(frozen=True)
class PybulletBenchConfig:
    policy_steps: int = 100
    warmup_steps: int = 5
    seed: int = 0


def run(cfg: PybulletBenchConfig) -> dict:
    with quiet_imports():
        from trifinger_simulation.trifinger_platform import TriFingerPlatform

    platform = TriFingerPlatform(visualization=False, time_step_s=1.0 / ROBOT_RATE_HZ)
    robot_steps = ROBOT_RATE_HZ // Timing().policy_rate_hz
    rng = np.random.default_rng(cfg.seed)
    t = platform.append_desired_action(platform.Action(torque=np.zeros(tp.NUM_JOINTS)))
    for i in range(cfg.warmup_steps + cfg.policy_steps):
        if i == cfg.warmup_steps:
            start = time.perf_counter()
        platform.get_robot_observation(t)
        platform.get_camera_observation(t)
        action = platform.Action(torque=rng.uniform(-1, 1, tp.NUM_JOINTS) * tp.MAX_TORQUE_NM)
        for _ in range(robot_steps):
            t = platform.append_desired_action(action)
    rate = cfg.policy_steps / (time.perf_counter() - start)
    return {
        "platform": "trifinger_simulation.TriFingerPlatform (PyBullet)",
        "physics_step_s": 1.0 / ROBOT_RATE_HZ,
        "robot_steps_per_policy_step": robot_steps,
        "policy_steps_timed": cfg.policy_steps,
        "policy_steps_per_s": round(rate, 1),
        **machine_info(),
    }
