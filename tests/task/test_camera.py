"""The camera pose model: 10 Hz sample-and-hold, delay, drops."""

from __future__ import annotations

import torch

from trifinger_s2r.task.camera import CameraPoseModel
from trifinger_s2r.task.config import CameraConfig, Uniform

IDENTITY = torch.tensor([[0.0, 0.0, 0.0, 1.0]])


def _run(cfg: CameraConfig, steps: int = 40, n: int = 1):
    gen = torch.Generator().manual_seed(0)
    cam = CameraPoseModel(n, cfg, policy_rate_hz=50, camera_rate_hz=10)
    true_x = lambda t: torch.full((n, 3), float(t))  # noqa: E731 - position encodes the capture step
    cam.reset(torch.arange(n), true_x(-1), IDENTITY.expand(n, 4), gen)
    seen = []
    for t in range(steps):
        pos, _ = cam.observe(torch.full((n,), t), true_x(t), IDENTITY.expand(n, 4), gen)
        seen.append(pos[:, 0].clone())
    return torch.stack(seen, dim=1), cam


class TestSampleAndHold:
    def test_frames_arrive_delayed_and_are_held(self):
        """With a 90 ms delay, the pose seen at step t was captured 4.5 steps earlier on the 5-step grid."""
        cfg = CameraConfig(delay_s=Uniform(0.09, 0.09), position_noise_std_m=0.0, orientation_noise_std_rad=0.0,
                           drop_probability=0.0)
        seen, cam = _run(cfg)
        phase = int(cam.phase[0])
        for t in range(15, 40):
            captures = [c for c in range(t + 1) if (c + phase) % 5 == 0 and c + 4.5 <= t]
            assert seen[0, t] == float(captures[-1])
        assert len(set(seen[0, 10:].tolist())) <= 7  # changes at most every 5 steps

    def test_dropped_frames_hold_the_last_pose(self):
        cfg = CameraConfig(drop_probability=1.0, position_noise_std_m=0.0)
        seen, cam = _run(cfg)
        assert torch.all(seen == -1.0)
        assert cam.frames_dropped == cam.frames_captured > 0

    def test_disabled_camera_shows_the_true_pose(self):
        seen, _ = _run(CameraConfig(enabled=False))
        assert torch.equal(seen[0], torch.arange(40, dtype=torch.float32))

    def test_noise_perturbs_the_pose(self):
        cfg = CameraConfig(delay_s=Uniform(0.0, 0.0), position_noise_std_m=0.01, drop_probability=0.0)
        seen, cam = _run(cfg)
        captured = [t for t in range(40) if (t + int(cam.phase[0])) % 5 == 0]
        assert any(abs(float(seen[0, t]) - t) > 1e-4 for t in captured)
