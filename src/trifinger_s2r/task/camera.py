"""The cube pose as the robot's tracker delivers it: 10 Hz frames, each delayed, noisy or lost, held in between.

Frames are captured every `policy_rate / camera_rate` policy steps (a random phase per env); each arrives
`delay_s` later (sampled per frame) unless it is dropped. At every policy step the actor sees the newest
arrived frame; the quaternion keeps the sign of the previous one, as the deployment runner does.
"""

from __future__ import annotations

import torch

from trifinger_s2r.task.config import CameraConfig
from trifinger_s2r.task.geometry import continuous_sign, quat_from_axis_angle, quat_mul

PENDING_SLOTS = 3
"""Frames in flight at once; enough for delays up to two frame periods."""


def perturb_pose(
    pos_m: torch.Tensor, quat: torch.Tensor, cfg: CameraConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add Gaussian position noise and a rotation about a random axis by a Gaussian angle."""
    n, device = pos_m.shape[0], pos_m.device
    noisy_pos = pos_m + cfg.position_noise_std_m * torch.randn(n, 3, generator=generator, device=device)
    axis = torch.randn(n, 3, generator=generator, device=device)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    angle = cfg.orientation_noise_std_rad * torch.randn(n, generator=generator, device=device)
    return noisy_pos, quat_mul(quat_from_axis_angle(axis, angle), quat)


class CameraPoseModel:
    """Per-env camera pipeline state; all tensors have num_envs rows."""

    def __init__(self, num_envs: int, cfg: CameraConfig, policy_rate_hz: int, camera_rate_hz: int, device="cpu"):
        self.cfg = cfg
        self.policy_rate_hz = policy_rate_hz
        self.period_steps = policy_rate_hz // camera_rate_hz
        n, k = num_envs, PENDING_SLOTS
        self.phase = torch.zeros(n, dtype=torch.long, device=device)
        self.frames = torch.zeros(n, dtype=torch.long, device=device)
        self.slot_pos = torch.zeros(n, k, 3, device=device)
        self.slot_quat = torch.zeros(n, k, 4, device=device)
        self.slot_capture = torch.full((n, k), -1, dtype=torch.long, device=device)
        self.slot_arrival = torch.full((n, k), float("inf"), device=device)
        self.held_pos = torch.zeros(n, 3, device=device)
        self.held_quat = torch.zeros(n, 4, device=device)
        self.held_quat[:, 3] = 1.0
        self.held_capture = torch.full((n,), -1, dtype=torch.long, device=device)
        self.frames_dropped = 0
        self.frames_captured = 0

    def reset(self, env_ids: torch.Tensor, pos_m: torch.Tensor, quat: torch.Tensor, generator: torch.Generator) -> None:
        """Start episodes with the true pose held (the tracker ran before the episode) and a random frame phase."""
        self.phase[env_ids] = torch.randint(0, self.period_steps, (len(env_ids),), generator=generator, device=pos_m.device)
        self.frames[env_ids] = 0
        self.slot_capture[env_ids] = -1
        self.slot_arrival[env_ids] = float("inf")
        self.held_pos[env_ids] = pos_m
        self.held_quat[env_ids] = quat
        self.held_capture[env_ids] = -1

    def observe(
        self, step: torch.Tensor, pos_m: torch.Tensor, quat: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Capture frames due at episode step `step` (N,), deliver arrived ones; return the held pose."""
        if not self.cfg.enabled:
            self.held_pos, self.held_quat = pos_m.clone(), continuous_sign(quat, self.held_quat)
            return self.held_pos, self.held_quat
        self._capture(step, pos_m, quat, generator)
        self._deliver(step)
        return self.held_pos, self.held_quat

    def _capture(self, step: torch.Tensor, pos_m: torch.Tensor, quat: torch.Tensor, generator: torch.Generator) -> None:
        capturing = torch.nonzero((step + self.phase) % self.period_steps == 0).flatten()
        if capturing.numel() == 0:
            return
        n = capturing.numel()
        noisy_pos, noisy_quat = perturb_pose(pos_m[capturing], quat[capturing], self.cfg, generator)
        delay = self.cfg.delay_s
        delay_s = delay.low + (delay.high - delay.low) * torch.rand(n, generator=generator, device=pos_m.device)
        dropped = torch.rand(n, generator=generator, device=pos_m.device) < self.cfg.drop_probability
        arrival = step[capturing].float() + delay_s * self.policy_rate_hz
        slot = self.frames[capturing] % PENDING_SLOTS
        self.slot_pos[capturing, slot] = noisy_pos
        self.slot_quat[capturing, slot] = noisy_quat
        self.slot_capture[capturing, slot] = step[capturing]
        self.slot_arrival[capturing, slot] = torch.where(dropped, torch.full_like(arrival, float("inf")), arrival)
        self.frames[capturing] += 1
        self.frames_captured += n
        self.frames_dropped += int(dropped.sum())

    def _deliver(self, step: torch.Tensor) -> None:
        arrived = (self.slot_arrival <= step.unsqueeze(1).float()) & (self.slot_capture > self.held_capture.unsqueeze(1))
        newest = torch.where(arrived, self.slot_capture, torch.full_like(self.slot_capture, -2)).argmax(dim=1)
        updating = torch.nonzero(arrived.any(dim=1)).flatten()
        if updating.numel() == 0:
            return
        slot = newest[updating]
        self.held_pos[updating] = self.slot_pos[updating, slot]
        self.held_quat[updating] = continuous_sign(self.slot_quat[updating, slot], self.held_quat[updating])
        self.held_capture[updating] = self.slot_capture[updating, slot]
