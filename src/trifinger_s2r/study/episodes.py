"""Episodes of a policy with an object variant: batched in our simulation, one by one on the PyBullet TriFinger.

Both return eval's summary (`eval.metrics.success_summary`: success rate with its 80% Wilson interval, mean final
errors) and can record their first episode as a captioned H.264 video with the keypoints drawn. With the nominal
cube they run exactly what `trifinger-s2r eval` and `trifinger-s2r deploy` run for the same seed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from trifinger_s2r.envs.repose_env import ReposeEnv
from trifinger_s2r.eval.metrics import success_summary
from trifinger_s2r.eval.rollouts import evaluate
from trifinger_s2r.policies import Policy
from trifinger_s2r.robot.objects import variant
from trifinger_s2r.study.object_env import ObjectEnv, goal_positions, start_positions, start_quats
from trifinger_s2r.study.render import CaptionedVideo
from trifinger_s2r.task import goals
from trifinger_s2r.train.config import TrainConfig

VIDEO_EVERY_N_STEPS = 2
"""A video frame every second policy step (25 frames per second at 50 Hz)."""


def outcome_caption(label: str, success: bool, position_error_m: float) -> str:
    return f"{label}: {'SUCCESS' if success else 'FAILURE'} (final error {100 * position_error_m:.1f} cm)"


def run_mujoco(policy: Policy, cfg: TrainConfig, obj: str, episodes: int, seed: int = 0,
               video_path: Path | None = None, label: str = "") -> dict:
    """`episodes` episodes of cfg's task with obj in place of the cube, run and seeded as eval.rollouts.evaluate
    runs them (it is that function); the first env of the first round is filmed to video_path."""

    def make_env(env_cfg) -> ReposeEnv:
        if obj == "cube":
            return ReposeEnv(env_cfg)
        return ObjectEnv(dataclasses.replace(env_cfg, backend="mujoco", device="cpu"), obj)

    recorder = None if video_path is None else (lambda env: _MujocoRecorder(env, obj, video_path, label))
    return evaluate(policy, cfg, episodes, seed, make_env=make_env, recorder=recorder)


class _MujocoRecorder:
    """Films env 0 of an env (MuJoCo offscreen rendering of its state)."""

    def __init__(self, env: ReposeEnv, obj: str, path: Path, label: str) -> None:
        from trifinger_s2r.sim.model import load_model
        from trifinger_s2r.study.render import MujocoFrames

        self.env, self.label = env, label
        self.frames = MujocoFrames(load_model(env.cfg.collision, env.timing, obj))  # nominal size (+-3% unseen)
        self.rate_hz = env.timing.policy_rate_hz
        self.video = CaptionedVideo(path, self.frames.width_px, self.frames.height_px, self.rate_hz / VIDEO_EVERY_N_STEPS)

    def __call__(self, step: int) -> None:
        if step % VIDEO_EVERY_N_STEPS:
            return
        env, state = self.env, self.env.state
        goal_quat = goals.judged_goal_quat(env.task.level, env.goal_quat[:1], state.cube_quat_xyzw[:1])[0]
        error_m = float((state.cube_pos_m[0] - env.goal_pos_m[0]).norm())
        frame = self.frames.render(state, 0, env.goal_pos_m[0], goal_quat)
        self.video.add(frame, f"{self.label}  t = {(step + 1) / self.rate_hz:.1f} s  error {100 * error_m:.1f} cm")

    def finish(self, success: bool, position_error_m: float) -> None:
        self.video.finish(outcome_caption(self.label, success, position_error_m))
        self.frames.close()


def run_pybullet(policy, metadata: dict, obj: str, episodes: int, seed: int = 0, video_path: Path | None = None,
                 label: str = "") -> dict:
    """`episodes` episodes on the PyBullet TriFinger with obj in place of the cube, through the deployment runner
    (tracker model on, goals and starts from the challenge's move_cube sampler, moved to the object's resting
    height); the first episode is filmed to video_path."""
    from trifinger_s2r.deploy.runner import EpisodeRunner, Goal, PolicySpec, sample_episode_poses
    from trifinger_s2r.study.pybullet_objects import ObjectPyBulletRobot

    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    spec = PolicySpec.from_metadata(metadata)
    v = variant(obj)
    robot = ObjectPyBulletRobot(obj=obj, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    results = []
    for index, (goal, initial_pos, initial_quat) in enumerate(sample_episode_poses(spec.level, episodes, seed)):
        if obj != "cube":  # the cube keeps move_cube's poses exactly, as `deploy` runs them
            goal_pos = goal_positions(v, spec.level, torch.as_tensor(goal.position_m).reshape(1, 3))[0].numpy()
            goal = Goal(goal_pos, goal.quat_xyzw, goal.level)
            initial_pos = start_positions(v, torch.as_tensor(initial_pos).reshape(1, 3))[0].numpy()
            initial_quat = start_quats(v, torch.as_tensor(initial_quat).reshape(1, 4), generator)[0].numpy()
        recorder = _PyBulletRecorder(video_path, robot, goal, spec.policy_rate_hz, label) \
            if index == 0 and video_path is not None else None
        result, _ = EpisodeRunner(policy, spec, robot, on_policy_step=recorder).run(
            goal, initial_pos, initial_quat, spec.episode_length_steps)
        if recorder is not None:
            recorder.video.finish(outcome_caption(label, result.success, result.position_error_m))
        results.append(result)
    robot.close()
    summary = success_summary([r.success for r in results], [r.position_error_m for r in results],
                              [r.orientation_error_rad for r in results], spec.level)
    summary["statuses"] = dict(Counter(r.status for r in results))
    return summary


class _PyBulletRecorder:
    """Films the robot's current PyBullet episode."""

    def __init__(self, path: Path, robot, goal, policy_rate_hz: int, label: str) -> None:
        from trifinger_s2r.deploy.video import HEIGHT_PX, WIDTH_PX, PyBulletFrames

        self.robot, self.goal, self.label, self.rate_hz = robot, goal, label, policy_rate_hz
        self.frames = PyBulletFrames(robot, goal)
        self.video = CaptionedVideo(path, WIDTH_PX, HEIGHT_PX, policy_rate_hz / VIDEO_EVERY_N_STEPS)

    def __call__(self, step: int) -> None:
        if step % VIDEO_EVERY_N_STEPS:
            return
        position, _ = self.robot.true_object_pose()
        error_m = float(np.linalg.norm(position - self.goal.position_m))
        caption = f"{self.label}  t = {(step + 1) / self.rate_hz:.1f} s  error {100 * error_m:.1f} cm"
        self.video.add(self.frames.render(), caption)
