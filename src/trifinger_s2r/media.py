"""Browser-playable video: H.264 (yuv420p, faststart) MP4 through imageio-ffmpeg's bundled ffmpeg."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np


class H264Writer:
    """Writes RGB frames (H, W, 3) uint8 to an H.264 MP4 that browsers play (MPEG-4 Part 2 they do not)."""

    def __init__(self, path: Path, width_px: int, height_px: int, fps: float) -> None:
        import imageio_ffmpeg

        if width_px % 2 or height_px % 2:
            raise ValueError(f"H.264 in yuv420p needs even frame sizes, got {width_px}x{height_px}")
        self.path, self.size = Path(path), (width_px, height_px)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = imageio_ffmpeg.write_frames(
            str(self.path), self.size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=2,
            quality=None, bitrate=None, output_params=["-crf", "23", "-movflags", "+faststart"],
            ffmpeg_log_level="error")
        self._writer.send(None)  # start ffmpeg
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        if frame_rgb.shape != (self.size[1], self.size[0], 3) or frame_rgb.dtype != np.uint8:
            raise ValueError(f"frames must be ({self.size[1]}, {self.size[0]}, 3) uint8, got {frame_rgb.shape} "
                             f"{frame_rgb.dtype}")
        self._writer.send(np.ascontiguousarray(frame_rgb))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
