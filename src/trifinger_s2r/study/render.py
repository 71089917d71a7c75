"""Offscreen MuJoCo frames of one simulated env with keypoints drawn, and captioned H.264 videos.

Rendering needs a headless OpenGL context: EGL (Mesa's software EGL works without a GPU), else OSMesa. The context
is made directly (mujoco.egl / mujoco.osmesa), so MUJOCO_GL need not be set before MuJoCo is first imported.
"""

from __future__ import annotations

import importlib
import os

import mujoco
import numpy as np
import torch

from trifinger_s2r.media import H264Writer
from trifinger_s2r.sim.backend import SimState
from trifinger_s2r.task.geometry import keypoints

WIDTH_PX, HEIGHT_PX = 480, 360
CAMERA_LOOKAT_M = (0.0, 0.0, 0.03)
CAMERA_DISTANCE_M = 0.55
CAMERA_AZIMUTH_DEG, CAMERA_ELEVATION_DEG = 150.0, -55.0
"""Close to deploy.video's PyBullet camera (yaw 60 there is azimuth 150 here), a little steeper."""
OBJECT_BODY_RGBA = (0.25, 0.55, 0.95, 1.0)
"""The object is drawn blue so that the red goal keypoints stand out."""
KEYPOINT_RADIUS_M = 0.005
OBJECT_RGBA = (0.0, 0.8, 0.0, 1.0)
GOAL_RGBA = (1.0, 0.0, 0.0, 1.0)
"""Keypoint colours, as in the PyBullet videos: the object's (nominal cube) green, the goal's red."""


class RenderUnavailable(RuntimeError):
    """No headless OpenGL context could be made (neither EGL nor OSMesa)."""


def _gl_context(width_px: int, height_px: int):
    errors = []
    for name in dict.fromkeys(n for n in (os.environ.get("MUJOCO_GL", "").lower(), "egl", "osmesa") if n):
        if name not in ("egl", "osmesa"):
            continue
        try:
            context = importlib.import_module(f"mujoco.{name}").GLContext(width_px, height_px)
            context.make_current()
            return context
        except Exception as err:  # noqa: BLE001 (any failure means: try the next backend)
            errors.append(f"{name}: {err}")
    raise RenderUnavailable("no headless OpenGL for MuJoCo (" + "; ".join(errors) + ")")


class MujocoFrames:
    """RGB frames (H, W, 3) of a scene model posed from a SimState row, with the keypoints drawn as small spheres."""

    def __init__(self, model: mujoco.MjModel, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> None:
        self.model, self.data = model, mujoco.MjData(model)
        model.geom_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "cube")] = OBJECT_BODY_RGBA
        model.vis.headlight.ambient[:] = 0.35
        model.vis.headlight.diffuse[:] = 0.6
        self.width_px, self.height_px = width_px, height_px
        self._context = _gl_context(width_px, height_px)
        model.vis.global_.offwidth, model.vis.global_.offheight = width_px, height_px
        self._mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.lookat[:] = CAMERA_LOOKAT_M
        self._camera.distance = CAMERA_DISTANCE_M
        self._camera.azimuth, self._camera.elevation = CAMERA_AZIMUTH_DEG, CAMERA_ELEVATION_DEG
        self._viewport = mujoco.MjrRect(0, 0, width_px, height_px)
        self._cube_qpos = int(model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "cube_joint")])

    def render(self, state: SimState, env: int, goal_pos_m: torch.Tensor, goal_quat_xyzw: torch.Tensor) -> np.ndarray:
        """The scene of row `env` of state, with the nominal cube's keypoints at the object's pose (green) and at the
        goal pose (red)."""
        nq = self._cube_qpos
        self.data.qpos[:nq] = state.joint_pos_rad[env].double().numpy()
        self.data.qpos[nq:nq + 3] = state.cube_pos_m[env].double().numpy()
        self.data.qpos[nq + 3:nq + 7] = state.cube_quat_xyzw[env, [3, 0, 1, 2]].double().numpy()
        mujoco.mj_kinematics(self.model, self.data)
        self._context.make_current()
        mujoco.mjv_updateScene(self.model, self.data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        object_kp = keypoints(state.cube_pos_m[env:env + 1], state.cube_quat_xyzw[env:env + 1])[0]
        goal_kp = keypoints(goal_pos_m.reshape(1, 3).float(), goal_quat_xyzw.reshape(1, 4).float())[0]
        for points, rgba in ((object_kp, OBJECT_RGBA), (goal_kp, GOAL_RGBA)):
            for point in points.double().numpy():
                self._add_sphere(point, rgba)
        mujoco.mjr_render(self._viewport, self._scene, self._mjr)
        rgb = np.empty((self.height_px, self.width_px, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(rgb, None, self._viewport, self._mjr)
        return np.ascontiguousarray(np.flipud(rgb))

    def _add_sphere(self, pos_m: np.ndarray, rgba: tuple[float, ...]) -> None:
        if self._scene.ngeom >= self._scene.maxgeom:
            return
        mujoco.mjv_initGeom(self._scene.geoms[self._scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE,
                            np.array([KEYPOINT_RADIUS_M, 0, 0]), pos_m, np.eye(3).flatten(), np.asarray(rgba, np.float32))
        self._scene.ngeom += 1

    def close(self) -> None:
        self._mjr.free()
        self._context.free()


class CaptionedVideo:
    """An H.264 MP4 of frames, each captioned (deploy.video.draw_caption), ending on the outcome held for a while."""

    def __init__(self, path, width_px: int, height_px: int, fps: float) -> None:
        import cv2

        self._cv2, self.fps = cv2, fps
        self._writer = H264Writer(path, width_px, height_px, fps)
        self._last: np.ndarray | None = None

    def add(self, frame_rgb: np.ndarray, caption: str) -> None:
        from trifinger_s2r.deploy.video import draw_caption

        self._last = frame_rgb
        frame = frame_rgb.copy()
        draw_caption(self._cv2, frame, caption)
        self._writer.write(frame)

    def finish(self, outcome: str, hold_s: float = 1.5) -> None:
        """Repeat the last frame with the outcome as its caption, then close the file."""
        if self._last is not None:
            for _ in range(max(1, round(hold_s * self.fps))):
                self.add(self._last, outcome)
        self._writer.close()


def render_unavailable() -> str | None:
    """Why MuJoCo cannot render offscreen here (None: it can)."""
    try:
        _gl_context(16, 16).free()
    except RenderUnavailable as err:
        return str(err)
    return None
