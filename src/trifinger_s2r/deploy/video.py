"""Video of a PyBullet episode with the cube's and the goal's 8 keypoints drawn (cube: green, goal: red)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trifinger_s2r.deploy.runner import Goal
from trifinger_s2r.media import H264Writer
from trifinger_s2r.task.geometry import keypoints

WIDTH_PX, HEIGHT_PX = 480, 360
CAMERA_TARGET_M = (0.0, 0.0, 0.05)
CAMERA_DISTANCE_M = 0.6
CAMERA_YAW_DEG, CAMERA_PITCH_DEG = 60.0, -45.0
FIELD_OF_VIEW_DEG = 50.0


def _project(points_m: np.ndarray, view: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of world points through PyBullet's (column-major) view and projection."""
    homogeneous = np.c_[points_m, np.ones(len(points_m))]
    clip = homogeneous @ view @ projection  # row vectors times column-major matrices read row-major
    ndc = clip[:, :3] / clip[:, 3:4]
    return np.c_[(ndc[:, 0] + 1) * WIDTH_PX / 2, (1 - ndc[:, 1]) * HEIGHT_PX / 2]


def draw_caption(cv2, frame: np.ndarray, text: str) -> None:
    """White text on a dark box, inset from the top-left corner so that no glyph is clipped."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    cv2.rectangle(frame, (6, 6), (18 + width, 16 + height + baseline), (0, 0, 0), -1)
    cv2.putText(frame, text, (12, 12 + height), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


class PyBulletFrames:
    """RGB frames (H, W, 3) of the robot's current PyBullet episode with the object's (green) and the goal's (red)
    keypoints drawn (the nominal cube's keypoints at the object's pose, as the policy sees them)."""

    def __init__(self, robot, goal: Goal) -> None:
        import cv2
        import pybullet

        self._pybullet, self._cv2, self.robot = pybullet, cv2, robot
        self._view = pybullet.computeViewMatrixFromYawPitchRoll(
            CAMERA_TARGET_M, CAMERA_DISTANCE_M, CAMERA_YAW_DEG, CAMERA_PITCH_DEG, 0.0, 2)
        self._projection = pybullet.computeProjectionMatrixFOV(FIELD_OF_VIEW_DEG, WIDTH_PX / HEIGHT_PX, 0.01, 2.0)
        self._goal_kp = _keypoints(goal.position_m, goal.quat_xyzw)

    def render(self) -> np.ndarray:
        _, _, rgba, _, _ = self._pybullet.getCameraImage(
            WIDTH_PX, HEIGHT_PX, self._view, self._projection, renderer=self._pybullet.ER_TINY_RENDERER,
            physicsClientId=self.robot.pybullet_client_id)
        frame = np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(HEIGHT_PX, WIDTH_PX, 4)[:, :, :3])
        view, projection = np.asarray(self._view).reshape(4, 4), np.asarray(self._projection).reshape(4, 4)
        cube_kp = _keypoints(*self.robot.true_object_pose())
        for points, colour in ((self._goal_kp, (255, 0, 0)), (cube_kp, (0, 200, 0))):
            for x, y in _project(points, view, projection):
                self._cv2.circle(frame, (int(x), int(y)), 4, colour, -1)
        return frame


def _keypoints(position_m: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    kp = keypoints(torch.as_tensor(position_m, dtype=torch.float32).reshape(1, 3),
                   torch.as_tensor(quat_xyzw, dtype=torch.float32).reshape(1, 4))
    return kp.reshape(8, 3).numpy()


class PyBulletVideo:
    """Records frames of the current PyBullet episode every `every_n_steps` policy steps into an H.264 .mp4 file."""

    def __init__(self, path: Path, robot, goal: Goal, policy_rate_hz: int, every_n_steps: int = 2) -> None:
        import cv2

        self._cv2 = cv2
        self.path, self.robot, self.every_n_steps = Path(path), robot, every_n_steps
        self.policy_rate_hz = policy_rate_hz
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = H264Writer(self.path, WIDTH_PX, HEIGHT_PX, fps=policy_rate_hz / every_n_steps)
        self._frames = PyBulletFrames(robot, goal)
        self.frames = 0

    def __call__(self, step: int) -> None:
        if step % self.every_n_steps:
            return
        frame = self._frames.render()
        draw_caption(self._cv2, frame, f"t = {step / self.policy_rate_hz:.1f} s")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        self._writer.close()
