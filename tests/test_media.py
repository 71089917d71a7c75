import cv2
import numpy as np
import pytest

from trifinger_s2r.media import H264Writer


def test_h264_writer_makes_a_browser_codec_mp4_with_every_frame(tmp_path):
    path = tmp_path / "clip.mp4"
    with H264Writer(path, 64, 48, fps=10) as writer:
        for i in range(12):
            writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    assert int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower() in ("avc1", "h264")
    ok, frame = capture.read()
    assert ok and frame.shape == (48, 64, 3)


def test_wrong_frames_are_refused(tmp_path):
    with H264Writer(tmp_path / "clip.mp4", 64, 48, fps=10) as writer, pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((48, 64, 3), np.float32))
    with pytest.raises(ValueError, match="even"):
        H264Writer(tmp_path / "odd.mp4", 63, 48, fps=10)
